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

/// A fresh kernel stack for a kernel thread that starts in `entry`, and
/// the stack pointer its first [`switch_stacks`] resumes: the stack is
/// prepared to "return" into a trampoline that enables interrupts (a
/// switch happens with them off) and calls `entry`, which never returns.
///
/// The stack is allocated here, so nothing else can be using it: that is
/// what makes this safe where [`prepare_stack`] is not.
pub fn new_kernel_thread_stack(
    pages: u64,
    entry: fn() -> !,
) -> Result<(crate::mm::vmalloc::VmArea, u64), crate::mm::vmalloc::VmallocError> {
    let stack = crate::mm::vmalloc::alloc(pages)?;
    let top = stack.end() & !0xf;
    // The slots `switch_stacks` pops: r15, r14, r13, r12, rbx, rbp, then
    // the return address. r12 carries `entry` to the trampoline.
    let words: [u64; 7] = [
        0,
        0,
        0,
        entry as usize as u64,
        0,
        0,
        kernel_thread_trampoline as *const () as u64,
    ];
    let rsp = top - 8 * words.len() as u64;
    // SAFETY: `stack` was just mapped by vmalloc (pages ≥ 1, so the 7
    // words below its 16-byte aligned top are inside it) and is ours
    // alone: no context runs on it yet.
    unsafe {
        core::ptr::copy_nonoverlapping(words.as_ptr(), rsp as *mut u64, words.len());
    }
    Ok((stack, rsp))
}

/// Where a new kernel thread's first switch lands (RSP = the stack's top,
/// 16-byte aligned): calls `kernel_thread_start(r12)`; the call leaves
/// RSP as the ABI wants it at a function's entry.
#[unsafe(naked)]
extern "C" fn kernel_thread_trampoline() -> ! {
    naked_asm!(
        "mov rdi, r12",
        "xor ebp, ebp",
        "call {start}",
        "ud2",
        start = sym kernel_thread_start,
    )
}

extern "C" fn kernel_thread_start(entry: usize) -> ! {
    finish_switch();
    // SAFETY: `entry` is the `fn() -> !` that `new_kernel_thread_stack`
    // stored in r12's slot, passed on unchanged by the trampoline; fn
    // pointers and usize have the same size.
    let entry: fn() -> ! = unsafe { core::mem::transmute::<usize, fn() -> !>(entry) };
    // The switch that brought us here ran with interrupts off; `schedule`
    // would have returned to a caller that turns them back on.
    x86_64::instructions::interrupts::enable();
    entry()
}

/// Where a new user process's first switch lands (RSP = its trap frame,
/// 16-byte aligned): [`finish_switch`], then `trap_return` into ring 3.
#[unsafe(naked)]
pub extern "C" fn first_return_to_user() -> ! {
    naked_asm!(
        "call {finish}",
        "jmp {ret}",
        finish = sym finish_switch_c,
        ret = sym super::trap::trap_return,
    )
}

extern "C" fn finish_switch_c() {
    finish_switch();
}

/// Marks `on_cpu` (the flag "a CPU is on this context's stack" of the
/// context being switched away from) to be cleared by this CPU once the
/// switch is done ([`finish_switch`]). Call with interrupts off, right
/// before `switch_stacks`; the flag must outlive the switch.
pub fn release_after_switch(on_cpu: &core::sync::atomic::AtomicBool) {
    super::percpu::this().switch_release.store(
        on_cpu as *const core::sync::atomic::AtomicBool as *mut _,
        core::sync::atomic::Ordering::Relaxed,
    );
}

/// Runs first in every context a switch lands in: clears the previous
/// context's `on_cpu` (see [`release_after_switch`]), so another CPU may
/// now resume it. Its stack is no longer in use by this CPU.
pub fn finish_switch() {
    let slot = &super::percpu::this().switch_release;
    let prev = slot.swap(core::ptr::null_mut(), core::sync::atomic::Ordering::Relaxed);
    if !prev.is_null() {
        // SAFETY: set by `release_after_switch` from a live flag that
        // outlives the switch (a process is not freed while its flag is
        // set); this CPU is off its stack now.
        unsafe { (*prev).store(false, core::sync::atomic::Ordering::SeqCst) };
    }
}
