//! x86_64: CPU tables, traps, interrupts and stacks.

pub mod acpi;
pub mod apic;
pub mod backtrace;
pub mod cpu;
pub mod cpulocal;
pub mod exceptions;
pub mod gdt;
pub mod hook;
pub mod interrupts;
pub mod ioapic;
pub mod mmu;
pub mod pci;
pub mod percpu;
pub mod port;
pub mod ring3;
pub mod smp;
pub mod stack;
pub mod switch;
pub mod sync;
pub mod syscall;
pub mod tlb;
pub mod trap;
pub mod uaccess;
pub mod uapi;
pub mod usermode;
pub mod vdso;

/// Loads Ferrite's GDT/TSS and IDT and programs the interrupt controller.
pub fn init() {
    cpu::enable_protection();
    cpu::enable_sse();
    cpu::enable_pat_write_combining();
    gdt::init();
    trap::init();
    syscall::init();
    interrupts::init();
}
