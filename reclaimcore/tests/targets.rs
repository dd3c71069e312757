//! The replacement-quality targets of issue 12, on the standard traces
//! (`quality::traces`, 1000 frames): deterministic properties of the
//! algorithms (fixed seeds), not timings. `cargo run --release -p
//! reclaimcore --example quality` prints the same table.

use reclaimcore::quality::{geomean, rows, Row};

const MEMORY: usize = 1000;

fn table() -> Vec<Row> {
    rows(MEMORY)
}

#[test]
fn loops_larger_than_memory_take_half_lrus_misses_or_fewer() {
    let t = table();
    let loops: Vec<&Row> = t.iter().filter(|r| r.trace.starts_with("loop")).collect();
    assert!(!loops.is_empty());
    for r in loops {
        assert!(
            2 * r.ferrite <= r.lru,
            "{}: Ferrite {} vs LRU {}",
            r.trace,
            r.ferrite,
            r.lru
        );
    }
}

#[test]
fn a_scan_does_not_evict_the_hot_set() {
    // OPT keeps the hot set through every scan; so does Ferrite's policy.
    let r = table()
        .into_iter()
        .find(|r| r.trace.starts_with("hot set"))
        .unwrap();
    assert!(
        r.ferrite * 100 <= r.opt * 101,
        "Ferrite {} vs OPT {}",
        r.ferrite,
        r.opt
    );
    assert!(r.ferrite < r.lru);
}

#[test]
fn opt_is_the_bound_on_every_trace() {
    for r in table() {
        for m in [r.fifo, r.lru, r.clock, r.ferrite] {
            assert!(r.opt <= m, "{}", r.trace);
        }
    }
}

/// Not met: on "shifting sets 0.75x" Ferrite takes 1.06 x LRU's misses
/// (3698 vs 3499: pages of a new working set that leave the inactive list
/// before their second use miss twice). Every other trace is within
/// 1.00 x.
#[test]
#[ignore = "target not met: shifting sets 1.06 x LRU (see README, Benchmarks)"]
fn never_more_than_5_percent_worse_than_lru() {
    for r in table() {
        assert!(
            r.ferrite * 100 <= r.lru * 105,
            "{}: Ferrite {} vs LRU {}",
            r.trace,
            r.ferrite,
            r.lru
        );
    }
}

/// Not met: 1.36. Uniform random over 2x memory costs every online policy
/// about 2.37 x OPT (none can do better than a miss rate of
/// 1 - memory/footprint there), and on Zipf Ferrite is at 1.75 x (LRU 1.85,
/// keeping the 1000 most popular pages 1.40).
#[test]
#[ignore = "target not met: geometric mean 1.36 x OPT (see README, Benchmarks)"]
fn geometric_mean_within_1_3_of_opt() {
    let t = table();
    let g = geomean(&t, |r| r.ferrite);
    assert!(g <= 1.3, "geometric mean {g:.3}");
}
