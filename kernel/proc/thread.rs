//! Threads: `clone(CLONE_THREAD | ...)` as musl's `pthread_create` calls
//! it, `exit` of one thread against `exit_group`, `execve` from a thread.
//!
//! Representation: every thread is a process record of its own in the
//! scheduler's table (its own pid, which is its tid; kernel stack, saved
//! registers, FPU state, FS base (TLS), signal mask and pending set), and
//! carries the id of its thread group (`tgid`, the pid of the group's first
//! thread, its *leader*). What the group shares:
//!
//! - the address space: the same `Arc` (`SharedAddressSpace`) in every
//!   thread's record, so it is torn down when the last thread drops it;
//! - the descriptor table, working directory, umask, program break and
//!   name: held by the leader's record only, reached through
//!   [`with_current_group`]. The leader's record stays in the table until
//!   the whole group has ended (a leader that called `exit` alone is a
//!   zombie its parent cannot reap yet, as in Linux);
//! - signal actions: every thread holds a copy, and `rt_sigaction` writes
//!   all of them ([`for_each_other_thread`]) under the scheduler lock,
//!   so they never differ.
//!
//! `getpid` is the tgid, `gettid` the pid of the record. A process-directed
//! signal (`kill`) goes to one thread of the group that does not block it
//! ([`signal_target`]), `tgkill`/`tkill` to the thread named. A fatal
//! signal, `exit_group` and SIGKILL end every thread; `exit` ends one, and
//! the group's exit reaches the parent (wait4, SIGCHLD) once, when its last
//! thread ends. Threads other than the leader are never reaped by a parent:
//! once they ended, the kernel frees their kernel stacks itself (as it does
//! for adopted orphans). `execve` from a thread ends the others, and the
//! caller takes the leader's pid ([`de_thread`]), as Linux does.
//!
//! `ps` and `/proc` list every thread as a line / directory of its own
//! (like `ps -eL`), the leader's pid being the process's.
//!
//! This file is a child module of `sched` (it reaches the table's private
//! parts); nothing here takes a lock other than the scheduler's.

use super::*;
use crate::mm::uaccess::write_user;

/// A thread's place in its group, and its `clone` state.
#[derive(Debug, Default)]
pub struct ThreadInfo {
    /// The thread group (Linux's tgid): the leader's pid; set when the
    /// record is queued.
    pub tgid: Pid,
    /// `CLONE_CHILD_CLEARTID` / `set_tid_address`: written 0 and
    /// futex-woken when this thread exits (0: none).
    pub clear_child_tid: u64,
    /// On the leader: the status `exit_group` (or a fatal signal) gave the
    /// whole group.
    group_exit: Option<i32>,
    /// The futex this thread waits on, while it does (`futex`); taken by
    /// the waker.
    pub(super) futex: Option<futex::Waiting>,
}

impl Process {
    /// The thread group's id (`getpid`).
    pub fn tgid(&self) -> Pid {
        self.thread.tgid
    }

    /// The first thread of its group (the one whose pid is the group's).
    pub fn is_group_leader(&self) -> bool {
        self.pid == self.thread.tgid
    }
}

fn is_zombie(p: &Process) -> bool {
    matches!(p.state, State::Zombie(_))
}

/// The group of thread `tid` (0 for none).
pub(super) fn group_of(s: &Scheduler, tid: Pid) -> Pid {
    s.procs.get(&tid).map_or(0, |p| p.thread.tgid)
}

/// Whether a thread of group `tgid` has not ended.
fn group_alive(procs: &ProcTable, tgid: Pid) -> bool {
    procs
        .values()
        .any(|p| p.thread.tgid == tgid && !is_zombie(p))
}

/// Whether zombie `p` may leave the table: a thread other than the leader
/// always; a leader once its whole group ended.
pub(super) fn reapable(procs: &ProcTable, p: &Process) -> bool {
    !p.is_group_leader() || !group_alive(procs, p.thread.tgid)
}

