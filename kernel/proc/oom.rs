//! The out-of-memory killer (Linux's `mm/oom_kill.c`, simplified): when a
//! user page finds no frame and nothing else can free one, kill the
//! process whose death gives back the most memory, not the one that
//! happened to fault.
//!
//! - **Badness** ([`reclaimcore::oom`]): resident + swapped + page-table
//!   pages, moved by the process's `oom_score_adj`; never the kernel thread
//!   nor a kernel thread (kswapd: no memory of its own, and -1000), never a
//!   process at -1000, never one already dying.
//! - **Report** like Linux's: who invoked the killer, the task table
//!   (`[  pid  ]   total_vm      rss pgtables_bytes swapents oom_score_adj
//!   name`, memory in pages), then `Out of memory: Killed process 42 (hog)
//!   total-vm:...kB, anon-rss:...kB, file-rss:...kB, pgtables:...kB
//!   oom_score_adj:0`.
//! - **The kill**: SIGKILL through [`sched::kill`], wherever the victim is.
//!   Every thread of the victim ends itself (woken from any wait, asked by
//!   IPI if it runs on another CPU) on its way out of the kernel while the
//!   killer waits; only a stopped one is ended at once. Its address space
//!   is dropped and every frame comes back. Other processes sharing that
//!   address space (`clone(CLONE_VM)`) die with it.
//! - **One victim at a time** (Linux's `tsk_is_oom_victim` and
//!   `MMF_OOM_SKIP`): until the victim's address space is torn down and
//!   its frames are back ([`aspace::teardown_awaited`]; someone else may
//!   hold the last reference, e.g. the shell inspecting it, and the
//!   teardown then runs in that thread, maybe on another CPU), faults
//!   that run out wait a tick and try again instead of killing a second
//!   process; after [`VICTIM_WAIT_TICKS`] the killer gives up on it.
//! - **One killer at a time** (Linux's `oom_lock`): a process that runs out
//!   while another is choosing waits a tick and faults again.
//! - The faulting process then faults again; it dies itself only if it is
//!   the victim (in a system call's user copy: the copy fails with EFAULT
//!   and SIGKILL is delivered when the call returns).
//!
//! A failed allocation while free memory is well above the user reserve
//! is not a shortage (failure injection, `fail_page_alloc`): the fault
//! fails as before, killing the faulting process, and nothing else dies.
//!
//! - **Killed while it waits here**: the faulting thread may sleep in the
//!   killer (one killer at a time, a victim still exiting) inside a system
//!   call that holds references (`mlock`'s populate loop holds its own
//!   address space). A SIGKILL then wakes it and lets it end itself, as it
//!   does every thread that is not stopped (`thread::end_threads`); its
//!   wait here ends on `sched::kill_pending`. Ended from outside, its
//!   kernel stack and what it held would never be released (on 2 CPUs
//!   `make fuzz` lost a whole `MAP_LOCKED` runaway process that way).
//!
//! Locking: called from the page-fault handler with no lock held (the
//! faulting address space's lock is released first). Other address spaces
//! are only *tried* ([`try_lock_irq_off`]); a busy one is let go, and no
//! reference to it is kept, before yielding to its holder: a process
//! killed while it waits must not pin someone else's memory on its stack.

use alloc::sync::{Arc, Weak};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use reclaimcore::oom::{self as policy, Candidate, Chooser};
use vmcore::fault::FaultMode;

use super::sched::{self, Pid, Process};
use crate::arch::sync::{try_lock_irq_off, IrqMutex};
use crate::mm::aspace::{self, AddressSpace};
use crate::mm::fault::OomVerdict;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::{frames, vmstat};
use crate::time::TICK_HZ;

/// How long a victim may take to give its memory back before the killer
/// may choose another (1 s).
pub const VICTIM_WAIT_TICKS: u64 = TICK_HZ;

/// The wait in force: [`VICTIM_WAIT_TICKS`] unless a test changed it.
static VICTIM_WAIT: AtomicU64 = AtomicU64::new(VICTIM_WAIT_TICKS);

