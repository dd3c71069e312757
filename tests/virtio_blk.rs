//! The virtio block device (the swap disk), booted with a blank 128 MiB
//! disk attached (`swap=128M` in machines.txt): the boot probe finds it with
//! that capacity; patterns written across the disk read back identical,
//! from direct-map buffers and from the kernel stack, in single pages and in
//! multi-request runs; out-of-range and malformed requests are errors that
//! leave the device working; a second probe never sets up a device in use;
//! no frame leaks; it works as a `swapcore::SwapDevice`, runs of slots included. Then the raw sequential speed of 64 MiB, printed.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use ferrite::drivers::virtio_blk::{self, BlkError, VirtioBlk, MAX_REQUEST_PAGES, PAGE};
use ferrite::mm::frames;
use swapcore::{Page, SwapDevice, SwapIoError};

ferrite::kernel_entry!(main);

/// The disk machines.txt attaches: 128 MiB.
const DISK_PAGES: u64 = (128 << 20) / PAGE as u64;

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        probe_found_the_disk_with_its_capacity,
        unwritten_pages_read_as_zeros,
        patterns_round_trip_across_the_disk,
        multi_request_runs_round_trip,
        stack_buffers_round_trip,
        out_of_range_requests_are_errors_not_panics,
        a_disk_in_use_is_not_probed_twice,
        io_leaks_no_frames,
        the_disk_is_a_swap_device,
        raw_sequential_throughput_of_64_mib,
    ])
}

/// Runs `f` on the disk the boot probe parked, then parks it again.
fn with_disk(f: impl FnOnce(&mut VirtioBlk)) {
    let mut disk = virtio_blk::take().expect("the boot probe found the swap disk");
    f(&mut disk);
    virtio_blk::put_back(disk);
}

