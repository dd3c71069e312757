//! Files and the console: read, write, readv, writev, open, close, lseek,
//! ioctl.

use alloc::string::String;
use alloc::vec::Vec;
use vmcore::Prot;

use super::*;
use crate::mm::uaccess::{copy_from_user, copy_to_user};
use crate::proc::fd::{self, OpenFile};

pub(super) fn read(fd_num: u64, buf: u64, len: u64) -> Result {
    let len = len.min(1 << 20) as usize;
    let file = fd::get(fd_num).ok_or(EBADF)?;
    match file {
        OpenFile::Console => {
            if len == 0 {
                return Ok(0);
            }
            // Check the buffer before blocking for input.
            if !crate::mm::uaccess::access_ok(buf, len, Prot::WRITE) {
                return Err(EFAULT);
            }
            let mut kbuf = alloc::vec![0u8; len.min(4096)];
            let n = crate::proc::console::read_blocking(&mut kbuf);
            copy_to_user(buf, &kbuf[..n])?;
            Ok(n as i64)
        }
        OpenFile::Ramdisk { file, pos } => {
            let start = (pos as usize).min(file.data.len());
            let end = (start + len).min(file.data.len());
            copy_to_user(buf, &file.data[start..end])?;
            fd::set_pos(fd_num, end as u64);
            Ok((end - start) as i64)
        }
    }
}

pub(super) fn write(fd_num: u64, buf: u64, len: u64) -> Result {
    match fd::get(fd_num).ok_or(EBADF)? {
        OpenFile::Ramdisk { .. } => Err(EBADF),
        OpenFile::Console => {
            let mut chunk = [0u8; 512];
            let mut done = 0u64;
            while done < len {
                let n = ((len - done) as usize).min(chunk.len());
                if copy_from_user(&mut chunk[..n], buf + done).is_err() {
                    return if done == 0 {
                        Err(EFAULT)
                    } else {
                        Ok(done as i64)
                    };
                }
                crate::kprint!("{}", String::from_utf8_lossy(&chunk[..n]));
                done += n as u64;
            }
            Ok(done as i64)
        }
    }
}

pub(super) fn iovecs(iov: u64, count: u64) -> core::result::Result<Vec<(u64, u64)>, i64> {
    if count > 1024 {
        return Err(EINVAL);
    }
    let mut raw = alloc::vec![0u8; count as usize * 16];
    copy_from_user(&mut raw, iov)?;
    Ok(raw
        .as_chunks::<16>()
        .0
        .iter()
        .map(|c| {
            let base = u64::from_le_bytes(c[..8].try_into().unwrap());
            let len = u64::from_le_bytes(c[8..].try_into().unwrap());
            (base, len)
        })
        .collect())
}

pub(super) fn writev(fd_num: u64, iov: u64, count: u64) -> Result {
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        match write(fd_num, base, len) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

pub(super) fn readv(fd_num: u64, iov: u64, count: u64) -> Result {
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        let n = read(fd_num, base, len)?;
        total += n;
        if (n as u64) < len {
            break;
        }
    }
    Ok(total)
}

/// Copies a NUL-terminated string from user memory (at most `max` bytes).
pub(super) fn user_string(addr: u64, max: usize) -> core::result::Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        let mut chunk = [0u8; 64];
        // Never read across a page boundary in one go: the next page may
        // be unmapped although the string ends before it.
        let room = (4096 - (at % 4096)) as usize;
        let n = room.min(chunk.len());
        copy_from_user(&mut chunk[..n], at)?;
        if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        if out.len() > max {
            return Err(ENAMETOOLONG);
        }
        at += n as u64;
    }
}

pub(super) fn open(path: u64, flags: u64) -> Result {
    let path = user_string(path, 4096)?;
    let path = core::str::from_utf8(&path).map_err(|_| ENOENT)?;
    const O_ACCMODE: u64 = 3;
    if flags & O_ACCMODE != 0 {
        // Read-only file system.
        return Err(EACCES);
    }
    let file = crate::proc::ramdisk::open(path).ok_or(ENOENT)?;
    fd::install(OpenFile::Ramdisk { file, pos: 0 }).ok_or(EAGAIN)
}

pub(super) fn close(fd_num: u64) -> Result {
    fd::close(fd_num).ok_or(EBADF)?;
    Ok(0)
}

pub(super) fn lseek(fd_num: u64, offset: i64, whence: u64) -> Result {
    match fd::get(fd_num).ok_or(EBADF)? {
        OpenFile::Console => Err(ESPIPE),
        OpenFile::Ramdisk { file, pos } => {
            let base = match whence {
                0 => 0,
                1 => pos as i64,
                2 => file.data.len() as i64,
                _ => return Err(EINVAL),
            };
            let new = base.checked_add(offset).filter(|&p| p >= 0).ok_or(EINVAL)?;
            fd::set_pos(fd_num, new as u64);
            Ok(new)
        }
    }
}

const TIOCGWINSZ: u64 = 0x5413;

pub(super) fn ioctl(fd_num: u64, request: u64, arg: u64) -> Result {
    match (fd::get(fd_num).ok_or(EBADF)?, request) {
        (OpenFile::Console, TIOCGWINSZ) => {
            // 25 rows, 80 columns: the console is a terminal.
            let winsize: [u16; 4] = [25, 80, 0, 0];
            let bytes: Vec<u8> = winsize.iter().flat_map(|v| v.to_le_bytes()).collect();
            copy_to_user(arg, &bytes)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}