/// Sets how long the killer waits for a victim's memory (tests of the
/// wait itself, whose steps a loaded host may stretch past a second of a
/// debug kernel: tearing down 140 MiB alone takes 0.3 s there).
pub fn set_victim_wait_ticks(ticks: u64) {
    VICTIM_WAIT.store(ticks, Ordering::Relaxed);
}

fn victim_wait_ticks() -> u64 {
    VICTIM_WAIT.load(Ordering::Relaxed)
}

/// A failed user allocation with more free frames than the user reserve
/// plus this many is not a shortage (an injected failure).
const SHORTAGE_SLACK: u64 = 64;
/// Attempts at another process's address-space lock (yielding between)
/// before the table shows it as unknown and the killer passes it over.
const LOCK_TRIES: usize = 20;
/// After those, the killer's own table sleeps a tick between this many
/// more attempts: on several CPUs a process faulting on another CPU holds
/// its lock most of the time, and yields alone passed over the runaway
/// process itself, killing an innocent one (found by `make fuzz` on 2
/// CPUs). Its fault lets go once it runs out of memory too.
const LOCK_SLEEPS: usize = 20;
const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

type Space = spin::Mutex<AddressSpace>;

struct Victim {
    pid: Pid,
    /// Its address space's id, awaited ([`aspace::await_teardown`]) until
    /// every frame is back.
    space: u64,
    /// Tick after which the killer stops waiting for it.
    deadline: u64,
}

struct Killer {
    /// The process choosing a victim now.
    owner: Option<Pid>,
    victim: Option<Victim>,
}

/// A leaf lock: nothing is taken under it (the scheduler is asked before
/// or after).
static KILLER: IrqMutex<Killer> = IrqMutex::new(Killer {
    owner: None,
    victim: None,
});

/// A process's memory as the killer counts it, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every region's size.
    pub total_vm: u64,
    /// Resident anonymous pages (the shared zero page included, as `ps`
    /// counts it).
    pub anon: u64,
    /// Resident page-cache pages (ramdisk files, shared anonymous memory).
    pub file: u64,
    /// Page-table pages of the user half.
    pub pgtables: u64,
    /// Pages out in swap.
    pub swapents: u64,
}

impl Usage {
    pub fn rss(&self) -> u64 {
        self.anon + self.file
    }
}

fn usage_of(a: &mut AddressSpace) -> Usage {
    let (anon, file) = a.resident_pages();
    Usage {
        total_vm: a.vmas().iter().map(|v| v.len() / PAGE_SIZE).sum(),
        anon,
        file,
        pgtables: a.page_table_pages() as u64,
        swapents: a.swap_pages(),
    }
}

/// Measures process `pid`'s memory; `None` if it has none (a zombie, the
/// kernel thread) or its address space stayed locked (see the module's
/// locking note).
pub fn usage(pid: Pid) -> Option<Usage> {
    usage_tries(pid, 0)
}

/// [`usage`], sleeping a tick between up to `sleeps` more attempts (the
/// killer's table: it may sleep).
fn usage_tries(pid: Pid, sleeps: usize) -> Option<Usage> {
    measure(pid, sleeps).map(|m| m.usage)
}

/// What the killer's table learns of one process: its memory, and which
/// address space that was (without keeping it alive).
struct Measured {
    usage: Usage,
    memory: Weak<Space>,
    id: u64,
}

/// [`usage_tries`], with the address space measured.
fn measure(pid: Pid, sleeps: usize) -> Option<Measured> {
    if pid == 0 {
        // Pid 0 may be borrowing a process's address space; it owns none.
        return None;
    }
    for attempt in 0..LOCK_TRIES + sleeps {
        let aspace = sched::with_process(pid, |p| p.aspace.clone()).flatten()?;
        let measured = try_lock_irq_off(&aspace).map(|mut a| Measured {
            usage: usage_of(&mut a),
            memory: Arc::downgrade(&aspace),
            id: a.id(),
        });
        // Let go before yielding (and if this was the last reference, the
        // space goes now, with no lock held).
        drop(aspace);
        if measured.is_some() {
            return measured;
        }
        if attempt < LOCK_TRIES {
            sched::yield_now();
        } else {
            sched::sleep_ticks(1);
        }
    }
    None
}

