//! Time: clock_gettime, clock_getres, gettimeofday, time, nanosleep and
//! clock_nanosleep, with Linux's clock ids and errors.
//!
//! Every clock reads the calibrated TSC (`time::uptime_ns`):
//! `CLOCK_MONOTONIC`, `_RAW` and `CLOCK_BOOTTIME` are the time since boot
//! (the machine never suspends and nothing slews the clock, so the three
//! agree), `CLOCK_REALTIME` (and `_TAI`, with Linux's default offset 0)
//! adds the boot wall time read from the CMOS RTC, the `_COARSE` clocks are
//! the same rounded down to the 10 ms tick (their resolution, as Linux's
//! is its tick), and the CPU-time clocks count the TSC time the process
//! has run. The vDSO (`proc::vdso`) computes the same values in user space.

use super::*;
use crate::arch::uapi::Timespec;
use crate::mm::uaccess::{read_user, write_user};
use crate::time::TICK_NS;

const NSEC_PER_SEC: u64 = 1_000_000_000;

pub const CLOCK_REALTIME: i32 = 0;
pub const CLOCK_MONOTONIC: i32 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
pub const CLOCK_REALTIME_COARSE: i32 = 5;
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
pub const CLOCK_BOOTTIME: i32 = 7;
pub const CLOCK_REALTIME_ALARM: i32 = 8;
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
pub const CLOCK_TAI: i32 = 11;
const TIMER_ABSTIME: u64 = 1;

/// What a clock id names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Clock {
    Realtime,
    Monotonic,
    /// A `_COARSE` clock: its fine sibling, to the tick.
    Coarse(bool),
    /// CPU time of the calling process (its one thread).
    Cpu {
        thread: bool,
    },
}

/// Decodes a clock id as Linux does: the fixed ids, and negative ids for
/// the CPU clocks of a process or thread (`clock_getcpuclockid`: pid in
/// the high bits, inverted; bit 2 per-thread; bits 0-1 the kind, 3 is
/// invalid). Only the caller's own CPU clock exists here (pid 0 or its
/// pid); any other is EINVAL.
fn clock(id: u64) -> Result<Clock, Errno> {
    let id = id as i32;
    if id < 0 {
        if id & 3 == 3 {
            return Err(Errno::EINVAL);
        }
        let pid = !(id >> 3) as u32 as u64;
        let me = sched::with_current(|p| p.pid) as u64;
        if pid != 0 && pid != me {
            return Err(Errno::EINVAL);
        }
        return Ok(Clock::Cpu {
            thread: id & 4 != 0,
        });
    }
    Ok(match id {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM | CLOCK_TAI => Clock::Realtime,
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => {
            Clock::Monotonic
        }
        CLOCK_REALTIME_COARSE => Clock::Coarse(true),
        CLOCK_MONOTONIC_COARSE => Clock::Coarse(false),
        CLOCK_PROCESS_CPUTIME_ID => Clock::Cpu { thread: false },
        CLOCK_THREAD_CPUTIME_ID => Clock::Cpu { thread: true },
        _ => return Err(Errno::EINVAL),
    })
}

/// A clock's time in nanoseconds (`CLOCK_REALTIME` since 1970).
fn now_ns(c: Clock) -> i64 {
    match c {
        Clock::Realtime => crate::time::realtime_ns(),
        Clock::Monotonic => crate::time::uptime_ns() as i64,
        Clock::Coarse(real) => {
            let up = crate::time::uptime_ns();
            let up = (up - up % TICK_NS) as i64;
            if real {
                crate::time::boot_wall_ns() + up
            } else {
                up
            }
        }
        Clock::Cpu { .. } => sched::current_cpu_ns() as i64,
    }
}

fn timespec(ns: i64) -> Timespec {
    Timespec {
        tv_sec: ns.div_euclid(NSEC_PER_SEC as i64),
        tv_nsec: ns.rem_euclid(NSEC_PER_SEC as i64),
    }
}

pub(super) fn clock_gettime(id: u64, ts: u64) -> SysResult {
    let now = timespec(now_ns(clock(id)?));
    write_user(ts, &now)?;
    Ok(0)
}

