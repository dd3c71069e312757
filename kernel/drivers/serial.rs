//! COM1, the 16550 UART at I/O port 0x3f8: the console under QEMU and on PCs
//! that still have a serial header.

use uart_16550::SerialPort;

use crate::arch::port::{self, COM1_MCR as MCR};
use crate::arch::sync::{Fatal, IrqMutex};

/// Modem control register bit 4 loops the transmitter back to the receiver.
const MCR_LOOPBACK: u8 = 1 << 4;
/// DTR, RTS and OUT2, the value `uart_16550` leaves after init.
const MCR_NORMAL: u8 = 0x0b;

static PORT: IrqMutex<SerialPort> = IrqMutex::new(port::com1_uart());

pub fn init() {
    PORT.lock().init();
}

/// Writes bytes as they are (the caller formats line endings).
pub fn write_str(s: &str) {
    let mut port = PORT.lock();
    for byte in s.bytes() {
        if byte == b'\n' {
            port.send_raw(b'\r');
        }
        port.send_raw(byte);
    }
}

/// A received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    PORT.lock().try_receive().ok()
}

/// After a fatal error the interrupted holder of the lock will never run again.
pub fn force_unlock(fatal: &Fatal) {
    PORT.force_unlock(fatal);
}

/// Sends `data` through the UART in loopback mode and returns what the
/// receiver got: a real round trip through the chip's shift registers, without
/// anything reaching the wire.
pub fn loopback(data: &[u8], received: &mut [u8]) -> usize {
    {
        let mut port = PORT.lock();
        // Loopback only reroutes the UART's own lines.
        MCR.write(MCR_NORMAL | MCR_LOOPBACK);
        // Drain anything already received.
        while port.try_receive().is_ok() {}
        let mut n = 0;
        for (&byte, slot) in data.iter().zip(received.iter_mut()) {
            port.send_raw(byte);
            // The echo appears after one character time; bound the wait.
            let mut got = None;
            for _ in 0..100_000 {
                if let Ok(b) = port.try_receive() {
                    got = Some(b);
                    break;
                }
                core::hint::spin_loop();
            }
            match got {
                Some(b) => {
                    *slot = b;
                    n += 1;
                }
                None => break,
            }
        }
        // Back to normal operation.
        MCR.write(MCR_NORMAL);
        n
    }
}
