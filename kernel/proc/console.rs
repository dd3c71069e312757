//! Console input: bytes from the serial port (and later the keyboard)
//! collected by interrupt handlers, read by `read(0, ...)` and the shell.

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
/// Ctrl-C with a foreground process is not queued: it asks the waiting
/// shell to kill that process (done outside the interrupt).
pub fn push(byte: u8) {
    if byte == 0x03 && FOREGROUND.load(core::sync::atomic::Ordering::SeqCst) != 0 {
        INTERRUPT.store(true, core::sync::atomic::Ordering::SeqCst);
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

/// Reads at least one byte, blocking the caller until input arrives.
pub fn read_blocking(buf: &mut [u8]) -> usize {
    loop {
        let n = x86_64::instructions::interrupts::without_interrupts(|| {
            let n = try_read(buf);
            if n == 0 {
                // Block inside the same interrupts-off section as the check,
                // so a byte arriving now cannot be missed.
                sched::with_current(|p| p.state = sched::State::Blocked(Block::Console));
                crate::mm::psi::sleep(sched::current_pid());
                sched::schedule();
            }
            n
        });
        if n > 0 || buf.is_empty() {
            return n;
        }
    }
}

/// Whether input is waiting to be read (`poll`).
pub fn input_pending() -> bool {
    !INPUT.lock().is_empty()
}

/// Writes `bytes` to the console: every write to descriptors that name the
/// console (fd 1 and 2, `/dev/console`, `/dev/tty`) comes here.
pub fn write_bytes(bytes: &[u8]) {
    // Like `from_utf8_lossy`, without allocating.
    for piece in bytes.utf8_chunks() {
        crate::kprint!("{}", piece.valid());
        if !piece.invalid().is_empty() {
            crate::kprint!("\u{FFFD}");
        }
    }
}
