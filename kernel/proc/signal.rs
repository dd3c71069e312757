//! POSIX signals (Linux x86_64 ABI): per-process actions, blocked mask,
//! pending set and alternate stack ([`SigState`], a field of every
//! process), sending ([`send`], [`send_to_current`]), and delivery on the
//! way back to user mode ([`deliver`]: after every system call, interrupt
//! and exception from ring 3).
//!
//! Delivery runs a handler on a frame Linux's `setup_rt_frame` would build
//! (layout and rules in `usercore::signal`, tested on the host): the
//! interrupted registers and mask in a `ucontext_t`, a `siginfo_t`, the
//! FXSAVE image 64-byte aligned above them, and `sa_restorer` as the return
//! address, which calls `rt_sigreturn` ([`sigreturn`]) to resume. With no
//! handler the default action applies: terminate (with the core bit for
//! the "core" signals), stop until SIGCONT (the parent sees it with
//! `wait4(WUNTRACED)`, the continue with `WCONTINUED`), or nothing.
//! Process groups exist (`syscall::pgrp`: `kill(0 / -pgid)`), but not
//! Linux's orphaned-group rule: a stop is never discarded as "orphaned".
//!
//! Standard signals do not queue: one pending bit (and one `siginfo`) per
//! signal. Real-time ones (`SIGRTMIN`..=64) queue: every send is one entry
//! with its own `siginfo`, taken oldest first, at most the target's
//! `RLIMIT_SIGPENDING` (capped at [`SIGQUEUE_MAX`]) entries, allocated
//! fallibly: a full queue or no memory is EAGAIN for `rt_sigqueueinfo`,
//! and for `kill` (whose info is only "SI_USER from pid") the bit alone,
//! as Linux. The queue is freed when the process dies. Faults (SIGSEGV, SIGBUS, SIGILL,
//! SIGFPE) go to a handler when one is installed and the signal is not
//! blocked; otherwise the process dies as before (`user`).
//!
//! Interrupted sleeps: a signal that would be delivered wakes a process
//! blocked in `wait4`, `nanosleep`, a console `read`, `pause` or
//! `rt_sigsuspend` ([`interrupted`] is what those loops check); the call
//! returns `ERESTARTSYS` (wait4, read) or `ERESTARTNOHAND` (nanosleep,
//! pause, rt_sigsuspend), which [`deliver`] turns into `EINTR` when a
//! handler runs (for `ERESTARTSYS` only without `SA_RESTART`) or else
//! into a restart of the call (after a stop and SIGCONT, say).
//!
//! Locking: the state lives in the process table, under the scheduler
//! lock; every user copy happens outside it (a bounce buffer on the stack).

use core::sync::atomic::{AtomicU32, Ordering};

use usercore::signal::{
    self as abi, code, flags::*, num::*, InfoKind, SigInfo, StackT, UContext, SIG_DFL, SIG_IGN,
};

use alloc::vec::Vec;

use super::sched::{self, Pid};
use crate::arch::cpu::FpuState;
use crate::arch::trap::TrapFrame;
use crate::mm::kalloc;
use crate::mm::layout::USER_END;
use crate::mm::uaccess::{copy_from_user, copy_to_user};

pub use usercore::signal::num;

/// A `struct sigaction` as `rt_sigaction` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

const DEFAULT: Action = Action {
    handler: SIG_DFL,
    flags: 0,
    restorer: 0,
    mask: 0,
};

/// Signals posted and not yet taken, over all processes: a hint that lets
/// the return to user mode skip the scheduler lock when nothing waits.
static POSTED: AtomicU32 = AtomicU32::new(0);

/// The faults the kernel raises synchronously: taken before other signals.
const SYNCHRONOUS: u64 = abi::bit(SIGSEGV)
    | abi::bit(SIGBUS)
    | abi::bit(SIGILL)
    | abi::bit(SIGFPE)
    | abi::bit(SIGTRAP)
    | abi::bit(SIGSYS);

