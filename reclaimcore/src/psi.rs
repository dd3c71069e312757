//! Pressure stall information for memory, as Linux's `kernel/sched/psi.c`
//! computes it for one CPU: how much of the time tasks could not run
//! because they were waiting for memory (reclaim, swap-in), as totals and
//! as running averages over 10 s, 60 s and 300 s.
//!
//! # States
//!
//! Each task carries flags (Linux's `TSK_*`): [`TSK_RUNNING`] while it is
//! on the run queue (running or runnable), [`TSK_MEMSTALL`] while it is
//! stalled on memory, [`TSK_MEMSTALL_RUNNING`] while both. A [`Group`]
//! counts the tasks with each flag and is, at every instant, in
//!
//! - **some**: at least one task is stalled on memory;
//! - **full**: some, and every task on the run queue is a stalled one (no
//!   task is making progress: Linux's `tasks[NR_RUNNING] ==
//!   tasks[NR_MEMSTALL_RUNNING]`).
//!
//! The time spent in each state is summed (nanoseconds here, microseconds
//! in `total=`), and every [`PERIOD_NS`] the share of the last period
//! spent in each state is folded into three exponentially decaying
//! averages with Linux's fixed-point `calc_load` (11 fraction bits,
//! `EXP_10s`, `EXP_60s`, `EXP_300s`). [`Pressure`] prints exactly the two
//! lines of `/proc/pressure/memory`.
//!
//! [`Psi`] adds the per-task side (Linux keeps `psi_flags` in each task):
//! the kernel reports wakeups, sleeps, exits and memory stalls by pid, and
//! a small table remembers which tasks are stalled (nesting counted), so a
//! stalled task that is preempted or sleeps is still counted as stalled.
//!
//! Everything is fixed size: no allocation, so the kernel calls it from
//! the timer interrupt and the scheduler under their locks.

use core::fmt;

/// How often the averages are updated: 2 s (Linux: `PSI_FREQ`, 2 s and a
/// jiffy, so its delayed work lands just after the period).
pub const PERIOD_NS: u64 = 2_000_000_000;
/// Fraction bits of the averages (Linux's `FSHIFT`).
pub const FSHIFT: u32 = 11;
/// 1.0 in that fixed point (`FIXED_1`).
pub const FIXED_1: u64 = 1 << FSHIFT;
/// `1 / exp(2 s / 10 s)` in fixed point (Linux's `EXP_10s`).
pub const EXP_10S: u64 = 1677;
/// `1 / exp(2 s / 60 s)` (`EXP_60s`).
pub const EXP_60S: u64 = 1981;
/// `1 / exp(2 s / 300 s)` (`EXP_300s`).
pub const EXP_300S: u64 = 2034;
const EXPS: [u64; 3] = [EXP_10S, EXP_60S, EXP_300S];

/// The task is on the run queue: running or runnable.
pub const TSK_RUNNING: u8 = 1 << 0;
/// The task is stalled on memory (reclaiming, waiting for a swap-in).
pub const TSK_MEMSTALL: u8 = 1 << 1;
/// The task is stalled on memory and on the run queue.
pub const TSK_MEMSTALL_RUNNING: u8 = 1 << 2;

/// Index of the *some* state in totals and averages.
pub const SOME: usize = 0;
/// Index of the *full* state.
pub const FULL: usize = 1;

/// Linux's `calc_load`: one step of the exponential average `load` towards
/// `active` with decay `exp` (both in [`FIXED_1`] fixed point), rounding up
/// while rising so a constant input is reached exactly.
pub fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut newload = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        newload += FIXED_1 - 1;
    }
    newload / FIXED_1
}

/// Linux's `fixed_power_int`: `x^n` in fixed point with `frac_bits`
/// fraction bits, rounding each product.
pub fn fixed_power_int(mut x: u64, frac_bits: u32, mut n: u64) -> u64 {
    let mut result = 1u64 << frac_bits;
    if n != 0 {
        loop {
            if n & 1 != 0 {
                result *= x;
                result += 1 << (frac_bits - 1);
                result >>= frac_bits;
            }
            n >>= 1;
            if n == 0 {
                break;
            }
            x *= x;
            x += 1 << (frac_bits - 1);
            x >>= frac_bits;
        }
    }
    result
}

