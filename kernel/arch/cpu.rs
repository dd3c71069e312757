//! Control registers and CPU features.

use x86_64::registers::control::{Cr0, Cr0Flags, Cr2};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Sleeps until the next interrupt.
pub fn wait_for_interrupt() {
    x86_64::instructions::hlt();
}

/// The faulting address of the last page fault.
pub fn cr2() -> u64 {
    // CR2 holds whatever the CPU wrote, canonical or not: read it raw.
    Cr2::read_raw()
}

/// Turns on the protections every later guarantee rests on: no-execute pages
/// (EFER.NXE) and write protection in ring 0 (CR0.WP), so the kernel also
/// faults when it writes a read-only page.
pub fn enable_protection() {
    // SAFETY: setting NXE only makes the NX bit meaningful; the bootloader
    // already sets it when it maps the kernel without execute permission.
    unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    // SAFETY: WP only adds faults on writes to read-only pages, which no
    // correct kernel code performs.
    unsafe { Cr0::update(|f| f.insert(Cr0Flags::WRITE_PROTECT)) };
}
