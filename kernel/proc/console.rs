//! The console as programs see it. Input: bytes from the serial port (and
//! later the keyboard) collected by interrupt handlers, read by
//! `read(0, ...)` and the shell. Output: [`write_bytes`], the one path a
//! program's `write` to the console takes.

use alloc::collections::VecDeque;

use crate::arch::sync::IrqMutex;

use super::sched::{self, Block};

static INPUT: IrqMutex<VecDeque<u8>> = IrqMutex::new(VecDeque::new());
const MAX_BUFFERED: usize = 4096;

/// The process the shell is waiting for in the foreground (0: none).
static FOREGROUND: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static INTERRUPT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn set_foreground(pid: u32) {
    FOREGROUND.store(pid, core::sync::atomic::Ordering::SeqCst);
    INTERRUPT.store(false, core::sync::atomic::Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed for the foreground process (and clears it).
pub fn take_interrupt() -> bool {
    INTERRUPT.swap(false, core::sync::atomic::Ordering::SeqCst)
}

/// Whether a Ctrl-C waits to be taken ([`take_interrupt`]).
pub fn interrupt_pending() -> bool {
    INTERRUPT.load(core::sync::atomic::Ordering::SeqCst)
}

/// Queues input bytes and wakes readers (called from interrupt handlers).
/// Ctrl-C with a foreground process is not queued: it sends that process
/// SIGINT (which ends it unless it handles or ignores it) and tells the
/// waiting shell (which prints `^C`).
pub fn push(byte: u8) {
    let foreground = FOREGROUND.load(core::sync::atomic::Ordering::SeqCst);
    if byte == 0x03 && foreground != 0 {
        INTERRUPT.store(true, core::sync::atomic::Ordering::SeqCst);
        let _ = super::signal::send(foreground, super::signal::num::SIGINT);
        // A stopped program would keep the shell waiting for ever (there
        // is no job control to resume it): it continues, to take SIGINT.
        if super::signal::is_stopped(foreground) {
            let _ = super::signal::send(foreground, super::signal::num::SIGCONT);
        }
        sched::wake_all(Block::Child);
        return;
    }
    {
        let mut input = INPUT.lock();
        // Room was made at boot: an interrupt handler never allocates.
        if input.len() < MAX_BUFFERED.min(input.capacity()) {
            input.push_back(match byte {
                b'\r' => b'\n',
                b => b,
            });
        }
    }
    sched::wake_all(Block::Console);
    crate::fs::poll::notify();
}

fn serial_irq() {
    while let Some(byte) = crate::drivers::serial::try_read() {
        push(byte);
    }
    // The transmitter may want more of the output queue.
    crate::drivers::serial::on_interrupt();
}

pub fn init() {
    {
        let mut input = INPUT.lock();
        let room = MAX_BUFFERED.saturating_sub(input.len());
        input.reserve_exact(room);
    }
    crate::arch::interrupts::set_irq_handler(crate::arch::interrupts::IRQ_COM1, serial_irq);
}

/// Takes up to `buf.len()` buffered bytes without waiting.
pub fn try_read(buf: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    let n = buf.len().min(input.len());
    for slot in &mut buf[..n] {
        *slot = input.pop_front().expect("counted");
    }
    n
}

/// Reads at least one byte, blocking the caller until input arrives; 0
/// if a signal for the caller came first (`signal::interrupted`).
pub fn read_blocking(buf: &mut [u8]) -> usize {
    loop {
        let n = try_read(buf);
        if n == 0 && !buf.is_empty() {
            // Blocked first, then checked (`sched::block_unless`): a byte
            // arriving meanwhile, on any CPU, is never missed.
            sched::block_unless(Block::Console, || {
                !INPUT.lock().is_empty() || super::signal::interrupted()
            });
        }
        if n > 0 || buf.is_empty() || super::signal::interrupted() {
            return n;
        }
    }
}

/// Whether input is waiting to be read (`poll`).
pub fn input_pending() -> bool {
    !INPUT.lock().is_empty()
}

/// Writes what a program wrote to the console: the bytes unchanged to the
/// serial port, UTF-8-decoded (across writes) on the framebuffer, and into
/// a test's capture. The caller copies them from user memory first (this
/// takes console locks).
pub fn write_bytes(bytes: &[u8]) {
    crate::klog::write_bytes(bytes);
}
