//! In-kernel benchmarks of the fault paths, in TSC cycles, each against the
//! work it stands in for. Lines read
//! `bench: <name>: <cycles> cycles, <ratio> x <reference>`.
//!
//! Targets (see the README): demand-zero fault <= 3 x zeroing a page, COW
//! fault <= 2 x copying a page, fork of 64 MiB touched >= 20 x faster than
//! copying it, and a fault among 10 000 regions within 1.5 x of one among 10.
//! Two lines give context: a zero-page read fault (the cheapest fault) and a
//! syscall round trip. Under QEMU's TCG the cycles are emulated; the ratios
//! are what to read.
//!
//! Each benchmark runs several times, each run measuring the operation and
//! its reference back to back; the printed ratio is the median of the runs'
//! ratios, so a slow spell of the host hits both sides of a ratio alike.
//!
//! No `unsafe` here: frames are zeroed and copied through `mm::direct`, and
//! the ring-3 loops are `arch::ring3`'s.

#![deny(unsafe_code)]

pub mod swap;

use alloc::sync::Arc;
use alloc::vec::Vec;
use mmcore::FrameKind;
use spin::Mutex;
use vmcore::{Prot, Vma, PAGE_SIZE as PAGE};

use crate::arch::ring3::{self, BenchEntry};
use crate::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use crate::mm::uaccess::copy_to_user;
use crate::mm::{direct, frames};
use crate::time::rdtsc;

const BASE: u64 = 0x1000_0000;

/// One benchmark's result.
#[derive(Clone, Copy, Debug)]
pub struct BenchResult {
    pub name: &'static str,
    /// Median cycles of the operation over the runs.
    pub cycles: u64,
    pub reference: &'static str,
    /// Median cycles of the reference over the runs.
    pub reference_cycles: u64,
    /// Median over the runs of `cycles / reference_cycles` (for fork, the
    /// eager copy over the fork: a speedup).
    ratio: f64,
}

impl BenchResult {
    /// From `(cycles, reference_cycles)` pairs, each measured back to back.
    fn from_runs(name: &'static str, reference: &'static str, runs: &[(u64, u64)]) -> Self {
        let mut ratios: Vec<f64> = runs
            .iter()
            .map(|&(c, r)| c as f64 / r.max(1) as f64)
            .collect();
        ratios.sort_unstable_by(f64::total_cmp);
        BenchResult {
            name,
            cycles: median(runs.iter().map(|r| r.0).collect()),
            reference,
            reference_cycles: median(runs.iter().map(|r| r.1).collect()),
            ratio: ratios[ratios.len() / 2],
        }
    }

    /// The median of the runs' ratios.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    fn print(&self) {
        crate::kprintln!(
            "bench: {}: {} cycles, {:.2} x {} ({} cycles)",
            self.name,
            self.cycles,
            self.ratio(),
            self.reference,
            self.reference_cycles
        );
    }
}

fn space() -> SharedAddressSpace {
    let a = Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")));
    aspace::switch_to(Some(a.clone()));
    load_toucher(&a);
    a
}

fn map(a: &SharedAddressSpace, start: u64, pages: u64) {
    a.lock()
        .map(Vma::anonymous(start, start + pages * PAGE, Prot::RW))
        .expect("free range");
}

const CODE: u64 = 0x40_0000;
const STACK_TOP: u64 = 0x7000_0000;

/// Puts the touch loop at CODE and a small stack below STACK_TOP.
fn load_toucher(a: &SharedAddressSpace) {
    let code = ring3::bench_code();
    map(a, CODE, 1);
    copy_to_user(CODE, code).expect("code page");
    a.lock()
        .protect(CODE, CODE + PAGE, Prot::RX)
        .expect("code page");
    map(a, STACK_TOP - PAGE, 1);
    copy_to_user(STACK_TOP - 8, &[0; 8]).expect("stack page");
}

/// Cycles per page for ring-3 code to write one byte into each of `pages`
/// pages at `start` (each write faults; the one kernel entry and exit are
/// spread over all of them).
fn touch_cycles(a: &SharedAddressSpace, start: u64, pages: u64) -> u64 {
    let t0 = rdtsc();
    let exit = crate::proc::user::run("bench", a.clone(), CODE, STACK_TOP, start, pages);
    let cycles = rdtsc() - t0;
    assert_eq!(exit, crate::proc::user::UserExit::Exited(0), "touch loop");
    aspace::switch_to(Some(a.clone()));
    cycles / pages
}

/// Median of `runs` measurements: robust against the timer interrupt.
fn median(mut runs: Vec<u64>) -> u64 {
    runs.sort_unstable();
    runs[runs.len() / 2]
}

/// Frames for the reference measurements: each used once, like the frame a
/// fault gets (a fault never zeroes or copies into the same hot page twice).
fn fresh_frames(n: usize) -> Vec<mmcore::Pfn> {
    (0..n)
        .map(|_| frames::alloc(0, FrameKind::Kernel).expect("a frame"))
        .collect()
}

