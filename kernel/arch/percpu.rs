//! Per-CPU data, reached through the GS segment base.
//!
//! Each CPU's GS base points at its [`PerCpu`] in a static array (no
//! allocation, ever). Ring 3 can change GS (a segment load), so every
//! entry from and return to ring 3 does `swapgs` (`trap_common`,
//! `trap_return`): in the kernel GS is the CPU's, in user mode
//! IA32_KERNEL_GS_BASE holds it. [`current`] reads the GS base MSR and
//! checks that it points into the array, so even a trap taken in the
//! window around `swapgs` (an NMI) finds "unknown CPU", never a wild
//! pointer.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::VirtAddr;

pub use super::acpi::MAX_CPUS;

#[repr(C, align(64))]
pub struct PerCpu {
    /// Index in [`cpus`] (0: the bootstrap CPU).
    pub index: AtomicU32,
    /// The local APIC id (from the CPU itself once it runs).
    pub apic_id: AtomicU32,
    /// The CPU runs Ferrite's code (set by the CPU itself).
    pub online: AtomicBool,
    /// Wake-up IPIs this CPU handled.
    pub wakeups: AtomicU64,
    /// Times the idle loop woke from `hlt`.
    pub idle_wakes: AtomicU64,
}

impl PerCpu {
    const fn new() -> PerCpu {
        PerCpu {
            index: AtomicU32::new(0),
            apic_id: AtomicU32::new(0),
            online: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            idle_wakes: AtomicU64::new(0),
        }
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// Every slot (the first [`super::smp::cpu_count`] are in use).
pub fn cpus() -> &'static [PerCpu; MAX_CPUS] {
    &CPUS
}

/// Points this CPU's GS base at slot `index`; the swapped one (user
/// space's GS base) starts at 0.
pub fn install(index: usize, apic_id: u32) {
    let cpu = &CPUS[index];
    cpu.index.store(index as u32, Ordering::Relaxed);
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    let va = VirtAddr::new(cpu as *const PerCpu as u64);
    GsBase::write(va);
    KernelGsBase::write(VirtAddr::new(0));
}

/// This CPU's slot, if its GS base is one (see the module comment).
pub fn current() -> Option<&'static PerCpu> {
    let gs = GsBase::read().as_u64();
    let base = CPUS.as_ptr() as u64;
    let size = core::mem::size_of::<PerCpu>() as u64;
    if gs < base || !(gs - base).is_multiple_of(size) || (gs - base) / size >= MAX_CPUS as u64 {
        return None;
    }
    Some(&CPUS[((gs - base) / size) as usize])
}

/// This CPU's index (0 if unknown: the bootstrap CPU before setup).
pub fn cpu_index() -> usize {
    current().map_or(0, |c| c.index.load(Ordering::Relaxed) as usize)
}
