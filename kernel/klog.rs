//! Kernel logging: the `log` facade, written to every console.
//!
//! Each line carries the time since boot and the level, e.g.
//! `[    0.120] INFO  memory: 255 MiB usable`.

use core::fmt::{self, Write};

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

/// A copy of everything printed, while a capture is active (tests read
/// what user programs wrote).
static CAPTURE: spin::Mutex<Option<alloc::string::String>> = spin::Mutex::new(None);

fn capture(args: fmt::Arguments) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(buf) = CAPTURE.lock().as_mut() {
            let _ = buf.write_fmt(args);
        }
    });
}

/// Starts copying console output into a buffer (replacing any earlier one).
pub fn capture_start() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        *CAPTURE.lock() = Some(alloc::string::String::new())
    });
}

/// Stops copying and returns what was printed since `capture_start`.
pub fn capture_take() -> alloc::string::String {
    x86_64::instructions::interrupts::without_interrupts(|| {
        CAPTURE.lock().take().unwrap_or_default()
    })
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

/// Lets the fatal-error path print even if it interrupted a console writer.
///
/// # Safety
/// Only with interrupts off on a path that never returns to the interrupted
/// code.
pub unsafe fn force_unlock_consoles() {
    // SAFETY: forwarded from the caller.
    unsafe {
        serial::force_unlock();
        fbcon::force_unlock();
        CAPTURE.force_unlock();
    }
}
