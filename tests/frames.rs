//! The buddy frame allocator on real memory maps: exhaust it, give it all
//! back, and the free lists are exactly as they were; reserved frames are
//! never handed out; bad frees are refused. Booted with 64 MiB, 256 MiB,
//! 4 GiB and 8 GiB (memory above the 4 GiB hole) and under UEFI's long map.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use ferrite::mm::frames::{self, DirectMap};
use ferrite::mm::layout::phys_to_virt;
use ferrite::mm::paging;
use mmcore::{FrameKind, Pfn, PhysMem, MAX_ORDER};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        managed_memory_matches_the_memory_map,
        exhausting_order_0_and_freeing_restores_everything,
        exhausting_mixed_orders_restores_everything,
        reserved_frames_are_never_handed_out,
        blocks_are_aligned_to_their_order,
        bad_frees_are_refused_and_change_nothing,
        zeroed_frames_are_zero,
    ])
}

fn managed_memory_matches_the_memory_map() {
    let report = frames::init_report().expect("frames initialised");
    let stats = frames::stats();
    // Everything usable except low memory, the metadata array and rounding.
    let usable_pages = report.usable_bytes / 4096;
    let overhead = (1 << 20) / 4096 + report.meta_bytes / 4096 + 64;
    assert!(
        stats.managed_pages + overhead >= usable_pages && stats.managed_pages <= usable_pages,
        "managed {} pages of {} usable",
        stats.managed_pages,
        usable_pages
    );
    ferrite::kprintln!(
        "  {} MiB managed, {} free; metadata {} KiB",
        stats.managed_pages >> 8,
        stats.free_pages >> 8,
        report.meta_bytes >> 10
    );
}

/// Frames handed out are chained through their first word (no other memory
/// is needed to remember millions of them); a bitmap catches a frame handed
/// out twice.
struct Chain {
    head: Option<(Pfn, usize)>,
    len: u64,
    seen: Vec<u64>,
    base: u64,
}

const END: u64 = u64::MAX;

impl Chain {
    fn new() -> Chain {
        let stats = frames::stats();
        let base = frames::with(|m| m.buddy.base_pfn().0);
        Chain {
            head: None,
            len: 0,
            seen: vec![0; stats.spanned_pages.div_ceil(64) as usize],
            base,
        }
    }

    fn push(&mut self, pfn: Pfn, order: usize) {
        for i in 0..(1u64 << order) {
            let bit = pfn.0 + i - self.base;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            assert!(
                self.seen[word] & mask == 0,
                "frame {:#x} handed out twice",
                pfn.0 + i
            );
            self.seen[word] |= mask;
        }
        let link = match self.head {
            Some((p, o)) => p.0 | ((o as u64) << 56),
            None => END,
        };
        // SAFETY: the frame was just allocated to this test; the direct map
        // covers it.
        unsafe { (DirectMap.frame_ptr(pfn) as *mut u64).write(link) };
        self.head = Some((pfn, order));
        self.len += 1;
    }

    fn free_all(&mut self) {
        while let Some((pfn, order)) = self.head.take() {
            // SAFETY: as in push: the frame is still ours until freed below.
            let link = unsafe { (DirectMap.frame_ptr(pfn) as *const u64).read() };
            frames::free(pfn, order).expect("freeing a frame we were given");
            if link != END {
                self.head = Some((Pfn(link & ((1 << 56) - 1)), (link >> 56) as usize));
            }
        }
    }
}

fn exhausting_order_0_and_freeing_restores_everything() {
    // The bitmap comes from the heap (and so from the buddy allocator): take
    // the baseline after it exists.
    let mut chain = Chain::new();
    // Frames on this CPU's page list are free but not on the buddy free
    // lists: drain it around each snapshot of the free lists.
    ferrite::mm::percpu::drain_local();
    let before = frames::stats();
    while let Some(pfn) = frames::alloc(0, FrameKind::Kernel) {
        chain.push(pfn, 0);
    }
    let empty = frames::stats();
    assert_eq!(empty.free_pages, 0, "alloc said no with pages still free");
    // The bitmap itself came from the heap, which may hold a few more pages.
    assert_eq!(
        chain.len, before.free_pages,
        "pages handed out != pages free before"
    );
    chain.free_all();
    ferrite::mm::percpu::drain_local();
    let after = frames::stats();
    assert_eq!(
        after.free_pages, before.free_pages,
        "free pages not restored"
    );
    assert_eq!(
        after.free_blocks, before.free_blocks,
        "free lists not merged back"
    );
    frames::with(|m| m.buddy.check_invariants()).expect("buddy invariants");
    ferrite::kprintln!("  allocated and freed {} frames", chain.len);
}

