//! Touching user memory from the kernel, safely.
//!
//! Every access goes through `copy_user`, a `rep movsb` whose one faulting
//! instruction is listed in an exception-fixup table: if a page fault there
//! cannot be resolved (no mapping, wrong permission, out of memory), the
//! fault handler resumes at the fixup label and the copy reports how many
//! bytes it did not copy. The caller turns that into -EFAULT. With SMAP on,
//! user pages are reachable only between the `stac` and `clac` around it.

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
