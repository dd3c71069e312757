//! COM1, the 16550 UART at I/O port 0x3f8: the console under QEMU and on PCs
//! that still have a serial header.
//!
//! Output is batched: bytes go into a ring buffer, and the ring is drained
//! into the UART's 16-byte transmit FIFO whenever the line status says the
//! FIFO is empty (THRE): one status read per 16 bytes instead of one per
//! byte. What the UART cannot take at once waits in the ring and goes out
//! from the UART's "transmitter empty" interrupt (enabled only while the ring
//! holds bytes); a writer that finds the ring full drains it itself, waiting
//! for the UART. Every byte goes through the ring in order, under one lock,
//! so nothing is lost or reordered. After a fatal error ([`force_unlock`])
//! every write waits until its bytes have left.

use core::sync::atomic::{AtomicBool, Ordering};

use uart_16550::SerialPort;

use crate::arch::port::{self, COM1_DATA, COM1_IER, COM1_LSR, COM1_MCR as MCR};
use crate::arch::sync::{Fatal, IrqMutex};

/// Modem control register bit 4 loops the transmitter back to the receiver.
const MCR_LOOPBACK: u8 = 1 << 4;
/// DTR, RTS and OUT2, the value `uart_16550` leaves after init.
const MCR_NORMAL: u8 = 0x0b;
/// Line status: the transmit holding register (and FIFO) is empty.
const LSR_THRE: u8 = 1 << 5;
/// Interrupt enable: received data available (what `uart_16550` sets).
const IER_RDA: u8 = 1 << 0;
/// Interrupt enable: transmit holding register empty.
const IER_THRE: u8 = 1 << 1;
/// Bytes the 16550's transmit FIFO takes once THRE is set.
const TX_FIFO: usize = 16;
/// Bytes the ring holds.
const RING: usize = 4096;
/// Status reads a waiting writer makes before it gives up on a missing or
/// stuck UART and drops the oldest FIFO-full of bytes (about 100 ms at
/// 115 200 baud on real hardware; QEMU's UART is never busy).
const PATIENCE: u32 = 1_000_000;

struct Serial {
    port: SerialPort,
    ring: [u8; RING],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    /// Whether the transmitter-empty interrupt is on.
    tx_irq: bool,
    /// What went to the UART since [`tap_start`] (tests).
    tap: Option<Tap>,
}

/// A record of the bytes handed to the UART: how many, an FNV-1a hash of
/// them all in order, and the first [`TAP_KEEP`] themselves.
#[derive(Clone, Copy)]
pub struct Tap {
    pub count: usize,
    pub hash: u64,
    pub first: [u8; TAP_KEEP],
}

/// Bytes a [`Tap`] keeps.
pub const TAP_KEEP: usize = 1024;

impl Tap {
    const fn new() -> Tap {
        Tap {
            count: 0,
            hash: FNV_OFFSET,
            first: [0; TAP_KEEP],
        }
    }

    fn record(&mut self, byte: u8) {
        if self.count < TAP_KEEP {
            self.first[self.count] = byte;
        }
        self.count += 1;
        self.hash = fnv1a(self.hash, byte);
    }

    /// The bytes kept (the first `TAP_KEEP`).
    pub fn kept(&self) -> &[u8] {
        &self.first[..self.count.min(TAP_KEEP)]
    }
}

/// FNV-1a's start value.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of the FNV-1a hash.
pub const fn fnv1a(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
}

static PORT: IrqMutex<Serial> = IrqMutex::new(Serial {
    port: port::com1_uart(),
    ring: [0; RING],
    head: 0,
    len: 0,
    tx_irq: false,
    tap: None,
});

/// Set for good by [`force_unlock`]: write synchronously from then on.
static FATAL: AtomicBool = AtomicBool::new(false);

pub fn init() {
    PORT.lock().port.init();
}

impl Serial {
    /// Moves bytes from the ring into the UART while its FIFO has room;
    /// true if the ring is empty afterwards.
    fn drain(&mut self) -> bool {
        while self.len > 0 && COM1_LSR.read() & LSR_THRE != 0 {
            self.send_fifo();
        }
        self.len == 0
    }

