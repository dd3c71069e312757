//! Waiting for any of several files (`poll`, `ppoll`, `select`,
//! `pselect6`): the wait and its wake-ups.
//!
//! There is no wait queue per file. Whatever may make a file ready (bytes
//! into or out of a pipe, an end closed, console input) calls [`notify`],
//! which counts an event and wakes every process blocked in [`wait`]
//! (`Block::Poll`); each looks at its files again. A waiter notes the
//! event count before it scans its files and blocks only if the count is
//! unchanged, checked with interrupts off (`sched::block_unless`): an
//! event between the scan and the block is never lost. A timeout is a
//! timer tick at which the scheduler wakes the waiter (`Block::Poll(tick)`);
//! the deadline itself is kept in nanoseconds of the TSC clock, so a wait
//! never ends early.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::proc::sched::{self, Block};
use crate::proc::syscall::Errno;

/// Events so far (see the module comment).
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Something may have become ready: every `poll` waiter looks again.
/// Neither allocates nor blocks (console input calls it from its
/// interrupt handler).
pub fn notify() {
    EVENTS.fetch_add(1, Ordering::SeqCst);
    sched::wake_pollers();
}

/// When a wait gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// At once: look, never wait (timeout 0).
    Now,
    /// At this many nanoseconds since boot (`time::uptime_ns`).
    At(u64),
    /// Never (a negative or absent timeout).
    Never,
}

const NS_PER_TICK: u64 = 1_000_000_000 / crate::time::TICK_HZ;

impl Deadline {
    /// `ns` nanoseconds from now (0: [`Deadline::Now`]).
    pub fn after_ns(ns: u64) -> Deadline {
        if ns == 0 {
            Deadline::Now
        } else {
            Deadline::At(crate::time::uptime_ns().saturating_add(ns))
        }
    }

    /// Nanoseconds left (0 once passed; `None` for no deadline).
    pub fn left_ns(self) -> Option<u64> {
        match self {
            Deadline::Now => Some(0),
            Deadline::At(at) => Some(at.saturating_sub(crate::time::uptime_ns())),
            Deadline::Never => None,
        }
    }
}

/// Runs `scan` (how many files are ready; it may fail) until it finds
/// one, the deadline passes (`Ok(0)`), or a signal (or a pending kill)
/// interrupts the wait (`ERESTARTNOHAND`: `EINTR` when a handler runs, as
/// Linux's poll and select).
pub fn wait(
    deadline: Deadline,
    mut scan: impl FnMut() -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    loop {
        let seen = EVENTS.load(Ordering::SeqCst);
        let ready = scan()?;
        if ready > 0 {
            return Ok(ready);
        }
        let tick = match deadline.left_ns() {
            Some(0) => return Ok(0),
            // The tick by which the deadline has surely passed (the
            // current tick is partly gone already).
            Some(ns) => crate::time::ticks().saturating_add(ns.div_ceil(NS_PER_TICK)),
            None => u64::MAX,
        };
        if super::pipe::interrupted() {
            return Err(Errno::ERESTARTNOHAND);
        }
        sched::block_unless(Block::Poll(tick), || {
            EVENTS.load(Ordering::SeqCst) != seen
                || crate::time::ticks() >= tick
                || super::pipe::interrupted()
        });
    }
}
