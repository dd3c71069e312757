//! Kernel logging: the `log` facade, written to every console.
//!
//! Each line carries the time since boot and the level, e.g.
//! `[    0.120] INFO  memory: 255 MiB usable`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::port::{COM1_DATA, COM1_LSR};
use crate::arch::sync::{Fatal, IrqMutex};
use crate::drivers::{fbcon, serial};

struct Consoles;

impl Write for Consoles {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        serial::write_str(s);
        fbcon::write_str(s);
        Ok(())
    }
}

/// Prints to every console without a timestamp or level (shell output, test
/// results).
pub fn print(args: fmt::Arguments) {
    let _ = Consoles.write_fmt(args);
    capture(args);
}

/// What a program writes to the console: the bytes exactly as they are to
/// the serial port (no newline translation, nothing dropped: binary output
/// arrives intact), decoded as UTF-8 for the framebuffer (a character split
/// between two writes is still one character), and into the capture.
/// Kernel text printed meanwhile goes between two such writes, never into
/// one.
pub fn write_bytes(bytes: &[u8]) {
    serial::write_bytes(bytes);
    fbcon::write_bytes(bytes);
    if FATAL.load(Ordering::SeqCst) {
        return;
    }
    if let Some(buf) = CAPTURE.lock().as_mut() {
        buf.extend_from_slice(bytes);
    }
}

/// Waits until everything printed has reached the consoles (the serial
/// port's queue sent, the framebuffer drawn): before the machine stops.
pub fn flush() {
    serial::flush();
    fbcon::flush();
}

/// The timer's share of console output: the framebuffer draws the text
/// that came since its last render.
pub fn tick() {
    fbcon::tick();
}

/// A copy of everything printed, while a capture is active (tests read
/// what user programs wrote): bytes, as programs may write any.
static CAPTURE: IrqMutex<Option<Vec<u8>>> = IrqMutex::new(None);

/// Set for good once a fatal-error report starts: from then on nothing is
/// captured (the buffer would grow on the heap, which may be what broke).
static FATAL: AtomicBool = AtomicBool::new(false);

/// Formats into the capture buffer.
struct ByteSink<'a>(&'a mut Vec<u8>);

impl Write for ByteSink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn capture(args: fmt::Arguments) {
    if FATAL.load(Ordering::SeqCst) {
        return;
    }
    if let Some(buf) = CAPTURE.lock().as_mut() {
        let _ = ByteSink(buf).write_fmt(args);
    }
}

/// Captured bytes as text (ill-formed UTF-8 as U+FFFD).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Starts copying console output into a buffer (replacing any earlier one).
pub fn capture_start() {
    *CAPTURE.lock() = Some(Vec::new());
}

/// Returns what was printed since the capture started and starts a new one
/// in the same step (under the capture's lock: no line falls between).
pub fn capture_restart() -> String {
    text(CAPTURE.lock().replace(Vec::new()).unwrap_or_default())
}

/// Stops copying and returns what was printed since `capture_start`.
pub fn capture_take() -> String {
    text(capture_take_bytes())
}

/// Stops copying and returns the bytes printed since `capture_start`,
/// exactly as programs wrote them.
pub fn capture_take_bytes() -> Vec<u8> {
    CAPTURE.lock().take().unwrap_or_default()
}

#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => ($crate::klog::print(format_args!($($arg)*)));
}

#[macro_export]
macro_rules! kprintln {
    () => ($crate::kprint!("\n"));
    ($($arg:tt)*) => ($crate::klog::print(format_args!("{}\n", format_args!($($arg)*))));
}

struct KernelLogger;

impl log::Log for KernelLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = crate::time::uptime_ms();
        print(format_args!(
            "[{:5}.{:03}] {:<5} {}\n",
            ms / 1000,
            ms % 1000,
            record.level(),
            record.args()
        ));
    }

    fn flush(&self) {}
}

static LOGGER: KernelLogger = KernelLogger;

pub fn init() {
    // Only fails if a logger is already set, i.e. on a second init.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Lets the fatal-error path print even if it interrupted a console writer,
/// and stops the capture for good (printing must not allocate from now on).
/// Only the fatal-error path has a [`Fatal`] token.
pub fn force_unlock_consoles(fatal: &Fatal) {
    FATAL.store(true, Ordering::SeqCst);
    serial::force_unlock(fatal);
    fbcon::force_unlock(fatal);
    CAPTURE.force_unlock(fatal);
}

/// COM1's line status: the transmit register is empty.
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Writes straight to the serial port: no lock, no heap, no framebuffer,
/// a bounded wait per byte. For the one line a nested failure (a fault or
/// panic while a fatal report is being printed) may print before the run
/// ends: the consoles' state may be what broke.
pub fn emergency_print(args: fmt::Arguments) {
    struct RawSerial;
    impl Write for RawSerial {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for byte in s.bytes() {
                if byte == b'\n' {
                    raw_serial_byte(b'\r');
                }
                raw_serial_byte(byte);
            }
            Ok(())
        }
    }
    let _ = RawSerial.write_fmt(args);
}

fn raw_serial_byte(byte: u8) {
    // A missing or stuck UART must not hang the way out: give up waiting
    // after a while and write anyway.
    for _ in 0..100_000 {
        if COM1_LSR.read() & LSR_THR_EMPTY != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // At worst one byte interleaves with a write the failure interrupted.
    COM1_DATA.write(byte);
}