const STOP_SIGNALS: u64 =
    abi::bit(SIGSTOP) | abi::bit(SIGTSTP) | abi::bit(SIGTTIN) | abi::bit(SIGTTOU);

/// The most real-time signals one process may have queued, whatever its
/// `RLIMIT_SIGPENDING` says (each entry is heap memory: a full queue is a
/// few KiB, within the slab heap's size classes).
pub const SIGQUEUE_MAX: usize = 256;

/// Linux's `RLIMIT_SIGPENDING`.
pub const RLIMIT_SIGPENDING: u32 = 11;

/// A real-time signal found its queue full (or no memory for the entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

/// A process's signal state.
pub struct SigState {
    actions: [Action; abi::NSIG as usize],
    /// The blocked mask (never holds SIGKILL or SIGSTOP).
    pub blocked: u64,
    pending: u64,
    info: [Option<SigInfo>; abi::NSIG as usize],
    /// Queued real-time signals, oldest first (a pending real-time bit
    /// with no entry lost its info to a full queue).
    queue: Vec<SigInfo>,
    /// While `rt_sigtimedwait` waits, the mask it unblocked its set from:
    /// signals in it are not discarded as ignored (Linux's `real_blocked`).
    real_blocked: u64,
    /// `alarm`/`setitimer` timers (`itimer`).
    pub timers: super::itimer::Itimers,
    altstack: StackT,
    /// The mask `rt_sigsuspend` replaced, restored by the handler's
    /// `rt_sigreturn` (it goes in the frame) or after delivery.
    saved_mask: Option<u64>,
    /// Stopped by a stop signal, until SIGCONT.
    stopped: bool,
    /// A stop (`sig << 8 | 0x7f`) or continue (`0xffff`) the parent has not
    /// collected with `wait4(WUNTRACED / WCONTINUED)` yet.
    pub wait_report: Option<i32>,
}

impl Drop for SigState {
    fn drop(&mut self) {
        self.set_pending(0);
    }
}

impl SigState {
    pub const fn new() -> SigState {
        SigState {
            actions: [DEFAULT; abi::NSIG as usize],
            blocked: 0,
            pending: 0,
            info: [None; abi::NSIG as usize],
            queue: Vec::new(),
            real_blocked: 0,
            timers: super::itimer::Itimers::new(),
            altstack: StackT {
                sp: 0,
                flags: abi::ss::SS_DISABLE,
                size: 0,
            },
            saved_mask: None,
            stopped: false,
            wait_report: None,
        }
    }

    /// A forked child's: the same actions, mask and alternate stack,
    /// nothing pending, no timers.
    pub fn fork_copy(&self) -> SigState {
        SigState {
            actions: self.actions,
            blocked: self.blocked,
            pending: 0,
            info: [None; abi::NSIG as usize],
            queue: Vec::new(),
            real_blocked: 0,
            timers: super::itimer::Itimers::new(),
            altstack: self.altstack,
            saved_mask: None,
            stopped: false,
            wait_report: None,
        }
    }

    /// A new program (execve): handled signals go back to their default
    /// action, ignored ones stay ignored; the mask and pending set stay;
    /// the alternate stack is gone.
    pub fn on_exec(&mut self) {
        for a in &mut self.actions {
            *a = if a.handler == SIG_IGN {
                Action {
                    handler: SIG_IGN,
                    ..DEFAULT
                }
            } else {
                DEFAULT
            };
        }
        self.altstack = SigState::new().altstack;
        self.saved_mask = None;
    }

    fn set_pending(&mut self, new: u64) {
        let (old, now) = (self.pending.count_ones(), new.count_ones());
        if now > old {
            POSTED.fetch_add(now - old, Ordering::SeqCst);
        } else if old > now {
            POSTED.fetch_sub(old - now, Ordering::SeqCst);
        }
        self.pending = new;
    }

