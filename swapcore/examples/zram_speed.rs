//! Compressed swap against raw LZ4, measured in one run (issue 12's target:
//! compressed swap at ≥ 50 % of raw LZ4 compress/decompress speed on the
//! same pages).
//!
//! For each kind of page content, N pages (default 16384 = 64 MiB; `-- N`
//! to change) are
//! - compressed with `lz4_flex` into one reused buffer (the raw speed), and
//!   written to a [`Zram`] of N slots (same-filled check, compression, a
//!   fallibly allocated buffer per page, the figures). The device is filled
//!   once before the runs, so each timed write replaces a page: on a fresh
//!   device the host's page faults on new heap memory dominate, which the
//!   kernel, whose memory is always mapped, never pays;
//! - decompressed from their LZ4 blocks (raw) and read back from the Zram.
//!
//! Each measurement pair runs back to back, 7 times; the ratio printed is
//! the median of the runs' ratios (Zram speed ÷ raw speed: 1.0 is "as fast
//! as LZ4 alone"). Run with
//! `cargo run --release -p swapcore --example zram_speed --target x86_64-unknown-linux-gnu`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use lz4_flex::block::{
    compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable,
};
use swapcore::{Page, SwapDevice, Zram, PAGE_SIZE};

const RUNS: usize = 7;
const TARGET: f64 = 0.5;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: [&str; 24] = [
    "the", "page", "frame", "swap", "of", "and", "memory", "to", "a", "kernel", "in", "process",
    "is", "fault", "slot", "reclaim", "for", "with", "table", "that", "cluster", "lru", "on",
    "zram",
];

/// Page contents, from most to least compressible.
#[derive(Clone, Copy)]
enum Kind {
    /// All zero: zram stores a flag, LZ4 still compresses 4 KiB.
    Zero,
    /// Words from a small vocabulary with numbers: like text or logs (~2.5:1).
    Text,
    /// Small, growing 64-bit integers: like arrays and heap data.
    Ints,
    /// First half random bytes, second half zero (~2:1).
    Half,
    /// Random bytes: incompressible, stored raw.
    Random,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Zero => "zero",
            Kind::Text => "text",
            Kind::Ints => "ints",
            Kind::Half => "half-random",
            Kind::Random => "random",
        }
    }

    fn fill(self, page: &mut Page, rng: &mut Rng) {
        match self {
            Kind::Zero => page.fill(0),
            Kind::Text => {
                let mut i = 0;
                while i < PAGE_SIZE {
                    let r = rng.next();
                    let word = if r.is_multiple_of(5) {
                        format!("{} ", r % 1000)
                    } else {
                        format!("{} ", WORDS[(r >> 8) as usize % WORDS.len()])
                    };
                    let end = (i + word.len()).min(PAGE_SIZE);
                    page[i..end].copy_from_slice(&word.as_bytes()[..end - i]);
                    i = end;
                }
            }
            Kind::Ints => {
                let mut v = rng.next() % 1000;
                for word in page.as_chunks_mut::<8>().0 {
                    v += rng.next() % 64;
                    *word = v.to_le_bytes();
                }
            }
            Kind::Half => {
                page.fill(0);
                page[..PAGE_SIZE / 2]
                    .iter_mut()
                    .for_each(|b| *b = rng.next() as u8);
            }
            Kind::Random => page.iter_mut().for_each(|b| *b = rng.next() as u8),
        }
    }
}

fn mbps(pages: usize, t: Duration) -> f64 {
    (pages * PAGE_SIZE) as f64 / t.as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run's four speeds (MB/s): raw compress, zram write, raw decompress,
/// zram read.
fn run(zram: &mut Zram, pages: &[Page], blocks: &[Vec<u8>]) -> [f64; 4] {
    let n = pages.len();
    let mut table = CompressTable::default();
    let mut out = vec![0u8; get_maximum_output_size(PAGE_SIZE)];

    let t = Instant::now();
    for page in pages {
        black_box(compress_into_with_table(black_box(page), &mut out, &mut table).unwrap());
    }
    let compress = mbps(n, t.elapsed());

    let t = Instant::now();
    for (slot, page) in pages.iter().enumerate() {
        zram.write_page(slot as u64, black_box(page)).unwrap();
    }
    let write = mbps(n, t.elapsed());

    let mut back = [0u8; PAGE_SIZE];
    let t = Instant::now();
    for block in blocks {
        black_box(decompress_into(black_box(block), &mut back).unwrap());
    }
    let decompress = mbps(n, t.elapsed());

    let t = Instant::now();
    for slot in 0..n {
        zram.read_page(slot as u64, &mut back).unwrap();
        black_box(&back);
    }
    let read = mbps(n, t.elapsed());
    [compress, write, decompress, read]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(16384, |a| a.parse().expect("usage: zram_speed [PAGES]"));
    println!(
        "zram-speed: {n} pages ({} MiB) per kind, median of {RUNS} runs; ratio = Zram speed / raw lz4_flex speed",
        (n * PAGE_SIZE) >> 20
    );
    let kinds = [Kind::Zero, Kind::Text, Kind::Ints, Kind::Half, Kind::Random];
    let mut worst = (f64::INFINITY, f64::INFINITY);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut table = CompressTable::default();
    let mut out = vec![0u8; get_maximum_output_size(PAGE_SIZE)];
    for kind in kinds {
        let mut pages = vec![[0u8; PAGE_SIZE]; n];
        pages.iter_mut().for_each(|p| kind.fill(p, &mut rng));
        let blocks: Vec<Vec<u8>> = pages
            .iter()
            .map(|p| {
                let len = compress_into_with_table(p, &mut out, &mut table).unwrap();
                out[..len].to_vec()
            })
            .collect();
        let lz4_ratio = blocks.iter().map(Vec::len).sum::<usize>() as f64 / (n * PAGE_SIZE) as f64;

        // Filled once before the runs, so the timed writes replace pages
        // (allocate the new copy, free the old) in heap memory the host has
        // already mapped, as the kernel's slab memory always is.
        let mut zram = Zram::try_new("zram0", n as u64).unwrap();
        for (slot, page) in pages.iter().enumerate() {
            zram.write_page(slot as u64, page).unwrap();
        }
        let runs: Vec<[f64; 4]> = (0..RUNS).map(|_| run(&mut zram, &pages, &blocks)).collect();
        let med = |i: usize| median(runs.iter().map(|r| r[i]).collect());
        let write_x = median(runs.iter().map(|r| r[1] / r[0]).collect());
        let read_x = median(runs.iter().map(|r| r[3] / r[2]).collect());
        println!(
            "zram-speed: {:<11} lz4 size {:.2}: write {:6.0} MB/s = {:.2} x lz4 compress ({:6.0} MB/s); \
             read {:6.0} MB/s = {:.2} x lz4 decompress ({:6.0} MB/s)",
            kind.name(),
            lz4_ratio,
            med(1),
            write_x,
            med(0),
            med(3),
            read_x,
            med(2),
        );
        worst = (worst.0.min(write_x), worst.1.min(read_x));
    }
    let verdict = if worst.0 >= TARGET && worst.1 >= TARGET {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "zram-speed: worst kind: write {:.2} x, read {:.2} x raw lz4 (target >= {TARGET}): {verdict}",
        worst.0, worst.1
    );
}
