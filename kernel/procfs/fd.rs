//! `/proc/<pid>/fd/` and `/proc/<pid>/fdinfo/`: one entry per open
//! descriptor. `fd/<n>` is a link to what the descriptor names: the path
//! it was opened by (` (deleted)` after a tmpfs file lost its last name,
//! as Linux shows), `pipe:[<ino>]` for a pipe, `/dev/console` for the
//! console; `fdinfo/<n>` is Linux's `pos`, `flags` (octal, `O_CLOEXEC`
//! included), `mnt_id` and `ino` lines.
//!
//! The description is taken (a reference) under the scheduler's lock and
//! looked at after it is let go; the list is gathered into a buffer sized
//! before the lock.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use super::{ProcError, Result};
use crate::fs::file::File;
use crate::fs::vfs;
use crate::mm::kalloc;
use crate::proc::sched::{self, Pid};

/// The open descriptors of `pid`, lowest first.
pub fn list(pid: Pid) -> Result<Vec<u32>> {
    loop {
        let count =
            sched::with_process(pid, |p| p.fds.iter().count()).ok_or(ProcError::NotFound)?;
        let mut out: Vec<u32> = kalloc::try_with_capacity(count)?;
        let fits = sched::with_process(pid, |p| {
            if p.fds.iter().count() > out.capacity() {
                return false;
            }
            out.extend(p.fds.iter().map(|(fd, _)| fd as u32));
            true
        })
        .ok_or(ProcError::NotFound)?;
        // The table grew in between: count again.
        if fits {
            return Ok(out);
        }
    }
}

/// Descriptor `fd` of `pid`: its description and close-on-exec flag.
fn entry(pid: Pid, fd: u32) -> Result<(Arc<File>, bool)> {
    sched::with_process(pid, |p| {
        p.fds
            .get(u64::from(fd))
            .map(|e| (e.file.clone(), e.cloexec))
    })
    .flatten()
    .ok_or(ProcError::NotFound)
}

/// Whether `pid` has descriptor `fd` open.
pub fn is_open(pid: Pid, fd: u32) -> bool {
    // The reference is dropped here, with no lock held.
    entry(pid, fd).is_ok()
}

/// `fd/<n>`'s target.
pub fn target(pid: Pid, fd: u32) -> Result<Vec<u8>> {
    let (file, _) = entry(pid, fd)?;
    let st = file.stat().map_err(|_| ProcError::Invalid)?;
    let mut out = super::Text::default();
    if !file.path().is_empty() {
        kalloc::try_extend_from_slice(&mut out.bytes, file.path())?;
        let deleted = st.st_dev == vfs::DEV_TMPFS
            && st.st_nlink == 0
            && st.st_mode & usercore::fsabi::mode::S_IFMT != usercore::fsabi::mode::S_IFDIR;
        if deleted {
            out.write_str(" (deleted)")?;
        }
    } else if st.st_mode & usercore::fsabi::mode::S_IFMT == usercore::fsabi::mode::S_IFIFO {
        write!(out, "pipe:[{}]", st.st_ino)?;
    } else if st.st_dev == vfs::DEV_DEVFS {
        out.write_str("/dev/console")?;
    } else {
        out.write_str("anon_inode:[unknown]")?;
    }
    drop(file);
    Ok(out.bytes)
}

/// `fdinfo/<n>`'s text.
pub fn info(pid: Pid, fd: u32, out: &mut dyn Write) -> Result {
    let (file, cloexec) = entry(pid, fd)?;
    let st = file.stat().map_err(|_| ProcError::Invalid)?;
    let cloexec = if cloexec {
        crate::fs::file::flags::O_CLOEXEC
    } else {
        0
    };
    writeln!(out, "pos:\t{}", file.pos())?;
    writeln!(out, "flags:\t0{:o}", file.flags() | cloexec)?;
    writeln!(out, "mnt_id:\t{}", st.st_dev)?;
    writeln!(out, "ino:\t{}", st.st_ino)?;
    drop(file);
    Ok(())
}
