//! Running code in ring 3 and coming back.
//!
//! [`enter_user`] saves the kernel's callee-saved registers and stack
//! pointer, then `iretq`s into the user context. Traps from ring 3 land on the
//! kernel stack set with [`super::syscall::set_kernel_stack`]; most are
//! handled and return to user mode, but when the user context ends (exit, or
//! a fault that kills it) the handler calls [`leave_user`], which restores
//! the saved kernel context so `enter_user` returns the given value. This is
//! `setjmp`/`longjmp` across a privilege change.

use core::arch::naked_asm;

use super::trap::TrapFrame;

/// Callee-saved state of the kernel code that entered user mode.
#[repr(C)]
#[derive(Default)]
pub struct KernelContext {
    rsp: u64,
    rbx: u64,
    rbp: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
}

impl KernelContext {
    pub const fn new_zeroed() -> KernelContext {
        KernelContext {
            rsp: 0,
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
        }
    }
}

/// Saves the kernel context in `ctx` and starts the user context `frame`.
/// Returns the value passed to [`leave_user`].
///
/// # Safety
/// `frame` must describe a ring-3 context (user CS/SS, IF set) in the
/// current address space; `ctx` must stay valid until `leave_user` uses it;
/// the kernel stack for traps from ring 3 must be set and not be the current
/// stack.
#[unsafe(naked)]
pub unsafe extern "C" fn enter_user(ctx: *mut KernelContext, frame: *const TrapFrame) -> u64 {
    naked_asm!(
        "mov [rdi + 0], rsp",
        "mov [rdi + 8], rbx",
        "mov [rdi + 16], rbp",
        "mov [rdi + 24], r12",
        "mov [rdi + 32], r13",
        "mov [rdi + 40], r14",
        "mov [rdi + 48], r15",
        // Restore the user registers from the frame and iretq to it.
        "mov rsp, rsi",
        "jmp {ret}",
        ret = sym super::trap::trap_return,
    )
}

/// Abandons the current (trap) stack and returns `value` from the
/// `enter_user` that saved `ctx`.
///
/// # Safety
/// `ctx` must have been filled by an `enter_user` whose stack frame is still
/// live (that call has not returned yet).
#[unsafe(naked)]
pub unsafe extern "C" fn leave_user(ctx: *const KernelContext, value: u64) -> ! {
    naked_asm!(
        "mov rsp, [rdi + 0]",
        "mov rbx, [rdi + 8]",
        "mov rbp, [rdi + 16]",
        "mov r12, [rdi + 24]",
        "mov r13, [rdi + 32]",
        "mov r14, [rdi + 40]",
        "mov r15, [rdi + 48]",
        "mov rax, rsi",
        "ret",
    )
}

/// A fresh ring-3 context starting at `rip` with stack `rsp`.
pub fn user_frame(rip: u64, rsp: u64) -> TrapFrame {
    let sel = super::gdt::selectors();
    TrapFrame {
        rip,
        rsp,
        cs: sel.user_code.0 as u64,
        ss: sel.user_data.0 as u64,
        // IF set: the timer keeps running while user code does.
        rflags: 0x202,
        ..TrapFrame::default()
    }
}