/// Whether `p` is the first record (in pid order) of its group that holds
/// an address space (the reverse map visits each space once).
pub(super) fn first_holder(procs: &ProcTable, p: &Process) -> bool {
    !procs
        .values()
        .take_while(|q| q.pid < p.pid)
        .any(|q| q.thread.tgid == p.thread.tgid && q.aspace.is_some())
}

/// The parent of `new` (about to be queued by the current thread): the
/// current group for a new process, the group's parent for a new thread.
pub(super) fn parent_for_new(s: &Scheduler, new: &Process) -> Pid {
    let me = group_of(s, current_here());
    if new.thread.tgid == 0 {
        me
    } else {
        s.procs.get(&new.thread.tgid).map_or(0, |l| l.ppid)
    }
}

/// Runs `f` on the current group's leader: the record that holds what
/// the threads share (descriptors, working directory, break, name).
pub fn with_current_group<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    with(|s| {
        let cur = current_here();
        let tgid = group_of(s, cur);
        let pid = if s.procs.get(&tgid).is_some() {
            tgid
        } else {
            cur
        };
        f(s.procs.get_mut(&pid).expect("the current process exists"))
    })
}

/// Runs `f` on every other live thread of the current group (signal
/// actions, which the group shares).
pub fn for_each_other_thread(mut f: impl FnMut(&mut Process)) {
    with(|s| {
        let me = current_here();
        let tgid = group_of(s, me);
        for p in s.procs.values_mut() {
            if p.thread.tgid == tgid && p.pid != me && !is_zombie(p) {
                f(p);
            }
        }
    })
}

/// The thread a process-directed signal `sig` for `pid` goes to: the
/// leader if it is live and does not block `sig`, else another live
/// thread of the group that does not, else the first live one (it stays
/// pending there until unblocked). `pid` itself if it is no group's.
pub fn signal_target(pid: Pid, sig: u8) -> Pid {
    with(|s| signal_target_locked(s, pid, sig))
}

/// [`signal_target`] under the scheduler lock.
pub(super) fn signal_target_locked(s: &Scheduler, pid: Pid, sig: u8) -> Pid {
    let Some(tgid) = s.procs.get(&pid).map(|p| p.thread.tgid) else {
        return pid;
    };
    let bit = usercore::signal::bit(sig);
    let live = || {
        s.procs
            .values()
            .filter(move |p| p.thread.tgid == tgid && !is_zombie(p))
    };
    let leader = s.procs.get(&tgid).filter(|p| !is_zombie(p));
    if let Some(l) = leader.filter(|l| l.sig.blocked & bit == 0) {
        return l.pid;
    }
    live()
        .find(|p| p.sig.blocked & bit == 0)
        .or_else(|| live().next())
        .map_or(pid, |p| p.pid)
}

/// Wakes every thread of group `tgid` waiting for a child (`wait4`: any
/// thread reaps the children of its whole group).
pub(super) fn wake_child_waiters(s: &mut Scheduler, tgid: Pid) {
    for p in s.procs.values_mut() {
        if p.thread.tgid == tgid && p.state == State::Blocked(Block::Child) {
            p.state = State::Runnable;
            enqueue(&mut s.queue, p.pid);
            crate::mm::psi::wake(p.pid);
        }
    }
}

/// Whether thread `tid` exists, is live and belongs to group `tgid`
/// (`tgkill`; `tgid` 0: any group).
pub fn thread_in_group(tid: Pid, tgid: Pid) -> bool {
    with(|s| {
        s.procs
            .get(&tid)
            .is_some_and(|p| (tgid == 0 || p.thread.tgid == tgid) && !is_zombie(p))
    })
}