    /// Waits for the UART until the ring is empty (bounded per FIFO-full:
    /// a dead UART loses bytes rather than hanging the kernel).
    fn drain_all(&mut self) {
        let mut waited = 0;
        while !self.drain() {
            waited += 1;
            if waited >= PATIENCE {
                let n = self.len.min(TX_FIFO);
                self.head = (self.head + n) % RING;
                self.len -= n;
                waited = 0;
            }
            core::hint::spin_loop();
        }
    }

    fn push(&mut self, byte: u8) {
        if self.len == RING {
            // Full: send what the UART takes now, waiting for it if need be.
            let mut waited = 0;
            while !self.drain_some() {
                waited += 1;
                if waited >= PATIENCE {
                    self.head = (self.head + 1) % RING;
                    self.len -= 1;
                    break;
                }
                core::hint::spin_loop();
            }
        }
        self.ring[(self.head + self.len) % RING] = byte;
        self.len += 1;
    }

    /// One FIFO-full if the UART has room; true if it took some.
    fn drain_some(&mut self) -> bool {
        if COM1_LSR.read() & LSR_THRE == 0 {
            return false;
        }
        self.send_fifo();
        true
    }

    /// Moves up to a FIFO-full from the ring to the UART, which has room.
    fn send_fifo(&mut self) {
        let n = self.len.min(TX_FIFO);
        for _ in 0..n {
            let byte = self.ring[self.head];
            COM1_DATA.write(byte);
            if let Some(tap) = self.tap.as_mut() {
                tap.record(byte);
            }
            self.head = (self.head + 1) % RING;
        }
        self.len -= n;
    }

    /// After queueing: send what the UART takes now; the interrupt sends
    /// the rest (or, after a fatal error, wait for all of it).
    fn kick(&mut self) {
        if FATAL.load(Ordering::Relaxed) {
            self.drain_all();
            return;
        }
        let empty = self.drain();
        self.set_tx_irq(!empty);
    }

    fn set_tx_irq(&mut self, on: bool) {
        if self.tx_irq != on {
            self.tx_irq = on;
            COM1_IER.write(if on { IER_RDA | IER_THRE } else { IER_RDA });
        }
    }
}

/// Queues `bytes` exactly as they are and starts sending them.
pub fn write_bytes(bytes: &[u8]) {
    let mut serial = PORT.lock();
    for &byte in bytes {
        serial.push(byte);
    }
    serial.kick();
}

/// Queues text with each `\n` sent as `\r\n` (the kernel's own lines, for
/// terminals that do not add the carriage return themselves).
pub fn write_str(s: &str) {
    let mut serial = PORT.lock();
    for byte in s.bytes() {
        if byte == b'\n' {
            serial.push(b'\r');
        }
        serial.push(byte);
    }
    serial.kick();
}

/// Waits until every queued byte has gone to the UART (before the machine
/// stops).
pub fn flush() {
    PORT.lock().drain_all();
}

/// The UART's interrupt: sends more of the ring while the FIFO has room;
/// the transmitter interrupt goes off once the ring is empty.
pub fn on_interrupt() {
    let mut serial = PORT.lock();
    let empty = serial.drain();
    serial.set_tx_irq(!empty);
}

/// Starts recording what goes to the UART (tests: the byte stream that
/// leaves the machine), after sending what was queued before.
pub fn tap_start() {
    let mut serial = PORT.lock();
    serial.drain_all();
    serial.tap = Some(Tap::new());
}

/// Sends what is queued, stops recording and returns the record.
pub fn tap_take() -> Option<Tap> {
    let mut serial = PORT.lock();
    serial.drain_all();
    serial.tap.take()
}

/// A received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    PORT.lock().port.try_receive().ok()
}

/// After a fatal error the interrupted holder of the lock will never run
/// again; from now on every write waits until its bytes are out.
pub fn force_unlock(fatal: &Fatal) {
    FATAL.store(true, Ordering::SeqCst);
    PORT.force_unlock(fatal);
}

/// Sends `data` through the UART in loopback mode and returns what the
/// receiver got: a real round trip through the chip's shift registers, without
/// anything reaching the wire.
pub fn loopback(data: &[u8], received: &mut [u8]) -> usize {
    let mut serial = PORT.lock();
    // Whatever is queued goes out first, not into the loop.
    serial.drain_all();
    // Loopback only reroutes the UART's own lines.
    MCR.write(MCR_NORMAL | MCR_LOOPBACK);
    let port = &mut serial.port;
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
