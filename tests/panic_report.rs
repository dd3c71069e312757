//! The fatal reports' memory reads are fault-safe and their walks bounded,
//! and a panic whose frame-pointer chain leads into memory with a corrupt
//! page-table entry still prints its report and ends the run.
//!
//! Before the guard, the backtrace checked each frame with a software page
//! walk and then dereferenced it: here the walk finds a present leaf, the
//! read faults (the leaf points at a physical address no machine has), and
//! the fault's own report walked the same chain again, recursing until the
//! stacks ran out and QEMU never exited.

#![no_std]
#![no_main]

mod panic_support;

use ferrite::arch::backtrace::{self, End, MAX_FRAMES};
use ferrite::arch::exceptions::{print_page_walk, WalkEnd};
use ferrite::arch::uaccess::read_kernel_u64;
use ferrite::mm::layout::{KERNEL_BASE, KERNEL_HALF_START};
use panic_support::{corrupt_entry, restore_entry, stack_below_corrupt_page};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        safe_read_of_mapped_memory,
        safe_read_refuses_or_survives_bad_addresses,
        safe_read_and_page_walk_through_a_corrupt_table,
        backtrace_walk_stops_on_corrupt_chains,
        backtrace_walk_is_bounded,
        panic_with_a_frame_pointer_into_corrupt_memory,
    ])
}

static VALUE: u64 = 0x1234_5678_9abc_def0;

fn safe_read_of_mapped_memory() {
    let addr = core::ptr::addr_of!(VALUE) as u64;
    assert_eq!(read_kernel_u64(addr), Some(0x1234_5678_9abc_def0));
    let local = core::hint::black_box(42u64);
    assert_eq!(read_kernel_u64(core::ptr::addr_of!(local) as u64), Some(42));
}

fn safe_read_refuses_or_survives_bad_addresses() {
    // Unmapped: the kernel stack's guard page (the read faults, fixed up).
    let guard = ferrite::kernel_stack().guard;
    assert_eq!(ferrite::mm::paging::translate(guard), None);
    assert_eq!(read_kernel_u64(guard), None);
    assert_eq!(read_kernel_u64(guard + 4088), None);
    // Refused before reading: non-canonical, user half, misaligned.
    assert_eq!(read_kernel_u64(0x8000_0000_0000_0000), None);
    assert_eq!(read_kernel_u64(0xffff_7fff_ffff_fff8), None);
    assert_eq!(read_kernel_u64(0x1000), None);
    assert_eq!(read_kernel_u64(core::ptr::addr_of!(VALUE) as u64 + 1), None);
    // The fixups did not disturb anything: reads still work.
    assert!(read_kernel_u64(core::ptr::addr_of!(VALUE) as u64).is_some());
}

/// The first 512 GiB of the kernel half hold nothing; its PDPT exists
/// (every kernel-half PML4 entry is populated at boot) and is empty.
const EMPTY_REGION: u64 = KERNEL_HALF_START;

fn safe_read_and_page_walk_through_a_corrupt_table() {
    // SAFETY: nothing uses the empty region; the entry is put back below.
    let old = unsafe { corrupt_entry(EMPTY_REGION, 2) };
    assert_eq!(old, 0, "the region was empty");
    let read = read_kernel_u64(EMPTY_REGION + 0x1000);
    let walk = print_page_walk(EMPTY_REGION + 0x1000);
    // SAFETY: what corrupt_entry returned.
    unsafe { restore_entry(EMPTY_REGION, 2, old) };
    assert_eq!(read, None);
    // PML4 and PDPT entries read; the "PD" behind the corrupt one is not.
    assert_eq!(walk.entries, 2, "{walk:?}");
    assert_eq!(walk.end, WalkEnd::Unreadable, "{walk:?}");
    // A healthy address walks to its leaf.
    let leaf = print_page_walk(core::ptr::addr_of!(VALUE) as u64);
    assert_eq!(leaf.end, WalkEnd::Leaf, "{leaf:?}");
}

/// A stack of fake frames: `[next, return address]` pairs, written through
/// a raw pointer with volatile writes (the walk reads them by address).
#[repr(C, align(16))]
struct Frames([[u64; 2]; 48]);

impl Frames {
    fn new() -> Frames {
        Frames([[0; 2]; 48])
    }