/// RAM + swap in pages: what `oom_score_adj` is thousandths of.
fn total_pages() -> u64 {
    frames::with(|m| m.buddy.managed_pages()) + crate::mm::swap::usage().0
}

/// A process name cut to Linux's `TASK_COMM_LEN` (15 bytes), copied under
/// the scheduler lock without allocating.
#[derive(Clone, Copy)]
struct Comm {
    bytes: [u8; 15],
    len: usize,
}

impl Comm {
    fn of(name: &str) -> Comm {
        let mut len = name.len().min(15);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; 15];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        Comm { bytes, len }
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("?"))
    }
}

/// What the scan copies of one process.
#[derive(Clone, Copy)]
struct Task {
    pid: Pid,
    comm: Comm,
    adj: i16,
    dying: bool,
    has_memory: bool,
}

impl Task {
    fn of(p: &Process) -> Task {
        Task {
            pid: p.pid,
            comm: Comm::of(&p.name),
            adj: p.oom_score_adj,
            dying: p.dying(),
            has_memory: p.pid != 0 && !p.is_kernel_thread() && p.aspace.is_some(),
        }
    }

    fn candidate(&self, u: &Usage) -> Candidate {
        Candidate {
            pid: self.pid,
            rss: u.rss(),
            swapents: u.swapents,
            pgtables: u.pgtables,
            adj: self.adj,
            dying: self.dying,
        }
    }
}

/// What the killer does after its lock is released.
enum Step {
    Retry,
    /// A victim is still exiting, or another process is choosing: sleep a
    /// tick, then fault again.
    Wait,
    Fail,
}

/// The OOM killer's entry point (installed as `mm::fault`'s OOM hook):
/// a fault in mode `mode` by the current process found no frame.
pub fn out_of_memory(mode: FaultMode) -> OomVerdict {
    if sched::kill_pending() {
        // Already chosen (inside a system call): its copy fails, and it
        // dies when the call returns.
        return OomVerdict::Fail;
    }
    let me = sched::current_pid();
    if !claim(me) {
        sched::sleep_ticks(1);
        return OomVerdict::Retry;
    }
    let step = kill_something(me, mode);
    KILLER.lock().owner = None;
    match step {
        Step::Retry => OomVerdict::Retry,
        Step::Wait => {
            sched::sleep_ticks(1);
            OomVerdict::Retry
        }
        Step::Fail => OomVerdict::Fail,
    }
}

/// Becomes the one process choosing a victim; false if a live one already
/// is (an owner killed while it waited does not keep the killer).
fn claim(me: Pid) -> bool {
    loop {
        let owner = KILLER.lock().owner;
        if let Some(other) = owner {
            let alive = sched::with_process(other, |p| !p.dying()).unwrap_or(false);
            if other != me && alive {
                return false;
            }
        }
        let mut killer = KILLER.lock();
        if killer.owner == owner {
            killer.owner = Some(me);
            return true;
        }
    }
}

/// The last victim if its memory is still on its way back (and the wait
/// has not run out).
fn victim_exiting() -> Option<Pid> {
    let mut killer = KILLER.lock();
    let victim = killer.victim.as_ref()?;
    if aspace::teardown_awaited(victim.space) && crate::time::ticks() < victim.deadline {
        return Some(victim.pid);
    }
    let done = killer.victim.take();
    drop(killer);
    if let Some(v) = done {
        if aspace::teardown_awaited(v.space) {
            crate::kprintln!(
                "oom: process {} has not given its memory back after {} ms: choosing another",
                v.pid,
                victim_wait_ticks() * 1000 / TICK_HZ
            );
        }
    }
    None
}

fn memory_short() -> bool {
    frames::free_pages() <= frames::user_reserve() + SHORTAGE_SLACK
}

