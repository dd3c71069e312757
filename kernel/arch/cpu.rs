//! Control registers and CPU features.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr2, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Sleeps until the next interrupt.
pub fn wait_for_interrupt() {
    x86_64::instructions::hlt();
}

/// The faulting address of the last page fault.
pub fn cr2() -> u64 {
    // CR2 holds whatever the CPU wrote, canonical or not: read it raw.
    Cr2::read_raw()
}

static SMAP: AtomicBool = AtomicBool::new(false);
static SMEP: AtomicBool = AtomicBool::new(false);

/// CPUID leaf 7, subleaf 0: structured extended features (EBX).
fn extended_features_ebx() -> u32 {
    // CPUID exists on every x86_64 CPU, so these intrinsics are safe.
    let max = core::arch::x86_64::__cpuid(0).eax;
    if max < 7 {
        return 0;
    }
    core::arch::x86_64::__cpuid_count(7, 0).ebx
}

/// Whether SMAP is on: the kernel faults on user pages unless it says so
/// (`stac`), which only the user-copy helpers do.
pub fn smap_enabled() -> bool {
    SMAP.load(Ordering::Relaxed)
}

/// Whether SMEP is on: the kernel can never execute user pages.
pub fn smep_enabled() -> bool {
    SMEP.load(Ordering::Relaxed)
}

/// Turns on the protections every later guarantee rests on: no-execute pages
/// (EFER.NXE), write protection in ring 0 (CR0.WP) so the kernel also faults
/// when it writes a read-only page, and SMEP/SMAP where the CPU has them.
pub fn enable_protection() {
    let ebx = extended_features_ebx();
    let (has_smep, has_smap) = (ebx & (1 << 7) != 0, ebx & (1 << 20) != 0);
    let mut cr4 = Cr4Flags::empty();
    if has_smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if has_smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: SMEP/SMAP only add faults on kernel accesses to user pages;
    // nothing is mapped in the lower half yet and the user-copy helpers
    // bracket their accesses with stac/clac.
    unsafe { Cr4::update(|f| f.insert(cr4)) };
    SMEP.store(has_smep, Ordering::Relaxed);
    SMAP.store(has_smap, Ordering::Relaxed);
    // SAFETY: setting NXE only makes the NX bit meaningful; the bootloader
    // already sets it when it maps the kernel without execute permission.
    unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    // SAFETY: WP only adds faults on writes to read-only pages, which no
    // correct kernel code performs.
    unsafe { Cr0::update(|f| f.insert(Cr0Flags::WRITE_PROTECT)) };
}

static PAT_WC: AtomicBool = AtomicBool::new(false);

/// IA32_PAT, the page attribute table: the memory type of each of the
/// eight combinations of a leaf entry's PAT, PCD and PWT bits.
const IA32_PAT: u32 = 0x277;
/// The power-on table with entry 1 (PWT alone) changed from write-through
/// to write-combining, as Linux does: WB, WC, UC-, UC, WB, WT, UC-, UC.
/// Entry 3 (PCD + PWT, what `ioremap` uses) stays uncached; nothing else in
/// the kernel sets PWT without PCD.
const PAT_WITH_WC: u64 = 0x0007_0406_0007_0106;

/// Makes "PWT alone" in a leaf entry mean write-combining, if the CPU has
/// a page attribute table (CPUID.1:EDX bit 16). Called once at boot,
/// before anything is mapped write-combining.
pub fn enable_pat_write_combining() {
    // CPUID exists on every x86_64 CPU.
    let has_pat = core::arch::x86_64::__cpuid(1).edx & (1 << 16) != 0;
    if !has_pat {
        return;
    }
    // SAFETY: IA32_PAT exists when CPUID says PAT; the new table changes
    // only entry 1, which no mapping selects yet (see PAT_WITH_WC). The
    // caches and TLBs are flushed after, as the SDM asks when the table
    // changes (interrupts are still off at boot).
    unsafe {
        x86_64::registers::model_specific::Msr::new(IA32_PAT).write(PAT_WITH_WC);
        core::arch::asm!("wbinvd", options(nostack));
    }
    super::mmu::flush_all();
    PAT_WC.store(true, Ordering::Relaxed);
}

/// Whether a leaf with PWT alone is write-combining (see
/// [`enable_pat_write_combining`]).
pub fn pat_write_combining() -> bool {
    PAT_WC.load(Ordering::Relaxed)
}

