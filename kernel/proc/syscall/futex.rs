//! `futex(uaddr, op, val, timeout | val2, uaddr2, val3)`: the operations
//! musl's threads use (WAIT, WAKE, REQUEUE, CMP_REQUEUE; the BITSET
//! forms with every bit set), decoded here; the waits and wakes are
//! `sched::futex`.

use super::*;
use crate::proc::sched::futex;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
/// Every waiter matches (the only bitset served).
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// A count argument (`int` in Linux): negative is taken as 0 for wakes.
fn count(v: u64) -> u32 {
    (v as u32 as i32).max(0) as u32
}

pub(super) fn futex(
    uaddr: u64,
    op: u64,
    val: u64,
    timeout: u64,
    uaddr2: u64,
    val3: u64,
) -> SysResult {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    // The real-time clock only for waits (FUTEX_WAIT's timeout is relative
    // whatever the clock, as Linux's since 4.5).
    if op & FUTEX_CLOCK_REALTIME != 0 && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_WAIT {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            if cmd == FUTEX_WAIT_BITSET && val3 as u32 != FUTEX_BITSET_MATCH_ANY {
                // Partial bitsets are not served.
                return Err(Errno::EINVAL);
            }
            let deadline = if timeout == 0 {
                None
            } else {
                let ns = super::time::request_ns(timeout)?;
                Some(if cmd == FUTEX_WAIT {
                    crate::time::uptime_ns().saturating_add(ns)
                } else {
                    // Absolute, on the monotonic clock (or the real-time
                    // one with FUTEX_CLOCK_REALTIME).
                    let offset = if op & FUTEX_CLOCK_REALTIME != 0 {
                        crate::time::boot_wall_ns()
                    } else {
                        0
                    };
                    (ns as i128 - offset as i128).clamp(0, u64::MAX as i128) as u64
                })
            };
            futex::wait(uaddr, val as u32, deadline, private)?;
            Ok(0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            if cmd == FUTEX_WAKE_BITSET && val3 as u32 != FUTEX_BITSET_MATCH_ANY {
                return Err(Errno::EINVAL);
            }
            // Linux wakes one even for a count of 0.
            Ok(futex::wake(uaddr, count(val).max(1), private)? as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (n_wake, n_move) = (val as u32 as i32, timeout as u32 as i32);
            if n_wake < 0 || n_move < 0 {
                return Err(Errno::EINVAL);
            }
            let cmp = (cmd == FUTEX_CMP_REQUEUE).then_some(val3 as u32);
            let (woken, moved) =
                futex::requeue(uaddr, n_wake as u32, n_move as u32, uaddr2, cmp, private)?;
            Ok(if cmp.is_some() {
                (woken + moved) as u64
            } else {
                woken as u64
            })
        }
        _ => Err(Errno::ENOSYS),
    }
}
