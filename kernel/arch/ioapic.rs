//! The I/O APIC: device interrupts (the ISA IRQs: PIT, keyboard, COM1)
//! delivered to the bootstrap CPU's local APIC instead of through the
//! 8259 PICs, which are masked once it takes over. Routing follows the
//! MADT: ISA IRQ n arrives on global system interrupt n unless an
//! interrupt source override says otherwise (QEMU and most PCs wire the
//! PIT's IRQ 0 to GSI 2), with the override's polarity and trigger mode.
//! Vectors stay what they were under the PIC (32 + IRQ), so the rest of
//! the kernel sees no difference.

use core::sync::atomic::{AtomicU64, Ordering};

use super::acpi::{IoApicEntry, Madt1};
use crate::arch::sync::IrqMutex;

const REG_ID: u32 = 0x00;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;

const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const ACTIVE_LOW: u64 = 1 << 13;

struct IoApic {
    /// Virtual address of its two registers (index at +0, data at +0x10).
    base: u64,
    gsi_base: u32,
    entries: u32,
}

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `base` maps this I/O APIC's register window uncached;
        // the select register at +0 and the window at +0x10 are 32-bit.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, reg);
            core::ptr::read_volatile((self.base + 0x10) as *const u32)
        }
    }

    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::write_volatile(self.base as *mut u32, reg);
            core::ptr::write_volatile((self.base + 0x10) as *mut u32, value);
        }
    }

    fn set_entry(&self, pin: u32, value: u64) {
        // Mask first (low half), then the destination, then the low half
        // with the final mask bit: never half-programmed and live.
        self.write(REG_REDIRECTION + 2 * pin, MASKED as u32);
        self.write(REG_REDIRECTION + 2 * pin + 1, (value >> 32) as u32);
        self.write(REG_REDIRECTION + 2 * pin, value as u32);
    }
}

/// The I/O APICs in use and each ISA IRQ's redirection entry (without the
/// mask bit), `0` for an IRQ no I/O APIC serves.
struct Routing {
    ioapics: [Option<IoApic>; 8],
    isa: [(u8, u32, u64); 16], // (I/O APIC index, pin, entry)
    valid: u16,
}

static ROUTING: IrqMutex<Option<Routing>> = IrqMutex::new(None);
/// ISA IRQs currently unmasked (bit per IRQ), for the report.
static UNMASKED: AtomicU64 = AtomicU64::new(0);

fn map(entry: &IoApicEntry) -> Option<IoApic> {
    let mapping = crate::mm::vmalloc::ioremap(entry.address as u64, 0x20).ok()?;
    // The window stays for good (an `IoMapping` only goes away through
    // `iounmap`).
    let base = mapping.virt();
    let mut io = IoApic {
        base,
        gsi_base: entry.gsi_base,
        entries: 0,
    };
    io.entries = ((io.read(REG_VERSION) >> 16) & 0xff) + 1;
    Some(io)
}

/// Maps the MADT's I/O APICs, masks every pin, and prepares the ISA IRQs'
/// entries (vector 32 + IRQ, fixed delivery to `dest_apic`). Returns false
/// (nothing changed) if there is no I/O APIC to use.
pub fn init(madt: &Madt1, dest_apic: u32) -> bool {
    let mut routing = Routing {
        ioapics: [const { None }; 8],
        isa: [(0, 0, 0); 16],
        valid: 0,
    };
    let mut any = false;
    for (i, entry) in madt.ioapics().iter().enumerate().take(8) {
        let Some(io) = map(entry) else {
            log::warn!("ioapic: cannot map the I/O APIC at {:#x}", entry.address);
            continue;
        };
        for pin in 0..io.entries {
            io.set_entry(pin, MASKED);
        }
        log::info!(
            "ioapic: id {} at {:#x}, GSIs {}..{} (id register {:#x})",
            entry.id,
            entry.address,
            io.gsi_base,
            io.gsi_base + io.entries - 1,
            io.read(REG_ID) >> 24
        );
        routing.ioapics[i] = Some(io);
        any = true;
    }
    if !any {
        return false;
    }
    for (irq, route) in madt.isa.iter().enumerate() {
        let found = routing.ioapics.iter().enumerate().find_map(|(i, io)| {
            let io = io.as_ref()?;
            (route.gsi >= io.gsi_base && route.gsi < io.gsi_base + io.entries)
                .then_some((i as u8, route.gsi - io.gsi_base))
        });
        let Some((index, pin)) = found else {
            continue;
        };
        let mut entry = (super::trap::IRQ_BASE + irq as u64) | ((dest_apic as u64) << 56);
        if route.active_low {
            entry |= ACTIVE_LOW;
        }
        if route.level {
            entry |= LEVEL;
        }
        routing.isa[irq] = (index, pin, entry);
        routing.valid |= 1 << irq;
        if route.gsi != irq as u32 {
            log::info!(
                "ioapic: ISA IRQ {irq} -> GSI {}{}{}",
                route.gsi,
                if route.active_low { ", active low" } else { "" },
                if route.level { ", level" } else { "" }
            );
        }
    }
    *ROUTING.lock() = Some(routing);
    true
}

/// Unmasks (or masks) ISA IRQ `irq` at its I/O APIC. False if no I/O
/// APIC serves it.
pub fn set_masked(irq: u8, masked: bool) -> bool {
    ROUTING.with(|r| {
        let Some(r) = r.as_ref() else {
            return false;
        };
        if irq >= 16 || r.valid & (1 << irq) == 0 {
            return false;
        }
        let (index, pin, entry) = r.isa[irq as usize];
        let Some(io) = r.ioapics[index as usize].as_ref() else {
            return false;
        };
        io.set_entry(pin, if masked { entry | MASKED } else { entry });
        if masked {
            UNMASKED.fetch_and(!(1 << irq), Ordering::Relaxed);
        } else {
            UNMASKED.fetch_or(1 << irq, Ordering::Relaxed);
        }
        true
    })
}

/// ISA IRQs unmasked at the I/O APIC (bit per IRQ).
pub fn unmasked() -> u64 {
    UNMASKED.load(Ordering::Relaxed)
}
