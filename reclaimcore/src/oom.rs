//! Choosing the out-of-memory victim: Linux's `oom_badness` and the scan
//! over every task (`select_bad_process`), as pure logic.
//!
//! A task's badness is the memory killing it would give back, in pages:
//! resident pages + swap entries + page-table pages. `oom_score_adj`
//! (-1000..=1000) moves it by `adj / 1000` of all memory (RAM + swap): +1000
//! makes a task the first choice whatever its size, -1000 means never kill.
//! Tasks already dying are never chosen again (their memory is on its way
//! back; killing a second task would not help more).

/// `oom_score_adj` of a task that must never be killed.
pub const OOM_SCORE_ADJ_MIN: i16 = -1000;
/// The largest `oom_score_adj`: chosen first.
pub const OOM_SCORE_ADJ_MAX: i16 = 1000;

/// What the killer knows of one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Process id (0, the kernel's own thread, is never a candidate).
    pub pid: u32,
    /// Resident pages (anonymous and file).
    pub rss: u64,
    /// Pages out in swap.
    pub swapents: u64,
    /// Page-table pages of its user half.
    pub pgtables: u64,
    /// Its `oom_score_adj`, -1000..=1000.
    pub adj: i16,
    /// Already killed or exiting.
    pub dying: bool,
}

/// Why an `oom_score_adj` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdjOutOfRange;

/// Checks an `oom_score_adj` as Linux's `/proc/PID/oom_score_adj` write
/// does (EINVAL outside -1000..=1000).
pub fn check_adj(value: i64) -> Result<i16, AdjOutOfRange> {
    if (i64::from(OOM_SCORE_ADJ_MIN)..=i64::from(OOM_SCORE_ADJ_MAX)).contains(&value) {
        Ok(value as i16)
    } else {
        Err(AdjOutOfRange)
    }
}

/// Linux's `oom_badness`: `None` for a task that may not be killed (pid 0,
/// `oom_score_adj` -1000, already dying); otherwise its points, where
/// `total_pages` is RAM + swap in pages. May be negative (a small task with
/// a negative adjustment), and still killable then.
pub fn badness(c: &Candidate, total_pages: u64) -> Option<i64> {
    if c.pid == 0 || c.adj <= OOM_SCORE_ADJ_MIN || c.dying {
        return None;
    }
    let points = c
        .rss
        .saturating_add(c.swapents)
        .saturating_add(c.pgtables)
        .min(i64::MAX as u64 / 2) as i64;
    // Linux: adj *= totalpages / 1000 (integer division first).
    let unit = (total_pages / 1000).min(i64::MAX as u64 / 2000) as i64;
    Some(points + i64::from(c.adj.clamp(OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX)) * unit)
}

/// `/proc/PID/oom_score`: badness scaled to 0..=2000 as Linux shows it
/// (`points * 1000 / totalpages + 1000`, clamped), 0 for an unkillable task.
pub fn oom_score(c: &Candidate, total_pages: u64) -> u64 {
    match badness(c, total_pages) {
        None => 0,
        Some(points) => {
            let total = total_pages.max(1) as i128;
            (i128::from(points) * 1000 / total + 1000).clamp(0, 2000) as u64
        }
    }
}

/// Keeps the worst task seen so far, as the scan over every task goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Chooser {
    best: Option<(i64, Candidate)>,
}

impl Chooser {
    /// Nothing chosen yet.
    pub const fn new() -> Chooser {
        Chooser { best: None }
    }

    /// Considers `c`; returns its points (`None`: not killable). A tie goes
    /// to the task seen later, as Linux's scan does.
    pub fn consider(&mut self, c: Candidate, total_pages: u64) -> Option<i64> {
        let points = badness(&c, total_pages)?;
        if self.best.is_none_or(|(best, _)| points >= best) {
            self.best = Some((points, c));
        }
        Some(points)
    }

    /// The victim and its points, if any task was killable.
    pub fn chosen(&self) -> Option<(i64, Candidate)> {
        self.best
    }
}

