//! Scheduler statistics for `/proc/loadavg`, `/proc/stat` and `sysinfo`:
//! the load average (the arithmetic is reclaimcore's
//! [`loadavg`](reclaimcore::loadavg), host-tested: Linux's `calc_load`
//! every 5 s over the active tasks), context switches (`ctxt`, Linux's
//! `nr_context_switches`) and forks since boot (`processes`, Linux's
//! `total_forks`).
//!
//! Active tasks are Linux's `nr_running + nr_uninterruptible`: processes
//! and kernel threads running or runnable, plus those in uninterruptible
//! sleep ([`uninterruptible`]). Every sleep in Ferrite can be interrupted
//! (console, pipes, `wait4`, `nanosleep`, poll, kswapd's idle wait, a
//! stop) and disk I/O is synchronous in the process that asked for it
//! (it stays running), so that second count is always 0 today; it is
//! still counted from the states, as `procs_blocked` is. pid 0 (the
//! boot/idle thread, Linux's swapper) is not counted.
//!
//! Locking: `LOAD` is an [`IrqMutex`] and a leaf, taken under `SCHED` by
//! the timer tick and alone by readers; the counters are atomics.

use core::sync::atomic::{AtomicU64, Ordering};

use reclaimcore::loadavg::LoadAvg;

use super::sched::{Block, State};
use crate::arch::sync::IrqMutex;

static LOAD: IrqMutex<LoadAvg> = IrqMutex::new(LoadAvg::new(0));
static SWITCHES: AtomicU64 = AtomicU64::new(0);
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Whether a process in `state` counts towards the load as waiting in
/// uninterruptible sleep (Linux's `TASK_UNINTERRUPTIBLE`, state `D`).
/// None of Ferrite's blocks is (see the module comment).
pub fn uninterruptible(state: State) -> bool {
    match state {
        State::Blocked(
            Block::Child
            | Block::Sleep(_)
            | Block::Console
            | Block::Kswapd
            | Block::Pipe(_)
            | Block::Poll(_)
            | Block::Stopped,
        ) => false,
        State::Runnable | State::Running | State::Zombie(_) => false,
    }
}

/// Tasks by state (pid 0 left out).
#[derive(Clone, Copy, Debug, Default)]
pub struct TaskCounts {
    /// Running or runnable (`nr_running`, `procs_running`).
    pub running: u64,
    /// In uninterruptible sleep (`procs_blocked`).
    pub blocked: u64,
    /// Every task, zombies included (`nr_threads`).
    pub total: u64,
}

impl TaskCounts {
    /// Counts `(pid, state)` pairs.
    pub fn of(tasks: impl Iterator<Item = (u32, State)>) -> TaskCounts {
        let mut c = TaskCounts::default();
        for (_, state) in tasks.filter(|&(pid, _)| pid != 0) {
            c.total += 1;
            c.running += u64::from(matches!(state, State::Runnable | State::Running));
            c.blocked += u64::from(uninterruptible(state));
        }
        c
    }

    /// Active tasks for the load average.
    pub fn active(&self) -> u64 {
        self.running + self.blocked
    }
}

/// The timer tick: whether a load sample is due at `ticks`.
pub fn load_due(ticks: u64) -> bool {
    ticks >= LOAD.lock().next_sample()
}

/// The timer tick, when [`load_due`]: folds `active` tasks in.
pub fn load_sample(ticks: u64, active: u64) {
    LOAD.lock().tick(ticks, active);
}

/// The load average now.
pub fn load() -> LoadAvg {
    *LOAD.lock()
}

/// The scheduler switched from one task to another.
pub fn note_switch() {
    SWITCHES.fetch_add(1, Ordering::Relaxed);
}

/// Context switches since boot (`ctxt`).
pub fn switches() -> u64 {
    SWITCHES.load(Ordering::Relaxed)
}

/// A process or kernel thread was created.
pub fn note_fork() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Processes and kernel threads created since boot (`processes`).
pub fn forks() -> u64 {
    FORKS.load(Ordering::Relaxed)
}
