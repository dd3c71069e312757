//! Reading and writing open files: read, write, pread64, pwrite64, readv,
//! writev, close, lseek, ioctl (each through the file's `FileOps`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::arch::uapi::Iovec;
use crate::fs::File;
use crate::mm::kalloc;
use crate::mm::uaccess::{copy_from_user, read_user_slice};
use crate::proc::fd;

/// The most one `read`/`write` moves (Linux's `MAX_RW_COUNT` is ~2 GiB;
/// a smaller bound keeps one call's work short).
const MAX_RW: u64 = 1 << 30;

/// The open file behind descriptor `fd_num`.
pub(super) fn file(fd_num: u64) -> Result<Arc<File>, Errno> {
    fd::get(fd_num).ok_or(Errno::EBADF)
}

pub(super) fn read(fd_num: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd_num)?;
    Ok(file.read(buf, len.min(MAX_RW) as usize)? as u64)
}

pub(super) fn write(fd_num: u64, buf: u64, len: u64) -> SysResult {
    let file = file(fd_num)?;
    Ok(file.write(buf, len.min(MAX_RW) as usize)? as u64)
}

pub(super) fn pread64(fd_num: u64, buf: u64, len: u64, offset: i64) -> SysResult {
    let file = file(fd_num)?;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(file.pread(buf, len.min(MAX_RW) as usize, offset as u64)? as u64)
}

pub(super) fn pwrite64(fd_num: u64, buf: u64, len: u64, offset: i64) -> SysResult {
    let file = file(fd_num)?;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(file.pwrite(buf, len.min(MAX_RW) as usize, offset as u64)? as u64)
}

/// Linux's `UIO_MAXIOV`: more vectors than this is `EINVAL`.
pub const UIO_MAXIOV: u64 = 1024;
/// Vectors copied in per step: the array is read in chunks on the stack, so
/// no kernel buffer grows with the count.
const IOV_CHUNK: usize = 32;
/// Bytes of one `struct iovec`.
const IOV_SIZE: u64 = core::mem::size_of::<Iovec>() as u64;

/// Calls `f(base, len)` for each of the `count` vectors at `iov`, in order,
/// until `f` says stop (`Ok(false)`) or fails.
fn for_each_iovec(
    iov: u64,
    count: u64,
    mut f: impl FnMut(u64, u64) -> Result<bool, Errno>,
) -> Result<(), Errno> {
    let mut chunk = [Iovec {
        iov_base: 0,
        iov_len: 0,
    }; IOV_CHUNK];
    let mut done = 0;
    while done < count {
        let n = ((count - done) as usize).min(IOV_CHUNK);
        read_user_slice(&mut chunk[..n], iov + done * IOV_SIZE)?;
        for v in &chunk[..n] {
            if !f(v.iov_base, v.iov_len)? {
                return Ok(());
            }
        }
        done += n as u64;
    }
    Ok(())
}

/// Checks an iovec array before any I/O, as Linux's `import_iovec` does:
/// at most `UIO_MAXIOV` vectors (`EINVAL`), the array readable (`EFAULT`),
/// no length negative as an `ssize_t` (`EINVAL`), every segment inside user
/// space (`EFAULT`; whether it is mapped shows when it is copied).
fn check_iovecs(iov: u64, count: u64) -> Result<(), Errno> {
    if count > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    iov.checked_add(count * IOV_SIZE).ok_or(Errno::EFAULT)?;
    for_each_iovec(iov, count, |base, len| {
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        match base.checked_add(len) {
            Some(end) if end <= crate::mm::layout::USER_END => Ok(true),
            _ => Err(Errno::EFAULT),
        }
    })
}

pub(super) fn writev(fd_num: u64, iov: u64, count: u64) -> SysResult {
    check_iovecs(iov, count)?;
    let mut total = 0;
    for_each_iovec(iov, count, |base, len| match write(fd_num, base, len) {
        Ok(n) => {
            total += n;
            Ok(true)
        }
        Err(e) if total == 0 => Err(e),
        Err(_) => Ok(false),
    })?;
    Ok(total)
}

pub(super) fn readv(fd_num: u64, iov: u64, count: u64) -> SysResult {
    check_iovecs(iov, count)?;
    let mut total = 0;
    // A fault after some bytes arrived ends the call with what was read,
    // as in Linux.
    for_each_iovec(iov, count, |base, len| match read(fd_num, base, len) {
        Ok(n) => {
            total += n;
            Ok(n == len)
        }
        Err(e) if total == 0 => Err(e),
        Err(_) => Ok(false),
    })?;
    Ok(total)
}

/// Copies a NUL-terminated string from user memory (at most `max` bytes).
pub(super) fn user_string(addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    append_user_string(&mut out, addr, max)?;
    Ok(out)
}

/// Appends the NUL-terminated string at `addr` (without its NUL) to `out`:
/// `ENAMETOOLONG` if it is longer than `max` bytes, `ENOMEM` if `out`
/// cannot grow. The string is read in small steps, so only `out` grows,
/// and only as far as the string really goes.
pub(super) fn append_user_string(out: &mut Vec<u8>, addr: u64, max: usize) -> Result<usize, Errno> {
    let mut at = addr;
    let mut len = 0;
    loop {
        let mut chunk = [0u8; 64];
        // Never read across a page boundary in one go: the next page may
        // be unmapped although the string ends before it.
        let room = (4096 - (at % 4096)) as usize;
        let n = room.min(chunk.len());
        copy_from_user(&mut chunk[..n], at)?;
        let (piece, done) = match chunk[..n].iter().position(|&b| b == 0) {
            Some(nul) => (&chunk[..nul], true),
            None => (&chunk[..n], false),
        };
        if len + piece.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        kalloc::try_extend_from_slice(out, piece)?;
        len += piece.len();
        if done {
            return Ok(len);
        }
        at += n as u64;
    }
}

pub(super) fn close(fd_num: u64) -> SysResult {
    fd::close(fd_num).ok_or(Errno::EBADF)?;
    Ok(0)
}

pub(super) fn lseek(fd_num: u64, offset: i64, whence: u64) -> SysResult {
    let whence = u32::try_from(whence).map_err(|_| Errno::EINVAL)?;
    file(fd_num)?.seek(offset, whence)
}

pub(super) fn ioctl(fd_num: u64, request: u64, arg: u64) -> SysResult {
    file(fd_num)?.ioctl(request, arg)
}
