//! alarm, setitimer, getitimer: the timers are `proc::itimer`'s; these
//! calls check and convert the user's `struct itimerval` (Linux's rules:
//! `tv_usec` in 0..1e6 and `tv_sec` >= 0, else EINVAL; an unknown timer
//! is EINVAL).

use usercore::signal as abi;

use super::*;
use crate::mm::uaccess::{read_user, write_user};
use crate::proc::itimer::{ITIMER_PROF, ITIMER_REAL};
use crate::proc::sched;

/// Arms timer `which`, returning the old `(left, interval)` in ns. A REAL
/// deadline re-arms the one-shot timer if it comes first.
fn set(which: u64, value: u64, interval: u64) -> (u64, u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let now = crate::time::uptime_ns();
        let old = sched::with_current(|p| p.sig.timers.set(which as usize, value, interval, now));
        if which == ITIMER_REAL && value != 0 {
            crate::time::add_wake(now.saturating_add(value));
        }
        old
    })
}

fn get(which: u64) -> (u64, u64) {
    let now = crate::time::uptime_ns();
    sched::with_current(|p| p.sig.timers.get(which as usize, now))
}

fn to_user(ptr: u64, (left, interval): (u64, u64)) -> Result<(), Errno> {
    let [is, iu] = abi::ns_timeval(interval);
    let [vs, vu] = abi::ns_timeval(left);
    write_user(ptr, &[is, iu, vs, vu])?;
    Ok(())
}

pub(super) fn getitimer(which: u64, value: u64) -> SysResult {
    if which > ITIMER_PROF {
        return Err(Errno::EINVAL);
    }
    to_user(value, get(which))?;
    Ok(0)
}

pub(super) fn setitimer(which: u64, new: u64, old: u64) -> SysResult {
    if which > ITIMER_PROF {
        return Err(Errno::EINVAL);
    }
    // NULL `new` disarms (Linux accepts it, with a warning).
    let (value, interval) = if new == 0 {
        (0, 0)
    } else {
        let [is, iu, vs, vu]: [i64; 4] = read_user(new)?;
        let interval = abi::timeval_ns(is, iu).ok_or(Errno::EINVAL)?;
        let value = abi::timeval_ns(vs, vu).ok_or(Errno::EINVAL)?;
        (value, interval)
    };
    let previous = set(which, value, interval);
    if old != 0 {
        // As Linux: armed even if the old value cannot be written.
        to_user(old, previous)?;
    }
    Ok(0)
}

pub(super) fn alarm(seconds: u64) -> SysResult {
    // `unsigned int`; an alarm has no interval.
    let ns = (seconds as u32 as u64).saturating_mul(1_000_000_000);
    let (left, _) = set(ITIMER_REAL, ns, 0);
    Ok(abi::alarm_seconds(left))
}