/// Writes back and invalidates the caches (after a mapping's memory type
/// changed).
pub fn wbinvd() {
    // SAFETY: WBINVD only writes dirty lines back and empties the caches;
    // it changes no memory contents.
    unsafe { core::arch::asm!("wbinvd", options(nostack)) };
}

/// Lets ring 3 use SSE (x86_64 user code always does): CR0.EM off, CR0.MP
/// on, CR4.OSFXSR and OSXMMEXCPT on. The kernel itself is built soft-float
/// and never touches these registers, so only processes need them saved.
pub fn enable_sse() {
    // SAFETY: these bits only make SSE instructions legal and FXSAVE save
    // the SSE state; nothing relies on SSE faulting.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| {
            f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
        });
        core::arch::asm!("fninit", options(nomem, nostack));
    }
}

/// The x87/SSE register file as FXSAVE stores it.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// The state after `fninit` with the default MXCSR (all exceptions
    /// masked): what a new program starts with.
    pub fn initial() -> FpuState {
        let mut state = FpuState([0; 512]);
        // FCW = 0x037f, MXCSR = 0x1f80.
        state.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        state.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        state
    }

    pub fn save(&mut self) {
        // SAFETY: FXSAVE writes 512 bytes to a 16-byte aligned buffer, which
        // `self` is; SSE is enabled at boot.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    /// The FXSAVE image, as a signal frame stores it.
    pub fn bytes(&self) -> &[u8; 512] {
        &self.0
    }

    /// A state from an FXSAVE image a user wrote (a signal frame's), made
    /// safe to restore: MXCSR bits this CPU does not have would make
    /// FXRSTOR fault in the kernel, so they are cleared.
    pub fn from_user_image(image: &[u8; 512]) -> FpuState {
        let mut own = FpuState::initial();
        own.save();
        let mask = u32::from_le_bytes([own.0[28], own.0[29], own.0[30], own.0[31]]);
        let mask = if mask == 0 { 0xffbf } else { mask };
        let mut state = FpuState(*image);
        usercore::signal::sanitize_fxsave(&mut state.0, mask);
        state
    }

    pub fn restore(&self) {
        // SAFETY: FXRSTOR reads a 512-byte image produced by FXSAVE or by
        // `initial` (reserved fields zero, MXCSR valid).
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack)) };
    }
}

/// The CPU's time-stamp counter, in cycles.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Resets the machine: the chipset's reset control register (0xcf9, "full
/// reset"), then the i8042's pulse-reset-line command, then a triple fault
/// (an empty IDT and a breakpoint), which resets every x86 CPU. Returns
/// only if none of them did (then halting is all that is left).
pub fn reset_machine() {
    use super::port::{I8042_STATUS_COMMAND, RESET_CONTROL};
    x86_64::instructions::interrupts::disable();
    RESET_CONTROL.write(0x02);
    RESET_CONTROL.write(0x06);
    for _ in 0..100_000 {
        core::hint::spin_loop();
    }
    I8042_STATUS_COMMAND.write(0xfe);
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    let empty = x86_64::structures::DescriptorTablePointer {
        limit: 0,
        base: x86_64::VirtAddr::new(0),
    };
    // SAFETY: an empty IDT makes the breakpoint below a triple fault, i.e.
    // a CPU reset; interrupts are off and nothing runs after it.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
    }
    x86_64::instructions::interrupts::int3();
}

/// Whether the CPU has RDRAND (CPUID.1:ECX bit 30).
pub fn has_rdrand() -> bool {
    static HAS: spin::Once<bool> = spin::Once::new();
    *HAS.call_once(|| {
        // CPUID leaf 1 exists on every x86_64 CPU.
        core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0
    })
}

/// A random 64-bit value from RDRAND, if the CPU has it and it delivered
/// (it may fail transiently: a few tries).
pub fn rdrand64() -> Option<u64> {
    if !has_rdrand() {
        return None;
    }
    for _ in 0..10 {
        let mut value = 0;
        // SAFETY: the CPU has RDRAND (checked above); the instruction only
        // writes the register given and the carry flag.
        let ok = unsafe { rdrand_step(&mut value) };
        if ok == 1 {
            return Some(value);
        }
    }
    None
}

#[target_feature(enable = "rdrand")]
unsafe fn rdrand_step(value: &mut u64) -> i32 {
    core::arch::x86_64::_rdrand64_step(value)
}
