//! The ACPI tables Ferrite reads: the MADT (Multiple APIC Description
//! Table), which lists the CPUs (their local APIC ids), the I/O APICs and
//! how the ISA IRQs are wired to them (interrupt source overrides, e.g.
//! the PIT's IRQ 0 on GSI 2).
//!
//! The `acpi` crate parses; the tables are read through the direct map
//! (they lie in RAM the bootloader mapped, ACPI reclaim or NVS memory).
//! The result is copied once into fixed arrays: nothing here allocates.

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use spin::Once;

use crate::mm::layout::phys_to_virt;

/// CPUs Ferrite keeps track of (the MADT may list more; the rest stay off).
pub const MAX_CPUS: usize = 64;
const MAX_IOAPICS: usize = 8;

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuEntry {
    /// The local APIC id (x2APIC id if the MADT gave one).
    pub apic_id: u32,
    /// ACPI's processor UID.
    pub acpi_id: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct IoApicEntry {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

/// An ISA IRQ routed to a global system interrupt (GSI); polarity and
/// trigger are the MPS INTI flags (0: the bus's default: ISA is
/// active-high, edge-triggered).
#[derive(Clone, Copy, Debug, Default)]
pub struct IsaRoute {
    pub gsi: u32,
    pub active_low: bool,
    pub level: bool,
}

pub struct Madt1 {
    pub lapic_address: u64,
    pub cpus: [CpuEntry; MAX_CPUS],
    pub cpu_count: usize,
    /// Usable CPUs the MADT listed beyond `MAX_CPUS`.
    pub cpus_ignored: usize,
    pub ioapics: [IoApicEntry; MAX_IOAPICS],
    pub ioapic_count: usize,
    /// ISA IRQ n goes to `isa[n]` (identity unless overridden).
    pub isa: [IsaRoute; 16],
    /// The machine also has the dual 8259 PICs (PCAT_COMPAT).
    pub has_8259: bool,
}

impl Madt1 {
    pub fn cpus(&self) -> &[CpuEntry] {
        &self.cpus[..self.cpu_count]
    }

    pub fn ioapics(&self) -> &[IoApicEntry] {
        &self.ioapics[..self.ioapic_count]
    }
}

/// Maps physical ranges through the direct map (no mapping to undo).
#[derive(Clone, Copy)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = phys_to_virt(phys as u64) as *mut T;
        // SAFETY: the direct map covers all physical memory the
        // bootloader's map lists (ACPI tables included); the caller vouches
        // that `phys` holds a `T`.
        unsafe {
            PhysicalMapping::new(
                phys,
                NonNull::new(virt).expect("direct-map addresses are non-null"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_: &PhysicalMapping<Self, T>) {}
}

static MADT: Once<Option<Madt1>> = Once::new();

/// The MADT's contents (`None`: no RSDP, no MADT, or no CPU in it).
pub fn madt() -> Option<&'static Madt1> {
    MADT.call_once(parse).as_ref()
}

fn parse() -> Option<Madt1> {
    let rsdp = crate::boot::facts().rsdp?;
    // SAFETY: the bootloader found the RSDP at this physical address (the
    // crate checks its signature and checksum).
    let tables = match unsafe { AcpiTables::from_rsdp(DirectMap, rsdp as usize) } {
        Ok(t) => t,
        Err(e) => {
            log::warn!("acpi: no usable RSDP at {rsdp:#x}: {e:?}");
            return None;
        }
    };
    let madt = match tables.find_table::<Madt>() {
        Ok(m) => m,
        Err(e) => {
            log::warn!("acpi: no MADT: {e:?}");
            return None;
        }
    };
    let mut out = Madt1 {
        lapic_address: madt.get().local_apic_address as u64,
        cpus: [CpuEntry::default(); MAX_CPUS],
        cpu_count: 0,
        cpus_ignored: 0,
        ioapics: [IoApicEntry::default(); MAX_IOAPICS],
        ioapic_count: 0,
        isa: core::array::from_fn(|irq| IsaRoute {
            gsi: irq as u32,
            active_low: false,
            level: false,
        }),
        has_8259: madt.get().supports_8259(),
    };
    let add_cpu = |out: &mut Madt1, apic_id: u32, acpi_id: u32, flags: u32| {
        // Bit 0: enabled; bit 1: online capable (hot-plug). Only enabled
        // CPUs are started.
        if flags & 1 == 0 || out.cpus().iter().any(|c| c.apic_id == apic_id) {
            return;
        }
        if out.cpu_count == MAX_CPUS {
            out.cpus_ignored += 1;
            return;
        }
        out.cpus[out.cpu_count] = CpuEntry { apic_id, acpi_id };
        out.cpu_count += 1;
    };
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                add_cpu(&mut out, e.apic_id as u32, e.processor_id as u32, e.flags)
            }
            MadtEntry::LocalX2Apic(e) => {
                let (id, uid, flags) = (e.x2apic_id, e.processor_uid, e.flags);
                add_cpu(&mut out, id, uid, flags)
            }
            MadtEntry::IoApic(e) => {
                if out.ioapic_count < MAX_IOAPICS {
                    out.ioapics[out.ioapic_count] = IoApicEntry {
                        id: e.io_apic_id,
                        address: e.io_apic_address,
                        gsi_base: e.global_system_interrupt_base,
                    };
                    out.ioapic_count += 1;
                }
            }
            MadtEntry::InterruptSourceOverride(e) => {
                let (bus, irq, gsi, flags) = (e.bus, e.irq, e.global_system_interrupt, e.flags);
                if bus == 0 && (irq as usize) < 16 {
                    out.isa[irq as usize] = IsaRoute {
                        gsi,
                        // Polarity bits 0-1: 3 = active low; trigger bits
                        // 2-3: 3 = level. 0 means the ISA default.
                        active_low: flags & 3 == 3,
                        level: (flags >> 2) & 3 == 3,
                    };
                }
            }
            MadtEntry::LocalApicAddressOverride(e) => out.lapic_address = e.local_apic_address,
            _ => {}
        }
    }
    if out.cpu_count == 0 {
        log::warn!("acpi: the MADT lists no usable CPU");
        return None;
    }
    Some(out)
}
