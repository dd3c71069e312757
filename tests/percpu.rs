//! Per-CPU allocator caches in the kernel: order-0 page-table and kernel
//! frames come from this CPU's page lists and go back to them; frames on
//! the lists count as free in meminfo (which still adds up); drains give
//! everything back, so the frame balance is exact.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use ferrite::mm::frames;
use ferrite::mm::percpu;
use mmcore::FrameKind;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::count_free_frames();
    ferrite::testing::run(ferrite::tests![
        page_lists_serve_and_take_back_frames,
        frames_on_lists_count_as_free,
        anon_pages_take_no_frames_lock,
        anon_pages_freed_while_batched,
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

fn balance_is_exact_after_drains() {
    assert!(percpu::drain_all_sync());
    assert_eq!(percpu::pages_held(), [0, 0, 0]);
    ferrite::testing::assert_frames_back(0);
}