pub(super) fn clock_getres(id: u64, res: u64) -> SysResult {
    let c = clock(id)?;
    if res != 0 {
        let ns = match c {
            Clock::Coarse(_) => TICK_NS,
            _ => 1,
        };
        write_user(res, &timespec(ns as i64))?;
    }
    Ok(0)
}

pub(super) fn gettimeofday(tv: u64, tz: u64) -> SysResult {
    if tv != 0 {
        let ns = crate::time::realtime_ns();
        // `struct timeval`: seconds, microseconds.
        let t = [
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000) / 1000,
        ];
        write_user(tv, &t)?;
    }
    if tz != 0 {
        // `struct timezone`, UTC: minutes west 0, no daylight saving.
        write_user(tz, &[0i32; 2])?;
    }
    Ok(0)
}

pub(super) fn time(tloc: u64) -> SysResult {
    let secs = crate::time::realtime_ns().div_euclid(NSEC_PER_SEC as i64);
    if tloc != 0 {
        write_user(tloc, &secs)?;
    }
    Ok(secs as u64)
}

/// A sleep request: a `timespec` that must have `0 <= tv_nsec < 1e9` and
/// `tv_sec >= 0` (else EINVAL), in nanoseconds (saturating).
pub(super) fn request_ns(req: u64) -> Result<u64, Errno> {
    let ts: Timespec = read_user(req)?;
    if ts.tv_sec < 0 || !(0..NSEC_PER_SEC as i64).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((ts.tv_sec as u64)
        .saturating_mul(NSEC_PER_SEC)
        .saturating_add(ts.tv_nsec as u64))
}

/// Sleeps until `deadline` on the monotonic clock. Woken early only by a
/// signal: for a relative sleep with `rem` non-null the time left is
/// written there (as Linux does: `rem` is written only then), and the call
/// ends with ERESTARTNOHAND: EINTR if a handler runs, else (a stop, then
/// SIGCONT) the call starts again (a relative sleep for its whole time;
/// Linux restarts it for the time that was left).
fn sleep_until(deadline: u64, rem: Option<u64>) -> SysResult {
    loop {
        let now = crate::time::uptime_ns();
        if now >= deadline {
            return Ok(0);
        }
        if crate::proc::signal::interrupted() {
            if let Some(rem) = rem.filter(|&r| r != 0) {
                write_user(rem, &timespec((deadline - now) as i64))?;
            }
            return Err(Errno::ERESTARTNOHAND);
        }
        sched::sleep_until_ns_unless(deadline, crate::proc::signal::interrupted);
    }
}

pub(super) fn nanosleep(req: u64, rem: u64) -> SysResult {
    let ns = request_ns(req)?;
    sleep_until(crate::time::uptime_ns().saturating_add(ns), Some(rem))
}

pub(super) fn clock_nanosleep(id: u64, flags: u64, req: u64, rem: u64) -> SysResult {
    // Linux: an unknown clock is EINVAL; a clock that cannot sleep
    // (`_RAW`, `_COARSE`) EOPNOTSUPP; the thread's CPU clock EINVAL. The
    // process's CPU clock would sleep until the process itself had run
    // that long — forever for a single thread — so it is EINVAL here too.
    let c = clock(id)?;
    let id = id as i32;
    if matches!(
        id,
        CLOCK_MONOTONIC_RAW | CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE
    ) {
        return Err(Errno::EOPNOTSUPP);
    }
    if matches!(c, Clock::Cpu { .. }) {
        return Err(Errno::EINVAL);
    }
    let ns = request_ns(req)?;
    if flags & TIMER_ABSTIME != 0 {
        // An absolute time on the chosen clock, as monotonic time.
        let offset = match c {
            Clock::Realtime => crate::time::boot_wall_ns(),
            _ => 0,
        };
        let deadline = (ns as i128 - offset as i128).clamp(0, u64::MAX as i128) as u64;
        sleep_until(deadline, None)
    } else {
        sleep_until(crate::time::uptime_ns().saturating_add(ns), Some(rem))
    }
}
