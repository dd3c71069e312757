//! Bringing up the other CPUs (application processors, APs).
//!
//! The CPUs come from the ACPI MADT. Each AP is started with INIT, then
//! STARTUP twice (Intel's "universal start-up algorithm", as Linux's
//! `smpboot.c` does), at a real-mode trampoline copied to a page below
//! 1 MiB (the frame allocator never hands out the first MiB). The
//! trampoline goes through protected mode into long mode on page tables
//! of its own (the kernel half copied from the kernel's, plus an identity
//! map of the first 2 MiB for the trampoline itself), then calls
//! [`ap_main`] on the AP's own kernel stack. There the AP loads the
//! kernel's page tables, its own GDT, TSS and IST stacks, the shared IDT,
//! its per-CPU data (GS), enables its local APIC and its timer, and idles
//! (`hlt` with interrupts on) until the scheduler takes it
//! ([`set_idle_hook`], `proc::cpus`): from then on it runs processes.
//! A panic stops the other CPUs with an NMI ([`stop_others`]).
//!
//! No MADT, one CPU in it, or no APIC: the machine boots as before.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::acpi;
use super::apic;
use super::percpu;
use crate::mm::layout::phys_to_virt;

core::arch::global_asm!(
    ".pushsection .rodata.ap_trampoline, \"a\"",
    ".balign 16",
    ".global ferrite_ap_trampoline_start",
    "ferrite_ap_trampoline_start:",
    ".code16",
    "cli",
    "cld",
    "movw %cs, %ax",
    "movw %ax, %ds",
    "xorl %ebx, %ebx",
    "movw %ax, %bx",
    "shll $4, %ebx", // ebx = the trampoline's physical address
    "lgdtl (3f - ferrite_ap_trampoline_start)",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl *(4f - ferrite_ap_trampoline_start)",
    ".code32",
    "1:",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movl %cr4, %eax",
    "orl $0x20, %eax", // PAE
    "movl %eax, %cr4",
    "movl (6f - ferrite_ap_trampoline_start)(%ebx), %eax",
    "movl %eax, %cr3",
    "movl $0xc0000080, %ecx", // EFER
    "rdmsr",
    "orl $0x900, %eax", // LME | NXE
    "wrmsr",
    "movl %cr0, %eax",
    "orl $0x80000001, %eax", // PG | PE
    "movl %eax, %cr0",
    "ljmpl *(5f - ferrite_ap_trampoline_start)(%ebx)",
    ".code64",
    "2:",
    "movl %ebx, %ebx",
    "movq (6f + 8 - ferrite_ap_trampoline_start)(%rbx), %rsp",
    "movq (6f + 16 - ferrite_ap_trampoline_start)(%rbx), %rdi",
    "movq (6f + 24 - ferrite_ap_trampoline_start)(%rbx), %rax",
    "xorl %ebp, %ebp",
    "callq *%rax",
    "ud2",
    ".balign 8",
    "7:", // GDT: null, 32-bit code, data, 64-bit code
    ".quad 0",
    ".quad 0x00cf9a000000ffff",
    ".quad 0x00cf92000000ffff",
    ".quad 0x00af9a000000ffff",
    ".global ferrite_ap_trampoline_gdtr",
    "ferrite_ap_trampoline_gdtr:",
    "3:", // GDTR
    ".word 4 * 8 - 1",
    ".long 7b - ferrite_ap_trampoline_start", // + base, patched
    "4:",                                     // far pointer to protected mode
    ".long 1b - ferrite_ap_trampoline_start", // + base, patched
    ".word 0x08",
    "5:",                                     // far pointer to long mode
    ".long 2b - ferrite_ap_trampoline_start", // + base, patched
    ".word 0x18",
    ".balign 8",
    ".global ferrite_ap_trampoline_params",
    "ferrite_ap_trampoline_params:",
    "6:",
    ".quad 0", // CR3
    ".quad 0", // stack top
    ".quad 0", // argument (CPU index)
    ".quad 0", // entry
    ".global ferrite_ap_trampoline_end",
    "ferrite_ap_trampoline_end:",
    ".popsection",
    options(att_syntax)
);

unsafe extern "C" {
    static ferrite_ap_trampoline_start: u8;
    static ferrite_ap_trampoline_gdtr: u8;
    static ferrite_ap_trampoline_params: u8;
    static ferrite_ap_trampoline_end: u8;
}

const PAGE: u64 = 4096;
/// The trampoline's pages: code and data, then PML4, PDPT and PD.
const TRAMPOLINE_PAGES: u64 = 4;

