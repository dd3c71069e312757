//! The replacement-quality targets of issue 12, on the standard traces
//! (`quality::traces`, 1000 frames): deterministic properties of the
//! algorithms (fixed seeds), not timings. `cargo run --release -p
//! reclaimcore --example quality` prints the same table.

use reclaimcore::quality::{rows, Row};

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

// Two of the targets are not met (shifting sets 1.06 x LRU against
// "never worse than LRU by more than 5 %"; geometric mean 1.36 x OPT
// against 1.3): they are reported by `make bench`'s quality table (met /
// NOT MET per target), not asserted here, so no test is ignored to stay
// green.
