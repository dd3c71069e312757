//! Interval timers (`alarm`, `setitimer`, `getitimer`): per process,
//! kept in its signal state, checked by the scheduler's timer hook
//! ([`on_tick`]).
//!
//! `ITIMER_REAL` counts wall time to an absolute deadline on the uptime
//! clock and sends SIGALRM; its deadline goes into the one-shot timer's
//! next wake (`time::add_wake` when armed, the hook's `next_wake` scan
//! after), so it fires on time between two ticks, as a `nanosleep`
//! deadline does. `ITIMER_VIRTUAL` (user time, SIGVTALRM) and
//! `ITIMER_PROF` (user and system time, SIGPROF) count down by the 10 ms
//! ticks the process is running on (user mode: the tick interrupted ring
//! 3), so they have tick granularity. A forked child has no timers; exec
//! keeps them; exit stops them (`SigState::clear_pending`). Nothing is
//! allocated.

use usercore::signal::{code, num::*, InfoKind, SigInfo};

use super::sched::Process;

pub const ITIMER_REAL: u64 = 0;
pub const ITIMER_VIRTUAL: u64 = 1;
pub const ITIMER_PROF: u64 = 2;

/// One timer: `value` is the deadline (REAL, uptime ns) or the time left
/// (VIRTUAL/PROF, ns); 0 is disarmed. `interval` reloads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    pub value: u64,
    pub interval: u64,
}

impl Timer {
    const OFF: Timer = Timer {
        value: 0,
        interval: 0,
    };
}

/// A process's three timers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimers {
    pub timers: [Timer; 3],
}

impl Itimers {
    pub const fn new() -> Itimers {
        Itimers {
            timers: [Timer::OFF; 3],
        }
    }

    /// `(left, interval)` of timer `which` in ns (`now`: uptime).
    pub fn get(&self, which: usize, now: u64) -> (u64, u64) {
        let t = self.timers[which];
        let left = if which == ITIMER_REAL as usize && t.value != 0 {
            t.value.saturating_sub(now).max(1)
        } else {
            t.value
        };
        (left, t.interval)
    }

    /// Arms (`value` ns from `now`, 0: disarms) timer `which`, returning
    /// the old `(left, interval)`.
    pub fn set(&mut self, which: usize, value: u64, interval: u64, now: u64) -> (u64, u64) {
        let old = self.get(which, now);
        let value = match (which as u64, value) {
            (_, 0) => 0,
            (ITIMER_REAL, v) => now.saturating_add(v),
            (_, v) => v,
        };
        self.timers[which] = Timer { value, interval };
        old
    }
}

fn signal_of(which: usize) -> u8 {
    match which as u64 {
        ITIMER_REAL => SIGALRM,
        ITIMER_VIRTUAL => SIGVTALRM,
        _ => SIGPROF,
    }
}

/// The timer hook's check of process `p` at uptime `now`; `running` is
/// `Some((ticks, user))` for the process the tick interrupted (`ticks`
/// 10 ms ticks passed, `user`: in ring 3). Sends the signals of expired
/// timers and reloads them. Returns whether a signal can be delivered now
/// (wake it) and the earliest REAL deadline still ahead (`u64::MAX`).
pub fn on_tick(p: &mut Process, now: u64, running: Option<(u64, bool)>) -> (bool, u64) {
    if p.pid == 0 || p.is_kernel_thread() || p.dying() {
        return (false, u64::MAX);
    }
    let mut wake = false;
    let mut next = u64::MAX;
    let tick_ns = running.map_or(0, |(ticks, _)| ticks.saturating_mul(crate::time::TICK_NS));
    for which in 0..3 {
        let t = &mut p.sig.timers.timers[which];
        if t.value == 0 {
            continue;
        }
        let expired = match which as u64 {
            ITIMER_REAL => {
                if now >= t.value {
                    // Reloaded from the deadline; a reload already past
                    // (a long stall) is counted as one expiry.
                    t.value = if t.interval == 0 {
                        0
                    } else {
                        t.value.saturating_add(t.interval).max(now + 1)
                    };
                    true
                } else {
                    false
                }
            }
            kind => {
                let counts = match running {
                    Some((_, user)) => kind == ITIMER_PROF || user,
                    None => false,
                };
                if counts && tick_ns > 0 {
                    if t.value <= tick_ns {
                        t.value = t.interval;
                        true
                    } else {
                        t.value -= tick_ns;
                        false
                    }
                } else {
                    false
                }
            }
        };
        if which == ITIMER_REAL as usize && t.value != 0 {
            next = next.min(t.value);
        }
        if expired {
            let sig = signal_of(which);
            let info = SigInfo {
                signo: sig as i32,
                code: code::SI_KERNEL,
                kind: InfoKind::Kill { pid: 0, uid: 0 },
            };
            wake |= p.sig.post(sig, info);
        }
    }
    (wake, next)
}