/// Linux's `calc_load_n`: `n` steps of [`calc_load`] towards `active`.
pub fn calc_load_n(load: u64, exp: u64, active: u64, n: u64) -> u64 {
    calc_load(load, fixed_power_int(exp, FSHIFT, n), active)
}

/// A task count would have gone below zero (the kernel reported a change
/// that does not match what it reported before); the count stays at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underflow;

/// The pressure of one resource (memory) on one CPU: task counts, the
/// current state, stall totals and averages (Linux's `psi_group_cpu` and
/// the `psi_group` around it, folded together for one CPU).
#[derive(Clone, Debug)]
pub struct Group {
    /// Tasks on the run queue, stalled ones included (`NR_RUNNING`).
    nr_running: u32,
    /// Stalled tasks, running or not (`NR_MEMSTALL`).
    nr_memstall: u32,
    /// Stalled tasks on the run queue (`NR_MEMSTALL_RUNNING`).
    nr_memstall_running: u32,
    /// `1 << SOME`, `1 << FULL`: the states now.
    state: u8,
    /// When `state` was last recorded.
    state_start: u64,
    /// Stall time in each state up to `state_start`, ns.
    total: [u64; 2],
    /// The averages, percent in [`FIXED_1`] fixed point: `[state][10 s,
    /// 60 s, 300 s]`.
    avg: [[u64; 3]; 2],
    /// The part of `total` already folded into the averages.
    avg_total: [u64; 2],
    avg_last_update: u64,
    avg_next_update: u64,
}

impl Group {
    /// An idle group whose clock starts at `now` (ns).
    pub const fn new(now: u64) -> Group {
        Group {
            nr_running: 0,
            nr_memstall: 0,
            nr_memstall_running: 0,
            state: 0,
            state_start: now,
            total: [0; 2],
            avg: [[0; 3]; 2],
            avg_total: [0; 2],
            avg_last_update: now,
            avg_next_update: now + PERIOD_NS,
        }
    }

    /// The clock never goes back: an earlier `now` counts as the last one.
    fn clamp(&self, now: u64) -> u64 {
        now.max(self.state_start)
    }

    /// Adds the time since `state_start` to the states it was spent in.
    fn record_times(&mut self, now: u64) {
        let delta = now - self.state_start;
        self.state_start = now;
        for s in [SOME, FULL] {
            if self.state & (1 << s) != 0 {
                self.total[s] += delta;
            }
        }
    }

    fn compute_state(&self) -> u8 {
        let some = self.nr_memstall > 0;
        let full = some && self.nr_running == self.nr_memstall_running;
        (some as u8) << SOME | (full as u8) << FULL
    }

    /// A task's flags lose `clear` and gain `set` at `now` (Linux's
    /// `psi_task_change`). A count that would underflow stays 0 and the
    /// change reports it; the rest of the change is still made.
    pub fn task_change(&mut self, now: u64, clear: u8, set: u8) -> Result<(), Underflow> {
        let now = self.clamp(now);
        self.record_times(now);
        let mut result = Ok(());
        let counts = [
            (TSK_RUNNING, &mut self.nr_running),
            (TSK_MEMSTALL, &mut self.nr_memstall),
            (TSK_MEMSTALL_RUNNING, &mut self.nr_memstall_running),
        ];
        for (flag, count) in counts {
            if clear & flag != 0 {
                match count.checked_sub(1) {
                    Some(n) => *count = n,
                    None => result = Err(Underflow),
                }
            }
            if set & flag != 0 {
                *count += 1;
            }
        }
        self.state = self.compute_state();
        result
    }

    /// Whether the group is in *some* and *full* now.
    pub fn state(&self) -> (bool, bool) {
        (self.state & (1 << SOME) != 0, self.state & (1 << FULL) != 0)
    }

