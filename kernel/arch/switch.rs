//! Switching kernel stacks: the heart of a context switch.
//!
//! Each process has its own kernel stack. `switch_stacks` pushes the
//! callee-saved registers on the current stack, stores RSP in `*save`, loads
//! `next` into RSP and pops the other context's registers: its `ret` then
//! continues wherever that context last called `switch_stacks` (or, for a
//! new process, at the entry its stack was prepared with).

use core::arch::naked_asm;

/// Saves the current context's stack pointer in `*save` and resumes the
/// context whose saved stack pointer is `next`.
///
/// # Safety
/// `next` must be a stack pointer saved by `switch_stacks` (or prepared by
/// [`prepare_stack`]) of a context that is not running; interrupts must be
/// off; `save` must stay valid until this context is resumed.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_stacks(save: *mut u64, next: u64) {
    naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    )
}

/// Lays out a new kernel stack whose first `switch_stacks` "returns" into
/// `entry` with `frame_at` as RSP... concretely: below `top` it stores the
/// six callee-saved registers (zero) and `entry` as the return address, and
/// returns the stack pointer to give to `switch_stacks`.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a mapped, unused stack with room
/// for 7 words.
pub unsafe fn prepare_stack(top: u64, entry: u64) -> u64 {
    let words = 7u64;
    let rsp = top - words * 8;
    let slots = rsp as *mut u64;
    // SAFETY: the caller guarantees the 7 words below `top` are ours.
    unsafe {
        for i in 0..6 {
            slots.add(i).write(0);
        }
        slots.add(6).write(entry);
    }
    rsp
}
