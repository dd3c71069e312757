//! A write to a read-only kernel page (rodata) raises #PF with the present
//! and write bits: CR0.WP makes ring 0 honour read-only pages.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::testing::{ensure, expect_fault};
use vmcore::fault::PfErrorCode as Pf;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![write_to_rodata_is_a_protection_fault])
}

static READ_ONLY: u64 = 42;

fn write_to_rodata_is_a_protection_fault() {
    expect_fault(|fault| {
        let target = &READ_ONLY as *const u64 as u64;
        ensure(fault.vector() == 14, || {
            format!("vector {} ({fault})", fault.vector())
        })?;
        ensure(fault.cr2 == target, || {
            format!("CR2 {:#x}, wanted {target:#x}", fault.cr2)
        })?;
        let code = fault.page_fault_code().expect("a #PF");
        ensure(
            code.has(Pf::PRESENT) && code.has(Pf::WRITE) && !code.has(Pf::USER),
            || format!("error code {:#x} ({code})", code.0),
        )?;
        let line = format!("{fault}");
        ensure(line.contains("kernel write, protection violation"), || {
            format!("report `{line}`")
        })
    });
    // Through an integer: the point is to write where Rust must not.
    let p = core::hint::black_box(&READ_ONLY as *const u64 as usize) as *mut u64;
    // SAFETY: deliberately faults (rodata is mapped read-only); the fault
    // ends the test.
    unsafe { core::ptr::write_volatile(p, 7) };
    panic!("write to rodata did not fault");
}