    /// Tasks on the run queue, stalled tasks, stalled tasks on the run
    /// queue.
    pub fn tasks(&self) -> (u32, u32, u32) {
        (self.nr_running, self.nr_memstall, self.nr_memstall_running)
    }

    /// Stall time in each state up to `now`, the current state's running
    /// stretch included (ns).
    pub fn totals(&self, now: u64) -> [u64; 2] {
        let now = self.clamp(now);
        let mut total = self.total;
        for (s, t) in total.iter_mut().enumerate() {
            if self.state & (1 << s) != 0 {
                *t += now - self.state_start;
            }
        }
        total
    }

    /// Linux's `update_averages`: folds the stall time since the last
    /// update into the averages, periods missed since (no update ran)
    /// counting as idle ones. Returns when the next update is due.
    fn update_averages(&mut self, now: u64) -> u64 {
        let expires = self.avg_next_update;
        let missed = now.saturating_sub(expires) / PERIOD_NS;
        let next = expires + (1 + missed) * PERIOD_NS;
        let period = now
            .saturating_sub(self.avg_last_update + missed * PERIOD_NS)
            .max(1);
        self.avg_last_update = now;
        let totals = self.totals(now);
        for s in [SOME, FULL] {
            // Stall time recorded late can exceed the period (Linux: the
            // lockless sampling): the excess is carried into the next
            // period rather than reported as more than 100 %. Linux keeps
            // the sample in a u32; here it stays 64 bits.
            let sample = (totals[s] - self.avg_total[s]).min(period);
            self.avg_total[s] += sample;
            let avg = &mut self.avg[s];
            if missed > 0 {
                for (a, exp) in avg.iter_mut().zip(EXPS) {
                    *a = calc_load_n(*a, exp, 0, missed);
                }
            }
            let pct = (sample as u128 * 100 / period as u128) as u64 * FIXED_1;
            for (a, exp) in avg.iter_mut().zip(EXPS) {
                *a = calc_load(*a, exp, pct);
            }
        }
        next
    }

    /// Updates the averages if a period has ended by `now` (the timer
    /// calls this often; Linux's `psi_avgs_work`). True if it did.
    pub fn tick(&mut self, now: u64) -> bool {
        let now = self.clamp(now);
        if now < self.avg_next_update {
            return false;
        }
        self.avg_next_update = self.update_averages(now);
        true
    }

    /// The figures at `now`, as `/proc/pressure/memory` shows them (the
    /// averages brought up to date first, as Linux's `psi_show` does).
    pub fn snapshot(&mut self, now: u64) -> Pressure {
        self.tick(now);
        let totals = self.totals(now);
        let line = |s: usize| Line {
            avg: self.avg[s],
            total_us: totals[s] / 1000,
        };
        Pressure {
            some: line(SOME),
            full: line(FULL),
        }
    }
}

/// One line of `/proc/pressure/memory`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Line {
    /// avg10, avg60, avg300: percent in [`FIXED_1`] fixed point.
    pub avg: [u64; 3],
    /// Stall time since boot, µs.
    pub total_us: u64,
}

impl Line {
    /// Average `i` (0: 10 s, 1: 60 s, 2: 300 s) as whole percent and
    /// hundredths, truncated as Linux's `LOAD_INT`/`LOAD_FRAC` do.
    pub fn percent(&self, i: usize) -> (u64, u64) {
        let a = self.avg[i];
        (a >> FSHIFT, ((a & (FIXED_1 - 1)) * 100) >> FSHIFT)
    }

    /// Average `i` in hundredths of a percent (100 % is 10000).
    pub fn hundredths(&self, i: usize) -> u64 {
        let (int, frac) = self.percent(i);
        int * 100 + frac
    }
}

impl fmt::Display for Line {
    /// `avg10=0.00 avg60=0.00 avg300=0.00 total=0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in ["avg10", "avg60", "avg300"].iter().enumerate() {
            let (int, frac) = self.percent(i);
            write!(f, "{name}={int}.{frac:02} ")?;
        }
        write!(f, "total={}", self.total_us)
    }
}

