//! The load average of `/proc/loadavg` and `sysinfo`, as Linux's
//! `kernel/sched/loadavg.c` computes it: every [`LOAD_FREQ_TICKS`] (5 s and
//! one tick) the number of active tasks (runnable, running, and in
//! uninterruptible sleep) is folded into three exponentially damped
//! averages over 1, 5 and 15 minutes, in 11-bit fixed point, with the same
//! [`calc_load`] that [`psi`](crate::psi) uses for its averages. Periods
//! missed (the sampling tick came late) are folded in at once with
//! [`calc_load_n`], as Linux's `calc_global_nohz` does for a CPU that slept
//! through them.
//!
//! Fixed size and allocation free: the kernel calls [`LoadAvg::tick`] from
//! the timer interrupt.

use core::fmt;

use crate::psi::{calc_load, calc_load_n, FIXED_1, FSHIFT};

/// Ticks per second (Linux's `HZ`; Ferrite's timer ticks every 10 ms).
pub const HZ: u64 = 100;
/// Sampling period in ticks: Linux's `LOAD_FREQ`, `5 * HZ + 1`.
pub const LOAD_FREQ_TICKS: u64 = 5 * HZ + 1;
/// `1 / exp(5 s / 1 min)` in fixed point (Linux's `EXP_1`).
pub const EXP_1: u64 = 1884;
/// `1 / exp(5 s / 5 min)` (`EXP_5`).
pub const EXP_5: u64 = 2014;
/// `1 / exp(5 s / 15 min)` (`EXP_15`).
pub const EXP_15: u64 = 2037;
const EXPS: [u64; 3] = [EXP_1, EXP_5, EXP_15];
/// `sysinfo`'s loads have 16 fraction bits (Linux's `SI_LOAD_SHIFT`).
pub const SI_LOAD_SHIFT: u32 = 16;

/// Linux's `avenrun[]` and the tick of its next update
/// (`calc_load_update`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadAvg {
    avenrun: [u64; 3],
    next: u64,
}

impl LoadAvg {
    /// All averages 0; the first sample [`LOAD_FREQ_TICKS`] after `now`
    /// (Linux's `calc_load_update = jiffies + LOAD_FREQ` at boot).
    pub const fn new(now: u64) -> LoadAvg {
        LoadAvg {
            avenrun: [0; 3],
            next: now + LOAD_FREQ_TICKS,
        }
    }

    /// Called on every tick with the tick count and the number of active
    /// tasks (`nr_running + nr_uninterruptible`): folds `active` in when a
    /// sampling time has come (once per missed period too). Returns
    /// whether the averages changed.
    pub fn tick(&mut self, now: u64, active: u64) -> bool {
        if now < self.next {
            return false;
        }
        let periods = (now - self.next) / LOAD_FREQ_TICKS + 1;
        let active = active.saturating_mul(FIXED_1);
        for (a, &exp) in self.avenrun.iter_mut().zip(EXPS.iter()) {
            *a = if periods == 1 {
                calc_load(*a, exp, active)
            } else {
                calc_load_n(*a, exp, active, periods)
            };
        }
        self.next += periods * LOAD_FREQ_TICKS;
        true
    }

    /// The tick of the next sample (`calc_load_update`).
    pub fn next_sample(&self) -> u64 {
        self.next
    }

    /// The three averages in [`FIXED_1`] fixed point (`avenrun`).
    pub fn avenrun(&self) -> [u64; 3] {
        self.avenrun
    }

    /// The averages as `sysinfo` reports them (Linux's `get_avenrun` with
    /// a shift of `SI_LOAD_SHIFT - FSHIFT`).
    pub fn sysinfo_loads(&self) -> [u64; 3] {
        self.avenrun.map(|a| a << (SI_LOAD_SHIFT - FSHIFT))
    }

    /// The first three fields of `/proc/loadavg` ("0.42 0.17 0.06").
    pub fn display(&self) -> impl fmt::Display {
        Averages(self.avenrun)
    }
}

struct Averages([u64; 3]);

impl fmt::Display for Averages {
    /// Linux's `loadavg_proc_show`: each average rounded at the second
    /// decimal (`+ FIXED_1 / 200`), then `LOAD_INT.LOAD_FRAC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &a) in self.0.iter().enumerate() {
            let a = a + FIXED_1 / 200;
            let int = a >> FSHIFT;
            let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{int}.{frac:02}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn samples_every_load_freq() {
        let mut l = LoadAvg::new(0);
        assert!(!l.tick(LOAD_FREQ_TICKS - 1, 5));
        assert_eq!(format!("{}", l.display()), "0.00 0.00 0.00");
        assert!(l.tick(LOAD_FREQ_TICKS, 1));
        // One step from 0 towards 1.0: 1 - EXP (rounded up while rising).
        assert_eq!(
            l.avenrun(),
            [FIXED_1 - EXP_1, FIXED_1 - EXP_5, FIXED_1 - EXP_15]
        );
        assert_eq!(format!("{}", l.display()), "0.08 0.02 0.01");
        assert!(!l.tick(LOAD_FREQ_TICKS + 1, 1));
        assert_eq!(l.sysinfo_loads()[0], (FIXED_1 - EXP_1) << 5);
    }

    #[test]
    fn constant_load_converges_like_linux() {
        // One busy task for 15 minutes: the 1-minute average reaches 1.00,
        // the 5- and 15-minute ones 1 - 1/e^3 (0.95) and 1 - 1/e (0.63)
        // plus the drift of rounding up while rising (Linux prints the
        // same: its fixed point is this one).
        let mut l = LoadAvg::new(0);
        let mut now = 0;
        for _ in 0..180 {
            now += LOAD_FREQ_TICKS;
            l.tick(now, 1);
        }
        assert_eq!(format!("{}", l.display()), "1.00 0.96 0.65");
        // Then idle: a minute later the 1-minute average is down to ~1/e
        // (0.37, 753 in fixed point; 749 after rounding).
        for _ in 0..12 {
            now += LOAD_FREQ_TICKS;
            l.tick(now, 0);
        }
        let one = l.avenrun()[0];
        assert!((745..=760).contains(&one), "{one}");
    }

    #[test]
    fn missed_periods_fold_in_at_once() {
        let (mut a, mut b) = (LoadAvg::new(0), LoadAvg::new(0));
        for k in 1..=4 {
            a.tick(k * LOAD_FREQ_TICKS, 3);
        }
        // Four periods late, in one tick (`fixed_power_int` rounds each
        // product: a few units of 1/2048 apart).
        assert!(b.tick(4 * LOAD_FREQ_TICKS + 7, 3));
        for i in 0..3 {
            let (x, y) = (a.avenrun()[i], b.avenrun()[i]);
            assert!(x.abs_diff(y) <= 4, "{i}: {x} vs {y}");
        }
        // Next sample stays on the 5 s grid.
        assert!(!b.tick(5 * LOAD_FREQ_TICKS - 1, 3));
        assert!(b.tick(5 * LOAD_FREQ_TICKS, 3));
    }

    #[test]
    fn rounding_of_the_display() {
        // 0.995 shows as 1.00 (Linux adds FIXED_1/200 before truncating).
        let l = LoadAvg {
            avenrun: [2038, 2 * FIXED_1 + 1023, 0],
            next: 0,
        };
        assert_eq!(format!("{}", l.display()), "1.00 2.50 0.00");
    }
}
