//! Swap throughput against the device's own raw speed, measured in one
//! boot (issue 12's target: swap-out and swap-in of 64 MiB at ≥ 50 % of the
//! disk's raw sequential write/read, compressed swap at ≥ 50 % of raw LZ4
//! compress/decompress of the same pages). Lines read
//! `bench: swap <what>: <MiB/s> MiB/s, <ratio> x <reference> (<MiB/s> MiB/s)`.
//!
//! On the disk (a virtio-blk of at least 64 MiB, attached by machines.txt):
//!
//! 1. raw sequential write and read of 64 MiB at 1, 8 and 64 pages per
//!    request, before the disk holds swap (1: what reclaim's one-page
//!    writes ask of the disk; 8: swap-in readahead's window; 64: a
//!    [`swap::RUN_PAGES`] run, the most the driver sends at once);
//! 2. 64 MiB of a program's anonymous memory (pages of text, integers and
//!    half-random bytes) written with [`swap::write_out_run`] in runs of
//!    neighbouring slots (the device path batched reclaim will use) and
//!    read back with [`swap::read_in_run`];
//! 3. the same memory swapped out by reclaim ([`reclaim::reclaim`], the
//!    pages aged first so one pass takes them) and swapped back in by
//!    ring 3 reading one byte per page (faults with readahead).
//!
//! Then the same on compressed RAM, against `lz4_flex` compressing and
//! decompressing the same page contents in the kernel.
//!
//! The device path and its raw reference run [`ROUNDS`] times (on the disk
//! the raw rounds come first, before swap owns the disk; on compressed RAM
//! each raw round runs right before its device round) and the median ratio
//! is printed; reclaim and the faults, the slow part, run once, against the
//! median raw speed. Every ratio compares figures of this boot. Under QEMU's
//! TCG the speeds are emulated; the ratios are what to read.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use lz4_flex::block::{
    compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable,
};
use mmcore::Pfn;
use swapcore::{Page, PAGE_SIZE as PAGE_BYTES};
use vmcore::PAGE_SIZE as PAGE;

use super::{map, space, BASE, CODE, STACK_TOP};
use crate::arch::ring3::BenchEntry;
use crate::drivers::virtio_blk::{self, MAX_REQUEST_PAGES};
use crate::mm::aspace::{self, SharedAddressSpace};
use crate::mm::uaccess::copy_to_user;
use crate::mm::{frames, reclaim, swap, vmstat};
use crate::time::{cycles_to_us, rdtsc};

/// 64 MiB in pages.
const PAGES: u64 = (64 << 20) / PAGE;

/// Rounds of the cheaper measurements (the device path against the raw
/// speed), each pair back to back: the ratio printed is the median of the
/// rounds' ratios, so a slow spell of the host hits both sides alike.
const ROUNDS: usize = 3;

/// One throughput against its reference.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub name: &'static str,
    /// MiB/s of the operation (median over the rounds).
    pub mib_s: f64,
    pub reference: &'static str,
    /// MiB/s of the reference (median over the rounds).
    pub reference_mib_s: f64,
    ratio: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Throughput {
    /// From `(MiB/s, reference MiB/s)` pairs, each measured back to back.
    fn from_rounds(name: &'static str, reference: &'static str, rounds: &[(f64, f64)]) -> Self {
        Throughput {
            name,
            mib_s: median(rounds.iter().map(|r| r.0).collect()),
            reference,
            reference_mib_s: median(rounds.iter().map(|r| r.1).collect()),
            ratio: median(
                rounds
                    .iter()
                    .map(|r| r.0 / r.1.max(f64::MIN_POSITIVE))
                    .collect(),
            ),
        }
    }

    /// Operation speed ÷ reference speed (1.0: as fast as the device
    /// alone): the median of the rounds' ratios.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    fn print(&self) {
        crate::kprintln!(
            "bench: swap {}: {:.1} MiB/s, {:.2} x {} ({:.1} MiB/s)",
            self.name,
            self.mib_s,
            self.ratio(),
            self.reference,
            self.reference_mib_s
        );
    }
}

