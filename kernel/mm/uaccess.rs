//! The only way the kernel reads or writes user memory.
//!
//! A user pointer is checked three ways: the range must lie in the lower
//! half (so a user cannot aim the kernel at kernel memory), inside regions of
//! the current address space with the needed permission (so PROT_NONE or
//! read-only memory is refused even where the page happens to be present),
//! and the copy itself is fault-safe (pages fault in on demand; anything the
//! fault handler refuses ends the copy through the fixup table). Failures are
//! `Efault`, which system calls return as -EFAULT.

use vmcore::Prot;

use super::aspace;
use super::layout::USER_END;
use crate::arch::uaccess::copy_user;

/// A user pointer that does not lead to accessible user memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Efault;

/// Whether `[addr, addr + len)` lies in the user half and in regions of the
/// current address space that allow `need`.
pub fn access_ok(addr: u64, len: usize, need: Prot) -> bool {
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    if end > USER_END {
        return false;
    }
    if len == 0 {
        return true;
    }
    let Some(current) = aspace::current() else {
        return false;
    };
    let aspace = current.lock();
    let mut at = addr;
    while at < end {
        // A stack may grow into the gap below it on a real fault; the copy
        // would fault there too, so allow what the fault handler allows.
        match aspace.vmas().find_for_fault(at) {
            Some(vma) if vma.prot.contains(need) => at = vma.end.max(at + 1),
            _ => return false,
        }
    }
    true
}

/// Copies user memory at `src` into `dst`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Efault> {
    if !access_ok(src, dst.len(), Prot::READ) {
        return Err(Efault);
    }
    // SAFETY: `dst` is a valid kernel buffer of its length; the source was
    // checked to be user memory; faults are fixed up.
    match unsafe { copy_user(dst.as_mut_ptr(), src as *const u8, dst.len()) } {
        0 => Ok(()),
        _ => Err(Efault),
    }
}

/// Copies `src` to user memory at `dst`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Efault> {
    if !access_ok(dst, src.len(), Prot::WRITE) {
        return Err(Efault);
    }
    // SAFETY: as in copy_from_user, with the roles swapped.
    match unsafe { copy_user(dst as *mut u8, src.as_ptr(), src.len()) } {
        0 => Ok(()),
        _ => Err(Efault),
    }
}
