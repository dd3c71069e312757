//! Deterministic access traces (page ids), seeded.

use alloc::vec::Vec;

use crate::rng::Rng;

/// `pages` pages touched in order, over and over: `len` accesses.
pub fn looping(pages: u64, len: usize) -> Vec<u64> {
    (0..len as u64).map(|i| i % pages).collect()
}

/// Uniformly random accesses over `pages` pages.
pub fn random(pages: u64, len: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.below(pages)).collect()
}

/// Zipf-distributed accesses (exponent 1: page `k`, counted from 1, is
/// used in proportion to `1/k`) over `pages` pages, the popular ones
/// scattered over the id space.
pub fn zipf(pages: u64, len: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut cdf = Vec::with_capacity(pages as usize);
    let mut sum = 0.0;
    for k in 1..=pages {
        sum += 1.0 / k as f64;
        cdf.push(sum);
    }
    (0..len)
        .map(|_| {
            let u = rng.unit() * sum;
            let rank = cdf.partition_point(|&c| c <= u) as u64;
            // Scatter ranks so that popularity is not id order.
            rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20
        })
        .collect()
}

/// A hot set of `hot` pages used at random; `rounds` times: `hot_len`
/// accesses to the hot set alone, then a one-time sequential scan of
/// `scan` new pages with a hot access after every `scan_per_hot` scan
/// pages.
pub fn hot_scan(
    hot: u64,
    scan: u64,
    scan_per_hot: u64,
    hot_len: usize,
    rounds: usize,
    seed: u64,
) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut next_scan = 1 << 40;
    for _ in 0..rounds {
        for _ in 0..hot_len {
            out.push(rng.below(hot));
        }
        for i in 0..scan {
            out.push(next_scan);
            next_scan += 1;
            if (i + 1) % scan_per_hot == 0 {
                out.push(rng.below(hot));
            }
        }
    }
    out
}

/// Working sets of `set` pages used at random for `phase_len` accesses
/// each; each phase's set starts `shift` pages after the previous one's
/// (overlapping when `shift < set`).
pub fn shifting(set: u64, shift: u64, phase_len: usize, phases: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(phase_len * phases);
    for phase in 0..phases as u64 {
        for _ in 0..phase_len {
            out.push(phase * shift + rng.below(set));
        }
    }
    out
}