    fn base(&mut self) -> u64 {
        self.0.as_mut_ptr() as u64
    }

    fn at(&mut self, i: usize) -> u64 {
        self.base() + 16 * i as u64
    }

    fn set(&mut self, i: usize, next: u64, ret: u64) {
        let slot = &mut self.0[i] as *mut [u64; 2];
        // SAFETY: a slot of this array, written in place.
        unsafe { slot.write_volatile([next, ret]) };
    }
}

fn rsp() -> u64 {
    let rsp: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp) };
    rsp
}

fn walk(rbp: u64) -> backtrace::Summary {
    let text = walk as *const () as u64;
    backtrace::walk(text, core::hint::black_box(rbp), rsp(), |_, _| {})
}

fn backtrace_walk_stops_on_corrupt_chains() {
    let text = walk as *const () as u64 + 1;
    let mut frames = Frames::new();
    let (f0, f1) = (frames.at(0), frames.at(1));
    // A frame pointing at itself.
    frames.set(0, f0, text);
    let s = walk(f0);
    assert_eq!((s.frames, s.end), (2, End::NotAscending));
    // A return address outside the kernel image.
    frames.set(0, f1, 0x40_1000);
    assert_eq!(walk(f0).end, End::NotKernelText);
    // Saved frame pointers below the frame: non-canonical, user, kernel.
    for bad in [0x8000_0000_0000_0000, 0x7fff_0000, EMPTY_REGION] {
        frames.set(0, bad, text);
        let s = walk(f0);
        assert_eq!((s.frames, s.end), (2, End::NotAscending), "{bad:#x}");
    }
    // Above the frame but beyond any stack's reach.
    for bad in [f0 + (64 << 10), KERNEL_BASE, 0xffff_ffff_ffff_fff8] {
        frames.set(0, bad, text);
        let s = walk(f0);
        assert_eq!((s.frames, s.end), (2, End::OutsideStack), "{bad:#x}");
    }
    // Misaligned.
    assert_eq!(walk(f0 + 4).end, End::OutsideStack);
    // On the stack's reach but unreadable: a page with a corrupt entry.
    let (top, corrupt) = stack_below_corrupt_page(2);
    let s = backtrace::walk(text, corrupt, top - 64, |_, _| {});
    assert_eq!((s.frames, s.end), (1, End::Unreadable));
    // A normal chain ends normally.
    frames.set(0, f1, text);
    frames.set(1, 0, text);
    let s = walk(f0);
    assert_eq!((s.frames, s.end), (3, End::Complete));
}

fn backtrace_walk_is_bounded() {
    let text = walk as *const () as u64 + 1;
    let mut frames = Frames::new();
    let base = frames.base();
    for i in 0..48 {
        let next = frames.at(i + 1);
        frames.set(i, next, text);
    }
    let mut seen = 0;
    let s = backtrace::walk(text, core::hint::black_box(base), rsp(), |_, _| seen += 1);
    assert_eq!((s.frames, s.end), (MAX_FRAMES, End::MaxFrames));
    assert_eq!(seen, MAX_FRAMES);
}

fn panic_with_a_frame_pointer_into_corrupt_memory() {
    ferrite::testing::expect_panic(|report| {
        if report.backtrace.end != End::Unreadable {
            return Err("the backtrace did not stop at the corrupt frame");
        }
        if report.backtrace.frames < 3 || report.backtrace.frames > MAX_FRAMES {
            return Err("unexpected number of frames");
        }
        Ok(())
    });
    let (top, corrupt) = stack_below_corrupt_page(4);
    CORRUPT.store(corrupt, core::sync::atomic::Ordering::SeqCst);
    ferrite::arch::stack::run_on_stack(top, panic_on_corrupt_chain)
}

static CORRUPT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

extern "C" fn panic_on_corrupt_chain() -> ! {
    let corrupt = CORRUPT.load(core::sync::atomic::Ordering::SeqCst);
    // SAFETY: overwrites this function's saved frame pointer (0: the bottom
    // of the chain, as run_on_stack leaves it); the function never returns.
    unsafe { core::arch::asm!("mov [rbp], {}", in(reg) corrupt) };
    panic!("deliberate panic with a corrupt frame-pointer chain");
}
