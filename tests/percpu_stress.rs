//! Stress (issue 14): on every CPU at once, a kernel thread pinned to that
//! CPU allocates and frees slab objects of every kmalloc size class and
//! buddy blocks of orders 0..=3 (order 0 of both per-CPU page-list kinds),
//! writing a pattern into each and checking it before it is freed; a part
//! of them is freed on another CPU than the one that allocated it; drains
//! are requested meanwhile. Tests build with `slab-debug`, and the per-CPU
//! magazines run with it (poison checked on the way out of a magazine, red
//! zones on the way in, every double free caught): the test asserts the
//! magazines served allocations on every CPU.
//!
//! Then the same under memory pressure (every CPU allocates frames and
//! objects until the allocators fail, all at once, then checks and frees
//! them all), and with failure injection on the heap. After each round
//! every CPU's caches are drained and the frame balance and every slab
//! cache's object count are exactly what they were before.

#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use ferrite::arch::percpu::MAX_CPUS;
use ferrite::arch::smp;
use ferrite::arch::sync::IrqMutex;
use ferrite::mm::direct::DirectMap;
use ferrite::mm::failslab::{self, Mode, Rule, Target};
use ferrite::mm::{frames, kalloc, percpu};
use ferrite::proc::cpus::Affinity;
use ferrite::proc::sched;
use mmcore::slab::{KMALLOC_SIZES, MAX_CACHES};
use mmcore::{FrameKind, Pfn, PhysMem};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        warm_up,
        kernel_threads_run_on_their_cpu,
        every_cpu_allocates_and_frees_at_once,
        memory_pressure_on_every_cpu,
        failure_injection_on_every_cpu,
        every_frame_comes_back,
    ])
}

fn cpus() -> usize {
    smp::cpus_online()
}

// ------------------------------------------------------------ the rounds

/// What the workers do in this round.
static MODE: AtomicU8 = AtomicU8::new(0);
const MIXED: u8 = 0;
const PRESSURE: u8 = 1;
const INJECT: u8 = 2;
const WHERE: u8 = 3;

/// Steps of a mixed round per CPU.
const STEPS: u64 = 15_000;

/// Workers started, let go, finished sending, finished.
static STARTED: AtomicUsize = AtomicUsize::new(0);
static GO: AtomicBool = AtomicBool::new(false);
static SENT: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Pressure rounds: workers that reached failure (then all free at once).
static EXHAUSTED: AtomicUsize = AtomicUsize::new(0);

/// Per CPU: the CPU each worker found itself on at every step (a pinned
/// thread never moves: a mismatch counts), and what it did.
#[derive(Default)]
struct Counts {
    wrong_cpu: AtomicU64,
    objects: AtomicU64,
    blocks: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    failed: AtomicU64,
    /// Allocations that may not fail and failed anyway.
    must_not_fail: AtomicU64,
    drains: AtomicU64,
    /// Magazine allocation hits on this CPU during the round.
    mag_hits: AtomicU64,
    /// Frames held at the peak of a pressure round.
    held_pages: AtomicU64,
}

static COUNTS: [Counts; MAX_CPUS] = [const {
    Counts {
        wrong_cpu: AtomicU64::new(0),
        objects: AtomicU64::new(0),
        blocks: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        must_not_fail: AtomicU64::new(0),
        drains: AtomicU64::new(0),
        mag_hits: AtomicU64::new(0),
        held_pages: AtomicU64::new(0),
    }
}; MAX_CPUS];

fn reset_counts() {
    for c in &COUNTS {
        for a in [
            &c.wrong_cpu,
            &c.objects,
            &c.blocks,
            &c.sent,
            &c.received,
            &c.failed,
            &c.must_not_fail,
            &c.drains,
            &c.mag_hits,
            &c.held_pages,
        ] {
            a.store(0, Ordering::SeqCst);
        }
    }
}

fn total(f: impl Fn(&Counts) -> &AtomicU64) -> u64 {
    COUNTS[..cpus()]
        .iter()
        .map(|c| f(c).load(Ordering::SeqCst))
        .sum()
}