    /// Drops everything pending and stops the timers (the process is
    /// dying): the queue's memory goes back now, not at the reap.
    pub fn clear_pending(&mut self) {
        self.set_pending(0);
        self.info = [None; abi::NSIG as usize];
        self.queue = Vec::new();
        self.timers = super::itimer::Itimers::new();
    }

    /// Real-time signals queued (for tests and `/proc`).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn action(&self, sig: u8) -> Action {
        self.actions[sig as usize - 1]
    }

    fn ignored(&self, sig: u8) -> bool {
        let a = self.action(sig);
        a.handler == SIG_IGN
            || (a.handler == SIG_DFL
                && matches!(
                    abi::default_action(sig),
                    abi::Default::Ignore | abi::Default::Cont
                ))
    }

    /// Makes `sig` pending with `info`. Returns whether it can be
    /// delivered now (not blocked): then a sleeping process should wake.
    /// An ignored signal that is not blocked is discarded, as on Linux.
    pub fn post(&mut self, sig: u8, info: SigInfo) -> bool {
        self.post_limited(sig, info, SIGQUEUE_MAX).unwrap_or(false)
    }

    /// [`post`](Self::post) with at most `limit` real-time signals queued:
    /// `Err(QueueFull)` when a real-time signal with the sender's own info
    /// (not `SI_USER` or the kernel's) finds no room, as Linux's EAGAIN.
    pub fn post_limited(
        &mut self,
        sig: u8,
        info: SigInfo,
        limit: usize,
    ) -> Result<bool, QueueFull> {
        let b = abi::bit(sig);
        // A stop signal cancels a pending SIGCONT and the other way round.
        if sig == SIGCONT {
            self.set_pending(self.pending & !STOP_SIGNALS);
        } else if b & STOP_SIGNALS != 0 {
            self.set_pending(self.pending & !abi::bit(SIGCONT));
        }
        if (self.blocked | self.real_blocked) & b == 0 && self.ignored(sig) {
            return Ok(false);
        }
        if abi::is_realtime(sig) {
            let room = self.queue.len() < limit.min(SIGQUEUE_MAX)
                && kalloc::try_push(&mut self.queue, info).is_ok();
            if !room && info.code != code::SI_USER && info.code != code::SI_KERNEL {
                return Err(QueueFull);
            }
            // Without room a kill's signal is still pending, its info lost.
            self.set_pending(self.pending | b);
        } else if self.pending & b == 0 {
            self.info[sig as usize - 1] = Some(info);
            self.set_pending(self.pending | b);
        }
        Ok(self.blocked & b == 0)
    }

    /// Takes pending signal `sig` (whose bit is set) with its info.
    fn take(&mut self, sig: u8) -> SigInfo {
        let b = abi::bit(sig);
        if abi::is_realtime(sig) {
            let at = self.queue.iter().position(|i| i.signo == sig as i32);
            let info = at.map(|at| self.queue.remove(at));
            if !self.queue.iter().any(|i| i.signo == sig as i32) {
                self.set_pending(self.pending & !b);
            }
            return info.unwrap_or(SigInfo {
                signo: sig as i32,
                code: code::SI_USER,
                kind: InfoKind::Kill { pid: 0, uid: 0 },
            });
        }
        self.set_pending(self.pending & !b);
        self.info[sig as usize - 1].take().unwrap_or(SigInfo {
            signo: sig as i32,
            code: code::SI_KERNEL,
            kind: InfoKind::Kill { pid: 0, uid: 0 },
        })
    }

    /// `rt_sigtimedwait`: takes the first pending signal of `set` (faults
    /// first, then the lowest), blocked or not.
    pub fn take_from(&mut self, set: u64) -> Option<(u8, SigInfo)> {
        let ready = self.pending & set;
        let sig = abi::first(ready & SYNCHRONOUS).or_else(|| abi::first(ready))?;
        Some((sig, self.take(sig)))
    }

    /// `rt_sigtimedwait` starts waiting for `set`: its signals are
    /// unblocked meanwhile (so they wake the wait), not discarded.
    pub fn begin_wait(&mut self, set: u64) {
        self.real_blocked = self.blocked;
        self.blocked &= !set;
    }

    /// The wait is over: the mask it had comes back.
    pub fn end_wait(&mut self) {
        self.blocked = core::mem::take(&mut self.real_blocked);
    }

    /// `ppoll`/`pselect6`: `mask` is blocked for the wait; see
    /// [`end_temp_mask`](Self::end_temp_mask).
    pub fn temp_mask(&mut self, mask: u64) {
        self.suspend_mask(mask);
    }

    /// After a wait under [`temp_mask`](Self::temp_mask): unless a signal
    /// interrupted it, the old mask comes back now; if one did, it comes
    /// back after the handler (the frame holds it), as Linux's
    /// `restore_saved_sigmask_unless`.
    pub fn end_temp_mask(&mut self, interrupted: bool) {
        if !interrupted {
            if let Some(m) = self.saved_mask.take() {
                self.blocked = m;
            }
        }
    }

    /// Whether a signal is pending and not blocked.
    pub fn deliverable(&self) -> bool {
        self.pending & !self.blocked != 0
    }

    /// Takes the next deliverable signal: faults first, then the lowest.
    fn dequeue(&mut self) -> Option<(u8, SigInfo, Action)> {
        let ready = self.pending & !self.blocked;
        let sig = abi::first(ready & SYNCHRONOUS).or_else(|| abi::first(ready))?;
        let info = self.take(sig);
        Some((sig, info, self.action(sig)))
    }

    /// Replaces the action of `sig` (not SIGKILL/SIGSTOP: the caller
    /// checks), returning the old one. A signal now ignored is discarded.
    pub fn set_action(&mut self, sig: u8, new: Action) -> Action {
        let old = self.action(sig);
        self.actions[sig as usize - 1] = Action {
            mask: new.mask & !abi::UNBLOCKABLE,
            ..new
        };
        if self.ignored(sig) {
            self.set_pending(self.pending & !abi::bit(sig));
            self.info[sig as usize - 1] = None;
            self.queue.retain(|i| i.signo != sig as i32);
        }
        old
    }

    pub fn pending(&self) -> u64 {
        self.pending
    }

    pub fn altstack(&self) -> StackT {
        self.altstack
    }

    pub fn set_altstack(&mut self, s: StackT) {
        self.altstack = s;
    }

    /// `rt_sigsuspend`: blocks `mask` until a signal comes; the old mask
    /// comes back when its handler returns.
    pub fn suspend_mask(&mut self, mask: u64) {
        self.saved_mask = Some(self.blocked);
        self.blocked = mask & !abi::UNBLOCKABLE;
    }
}

