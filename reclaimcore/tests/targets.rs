//! The replacement-quality targets of issue 12, on the standard traces
//! (`quality::traces`, 1000 frames, every hit a touch): deterministic
//! properties of the algorithms (fixed seeds), not timings. `cargo run
//! --release -p reclaimcore --example quality` prints the same tables, and
//! the accessed-bits mode next to them.

use reclaimcore::quality::{rows, rows_for, Row};
use reclaimcore::sim::Mode;

const MEMORY: usize = 1000;
/// The standard seed and two others: the targets hold for all three.
const SEEDS: [u64; 3] = [0, 10, 20];

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
fn never_worse_than_lru_by_more_than_5_percent() {
    for seed in SEEDS {
        for r in rows_for(MEMORY, Mode::Trace, seed) {
            assert!(
                r.ferrite * 100 <= r.lru * 105,
                "seed {seed}, {}: Ferrite {} vs LRU {}",
                r.trace,
                r.ferrite,
                r.lru
            );
        }
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
fn a_scan_does_not_evict_the_hot_set_seen_through_accessed_bits() {
    // As the kernel sees uses: the hot set sits on the active list, its
    // uses unseen, and every scan page comes in with its accessed bit set
    // by its fault. Still no hot page is lost to a scan.
    for seed in SEEDS {
        let r = rows_for(MEMORY, Mode::Bits, seed)
            .into_iter()
            .find(|r| r.trace.starts_with("hot set"))
            .unwrap();
        assert!(
            r.ferrite * 100 <= r.opt * 101,
            "seed {seed}: Ferrite {} vs OPT {}",
            r.ferrite,
            r.opt
        );
        assert!(r.ferrite < r.lru, "seed {seed}");
    }
}

#[test]
fn opt_is_the_bound_on_every_trace() {
    for mode in [Mode::Trace, Mode::Bits] {
        for r in rows_for(MEMORY, mode, 0) {
            for m in [r.fifo, r.lru, r.clock, r.ferrite] {
                assert!(r.opt <= m, "{mode:?} {}", r.trace);
            }
        }
    }
}

// The geometric-mean target (<= 1.3 x OPT) is not met: 1.34 (see the
// README's replacement-quality section for what bounds it). `make bench`'s
// quality table reports it (met / NOT MET per target); it is not asserted
// here, so no test is ignored to stay green.
