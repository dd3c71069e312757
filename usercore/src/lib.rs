//! Ferrite's user-program core: the pure logic the kernel needs to start a
//! user program, kept free of hardware access so it is tested on the host.
//!
//! - [`cpio`]: the ramdisk archive (cpio "newc"): reading it in the kernel,
//!   writing it in the host boot tool.
//! - [`elf`]: validating a static ELF64 x86_64 executable and turning it into
//!   a page-granular load plan.
//! - [`signal`]: POSIX signal numbers, default actions, masks and the
//!   x86_64 signal frame (`rt_sigframe`) as bytes.
//! - [`fsabi`]: file-system ABI: poll bits, `st_mode` types, `getdents64`
//!   records, path components.
//! - [`stack`]: the initial user stack image (argc, argv, envp, auxv) that a
//!   C runtime expects at its entry point.
//! - [`pipe`]: a pipe's bytes and Linux's rules for reading and writing them.
//! - [`cmdline`]: the kernel shell's syntax (quoting, redirections, `|`).
//! - [`usb`]: USB descriptors and the HID boot keyboard report (bounds-
//!   checked: they come from devices), keys as PC scancodes.
//! - [`utf8`]: a streaming UTF-8 decoder for the console (characters split
//!   between writes, U+FFFD for ill-formed bytes).
//!
//! The crate is `no_std` + `alloc` (the kernel has a heap). The `std` feature
//! adds host-only helpers for the boot tool.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod chacha;
pub mod cmdline;
pub mod cpio;
pub mod elf;
pub mod fsabi;
pub mod pagemap;
pub mod pipe;
pub mod signal;
pub mod stack;
pub mod time;
pub mod usb;
pub mod utf8;
pub mod vdso;

/// The page size every region in this crate is rounded to, and the
/// rounding: vmcore's.
pub use vmcore::{page_down, page_up, PAGE_SIZE};

/// Proptest settings shared by the unit tests: `cases` normally, a handful
/// under Miri (which is ~1000x slower), and no failure-persistence files
/// under Miri (its isolation forbids reading the working directory).
#[cfg(test)]
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::with_cases(cases);
    if cfg!(miri) {
        config.cases = 4;
        config.failure_persistence = None;
    }
    config
}