/// A page whose every 8-byte word names the page and the word (and `seed`).
fn pattern(page: u64, seed: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(PAGE);
    for word in 0..(PAGE / 8) as u64 {
        let v = (page << 32 | word) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

fn probe_found_the_disk_with_its_capacity() {
    with_disk(|disk| {
        assert_eq!(disk.capacity_pages(), DISK_PAGES, "128 MiB in 4 KiB pages");
        assert!(!disk.readonly());
        let location = alloc::format!("{}", disk.location());
        assert_eq!(location.len(), "00:04.0".len(), "PCI location `{location}`");
    });
}

fn unwritten_pages_read_as_zeros() {
    with_disk(|disk| {
        let mut page = alloc::vec![0xffu8; PAGE];
        disk.read_pages(DISK_PAGES / 3, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0), "a blank disk reads as zeros");
    });
}

fn patterns_round_trip_across_the_disk() {
    with_disk(|disk| {
        // First, last, and pages spread over the whole disk.
        let pages: Vec<u64> = (0..64)
            .map(|i| i * (DISK_PAGES / 64) + i % 7)
            .chain([1, DISK_PAGES - 1])
            .collect();
        for &p in &pages {
            disk.write_pages(p, &pattern(p, 1)).unwrap();
        }
        let mut back = alloc::vec![0u8; PAGE];
        for &p in &pages {
            disk.read_pages(p, &mut back).unwrap();
            assert!(back == pattern(p, 1), "page {p} read back different");
        }
        // Overwrite one: its neighbours keep their data.
        disk.write_pages(DISK_PAGES / 2, &pattern(DISK_PAGES / 2, 2))
            .unwrap();
        disk.read_pages(DISK_PAGES / 2, &mut back).unwrap();
        assert!(back == pattern(DISK_PAGES / 2, 2));
        let neighbour = 32 * (DISK_PAGES / 64) + 32 % 7;
        disk.read_pages(neighbour, &mut back).unwrap();
        assert!(back == pattern(neighbour, 1), "a write spilled over");
    });
}

fn multi_request_runs_round_trip() {
    with_disk(|disk| {
        // More pages than one request carries, starting unaligned.
        let start = 1000;
        let count = 2 * MAX_REQUEST_PAGES as u64 + 5;
        let data: Vec<u8> = (0..count).flat_map(|i| pattern(start + i, 3)).collect();
        disk.write_pages(start, &data).unwrap();
        let mut back = alloc::vec![0u8; data.len()];
        disk.read_pages(start, &mut back).unwrap();
        assert!(back == data, "a multi-request run read back different");
        // Page by page, the same bytes.
        let mut page = alloc::vec![0u8; PAGE];
        for i in [
            0,
            MAX_REQUEST_PAGES as u64 - 1,
            MAX_REQUEST_PAGES as u64,
            count - 1,
        ] {
            disk.read_pages(start + i, &mut page).unwrap();
            assert!(page == pattern(start + i, 3), "page {i} of the run");
        }
    });
}

fn stack_buffers_round_trip() {
    with_disk(|disk| {
        // The kernel stack is in the vmalloc area, not the direct map: the
        // driver stages these through its own DMA buffer.
        let mut out = [0u8; 2 * PAGE];
        out[..PAGE].copy_from_slice(&pattern(7000, 4));
        out[PAGE..].copy_from_slice(&pattern(7001, 4));
        disk.write_pages(7000, &out).unwrap();
        let mut back = [0u8; 2 * PAGE];
        disk.read_pages(7000, &mut back).unwrap();
        assert!(back == out, "stack buffer read back different");
        let mut heap = alloc::vec![0u8; PAGE];
        disk.read_pages(7001, &mut heap).unwrap();
        assert!(heap == pattern(7001, 4));
    });
}

fn out_of_range_requests_are_errors_not_panics() {
    with_disk(|disk| {
        let mut page = alloc::vec![0u8; PAGE];
        let past = |start, pages| BlkError::OutOfRange {
            start,
            pages,
            capacity: DISK_PAGES,
        };
        assert_eq!(
            disk.read_pages(DISK_PAGES, &mut page),
            Err(past(DISK_PAGES, 1))
        );
        assert_eq!(
            disk.write_pages(DISK_PAGES, &page),
            Err(past(DISK_PAGES, 1))
        );
        let two = alloc::vec![0u8; 2 * PAGE];
        assert_eq!(
            disk.write_pages(DISK_PAGES - 1, &two),
            Err(past(DISK_PAGES - 1, 2))
        );
        assert_eq!(disk.read_pages(u64::MAX, &mut page), Err(past(u64::MAX, 1)));
        assert_eq!(
            disk.read_pages(0, &mut page[..100]),
            Err(BlkError::BadLength(100))
        );
        assert_eq!(
            disk.write_pages(0, &page[..PAGE - 512]),
            Err(BlkError::BadLength(PAGE - 512))
        );
        // Nothing at the very end is fine, and the device still works.
        assert_eq!(disk.write_pages(DISK_PAGES, &[]), Ok(()));
        disk.write_pages(DISK_PAGES - 1, &pattern(DISK_PAGES - 1, 5))
            .unwrap();
        disk.read_pages(DISK_PAGES - 1, &mut page).unwrap();
        assert!(page == pattern(DISK_PAGES - 1, 5));
    });
}

fn a_disk_in_use_is_not_probed_twice() {
    let disk = virtio_blk::take().expect("the boot probe found the swap disk");
    assert!(virtio_blk::take().is_none(), "handed out once");
    assert!(
        virtio_blk::probe().is_none(),
        "a second probe set up the disk in use"
    );
    // Dropping resets the device; a new probe sets it up again, and the
    // data is still on the disk.
    drop(disk);
    let mut disk = virtio_blk::probe().expect("the disk again after a reset");
    assert_eq!(disk.capacity_pages(), DISK_PAGES);
    let mut page = alloc::vec![0u8; PAGE];
    disk.read_pages(1, &mut page).unwrap();
    assert!(page == pattern(1, 1), "data survives the reset");
    virtio_blk::put_back(disk);
}

fn io_leaks_no_frames() {
    with_disk(|disk| {
        let data = alloc::vec![0x5au8; 8 * PAGE];
        let mut back = alloc::vec![0u8; 8 * PAGE];
        let before = frames::free_pages();
        for round in 0..50u64 {
            disk.write_pages(round * 8, &data).unwrap();
            disk.read_pages(round * 8, &mut back).unwrap();
            let _ = disk.read_pages(DISK_PAGES, &mut back);
        }
        virtio_blk::raw_throughput(disk, 256).unwrap();
        assert_eq!(frames::free_pages(), before, "I/O leaked frames");
        assert!(back == data);
    });
}

fn the_disk_is_a_swap_device() {
    with_disk(|disk| {
        let dev: &mut dyn SwapDevice = disk;
        assert_eq!(dev.name(), "vda");
        assert_eq!(dev.pages(), DISK_PAGES);
        let mut page: Page = [0; PAGE];
        for slot in [0, 5, DISK_PAGES - 1] {
            page.copy_from_slice(&pattern(slot, 6));
            dev.write_page(slot, &page).unwrap();
        }
        for slot in [0, 5, DISK_PAGES - 1] {
            let mut back: Page = [0; PAGE];
            dev.read_page(slot, &mut back).unwrap();
            assert!(back[..] == pattern(slot, 6)[..], "slot {slot}");
        }
        dev.discard(5);
        assert_eq!(
            dev.write_page(DISK_PAGES, &page),
            Err(SwapIoError::OutOfRange)
        );
        assert_eq!(
            dev.read_page(u64::MAX, &mut page),
            Err(SwapIoError::OutOfRange)
        );
        assert_eq!(dev.mem_used(), 0, "a disk holds no RAM");
        // Runs of slots (one request each, in heap buffers), up to the last
        // slot and longer than one request; pages written one by one read
        // back in a run, and the other way round.
        for (first, len) in [(7, 3), (DISK_PAGES - 70, 70), (200, 1)] {
            let pages: Vec<Page> = (first..first + len)
                .map(|s| pattern(s, 7).try_into().unwrap())
                .collect();
            dev.write_run(first, &pages).unwrap();
            let mut back: Vec<Page> = alloc::vec![[0; PAGE]; len as usize];
            dev.read_run(first, &mut back).unwrap();
            assert!(back == pages, "run at {first}");
            let mut one: Page = [0; PAGE];
            dev.read_page(first + len - 1, &mut one).unwrap();
            assert!(one[..] == pattern(first + len - 1, 7)[..]);
        }
        dev.write_page(9, &pattern(9, 8).try_into().unwrap())
            .unwrap();
        let mut back: Vec<Page> = alloc::vec![[0; PAGE]; 3];
        dev.read_run(7, &mut back).unwrap();
        assert!(back[1][..] == pattern(8, 7)[..] && back[2][..] == pattern(9, 8)[..]);
        // A run past the end is refused whole: nothing of it is written.
        let pages: Vec<Page> = alloc::vec![[0xee; PAGE]; 2];
        assert_eq!(
            dev.write_run(DISK_PAGES - 1, &pages),
            Err(SwapIoError::OutOfRange)
        );
        assert_eq!(
            dev.read_run(DISK_PAGES, &mut back),
            Err(SwapIoError::OutOfRange)
        );
        dev.read_page(DISK_PAGES - 1, &mut page).unwrap();
        assert!(page[..] == pattern(DISK_PAGES - 1, 7)[..]);
    });
}

fn raw_sequential_throughput_of_64_mib() {
    with_disk(|disk| {
        let pages = (64 << 20) / PAGE as u64;
        let mib_per_s = |cycles: u64| {
            let us = ferrite::time::cycles_to_us(cycles).max(1);
            64 * 1_000_000 / us
        };
        for per_request in [MAX_REQUEST_PAGES, 1] {
            let (write, read) = virtio_blk::raw_throughput_in(disk, pages, per_request).unwrap();
            ferrite::kprintln!(
                "bench: virtio-blk raw sequential 64 MiB, {per_request} pages per request: write {write} cycles ({} MiB/s), read {read} cycles ({} MiB/s)",
                mib_per_s(write),
                mib_per_s(read),
            );
        }
        // What was written is there (the benchmark's pattern, not zeros).
        let mut page = alloc::vec![0u8; PAGE];
        disk.read_pages(pages - 1, &mut page).unwrap();
        assert!(page.iter().any(|&b| b != 0), "the benchmark wrote nothing");
    });
}
