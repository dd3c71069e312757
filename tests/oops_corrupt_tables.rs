//! A page fault whose report meets corrupt page tables twice: the faulting
//! address's translation goes through a PDPT entry pointing at a physical
//! address no machine has, and the frame pointer at the fault points into a
//! page whose PTE is just as bad. The report's page walk and backtrace both
//! read through fault-safe reads, stop there, and the run ends.

#![no_std]
#![no_main]

extern crate alloc;

mod panic_support;

use alloc::format;
use core::sync::atomic::{AtomicU64, Ordering};

use ferrite::arch::backtrace::End;
use ferrite::arch::exceptions::{PageWalk, WalkEnd};
use ferrite::mm::layout::KERNEL_HALF_START;
use ferrite::testing::{ensure, expect_fault};
use panic_support::{corrupt_entry, stack_below_corrupt_page};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![page_fault_report_through_corrupt_tables])
}

/// The first 512 GiB of the kernel half: nothing lives there.
const TARGET: u64 = KERNEL_HALF_START + 0x1000;

static CORRUPT_FRAME: AtomicU64 = AtomicU64::new(0);

fn page_fault_report_through_corrupt_tables() {
    expect_fault(|fault| {
        ensure(fault.vector() == 14, || {
            format!("vector {}", fault.vector())
        })?;
        ensure(fault.cr2 == TARGET, || format!("CR2 {:#x}", fault.cr2))?;
        let walk = fault.report.walk;
        ensure(
            walk == Some(PageWalk {
                entries: 2,
                end: WalkEnd::Unreadable,
            }),
            || format!("page walk {walk:?}"),
        )?;
        let bt = fault.report.backtrace;
        ensure(bt.end == End::Unreadable && bt.frames == 1, || {
            format!("backtrace {bt:?}")
        })
    });
    // SAFETY: nothing uses the region; the run ends in the fault.
    unsafe { corrupt_entry(TARGET, 2) };
    let (top, corrupt) = stack_below_corrupt_page(4);
    CORRUPT_FRAME.store(corrupt, Ordering::SeqCst);
    ferrite::arch::stack::run_on_stack(top, fault_with_corrupt_frame_pointer)
}

extern "C" fn fault_with_corrupt_frame_pointer() -> ! {
    let rbp = CORRUPT_FRAME.load(Ordering::SeqCst);
    // SAFETY: deliberately faults with RBP pointing at the corrupt page; the
    // fault ends the run, so neither register is needed again.
    unsafe {
        core::arch::asm!(
            "mov rbp, {rbp}",
            "mov rax, [{target}]",
            "ud2",
            rbp = in(reg) rbp,
            target = in(reg) TARGET,
            options(noreturn)
        )
    }
}
