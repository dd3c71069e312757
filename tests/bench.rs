//! Runs the in-kernel benchmarks and prints their lines. Speed targets are
//! not asserted (this is not a timed test); the test checks that every
//! benchmark ran and measured something, and that nothing leaked.

#![no_std]
#![no_main]

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![benchmarks_run])
}

fn benchmarks_run() {
    let results = ferrite::bench::run_all();
    assert_eq!(results.len(), 6);
    for r in &results {
        assert!(
            r.cycles > 0 && r.reference_cycles > 0,
            "{} measured nothing",
            r.name
        );
    }
}
