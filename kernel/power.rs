//! Ending a run: QEMU's `isa-debug-exit` device, or a halt on real hardware.
//!
//! Writing `v` to port 0xf4 makes QEMU exit with `(v << 1) | 1`: Ferrite uses
//! 0x10 for success (exit code 33) and 0x11 for failure (35). On a real PC the
//! port does nothing and the CPU halts.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    Success = 0x10,
    Failure = 0x11,
}

/// Exits QEMU with `code`; on hardware, halts.
pub fn exit(code: ExitCode) -> ! {
    exit_raw(code as u32)
}

/// Exits QEMU with exit status `(value << 1) | 1`.
pub fn exit_raw(value: u32) -> ! {
    // Queued console output must be out before QEMU ends (not after a
    // nested failure: the consoles may be what broke).
    if crate::panic::depth() <= 1 {
        crate::klog::flush();
    }
    crate::arch::port::debug_exit(value);
    halt()
}

/// Stops the CPU for good.
pub fn halt() -> ! {
    let line = format_args!("Ferrite halted. It is safe to power off.\n");
    match crate::panic::depth() {
        0 | 1 => crate::klog::print(line),
        // A failure inside a fatal report: the consoles may be what broke.
        2 => crate::klog::emergency_print(line),
        // Even the emergency line failed: print nothing more.
        _ => {}
    }
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
