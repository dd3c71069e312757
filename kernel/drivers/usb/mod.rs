//! USB: xHCI host controllers on PCI ([`xhci`]) and the HID boot-protocol
//! keyboard, so a PC with no PS/2 port (and the firmware's legacy
//! emulation gone once the kernel owns the controller) has a keyboard.
//!
//! [`init`] (boot) finds every xHCI function (PCI class 0x0c, subclass
//! 0x03, interface 0x30), maps its registers, takes it from the firmware,
//! resets it and enumerates the devices on its root-hub ports. The
//! controllers are then polled: every timer tick ([`poll`], from
//! `time::timer_interrupt`) reads their event rings, and a keyboard's
//! reports become PC scancodes fed through the PS/2 driver's decoder into
//! the console input queue, the path the PS/2 keyboard and the serial
//! port take. Polling rather than MSI: one event ring read per tick (a
//! memory read when nothing happened) is cheap, and needs neither an
//! interrupt vector nor MSI set-up; a key reaches the console within one
//! 10 ms tick.
//!
//! A machine without xHCI boots as before (one log line says so).
//!
//! Locking: `CONTROLLERS` (an `IrqMutex`) is held while a tick handles
//! events, so a keyboard report's bytes go to `proc::console::push` under
//! it: the order is `CONTROLLERS` -> the console input queue -> the
//! scheduler lock. Nothing takes `CONTROLLERS` under those; the tick only
//! `try_lock`s it (another CPU polling is enough). Enumeration spins with
//! interrupts possibly off (boot), each wait bounded (1 s per command or
//! transfer, 0.5 s per port reset).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use virtio_drivers::transport::pci::bus::{BarInfo, Command, PciRoot};

use crate::arch::pci::{config_ports, for_each_function};
use crate::arch::sync::IrqMutex;
use crate::mm::dma::Mmio;
use crate::mm::kalloc::try_push;

pub mod xhci;

pub use xhci::DeviceInfo;

/// Controllers driven at most.
const MAX_CONTROLLERS: usize = 4;

/// The running controllers (polled at each tick).
static CONTROLLERS: IrqMutex<Vec<xhci::Controller>> = IrqMutex::new(Vec::new());
/// Set once [`init`] ran (a second call does nothing).
static STARTED: AtomicBool = AtomicBool::new(false);

/// What [`init`] found, for the log and the tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// xHCI functions found on PCI.
    pub controllers_found: usize,
    /// Of those, running.
    pub controllers_running: usize,
    /// Devices enumerated on their root hubs.
    pub devices: usize,
    pub keyboards: usize,
    pub mass_storage: usize,
    /// Cycles from the start of the PCI scan to the end of enumeration.
    pub cycles: u64,
}

static SUMMARY: IrqMutex<Summary> = IrqMutex::new(Summary {
    controllers_found: 0,
    controllers_running: 0,
    devices: 0,
    keyboards: 0,
    mass_storage: 0,
    cycles: 0,
});

/// Finds, starts and enumerates every xHCI controller (once).
pub fn init() -> Summary {
    if STARTED.swap(true, Ordering::SeqCst) {
        return summary();
    }
    let start = crate::time::rdtsc();
    let mut root = PciRoot::new(config_ports());
    let mut found = [None; MAX_CONTROLLERS];
    let mut count = 0;
    for_each_function(&root, |df, info| {
        if (info.class, info.subclass, info.prog_if) == (0x0c, 0x03, 0x30)
            && count < MAX_CONTROLLERS
        {
            found[count] = Some(df);
            count += 1;
        }
    });
    let mut summary = Summary {
        controllers_found: count,
        ..Summary::default()
    };
    if count == 0 {
        log::info!("usb: no xHCI controller");
    }
    for df in found.iter().flatten().copied() {
        let regs = match root.bars(df) {
            Ok(bars) => match bars[0] {
                Some(BarInfo::Memory { address, size, .. }) if address != 0 && size >= 0x1000 => {
                    Mmio::map(address, size).ok()
                }
                _ => None,
            },
            Err(_) => None,
        };
        let Some(regs) = regs else {
            log::warn!("usb: xHCI at {df}: no usable register BAR");
            continue;
        };
        let (_, command) = root.get_status_command(df);
        root.set_command(
            df,
            command | Command::MEMORY_SPACE | Command::BUS_MASTER | Command::INTERRUPT_DISABLE,
        );
        let mut controller = match xhci::Controller::start(regs) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("usb: xHCI at {df}: {e}");
                continue;
            }
        };
        controller.enumerate();
        summary.controllers_running += 1;
        for d in controller.devices() {
            summary.devices += 1;
            summary.mass_storage += usize::from(d.mass_storage);
        }
        summary.keyboards += controller.keyboards();
        log::info!(
            "usb: xHCI at {df}: {} ports, {} devices, {} keyboards",
            controller.ports(),
            controller.devices().count(),
            controller.keyboards()
        );
        let mut controllers = CONTROLLERS.lock();
        if try_push(&mut controllers, controller).is_err() {
            log::warn!("usb: xHCI at {df}: no memory to keep it");
        }
    }
    summary.cycles = crate::time::rdtsc() - start;
    *SUMMARY.lock() = summary;
    summary
}

/// What [`init`] found.
pub fn summary() -> Summary {
    *SUMMARY.lock()
}

/// The devices of every controller (up to `out.len()`); how many.
pub fn devices(out: &mut [Option<DeviceInfo>]) -> usize {
    let controllers = CONTROLLERS.lock();
    let mut n = 0;
    for (slot, info) in out
        .iter_mut()
        .zip(controllers.iter().flat_map(|c| c.devices()))
    {
        *slot = Some(*info);
        n += 1;
    }
    n
}

/// Bytes USB keyboards have put into the console so far.
pub fn keyboard_bytes() -> u64 {
    CONTROLLERS.lock().iter().map(|c| c.keyboard_bytes).sum()
}

/// Reads every controller's event ring (the timer tick calls this; any
/// CPU may: one that finds the controllers busy leaves them to the other).
pub fn poll() {
    if let Some(mut controllers) = CONTROLLERS.try_lock() {
        for c in controllers.iter_mut() {
            c.poll();
        }
    }
}
