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

fn balance_is_exact_after_drains() {
    assert!(percpu::drain_all_sync());
    assert_eq!(percpu::pages_held(), [0, 0]);
    ferrite::testing::assert_frames_back(0);
}
