//! Per-CPU allocator caches in the kernel: order-0 page-table and kernel
//! frames come from this CPU's page lists and go back to them; frames on
//! the lists count as free in meminfo (which still adds up); drains give
//! everything back, so the frame balance is exact. Private faults on a
//! cached file take neither the frames lock nor the global page-cache lock
//! per fault (the file's own lock and atomic reference counts instead).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use ferrite::arch::smp;
use ferrite::mm::aspace::AddressSpace;
use ferrite::mm::commit::Charge;
use ferrite::mm::frames;
use ferrite::mm::pagecache;
use ferrite::mm::percpu;
use ferrite::proc::cpus::Affinity;
use ferrite::proc::sched;
use mmcore::FrameKind;
use spin::Mutex;
use vmcore::fault::FaultMode;
use vmcore::vma::VmaFlags;
use vmcore::{FaultAccess, Prot, Sharing, Vma, VmaKind};

ferrite::kernel_entry!(main);

/// The test file's id (registered before the frame count: its slot in
/// the page cache's file table stays).
static FILE_ID: AtomicU32 = AtomicU32::new(u32::MAX);

fn main() -> ! {
    FILE_ID.store(pagecache::register(&FILE), Ordering::Relaxed);
    ferrite::testing::count_free_frames();
    ferrite::testing::run(ferrite::tests![
        page_lists_serve_and_take_back_frames,
        frames_on_lists_count_as_free,
        anon_pages_take_no_frames_lock,
        anon_pages_freed_while_batched,
        file_faults_take_no_global_lock,
        reverse_map_room_is_kept_for_each_change,
        reverse_map_changes_on_every_cpu,
        balance_is_exact_after_drains,
    ])
}

fn page_lists_serve_and_take_back_frames() {
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(frames::alloc_zeroed(0, FrameKind::PageTable).expect("a frame"));
    }
    for &p in &got {
        assert_eq!(frames::kind(p), FrameKind::PageTable);
    }
    let last = *got.last().unwrap();
    for &p in &got {
        frames::free_page(p, FrameKind::PageTable).expect("free");
    }
    let info = percpu::local_info().expect("CPU 0 is set up");
    assert!(info.pages[1] > 0 && info.pages[1] <= 48, "{info:?}");
    // The most recently freed frame comes back first.
    let again = frames::alloc(0, FrameKind::PageTable).unwrap();
    assert_eq!(again, last);
    // Freed twice while on the list: refused.
    frames::free_page(again, FrameKind::PageTable).unwrap();
    assert!(frames::free_page(again, FrameKind::PageTable).is_err());
}

fn frames_on_lists_count_as_free() {
    let p = frames::alloc(0, FrameKind::Kernel).unwrap();
    frames::free_page(p, FrameKind::Kernel).unwrap();
    let held: u64 = percpu::pages_held().iter().sum();
    assert!(held > 0);
    let s = frames::stats();
    assert_eq!(s.free_pages, frames::free_pages());
    let meminfo = ferrite::testing::sh("meminfo");
    ferrite::testing::assert_meminfo_adds_up(&meminfo);
}

const FAULTS: usize = 512;

/// A fault's common path (a user page from this CPU's list, its reverse
/// map and LRU insertion batched) takes the frames lock about once per
/// list refill, not once or twice per page as before.
fn anon_pages_take_no_frames_lock() {
    let mut pages = Vec::with_capacity(FAULTS);
    let before = frames::lock_stat().acquisitions;
    for i in 0..FAULTS {
        let va = 0x4000_0000 + (i as u64) * 4096;
        // Not zeroed: a debug build's direct-map writes check the frame's
        // kind under the frames lock.
        pages.push(ferrite::mm::frame_ref::FrameRef::alloc_anon(false, 7, va).expect("a page"));
    }
    let holds = frames::lock_stat().acquisitions - before;
    assert!(
        holds * 8 < FAULTS as u64,
        "{holds} frames-lock holds for {FAULTS} anonymous pages"
    );
    // Once the batch is applied, every page is on the LRU with its
    // reverse map.
    percpu::flush_lru_add_local();
    frames::with(|m| {
        for (i, p) in pages.iter().enumerate() {
            assert!(m.ext.on_lru(p.pfn()), "page {i} on the LRU");
            let e = m.ext.get(p.pfn()).unwrap();
            assert_eq!((e.family, e.vpn), (7, 0x4_0000 + i as u64), "page {i}");
            assert_eq!(e.flags & mmcore::lruadd::PENDING, 0);
        }
    });
    drop(pages);
}