/// The *some* and *full* lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    /// At least one task stalled on memory.
    pub some: Line,
    /// Every runnable task stalled on memory.
    pub full: Line,
}

impl fmt::Display for Pressure {
    /// Exactly `/proc/pressure/memory`: two lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "some {}", self.some)?;
        writeln!(f, "full {}", self.full)
    }
}

/// Tasks that can be stalled at once and still be told apart (a task
/// beyond them is counted as stalled only while it runs; see
/// [`Psi::memstall_enter`]). A user task never sleeps or is preempted
/// while stalled in Ferrite (its fault runs with interrupts off); kernel
/// threads may.
pub const MAX_STALLED: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Stalled {
    pid: u32,
    /// Nested enters not yet left.
    depth: u32,
    /// On the run queue (its `TSK_MEMSTALL_RUNNING`).
    running: bool,
}

/// Memory pressure of a one-CPU system with the per-task side: events come
/// by pid, with their time in ns.
#[derive(Clone, Debug)]
pub struct Psi {
    group: Group,
    stalled: [Option<Stalled>; MAX_STALLED],
    /// Stalls of tasks that found the table full (entered, not yet left).
    untracked: u32,
    /// Inconsistent reports seen (a count would have gone negative, a
    /// leave without an enter).
    errors: u32,
}

impl Psi {
    /// No tasks; the clock starts at `now`.
    pub const fn new(now: u64) -> Psi {
        Psi {
            group: Group::new(now),
            stalled: [None; MAX_STALLED],
            untracked: 0,
            errors: 0,
        }
    }

    /// The counts and figures.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Inconsistent reports seen so far (0 unless the kernel's reports
    /// miss a transition).
    pub fn errors(&self) -> u32 {
        self.errors
    }

    fn change(&mut self, now: u64, clear: u8, set: u8) {
        if self.group.task_change(now, clear, set).is_err() {
            self.errors += 1;
        }
    }

    fn find(&self, pid: u32) -> Option<usize> {
        self.stalled
            .iter()
            .position(|s| s.is_some_and(|s| s.pid == pid))
    }

    /// Task `pid` joined the run queue: created, or woken (Linux's
    /// `psi_enqueue`).
    pub fn wake(&mut self, now: u64, pid: u32) {
        let mut set = TSK_RUNNING;
        if let Some(i) = self.find(pid) {
            let s = self.stalled[i].as_mut().expect("found");
            if !s.running {
                s.running = true;
                set |= TSK_MEMSTALL_RUNNING;
            }
        }
        self.change(now, 0, set);
    }

    /// Task `pid` left the run queue to wait for something (Linux's
    /// `psi_dequeue` for a sleep). A stalled task stays stalled.
    pub fn sleep(&mut self, now: u64, pid: u32) {
        let mut clear = TSK_RUNNING;
        if let Some(i) = self.find(pid) {
            let s = self.stalled[i].as_mut().expect("found");
            if s.running {
                s.running = false;
                clear |= TSK_MEMSTALL_RUNNING;
            }
        }
        self.change(now, clear, 0);
    }

    /// Task `pid` exited or was killed; `queued` says whether it was on the
    /// run queue (running or runnable) then. Any stall of it ends.
    pub fn exit(&mut self, now: u64, pid: u32, queued: bool) {
        let mut clear = if queued { TSK_RUNNING } else { 0 };
        if let Some(i) = self.find(pid) {
            let s = self.stalled[i].take().expect("found");
            clear |= TSK_MEMSTALL;
            if s.running {
                clear |= TSK_MEMSTALL_RUNNING;
            }
        }
        if clear != 0 {
            self.change(now, clear, 0);
        }
    }