/// Ends thread `tid` (live) with wait status `status`: a zombie that never
/// runs again. If it was its group's last, the group ends: the leader
/// takes the group's status, its descriptors close, its children pass to
/// the kernel and its parent is told (once). Returns the thread's address
/// space reference and the group's files, for the caller to drop once the
/// lock is released (their teardown may block).
fn exit_thread_locked(
    s: &mut Scheduler,
    tid: Pid,
    status: i32,
) -> (Option<SharedAddressSpace>, crate::proc::fd::FdTable) {
    let current = tid == current_here();
    let p = s.procs.get_mut(&tid).expect("the thread exists");
    // The current thread counts as running whatever its state says.
    let runnable = current || matches!(p.state, State::Runnable | State::Running);
    crate::mm::psi::exit(tid, runnable);
    p.state = State::Zombie(status);
    if core::mem::take(&mut p.kill_pending) {
        PENDING_KILLS.fetch_sub(1, Ordering::SeqCst);
    }
    let aspace = p.aspace.take();
    p.sig.clear_pending();
    p.thread.futex = None;
    let tgid = p.thread.tgid;
    if tid != tgid {
        // Freed by `reap_adopted`, never waited for.
        p.adopted = true;
    }
    let mut files = crate::proc::fd::FdTable::empty();
    if !group_alive(&s.procs, tgid) {
        if let Some(leader) = s.procs.get_mut(&tgid) {
            let own = match leader.state {
                State::Zombie(own) => own,
                _ => status,
            };
            let group_status = leader.thread.group_exit.unwrap_or(own);
            leader.state = State::Zombie(group_status);
            files = leader.fds.take_all();
            let parent = leader.ppid;
            for child in s.procs.values_mut().filter(|c| c.ppid == tgid) {
                child.ppid = 0;
                child.adopted = true;
            }
            notify_parent(s, parent, tgid, group_status);
        }
    }
    (aspace, files)
}

/// Ends every live thread of group `tgid` but `except`, one at a time
/// (what each drops is dropped outside the lock). Each thread ends
/// itself, as in Linux: it is marked (a pending SIGKILL), woken from any
/// wait (every wait of a system call ends once `signal::interrupted` says
/// so) or asked by IPI if it runs on another CPU, and waited for, this
/// thread yielding meanwhile (it needs a CPU); it dies on its way back to
/// user mode (`deliver_pending_kill`), after its system call dropped what
/// it held. Ended from outside, a thread asleep in a pipe read would leave
/// its file open for good, one asleep in the OOM killer's wait inside
/// `mlock`'s populate loop its address space. Only a stopped thread, held
/// at signal delivery on its
/// way to user mode with nothing on its stack, is ended here. While
/// waiting, this thread ends only by itself as well, and if it is asked to
/// die while it ends another group it stops waiting (two groups killing
/// each other would each wait for the other forever); the group it asked
/// dies anyway.
fn end_threads(tgid: Pid, except: Pid, status: i32) {
    enum Step {
        Done,
        Spin,
        Yield,
        Ended(Option<SharedAddressSpace>, crate::proc::fd::FdTable),
    }
    loop {
        let step = with(|s| {
            let me = current_here();
            if group_of(s, me) != tgid && s.procs.get(&me).is_some_and(|p| p.kill_pending) {
                return Step::Done;
            }
            let Some(p) = s
                .procs
                .values_mut()
                .find(|p| p.thread.tgid == tgid && p.pid != except && !is_zombie(p))
            else {
                return Step::Done;
            };
            let running = p.on_cpu.load(Ordering::SeqCst);
            // Only a stopped thread (held at signal delivery, on its way
            // to user mode) holds nothing: anything else may be inside a
            // system call, preempted or asleep, with references on its
            // kernel stack (a pipe read holds its file, a fault in the
            // OOM killer's wait its address space).
            let stopped = p.state == State::Blocked(Block::Stopped);
            if running || !stopped {
                if !p.kill_pending {
                    p.kill_pending = true;
                    PENDING_KILLS.fetch_add(1, Ordering::SeqCst);
                    if running {
                        crate::arch::smp::wake(p.cpu as usize);
                    }
                }
                if running {
                    return Step::Spin;
                }
                // Every wait of a system call ends once `kill_pending`
                // says so (`signal::interrupted`).
                if matches!(p.state, State::Blocked(_)) {
                    let pid = p.pid;
                    p.state = State::Runnable;
                    enqueue(&mut s.queue, pid);
                    crate::mm::psi::wake(pid);
                }
                return Step::Yield;
            }
            let tid = p.pid;
            let (aspace, files) = exit_thread_locked(s, tid, status);
            Step::Ended(aspace, files)
        });
        match step {
            Step::Done => return,
            Step::Spin => core::hint::spin_loop(),
            Step::Yield => yield_now(),
            Step::Ended(aspace, files) => {
                drop(aspace);
                drop(files);
            }
        }
    }
}

