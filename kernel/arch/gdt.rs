//! The GDT and TSS.
//!
//! Selector order is fixed by `syscall`/`sysret`: kernel code, kernel data,
//! then user data before user code (sysret loads SS = base + 8 and CS = base +
//! 16 from STAR). The TSS gives #DF, NMI and #MC stacks of their own (IST), so
//! a fault caused by a broken stack can still be reported.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use super::stack::GuardedStack;

pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;
static DOUBLE_FAULT_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
static NMI_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();
static MACHINE_CHECK_STACK: GuardedStack<IST_STACK_SIZE> = GuardedStack::new();

pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
/// Each CPU's TSS (by CPU index; 0 until the CPU has one): [`set_rsp0`]
/// writes the running CPU's.
static TSS_OF: [core::sync::atomic::AtomicPtr<TaskStateSegment>; super::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()) }; super::percpu::MAX_CPUS];
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        for (index, stack) in [
            (IST_DOUBLE_FAULT, DOUBLE_FAULT_STACK.top()),
            (IST_NMI, NMI_STACK.top()),
            (IST_MACHINE_CHECK, MACHINE_CHECK_STACK.top()),
        ] {
            tss.interrupt_stack_table[index as usize] = VirtAddr::new(stack);
        }
        tss
    });
    TSS_OF[0].store(
        tss as *const TaskStateSegment as *mut TaskStateSegment,
        core::sync::atomic::Ordering::Release,
    );
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let selectors = Selectors {
            kernel_code: gdt.append(Descriptor::kernel_code_segment()),
            kernel_data: gdt.append(Descriptor::kernel_data_segment()),
            user_data: gdt.append(Descriptor::user_data_segment()),
            user_code: gdt.append(Descriptor::user_code_segment()),
            tss: gdt.append(Descriptor::tss_segment(tss)),
        };
        (gdt, selectors)
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which
    // lives in a static for the rest of the kernel's life.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
    for stack in [&DOUBLE_FAULT_STACK, &NMI_STACK, &MACHINE_CHECK_STACK] {
        stack.protect();
    }
}

/// Gives an application processor a GDT and TSS of its own (same selector
/// layout as the bootstrap CPU's), with its IST stacks at `ist_tops`
/// (double fault, NMI, machine check), and loads them. Called once per
/// CPU at bring-up: the tables live for good.
pub fn init_ap(index: usize, ist_tops: [u64; 3]) {
    let mut tss = TaskStateSegment::new();
    for (index, top) in [IST_DOUBLE_FAULT, IST_NMI, IST_MACHINE_CHECK]
        .into_iter()
        .zip(ist_tops)
    {
        tss.interrupt_stack_table[index as usize] = VirtAddr::new(top);
    }
    let tss: &'static mut TaskStateSegment = alloc::boxed::Box::leak(alloc::boxed::Box::new(tss));
    TSS_OF[index].store(tss, core::sync::atomic::Ordering::Release);
    let tss: &'static TaskStateSegment = tss;
    let mut gdt = GlobalDescriptorTable::new();
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    gdt.append(Descriptor::user_data_segment());
    gdt.append(Descriptor::user_code_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = alloc::boxed::Box::leak(alloc::boxed::Box::new(gdt));
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which
    // is leaked (lives for good).
    unsafe {
        CS::set_reg(kernel_code);
        SS::set_reg(kernel_data);
        DS::set_reg(kernel_data);
        ES::set_reg(kernel_data);
        load_tss(tss_sel);
    }
}

/// Sets the stack this CPU switches to on a trap from ring 3 (its own
/// TSS's rsp0).
pub fn set_rsp0(top: u64) {
    let tss = TSS_OF[super::percpu::cpu_index()].load(core::sync::atomic::Ordering::Acquire);
    assert!(!tss.is_null(), "gdt::init ran on this CPU");
    // SAFETY: this CPU's TSS (leaked or static, lives for good), written
    // only by this CPU with interrupts off (callers: the scheduler and the
    // user-mode entry); the CPU itself reads rsp0 only when delivering a
    // trap from ring 3, which cannot happen while this runs.
    unsafe { (*tss).privilege_stack_table[0] = VirtAddr::new(top) };
}

pub fn selectors() -> &'static Selectors {
    &GDT.get().expect("gdt::init ran").1
}