/// Pages of each AP's kernel stack and of each of its IST stacks.
const AP_STACK_PAGES: u64 = 8;
const AP_IST_PAGES: u64 = 4;

/// The kernel's page tables (the bootstrap CPU's CR3 during boot).
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// CPUs online (1 until APs start).
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// CPUs the MADT listed (1 without one).
static FOUND: AtomicUsize = AtomicUsize::new(1);

pub fn cpus_online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

pub fn cpus_found() -> usize {
    FOUND.load(Ordering::Relaxed)
}

/// Where the trampoline can go: the first 16 KiB of usable RAM, page
/// aligned, between 4 KiB and 640 KiB. The first MiB is reserved from the
/// frame allocator (`frames::LOW_RESERVE`) under BIOS and UEFI alike, so
/// only the firmware's own use (not `Usable`) must be avoided.
fn trampoline_base() -> Option<u64> {
    use bootloader_api::info::MemoryRegionKind;
    let need = TRAMPOLINE_PAGES * PAGE;
    crate::boot::facts()
        .memory_regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .find_map(|r| {
            let start = r.start.max(PAGE).next_multiple_of(PAGE);
            let end = r.end.min(0xa0000);
            (start + need <= end).then_some(start)
        })
}

fn symbol(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Copies the trampoline to `base` and fills in its page tables and the
/// fields that depend on where it is.
fn install_trampoline(base: u64) {
    // SAFETY: taking the addresses of the labels of the global_asm above.
    let (start, gdtr, params, end) = unsafe {
        (
            symbol(&ferrite_ap_trampoline_start),
            symbol(&ferrite_ap_trampoline_gdtr),
            symbol(&ferrite_ap_trampoline_params),
            symbol(&ferrite_ap_trampoline_end),
        )
    };
    let gdtr = gdtr - start;
    let len = (end - start) as usize;
    assert!(len as u64 <= PAGE, "the trampoline fits its page");
    let dst = phys_to_virt(base) as *mut u8;
    // SAFETY: `base..base + 4 pages` is usable RAM below 1 MiB that the
    // frame allocator never hands out (reserved low memory), reached
    // through the direct map; nothing else uses it. The source is the
    // trampoline's bytes in the kernel image.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dst, len) };
    let patch_u32 = |offset: u64| {
        let at = phys_to_virt(base + offset) as *mut u32;
        // SAFETY: a 32-bit field inside the copied trampoline (the GDTR
        // base and the far pointers' offsets hold trampoline-relative
        // addresses); made absolute by adding the base (< 1 MiB).
        unsafe { at.write_unaligned(at.read_unaligned() + base as u32) };
    };
    // The GDTR (limit, base) and the two far pointers (offset, selector)
    // follow each other, 6 bytes apart.
    patch_u32(gdtr + 2); // GDTR base
    patch_u32(gdtr + 6); // far pointer to protected mode
    patch_u32(gdtr + 12); // far pointer to long mode
                          // Page tables: PML4 -> PDPT -> PD, a 2 MiB identity page at 0; the
                          // kernel half shares the kernel's tables.
    let (pml4, pdpt, pd) = (base + PAGE, base + 2 * PAGE, base + 3 * PAGE);
    let kernel_root = crate::arch::mmu::active_root();
    KERNEL_ROOT.store(kernel_root, Ordering::Relaxed);
    let table = |pa: u64| phys_to_virt(pa) as *mut u64;
    // SAFETY: the three table pages belong to the trampoline (above); the
    // kernel's PML4 is read through the direct map, entry by entry.
    unsafe {
        core::ptr::write_bytes(table(pml4), 0, 3 * PAGE as usize);
        *table(pml4) = pdpt | 0b11;
        *table(pdpt) = pd | 0b11;
        *table(pd) = 0b1000_0011; // present, writable, 2 MiB page
        for i in 256..512 {
            *table(pml4).add(i) = *table(kernel_root).add(i);
        }
    }
    set_param(base, params - start, 0, pml4);
    set_param(base, params - start, 3, ap_entry as *const () as u64);
}

fn set_param(base: u64, params_offset: u64, index: u64, value: u64) {
    let at = phys_to_virt(base + params_offset + index * 8) as *mut u64;
    // SAFETY: a parameter slot of the copied trampoline (8-byte aligned).
    unsafe { at.write_volatile(value) };
}

/// Waits `us` microseconds on the calibrated TSC.
fn udelay(us: u64) {
    let start = crate::time::rdtsc();
    let cycles = crate::time::tsc_khz() * us / 1000;
    while crate::time::rdtsc() - start < cycles {
        core::hint::spin_loop();
    }
}

/// Finds the CPUs and starts the APs. Runs on the bootstrap CPU during
/// boot (interrupts off, memory management up).
pub fn init() {
    let bsp_apic = if apic::cpu_has_apic() { None } else { Some(0) };
    let Some(madt) = acpi::madt() else {
        percpu::install(0, bsp_apic.unwrap_or(0));
        percpu::cpus()[0].online.store(true, Ordering::Release);
        log::info!("smp: no ACPI MADT: one CPU");
        return;
    };
    FOUND.store(madt.cpus().len(), Ordering::Relaxed);
    if bsp_apic.is_some() {
        percpu::install(0, 0);
        percpu::cpus()[0].online.store(true, Ordering::Release);
        log::info!("smp: the CPU has no local APIC: one CPU");
        return;
    }
    if let Err(why) = apic::init_bsp(madt.lapic_address) {
        percpu::install(0, 0);
        percpu::cpus()[0].online.store(true, Ordering::Release);
        log::warn!("smp: {why}: one CPU");
        return;
    }
    let bsp_id = apic::id();
    percpu::install(0, bsp_id);
    super::tlb::set_kernel_root(crate::arch::mmu::active_root());
    percpu::this()
        .loaded_root
        .store(crate::arch::mmu::active_root(), Ordering::SeqCst);
    percpu::cpus()[0].online.store(true, Ordering::Release);
    log::info!(
        "smp: MADT lists {} CPU(s) (APIC ids {:?}), {} I/O APIC(s); local APIC in {} mode, bootstrap CPU APIC id {}",
        madt.cpus().len(),
        ApicIds(madt),
        madt.ioapics().len(),
        if apic::is_x2apic() { "x2APIC" } else { "xAPIC" },
        bsp_id
    );
    if super::interrupts::route_through_ioapic(madt, bsp_id) {
        log::info!("smp: device interrupts through the I/O APIC, the 8259 PICs masked");
    } else {
        log::info!("smp: no usable I/O APIC: device interrupts stay on the 8259 PICs");
    }
    if madt.cpus_ignored > 0 {
        log::warn!(
            "smp: {} more CPU(s) beyond {} stay off",
            madt.cpus_ignored,
            acpi::MAX_CPUS
        );
    }
    let per_tick = apic::calibrate_timer();
    log::info!("smp: local APIC timer: {per_tick} counts per tick (divide by 16)");
    apic::start_timer();
    if madt.cpus().len() < 2 {
        return;
    }
    let Some(base) = trampoline_base() else {
        log::warn!("smp: no free page below 640 KiB for the start-up code: one CPU");
        return;
    };
    install_trampoline(base);
    let (_, params) = trampoline_offsets();
    let mut index = 1;
    for cpu in madt.cpus().iter().filter(|c| c.apic_id != bsp_id) {
        if start_ap(base, params, index, cpu.apic_id) {
            index += 1;
        } else {
            log::warn!("smp: CPU with APIC id {} did not start", cpu.apic_id);
        }
    }
    log::info!(
        "smp: {} of {} CPU(s) online (trampoline at {:#x})",
        cpus_online(),
        madt.cpus().len(),
        base
    );
}

fn trampoline_offsets() -> (u64, u64) {
    // SAFETY: taking the addresses of the labels of the global_asm above.
    let (start, params) = unsafe {
        (
            symbol(&ferrite_ap_trampoline_start),
            symbol(&ferrite_ap_trampoline_params),
        )
    };
    (0, params - start)
}

struct ApicIds(&'static acpi::Madt1);

impl core::fmt::Debug for ApicIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.0.cpus().iter().map(|c| c.apic_id))
            .finish()
    }
}

