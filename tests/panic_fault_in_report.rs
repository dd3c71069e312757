//! An exception while the panic report is being printed (here: a page fault
//! in the panic message's `Display`) ends the run at once: the fault does not
//! start a second report.

#![no_std]
#![no_main]

use core::fmt;

use ferrite::panic::Stage;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![page_fault_inside_the_panic_message])
}

struct FaultsWhenPrinted;

impl fmt::Display for FaultsWhenPrinted {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // The kernel stack's guard page: never mapped.
        let guard = ferrite::kernel_stack().guard;
        // SAFETY: deliberately faults; the fault ends the run.
        let value = unsafe { core::ptr::read_volatile(guard as *const u64) };
        write!(f, "{value}")
    }
}

fn page_fault_inside_the_panic_message() {
    ferrite::testing::expect_nested_failure(Stage::Message);
    panic!("outer panic: {}", FaultsWhenPrinted);
}
