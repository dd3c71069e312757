//! A read of an unmapped kernel address raises #PF with CR2 = the address and
//! error code "not present, read, kernel".

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::testing::{ensure, expect_fault};
use vmcore::fault::PfErrorCode as Pf;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![unmapped_read_is_a_page_fault])
}

/// In the vmalloc area, which nothing maps yet.
const UNMAPPED: u64 = ferrite::mm::layout::VMALLOC_START + 0x1234_5008;

fn unmapped_read_is_a_page_fault() {
    assert!(ferrite::mm::paging::translate(UNMAPPED).is_none());
    expect_fault(|fault| {
        ensure(fault.vector() == 14, || {
            format!("vector {} ({fault})", fault.vector())
        })?;
        ensure(fault.cr2 == UNMAPPED, || format!("CR2 {:#x}", fault.cr2))?;
        let code = fault.page_fault_code().expect("a #PF");
        ensure(
            !code.has(Pf::PRESENT) && !code.has(Pf::WRITE) && !code.has(Pf::USER),
            || format!("error code {:#x} ({code})", code.0),
        )?;
        let line = format!("{fault}");
        ensure(line.contains("kernel read, page not present"), || {
            format!("report `{line}`")
        })
    });
    // SAFETY: deliberately faults; the fault ends the test.
    unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
    panic!("unmapped read did not fault");
}