/// Runs one round of `mode` on every CPU: a kernel thread pinned to each,
/// started together; returns when all have exited.
fn run_round(mode: u8) {
    let n = cpus();
    MODE.store(mode, Ordering::SeqCst);
    reset_counts();
    for a in [&STARTED, &SENT, &DONE, &EXHAUSTED] {
        a.store(0, Ordering::SeqCst);
    }
    GO.store(false, Ordering::SeqCst);
    for cpu in 0..n {
        sched::spawn_kthread_on("stress", worker, Affinity::Cpu(cpu as u32))
            .unwrap_or_else(|e| panic!("a kernel thread on CPU {cpu}: {e:?}"));
    }
    while STARTED.load(Ordering::SeqCst) < n {
        sched::sleep_ticks(1);
    }
    if mode == INJECT {
        failslab::configure(
            Target::Slab,
            Rule {
                mode: Mode::Random {
                    one_in: 5,
                    seed: 14,
                },
                times: None,
            },
        );
    }
    GO.store(true, Ordering::SeqCst);
    // Drains asked of every CPU while they work (they serve them on a
    // slow path).
    let mut rounds = 0u64;
    while DONE.load(Ordering::SeqCst) < n {
        if rounds.is_multiple_of(3) {
            percpu::drain_on_shortage();
        }
        rounds += 1;
        sched::sleep_ticks(1);
        assert!(rounds < 60_000, "the workers did not finish in 10 minutes");
    }
    if mode == INJECT {
        failslab::off();
    }
    // The workers are zombies the kernel reaps (their stacks come back).
    assert!(
        ferrite::testing::reap_adopted_for_a_while(),
        "every worker was reaped"
    );
    let wrong = total(|c| &c.wrong_cpu);
    assert_eq!(wrong, 0, "a pinned kernel thread ran on another CPU");
    // An allocation that may not fail never does (not even while other
    // CPUs' fallible ones are failed on purpose).
    assert_eq!(
        total(|c| &c.must_not_fail),
        0,
        "an infallible allocation failed"
    );
}

/// A worker: waits for the start, runs the round's mode, exits.
fn worker() -> ! {
    let cpu = ferrite::proc::cpus::cpu() as usize;
    let counts = &COUNTS[cpu];
    let hits_before = percpu::local_info().map_or(0, |i| i.stats.alloc_hits);
    STARTED.fetch_add(1, Ordering::SeqCst);
    while !GO.load(Ordering::SeqCst) {
        sched::yield_now();
    }
    match MODE.load(Ordering::SeqCst) {
        PRESSURE => pressure(cpu),
        WHERE => {
            counts.objects.fetch_add(1, Ordering::SeqCst);
        }
        mode => mixed(cpu, mode == INJECT),
    }
    if ferrite::proc::cpus::cpu() as usize != cpu {
        counts.wrong_cpu.fetch_add(1, Ordering::SeqCst);
    }
    let hits = percpu::local_info().map_or(0, |i| i.stats.alloc_hits);
    counts.mag_hits.store(hits - hits_before, Ordering::SeqCst);
    DONE.fetch_add(1, Ordering::SeqCst);
    sched::kthread_exit()
}

/// xorshift64.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

// ------------------------------------------------------------ what is held

/// Something a worker holds (or sends to another CPU to free).
#[derive(Clone, Copy, Debug)]
enum Item {
    /// A heap object of `size` bytes (align 8), filled from `tag`.
    Object { ptr: usize, size: usize, tag: u64 },
    /// A block of `2^order` frames of `kind`, filled from `tag`.
    Block {
        pfn: Pfn,
        order: usize,
        kind: FrameKind,
        tag: u64,
    },
}

fn byte_of(tag: u64, i: usize) -> u8 {
    (tag as u8) ^ (i as u8).wrapping_mul(31) ^ ((i >> 8) as u8)
}

fn word_of(tag: u64, i: usize) -> u64 {
    tag.rotate_left((i % 64) as u32) ^ i as u64
}

fn block_words(pfn: Pfn, order: usize) -> &'static mut [u64] {
    let ptr = DirectMap.frame_ptr(pfn).cast::<u64>();
    // SAFETY: the block of 2^order frames is allocated to this test (the
    // caller holds it), mapped by the direct map, page aligned.
    unsafe { core::slice::from_raw_parts_mut(ptr, (4096 << order) / 8) }
}

