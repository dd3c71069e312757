//! Trap entry: one assembly path for every exception and interrupt.
//!
//! Each vector has a tiny stub that pushes a dummy error code (when the CPU
//! does not push one) and the vector number, then jumps to `trap_common`, which
//! saves every general-purpose register and calls [`trap_dispatch`] with a
//! pointer to the resulting [`TrapFrame`]. Handlers see (and may change) the
//! complete interrupted context: the fault reports print it, and the scheduler
//! will switch it.

use core::arch::naked_asm;

use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

use super::gdt;
use super::hook::Hook;

/// The interrupted context, laid out exactly as `trap_common` pushes it.
#[repr(C)]
#[derive(Clone, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Whether the trap came from ring 3.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

#[unsafe(naked)]
pub(super) unsafe extern "C" fn trap_common() {
    naked_asm!(
        // From ring 3 (the CS the CPU pushed, above vector and error
        // code): GS becomes the kernel's per-CPU base (see `percpu`).
        "test byte ptr [rsp + 24], 3",
        "jz 2f",
        "swapgs",
        "2:",
        "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
        "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
        // The SysV ABI wants DF clear; the frame is 16-byte aligned here (the
        // CPU aligned RSP, then 22 quadwords were pushed), so the call leaves
        // the callee with the usual alignment.
        "cld",
        "mov rdi, rsp",
        "call {dispatch}",
        "jmp {ret}",
        dispatch = sym trap_dispatch,
        ret = sym trap_return,
    );
}

/// Restores the [`TrapFrame`] at RSP and returns to it with `iretq`: the end
/// of every trap, and where a new process's first switch lands.
///
/// # Safety
/// Only reached by a jump or `ret` with RSP pointing at a complete trap
/// frame; never called as a function.
#[unsafe(naked)]
pub unsafe extern "C" fn trap_return() {
    naked_asm!(
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop r11",
        "pop r10",
        "pop r9",
        "pop r8",
        "pop rbp",
        "pop rdi",
        "pop rsi",
        "pop rdx",
        "pop rcx",
        "pop rbx",
        "pop rax",
        // Drop the vector and error code.
        "add rsp, 16",
        // Back to ring 3: user space's GS base again.
        "test byte ptr [rsp + 8], 3",
        "jz 2f",
        "swapgs",
        "2:",
        "iretq",
    );
}

macro_rules! trap_stubs {
    ($( $name:ident: $vector:literal $(, $err:ident)? ;)*) => {
        $(
            #[unsafe(naked)]
            unsafe extern "C" fn $name() {
                naked_asm!(
                    trap_stubs!(@dummy $($err)?),
                    concat!("push ", $vector),
                    "jmp {common}",
                    common = sym trap_common,
                );
            }
        )*
        /// (vector, stub) for every vector Ferrite handles.
        const STUBS: &[(u8, unsafe extern "C" fn())] = &[$(($vector, $name)),*];
    };
    (@dummy err) => { "" };
    (@dummy) => { "push 0" };
}

trap_stubs! {
    stub_divide_error: 0;
    stub_debug: 1;
    stub_nmi: 2;
    stub_breakpoint: 3;
    stub_overflow: 4;
    stub_bound_range: 5;
    stub_invalid_opcode: 6;
    stub_device_not_available: 7;
    stub_double_fault: 8, err;
    stub_invalid_tss: 10, err;
    stub_segment_not_present: 11, err;
    stub_stack_segment: 12, err;
    stub_general_protection: 13, err;
    stub_page_fault: 14, err;
    stub_x87: 16;
    stub_alignment_check: 17, err;
    stub_machine_check: 18;
    stub_simd: 19;
    stub_virtualization: 20;
    stub_control_protection: 21, err;
    stub_hypervisor_injection: 28;
    stub_vmm_communication: 29, err;
    stub_security: 30, err;
    stub_irq0: 32;
    stub_irq1: 33;
    stub_irq2: 34;
    stub_irq3: 35;
    stub_irq4: 36;
    stub_irq5: 37;
    stub_irq6: 38;
    stub_irq7: 39;
    stub_irq8: 40;
    stub_irq9: 41;
    stub_irq10: 42;
    stub_irq11: 43;
    stub_irq12: 44;
    stub_irq13: 45;
    stub_irq14: 46;
    stub_irq15: 47;
    stub_lapic_timer: 0xef;
    stub_wake: 0xf0;
    stub_tlb: 0xf1;
    stub_spurious: 0xff;
}

pub const VECTOR_BREAKPOINT: u64 = 3;
pub const VECTOR_DOUBLE_FAULT: u64 = 8;
pub const VECTOR_PAGE_FAULT: u64 = 14;
pub const VECTOR_NMI: u64 = 2;
pub const VECTOR_MACHINE_CHECK: u64 = 18;
pub const IRQ_BASE: u64 = 32;
const VECTOR_WAKE: u64 = super::apic::WAKE_VECTOR as u64;
const VECTOR_TLB: u64 = super::tlb::TLB_VECTOR as u64;
const VECTOR_LAPIC_TIMER: u64 = super::apic::TIMER_VECTOR as u64;
const VECTOR_SPURIOUS: u64 = super::apic::SPURIOUS_VECTOR as u64;

static IDT: Once<InterruptDescriptorTable> = Once::new();