fn exhausting_mixed_orders_restores_everything() {
    let mut chain = Chain::new();
    let before = frames::stats();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let order = (seed % 7) as usize;
        match frames::alloc(order, FrameKind::Kernel) {
            Some(pfn) => chain.push(pfn, order),
            None => {
                if order == 0 {
                    break;
                }
            }
        }
    }
    assert_eq!(frames::stats().free_pages, 0);
    chain.free_all();
    let after = frames::stats();
    assert_eq!(after.free_pages, before.free_pages);
    assert_eq!(after.free_blocks, before.free_blocks);
}

/// Physical frames that must never be handed out: the kernel image, the
/// page tables in use, the kernel ELF file, the frame metadata array.
fn forbidden_frames() -> Vec<u64> {
    let mut v = Vec::new();
    let text = forbidden_frames as *const () as u64;
    static RODATA: u64 = 7;
    for virt in [text, &RODATA as *const u64 as u64] {
        v.push(paging::translate(virt).expect("kernel mapped") >> 12);
    }
    v.push(ferrite::arch::mmu::active_root() >> 12);
    let (elf, len) = ferrite::boot::facts().kernel_file;
    v.extend((elf >> 12)..((elf + len) >> 12));
    let meta = frames::with(|m| {
        m.buddy
            .meta(m.buddy.base_pfn())
            .map(|p| p as *const _ as u64)
    });
    v.push((meta.expect("meta array") - phys_to_virt(0)) >> 12);
    v
}

fn reserved_frames_are_never_handed_out() {
    let forbidden = forbidden_frames();
    let mut chain = Chain::new();
    while let Some(pfn) = frames::alloc(0, FrameKind::Kernel) {
        assert!(
            !forbidden.contains(&pfn.0),
            "handed out reserved frame {:#x}",
            pfn.0
        );
        assert!(pfn.0 >= 256, "handed out low-memory frame {:#x}", pfn.0);
        chain.push(pfn, 0);
    }
    chain.free_all();
}

fn blocks_are_aligned_to_their_order() {
    for order in 0..=MAX_ORDER {
        let pfn = frames::alloc(order, FrameKind::Kernel).expect("a block of every order");
        assert_eq!(
            pfn.0 % (1 << order),
            0,
            "order {order} block at {:#x}",
            pfn.0
        );
        frames::free(pfn, order).unwrap();
    }
}

fn bad_frees_are_refused_and_change_nothing() {
    let before = frames::stats();
    let pfn = frames::alloc(2, FrameKind::Kernel).unwrap();
    assert!(frames::free(pfn, 1).is_err(), "wrong order accepted");
    assert!(
        frames::free(Pfn(pfn.0 + 1), 0).is_err(),
        "tail frame accepted"
    );
    frames::free(pfn, 2).unwrap();
    let err = frames::free(pfn, 2).expect_err("double free accepted");
    ferrite::kprintln!("  double free refused: {err}");
    let kernel_frame = paging::translate(main as *const () as u64).unwrap() >> 12;
    assert!(
        frames::free(Pfn(kernel_frame), 0).is_err(),
        "freed a kernel frame"
    );
    let after = frames::stats();
    assert_eq!(after.free_pages, before.free_pages);
    assert_eq!(after.free_blocks, before.free_blocks);
    frames::with(|m| m.buddy.check_invariants()).expect("buddy invariants");
}

fn zeroed_frames_are_zero() {
    // Dirty a block, free it, and ask for it zeroed.
    let pfn = frames::alloc(3, FrameKind::Kernel).unwrap();
    // SAFETY: our block of 8 frames.
    unsafe { core::ptr::write_bytes(DirectMap.frame_ptr(pfn), 0xa5, 8 * 4096) };
    frames::free(pfn, 3).unwrap();
    let z = frames::alloc_zeroed(3, FrameKind::Kernel).unwrap();
    // SAFETY: our block of 8 frames.
    let bytes = unsafe { core::slice::from_raw_parts(DirectMap.frame_ptr(z), 8 * 4096) };
    assert!(
        bytes.iter().all(|&b| b == 0),
        "alloc_zeroed returned dirty memory"
    );
    frames::free(z, 3).unwrap();
}