    /// The running task `pid` starts waiting for memory (Linux's
    /// `psi_memstall_enter`); nested enters count once.
    pub fn memstall_enter(&mut self, now: u64, pid: u32) {
        if let Some(i) = self.find(pid) {
            self.stalled[i].as_mut().expect("found").depth += 1;
            return;
        }
        match self.stalled.iter().position(|s| s.is_none()) {
            Some(i) => {
                self.stalled[i] = Some(Stalled {
                    pid,
                    depth: 1,
                    running: true,
                });
            }
            // No room to remember it: counted while it runs, as if it
            // never slept stalled.
            None => self.untracked += 1,
        }
        self.change(now, 0, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING);
    }

    /// The running task `pid` stops waiting for memory (Linux's
    /// `psi_memstall_leave`).
    pub fn memstall_leave(&mut self, now: u64, pid: u32) {
        match self.find(pid) {
            Some(i) => {
                let s = self.stalled[i].as_mut().expect("found");
                s.depth -= 1;
                if s.depth > 0 {
                    return;
                }
                let clear = if s.running {
                    TSK_MEMSTALL | TSK_MEMSTALL_RUNNING
                } else {
                    TSK_MEMSTALL
                };
                self.stalled[i] = None;
                self.change(now, clear, 0);
            }
            None if self.untracked > 0 => {
                self.untracked -= 1;
                self.change(now, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING, 0);
            }
            None => self.errors += 1,
        }
    }

    /// Updates the averages if a period ended (from the timer).
    pub fn tick(&mut self, now: u64) -> bool {
        self.group.tick(now)
    }