fn kill_something(me: Pid, mode: FaultMode) -> Step {
    if let Some(victim) = victim_exiting() {
        return if victim == me { Step::Fail } else { Step::Wait };
    }
    if !memory_short() {
        // Not a shortage (an injected failure): the fault fails as it
        // always did, killing the faulting process in user mode.
        if mode == FaultMode::User {
            vmstat::OOM_KILL.inc();
        }
        return Step::Fail;
    }
    let total = total_pages();
    let (me_comm, me_adj) = sched::with_current(|p| (Comm::of(&p.name), p.oom_score_adj));
    crate::kprintln!(
        "{me_comm} invoked oom-killer: order=0, oom_score_adj={me_adj} ({})",
        match mode {
            FaultMode::User => "page fault",
            FaultMode::Kernel => "system call's user copy",
        }
    );
    crate::kprintln!(
        "Mem-Info: free:{} reserve:{} total:{} swap:{} (pages)",
        frames::free_pages(),
        frames::user_reserve(),
        frames::with(|m| m.buddy.managed_pages()),
        crate::mm::swap::usage().0
    );
    crate::kprintln!("Tasks state (memory values in pages):");
    crate::kprintln!("[  pid  ]   total_vm      rss pgtables_bytes swapents oom_score_adj name");
    let mut chooser = Chooser::new();
    let mut chosen: Option<(Task, Measured)> = None;
    let mut after = 0;
    while let Some(task) = sched::with_next_process(after, Task::of) {
        after = task.pid;
        if !task.has_memory {
            continue;
        }
        let Some(m) = measure(task.pid, LOCK_SLEEPS) else {
            crate::kprintln!(
                "[{:>7}] {:>10} {:>8} {:>14} {:>8} {:>13} {} (address space busy: passed over)",
                task.pid,
                "?",
                "?",
                "?",
                "?",
                task.adj,
                task.comm
            );
            continue;
        };
        let u = m.usage;
        crate::kprintln!(
            "[{:>7}] {:>10} {:>8} {:>14} {:>8} {:>13} {}",
            task.pid,
            u.total_vm,
            u.rss(),
            u.pgtables * PAGE_SIZE,
            u.swapents,
            task.adj,
            task.comm
        );
        chooser.consider(task.candidate(&u), total);
        if chooser.chosen().map(|(_, c)| c.pid) == Some(task.pid) {
            chosen = Some((task, m));
        }
    }
    let Some((
        victim,
        Measured {
            usage: u,
            memory,
            id,
        },
    )) = chosen
    else {
        crate::kprintln!("Out of memory and no killable processes");
        return match mode {
            FaultMode::User => {
                crate::kprintln!("Out of memory: the faulting process {me} ({me_comm}) dies");
                vmstat::OOM_KILL.inc();
                Step::Fail
            }
            FaultMode::Kernel => Step::Fail,
        };
    };
    // Held until the victim is awaited, so its teardown cannot end
    // before the wait begins (it would then never end the wait).
    let Some(memory) = memory.upgrade() else {
        // It exited while the table was made: its memory is back, or on
        // its way. (Left: if its teardown is still running elsewhere, the
        // next fault may find memory short and choose again. Only a victim
        // exiting by itself during the scan opens this.)
        return Step::Retry;
    };
    crate::kprintln!(
        "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, \
         pgtables:{}kB oom_score_adj:{}",
        victim.pid,
        victim.comm,
        u.total_vm * KB_PER_PAGE,
        u.anon * KB_PER_PAGE,
        u.file * KB_PER_PAGE,
        u.pgtables * KB_PER_PAGE,
        victim.adj
    );
    vmstat::OOM_KILL.inc();
    // Awaited whoever it is, the faulting process too: until its memory
    // is back, other processes' faults wait instead of choosing again.
    // (A faulting victim was not awaited: on 2 CPUs a batch populating a
    // 4 GB shared mapping chose itself in its user copy, and while it
    // returned, exited and freed 60 000 pages, the fuzzer's parent
    // faulted on the other CPU, found memory short and no victim, and
    // was killed too.)
    aspace::await_teardown(id);
    KILLER.lock().victim = Some(Victim {
        pid: victim.pid,
        space: id,
        deadline: crate::time::ticks() + victim_wait_ticks(),
    });
    let mine = sched::with_current(|p| p.aspace.as_ref().map(Arc::as_ptr));
    kill_sharers(Arc::as_ptr(&memory), me);
    if victim.pid == me || mine == Some(Arc::as_ptr(&memory)) {
        // The faulting process is the victim: a user fault kills it now
        // (the fault path does), a user copy fails and SIGKILL waits for
        // the end of the system call.
        if mode == FaultMode::Kernel && me != 0 {
            sched::kill_current_later();
        }
        return Step::Fail;
    }
    sched::kill(victim.pid);
    // Usually the last reference after the kill: the teardown then runs
    // here, with no lock held, and the wait ends before it began.
    drop(memory);
    Step::Retry
}

