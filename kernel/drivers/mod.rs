//! Device drivers: the two consoles every log line goes to.
//!
//! No `unsafe` here: port I/O goes through `arch::port`'s device registers,
//! locks are `arch::sync::IrqMutex`, and the framebuffer is the slice the
//! bootloader hands over.

#![deny(unsafe_code)]

pub mod fbcon;
pub mod keyboard;
pub mod serial;
