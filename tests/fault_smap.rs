//! SMAP at work: the kernel touching a present user page directly (not
//! through the user-copy helpers) is a protection fault, reported as an oops.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::sync::Arc;
use ferrite::mm::aspace::{self, AddressSpace};
use ferrite::mm::uaccess::copy_to_user;
use ferrite::testing::{ensure, expect_fault};
use spin::Mutex;
use vmcore::fault::PfErrorCode as Pf;
use vmcore::{Prot, Vma};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![direct_kernel_read_of_user_page_faults])
}

const USER_PAGE: u64 = 0x1000_0000;

fn direct_kernel_read_of_user_page_faults() {
    let a = Arc::new(Mutex::new(AddressSpace::new().unwrap()));
    a.lock()
        .map(Vma::anonymous(USER_PAGE, USER_PAGE + 4096, Prot::RW))
        .unwrap();
    aspace::switch_to(Some(a.clone()));
    // Through the helper: allowed, and the page becomes present.
    copy_to_user(USER_PAGE, &[42]).unwrap();
    assert!(a.lock().translate(USER_PAGE).is_some());
    expect_fault(|fault| {
        ensure(fault.vector() == 14, || {
            format!("vector {} ({fault})", fault.vector())
        })?;
        ensure(fault.cr2 == USER_PAGE, || format!("CR2 {:#x}", fault.cr2))?;
        let code = fault.page_fault_code().expect("a #PF");
        ensure(code.has(Pf::PRESENT) && !code.has(Pf::USER), || {
            format!("error code {:#x} ({code})", code.0)
        })
    });
    // SAFETY: deliberately faults (SMAP); the fault ends the test.
    let v = unsafe { core::ptr::read_volatile(USER_PAGE as *const u8) };
    panic!("SMAP did not stop a direct read (got {v})");
}
