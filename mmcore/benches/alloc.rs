//! Ferrite's allocators side by side with peers, plus a summary of speedups.
//!
//! Criterion measures each workload; afterwards plain timing loops (median
//! of several runs) produce the one-line summaries printed at the end.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use buddy_system_allocator::FrameAllocator;
use criterion::{BenchmarkId, Criterion};
use mmcore::buddy::BuddyAllocator;
use mmcore::frame::host::Arena;
use mmcore::frame::{PageMeta, Pfn, MAX_ORDER, PAGE_SIZE};
use mmcore::percpu::ObjectCache;
use mmcore::slab::SlabHeap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames managed in the frame-allocator benchmarks (256 MiB).
const BUDDY_FRAMES: u64 = 1 << 16;
/// Live blocks kept in the mixed-order workload.
const MIXED_WINDOW: usize = 512;
/// Live objects kept in the fragmenting heap workload.
const FRAG_LIVE: usize = 4000;
/// Arena for the heap benchmarks (64 MiB).
const HEAP_FRAMES: u64 = 1 << 14;
const SLAB_SIZES: [usize; 4] = [8, 64, 512, 4096];

/// xorshift64*: deterministic and cheap, so the RNG does not dominate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

// ---------------------------------------------------------------- frame allocators

/// The same frame-allocator interface for Ferrite and the peer.
trait Frames {
    fn alloc(&mut self, order: usize) -> usize;
    fn free(&mut self, frame: usize, order: usize);
}

struct Ferrite {
    buddy: BuddyAllocator<'static>,
}

impl Ferrite {
    fn new(frames: u64) -> Ferrite {
        let meta: &'static mut [PageMeta] = Vec::leak(vec![PageMeta::RESERVED; frames as usize]);
        let mut buddy = BuddyAllocator::new(meta, Pfn(0));
        buddy.add_free_range(Pfn(0), Pfn(frames));
        Ferrite { buddy }
    }
}

impl Frames for Ferrite {
    #[inline]
    fn alloc(&mut self, order: usize) -> usize {
        self.buddy
            .alloc(order)
            .expect("ferrite buddy out of frames")
            .0 as usize
    }
    #[inline]
    fn free(&mut self, frame: usize, order: usize) {
        self.buddy
            .free(Pfn(frame as u64), order)
            .expect("ferrite buddy free");
    }
}

/// buddy_system_allocator with the same largest block (2^MAX_ORDER frames).
struct Peer {
    frames: FrameAllocator<{ MAX_ORDER + 1 }>,
}

impl Peer {
    fn new(frames: u64) -> Peer {
        let mut f = FrameAllocator::new();
        f.add_frame(0, frames as usize);
        Peer { frames: f }
    }
}

impl Frames for Peer {
    #[inline]
    fn alloc(&mut self, order: usize) -> usize {
        self.frames.alloc(1 << order).expect("peer out of frames")
    }
    #[inline]
    fn free(&mut self, frame: usize, order: usize) {
        self.frames.dealloc(frame, 1 << order);
    }
}

fn order0_pairs<F: Frames>(f: &mut F, iters: u64) {
    for _ in 0..iters {
        let p = f.alloc(0);
        f.free(black_box(p), 0);
    }
}

/// A window of live blocks of random orders 0..=6; each step frees the
/// oldest and allocates a new one.
struct Mixed {
    rng: Rng,
    live: Vec<(usize, usize)>,
    next: usize,
}

impl Mixed {
    fn new<F: Frames>(f: &mut F) -> Mixed {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let live = (0..MIXED_WINDOW)
            .map(|_| {
                let order = rng.below(7) as usize;
                (f.alloc(order), order)
            })
            .collect();
        Mixed { rng, live, next: 0 }
    }

    fn steps<F: Frames>(&mut self, f: &mut F, iters: u64) {
        for _ in 0..iters {
            let (p, o) = self.live[self.next];
            f.free(p, o);
            let order = self.rng.below(7) as usize;
            self.live[self.next] = (f.alloc(order), order);
            self.next = (self.next + 1) % MIXED_WINDOW;
        }
    }
}

// ---------------------------------------------------------------- heaps

/// The same heap interface for Ferrite's slab heap, talc and linked_list_allocator.
trait Heap {
    fn alloc(&mut self, layout: Layout) -> NonNull<u8>;
    fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
}

struct FerriteHeap {
    arena: Arena,
    buddy: BuddyAllocator<'static>,
    heap: SlabHeap,
}

