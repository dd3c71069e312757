//! Device drivers: the two consoles every log line goes to, the PS/2
//! keyboard, USB (xHCI and the HID boot keyboard), and the virtio block
//! device swap uses.
//!
//! No `unsafe` here: port I/O goes through `arch::port`'s device registers,
//! locks are `arch::sync::IrqMutex`, and the framebuffer is the slice the
//! bootloader hands over; DMA memory and device registers are `mm::dma`'s,
//! PCI configuration space `arch::pci`'s.

#![deny(unsafe_code)]

pub mod fbcon;
pub mod keyboard;
pub mod rtc;
pub mod serial;
pub mod usb;
pub mod virtio_blk;
