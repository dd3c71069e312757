//! Files and the console: read, write, readv, writev, open, close, lseek,
//! ioctl.

use alloc::vec::Vec;
use vmcore::Prot;

use super::*;
use crate::arch::uapi::{Iovec, Winsize};
use crate::mm::kalloc;
use crate::mm::uaccess::{copy_from_user, copy_to_user, read_user_slice, write_user};
use crate::proc::fd::{self, OpenFile};

pub(super) fn read(fd_num: u64, buf: u64, len: u64) -> SysResult {
    let len = len.min(1 << 20) as usize;
    let file = fd::get(fd_num).ok_or(Errno::EBADF)?;
    match file {
        OpenFile::Console => {
            if len == 0 {
                return Ok(0);
            }
            // Check the buffer before blocking for input.
            if !crate::mm::uaccess::access_ok(buf, len, Prot::WRITE) {
                return Err(Errno::EFAULT);
            }
            // A read returns what is there (at least a byte): a small
            // buffer on the stack is enough, nothing to allocate.
            let mut kbuf = [0u8; 1024];
            let n = crate::proc::console::read_blocking(&mut kbuf[..len.min(1024)]);
            if n == 0 && len > 0 {
                // A signal came first.
                return Err(Errno::ERESTARTSYS);
            }
            copy_to_user(buf, &kbuf[..n])?;
            Ok(n as u64)
        }
        OpenFile::Ramdisk { file, pos } => {
            let start = (pos as usize).min(file.data.len());
            let end = (start + len).min(file.data.len());
            copy_to_user(buf, &file.data[start..end])?;
            fd::set_pos(fd_num, end as u64);
            Ok((end - start) as u64)
        }
    }
}

pub(super) fn write(fd_num: u64, buf: u64, len: u64) -> SysResult {
    match fd::get(fd_num).ok_or(Errno::EBADF)? {
        OpenFile::Ramdisk { .. } => Err(Errno::EBADF),
        OpenFile::Console => {
            let mut chunk = [0u8; 4096];
            let mut done = 0u64;
            while done < len {
                let n = ((len - done) as usize).min(chunk.len());
                if copy_from_user(&mut chunk[..n], buf + done).is_err() {
                    return if done == 0 {
                        Err(Errno::EFAULT)
                    } else {
                        Ok(done)
                    };
                }
                crate::proc::console::write_bytes(&chunk[..n]);
                done += n as u64;
            }
            Ok(done)
        }
    }
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

pub(super) fn open(path: u64, flags: u64) -> SysResult {
    let path = user_string(path, 4096)?;
    let path = core::str::from_utf8(&path).map_err(|_| Errno::ENOENT)?;
    const O_ACCMODE: u64 = 3;
    if flags & O_ACCMODE != 0 {
        // Read-only file system.
        return Err(Errno::EACCES);
    }
    let file = crate::proc::ramdisk::open(path).ok_or(Errno::ENOENT)?;
    let fd = fd::install(OpenFile::Ramdisk { file, pos: 0 })?;
    Ok(fd as u64)
}

pub(super) fn close(fd_num: u64) -> SysResult {
    fd::close(fd_num).ok_or(Errno::EBADF)?;
    Ok(0)
}

pub(super) fn lseek(fd_num: u64, offset: i64, whence: u64) -> SysResult {
    match fd::get(fd_num).ok_or(Errno::EBADF)? {
        OpenFile::Console => Err(Errno::ESPIPE),
        OpenFile::Ramdisk { file, pos } => {
            let base = match whence {
                0 => 0,
                1 => pos as i64,
                2 => file.data.len() as i64,
                _ => return Err(Errno::EINVAL),
            };
            let new = base
                .checked_add(offset)
                .filter(|&p| p >= 0)
                .ok_or(Errno::EINVAL)?;
            fd::set_pos(fd_num, new as u64);
            Ok(new as u64)
        }
    }
}

const TIOCGWINSZ: u64 = 0x5413;

pub(super) fn ioctl(fd_num: u64, request: u64, arg: u64) -> SysResult {
    match (fd::get(fd_num).ok_or(Errno::EBADF)?, request) {
        (OpenFile::Console, TIOCGWINSZ) => {
            // 25 rows, 80 columns: the console is a terminal.
            let size = Winsize {
                ws_row: 25,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            write_user(arg, &size)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}
