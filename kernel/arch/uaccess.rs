//! Touching user memory from the kernel, safely.
//!
//! Every access goes through `copy_user`, a `rep movsb` whose one faulting
//! instruction is listed in an exception-fixup table: if a page fault there
//! cannot be resolved (no mapping, wrong permission, out of memory), the
//! fault handler resumes at the fixup label and the copy reports how many
//! bytes it did not copy. The caller turns that into -EFAULT. With SMAP on,
//! user pages are reachable only between the `stac` and `clac` around it.
//!
//! The fatal-error reports read memory that may be what broke (a corrupt
//! frame-pointer chain, page tables) through [`read_kernel_u64`], one `mov`
//! with a fixup of its own: a fault there makes the read return `None`
//! instead of recursing into another report.

use core::arch::naked_asm;

use super::cpu::smap_enabled;
use super::trap::TrapFrame;

/// Copies `len` bytes; returns how many were NOT copied (0 = success).
#[unsafe(naked)]
unsafe extern "C" fn copy_user_raw(dst: *mut u8, src: *const u8, len: usize) -> usize {
    naked_asm!(
        "mov rcx, rdx",
        ".global ferrite_uaccess_insn",
        "ferrite_uaccess_insn:",
        "rep movsb",
        ".global ferrite_uaccess_fixup",
        "ferrite_uaccess_fixup:",
        "mov rax, rcx",
        "ret",
    )
}

unsafe extern "C" {
    static ferrite_uaccess_insn: u8;
    static ferrite_uaccess_fixup: u8;
}

fn insn_addr() -> u64 {
    // Only the label's address is taken, never its contents.
    core::ptr::addr_of!(ferrite_uaccess_insn) as u64
}

fn fixup_addr() -> u64 {
    core::ptr::addr_of!(ferrite_uaccess_fixup) as u64
}

/// Reads the quadword at `addr`; returns 0 and stores it at `out`, or 1 if
/// the read faulted (the fault handler resumed at the fixup label).
#[unsafe(naked)]
unsafe extern "C" fn read_u64_raw(addr: u64, out: *mut u64) -> u64 {
    naked_asm!(
        ".global ferrite_kread_insn",
        "ferrite_kread_insn:",
        "mov rax, [rdi]",
        "mov [rsi], rax",
        "xor eax, eax",
        "ret",
        ".global ferrite_kread_fixup",
        "ferrite_kread_fixup:",
        "mov eax, 1",
        "ret",
    )
}

unsafe extern "C" {
    static ferrite_kread_insn: u8;
    static ferrite_kread_fixup: u8;
}

/// Whether `addr` is canonical (bits 63..47 all equal): a non-canonical
/// access raises #GP, which has no fixup, so such reads are refused first.
fn is_canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == 0x1_ffff
}

/// Reads the kernel quadword at `addr` without trusting that it is mapped:
/// `None` if `addr` is not a canonical, 8-byte aligned kernel-half address
/// or the read faults. For the fatal-error reports, which must not fault
/// while reading memory that may be what broke.
pub fn read_kernel_u64(addr: u64) -> Option<u64> {
    if !crate::mm::layout::is_kernel_address(addr) || !is_canonical(addr) || !addr.is_multiple_of(8)
    {
        return None;
    }
    let mut value = 0u64;
    // SAFETY: a read of a canonical kernel address; if it faults, the page
    // fault handler sees `is_kernel_read` and resumes at the fixup label,
    // which returns 1. Nothing is written but `value`.
    let failed = unsafe { read_u64_raw(addr, &mut value) };
    (failed == 0).then_some(value)
}

/// Whether a kernel-mode fault is the faulting read of [`read_kernel_u64`].
pub fn is_kernel_read(frame: &TrapFrame) -> bool {
    !frame.from_user() && frame.rip == core::ptr::addr_of!(ferrite_kread_insn) as u64
}

/// Makes the interrupted [`read_kernel_u64`] return `None`.
pub fn apply_kernel_read_fixup(frame: &mut TrapFrame) {
    debug_assert!(is_kernel_read(frame));
    frame.rip = core::ptr::addr_of!(ferrite_kread_fixup) as u64;
}

/// Whether a kernel-mode fault at `rip` is a user access the kernel asked
/// for (and so may be resolved as a user fault, or fixed up).
pub fn is_user_access(frame: &TrapFrame) -> bool {
    !frame.from_user() && frame.rip == insn_addr()
}

/// Makes the interrupted copy return early: RCX still counts the bytes left.
pub fn apply_fixup(frame: &mut TrapFrame) {
    debug_assert!(is_user_access(frame));
    frame.rip = fixup_addr();
}

/// Copies between kernel and user memory. Returns the bytes not copied.
///
/// # Safety
/// The kernel side of the copy must be valid for `len` bytes, and the user
/// side must have been checked to lie in the lower half (`mm::uaccess` does
/// both, and checks the regions' permissions).
pub unsafe fn copy_user(dst: *mut u8, src: *const u8, len: usize) -> usize {
    let smap = smap_enabled();
    // SAFETY: stac only lifts SMAP for this CPU until the clac below; the
    // copy itself is fault-safe through the fixup table, and the caller
    // guarantees the kernel-side buffer.
    unsafe {
        if smap {
            core::arch::asm!("stac", options(nomem, nostack));
        }
        let left = copy_user_raw(dst, src, len);
        if smap {
            core::arch::asm!("clac", options(nomem, nostack));
        }
        left
    }
}