impl Default for SigState {
    fn default() -> SigState {
        SigState::new()
    }
}

/// Why a signal could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such process (ESRCH).
    NoProcess,
    /// The kernel's own threads take no signals (EPERM).
    NotPermitted,
    /// A real-time signal's queue is full (EAGAIN).
    QueueFull,
}

/// The info of a signal sent by process `from` (`si_code` `code`).
pub fn user_info(sig: u8, from: Pid, code: i32) -> SigInfo {
    SigInfo {
        signo: sig as i32,
        code,
        kind: InfoKind::Kill {
            pid: from as i32,
            uid: 0,
        },
    }
}

/// Sends `sig` to process `pid` from the kernel (`si_code` `SI_KERNEL`):
/// what the pipe code (SIGPIPE), the console (SIGINT) and the like call.
/// Callable from interrupt handlers (nothing allocates), except with
/// SIGKILL for the current process, which ends it at once.
pub fn send(pid: Pid, sig: u8) -> Result<(), SendError> {
    send_info(pid, sig, user_info(sig, 0, code::SI_KERNEL))
}

/// Sends `sig` to the current process (e.g. SIGPIPE from `write`); it is
/// delivered when the system call returns.
pub fn send_to_current(sig: u8) {
    let _ = send(sched::current_pid(), sig);
}