/// Pages whose last reference goes while they wait in the batch are freed
/// by the batch (not twice, not onto the LRU), and the balance is exact.
fn anon_pages_freed_while_batched() {
    for round in 0..4 {
        let mut pages = Vec::with_capacity(40);
        for i in 0..40u64 {
            let p = ferrite::mm::frame_ref::FrameRef::alloc_anon(round % 2 == 0, 9, i << 12)
                .expect("a page");
            pages.push(p);
        }
        // Some shared (fork), then every reference dropped unflushed.
        let extra: Vec<_> = pages
            .iter()
            .step_by(3)
            .map(|p| p.try_clone().unwrap())
            .collect();
        drop(pages);
        drop(extra);
    }
    assert!(percpu::drain_all_sync());
    let s = frames::stats();
    assert_eq!(s.free_pages, frames::free_pages());
}

const PAGE: u64 = 4096;
const FILE_PAGES: u64 = 128;

static FILE: [u8; (FILE_PAGES * PAGE) as usize] = {
    let mut f = [0u8; (FILE_PAGES * PAGE) as usize];
    let mut i = 0;
    while i < f.len() {
        f[i] = (i / 4096) as u8 ^ (i % 251) as u8;
        i += 1;
    }
    f
};

/// Private write faults on a cached file (page_fault2's: each copies the
/// cache page) take the file's own lock, and the cache page's reference
/// atomically: neither the global page-cache lock nor the frames lock
/// once per fault. The frames balance exactly afterwards.
fn file_faults_take_no_global_lock() {
    const BASE: u64 = 0x5000_0000;
    let file = FILE_ID.load(Ordering::Relaxed);
    let a = Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")));
    let vma = Vma {
        start: BASE,
        end: BASE + FILE_PAGES * PAGE,
        prot: Prot::RW,
        sharing: Sharing::Private,
        kind: VmaKind::File { file, offset: 0 },
        flags: VmaFlags::default(),
    };
    let fault_all = || {
        for page in 0..FILE_PAGES {
            a.lock()
                .handle_fault(BASE + page * PAGE, FaultAccess::Write, FaultMode::User)
                .expect("a private copy of the file page");
        }
    };
    // The first round reads the file into the cache.
    a.lock().map(vma).unwrap();
    fault_all();
    let (mut cache, mut frames_holds, mut file_holds) = (0, 0, 0);
    for _ in 0..2 {
        a.lock().unmap(BASE, BASE + FILE_PAGES * PAGE).unwrap();
        a.lock().map(vma).unwrap();
        let (c0, f0, p0) = (
            pagecache::lock_stat(),
            frames::lock_stat(),
            pagecache::file_lock_stat(),
        );
        fault_all();
        cache += pagecache::lock_stat().since(&c0).acquisitions;
        frames_holds += frames::lock_stat().since(&f0).acquisitions;
        file_holds += pagecache::file_lock_stat().since(&p0).acquisitions;
    }
    let faults = 2 * FILE_PAGES;
    assert_eq!(
        cache, 0,
        "global page-cache lock taken by {faults} cache hits"
    );
    assert!(
        frames_holds * 8 < faults,
        "{frames_holds} frames-lock holds for {faults} private file faults"
    );
    assert!(
        file_holds >= faults && file_holds <= 2 * faults,
        "{file_holds} file-lock holds for {faults} faults"
    );
    // The copies hold the file's bytes; the cache pages are unchanged.
    for page in [0, 1, FILE_PAGES - 1] {
        let va = BASE + page * PAGE + 77;
        assert_eq!(a.lock().peek(va), Some(FILE[va as usize - BASE as usize]));
    }
    drop(a);
    assert!(pagecache::shrink() >= FILE_PAGES, "cache pages not freed");
    assert!(percpu::drain_all_sync());
    let s = frames::stats();
    assert_eq!(s.free_pages, frames::free_pages());
    let meminfo = ferrite::testing::sh("meminfo");
    ferrite::testing::assert_meminfo_adds_up(&meminfo);
}

/// Two address spaces change their regions of one file in turn: each
/// reserves room in the file's reverse map before its change and replaces
/// its entries after it. Here both reserve before either replaces (what
/// two CPUs do at once): the second replacement still finds the room it
/// reserved. (With room counted only for the latest reservation, both
/// reservations asked for the same capacity and the second replacement
/// found none: "no room reserved", a debug assertion, seen in smpsched on
/// 2 and 4 CPUs.) Rooms given back, the list is empty and freed.
fn reverse_map_room_is_kept_for_each_change() {
    let file = FILE_ID.load(Ordering::Relaxed);
    assert_eq!(pagecache::mappings_room(file), Some((0, 0, 0)));
    let (a, b) = (u64::MAX - 1, u64::MAX - 2);
    let room_a = pagecache::reserve_mappings(file, 8).expect("memory for 8 entries");
    let room_b = pagecache::reserve_mappings(file, 8).expect("memory for 8 more");
    let (len, cap, reserved) = pagecache::mappings_room(file).unwrap();
    assert_eq!((len, reserved), (0, 16));
    assert!(cap >= 16, "capacity {cap} for two reservations of 8");
    pagecache::set_mappings(file, a, regions(a, 8));
    pagecache::set_mappings(file, b, regions(b, 8));
    let (len, cap2, _) = pagecache::mappings_room(file).unwrap();
    assert_eq!((len, cap2), (16, cap), "the replacements allocated nothing");
    drop(room_a);
    drop(room_b);
    assert_eq!(pagecache::mappings_room(file), Some((16, cap, 0)));
    // A room given back unused leaves the entries as they are.
    let unused = pagecache::reserve_mappings(file, 3).expect("memory for 3 entries");
    assert_eq!(pagecache::mappings_room(file).unwrap().2, 3);
    drop(unused);
    assert_eq!(pagecache::mappings_room(file).unwrap().2, 0);
    pagecache::set_mappings(file, a, core::iter::empty());
    assert_eq!(pagecache::mappings_room(file).unwrap().0, 8);
    pagecache::set_mappings(file, b, core::iter::empty());
    assert_eq!(pagecache::mappings_room(file), Some((0, 0, 0)));
}

