//! The local APIC of each CPU: x2APIC (registers in MSRs) where CPUID says
//! the CPU has it, xAPIC (registers in a 4 KiB MMIO page, mapped uncached
//! once and shared by every CPU: each CPU sees its own APIC there)
//! otherwise. Used to start the application processors (INIT and
//! STARTUP IPIs), to wake them (fixed IPIs) and for their end of
//! interrupt.
//!
//! The bootstrap CPU takes the 8259 PIC's interrupts through LINT0 in
//! "virtual wire" mode (ExtINT), as the firmware left it, until the I/O
//! APIC takes over (`interrupts::route_through_ioapic`).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

// Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;

const LVT_MASKED: u32 = 1 << 16;
const DELIVERY_PENDING: u32 = 1 << 12;

/// Spurious-interrupt vector (its low 4 bits must be ones on old APICs).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The wake-up IPI the bootstrap CPU sends an application processor.
pub const WAKE_VECTOR: u8 = 0xf0;
/// The local APIC timer's vector (every CPU's scheduler tick).
pub const TIMER_VECTOR: u8 = 0xef;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// The bootstrap CPU's APIC is set up ([`init_bsp`] succeeded).
static READY: AtomicBool = AtomicBool::new(false);
/// Virtual address of the xAPIC register page (0: not mapped).
static MMIO: AtomicU64 = AtomicU64::new(0);

/// Whether this CPU has x2APIC mode (CPUID.1:ECX bit 21).
fn cpu_has_x2apic() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0
}

/// Whether the CPU has a local APIC at all (CPUID.1:EDX bit 9).
pub fn cpu_has_apic() -> bool {
    core::arch::x86_64::__cpuid(1).edx & (1 << 9) != 0
}

pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

fn read(reg: u32) -> u32 {
    if is_x2apic() {
        // SAFETY: an x2APIC register MSR, readable in x2APIC mode.
        unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        debug_assert!(base != 0);
        // SAFETY: `base` maps the xAPIC's register page uncached; `reg` is
        // a 16-byte-aligned register offset inside it.
        unsafe { core::ptr::read_volatile((base + reg as u64) as *const u32) }
    }
}

fn write(reg: u32, value: u32) {
    if is_x2apic() {
        // SAFETY: a writable x2APIC register MSR in x2APIC mode.
        unsafe { Msr::new(0x800 + (reg >> 4)).write(value as u64) }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        debug_assert!(base != 0);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((base + reg as u64) as *mut u32, value) }
    }
}

/// Chooses the mode and maps the xAPIC page (from the MADT's address) on
/// the bootstrap CPU, then enables its APIC. Needs the vmalloc area.
pub fn init_bsp(mmio_phys: u64) -> Result<(), &'static str> {
    if cpu_has_x2apic() {
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        let mapping = crate::mm::vmalloc::ioremap(mmio_phys, 4096)
            .map_err(|_| "cannot map the local APIC's registers")?;
        // The window stays for good (an `IoMapping` only goes away
        // through `iounmap`).
        MMIO.store(mapping.virt(), Ordering::Relaxed);
    }
    enable(true);
    READY.store(true, Ordering::Release);
    Ok(())
}

/// Whether the local APICs are in use (false: no MADT, or no APIC).
pub fn is_ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Enables this CPU's local APIC in the chosen mode. On the bootstrap CPU
/// LINT0 stays the 8259's virtual wire (ExtINT) and LINT1 the NMI line; on
/// the others both are masked.
pub fn enable(bsp: bool) {
    // SAFETY: IA32_APIC_BASE: setting the global enable (and x2APIC mode,
    // which the CPU has) keeps the base address; xAPIC -> x2APIC is an
    // allowed transition.
    unsafe {
        let mut msr = Msr::new(IA32_APIC_BASE);
        let mut value = msr.read() | APIC_BASE_ENABLE;
        if is_x2apic() {
            msr.write(value);
            value |= APIC_BASE_X2APIC;
        }
        msr.write(value);
    }
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    if bsp {
        write(REG_LVT_LINT0, 0x700); // ExtINT, unmasked
        write(REG_LVT_LINT1, 0x400); // NMI
    } else {
        write(REG_LVT_LINT0, LVT_MASKED);
        write(REG_LVT_LINT1, 0x400);
    }
    // Software enable, with the spurious vector.
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
    write(REG_ESR, 0);
    write(REG_EOI, 0);
}

/// Masks LINT0 (the 8259's virtual wire) once the I/O APIC took over.
pub fn mask_lint0() {
    write(REG_LVT_LINT0, LVT_MASKED | 0x700);
}