/// Sends `sig` with `info` to process `pid`: one of its threads that does
/// not block it takes it (`sched::thread::signal_target`). SIGKILL kills
/// at once (for the current process: does not return). A zombie takes
/// signals and drops them.
pub fn send_info(pid: Pid, sig: u8, info: SigInfo) -> Result<(), SendError> {
    let target = if sig == SIGKILL {
        pid
    } else {
        sched::thread::signal_target(pid, sig)
    };
    send_info_thread(target, sig, info)
}

/// [`send_info`] to thread `pid` itself (`tgkill`).
pub fn send_info_thread(pid: Pid, sig: u8, info: SigInfo) -> Result<(), SendError> {
    let kernel = sched::with_process(pid, |p| p.pid == 0 || p.is_kernel_thread())
        .ok_or(SendError::NoProcess)?;
    if kernel {
        return Err(SendError::NotPermitted);
    }
    if sig == SIGKILL {
        sched::kill(pid);
        return Ok(());
    }
    if sig == SIGCONT {
        continue_process(pid);
    }
    let limit = if abi::is_realtime(sig) {
        queue_limit(pid)
    } else {
        SIGQUEUE_MAX
    };
    sched::with_process_wake(pid, |p| {
        if p.dying() {
            return (Ok(()), false);
        }
        match p.sig.post_limited(sig, info, limit) {
            Ok(wake) => (Ok(()), wake),
            Err(QueueFull) => (Err(SendError::QueueFull), false),
        }
    })
    .ok_or(SendError::NoProcess)?
}

/// How many real-time signals process `pid` may have queued: its
/// `RLIMIT_SIGPENDING` (per process here, per user on Linux), at most
/// [`SIGQUEUE_MAX`].
fn queue_limit(pid: Pid) -> usize {
    let aspace = sched::with_process(pid, |p| p.aspace.clone()).flatten();
    aspace.map_or(SIGQUEUE_MAX, |a| {
        let cur = a
            .lock()
            .rlimits()
            .get(RLIMIT_SIGPENDING)
            .map_or(u64::MAX, |r| r.cur);
        cur.min(SIGQUEUE_MAX as u64) as usize
    })
}

/// Whether process `pid` is stopped by a signal.
pub fn is_stopped(pid: Pid) -> bool {
    sched::with_process(pid, |p| p.sig.stopped).unwrap_or(false)
}

/// SIGCONT: a stopped process runs again (its parent hears of it).
fn continue_process(pid: Pid) {
    let resumed = sched::with_process(pid, |p| {
        let was = core::mem::take(&mut p.sig.stopped);
        if was {
            p.sig.wait_report = Some(0xffff);
        }
        (was, p.ppid)
    });
    if let Some((true, ppid)) = resumed {
        sched::resume_stopped(pid);
        tell_parent(ppid, pid, code::CLD_CONTINUED, SIGCONT as i32);
    }
}

/// SIGCHLD for a stop or continue (not with `SA_NOCLDSTOP`), and a wake
/// for a parent in `wait4`.
fn tell_parent(ppid: Pid, child: Pid, code: i32, status: i32) {
    if ppid == 0 {
        return;
    }
    sched::with_process_wake(ppid, |pp| {
        let waiting = pp.state == sched::State::Blocked(sched::Block::Child);
        if pp.sig.action(SIGCHLD).flags & SA_NOCLDSTOP != 0 {
            return ((), waiting);
        }
        let info = SigInfo {
            signo: SIGCHLD as i32,
            code,
            kind: InfoKind::Child {
                pid: child as i32,
                status,
            },
        };
        let signalled = pp.sig.post(SIGCHLD, info);
        ((), waiting || signalled)
    });
}

