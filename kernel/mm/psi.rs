//! Memory pressure: Linux's pressure stall information (PSI) for memory,
//! `/proc/pressure/memory`. The arithmetic is reclaimcore's
//! [`psi`](reclaimcore::psi) (host-tested); this module feeds it:
//!
//! - **stalls**: a [`MemStall`] guard (Linux's `psi_memstall_enter` /
//!   `psi_memstall_leave`) around the waits for memory: direct reclaim
//!   from a fault (`fault`), and reading a page back from swap
//!   (`swap::swap_in`, readahead included). Linux counts a swap-in only
//!   when the page was in the working set before it was evicted; Ferrite
//!   counts every swap-in read.
//! - **tasks**: the scheduler reports each process joining the run queue
//!   ([`wake`]), leaving it to wait ([`sleep`]) and exiting ([`exit`]).
//! - **averages**: the timer tick ([`tick`]) folds each 2 s period into
//!   avg10/avg60/avg300.
//!
//! *some* is the time at least one task waited for memory; *full* the
//! time every task that could run was waiting for it (nothing made
//! progress).
//!
//! Time source: the TSC, calibrated against the PIT at boot
//! (`time::tsc_khz`), converted to nanoseconds: resolution one cycle
//! (about a nanosecond). The 10 ms tick would miss most stalls, which last
//! microseconds. Under QEMU's TCG the TSC follows the host's clock.
//!
//! Locking: `PSI` is an [`IrqMutex`] and a leaf: taken alone (stalls,
//! views) or under `SCHED` (the scheduler's reports, the timer tick);
//! nothing is taken under it and nothing allocates.

use reclaimcore::psi::{Pressure, Psi};

use crate::arch::hook::{FnPointer, Hook};
use crate::arch::sync::IrqMutex;

static PSI: IrqMutex<Psi> = IrqMutex::ranked(Psi::new(0), crate::arch::sync::rank::PSI);

/// Statistics of the pressure lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    PSI.stat()
}

/// Which task runs now (the scheduler's pid; 0 before it starts).
pub type CurrentHook = fn() -> u32;

static CURRENT: Hook<CurrentHook> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for CurrentHook {}

pub fn set_current_hook(hook: CurrentHook) {
    CURRENT.set(hook);
}

fn current() -> u32 {
    CURRENT.get().map_or(0, |f| f())
}

/// Nanoseconds on the calibrated TSC since boot ([`crate::time::uptime_ns`]).
pub fn now_ns() -> u64 {
    crate::time::uptime_ns()
}

/// The current task waits for memory while this lives (Linux's
/// `psi_memstall_enter` .. `psi_memstall_leave`). Nests.
#[must_use = "the stall ends when the guard is dropped"]
pub struct MemStall {
    pid: u32,
}

impl MemStall {
    pub fn enter() -> MemStall {
        let pid = current();
        PSI.lock().memstall_enter(now_ns(), pid);
        MemStall { pid }
    }
}

impl Drop for MemStall {
    fn drop(&mut self) {
        PSI.lock().memstall_leave(now_ns(), self.pid);
    }
}

/// Task `pid` joined the run queue (created, or woken up).
pub fn wake(pid: u32) {
    PSI.lock().wake(now_ns(), pid);
}

/// Task `pid` left the run queue to wait (sleep, a child, input).
pub fn sleep(pid: u32) {
    PSI.lock().sleep(now_ns(), pid);
}

/// Task `pid` exited or was killed; `queued`: it was running or runnable.
pub fn exit(pid: u32, queued: bool) {
    PSI.lock().exit(now_ns(), pid, queued);
}

/// From the timer interrupt: updates the averages when a period ended.
pub fn tick() {
    PSI.lock().tick(now_ns());
}

/// The figures now, as `/proc/pressure/memory` prints them (`{}` gives
/// both lines).
pub fn snapshot() -> Pressure {
    PSI.lock().snapshot(now_ns())
}

/// Tasks on the run queue, stalled tasks, stalled tasks on the run queue
/// (as the scheduler's reports left them), and how many reports did not
/// fit the ones before (0 unless a state change went unreported).
pub fn tasks() -> ((u32, u32, u32), u32) {
    let psi = PSI.lock();
    (psi.group().tasks(), psi.errors())
}