impl FerriteHeap {
    fn new() -> FerriteHeap {
        let arena = Arena::new(Pfn(1 << 20), HEAP_FRAMES);
        let meta: &'static mut [PageMeta] = Vec::leak(arena.new_meta());
        let mut buddy = BuddyAllocator::new(meta, arena.base_pfn());
        buddy.add_free_range(arena.base_pfn(), arena.end_pfn());
        FerriteHeap {
            arena,
            buddy,
            heap: SlabHeap::new(),
        }
    }

    fn bytes_held(&self) -> u64 {
        self.heap.pages_held() * PAGE_SIZE as u64
    }
}

impl Heap for FerriteHeap {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        self.heap
            .alloc(layout, &mut self.buddy, &self.arena)
            .expect("ferrite heap alloc")
    }
    #[inline]
    fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.heap
            .dealloc(ptr, layout, &mut self.buddy, &self.arena)
            .expect("ferrite heap free");
    }
}

/// Ferrite's kernel heap path: a CPU's object magazines (`mmcore::percpu`)
/// in front of the slab heap, which is reached only to refill or flush a
/// batch. `locked` adds what the kernel adds around it: an uncontended
/// test-and-set lock per CPU cache, taken and released on every call.
struct FerriteCpuHeap {
    inner: FerriteHeap,
    cpu: ObjectCache,
    locked: bool,
    lock: AtomicBool,
}

impl FerriteCpuHeap {
    fn new(locked: bool) -> FerriteCpuHeap {
        FerriteCpuHeap {
            inner: FerriteHeap::new(),
            cpu: ObjectCache::new(),
            locked,
            lock: AtomicBool::new(false),
        }
    }

    #[inline]
    fn take(&self) {
        if self.locked {
            while self
                .lock
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                std::hint::spin_loop();
            }
        }
    }

    #[inline]
    fn release(&self) {
        if self.locked {
            self.lock.store(false, Ordering::Release);
        }
    }
}

impl Heap for FerriteCpuHeap {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        self.take();
        let h = &mut self.inner;
        let p = self
            .cpu
            .alloc(layout, &mut h.heap, &mut h.buddy, &h.arena)
            .expect("ferrite heap alloc");
        self.release();
        p
    }
    #[inline]
    fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.take();
        let h = &mut self.inner;
        // SAFETY: the benchmark frees each pointer once, with the layout
        // it was allocated with (the `Heap` contract).
        unsafe {
            self.cpu
                .dealloc(ptr, layout, &mut h.heap, &mut h.buddy, &h.arena)
                .expect("ferrite heap free")
        };
        self.release();
    }
}

/// Backing memory for the peers, same size as Ferrite's arena.
fn peer_memory() -> &'static mut [u8] {
    Vec::leak(vec![0u8; HEAP_FRAMES as usize * PAGE_SIZE])
}

struct TalcHeap(talc::base::Talc<talc::source::Manual, talc::DefaultBinning>);

impl TalcHeap {
    fn new() -> TalcHeap {
        let mem = peer_memory();
        let mut t = talc::base::Talc::new(talc::source::Manual);
        // SAFETY: `mem` is a leaked buffer used by nothing else; Manual allows claiming.
        unsafe { t.claim(mem.as_mut_ptr(), mem.len()).expect("talc claim") };
        TalcHeap(t)
    }
}

impl Heap for TalcHeap {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        // SAFETY: every benchmark layout has a non-zero size.
        unsafe { self.0.allocate(layout) }.expect("talc alloc")
    }
    #[inline]
    fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout and is freed once.
        unsafe { self.0.deallocate(ptr.as_ptr(), layout) }
    }
}

struct LinkedListHeap(linked_list_allocator::Heap);

impl LinkedListHeap {
    fn new() -> LinkedListHeap {
        let mem = peer_memory();
        // SAFETY: `mem` is a leaked buffer used by nothing else.
        LinkedListHeap(unsafe { linked_list_allocator::Heap::new(mem.as_mut_ptr(), mem.len()) })
    }
}

impl Heap for LinkedListHeap {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        self.0
            .allocate_first_fit(layout)
            .expect("linked_list_allocator alloc")
    }
    #[inline]
    fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout and is freed once.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

fn slab_pairs<H: Heap>(h: &mut H, layout: Layout, iters: u64) {
    for _ in 0..iters {
        let p = h.alloc(layout);
        h.free(black_box(p), layout);
    }
}

/// Thousands of live objects of sizes 8..=2048; each step frees a random one
/// and allocates a new random size in its place.
struct Fragmenting {
    rng: Rng,
    live: Vec<(NonNull<u8>, Layout)>,
}