fn free_frames(list: Vec<mmcore::Pfn>) {
    for pfn in list {
        frames::free(pfn, 0).unwrap();
    }
}

/// Cycles to zero a 4 KiB page that was just allocated (average over 512
/// distinct frames: what a demand-zero fault has to do).
fn zero_page_cycles() -> u64 {
    let pages = fresh_frames(512);
    let t0 = rdtsc();
    for &pfn in &pages {
        direct::zero_frame(pfn);
    }
    let cycles = (rdtsc() - t0) / pages.len() as u64;
    free_frames(pages);
    cycles
}

/// Cycles to copy a 4 KiB page into a just-allocated one (average over 512
/// distinct pairs: what a COW fault has to do).
fn copy_page_cycles() -> u64 {
    let src = fresh_frames(512);
    let dst = fresh_frames(512);
    for &pfn in &src {
        // Give the sources contents, as a COW source has.
        direct::fill_frame(pfn, 0x5a);
    }
    let t0 = rdtsc();
    for (&s, &d) in src.iter().zip(&dst) {
        direct::copy_frame(d, s);
    }
    let cycles = (rdtsc() - t0) / src.len() as u64;
    free_frames(src);
    free_frames(dst);
    cycles
}

/// Writes once to every free frame. QEMU backs guest RAM lazily, so the
/// first use of a frame ever also pays for a page fault in the host; on a
/// real machine there is no such cost, so no measurement should include it.
fn back_free_memory() {
    let mut blocks = Vec::with_capacity(4096);
    for order in (0..=mmcore::MAX_ORDER).rev() {
        while blocks.len() < blocks.capacity() {
            let Some(pfn) = frames::alloc(order, FrameKind::Kernel) else {
                break;
            };
            blocks.push((pfn, order));
        }
    }
    for &(pfn, order) in &blocks {
        for i in 0..1u64 << order {
            direct::touch_frame(mmcore::Pfn(pfn.0 + i));
        }
    }
    for (pfn, order) in blocks {
        frames::free(pfn, order).unwrap();
    }
}

/// Runs per benchmark.
const RUNS: usize = 7;

/// Cycles spent inside the fault handler per fault during `f`.
fn handler_share(pages: u64, f: impl FnOnce() -> u64) -> (u64, u64) {
    let before = crate::mm::vmstat::FAULT_HANDLER_CYCLES.get();
    let total = f();
    let inside = (crate::mm::vmstat::FAULT_HANDLER_CYCLES.get() - before) / pages;
    (total, inside)
}

/// One demand-zero measurement: cycles per fault and, of those, cycles
/// inside the handler.
fn demand_zero_once() -> (u64, u64) {
    let a = space();
    let pages = 512;
    // The first half builds the page tables for the range; the second half
    // is measured: fresh pages whose tables already exist.
    map(&a, BASE, 2 * pages);
    touch_cycles(&a, BASE, pages);
    let share = handler_share(pages, || touch_cycles(&a, BASE + pages * PAGE, pages));
    aspace::switch_to(None);
    share
}

pub fn demand_zero_fault() -> BenchResult {
    fault_bench(
        "demand-zero-fault",
        demand_zero_once,
        "zeroing a fresh 4 KiB page",
        zero_page_cycles,
    )
}

/// Runs a fault benchmark: `once` gives (cycles per fault, of which inside
/// the handler), `reference` the cycles it is compared with. Also prints the
/// handler's own share against the reference: the kernel's part of the
/// fault, without the CPU's exception delivery and return.
fn fault_bench(
    name: &'static str,
    once: fn() -> (u64, u64),
    reference: &'static str,
    reference_cycles: fn() -> u64,
) -> BenchResult {
    let mut handler_runs = Vec::new();
    let runs: Vec<(u64, u64)> = (0..RUNS)
        .map(|_| {
            let (cycles, handler) = once();
            let reference = reference_cycles();
            handler_runs.push((handler, reference));
            (cycles, reference)
        })
        .collect();
    let r = BenchResult::from_runs(name, reference, &runs);
    let handler = BenchResult::from_runs(name, reference, &handler_runs);
    crate::kprintln!(
        "bench: {name}: {} of {} cycles inside the handler ({:.2} x {reference})",
        handler.cycles,
        r.cycles,
        handler.ratio()
    );
    r
}

/// One COW measurement: a parent writes to pages it shares with a child.
fn cow_once() -> (u64, u64) {
    let parent = space();
    let pages = 512;
    map(&parent, BASE, pages);
    touch_cycles(&parent, BASE, pages);
    let child = parent.lock().fork().expect("fork");
    // The child keeps its references: every parent write must copy.
    let share = handler_share(pages, || touch_cycles(&parent, BASE, pages));
    aspace::switch_to(None);
    drop(child);
    share
}

pub fn cow_fault() -> BenchResult {
    fault_bench(
        "cow-fault",
        cow_once,
        "copying into a fresh 4 KiB page",
        copy_page_cycles,
    )
}

