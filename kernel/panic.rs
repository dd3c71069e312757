//! The panic handler: one report, then the failure exit.

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    // SAFETY: interrupts are off and this path never returns to the code
    // that might hold a console lock.
    unsafe { crate::klog::force_unlock_consoles() };
    if let Some(test) = crate::testing::current_test() {
        crate::kprintln!("test {test} ... FAILED");
    }
    crate::kprintln!("KERNEL PANIC: {info}");
    crate::arch::backtrace::print_here();
    crate::power::exit(crate::power::ExitCode::Failure)
}
