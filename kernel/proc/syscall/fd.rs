//! Descriptor calls: dup, dup2, dup3, fcntl.

use super::*;
use crate::fs::file::flags::O_CLOEXEC;
use crate::proc::fd::{FdEntry, MAX_FDS};

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;

/// `fcntl(F_DUPFD)` and `dup`: the lowest free descriptor at or above
/// `min`, naming the same description (close-on-exec as asked).
fn dup_from(fd: u64, min: u64, cloexec: bool) -> SysResult {
    sched::thread::with_current_group(|p| {
        let file = p.fds.get(fd).ok_or(Errno::EBADF)?.file.clone();
        // Linux: a minimum past RLIMIT_NOFILE is EINVAL.
        let min = usize::try_from(min)
            .ok()
            .filter(|&m| m < MAX_FDS)
            .ok_or(Errno::EINVAL)?;
        Ok(p.fds.install_from(min, FdEntry { file, cloexec })? as u64)
    })
}

pub(super) fn dup(fd: u64) -> SysResult {
    dup_from(fd, 0, false)
}

/// `dup3` (and `dup2` with `flags` 0 and `same_ok`): `new` names `old`'s
/// description; what `new` named before is closed (dropped outside the
/// scheduler's lock).
fn dup_to(old: u64, new: u64, cloexec: bool) -> SysResult {
    let replaced = sched::thread::with_current_group(|p| {
        let file = p.fds.get(old).ok_or(Errno::EBADF)?.file.clone();
        let new = usize::try_from(new)
            .ok()
            .filter(|&n| n < MAX_FDS)
            .ok_or(Errno::EBADF)?;
        Ok::<_, Errno>(p.fds.install_at(new, FdEntry { file, cloexec })?)
    })?;
    drop(replaced);
    Ok(new)
}

pub(super) fn dup2(old: u64, new: u64) -> SysResult {
    if old == new {
        // Linux: the same descriptor is returned if it is open.
        return sched::thread::with_current_group(|p| {
            p.fds.get(old).map(|_| old).ok_or(Errno::EBADF)
        });
    }
    dup_to(old, new, false)
}

pub(super) fn dup3(old: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(O_CLOEXEC as u64) != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(old, new, flags != 0)
}

pub(super) fn fcntl(fd: u64, cmd: u64, arg: u64) -> SysResult {
    match cmd {
        F_DUPFD => dup_from(fd, arg, false),
        F_DUPFD_CLOEXEC => dup_from(fd, arg, true),
        F_GETFD => sched::thread::with_current_group(|p| {
            let e = p.fds.get(fd).ok_or(Errno::EBADF)?;
            Ok(if e.cloexec { FD_CLOEXEC } else { 0 })
        }),
        F_SETFD => sched::thread::with_current_group(|p| {
            let e = p.fds.get_mut(fd).ok_or(Errno::EBADF)?;
            e.cloexec = arg & FD_CLOEXEC != 0;
            Ok(0)
        }),
        F_GETFL => Ok(fs::file(fd)?.flags() as u64),
        F_SETFL => {
            fs::file(fd)?.set_status_flags(arg as u32);
            Ok(0)
        }
        _ => {
            // Other commands on a bad descriptor are EBADF first.
            fs::file(fd)?;
            Err(Errno::EINVAL)
        }
    }
}