/// Every `stride`-th word of a block gets the pattern (the whole block
/// with stride 1).
fn fill_block(pfn: Pfn, order: usize, tag: u64, stride: usize) {
    for (i, w) in block_words(pfn, order)
        .iter_mut()
        .enumerate()
        .step_by(stride)
    {
        *w = word_of(tag, i);
    }
}

fn check_block(pfn: Pfn, order: usize, tag: u64, stride: usize) {
    for (i, w) in block_words(pfn, order).iter().enumerate().step_by(stride) {
        assert_eq!(
            *w,
            word_of(tag, i),
            "frame block {:#x} (order {order}) word {i} changed while held",
            pfn.0
        );
    }
}

fn object_bytes(ptr: usize, size: usize) -> &'static mut [u8] {
    // SAFETY: an object of `size` bytes the heap handed to this test.
    unsafe { core::slice::from_raw_parts_mut(ptr as *mut u8, size) }
}

impl Item {
    fn fill(&self) {
        match *self {
            Item::Object { ptr, size, tag } => {
                for (i, b) in object_bytes(ptr, size).iter_mut().enumerate() {
                    *b = byte_of(tag, i);
                }
            }
            Item::Block {
                pfn, order, tag, ..
            } => fill_block(pfn, order, tag, 1),
        }
    }

    fn check(&self) {
        match *self {
            Item::Object { ptr, size, tag } => {
                for (i, b) in object_bytes(ptr, size).iter().enumerate() {
                    assert_eq!(
                        *b,
                        byte_of(tag, i),
                        "object {ptr:#x} ({size} bytes) byte {i} changed while held"
                    );
                }
            }
            Item::Block {
                pfn, order, tag, ..
            } => check_block(pfn, order, tag, 1),
        }
    }

    /// Checks the pattern, then frees.
    fn free(self) {
        self.check();
        match self {
            Item::Object { ptr, size, .. } => {
                let layout = Layout::from_size_align(size, 8).unwrap();
                // SAFETY: allocated by `alloc_object` with this layout,
                // freed once (the item is consumed).
                unsafe { alloc::alloc::dealloc(ptr as *mut u8, layout) };
            }
            Item::Block {
                pfn, order, kind, ..
            } => {
                if order == 0 {
                    frames::free_page(pfn, kind).expect("free an order-0 frame");
                } else {
                    frames::free(pfn, order).expect("free a block");
                }
            }
        }
    }
}

/// A heap object of `size` bytes (align 8): infallible (the heap's
/// reserve helps) or, `fallible`, as `kalloc`'s helpers ask (failure
/// injection may fail it).
/// Returns the object and its size (a Vec may round a small request up).
fn alloc_object(size: usize, fallible: bool) -> Option<(usize, usize)> {
    if fallible {
        // A Vec's buffer is a raw allocation of `capacity * 8` bytes,
        // align 8; keep it as one.
        let v = kalloc::try_with_capacity::<u64>(size / 8).ok()?;
        let mut v = core::mem::ManuallyDrop::new(v);
        return Some((v.as_mut_ptr() as usize, v.capacity() * 8));
    }
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: a non-zero size.
    let p = unsafe { alloc::alloc::alloc(layout) };
    NonNull::new(p).map(|p| (p.as_ptr() as usize, size))
}

/// One of every kmalloc class's sizes: the class size itself, or a bit
/// under (the red zone then starts inside the object). Multiples of 8
/// (objects are made as `u64` buffers when fallible).
fn object_size(r: u64) -> usize {
    let class = KMALLOC_SIZES[(r % KMALLOC_SIZES.len() as u64) as usize];
    let under = ((r >> 8) % 2) as usize * 8;
    (class - under).max(8)
}

/// A block: order 0..=3; order 0 of both page-list kinds.
fn block_order_kind(r: u64) -> (usize, FrameKind) {
    match r % 5 {
        0 => (0, FrameKind::Kernel),
        1 => (0, FrameKind::PageTable),
        o => ((o - 1) as usize, FrameKind::Kernel),
    }
}

// ------------------------------------------------------------ mailboxes

/// Items on their way to another CPU, which frees them: a fixed ring
/// (nothing allocates under its lock).
struct Mailbox {
    items: [Option<Item>; 64],
    len: usize,
}

