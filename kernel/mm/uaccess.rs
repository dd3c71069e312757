//! The only way the kernel reads or writes user memory.
//!
//! A user pointer is checked three ways: the range must lie in the lower
//! half (so a user cannot aim the kernel at kernel memory), inside regions of
//! the current address space with the needed permission (so PROT_NONE or
//! read-only memory is refused even where the page happens to be present),
//! and the copy itself is fault-safe (pages fault in on demand; anything the
//! fault handler refuses ends the copy through the fixup table). Failures are
//! `Efault`, which system calls return as -EFAULT.
//!
//! Structures the user ABI defines (a `timespec`, an `iovec` array) are
//! copied whole as typed values with [`read_user`], [`write_user`] and
//! [`read_user_slice`]: one checked copy each, no offsets by hand. The types
//! they accept are [`Pod`]: plain bytes, any of whose bit patterns is a
//! valid value.

use vmcore::Prot;

use super::aspace;
use super::layout::USER_END;
use crate::arch::uaccess::copy_user;

/// Plain old data: a value that is nothing but its bytes, so it may be
/// filled from, and shown to, user memory as it is.
///
/// # Safety
/// Implement only for types that are `#[repr(C)]` (or `transparent`, or
/// primitive integers and arrays of `Pod`) with no padding bytes (every byte
/// of the value is initialised, so writing it out leaks nothing) and whose
/// every field is `Pod` (every bit pattern is a valid value, so any bytes a
/// user wrote read back as one). The `pod_struct!` macro of `arch::uapi` declares such
/// structs and checks the absence of padding at compile time.
pub unsafe trait Pod: Copy + 'static {}

// SAFETY: integers have no padding and no invalid bit patterns.
unsafe impl Pod for u8 {}
// SAFETY: as for u8.
unsafe impl Pod for u16 {}
// SAFETY: as for u8.
unsafe impl Pod for u32 {}
// SAFETY: as for u8.
unsafe impl Pod for u64 {}
// SAFETY: as for u8.
unsafe impl Pod for i32 {}
// SAFETY: as for u8.
unsafe impl Pod for i64 {}
// SAFETY: an array has no padding between elements of a padding-free type
// (its size is a multiple of its alignment), and any bytes are valid
// elements.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// The bytes of `values` (a `Pod` slice is its bytes).
fn bytes_of<T: Pod>(values: &[T]) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so every byte is initialised; the
    // length is the slice's size in bytes, and u8 needs no alignment.
    unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), core::mem::size_of_val(values)) }
}

/// The bytes of `values`, writable (any bytes written are valid `T`s).
fn bytes_of_mut<T: Pod>(values: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `bytes_of`; and any bit pattern is a valid `T`, so what
    // is written through the bytes leaves valid values. The borrow is
    // exclusive for its lifetime.
    unsafe {
        core::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), core::mem::size_of_val(values))
    }
}

/// Reads a `T` from user memory at `src`, in one copy.
pub fn read_user<T: Pod>(src: u64) -> Result<T, Efault> {
    // SAFETY: all-zero bytes are a valid `T` (`Pod`: any bit pattern is).
    let mut value = [unsafe { core::mem::zeroed::<T>() }];
    copy_from_user(bytes_of_mut(&mut value), src)?;
    Ok(value[0])
}

/// Fills `dst` with the `dst.len()` values of type `T` at `src` (an array
/// in user memory), in one copy.
pub fn read_user_slice<T: Pod>(dst: &mut [T], src: u64) -> Result<(), Efault> {
    copy_from_user(bytes_of_mut(dst), src)
}

/// Writes `value` to user memory at `dst`, in one copy.
pub fn write_user<T: Pod>(dst: u64, value: &T) -> Result<(), Efault> {
    copy_to_user(dst, bytes_of(core::slice::from_ref(value)))
}

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