pub fn init() {
    let idt = IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        for &(vector, stub) in STUBS {
            let addr = VirtAddr::new(stub as usize as u64);
            // SAFETY: every stub is a valid interrupt entry point that ends in
            // iretq with the stack as it found it. The x86_64 crate types
            // entries by handler signature; the address is the same kind of
            // stub whatever the signature.
            let options = unsafe {
                match vector {
                    8 => idt.double_fault.set_handler_addr(addr),
                    10 => idt.invalid_tss.set_handler_addr(addr),
                    11 => idt.segment_not_present.set_handler_addr(addr),
                    12 => idt.stack_segment_fault.set_handler_addr(addr),
                    13 => idt.general_protection_fault.set_handler_addr(addr),
                    14 => idt.page_fault.set_handler_addr(addr),
                    17 => idt.alignment_check.set_handler_addr(addr),
                    18 => idt.machine_check.set_handler_addr(addr),
                    21 => idt.cp_protection_exception.set_handler_addr(addr),
                    29 => idt.vmm_communication_exception.set_handler_addr(addr),
                    30 => idt.security_exception.set_handler_addr(addr),
                    v => idt[v].set_handler_addr(addr),
                }
            };
            let ist = match vector as u64 {
                VECTOR_DOUBLE_FAULT => Some(gdt::IST_DOUBLE_FAULT),
                VECTOR_NMI => Some(gdt::IST_NMI),
                VECTOR_MACHINE_CHECK => Some(gdt::IST_MACHINE_CHECK),
                _ => None,
            };
            if vector as u64 == VECTOR_BREAKPOINT {
                // `int3` from ring 3 traps here (SIGTRAP), not as a #GP.
                options.set_privilege_level(x86_64::PrivilegeLevel::Ring3);
            }
            if let Some(ist) = ist {
                // SAFETY: the IST index names a stack set up in the TSS by
                // gdt::init, used by no other vector.
                unsafe { options.set_stack_index(ist) };
            }
        }
        idt
    });
    idt.load();
}

/// Loads the IDT [`init`] built on this CPU (application processors).
pub fn load_idt() {
    IDT.get()
        .expect("trap::init ran on the bootstrap CPU")
        .load();
}

/// A handler the layers above `arch` install (see [`super::hook`]).
pub type TrapHook = fn(&mut TrapFrame);

static PAGE_FAULT_HOOK: Hook<TrapHook> = Hook::empty();
static SYSCALL_HOOK: Hook<TrapHook> = Hook::empty();
static USER_EXCEPTION_HOOK: Hook<TrapHook> = Hook::empty();

/// Page faults (the memory manager resolves or rejects them).
pub fn set_page_fault_handler(hook: TrapHook) {
    PAGE_FAULT_HOOK.set(hook);
}

/// `syscall` from ring 3.
pub fn set_syscall_handler(hook: TrapHook) {
    SYSCALL_HOOK.set(hook);
}

/// Any other exception raised by ring-3 code (#GP, #UD, #DE, ...): fatal to
/// the user context, never to the kernel.
pub fn set_user_exception_handler(hook: TrapHook) {
    USER_EXCEPTION_HOOK.set(hook);
}

static RETURN_TO_USER_HOOK: Hook<TrapHook> = Hook::empty();

/// Runs last before every return to ring 3 (signal delivery).
pub fn set_return_to_user_hook(hook: TrapHook) {
    RETURN_TO_USER_HOOK.set(hook);
}

/// Called by `trap_common` for every trap, with interrupts off.
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if frame.vector == VECTOR_NMI && super::tlb::nmi() {
        // A TLB shootdown (sent as an NMI, see `tlb`): done; nothing else
        // runs in NMI context (no signal delivery on the way out).
        return;
    }
    handle_trap(frame);
    if frame.from_user() {
        if let Some(hook) = RETURN_TO_USER_HOOK.get() {
            hook(frame);
        }
    }
}

fn handle_trap(frame: &mut TrapFrame) {
    match frame.vector {
        VECTOR_BREAKPOINT if !frame.from_user() => super::exceptions::breakpoint(frame),
        VECTOR_WAKE => super::smp::wake_interrupt(),
        VECTOR_TLB => super::tlb::interrupt(),
        VECTOR_LAPIC_TIMER => super::apic::timer_interrupt(frame),
        VECTOR_NMI if super::smp::stopping() => super::smp::stopped(),
        VECTOR_SPURIOUS => {}
        v if (IRQ_BASE..IRQ_BASE + 16).contains(&v) => {
            super::interrupts::handle_irq((v - IRQ_BASE) as u8, frame)
        }
        super::syscall::SYSCALL_VECTOR => match SYSCALL_HOOK.get() {
            Some(hook) => hook(frame),
            None => super::exceptions::fatal(frame),
        },
        VECTOR_PAGE_FAULT => match PAGE_FAULT_HOOK.get() {
            Some(hook) => hook(frame),
            None => super::exceptions::fatal(frame),
        },
        VECTOR_DOUBLE_FAULT | VECTOR_MACHINE_CHECK | VECTOR_NMI => super::exceptions::fatal(frame),
        _ if frame.from_user() => match USER_EXCEPTION_HOOK.get() {
            Some(hook) => hook(frame),
            None => super::exceptions::fatal(frame),
        },
        _ => super::exceptions::fatal(frame),
    }
}
