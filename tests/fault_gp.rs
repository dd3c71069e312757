//! A non-canonical access raises #GP, and the handler reports it.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::testing::{ensure, expect_fault};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![non_canonical_read_is_a_gp])
}

const NON_CANONICAL: u64 = 0x8000_0000_0000_0000;

fn non_canonical_read_is_a_gp() {
    expect_fault(|fault| {
        ensure(fault.vector() == 13, || {
            format!("vector {} ({fault})", fault.vector())
        })?;
        ensure(fault.frame.error_code == 0, || {
            format!("error code {:#x}", fault.frame.error_code)
        })?;
        let line = format!("{fault}");
        ensure(line.starts_with("#GP (vector 13"), || {
            format!("report `{line}`")
        })?;
        ensure(line.contains("non-canonical"), || {
            format!("report `{line}`")
        })
    });
    // SAFETY: deliberately faults; the fault ends the test.
    unsafe { core::ptr::read_volatile(NON_CANONICAL as *const u64) };
    panic!("non-canonical read did not fault");
}