/// The default action of a stop signal: the current process stops until
/// SIGCONT (or dies by SIGKILL meanwhile); its parent can see it with
/// `wait4(WUNTRACED)`.
fn stop_current(sig: u8) {
    let (me, ppid) = sched::with_current(|p| {
        p.sig.stopped = true;
        p.sig.wait_report = Some(((sig as i32) << 8) | 0x7f);
        (p.pid, p.ppid)
    });
    tell_parent(ppid, me, code::CLD_STOPPED, sig as i32);
    while sched::with_current(|p| p.sig.stopped) {
        sched::block_unless(sched::Block::Stopped, || {
            !sched::with_current(|p| p.sig.stopped)
        });
    }
}

/// A stop or continue report of a child matching `pid` (as `wait4`'s:
/// -1 any), taken: `(child, status)`.
pub fn take_wait_report(pid: i64, stopped: bool, continued: bool) -> Option<(Pid, i32)> {
    let child = wait_report_child(pid, stopped, continued)?;
    let status = sched::with_process(child, |p| p.sig.wait_report.take())??;
    Some((child, status))
}

/// The child whose report [`take_wait_report`] would take.
pub fn wait_report_child(pid: i64, stopped: bool, continued: bool) -> Option<Pid> {
    let me = sched::current_pid();
    let wanted = |st: i32| (stopped && st & 0xff == 0x7f) || (continued && st == 0xffff);
    sched::find_pid(|p| {
        p.ppid == me
            && p.pid != me
            && sched::wait_selects(p, pid)
            && !p.dying()
            && p.sig.wait_report.is_some_and(wanted)
    })
}

/// Whether the current process has a signal to take, or is to die (a
/// SIGKILL pending: a kill of its group, the OOM killer): blocking calls
/// stop waiting when it does, and a dying thread ends itself on its way
/// out of the kernel, dropping what its system call held.
pub fn interrupted() -> bool {
    sched::kill_pending()
        || (POSTED.load(Ordering::SeqCst) != 0 && sched::with_current(|p| p.sig.deliverable()))
}

/// Whether a fault raising `sig` has a handler to go to (installed and
/// not blocked); if not, the fault kills as its default action.
pub fn catches(sig: u8) -> bool {
    sched::with_current(|p| {
        let h = p.sig.action(sig).handler;
        p.pid != 0 && h != SIG_DFL && h != SIG_IGN && p.sig.blocked & abi::bit(sig) == 0
    })
}

/// Posts a fault's signal to the current process, delivered on the way out
/// of the trap (the caller checked [`catches`]).
pub fn post_fault(sig: u8, code: i32, addr: u64) {
    let info = SigInfo {
        signo: sig as i32,
        code,
        kind: InfoKind::Fault { addr },
    };
    sched::with_current(|p| p.sig.post(sig, info));
}

/// The SIGCHLD info for a child `pid` that ended with wait status
/// `status`.
pub fn child_info(pid: Pid, status: i32) -> SigInfo {
    let (code, value) = if status & 0x7f == 0 {
        (code::CLD_EXITED, (status >> 8) & 0xff)
    } else if status & 0x80 != 0 {
        (code::CLD_DUMPED, status & 0x7f)
    } else {
        (code::CLD_KILLED, status & 0x7f)
    };
    SigInfo {
        signo: SIGCHLD as i32,
        code,
        kind: InfoKind::Child {
            pid: pid as i32,
            status: value,
        },
    }
}

/// Internal error values a blocking call returns when a signal interrupted
/// it (never seen by user space): restart it unless a handler without
/// `SA_RESTART` runs.
const ERESTARTSYS: u64 = (-512i64) as u64;
/// Restart only if no handler runs (`pause`-like calls use EINTR instead).
const ERESTARTNOHAND: u64 = (-514i64) as u64;
const EINTR: u64 = (-4i64) as u64;

const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_DF: u64 = 1 << 10;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_AC: u64 = 1 << 18;

/// Kills the current process for a signal frame it cannot use (a frame
/// that does not fit, a bad stack, a bad `rt_sigreturn` frame).
fn force_segv(why: &str) -> ! {
    sched::with_current(|p| crate::kprintln!("[pid {} {}] {why}: killed", p.pid, p.name));
    sched::exit_current(abi::death_status(SIGSEGV))
}

