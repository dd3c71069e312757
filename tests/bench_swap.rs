//! Swap throughput against the device's own raw speed, in one boot with a
//! virtio disk attached (`swap=128M` in machines.txt): prints every figure
//! and ratio (kernel/bench/swap.rs). Speed targets are not asserted (this
//! is not a timed test); the test checks that every measurement ran and
//! measured something, and that nothing leaked.

#![no_std]
#![no_main]

use ferrite::bench::swap::{self, Throughput};
use ferrite::testing::settled_free_pages;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![swap_throughput_runs])
}

fn measured(results: &[Throughput]) {
    for r in results {
        assert!(
            r.mib_s > 0.0 && r.reference_mib_s > 0.0,
            "{} measured nothing",
            r.name
        );
    }
}

fn swap_throughput_runs() {
    let free0 = settled_free_pages();
    let disk = swap::disk();
    assert_eq!(disk.len(), 6, "the disk figures");
    measured(&disk);
    // The results are heap memory of ours: gone before each count.
    drop(disk);
    let free1 = settled_free_pages();
    let zram = swap::zram();
    assert_eq!(zram.len(), 4, "the compressed-RAM figures");
    measured(&zram);
    drop(zram);
    let free2 = settled_free_pages();
    assert_eq!(ferrite::mm::swap::usage(), (0, 0, 0), "swap is off again");
    ferrite::kprintln!("free pages: {free0} before, {free1} after the disk, {free2} after zram");
    // The kernel thread's process record keeps the address space it last
    // ran a user process in until its next switch (sched.rs), so one
    // program of each half is still held when its half ends: the disk
    // half's is let go by the zram half, which leaves its own, of the
    // same size. So the zram half must end exactly where the disk half did.
    assert_eq!(free2, free1, "frames lost on compressed swap");
}
