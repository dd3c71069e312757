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
    /// The kernel stack a `syscall` switches to (the running process's,
    /// the same as this CPU's TSS rsp0). At offset 0: the entry stub reads
    /// it as `gs:[0]` ([`KERNEL_RSP_OFFSET`]).
    pub kernel_rsp: AtomicU64,
    /// The entry stub's scratch slot for the user RSP (`gs:[8]`).
    pub user_rsp_scratch: AtomicU64,
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
    /// The scheduler's state of this CPU (`proc::sched`): the pid it runs
    /// ([`NO_PID`] while it idles), when that started (`time::uptime_ns`,
    /// 0: nothing), the ticks left of its slice, whether it idles in `hlt`.
    pub current: AtomicU32,
    pub running_since: AtomicU64,
    pub slice: AtomicU32,
    pub idling: AtomicBool,
    /// The saved stack pointer of this CPU's idle context (`proc::sched`).
    pub idle_rsp: AtomicU64,
    /// Physical address of the page-table root in this CPU's CR3 (kept by
    /// `mmu::switch_root`; the TLB shootdown's "who has it loaded").
    pub loaded_root: AtomicU64,
    /// A TLB shootdown request waits for this CPU (`arch::tlb`).
    pub tlb_pending: AtomicBool,
    /// The CPU keeps `loaded_root` only lazily (its idle context or a
    /// kernel thread runs, which never touch the user half): shootdowns
    /// that free no page tables skip it, and it reloads CR3 (a flush)
    /// before it uses the space again (`mmu::switch_root`, `arch::tlb`).
    pub tlb_lazy: AtomicBool,
    /// Shootdown requests this CPU handled.
    pub tlb_handled: AtomicU64,
    /// Local APIC timer interrupts this CPU took.
    pub lapic_ticks: AtomicU64,
    /// Processes switched in on this CPU.
    pub switches: AtomicU64,
    /// The `on_cpu` flag to clear once the running switch is done
    /// (`switch::finish_switch`).
    pub switch_release: core::sync::atomic::AtomicPtr<AtomicBool>,
    /// A bit per lock rank this CPU holds (`sync::rank`; debug builds).
    pub locks_held: AtomicU32,
}

/// Offsets the `syscall` entry stub uses (`gs:[..]`).
pub const KERNEL_RSP_OFFSET: usize = core::mem::offset_of!(PerCpu, kernel_rsp);
pub const USER_RSP_OFFSET: usize = core::mem::offset_of!(PerCpu, user_rsp_scratch);

/// [`PerCpu::current`] while the CPU runs its idle context.
pub const NO_PID: u32 = u32::MAX;

impl PerCpu {
    const fn new() -> PerCpu {
        PerCpu {
            kernel_rsp: AtomicU64::new(0),
            user_rsp_scratch: AtomicU64::new(0),
            index: AtomicU32::new(0),
            apic_id: AtomicU32::new(0),
            online: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
            idle_wakes: AtomicU64::new(0),
            current: AtomicU32::new(NO_PID),
            running_since: AtomicU64::new(0),
            slice: AtomicU32::new(0),
            idling: AtomicBool::new(false),
            idle_rsp: AtomicU64::new(0),
            loaded_root: AtomicU64::new(0),
            tlb_pending: AtomicBool::new(false),
            tlb_lazy: AtomicBool::new(false),
            tlb_handled: AtomicU64::new(0),
            lapic_ticks: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            switch_release: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
            locks_held: AtomicU32::new(0),
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

/// This CPU's slot even in the window around `swapgs` where GS is user
/// space's (an NMI can arrive there): then the swapped-out base
/// (IA32_KERNEL_GS_BASE) is the kernel's.
pub fn current_any() -> Option<&'static PerCpu> {
    current().or_else(|| slot_at(KernelGsBase::read().as_u64()))
}

fn slot_at(gs: u64) -> Option<&'static PerCpu> {
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

/// This CPU's slot; before [`install`] ran (early boot), the bootstrap
/// CPU's.
pub fn this() -> &'static PerCpu {
    current().unwrap_or(&CPUS[0])
}