fn regs_of(frame: &TrapFrame) -> abi::Regs {
    abi::Regs {
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rdi: frame.rdi,
        rsi: frame.rsi,
        rbp: frame.rbp,
        rbx: frame.rbx,
        rdx: frame.rdx,
        rax: frame.rax,
        rcx: frame.rcx,
        rsp: frame.rsp,
        rip: frame.rip,
        eflags: frame.rflags,
        cs: frame.cs as u16,
        ss: frame.ss as u16,
        err: frame.error_code,
        trapno: frame.vector,
        oldmask: 0,
        cr2: 0,
    }
}

/// Builds the frame for `sig` on the user stack and points `frame` at the
/// handler. Err if the frame cannot be written (the caller kills).
fn setup_frame(frame: &mut TrapFrame, sig: u8, info: &SigInfo, act: &Action) -> Result<(), ()> {
    if act.flags & SA_RESTORER == 0 || act.restorer >= USER_END || act.handler >= USER_END {
        // x86_64 Linux has no default trampoline: no restorer, no frame.
        return Err(());
    }
    let (alt, blocked, saved) =
        sched::with_current(|p| (p.sig.altstack, p.sig.blocked, p.sig.saved_mask.take()));
    let oldmask = saved.unwrap_or(blocked);
    let at = abi::place_frame(frame.rsp, act.flags & SA_ONSTACK != 0, &alt).ok_or(())?;
    let mut fpu = FpuState::initial();
    fpu.save();
    let mut regs = regs_of(frame);
    regs.oldmask = oldmask;
    if let InfoKind::Fault { addr } = info.kind {
        if sig == SIGSEGV || sig == SIGBUS {
            regs.cr2 = addr;
        }
    }
    let uc = UContext {
        flags: abi::UC_FLAGS,
        link: 0,
        stack: abi::altstack_view(&alt, frame.rsp),
        regs,
        fpstate: 0,
        sigmask: oldmask,
    };
    let mut buf = [0u8; abi::MAX_FRAME_BYTES];
    let len = (at.end - at.frame) as usize;
    abi::write_frame(&mut buf, &at, act.restorer, &uc, info, fpu.bytes());
    copy_to_user(at.frame, &buf[..len]).map_err(|_| ())?;
    frame.rsp = at.frame;
    frame.rip = act.handler;
    frame.rdi = sig as u64;
    frame.rsi = at.frame + abi::INFO_OFFSET;
    frame.rdx = at.frame + abi::UC_OFFSET;
    frame.rax = 0;
    frame.rflags &= !(RFLAGS_TF | RFLAGS_DF | RFLAGS_RF | RFLAGS_AC);
    sched::with_current(|p| {
        let s = &mut p.sig;
        let mut add = act.mask;
        if act.flags & SA_NODEFER == 0 {
            add |= abi::bit(sig);
        }
        s.blocked = (oldmask | add) & !abi::UNBLOCKABLE;
        if act.flags & SA_RESETHAND != 0 {
            s.actions[sig as usize - 1] = DEFAULT;
        }
        if at.entering_altstack && alt.flags & abi::ss::SS_AUTODISARM != 0 {
            s.altstack = SigState::new().altstack;
        }
    });
    // The handler starts with a clean FPU, as on Linux.
    FpuState::initial().restore();
    Ok(())
}

