//! I/O ports: the registers of the legacy PC devices the kernel drives, as
//! safe values. Drivers (`drivers/`, which denies `unsafe`) and the rest of
//! the kernel reach port I/O only through these.
//!
//! Only this module makes a [`Port8`], so only the ports listed here can be
//! touched. None of these devices does DMA or maps memory: an access changes
//! device state (a byte sent, a timer programmed, at worst the machine reset
//! or QEMU ended, which is what the callers ask for) and never memory the
//! compiler reasons about. That is why reading and writing them is safe.

use x86_64::instructions::port::Port;

/// One 8-bit I/O port register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port8(u16);

impl Port8 {
    pub fn read(self) -> u8 {
        // SAFETY: a port of the list below (see the module documentation:
        // no access to them can touch memory).
        unsafe { Port::<u8>::new(self.0).read() }
    }

    pub fn write(self, value: u8) {
        // SAFETY: as for `read`.
        unsafe { Port::<u8>::new(self.0).write(value) }
    }
}

/// COM1, the 16550 UART's base (data register).
const COM1: u16 = 0x3f8;
/// COM1's transmit/receive register.
pub const COM1_DATA: Port8 = Port8(COM1);
/// COM1's interrupt enable register (bit 0: data received, bit 1:
/// transmitter empty).
pub const COM1_IER: Port8 = Port8(COM1 + 1);
/// COM1's modem control register (bit 4: loopback).
pub const COM1_MCR: Port8 = Port8(COM1 + 4);
/// COM1's line status register.
pub const COM1_LSR: Port8 = Port8(COM1 + 5);

/// The i8042 (PS/2 controller) data port.
pub const I8042_DATA: Port8 = Port8(0x60);
/// The i8042 status register (read) and command register (write).
pub const I8042_STATUS_COMMAND: Port8 = Port8(0x64);

/// PIT channel 2's counter.
pub const PIT_CHANNEL2: Port8 = Port8(0x42);
/// The PIT's mode/command register.
pub const PIT_COMMAND: Port8 = Port8(0x43);
/// Port 0x61: PIT channel 2 gate (bit 0), speaker (bit 1), output (bit 5).
pub const PIT_GATE: Port8 = Port8(0x61);

/// The chipset's reset control register (0xcf9).
pub const RESET_CONTROL: Port8 = Port8(0xcf9);

/// The 16550 driver's handle for COM1 (not yet initialised).
pub const fn com1_uart() -> uart_16550::SerialPort {
    // SAFETY: 0x3f8 is COM1's standard base; the UART does no DMA, and the
    // serial driver holds the one instance (behind its lock).
    unsafe { uart_16550::SerialPort::new(COM1) }
}

/// QEMU's `isa-debug-exit` device: writing `value` ends QEMU with exit
/// status `(value << 1) | 1`; on real hardware nothing decodes port 0xf4.
pub fn debug_exit(value: u32) {
    // SAFETY: port 0xf4 is the debug-exit device or nothing.
    unsafe { Port::<u32>::new(0xf4).write(value) };
}