/// Kills every process other than `me` whose address space is `space`
/// (the victim and the processes sharing its memory).
fn kill_sharers(space: *const Space, me: Pid) {
    while let Some(pid) = sched::find_pid(|p| {
        p.pid != 0
            && p.pid != me
            && !p.dying()
            && p.aspace.as_ref().is_some_and(|a| Arc::as_ptr(a) == space)
    }) {
        sched::kill(pid);
    }
}

/// Why an `oom_score_adj` could not be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjError {
    /// No such live process.
    NoProcess,
    /// The kernel thread (pid 0) and kernel threads (kswapd) are never
    /// killed; they have no score.
    Kernel,
    /// Outside -1000..=1000 (Linux: EINVAL).
    OutOfRange,
}

impl fmt::Display for AdjError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            AdjError::NoProcess => "no such process",
            AdjError::Kernel => "a kernel thread: the OOM killer never chooses it",
            AdjError::OutOfRange => "oom_score_adj must be between -1000 and 1000",
        })
    }
}

/// Sets process `pid`'s `oom_score_adj` (what Linux's
/// `/proc/PID/oom_score_adj` takes); returns the old value.
pub fn set_score_adj(pid: Pid, value: i64) -> Result<i16, AdjError> {
    if pid == 0 {
        return Err(AdjError::Kernel);
    }
    if sched::with_process(pid, |p| p.is_kernel_thread()) == Some(true) {
        return Err(AdjError::Kernel);
    }
    let value = policy::check_adj(value).map_err(|_| AdjError::OutOfRange)?;
    sched::with_process(pid, |p| {
        (!p.dying()).then(|| core::mem::replace(&mut p.oom_score_adj, value))
    })
    .flatten()
    .ok_or(AdjError::NoProcess)
}

/// Process `pid`'s `oom_score_adj`.
pub fn score_adj(pid: Pid) -> Option<i16> {
    sched::with_process(pid, |p| p.oom_score_adj)
}

/// What `/proc/PID/oom_score` would say of `pid` now: its badness points
/// and the 0..=2000 score (`None` points: the killer would pass it over),
/// with the memory they come from.
pub fn score(pid: Pid) -> Option<(Option<i64>, u64, Usage)> {
    let task = sched::with_process(pid, |p| Task::of(p))?;
    let u = if task.has_memory {
        usage(pid)?
    } else {
        Usage::default()
    };
    let c = task.candidate(&u);
    let total = total_pages();
    let killable = task.has_memory && !task.dying;
    let points = policy::badness(&c, total).filter(|_| killable);
    let score = if killable {
        policy::oom_score(&c, total)
    } else {
        0
    };
    Some((points, score, u))
}

/// The pid of the last victim whose memory is still on its way back, if
/// any (tests and the shell); forgets a victim whose memory is back.
pub fn victim_exiting_now() -> Option<Pid> {
    let mut killer = KILLER.lock();
    let v = killer.victim.as_ref()?;
    if aspace::teardown_awaited(v.space) {
        return Some(v.pid);
    }
    killer.victim = None;
    None
}

pub fn init() {
    crate::mm::fault::set_oom_hook(out_of_memory);
}
