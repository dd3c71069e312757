//! The replacement-quality table: every policy on every trace, against
//! OPT, for one memory size (`make bench` prints it; the tests assert the
//! targets on it).

use alloc::vec::Vec;

use crate::sim::Mode;
use crate::{opt, sim, trace, Clock, Ferrite, Fifo, Lru};

/// The standard traces for a memory of `memory` pages, each as (name,
/// accesses). Sizes are relative to memory; the seeds are fixed (those of
/// [`traces_seeded`] with `seed` 0).
///
/// - loop: 1.1x memory, 40 passes.
/// - hot set + scans: a hot set of half the memory used at random, then a
///   one-time scan of 2x memory with one hot access per 3 scan pages; 5
///   rounds.
/// - zipf: exponent 1 over 4x memory.
/// - shifting sets: 8 phases of random use of 0.75x memory, each set
///   half-overlapping the previous one.
/// - random: uniform over 2x memory.
pub fn traces(memory: usize) -> Vec<(&'static str, Vec<u64>)> {
    traces_seeded(memory, 0)
}

/// The standard traces with other random choices: each trace's seed is
/// `seed` plus its fixed one.
pub fn traces_seeded(memory: usize, seed: u64) -> Vec<(&'static str, Vec<u64>)> {
    let m = memory as u64;
    alloc::vec![
        ("loop 1.1x memory", trace::looping(m * 11 / 10, memory * 40)),
        (
            "hot set + scans",
            trace::hot_scan(m / 2, 2 * m, 3, memory * 5, 5, seed + 1)
        ),
        (
            "zipf over 4x memory",
            trace::zipf(4 * m, memory * 60, seed + 2)
        ),
        (
            "shifting sets 0.75x",
            trace::shifting(m * 3 / 4, m * 3 / 8, memory * 15, 8, seed + 3)
        ),
        (
            "random over 2x memory",
            trace::random(2 * m, memory * 40, seed + 4)
        ),
    ]
}

/// Misses of each policy on one trace.
#[derive(Clone, Debug)]
pub struct Row {
    /// The trace's name.
    pub trace: &'static str,
    /// Its length.
    pub accesses: usize,
    /// Belady's OPT.
    pub opt: u64,
    /// FIFO.
    pub fifo: u64,
    /// LRU.
    pub lru: u64,
    /// CLOCK.
    pub clock: u64,
    /// Ferrite's policy.
    pub ferrite: u64,
}

/// Runs every policy on every standard trace with `memory` frames, every
/// hit a touch.
pub fn rows(memory: usize) -> Vec<Row> {
    rows_for(memory, Mode::Trace, 0)
}

/// Runs every policy on every standard trace ([`traces_seeded`] with
/// `seed`) with `memory` frames, hits reported as `mode` says.
pub fn rows_for(memory: usize, mode: Mode, seed: u64) -> Vec<Row> {
    traces_seeded(memory, seed)
        .into_iter()
        .map(|(name, t)| Row {
            trace: name,
            accesses: t.len(),
            opt: opt::misses(&t, memory),
            fifo: sim::misses_in(
                mode,
                Fifo::with_capacity(memory).expect("host allocation"),
                &t,
            ),
            lru: sim::misses_in(
                mode,
                Lru::with_capacity(memory).expect("host allocation"),
                &t,
            ),
            clock: sim::misses_in(
                mode,
                Clock::with_capacity(memory).expect("host allocation"),
                &t,
            ),
            ferrite: sim::misses_in(
                mode,
                Ferrite::with_capacity(memory).expect("host allocation"),
                &t,
            ),
        })
        .collect()
}

/// `misses / opt` (1 when both are 0).
pub fn ratio(misses: u64, opt: u64) -> f64 {
    if opt == 0 {
        return if misses == 0 { 1.0 } else { f64::INFINITY };
    }
    misses as f64 / opt as f64
}

/// Geometric mean over `rows` of `pick(row) / row.opt`.
pub fn geomean(rows: &[Row], pick: impl Fn(&Row) -> u64) -> f64 {
    // No `ln` in core: multiply, then take the n-th root by bisection.
    let product: f64 = rows.iter().map(|r| ratio(pick(r), r.opt)).product();
    nth_root(product, rows.len() as u32)
}

fn nth_root(x: f64, n: u32) -> f64 {
    if n == 0 || x <= 0.0 || !x.is_finite() {
        return x;
    }
    let (mut lo, mut hi) = (0.0f64, x.max(1.0));
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if (0..n).fold(1.0, |acc, _| acc * mid) < x {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}