static MAILBOX: [IrqMutex<Mailbox>; MAX_CPUS] = [const {
    IrqMutex::new(Mailbox {
        items: [None; 64],
        len: 0,
    })
}; MAX_CPUS];

/// Hands `item` to CPU `to`; gives it back if its mailbox is full.
fn send(to: usize, item: Item) -> Result<(), Item> {
    let mut m = MAILBOX[to].lock();
    if m.len == m.items.len() {
        return Err(item);
    }
    let at = m.len;
    m.items[at] = Some(item);
    m.len += 1;
    Ok(())
}

fn receive(me: usize) -> Option<Item> {
    let mut m = MAILBOX[me].lock();
    if m.len == 0 {
        return None;
    }
    m.len -= 1;
    let at = m.len;
    m.items[at].take()
}

// ------------------------------------------------------------ mixed round

/// Allocates and frees at random: objects of every class, blocks of every
/// order; some go to the next CPU to free; drains now and then.
fn mixed(cpu: usize, inject: bool) {
    let counts = &COUNTS[cpu];
    let n = cpus();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ ((cpu as u64 + 1) << 32);
    let mut held: [Option<Item>; 48] = [None; 48];
    for step in 0..STEPS {
        let tag = ((cpu as u64) << 56) + step;
        if ferrite::proc::cpus::cpu() as usize != cpu {
            counts.wrong_cpu.fetch_add(1, Ordering::Relaxed);
        }
        let r = next(&mut rng);
        let slot = (r >> 40) as usize % held.len();
        // Free what the slot held (here, or on the next CPU).
        if let Some(item) = held[slot].take() {
            let to = (cpu + 1) % n;
            if to != cpu && r & 3 == 0 {
                item.check();
                match send(to, item) {
                    Ok(()) => {
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(item) => item.free(),
                }
            } else {
                item.free();
            }
        }
        // Free what other CPUs sent.
        while let Some(item) = receive(cpu) {
            item.free();
            counts.received.fetch_add(1, Ordering::Relaxed);
        }
        // With injection on, half the objects are fallible (injection may
        // fail them) and half not (nothing may fail them).
        let fallible = inject && r & 32 == 0;
        let item = if r & 16 == 0 || r & 0x300 == 0 {
            let size = object_size(r >> 12);
            alloc_object(size, fallible).map(|(ptr, size)| Item::Object { ptr, size, tag })
        } else {
            let (order, kind) = block_order_kind(r >> 12);
            frames::alloc(order, kind).map(|pfn| Item::Block {
                pfn,
                order,
                kind,
                tag,
            })
        };
        match item {
            Some(item) => {
                item.fill();
                match item {
                    Item::Object { .. } => counts.objects.fetch_add(1, Ordering::Relaxed),
                    Item::Block { .. } => counts.blocks.fetch_add(1, Ordering::Relaxed),
                };
                held[slot] = Some(item);
            }
            None if fallible => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                counts.must_not_fail.fetch_add(1, Ordering::Relaxed);
            }
        }
        if step % 500 == 250 {
            percpu::drain_local();
            counts.drains.fetch_add(1, Ordering::Relaxed);
        }
        if step % 1000 == 999 {
            sched::yield_now();
        }
    }
    for item in held.iter_mut().filter_map(Option::take) {
        item.free();
    }
    // Everything sent is freed by its receiver, after every sender is
    // done.
    SENT.fetch_add(1, Ordering::SeqCst);
    loop {
        let all_sent = SENT.load(Ordering::SeqCst) == n;
        while let Some(item) = receive(cpu) {
            item.free();
            counts.received.fetch_add(1, Ordering::Relaxed);
        }
        if all_sent {
            break;
        }
        sched::yield_now();
    }
}

// ------------------------------------------------------------ pressure round

/// A chain of held blocks and objects, linked through their own first
/// words (nothing else allocates while memory runs out): a block's first
/// word is the next block's pfn + order + kind, an object's first two
/// words the next object's address and size.
struct Chains {
    block: Option<(Pfn, usize, FrameKind)>,
    object: Option<(usize, usize)>,
    pages: u64,
    objects: u64,
}

const KINDS: [FrameKind; 2] = [FrameKind::Kernel, FrameKind::PageTable];