/// `n` one-page regions of `space` on the test file.
fn regions(space: u64, n: u64) -> impl Iterator<Item = pagecache::Mapping> {
    (0..n).map(move |i| pagecache::Mapping {
        space,
        start: 0x6000_0000 + 2 * i * PAGE,
        offset: i * PAGE,
        len: PAGE,
    })
}

const MAP_ROUNDS: usize = 300;
static MAPPER_DONE: AtomicBool = AtomicBool::new(false);

/// Maps a file, splits the region into up to 9 with `mprotect` and
/// unmaps it, `MAP_ROUNDS` times, in an address space of its own. Every
/// other round the file is a new shared anonymous object (what
/// `mmap(MAP_SHARED | MAP_ANONYMOUS)` makes), which dies at the unmap, so
/// its slot in the page cache is reused by the next object registered on
/// either CPU.
fn map_and_split_rounds(base: u64) {
    let mut space = AddressSpace::new().expect("memory for a PML4");
    for round in 0..MAP_ROUNDS {
        let fresh = round % 2 == 1;
        let (file, sharing) = match fresh {
            true => (
                pagecache::register_anonymous(Charge::none()).expect("a page-cache slot"),
                Sharing::Shared,
            ),
            false => (FILE_ID.load(Ordering::Relaxed), Sharing::Private),
        };
        let vma = Vma {
            start: base,
            end: base + 9 * PAGE,
            prot: Prot::RW,
            sharing,
            kind: VmaKind::File { file, offset: 0 },
            flags: VmaFlags::default(),
        };
        space.map(vma).expect("a file region");
        if fresh {
            // The mapping holds it now (mmap lets its creator's hold go).
            pagecache::release(file);
        }
        for page in (1..9).step_by(2).take(1 + round % 4) {
            let at = base + page * PAGE;
            space
                .protect(at, at + PAGE, Prot::READ)
                .expect("a split of the file region");
        }
        space.unmap(base, base + 9 * PAGE).expect("unmap");
    }
}

fn mapper() -> ! {
    map_and_split_rounds(0x7000_0000);
    MAPPER_DONE.store(true, Ordering::SeqCst);
    sched::kthread_exit()
}

/// Address spaces on two CPUs map, split and unmap regions of one file,
/// and of shared anonymous objects that die at the unmap, at the same
/// time, each reserving room in the reverse map and replacing its entries
/// after every change (the real paths: map, mprotect, munmap). Debug
/// builds assert that no replacement finds its room gone and that no room
/// is given back to a file that has less reserved (a room outliving its
/// file, whose slot a new object took); at the end the reverse map holds
/// nothing and no room is left reserved.
fn reverse_map_changes_on_every_cpu() {
    let file = FILE_ID.load(Ordering::Relaxed);
    let other = smp::cpus_online() > 1;
    if other {
        sched::spawn_kthread_on("mapper", mapper, Affinity::Cpu(1)).expect("a thread on CPU 1");
    }
    map_and_split_rounds(0x5000_0000);
    if other {
        while !MAPPER_DONE.load(Ordering::SeqCst) {
            sched::sleep_ticks(1);
        }
        assert!(
            ferrite::testing::reap_adopted_for_a_while(),
            "the mapper thread was reaped"
        );
    }
    assert_eq!(pagecache::mappings_room(file), Some((0, 0, 0)));
    // No room was given back to a file other than its own: a new object
    // (in one of the slots the rounds used) has none reserved.
    let fresh = pagecache::register_anonymous(Charge::none()).expect("a page-cache slot");
    assert_eq!(pagecache::mappings_room(fresh), Some((0, 0, 0)));
    pagecache::release(fresh);
    assert_eq!(pagecache::mappings_room(fresh), None, "the object died");
}

fn balance_is_exact_after_drains() {
    assert!(percpu::drain_all_sync());
    assert_eq!(percpu::pages_held(), [0, 0, 0]);
    ferrite::testing::assert_frames_back(0);
}
