//! Calls that change a node's metadata or add names to it: chmod, fchmod,
//! fchmodat, fchmodat2, utimensat (futimens is utimensat on a descriptor),
//! utimes, link, linkat, symlink, symlinkat.
//!
//! One user, root: any mode may be set on any file of a writable file
//! system; read-only ones (the ramdisk, `/proc`, `/dev`) say `EROFS`.

use alloc::vec::Vec;
use usercore::fsabi::{FileType, PATH_MAX};

use super::path::{base_of, parent_of, user_path};
use super::*;
use crate::arch::uapi::Timespec;
use crate::fs::vfs::{self, InodeRef};
use crate::mm::uaccess::read_user;

const AT_FDCWD: i64 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// The node a `*at` call names: `path` from `dirfd` (symbolic links in
/// the last component followed if `follow`), or the descriptor itself for
/// an empty path with `AT_EMPTY_PATH`.
fn node_at(dirfd: u64, path: &[u8], follow: bool, empty_ok: bool) -> Result<InodeRef, Errno> {
    if path.is_empty() && empty_ok {
        if dirfd as i32 as i64 == AT_FDCWD {
            let cwd = crate::proc::fd::cwd()?;
            return Ok(vfs::resolve(b"/", &cwd, true)?.inode);
        }
        return fs::file(dirfd)?.ops().inode().ok_or(Errno::EPERM);
    }
    let base = base_of(dirfd, path)?;
    Ok(vfs::resolve(&base, path, follow)?.inode)
}

pub(super) fn fchmodat2(dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let node = node_at(
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    // Linux: a symbolic link's mode cannot be changed.
    if node.file_type() == FileType::Symlink {
        return Err(Errno::EOPNOTSUPP);
    }
    node.chmod(mode as u32 & 0o7777)?;
    Ok(0)
}

pub(super) fn fchmodat(dirfd: u64, path: u64, mode: u64) -> SysResult {
    fchmodat2(dirfd, path, mode, 0)
}

pub(super) fn chmod(path: u64, mode: u64) -> SysResult {
    fchmodat2(AT_FDCWD as u64, path, mode, 0)
}

pub(super) fn fchmod(fd_num: u64, mode: u64) -> SysResult {
    let file = fs::file(fd_num)?;
    if file.flags() & crate::fs::file::flags::O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let node = file.ops().inode().ok_or(Errno::EPERM)?;
    node.chmod(mode as u32 & 0o7777)?;
    Ok(0)
}

/// One `utimensat` time: `Some(ns)` to set (now for `UTIME_NOW`), `None`
/// for `UTIME_OMIT`.
fn time_of(ts: &Timespec, now: i64) -> Result<Option<i64>, Errno> {
    match ts.tv_nsec {
        UTIME_NOW => Ok(Some(now)),
        UTIME_OMIT => Ok(None),
        ns if (0..1_000_000_000).contains(&ns) => Ok(Some(
            ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(ns),
        )),
        _ => Err(Errno::EINVAL),
    }
}

/// Sets `node`'s times (`None` in both: nothing changes, as Linux).
fn set_times(node: &InodeRef, times: (Option<i64>, Option<i64>)) -> SysResult {
    if times == (None, None) {
        return Ok(0);
    }
    node.set_times(times.0, times.1)?;
    Ok(0)
}

pub(super) fn utimensat(dirfd: u64, path: u64, times: u64, flags: u64) -> SysResult {
    let now = crate::time::realtime_ns();
    let times = if times == 0 {
        (Some(now), Some(now))
    } else {
        let a: Timespec = read_user(times)?;
        let m: Timespec = read_user(times + 16)?;
        (time_of(&a, now)?, time_of(&m, now)?)
    };
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    if path == 0 {
        // futimens: the descriptor itself (Linux: a NULL path with
        // AT_FDCWD is EFAULT).
        if dirfd as i32 as i64 == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        let file = fs::file(dirfd)?;
        let node = file.ops().inode().ok_or(Errno::EPERM)?;
        return set_times(&node, times);
    }
    let path = user_path(path)?;
    let node = node_at(
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    set_times(&node, times)
}

/// `utimes(path, times)`: `struct timeval[2]`, or now for NULL.
pub(super) fn utimes(path: u64, times: u64) -> SysResult {
    let now = crate::time::realtime_ns();
    let times = if times == 0 {
        (Some(now), Some(now))
    } else {
        let mut tv = [0i64; 4];
        crate::mm::uaccess::read_user_slice(&mut tv, times)?;
        let one = |sec: i64, usec: i64| {
            if (0..1_000_000).contains(&usec) {
                Ok(Some(
                    sec.saturating_mul(1_000_000_000)
                        .saturating_add(usec * 1000),
                ))
            } else {
                Err(Errno::EINVAL)
            }
        };
        (one(tv[0], tv[1])?, one(tv[2], tv[3])?)
    };
    let path = user_path(path)?;
    let node = node_at(AT_FDCWD as u64, &path, true, false)?;
    node.set_times(times.0, times.1)?;
    Ok(0)
}

pub(super) fn linkat(olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = user_path(old)?;
    let new = user_path(new)?;
    let target = node_at(
        olddir,
        &old,
        flags & AT_SYMLINK_FOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    if target.file_type() == FileType::Directory {
        return Err(Errno::EPERM);
    }
    let (dir, name) = parent_of(newdir, &new, Errno::EEXIST)?;
    if usercore::fsabi::wants_directory(&new) {
        return Err(Errno::ENOENT);
    }
    if vfs::is_mount_point(&vfs::join(&dir.path, name)?) || dir.inode.lookup(name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if target.stat().st_dev != dir.inode.stat().st_dev {
        return Err(Errno::EXDEV);
    }
    dir.inode.link(name, &target)?;
    Ok(0)
}

pub(super) fn link(old: u64, new: u64) -> SysResult {
    linkat(AT_FDCWD as u64, old, AT_FDCWD as u64, new, 0)
}

pub(super) fn symlinkat(target: u64, newdir: u64, new: u64) -> SysResult {
    // The target is any string (not walked now); at most PATH_MAX - 1.
    let target: Vec<u8> = fs::user_string(target, PATH_MAX - 1)?;
    let new = user_path(new)?;
    let (dir, name) = parent_of(newdir, &new, Errno::EEXIST)?;
    if vfs::is_mount_point(&vfs::join(&dir.path, name)?) || dir.inode.lookup(name).is_ok() {
        return Err(Errno::EEXIST);
    }
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    dir.inode.symlink(name, &target)?;
    Ok(0)
}

pub(super) fn symlink(target: u64, new: u64) -> SysResult {
    symlinkat(target, AT_FDCWD as u64, new)
}