impl Fragmenting {
    fn random_layout(rng: &mut Rng) -> Layout {
        let size = 8 + rng.below(2048 - 8 + 1) as usize;
        Layout::from_size_align(size, 8).unwrap()
    }

    fn new<H: Heap>(h: &mut H) -> Fragmenting {
        let mut rng = Rng(0x0bad_5eed_f00d_cafe);
        let live = (0..FRAG_LIVE)
            .map(|_| {
                let l = Self::random_layout(&mut rng);
                (h.alloc(l), l)
            })
            .collect();
        let mut f = Fragmenting { rng, live };
        f.steps(h, 4 * FRAG_LIVE as u64); // reach a fragmented steady state
        f
    }

    fn steps<H: Heap>(&mut self, h: &mut H, iters: u64) {
        for _ in 0..iters {
            let i = self.rng.below(FRAG_LIVE as u64) as usize;
            let (p, l) = self.live[i];
            h.free(p, l);
            let l = Self::random_layout(&mut self.rng);
            self.live[i] = (h.alloc(l), l);
        }
    }

    fn live_bytes(&self) -> u64 {
        self.live.iter().map(|(_, l)| l.size() as u64).sum()
    }
}

// ---------------------------------------------------------------- criterion

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("order0-pair");
    let mut fer = Ferrite::new(BUDDY_FRAMES);
    let mut peer = Peer::new(BUDDY_FRAMES);
    g.bench_function("ferrite", |b| {
        b.iter_custom(|n| time(|| order0_pairs(&mut fer, n)))
    });
    g.bench_function("buddy_system_allocator", |b| {
        b.iter_custom(|n| time(|| order0_pairs(&mut peer, n)))
    });
    g.finish();

    let mut g = c.benchmark_group("mixed-order");
    let mut fer = Ferrite::new(BUDDY_FRAMES);
    let mut peer = Peer::new(BUDDY_FRAMES);
    let mut wf = Mixed::new(&mut fer);
    let mut wp = Mixed::new(&mut peer);
    g.bench_function("ferrite", |b| {
        b.iter_custom(|n| time(|| wf.steps(&mut fer, n)))
    });
    g.bench_function("buddy_system_allocator", |b| {
        b.iter_custom(|n| time(|| wp.steps(&mut peer, n)))
    });
    g.finish();

    let mut g = c.benchmark_group("slab-pair");
    let mut fer = FerriteCpuHeap::new(false);
    let mut tal = TalcHeap::new();
    for size in SLAB_SIZES {
        let l = Layout::from_size_align(size, 8).unwrap();
        g.bench_with_input(BenchmarkId::new("ferrite", size), &l, |b, &l| {
            b.iter_custom(|n| time(|| slab_pairs(&mut fer, l, n)))
        });
        g.bench_with_input(BenchmarkId::new("talc", size), &l, |b, &l| {
            b.iter_custom(|n| time(|| slab_pairs(&mut tal, l, n)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("fragmenting");
    let mut fer = FerriteHeap::new();
    let mut ll = LinkedListHeap::new();
    let mut wf = Fragmenting::new(&mut fer);
    let mut wl = Fragmenting::new(&mut ll);
    g.bench_function("ferrite", |b| {
        b.iter_custom(|n| time(|| wf.steps(&mut fer, n)))
    });
    g.bench_function("linked_list_allocator", |b| {
        b.iter_custom(|n| time(|| wl.steps(&mut ll, n)))
    });
    g.finish();

    let mut g = c.benchmark_group("buddy-init");
    g.sample_size(10);
    for gib in [1u64, 4] {
        let frames = gib << 18;
        let mut meta = vec![PageMeta::RESERVED; frames as usize];
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{gib}GiB")),
            &frames,
            |b, &frames| {
                b.iter(|| {
                    let mut buddy = BuddyAllocator::new(&mut meta, Pfn(0));
                    black_box(buddy.add_free_range(Pfn(0), Pfn(frames)))
                })
            },
        );
    }
    g.finish();
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

// ---------------------------------------------------------------- summary

/// Median ns per operation over `runs` runs of `iters` operations.
fn median_ns(runs: usize, iters: u64, mut f: impl FnMut(u64)) -> f64 {
    f(iters / 10); // warm up
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f(iters);
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[runs / 2]
}

fn line(name: &str, ours: f64, peer: &str, theirs: f64) {
    println!(
        "bench: {name}: ferrite {ours:.2} ns, {peer} {theirs:.2} ns, speedup {:.2}",
        theirs / ours
    );
}

fn summary() {
    const RUNS: usize = 7;
    let mut lines: Vec<Box<dyn FnOnce()>> = Vec::new();

    let mut fer = Ferrite::new(BUDDY_FRAMES);
    let mut peer = Peer::new(BUDDY_FRAMES);
    let a = median_ns(RUNS, 400_000, |n| order0_pairs(&mut fer, n));
    let b = median_ns(RUNS, 100_000, |n| order0_pairs(&mut peer, n));
    lines.push(Box::new(move || {
        line("buddy-order0", a, "buddy_system_allocator", b)
    }));

    let mut fer = Ferrite::new(BUDDY_FRAMES);
    let mut peer = Peer::new(BUDDY_FRAMES);
    let mut wf = Mixed::new(&mut fer);
    let mut wp = Mixed::new(&mut peer);
    let a = median_ns(RUNS, 400_000, |n| wf.steps(&mut fer, n));
    let b = median_ns(RUNS, 100_000, |n| wp.steps(&mut peer, n));
    lines.push(Box::new(move || {
        line("buddy-mixed", a, "buddy_system_allocator", b)
    }));

    // slab-N: the kernel's fast path (per-CPU magazines in front of the
    // slab); slab-locked-N: the same with the kernel's per-CPU lock taken
    // around each call; slab-nocache-N: the slab heap alone (every call
    // reaches it, as each did under the frames lock before the magazines).
    let mut fer = FerriteCpuHeap::new(false);
    let mut locked = FerriteCpuHeap::new(true);
    let mut raw = FerriteHeap::new();
    let mut tal = TalcHeap::new();
    for size in SLAB_SIZES {
        let l = Layout::from_size_align(size, 8).unwrap();
        let a = median_ns(RUNS, 1_000_000, |n| slab_pairs(&mut fer, l, n));
        let k = median_ns(RUNS, 1_000_000, |n| slab_pairs(&mut locked, l, n));
        let r = median_ns(RUNS, 1_000_000, |n| slab_pairs(&mut raw, l, n));
        let b = median_ns(RUNS, 1_000_000, |n| slab_pairs(&mut tal, l, n));
        lines.push(Box::new(move || {
            line(&format!("slab-{size}"), a, "talc", b);
            line(&format!("slab-locked-{size}"), k, "talc", b);
            line(&format!("slab-nocache-{size}"), r, "talc", b);
        }));
    }

    let mut fer = FerriteHeap::new();
    let mut ll = LinkedListHeap::new();
    let mut wf = Fragmenting::new(&mut fer);
    let mut wl = Fragmenting::new(&mut ll);
    let a = median_ns(RUNS, 400_000, |n| wf.steps(&mut fer, n));
    let b = median_ns(5, 4_000, |n| wl.steps(&mut ll, n));
    lines.push(Box::new(move || {
        line("slab-fragmenting", a, "linked_list_allocator", b)
    }));
    let live = wf.live_bytes() as f64;
    let overhead = fer.bytes_held() as f64 / live;
    // Split the overhead: bytes of the size classes the live objects occupy
    // (rounding), versus whole slabs held (partly empty slabs, slab tails).
    let class_bytes: u64 = wf
        .live
        .iter()
        .map(|(_, l)| {
            let id = fer
                .heap
                .kmalloc_cache_for(*l)
                .expect("fragmenting sizes are small");
            fer.heap.cache_info(id).unwrap().slot_size as u64
        })
        .sum();
    let rounding = class_bytes as f64 / live;

    // buddy-init: add_free_range over 1 GiB and 4 GiB; report the 4 GiB rate.
    let mut per_gib = Vec::new();
    for gib in [1u64, 4] {
        let frames = gib << 18;
        let mut meta = vec![PageMeta::RESERVED; frames as usize];
        let ms = median_ns(5, 1, |_| {
            let mut buddy = BuddyAllocator::new(&mut meta, Pfn(0));
            black_box(buddy.add_free_range(Pfn(0), Pfn(frames)));
        }) / 1e6;
        per_gib.push((gib, ms / gib as f64));
    }

    println!();
    for l in lines {
        l();
    }
    println!("bench: slab-overhead: {overhead:.3} bytes held per live byte");
    println!(
        "bench: slab-overhead detail: size-class rounding {rounding:.3}, slab slack {:.3}",
        overhead / rounding
    );
    for (gib, ms) in &per_gib {
        println!("bench: buddy-init ({gib} GiB): {ms:.2} ms per GiB");
    }
    println!("bench: buddy-init: {:.2} ms per GiB", per_gib[1].1);
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
        .sample_size(20)
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    summary();
}