/// This CPU's local APIC id (0 if the APICs are not in use).
pub fn id() -> u32 {
    if !is_ready() {
        0
    } else if is_x2apic() {
        read(REG_ID)
    } else {
        read(REG_ID) >> 24
    }
}

/// Acknowledges the interrupt being handled.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Writes the interrupt command register: `low` (vector, delivery mode,
/// level, trigger) to the CPU with APIC id `dest`, and waits (bounded) for
/// an xAPIC to take it.
fn send_icr(dest: u32, low: u32) {
    if is_x2apic() {
        // SAFETY: the x2APIC ICR is one 64-bit MSR; writing it sends.
        unsafe { Msr::new(0x830).write(((dest as u64) << 32) | low as u64) };
        return;
    }
    write(REG_ICR_HIGH, dest << 24);
    write(REG_ICR_LOW, low);
    for _ in 0..1_000_000 {
        if read(REG_ICR_LOW) & DELIVERY_PENDING == 0 {
            break;
        }
        core::hint::spin_loop();
    }
}

/// INIT (level assert) to `dest`: the CPU resets and waits for a STARTUP.
pub fn send_init(dest: u32) {
    send_icr(dest, 0x0000_4500);
}

/// STARTUP to `dest`: it starts in real mode at `page << 12`.
pub fn send_startup(dest: u32, page: u8) {
    send_icr(dest, 0x0000_4600 | page as u32);
}

/// A fixed interrupt with `vector` to the CPU with APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) {
    send_icr(dest, 0x0000_4000 | vector as u32);
}

/// Local APIC timer counts per tick (`time::TICK_HZ`), measured once on
/// the bootstrap CPU against the TSC (0: no timer).
static TIMER_COUNT: AtomicU64 = AtomicU64::new(0);

/// Measures the local APIC timer against the TSC (divide by 16, 10 ms)
/// and remembers the count for one tick. Bootstrap CPU, interrupts off.
pub fn calibrate_timer() -> u64 {
    write(REG_TIMER_DIVIDE, 0x3); // divide by 16
    write(REG_LVT_TIMER, LVT_MASKED | TIMER_VECTOR as u32);
    write(REG_TIMER_INITIAL, u32::MAX);
    let start = crate::time::rdtsc();
    let cycles = crate::time::tsc_khz() * 10; // 10 ms
    while crate::time::rdtsc() - start < cycles {
        core::hint::spin_loop();
    }
    let elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    write(REG_TIMER_INITIAL, 0);
    // Counts per 10 ms, scaled to one tick.
    let per_tick = elapsed as u64 * 100 / crate::time::TICK_HZ;
    TIMER_COUNT.store(per_tick.max(1), Ordering::SeqCst);
    per_tick
}

/// Starts this CPU's local APIC timer, periodic at `time::TICK_HZ` (after
/// [`calibrate_timer`]).
pub fn start_timer() {
    let count = TIMER_COUNT.load(Ordering::SeqCst);
    if count == 0 {
        return;
    }
    write(REG_TIMER_DIVIDE, 0x3);
    write(REG_LVT_TIMER, LVT_TIMER_PERIODIC | TIMER_VECTOR as u32);
    write(REG_TIMER_INITIAL, count.min(u32::MAX as u64) as u32);
}

/// Whether the local APIC timers run (the scheduler's slices are theirs).
pub fn timer_running() -> bool {
    TIMER_COUNT.load(Ordering::Relaxed) != 0
}

static TIMER_HOOK: super::hook::Hook<fn(&mut super::trap::TrapFrame)> = super::hook::Hook::empty();

/// The scheduler's per-CPU tick.
pub fn set_timer_hook(hook: fn(&mut super::trap::TrapFrame)) {
    TIMER_HOOK.set(hook);
}

/// The local APIC timer interrupt: counted, acknowledged, then the hook
/// (which may switch away).
pub fn timer_interrupt(frame: &mut super::trap::TrapFrame) {
    if let Some(me) = super::percpu::current() {
        me.lapic_ticks.fetch_add(1, Ordering::Relaxed);
    }
    eoi();
    if let Some(hook) = TIMER_HOOK.get() {
        hook(frame);
    }
}

/// An NMI to the CPU with APIC id `dest` (TLB shootdowns).
pub fn send_nmi(dest: u32) {
    send_icr(dest, 0x0000_4400);
}

/// An NMI to every CPU but this one (the panic path stops them).
pub fn send_nmi_to_others() {
    if !is_ready() {
        return;
    }
    // Shorthand "all excluding self", delivery mode NMI.
    send_icr(0, 0x000c_0400);
}