    /// The figures at `now`.
    pub fn snapshot(&mut self, now: u64) -> Pressure {
        self.group.snapshot(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    /// The reference: tasks with their own flags, the states decided from
    /// their definitions one nanosecond at a time.
    #[derive(Clone, Copy, Default, Debug)]
    struct Task {
        queued: bool,
        depth: u32,
    }

    struct Model {
        tasks: Vec<Task>,
        now: u64,
        total: [u64; 2],
    }

    impl Model {
        fn states(&self) -> (bool, bool) {
            let some = self.tasks.iter().any(|t| t.depth > 0);
            // Full: stalled tasks exist and none of the tasks on the run
            // queue is making progress.
            let full = some && self.tasks.iter().all(|t| !t.queued || t.depth > 0);
            (some, full)
        }

        fn advance(&mut self, to: u64) {
            while self.now < to {
                let (some, full) = self.states();
                self.total[SOME] += some as u64;
                self.total[FULL] += full as u64;
                self.now += 1;
            }
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Pass(u64),
        Wake(usize),
        Sleep(usize),
        Exit(usize),
        Enter(usize),
        Leave(usize),
    }

    fn op(tasks: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..400).prop_map(Op::Pass),
            (0..tasks).prop_map(Op::Wake),
            (0..tasks).prop_map(Op::Sleep),
            (0..tasks).prop_map(Op::Exit),
            (0..tasks).prop_map(Op::Enter),
            (0..tasks).prop_map(Op::Leave),
        ]
    }

    /// Runs `ops` on both, skipping the ones the kernel would never report
    /// (waking a queued task, a leave without an enter, an enter by a task
    /// that is not running), and checks the totals after every step.
    fn check(ops: &[Op], tasks: usize) -> Result<(), TestCaseError> {
        let mut psi = Psi::new(0);
        let mut model = Model {
            tasks: Vec::from_iter((0..tasks).map(|_| Task::default())),
            now: 0,
            total: [0; 2],
        };
        for &op in ops {
            let now = model.now;
            match op {
                Op::Pass(d) => model.advance(now + d),
                Op::Wake(i) if !model.tasks[i].queued => {
                    model.tasks[i].queued = true;
                    psi.wake(now, i as u32);
                }
                Op::Sleep(i) if model.tasks[i].queued => {
                    model.tasks[i].queued = false;
                    psi.sleep(now, i as u32);
                }
                Op::Exit(i) => {
                    psi.exit(now, i as u32, model.tasks[i].queued);
                    model.tasks[i] = Task::default();
                }
                Op::Enter(i) if model.tasks[i].queued => {
                    model.tasks[i].depth += 1;
                    psi.memstall_enter(now, i as u32);
                }
                Op::Leave(i) if model.tasks[i].queued && model.tasks[i].depth > 0 => {
                    model.tasks[i].depth -= 1;
                    psi.memstall_leave(now, i as u32);
                }
                _ => {}
            }
            let now = model.now;
            prop_assert_eq!(psi.group().totals(now), model.total, "after {:?}", op);
            prop_assert_eq!(psi.group().state(), model.states());
            let queued = model.tasks.iter().filter(|t| t.queued).count() as u32;
            prop_assert_eq!(psi.group().tasks().0, queued);
        }
        prop_assert_eq!(psi.errors(), 0);
        let end = model.now + 1234;
        model.advance(end);
        let p = psi.snapshot(end);
        prop_assert_eq!(p.some.total_us, model.total[SOME] / 1000);
        prop_assert_eq!(p.full.total_us, model.total[FULL] / 1000);
        prop_assert!(p.full.total_us <= p.some.total_us);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Totals match a per-nanosecond simulation of the states exactly,
        /// whatever the order of wakeups, sleeps, exits and (nested)
        /// stalls of up to MAX_STALLED tasks.
        #[test]
        fn totals_match_the_brute_force_model(
            tasks in 1usize..=MAX_STALLED,
            ops in proptest::collection::vec(op(MAX_STALLED), 0..200),
        ) {
            let ops: Vec<Op> = ops
                .into_iter()
                .map(|op| match op {
                    Op::Pass(d) => Op::Pass(d),
                    Op::Wake(i) => Op::Wake(i % tasks),
                    Op::Sleep(i) => Op::Sleep(i % tasks),
                    Op::Exit(i) => Op::Exit(i % tasks),
                    Op::Enter(i) => Op::Enter(i % tasks),
                    Op::Leave(i) => Op::Leave(i % tasks),
                })
                .collect();
            check(&ops, tasks)?;
        }

        /// The averages follow the same exponential average in floating
        /// point (same decay constants) to within rounding, for any
        /// sequence of per-period stall shares.
        #[test]
        fn averages_follow_the_exponential_average(
            shares in proptest::collection::vec(0u64..=100, 1..400),
        ) {
            let mut g = Group::new(0);
            g.task_change(0, 0, TSK_RUNNING).unwrap();
            let mut float = [0f64; 3];
            let mut t = 0;
            for &share in &shares {
                // `share` percent of the period stalled, at its start.
                let stall = PERIOD_NS / 100 * share;
                g.task_change(t, 0, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING).unwrap();
                g.task_change(t + stall, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING, 0).unwrap();
                t += PERIOD_NS;
                prop_assert!(g.tick(t));
                for (f, exp) in float.iter_mut().zip(EXPS) {
                    let a = exp as f64 / FIXED_1 as f64;
                    *f = *f * a + share as f64 * (1.0 - a);
                }
                let line = g.snapshot(t).some;
                for (i, f) in float.iter().enumerate() {
                    let got = line.avg[i] as f64 / FIXED_1 as f64;
                    prop_assert!((got - f).abs() < 0.2, "avg {} = {} vs {}", i, got, f);
                }
            }
        }
    }

    #[test]
    fn one_task_stalled_while_alone_is_full_and_with_another_only_some() {
        let mut psi = Psi::new(0);
        psi.wake(0, 1);
        psi.memstall_enter(10 * MS, 1);
        assert_eq!(psi.group().state(), (true, true));
        psi.wake(30 * MS, 2); // another task can run: only some
        assert_eq!(psi.group().state(), (true, false));
        psi.sleep(50 * MS, 2);
        psi.memstall_leave(60 * MS, 1);
        assert_eq!(psi.group().state(), (false, false));
        assert_eq!(psi.group().totals(100 * MS), [50 * MS, 30 * MS]);
        // A stalled task that sleeps (waiting for the disk) stays stalled:
        // nothing runs, so that is full.
        psi.memstall_enter(100 * MS, 1);
        psi.sleep(110 * MS, 1);
        assert_eq!(psi.group().state(), (true, true));
        psi.wake(120 * MS, 2);
        assert_eq!(psi.group().state(), (true, false));
        psi.wake(130 * MS, 1);
        psi.memstall_leave(140 * MS, 1);
        assert_eq!(psi.group().totals(200 * MS), [90 * MS, 50 * MS]);
        assert_eq!(psi.errors(), 0);
    }

    #[test]
    fn nested_stalls_count_once_and_exit_ends_a_stall() {
        let mut psi = Psi::new(0);
        psi.wake(0, 7);
        psi.memstall_enter(0, 7);
        psi.memstall_enter(5, 7);
        psi.memstall_leave(8, 7);
        assert_eq!(psi.group().tasks(), (1, 1, 1));
        psi.exit(10, 7, true);
        assert_eq!(psi.group().tasks(), (0, 0, 0));
        assert_eq!(psi.group().totals(100), [10, 10]);
        // Its leftover leave is an error, not an underflow of the counts.
        psi.memstall_leave(20, 7);
        assert_eq!(psi.errors(), 1);
        assert_eq!(psi.group().tasks(), (0, 0, 0));
    }

    #[test]
    fn a_full_table_still_counts_running_stalls() {
        let mut psi = Psi::new(0);
        let n = MAX_STALLED as u32 + 3;
        for pid in 0..n {
            psi.wake(0, pid);
            psi.memstall_enter(0, pid);
        }
        assert_eq!(psi.group().tasks(), (n, n, n));
        for pid in (0..n).rev() {
            psi.memstall_leave(10, pid);
        }
        assert_eq!(psi.group().tasks(), (n, 0, 0));
        assert_eq!(psi.errors(), 0);
        assert_eq!(psi.group().totals(20), [10, 10]);
    }

    #[test]
    fn a_sleep_never_reported_as_a_wake_is_an_error_not_an_underflow() {
        let mut g = Group::new(0);
        assert_eq!(g.task_change(5, TSK_RUNNING, 0), Err(Underflow));
        assert_eq!(g.tasks(), (0, 0, 0));
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut g = Group::new(1000);
        g.task_change(2000, 0, TSK_RUNNING | TSK_MEMSTALL | TSK_MEMSTALL_RUNNING)
            .unwrap();
        // An earlier time counts as the latest one seen.
        g.task_change(1500, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING, 0)
            .unwrap();
        assert_eq!(g.totals(1700), [0, 0]);
        assert_eq!(g.totals(3000), [0, 0]);
        assert!(!g.tick(500));
    }

    /// Linux's arithmetic, step by step: one period of full stall from
    /// idle gives avg10=18.11 avg60=3.27 avg300=0.68.
    #[test]
    fn one_full_period_gives_linux_first_values() {
        assert_eq!(calc_load(0, EXP_10S, 100 * FIXED_1), 37100);
        assert_eq!(calc_load(0, EXP_60S, 100 * FIXED_1), 6700);
        assert_eq!(calc_load(0, EXP_300S, 100 * FIXED_1), 1400);
        assert_eq!(fixed_power_int(EXP_10S, FSHIFT, 0), FIXED_1);
        assert_eq!(fixed_power_int(EXP_10S, FSHIFT, 1), EXP_10S);
        // 1677^2 / 2048 = 1373.2
        assert_eq!(fixed_power_int(EXP_10S, FSHIFT, 2), 1373);
        let mut psi = Psi::new(0);
        psi.wake(0, 1);
        psi.memstall_enter(0, 1);
        assert!(!psi.tick(PERIOD_NS - 1));
        let p = psi.snapshot(PERIOD_NS);
        assert_eq!(
            p.to_string(),
            "some avg10=18.11 avg60=3.27 avg300=0.68 total=2000000\n\
             full avg10=18.11 avg60=3.27 avg300=0.68 total=2000000\n"
        );
    }

    #[test]
    fn the_format_is_linux_s() {
        assert_eq!(
            Pressure::default().to_string(),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        );
        let line = Line {
            avg: [100 * FIXED_1, FIXED_1 / 2 + 21, 1],
            total_us: 123456789,
        };
        assert_eq!(
            format!("{line}"),
            "avg10=100.00 avg60=0.51 avg300=0.00 total=123456789"
        );
        assert_eq!(line.percent(1), (0, 51));
        assert_eq!(line.hundredths(0), 10000);
    }

    /// Runs `periods` periods in which the one task is stalled for
    /// `stalled` ns at the start of each, ticking at each period's end.
    fn constant(g: &mut Group, t: &mut u64, periods: u64, stalled: u64) {
        for _ in 0..periods {
            if stalled > 0 {
                g.task_change(*t, 0, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING)
                    .unwrap();
                g.task_change(*t + stalled, TSK_MEMSTALL | TSK_MEMSTALL_RUNNING, 0)
                    .unwrap();
            }
            *t += PERIOD_NS;
            assert!(g.tick(*t));
        }
    }

    #[test]
    fn constant_stall_converges_to_its_share() {
        for (stalled, want) in [(PERIOD_NS, 10000), (PERIOD_NS / 2, 5000), (0, 0)] {
            let mut g = Group::new(0);
            g.task_change(0, 0, TSK_RUNNING).unwrap();
            let mut t = 0;
            // 10 s settles within 2 min; 300 s within 2 h.
            constant(&mut g, &mut t, 60, stalled);
            let line = g.snapshot(t).some;
            assert_eq!(line.hundredths(0), want, "avg10");
            constant(&mut g, &mut t, 3540, stalled);
            let line = g.snapshot(t).some;
            assert_eq!(
                [line.hundredths(0), line.hundredths(1), line.hundredths(2)],
                [want; 3]
            );
            assert_eq!(line.total_us, stalled * 3600 / 1000);
            // Then idle: every average decays to 0.
            constant(&mut g, &mut t, 3000, 0);
            assert_eq!(g.snapshot(t).some.avg, [0; 3]);
        }
    }

    #[test]
    fn missed_periods_decay_as_idle_ones() {
        let mut a = Group::new(0);
        a.task_change(0, 0, TSK_RUNNING).unwrap();
        let mut t = 0;
        constant(&mut a, &mut t, 30, PERIOD_NS);
        let mut b = a.clone();
        // `a` ticks through 10 idle periods, `b` is not ticked for 20 s.
        let mut ta = t;
        constant(&mut a, &mut ta, 10, 0);
        let (x, y) = (a.snapshot(ta).some, b.snapshot(t + 10 * PERIOD_NS).some);
        for i in 0..3 {
            // Within 0.1 %: calc_load_n's power is rounded differently
            // from ten single steps.
            assert!(x.avg[i].abs_diff(y.avg[i]) <= FIXED_1 / 10, "{x:?} {y:?}");
        }
        // 100 % * (1677 / 2048)^10 = 13.5 %
        assert!((1300..1400).contains(&y.hundredths(0)), "{y:?}");
        // The next update is on the original 2 s grid.
        assert!(!b.tick(t + 10 * PERIOD_NS + PERIOD_NS - 1));
        assert!(b.tick(t + 11 * PERIOD_NS));
    }

    #[test]
    fn a_late_tick_uses_the_time_that_passed_and_caps_at_100_percent() {
        let mut g = Group::new(0);
        g.task_change(0, 0, TSK_RUNNING | TSK_MEMSTALL | TSK_MEMSTALL_RUNNING)
            .unwrap();
        // Half a period late, still all stalled: 100 % of the 2.5 s.
        assert!(g.tick(PERIOD_NS + PERIOD_NS / 4));
        let first = g.snapshot(PERIOD_NS + PERIOD_NS / 4).some;
        assert_eq!(
            first.to_string(),
            "avg10=18.11 avg60=3.27 avg300=0.68 total=2500000"
        );
        assert_eq!(g.totals(3 * S), [3 * S, 3 * S]);
    }
}