/// Ends the current thread (`exit`, `exit_thread_locked`), the group too
/// if it was the last.
fn exit_this_thread(status: i32) -> ! {
    x86_64::instructions::interrupts::disable();
    // Its memory goes first, while it is not a zombie yet: whoever waits
    // for it to end (a kill in `end_threads`, the OOM killer after it)
    // then finds every frame back. Dropped after it became a zombie, the
    // teardown still ran on this CPU when the OOM killer on another one
    // saw the victim gone and memory still short, and killed again (the
    // fuzzer's parent, on 2 CPUs).
    let aspace = with_current(|p| p.aspace.take());
    // Off this address space before it is torn down.
    aspace::switch_to(None);
    drop(aspace);
    let (aspace, files) = with(|s| {
        let cur = current_here();
        assert!(cur != 0, "the kernel thread cannot exit");
        exit_thread_locked(s, cur, status)
    });
    drop(aspace);
    // Its files close now (a pipe's reader sees the end), not at the reap.
    drop(files);
    schedule();
    unreachable!("a zombie was scheduled");
}

/// `exit_group` (and a fatal signal, SIGKILL): every thread of the
/// current group ends, the group with wait status `status`.
pub fn exit_group_current(status: i32) -> ! {
    x86_64::instructions::interrupts::disable();
    let (me, tgid, first) = with(|s| {
        let me = current_here();
        let tgid = group_of(s, me);
        assert!(me != 0, "the kernel thread cannot exit");
        let mut first = true;
        if let Some(leader) = s.procs.get_mut(&tgid) {
            first = leader.thread.group_exit.is_none();
            leader.thread.group_exit.get_or_insert(status);
        }
        (me, tgid, first)
    });
    // SMP: when the group is already on its way out (another thread's
    // exit_group, or a kill that asked this one to die), that thread ends
    // the others, this one only itself: two threads each waiting for the
    // other to leave its CPU would never end.
    if first {
        end_threads(tgid, me, status);
    }
    exit_this_thread(status)
}

/// `exit`: the current thread ends. Its clear-tid word (if any, and
/// writable) becomes 0 and one waiter on it is woken (`pthread_join`).
pub fn exit_thread_current(status: i32) -> ! {
    let clear = with_current(|p| core::mem::take(&mut p.thread.clear_child_tid));
    if clear != 0 && write_user::<u32>(clear, &0).is_ok() {
        let _ = futex::wake(clear, 1, false);
    }
    exit_this_thread(status)
}

/// Kills every thread of group `tgid` (not the current one's) with wait
/// status `status`; false if the group had no live thread.
pub(super) fn kill_group(tgid: Pid, status: i32) -> bool {
    let alive = with(|s| {
        if !group_alive(&s.procs, tgid) {
            return false;
        }
        if let Some(leader) = s.procs.get_mut(&tgid) {
            leader.thread.group_exit.get_or_insert(status);
        }
        true
    });
    if alive {
        end_threads(tgid, u32::MAX, status);
    }
    alive
}

