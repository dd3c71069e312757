//! Time: clock_gettime and nanosleep.

use super::*;
use crate::arch::uapi::Timespec;
use crate::mm::uaccess::{read_user, write_user};

const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Every clock reads the time since boot, in nanoseconds from the
/// calibrated TSC (there is no wall clock yet).
pub(super) fn clock_gettime(ts: u64) -> SysResult {
    let ns = crate::time::uptime_ns();
    let now = Timespec {
        tv_sec: (ns / NSEC_PER_SEC) as i64,
        tv_nsec: (ns % NSEC_PER_SEC) as i64,
    };
    write_user(ts, &now)?;
    Ok(0)
}

pub(super) fn nanosleep(req: u64, rem: u64) -> SysResult {
    let ts: Timespec = read_user(req)?;
    // Read as unsigned: a negative second or nanosecond count is too big.
    let (secs, nanos) = (ts.tv_sec as u64, ts.tv_nsec as u64);
    if nanos >= NSEC_PER_SEC || secs > 1 << 32 {
        return Err(Errno::EINVAL);
    }
    let ticks = (secs * NSEC_PER_SEC + nanos).div_ceil(NSEC_PER_SEC / crate::time::TICK_HZ);
    if ticks > 0 {
        // Woken early only by a signal: EINTR if a handler runs, else (a
        // stop, then SIGCONT) the call starts again, for the whole time
        // (Linux restarts it for the time that was left).
        let until = crate::time::ticks() + ticks;
        sched::block_unless(sched::Block::Sleep(until), crate::proc::signal::interrupted);
        if crate::proc::signal::interrupted() && crate::time::ticks() < until {
            if rem != 0 {
                let left = (until - crate::time::ticks()) * (NSEC_PER_SEC / crate::time::TICK_HZ);
                let left = Timespec {
                    tv_sec: (left / NSEC_PER_SEC) as i64,
                    tv_nsec: (left % NSEC_PER_SEC) as i64,
                };
                write_user(rem, &left)?;
            }
            return Err(Errno::ERESTARTNOHAND);
        }
    }
    Ok(0)
}