/// One minor-fault measurement: ring 3 reads fresh anonymous pages, each
/// read answered with the shared zero page (no allocation, no copy).
fn minor_fault_once() -> (u64, u64) {
    let a = space();
    let pages = 512;
    map(&a, BASE, 2 * pages);
    // The first half builds the page tables; the second half is measured.
    touch_cycles(&a, BASE, pages);
    let offset = BenchEntry::Read.offset();
    let share = handler_share(pages, || {
        let t0 = rdtsc();
        let exit = crate::proc::user::run(
            "bench",
            a.clone(),
            CODE + offset,
            STACK_TOP,
            BASE + pages * PAGE,
            pages,
        );
        assert_eq!(exit, crate::proc::user::UserExit::Exited(0), "read loop");
        (rdtsc() - t0) / pages
    });
    aspace::switch_to(None);
    share
}

/// Context for the COW figure: the cheapest fault there is (exception
/// delivery and return, the region lookup, one walk and one new entry)
/// against a page copy. A COW fault is this plus an allocation, the copy
/// and a TLB flush.
pub fn minor_fault() -> BenchResult {
    fault_bench(
        "zero-page-read-fault",
        minor_fault_once,
        "copying into a fresh 4 KiB page",
        copy_page_cycles,
    )
}

/// Fork with 64 MiB touched, against copying those 64 MiB eagerly (what
/// fork did before copy-on-write). `cycles` is the eager copy, so the ratio
/// is the speedup.
pub fn fork_64m() -> BenchResult {
    let a = space();
    let pages = 64 * 1024 * 1024 / PAGE;
    map(&a, BASE, pages);
    touch_cycles(&a, BASE, pages);
    aspace::switch_to(None);
    let runs: Vec<(u64, u64)> = (0..RUNS)
        .map(|_| {
            let t0 = rdtsc();
            let child = a.lock().fork().expect("fork");
            let fork_cycles = rdtsc() - t0;
            drop(child);
            (eager_copy_cycles(&a, pages), fork_cycles)
        })
        .collect();
    BenchResult::from_runs(
        "fork-64MiB",
        "fork (speedup of COW fork over an eager copy)",
        &runs,
    )
}

/// The eager copy of `pages` pages at BASE: a fresh frame per page, filled
/// from the original.
fn eager_copy_cycles(a: &SharedAddressSpace, pages: u64) -> u64 {
    let mut aspace = a.lock();
    let t0 = rdtsc();
    let mut copies = Vec::with_capacity(pages as usize);
    for i in 0..pages {
        let (pa, _) = aspace.translate(BASE + i * PAGE).expect("touched");
        let dst = frames::alloc(0, FrameKind::UserAnon).expect("memory for the copy");
        direct::copy_frame(dst, mmcore::Pfn::from_addr(pa));
        copies.push(dst);
    }
    let cycles = rdtsc() - t0;
    for pfn in copies {
        frames::free(pfn, 0).unwrap();
    }
    cycles
}

/// Cycles the fault handler spends per fault in a space with `regions`
/// regions (a gap between each, so none merge). Only the handler is timed:
/// that is where the region lookup happens, and under emulation the time
/// around it (exception delivery, the user loop) swings with the host.
fn fault_among(regions: u64) -> u64 {
    let a = space();
    for r in 0..regions {
        map(&a, BASE + r * 2 * PAGE, 1);
    }
    let target = BASE + regions * 2 * PAGE;
    let pages = 256;
    map(&a, target, pages);
    let (_, inside) = handler_share(pages, || touch_cycles(&a, target, pages));
    aspace::switch_to(None);
    inside
}

pub fn region_lookup() -> BenchResult {
    fault_among(10); // warm up the heap and caches
    let runs: Vec<(u64, u64)> = (0..RUNS)
        .map(|_| (fault_among(10_000), fault_among(10)))
        .collect();
    BenchResult::from_runs(
        "fault-handler-with-10000-regions",
        "fault handler with 10 regions",
        &runs,
    )
}

/// Context for the fault numbers: one `getpid` round trip into the kernel
/// and back, against a page zeroing.
pub fn kernel_entry() -> BenchResult {
    let a = space();
    let offset = BenchEntry::Syscall.offset();
    let calls = 4096;
    let runs: Vec<(u64, u64)> = (0..RUNS)
        .map(|_| {
            let t0 = rdtsc();
            let exit =
                crate::proc::user::run("bench", a.clone(), CODE + offset, STACK_TOP, 0, calls);
            let cycles = (rdtsc() - t0) / calls;
            assert_eq!(exit, crate::proc::user::UserExit::Exited(0), "syscall loop");
            aspace::switch_to(Some(a.clone()));
            (cycles, zero_page_cycles())
        })
        .collect();
    aspace::switch_to(None);
    BenchResult::from_runs("syscall-round-trip", "zeroing a 4 KiB page", &runs)
}

/// Runs every benchmark and prints its line.
pub fn run_all() -> Vec<BenchResult> {
    back_free_memory();
    let results = alloc::vec![
        demand_zero_fault(),
        cow_fault(),
        minor_fault(),
        fork_64m(),
        region_lookup(),
        kernel_entry()
    ];
    for r in &results {
        r.print();
    }
    results
}