/// MiB/s for `pages` pages in `cycles` TSC cycles.
fn mib_s(pages: u64, cycles: u64) -> f64 {
    let us = cycles_to_us(cycles).max(1);
    (pages * PAGE) as f64 / us as f64 * 1_000_000.0 / (1 << 20) as f64
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: [&[u8]; 16] = [
    b"the ",
    b"page ",
    b"frame ",
    b"swap ",
    b"of ",
    b"memory ",
    b"kernel ",
    b"in ",
    b"process ",
    b"fault ",
    b"slot ",
    b"reclaim ",
    b"table ",
    b"cluster ",
    b"lru ",
    b"zram ",
];

/// The contents of page `i` of the program: in turn text (words and
/// numbers, about 2.5:1 under LZ4), small growing integers (like arrays),
/// and half random bytes, half zeros (about 2:1). No page is same-filled:
/// compressed RAM stores those without compressing, which would flatter it.
fn fill_page(i: u64, page: &mut Page) {
    let mut rng = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    match i % 3 {
        0 => {
            let mut at = 0;
            while at < PAGE_BYTES {
                let r = rng.next();
                let word: &[u8] = if r.is_multiple_of(5) {
                    &[
                        b'0' + (r >> 8) as u8 % 10,
                        b'0' + (r >> 16) as u8 % 10,
                        b' ',
                    ]
                } else {
                    WORDS[(r >> 8) as usize % WORDS.len()]
                };
                let n = word.len().min(PAGE_BYTES - at);
                page[at..at + n].copy_from_slice(&word[..n]);
                at += n;
            }
        }
        1 => {
            let mut v = rng.next() % 1000;
            for word in page.as_chunks_mut::<8>().0 {
                v += rng.next() % 16;
                *word = v.to_le_bytes();
            }
        }
        _ => {
            let (random, zeros) = page.split_at_mut(PAGE_BYTES / 2);
            for word in random.as_chunks_mut::<8>().0 {
                *word = rng.next().to_le_bytes();
            }
            zeros.fill(0);
        }
    }
}

/// A program's 64 MiB: a fresh address space (current) with the toucher
/// loaded and `PAGES` pages at BASE filled with [`fill_page`].
fn program() -> SharedAddressSpace {
    let a = space();
    map(&a, BASE, PAGES);
    let mut page = [0u8; PAGE_BYTES];
    for i in 0..PAGES {
        fill_page(i, &mut page);
        copy_to_user(BASE + i * PAGE, &page).expect("the program's memory");
    }
    a
}

/// The frames of the program's pages (all resident).
fn program_frames(a: &SharedAddressSpace) -> Vec<Pfn> {
    let mut a = a.lock();
    (0..PAGES)
        .map(|i| Pfn::from_addr(a.translate(BASE + i * PAGE).expect("resident").0))
        .collect()
}

/// Runs of consecutive slots: `(first slot, range of indices)`.
fn runs(slots: &[u64]) -> Vec<(u64, core::ops::Range<usize>)> {
    let mut out: Vec<(u64, core::ops::Range<usize>)> = Vec::new();
    for (i, &s) in slots.iter().enumerate() {
        match out.last_mut() {
            Some((first, r)) if *first + (r.end - r.start) as u64 == s => r.end = i + 1,
            _ => out.push((s, i..i + 1)),
        }
    }
    out
}

/// The device path alone: the program's pages go into the swap cache (the
/// reclaim stream's slots, neighbouring), are written with
/// [`swap::write_out_run`] run by run and read back into the same frames
/// with [`swap::read_in_run`] (the same bytes: the program does not run
/// meanwhile), then leave the cache. Cycles of the writes and of the reads.
fn device_runs(a: &SharedAddressSpace) -> (u64, u64) {
    let pfns = program_frames(a);
    let slots: Vec<u64> = pfns
        .iter()
        .map(|&pfn| frames::with(|m| swap::add_to_cache_locked(m, pfn)).expect("a free slot"))
        .collect();
    let runs = runs(&slots);
    let t0 = rdtsc();
    for (first, r) in &runs {
        swap::write_out_run(*first, &pfns[r.clone()]).expect("swap write");
    }
    let write = rdtsc() - t0;
    let t0 = rdtsc();
    for (first, r) in &runs {
        swap::read_in_run(*first, &pfns[r.clone()]).expect("swap read");
    }
    let read = rdtsc() - t0;
    for (&slot, &pfn) in slots.iter().zip(&pfns) {
        if frames::with(|m| swap::uncache_locked(m, slot, pfn, None)) {
            swap::discard_slot(slot);
        }
    }
    (write, read)
}

/// Swap-out by reclaim of the program's pages, aged first (accessed bits
/// cleared, as a program that stopped touching them would have them), and
/// swap-in by ring 3 reading one byte per page. `(pages, cycles)` of each.
fn reclaim_and_fault(a: &SharedAddressSpace) -> ((u64, u64), (u64, u64)) {
    let pfns = program_frames(a);
    {
        let mut a = a.lock();
        for (i, pfn) in pfns.iter().enumerate() {
            a.clear_young(BASE + i as u64 * PAGE, pfn.addr());
        }
    }
    drop(pfns);
    let out0 = vmstat::PSWPOUT.get();
    let t0 = rdtsc();
    let mut freed = 0;
    while freed < PAGES {
        let n = reclaim::reclaim(PAGES - freed);
        if n == 0 {
            break;
        }
        freed += n;
    }
    let out = (vmstat::PSWPOUT.get() - out0, rdtsc() - t0);
    assert!(
        out.0 >= PAGES * 9 / 10,
        "reclaim swapped out {} of {PAGES} pages",
        out.0
    );

    let in0 = vmstat::PSWPIN.get();
    let t0 = rdtsc();
    let exit = crate::proc::user::run(
        "bench",
        a.clone(),
        CODE + BenchEntry::Read.offset(),
        STACK_TOP,
        BASE,
        PAGES,
    );
    let cycles = rdtsc() - t0;
    assert_eq!(exit, crate::proc::user::UserExit::Exited(0), "read loop");
    aspace::switch_to(Some(a.clone()));
    let swapped_in = vmstat::PSWPIN.get() - in0;
    check_program(a);
    ((out.0, out.1), (swapped_in, cycles))
}

/// Every page of the program holds what [`program`] put there (after
/// the device runs, the swap-out and the swap-in).
fn check_program(a: &SharedAddressSpace) {
    let (mut want, mut got) = ([0u8; PAGE_BYTES], [0u8; PAGE_BYTES]);
    let mut a = a.lock();
    for i in 0..PAGES {
        fill_page(i, &mut want);
        let (pa, _) = a.translate(BASE + i * PAGE).expect("swapped back in");
        crate::mm::direct::read_frame(Pfn::from_addr(pa), &mut got);
        assert!(got == want, "page {i} of the program came back different");
    }
}

/// The program is gone and swap off again.
fn finish(a: SharedAddressSpace) {
    aspace::switch_to(None);
    drop(a);
    swap::swapoff().expect("nothing left swapped out");
}

/// Raw sequential 64 MiB on the disk at `per_request` pages per request:
/// `(write MiB/s, read MiB/s)`.
fn raw_disk(disk: &mut virtio_blk::VirtioBlk, per_request: usize) -> (f64, f64) {
    let (w, r) = virtio_blk::raw_throughput_in(disk, PAGES, per_request).expect("raw disk I/O");
    crate::kprintln!(
        "bench: swap disk raw sequential 64 MiB, {per_request} pages per request: write {:.1} MiB/s, read {:.1} MiB/s",
        mib_s(PAGES, w),
        mib_s(PAGES, r)
    );
    (mib_s(PAGES, w), mib_s(PAGES, r))
}

/// The disk half (skipped, with a line, without a disk of 64 MiB).
pub fn disk() -> Vec<Throughput> {
    super::back_free_memory();
    let Some(mut disk) = virtio_blk::take() else {
        crate::kprintln!("bench: swap disk: no virtio disk attached, skipped");
        return Vec::new();
    };
    if disk.capacity_pages() < PAGES {
        crate::kprintln!("bench: swap disk: the disk is smaller than 64 MiB, skipped");
        virtio_blk::put_back(disk);
        return Vec::new();
    }
    let (w1, _) = raw_disk(&mut disk, 1);
    let (_, r8) = raw_disk(&mut disk, swap::READAHEAD as usize);
    let raw64: Vec<(f64, f64)> = (0..ROUNDS)
        .map(|_| raw_disk(&mut disk, MAX_REQUEST_PAGES.min(swap::RUN_PAGES)))
        .collect();
    swap::swapon(Box::new(disk)).expect("swap on the disk");
    let a = program();
    let runs: Vec<(u64, u64)> = (0..ROUNDS).map(|_| device_runs(&a)).collect();
    let ((out_pages, out), (in_pages, inn)) = reclaim_and_fault(&a);
    finish(a);
    let w64 = median(raw64.iter().map(|r| r.0).collect());
    let r64 = median(raw64.iter().map(|r| r.1).collect());
    let pairs = |i: usize| -> Vec<(f64, f64)> {
        runs.iter()
            .zip(&raw64)
            .map(|(run, raw)| {
                let (cycles, raw) = if i == 0 {
                    (run.0, raw.0)
                } else {
                    (run.1, raw.1)
                };
                (mib_s(PAGES, cycles), raw)
            })
            .collect()
    };
    let once = |name, mib_s, reference, reference_mib_s| {
        Throughput::from_rounds(name, reference, &[(mib_s, reference_mib_s)])
    };
    let out = mib_s(out_pages, out);
    let inn = mib_s(in_pages, inn);
    printed(vec![
        Throughput::from_rounds(
            "disk write_out_run 64 MiB (64-page runs)",
            "raw write at 64 pages per request",
            &pairs(0),
        ),
        Throughput::from_rounds(
            "disk read_in_run 64 MiB (64-page runs)",
            "raw read at 64 pages per request",
            &pairs(1),
        ),
        once(
            "disk swap-out by reclaim (one page per write)",
            out,
            "raw write at 1 page per request",
            w1,
        ),
        once(
            "disk swap-out by reclaim (one page per write)",
            out,
            "raw write at 64 pages per request",
            w64,
        ),
        once(
            "disk swap-in by faults (8-page readahead runs)",
            inn,
            "raw read at 8 pages per request",
            r8,
        ),
        once(
            "disk swap-in by faults (8-page readahead runs)",
            inn,
            "raw read at 64 pages per request",
            r64,
        ),
    ])
}

/// Raw LZ4 on the program's page contents, 256 pages at a time (the
/// compressed blocks of one batch kept for its decompression): `(compress
/// cycles, decompress cycles)` for all 64 MiB.
fn raw_lz4() -> (u64, u64) {
    const BATCH: usize = 256;
    const SCRATCH: usize = get_maximum_output_size(PAGE_BYTES);
    let mut table = Box::new(CompressTable::small());
    let mut pages: Vec<Page> = vec![[0u8; PAGE_BYTES]; BATCH];
    let mut blocks = vec![0u8; BATCH * SCRATCH];
    let mut lens = vec![0usize; BATCH];
    let (mut compress, mut decompress) = (0, 0);
    for batch in 0..PAGES / BATCH as u64 {
        for (j, page) in pages.iter_mut().enumerate() {
            fill_page(batch * BATCH as u64 + j as u64, page);
        }
        let t0 = rdtsc();
        for (j, (page, block)) in pages.iter().zip(blocks.chunks_mut(SCRATCH)).enumerate() {
            lens[j] = compress_into_with_table(page, block, &mut table).expect("room");
        }
        compress += rdtsc() - t0;
        let t0 = rdtsc();
        for (j, (page, block)) in pages.iter_mut().zip(blocks.chunks(SCRATCH)).enumerate() {
            let n = decompress_into(&block[..lens[j]], page).expect("a valid block");
            assert_eq!(n, PAGE_BYTES);
        }
        decompress += rdtsc() - t0;
    }
    // What came back is what went in.
    let mut want = [0u8; PAGE_BYTES];
    fill_page(PAGES - 1, &mut want);
    assert!(pages[BATCH - 1] == want, "LZ4 round trip");
    (compress, decompress)
}

/// The compressed-RAM half.
pub fn zram() -> Vec<Throughput> {
    swap::swapon_zram(2 * PAGES).expect("compressed RAM");
    let a = program();
    // Rounds of raw LZ4 and the device path, back to back.
    let rounds: Vec<((f64, f64), (u64, u64))> = (0..ROUNDS)
        .map(|_| {
            let (compress, decompress) = raw_lz4();
            let raw = (mib_s(PAGES, compress), mib_s(PAGES, decompress));
            crate::kprintln!(
                "bench: swap raw lz4_flex on the same 64 MiB: compress {:.1} MiB/s, decompress {:.1} MiB/s",
                raw.0,
                raw.1
            );
            (raw, device_runs(&a))
        })
        .collect();
    let c = median(rounds.iter().map(|r| r.0 .0).collect());
    let d = median(rounds.iter().map(|r| r.0 .1).collect());
    let ((out_pages, out), (in_pages, inn)) = reclaim_and_fault(&a);
    finish(a);
    let pairs = |i: usize| -> Vec<(f64, f64)> {
        rounds
            .iter()
            .map(|&(raw, run)| {
                if i == 0 {
                    (mib_s(PAGES, run.0), raw.0)
                } else {
                    (mib_s(PAGES, run.1), raw.1)
                }
            })
            .collect()
    };
    printed(vec![
        Throughput::from_rounds("zram write_out_run 64 MiB", "raw LZ4 compress", &pairs(0)),
        Throughput::from_rounds("zram read_in_run 64 MiB", "raw LZ4 decompress", &pairs(1)),
        Throughput::from_rounds(
            "zram swap-out by reclaim",
            "raw LZ4 compress (median)",
            &[(mib_s(out_pages, out), c)],
        ),
        Throughput::from_rounds(
            "zram swap-in by faults",
            "raw LZ4 decompress (median)",
            &[(mib_s(in_pages, inn), d)],
        ),
    ])
}

fn printed(all: Vec<Throughput>) -> Vec<Throughput> {
    for t in &all {
        t.print();
    }
    all
}