/// Stacks for one AP: its kernel stack and three IST stacks, each below a
/// guard page, for good.
fn ap_stacks() -> Option<(u64, [u64; 3])> {
    let stack = crate::mm::vmalloc::alloc(AP_STACK_PAGES).ok()?;
    let mut ist = [0; 3];
    for top in &mut ist {
        *top = crate::mm::vmalloc::alloc(AP_IST_PAGES).ok()?.end();
    }
    Some((stack.end(), ist))
}

/// Per-AP start-up data the AP reads in [`ap_main`] (IST stacks).
static AP_IST: spin::Mutex<[[u64; 3]; acpi::MAX_CPUS]> = spin::Mutex::new([[0; 3]; acpi::MAX_CPUS]);

/// Starts one AP as CPU `index` and waits (up to 1 s) for it to come
/// online.
fn start_ap(base: u64, params: u64, index: usize, apic_id: u32) -> bool {
    let Some((stack_top, ist)) = ap_stacks() else {
        log::warn!("smp: no memory for CPU {index}'s stacks");
        return false;
    };
    AP_IST.lock()[index] = ist;
    set_param(base, params, 1, stack_top);
    set_param(base, params, 2, index as u64);
    let cpu = &percpu::cpus()[index];
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    apic::send_init(apic_id);
    udelay(10_000);
    for _ in 0..2 {
        if cpu.online.load(Ordering::Acquire) {
            break;
        }
        apic::send_startup(apic_id, (base >> 12) as u8);
        udelay(200);
    }
    // Under emulation a CPU takes a while to get going.
    let start = crate::time::rdtsc();
    let limit = crate::time::tsc_khz() * 1000;
    while !cpu.online.load(Ordering::Acquire) {
        if crate::time::rdtsc() - start > limit {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// The trampoline's 64-bit code calls this on the AP's own stack, with
/// the trampoline's page tables still in CR3.
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    let root = KERNEL_ROOT.load(Ordering::Relaxed);
    // SAFETY: the kernel's own page tables map everything the kernel half
    // of the trampoline's tables did (they share those tables), and this
    // code and stack are in the kernel half.
    unsafe {
        use x86_64::registers::control::{Cr3, Cr3Flags};
        use x86_64::structures::paging::PhysFrame;
        use x86_64::PhysAddr;
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(root)),
            Cr3Flags::empty(),
        );
    }
    super::cpu::enable_protection();
    super::cpu::enable_sse();
    super::cpu::enable_pat_write_combining();
    let ist = AP_IST.lock()[index];
    super::gdt::init_ap(index, ist);
    super::trap::load_idt();
    super::syscall::init();
    apic::enable(false);
    percpu::install(index, apic::id());
    me_root_published(root);
    apic::start_timer();
    let me = &percpu::cpus()[index];
    ONLINE.fetch_add(1, Ordering::AcqRel);
    me.online.store(true, Ordering::Release);
    idle_loop(me)
}