/// Creates a thread of the current group (`clone` with `CLONE_THREAD`):
/// it starts in ring 3 with `frame` (RAX already 0, RSP its stack), FS base
/// `fs_base`, the creator's signal mask and actions, and clear-tid word
/// `clear_tid`. Every allocation is fallible. `before_run` gets the new
/// tid before the thread is queued (another CPU may run it at once), with
/// no lock held: `clone` writes the tid words there, so the thread never
/// sees them unset (musl's `pthread_self()->tid` is the parent-tid word).
pub fn spawn_thread(
    frame: &TrapFrame,
    fs_base: u64,
    clear_tid: u64,
    before_run: impl FnOnce(Pid),
) -> Result<Pid, SpawnError> {
    reap_adopted();
    let (aspace, tgid) = with_current(|p| (p.aspace.clone(), p.thread.tgid));
    let aspace = aspace.ok_or(SpawnError::OutOfMemory)?;
    let (name, brk) = with_current_group(|p| (kalloc::try_string(&p.name), p.brk));
    let mut process = new_user_process(
        name?,
        aspace,
        frame,
        fs_base,
        brk,
        crate::proc::fd::FdTable::empty(),
    )?;
    process.thread.tgid = tgid;
    process.thread.clear_child_tid = clear_tid;
    // Mask and actions as the creator's, nothing pending, no alternate
    // stack (Linux clears it for CLONE_VM). Set before the thread is
    // queued: another CPU may run it at once, and a copy written after
    // would undo its first `sigprocmask` (musl's start unblocks there).
    let mut sig = with_current(|p| p.sig.fork_copy());
    sig.set_altstack(crate::proc::signal::SigState::new().altstack());
    process.sig = sig;
    process.pid = reserve_pid();
    before_run(process.pid);
    let tid = queue_new(process)?;
    Ok(tid)
}

/// `execve` in a thread group: every other thread ends, and if the caller
/// is not the leader it takes the leader's pid and what the leader held
/// (descriptors, parent, process group), as Linux's `de_thread`. Call at
/// the point of no return.
pub fn de_thread() {
    let (me, tgid) = with(|s| {
        let me = current_here();
        let tgid = group_of(s, me);
        // Marked as a group on its way out while the others end, so that
        // one asked to die on another CPU ends only itself.
        if let Some(leader) = s.procs.get_mut(&tgid) {
            leader.thread.group_exit = Some(0);
        }
        (me, tgid)
    });
    end_threads(tgid, me, 0);
    with_current(|p| p.thread.clear_child_tid = 0);
    if me == tgid {
        with_current(|p| p.thread.group_exit = None);
        return;
    }
    enum Took {
        Retry,
        Gone,
        Leader(Box<Process>),
    }
    let old = loop {
        let took = x86_64::instructions::interrupts::without_interrupts(|| {
            with(|s| {
                // `end_threads` left it a zombie off every CPU, or it ended
                // itself and its CPU may still be leaving its stack.
                match s.procs.get(&tgid) {
                    None => return Took::Gone,
                    Some(l) if l.on_cpu.load(Ordering::SeqCst) => return Took::Retry,
                    Some(_) => {}
                }
                let Some(mut leader) = s.procs.remove(&tgid) else {
                    return Took::Gone;
                };
                let Some(mut t) = s.procs.remove(&me) else {
                    s.procs.insert(leader);
                    return Took::Gone;
                };
                core::mem::swap(&mut t.fds, &mut leader.fds);
                core::mem::swap(&mut t.name, &mut leader.name);
                t.brk = leader.brk;
                t.ppid = leader.ppid;
                t.pgid = leader.pgid;
                t.sid = leader.sid;
                t.adopted = leader.adopted;
                t.oom_score_adj = leader.oom_score_adj;
                t.pid = tgid;
                cpus::here().current.store(tgid, Ordering::SeqCst);
                crate::mm::psi::exit(me, true);
                crate::mm::psi::wake(tgid);
                // Two records out, one back in: no allocation.
                s.procs.insert(t);
                Took::Leader(leader)
            })
        });
        match took {
            Took::Retry => core::hint::spin_loop(),
            Took::Gone => break None,
            Took::Leader(l) => break Some(l),
        }
    };
    if let Some(mut leader) = old {
        // A zombie that never runs again, off every CPU: nobody is on its
        // stack.
        leader.free_kernel_stack();
    }
}