/// Delivers the current process's deliverable signals before it returns
/// to user mode with `frame`: handlers get frames (nested, one per
/// signal), default actions apply. `syscall` is the number of the system
/// call returning, for restarts.
pub fn deliver(frame: &mut TrapFrame, syscall: Option<u64>) {
    let restarting = syscall.is_some() && matches!(frame.rax, ERESTARTSYS | ERESTARTNOHAND);
    if POSTED.load(Ordering::SeqCst) == 0 && !restarting {
        return;
    }
    let mut restart = if restarting { syscall } else { None };
    loop {
        let next = sched::with_current(|p| {
            if p.pid == 0 || p.is_kernel_thread() {
                None
            } else {
                p.sig.dequeue()
            }
        });
        let Some((sig, info, act)) = next else { break };
        match act.handler {
            SIG_IGN => continue,
            SIG_DFL => match abi::default_action(sig) {
                abi::Default::Term | abi::Default::Core => {
                    sched::exit_current(abi::death_status(sig))
                }
                abi::Default::Stop => stop_current(sig),
                _ => continue,
            },
            _ => {
                if let Some(nr) = restart.take() {
                    if frame.rax == ERESTARTSYS && act.flags & SA_RESTART != 0 {
                        frame.rax = nr;
                        frame.rip -= 2;
                    } else {
                        frame.rax = EINTR;
                    }
                }
                if setup_frame(frame, sig, &info, &act).is_err() {
                    force_segv("signal frame could not be written");
                }
            }
        }
    }
    if let Some(nr) = restart {
        // No handler ran: the call starts again.
        frame.rax = nr;
        frame.rip -= 2;
    }
    sched::with_current(|p| {
        if let Some(mask) = p.sig.saved_mask.take() {
            p.sig.blocked = mask;
        }
    });
}

/// The trap path's return-to-user hook.
pub fn on_return_to_user(frame: &mut TrapFrame) {
    // SMP: a SIGKILL for a process that was running on another CPU.
    sched::deliver_pending_kill();
    deliver(frame, None);
}

/// `rt_sigreturn`: resumes the context saved in the frame at the user RSP
/// (the handler's `ret` popped `pretcode`). A frame that cannot be read or
/// holds an impossible context kills the process with SIGSEGV. Returns the
/// restored RAX (the dispatcher writes it back).
pub fn sigreturn(frame: &mut TrapFrame) -> u64 {
    let mut bytes = [0u8; abi::UCONTEXT_SIZE];
    if copy_from_user(&mut bytes, frame.rsp).is_err() {
        force_segv("rt_sigreturn: unreadable signal frame");
    }
    let uc = UContext::from_bytes(&bytes);
    let r = &uc.regs;
    // iretq to a non-canonical RIP would fault in the kernel.
    if r.rip >= USER_END || r.rsp >= USER_END {
        force_segv("rt_sigreturn: bad signal frame");
    }
    let mut fpu = FpuState::initial();
    if uc.fpstate != 0 {
        let mut image = [0u8; abi::FPSTATE_SIZE];
        if copy_from_user(&mut image, uc.fpstate).is_err() {
            force_segv("rt_sigreturn: unreadable FPU state");
        }
        fpu = FpuState::from_user_image(&image);
    }
    let sp_now = frame.rsp;
    frame.r8 = r.r8;
    frame.r9 = r.r9;
    frame.r10 = r.r10;
    frame.r11 = r.r11;
    frame.r12 = r.r12;
    frame.r13 = r.r13;
    frame.r14 = r.r14;
    frame.r15 = r.r15;
    frame.rdi = r.rdi;
    frame.rsi = r.rsi;
    frame.rbp = r.rbp;
    frame.rbx = r.rbx;
    frame.rdx = r.rdx;
    frame.rax = r.rax;
    frame.rcx = r.rcx;
    frame.rsp = r.rsp;
    frame.rip = r.rip;
    frame.rflags = abi::restore_eflags(frame.rflags, r.eflags);
    fpu.restore();
    sched::with_current(|p| {
        p.sig.blocked = uc.sigmask & !abi::UNBLOCKABLE;
        // Linux's restore_altstack: ignored while still on the stack.
        if !p.sig.altstack.contains(sp_now) {
            if let Ok(s) = abi::new_altstack(&uc.stack) {
                p.sig.altstack = s;
            }
        }
    });
    frame.rax
}

pub fn init() {
    crate::arch::trap::set_return_to_user_hook(on_return_to_user);
}