/// The victim among `tasks` (scanned in order), if any is killable.
pub fn choose(tasks: &[Candidate], total_pages: u64) -> Option<Candidate> {
    let mut chooser = Chooser::new();
    for &c in tasks {
        chooser.consider(c, total_pages);
    }
    chooser.chosen().map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn task(pid: u32, rss: u64, adj: i16) -> Candidate {
        Candidate {
            pid,
            rss,
            swapents: 0,
            pgtables: 0,
            adj,
            dying: false,
        }
    }

    const TOTAL: u64 = 65_536; // 256 MiB of 4 KiB pages

    #[test]
    fn the_largest_task_is_chosen_not_the_first_or_last() {
        let tasks = [task(3, 100, 0), task(7, 9_000, 0), task(9, 50, 0)];
        assert_eq!(choose(&tasks, TOTAL).unwrap().pid, 7);
    }

    #[test]
    fn swap_and_page_tables_count() {
        let mut a = task(1, 1_000, 0);
        let mut b = task(2, 900, 0);
        b.swapents = 80;
        b.pgtables = 30;
        assert_eq!(badness(&b, TOTAL), Some(1_010));
        assert_eq!(choose(&[a, b], TOTAL).unwrap().pid, 2);
        a.pgtables = 11;
        assert_eq!(choose(&[a, b], TOTAL).unwrap().pid, 1);
    }

    #[test]
    fn adj_moves_by_thousandths_of_all_memory() {
        // 65 unit pages per adj point (65_536 / 1000, integer division).
        assert_eq!(badness(&task(1, 1_000, 10), TOTAL), Some(1_650));
        assert_eq!(badness(&task(1, 1_000, -10), TOTAL), Some(350));
        assert_eq!(badness(&task(1, 1_000, -500), TOTAL), Some(1_000 - 32_500));
        // +1000 beats a task holding nearly all memory (Linux divides
        // first, so not quite all of it).
        let tasks = [task(1, TOTAL - 1_000, 0), task(2, 1, 1000)];
        assert_eq!(choose(&tasks, TOTAL).unwrap().pid, 2);
    }

    #[test]
    fn never_kill_dying_or_the_kernel() {
        let mut dying = task(5, 10_000, 0);
        dying.dying = true;
        let tasks = [
            task(0, 50_000, 0),
            task(4, 40_000, OOM_SCORE_ADJ_MIN),
            dying,
            task(6, 1, 0),
        ];
        assert_eq!(choose(&tasks, TOTAL).unwrap().pid, 6);
        assert_eq!(choose(&tasks[..3], TOTAL), None);
    }

    #[test]
    fn a_negative_score_is_still_killable() {
        let tasks = [task(1, 10, -900), task(2, 0, -1000)];
        assert_eq!(choose(&tasks, TOTAL).unwrap().pid, 1);
    }

    #[test]
    fn ties_go_to_the_later_task() {
        let tasks = [task(1, 10, 0), task(2, 10, 0)];
        assert_eq!(choose(&tasks, TOTAL).unwrap().pid, 2);
    }

    #[test]
    fn adj_range_is_linux_s() {
        assert_eq!(check_adj(-1000), Ok(-1000));
        assert_eq!(check_adj(1000), Ok(1000));
        assert_eq!(check_adj(0), Ok(0));
        assert_eq!(check_adj(1001), Err(AdjOutOfRange));
        assert_eq!(check_adj(-1001), Err(AdjOutOfRange));
        assert_eq!(check_adj(i64::MIN), Err(AdjOutOfRange));
    }

    #[test]
    fn oom_score_is_scaled_like_proc() {
        assert_eq!(oom_score(&task(1, 0, 0), TOTAL), 1000);
        assert_eq!(oom_score(&task(1, TOTAL / 2, 0), TOTAL), 1500);
        assert_eq!(oom_score(&task(1, 0, -1000), TOTAL), 0);
        assert_eq!(oom_score(&task(1, TOTAL, 1000), TOTAL), 2000);
    }

    fn candidate() -> impl Strategy<Value = Candidate> {
        (
            0u32..50,
            0u64..1 << 40,
            0u64..1 << 30,
            0u64..1 << 20,
            -1000i16..=1000,
            any::<bool>(),
        )
            .prop_map(|(pid, rss, swapents, pgtables, adj, dying)| Candidate {
                pid,
                rss,
                swapents,
                pgtables,
                adj,
                dying,
            })
    }

    proptest! {
        /// Against a simple model: the victim is killable, has the most
        /// points, and is the last with that many; none when nothing is
        /// killable.
        #[test]
        fn choose_matches_the_model(
            tasks in proptest::collection::vec(candidate(), 0..20),
            total in 1u64..1 << 40,
        ) {
            let killable: Vec<(usize, i64)> = tasks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.pid != 0 && c.adj != -1000 && !c.dying)
                .map(|(i, c)| {
                    let adj = i64::from(c.adj) * (total / 1000) as i64;
                    (i, (c.rss + c.swapents + c.pgtables) as i64 + adj)
                })
                .collect();
            let want = killable
                .iter()
                .max_by_key(|&&(i, points)| (points, i))
                .map(|&(i, _)| tasks[i]);
            prop_assert_eq!(choose(&tasks, total), want);
        }

        /// More memory never lowers a task's points.
        #[test]
        fn badness_is_monotonic_in_memory(c in candidate(), more in 0u64..1 << 20, total in 1u64..1 << 40) {
            let mut bigger = c;
            bigger.rss += more;
            match (badness(&c, total), badness(&bigger, total)) {
                (Some(a), Some(b)) => prop_assert!(b >= a),
                (None, None) => {}
                other => prop_assert!(false, "killability changed: {:?}", other),
            }
        }
    }
}
