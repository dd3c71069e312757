//! The `syscall` instruction's entry point.
//!
//! `syscall` does not switch stacks, so the entry saves the user RSP in a
//! scratch slot, switches to the kernel stack that the TSS also uses for
//! ring-3 traps, and builds the same [`TrapFrame`] an interrupt would (with
//! vector [`SYSCALL_VECTOR`]), then joins the common trap path. The return
//! goes through `iretq` too: slower than `sysret` by a few cycles, but it
//! sidesteps sysret's non-canonical-RCX hazard and keeps one exit path.
//! The scratch slot and the kernel stack are per CPU (`percpu`, through
//! GS): the stub swaps GS in for the two moves and back out before
//! `trap_common` (which swaps it in again, as for any trap from ring 3).
//! Interrupts are masked on entry (SFMASK), so nothing runs on this CPU
//! between the moves.

use core::arch::naked_asm;

use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::gdt;

/// The pseudo-vector syscalls carry in their trap frame.
pub const SYSCALL_VECTOR: u64 = 0x100;

#[unsafe(naked)]
unsafe extern "C" fn syscall_entry() {
    naked_asm!(
        "swapgs",
        "mov gs:[{user_rsp}], rsp",
        "mov rsp, gs:[{kernel_rsp}]",
        // The frame the CPU would have pushed for an interrupt from ring 3.
        "push {user_ss}",
        "push gs:[{user_rsp}]",
        "push r11", // user RFLAGS
        "push {user_cs}",
        "push rcx", // user RIP
        "push 0",   // error code
        "push {vector}",
        "swapgs",
        "jmp {common}",
        user_rsp = const super::percpu::USER_RSP_OFFSET,
        kernel_rsp = const super::percpu::KERNEL_RSP_OFFSET,
        user_ss = const (3 * 8 + 3),
        user_cs = const (4 * 8 + 3),
        vector = const SYSCALL_VECTOR,
        common = sym super::trap::trap_common,
    )
}

/// Sets the kernel stack used on entry from ring 3 (syscalls and traps).
pub fn set_kernel_stack(top: u64) {
    // This CPU's slot: written with interrupts off by the scheduler or the
    // user-mode entry, read only by this CPU's entry stub.
    super::percpu::this()
        .kernel_rsp
        .store(top, core::sync::atomic::Ordering::Relaxed);
    gdt::set_rsp0(top);
}

pub fn init() {
    let sel = gdt::selectors();
    assert_eq!(sel.user_data.0, 3 * 8 + 3, "user SS the entry stub pushes");
    assert_eq!(sel.user_code.0, 4 * 8 + 3, "user CS the entry stub pushes");
    Star::write(
        sel.user_code,
        sel.user_data,
        sel.kernel_code,
        sel.kernel_data,
    )
    .expect("GDT order fits syscall/sysret");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // Entering the kernel with interrupts off, DF clear (ABI), AC clear (SMAP
    // stays armed) and no single-stepping.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::TRAP_FLAG,
    );
    // SAFETY: enables the syscall instruction; LSTAR/STAR are set above.
    unsafe { Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS)) };
}