fn encode_block(b: Option<(Pfn, usize, FrameKind)>) -> u64 {
    b.map_or(0, |(pfn, order, kind)| {
        (pfn.0 << 8) | ((order as u64) << 1) | u64::from(kind == FrameKind::PageTable) | 0x80
    })
}

fn decode_block(w: u64) -> Option<(Pfn, usize, FrameKind)> {
    (w != 0).then(|| {
        (
            Pfn(w >> 8),
            ((w >> 1) & 7) as usize,
            KINDS[(w & 1) as usize],
        )
    })
}

/// Pattern words of a held block under pressure: one per 64 bytes (the
/// whole of memory is written, and read back, in this round).
const PRESSURE_STRIDE: usize = 8;

fn pressure(cpu: usize) {
    let counts = &COUNTS[cpu];
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ ((cpu as u64 + 1) << 24);
    let mut c = Chains {
        block: None,
        object: None,
        pages: 0,
        objects: 0,
    };
    let (mut blocks_out, mut objects_out) = (false, false);
    while !(blocks_out && objects_out) {
        let r = next(&mut rng);
        if !blocks_out {
            let (order, kind) = block_order_kind(r);
            match frames::alloc(order, kind) {
                Some(pfn) => {
                    fill_block(pfn, order, pfn.0, PRESSURE_STRIDE);
                    block_words(pfn, order)[0] = encode_block(c.block);
                    c.block = Some((pfn, order, kind));
                    c.pages += 1 << order;
                }
                // Smaller orders may still come: out when order 0 fails.
                None if order == 0 => blocks_out = true,
                None => {}
            }
        }
        if !objects_out {
            let size = object_size(r >> 16).max(16);
            match alloc_object(size, true) {
                Some((ptr, size)) => {
                    let b = object_bytes(ptr, size);
                    for (i, x) in b.iter_mut().enumerate().skip(16) {
                        *x = byte_of(ptr as u64, i);
                    }
                    let (next_ptr, next_size) = c.object.unwrap_or((0, 0));
                    b[..8].copy_from_slice(&(next_ptr as u64).to_ne_bytes());
                    b[8..16].copy_from_slice(&(next_size as u64).to_ne_bytes());
                    c.object = Some((ptr, size));
                    c.objects += 1;
                }
                None if size <= 64 => objects_out = true,
                None => {}
            }
        }
    }
    counts.held_pages.store(c.pages, Ordering::SeqCst);
    counts.blocks.store(c.pages, Ordering::SeqCst);
    counts.objects.store(c.objects, Ordering::SeqCst);
    // Every CPU is out of memory at once before anyone frees.
    EXHAUSTED.fetch_add(1, Ordering::SeqCst);
    while EXHAUSTED.load(Ordering::SeqCst) < cpus() {
        sched::yield_now();
    }
    while let Some((pfn, order, kind)) = c.block {
        let words = block_words(pfn, order);
        c.block = decode_block(words[0]);
        words[0] = word_of(pfn.0, 0);
        check_block(pfn, order, pfn.0, PRESSURE_STRIDE);
        if order == 0 {
            frames::free_page(pfn, kind).expect("free an order-0 frame");
        } else {
            frames::free(pfn, order).expect("free a block");
        }
    }
    while let Some((ptr, size)) = c.object {
        let b = object_bytes(ptr, size);
        for (i, x) in b.iter().enumerate().skip(16) {
            assert_eq!(*x, byte_of(ptr as u64, i), "object {ptr:#x} byte {i}");
        }
        let next_ptr = u64::from_ne_bytes(b[..8].try_into().unwrap()) as usize;
        let next_size = u64::from_ne_bytes(b[8..16].try_into().unwrap()) as usize;
        c.object = (next_ptr != 0).then_some((next_ptr, next_size));
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: allocated by `alloc_object` with this layout (as a u64
        // buffer of size/8 elements: the same layout), freed once.
        unsafe { alloc::alloc::dealloc(ptr as *mut u8, layout) };
    }
}

// ------------------------------------------------------------ checks

/// Every slab cache's objects in use (after a drain: none in magazines).
fn slab_active() -> [u64; MAX_CACHES] {
    frames::with(|m| {
        let mut a = [0; MAX_CACHES];
        for c in m.slab.caches() {
            a[c.id.index()] = c.active_objs;
        }
        m.slab
            .check_invariants(&m.buddy)
            .expect("slab lists consistent");
        m.buddy.check_invariants().expect("buddy lists consistent");
        a
    })
}

/// Runs `round`; afterwards every frame and every slab object in use
/// before is exactly as before (every CPU's caches drained).
fn balanced(what: &str, round: impl FnOnce()) {
    let free_before = ferrite::testing::settled_free_pages();
    let slab_before = slab_active();
    round();
    let free_after = ferrite::testing::settled_free_pages();
    let slab_after = slab_active();
    assert_eq!(
        free_after, free_before,
        "{what}: free frames before and after"
    );
    for (i, (b, a)) in slab_before.iter().zip(&slab_after).enumerate() {
        assert_eq!(a, b, "{what}: objects in use in slab cache {i}");
    }
    assert_eq!(percpu::pages_held(), [0, 0, 0]);
}

fn print_counts(what: &str) {
    for (cpu, c) in COUNTS[..cpus()].iter().enumerate() {
        ferrite::kprintln!(
            "  {what} cpu {cpu}: {} objects, {} blocks, {} sent, {} received, {} failed, {} magazine hits, {} drains",
            c.objects.load(Ordering::SeqCst),
            c.blocks.load(Ordering::SeqCst),
            c.sent.load(Ordering::SeqCst),
            c.received.load(Ordering::SeqCst),
            c.failed.load(Ordering::SeqCst),
            c.mag_hits.load(Ordering::SeqCst),
            ferrite::mm::percpu::drains_of(cpu),
        );
    }
}

// ------------------------------------------------------------ tests

/// One round of each kind first: what the kernel keeps at its high-water
/// mark (process table, vmalloc's tables for kernel stacks) is then in
/// place before the balances are counted.
fn warm_up() {
    run_round(WHERE);
    run_round(MIXED);
    ferrite::testing::count_free_frames();
}

fn kernel_threads_run_on_their_cpu() {
    run_round(WHERE);
    for (cpu, c) in COUNTS[..cpus()].iter().enumerate() {
        assert_eq!(
            c.objects.load(Ordering::SeqCst),
            1,
            "one worker ran on CPU {cpu}"
        );
    }
    assert!(matches!(
        sched::spawn_kthread_on("nowhere", worker, Affinity::Cpu(MAX_CPUS as u32)),
        Err(sched::SpawnError::NoSuchCpu(_))
    ));
}

fn every_cpu_allocates_and_frees_at_once() {
    balanced("mixed", || run_round(MIXED));
    print_counts("mixed");
    let n = cpus();
    for (cpu, c) in COUNTS[..n].iter().enumerate() {
        assert!(c.objects.load(Ordering::SeqCst) > STEPS / 4, "CPU {cpu}");
        assert!(c.blocks.load(Ordering::SeqCst) > STEPS / 4, "CPU {cpu}");
        assert_eq!(c.failed.load(Ordering::SeqCst), 0, "CPU {cpu}");
        // The magazines served this CPU (debug checks on: tests build with
        // slab-debug).
        assert!(c.mag_hits.load(Ordering::SeqCst) > STEPS / 8, "CPU {cpu}");
    }
    const { assert!(mmcore::slab::DEBUG, "tests run with the slab debug checks") };
    if n > 1 {
        assert!(total(|c| &c.sent) > 0);
        assert_eq!(total(|c| &c.sent), total(|c| &c.received));
    }
}

fn memory_pressure_on_every_cpu() {
    let total_pages = frames::stats().managed_pages;
    balanced("pressure", || run_round(PRESSURE));
    print_counts("pressure");
    let held = total(|c| &c.held_pages);
    ferrite::kprintln!("  pressure: {held} of {total_pages} frames held at once");
    // Out of memory for real: nearly every frame was held by the workers
    // (the rest: the kernel's own, the heap's reserve).
    assert!(
        held > total_pages / 2,
        "{held} of {total_pages} frames held"
    );
}

fn failure_injection_on_every_cpu() {
    balanced("failure injection", || run_round(INJECT));
    print_counts("inject");
    assert!(total(|c| &c.failed) > 0, "injected failures happened");
    assert!(total(|c| &c.objects) > 0);
}

fn every_frame_comes_back() {
    ferrite::testing::assert_frames_back(0);
}