/// This CPU's loaded root, for the TLB shootdown (`tlb`).
fn me_root_published(root: u64) {
    percpu::this().loaded_root.store(root, Ordering::SeqCst);
}

/// The scheduler's idle loop (`proc::cpus`), once the scheduler runs.
static IDLE_HOOK: super::hook::Hook<fn() -> !> = super::hook::Hook::empty();

/// Hands the APs to the scheduler: each enters `idle` at its next wake.
pub fn set_idle_hook(idle: fn() -> !) {
    IDLE_HOOK.set(idle);
}

/// An AP's idle loop until the scheduler takes it: sleeps until an
/// interrupt, counts the wake-up.
fn idle_loop(me: &'static percpu::PerCpu) -> ! {
    loop {
        // An idle CPU gives back its allocator caches (and answers drain
        // requests, which come with a wake-up IPI).
        crate::mm::percpu::on_idle();
        x86_64::instructions::interrupts::enable_and_hlt();
        me.idle_wakes.fetch_add(1, Ordering::Relaxed);
        if let Some(idle) = IDLE_HOOK.get() {
            idle();
        }
    }
}

/// Set by [`stop_others`]: an NMI now means "stop".
static STOPPING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Stops every other CPU (the panic and fatal-exception path): an NMI,
/// which arrives even where interrupts are off; each halts for good.
/// A CPU that fails while another one already stops the machine halts
/// instead (its report would interleave with the first).
pub fn stop_others() {
    let me = percpu::cpu_index();
    match STOPPER.compare_exchange(usize::MAX, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(first) if first == me => return,
        Err(_) => stopped(),
    }
    STOPPING.store(true, Ordering::SeqCst);
    if cpus_online() >= 2 {
        apic::send_nmi_to_others();
    }
}

/// The CPU that stops the others (`usize::MAX`: none).
static STOPPER: AtomicUsize = AtomicUsize::new(usize::MAX);

pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Where a stopped CPU ends.
pub fn stopped() -> ! {
    if let Some(me) = percpu::current() {
        me.online.store(false, Ordering::SeqCst);
    }
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// The wake-up IPI: counted on the CPU that took it.
pub fn wake_interrupt() {
    if let Some(me) = percpu::current() {
        me.wakeups.fetch_add(1, Ordering::Relaxed);
    }
    apic::eoi();
}

/// Sends the wake-up IPI to online CPU `index` (not this one).
pub fn wake(index: usize) {
    let Some(cpu) = percpu::cpus().get(index) else {
        return;
    };
    if cpu.online.load(Ordering::Acquire) {
        apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), apic::WAKE_VECTOR);
    }
}
