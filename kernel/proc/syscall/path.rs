//! Calls that name files by path: open, openat, creat, the stat family
//! (stat, lstat, fstat, newfstatat, statx), getdents64, mkdir, mkdirat,
//! unlink, unlinkat, rmdir, rename, renameat, renameat2, getcwd, chdir,
//! fchdir, access, faccessat, faccessat2, readlink, readlinkat, umask,
//! truncate, ftruncate, fsync, fdatasync.
//!
//! Paths are walked by `fs::vfs` from the process's working directory or
//! a directory descriptor (`dirfd`, `AT_FDCWD` for the working directory).

use alloc::vec::Vec;
use usercore::fsabi::{FileType, PATH_MAX};

use super::*;
use crate::arch::uapi::{Stat, Statx, StatxTimestamp};
use crate::fs::file::flags::*;
use crate::fs::vfs::{self, Found};
use crate::mm::kalloc;
use crate::mm::uaccess::{copy_to_user, write_user};
use crate::proc::fd;

const AT_FDCWD: i64 = -100;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EACCESS: u64 = 0x200;
const AT_NO_AUTOMOUNT: u64 = 0x800;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;

/// A path argument, copied in (`ENAMETOOLONG` at `PATH_MAX`).
pub(super) fn user_path(addr: u64) -> Result<Vec<u8>, Errno> {
    fs::user_string(addr, PATH_MAX - 1)
}

/// Where a relative path starts: the working directory (`AT_FDCWD`) or
/// directory descriptor `dirfd`'s path. Absolute paths ignore it.
pub(super) fn base_of(dirfd: u64, path: &[u8]) -> Result<Vec<u8>, Errno> {
    // An empty path is ENOENT (from the walk), whatever `dirfd` is.
    if path.starts_with(b"/") || path.is_empty() {
        return Ok(Vec::new());
    }
    if dirfd as i32 as i64 == AT_FDCWD {
        return Ok(fd::cwd()?);
    }
    let file = fs::file(dirfd)?;
    if file.stat()?.st_mode & usercore::fsabi::mode::S_IFMT != usercore::fsabi::mode::S_IFDIR
        || file.path().is_empty()
    {
        return Err(Errno::ENOTDIR);
    }
    Ok(kalloc::try_to_vec(file.path())?)
}

pub(super) fn umask() -> u32 {
    sched::thread::with_current_group(|p| p.fds.umask)
}

pub(super) fn openat(dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    let path = user_path(path)?;
    let flags = flags as u32;
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EOPNOTSUPP);
    }
    let base = base_of(dirfd, &path)?;
    let perm = mode as u32 & 0o7777 & !umask();
    let file = vfs::open(&base, &path, flags, perm)?;
    Ok(fd::install(file, flags & O_CLOEXEC != 0)? as u64)
}

pub(super) fn open(path: u64, flags: u64, mode: u64) -> SysResult {
    openat(AT_FDCWD as u64, path, flags, mode)
}

pub(super) fn creat(path: u64, mode: u64) -> SysResult {
    open(path, (O_CREAT | O_WRONLY | O_TRUNC) as u64, mode)
}

/// What `fstatat` with `flags` finds: the descriptor itself for an empty
/// path with `AT_EMPTY_PATH`, else the path's node.
fn stat_at(dirfd: u64, path: u64, flags: u64) -> Result<Stat, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 as i64 == AT_FDCWD {
            let cwd = fd::cwd()?;
            return Ok(vfs::resolve(b"/", &cwd, true)?.inode.stat());
        }
        return fs::file(dirfd)?.stat();
    }
    let base = base_of(dirfd, &path)?;
    Ok(
        vfs::resolve(&base, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
            .inode
            .stat(),
    )
}

pub(super) fn stat(path: u64, buf: u64) -> SysResult {
    let st = stat_at(AT_FDCWD as u64, path, 0)?;
    write_user(buf, &st)?;
    Ok(0)
}

pub(super) fn lstat(path: u64, buf: u64) -> SysResult {
    let st = stat_at(AT_FDCWD as u64, path, AT_SYMLINK_NOFOLLOW)?;
    write_user(buf, &st)?;
    Ok(0)
}

pub(super) fn fstat(fd_num: u64, buf: u64) -> SysResult {
    let st = fs::file(fd_num)?.stat()?;
    write_user(buf, &st)?;
    Ok(0)
}

pub(super) fn newfstatat(dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let st = stat_at(dirfd, path, flags)?;
    write_user(buf, &st)?;
    Ok(0)
}

/// `STATX_BASIC_STATS`: every field of `struct stat`.
const STATX_BASIC_STATS: u32 = 0x7ff;

pub(super) fn statx(dirfd: u64, path: u64, flags: u64, mask: u64, buf: u64) -> SysResult {
    // Bit 31 of the mask is reserved (Linux: EINVAL).
    if mask & 0x8000_0000 != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(dirfd, path, flags)?;
    let time = |sec: i64, nsec: i64| StatxTimestamp {
        tv_sec: sec,
        tv_nsec: nsec as u32,
        reserved: 0,
    };
    let out = Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: st.st_blksize as u32,
        stx_attributes: 0,
        stx_nlink: st.st_nlink as u32,
        stx_uid: st.st_uid,
        stx_gid: st.st_gid,
        stx_mode: st.st_mode as u16,
        spare0: 0,
        stx_ino: st.st_ino,
        stx_size: st.st_size as u64,
        stx_blocks: st.st_blocks as u64,
        stx_attributes_mask: 0,
        stx_atime: time(st.st_atime, st.st_atime_nsec),
        stx_btime: time(0, 0),
        stx_ctime: time(st.st_ctime, st.st_ctime_nsec),
        stx_mtime: time(st.st_mtime, st.st_mtime_nsec),
        stx_rdev_major: (st.st_rdev >> 8) as u32 & 0xfff,
        stx_rdev_minor: (st.st_rdev & 0xff) as u32,
        stx_dev_major: (st.st_dev >> 8) as u32 & 0xfff,
        stx_dev_minor: (st.st_dev & 0xff) as u32,
        spare2: [0; 14],
    };
    write_user(buf, &out)?;
    Ok(0)
}

pub(super) fn getdents64(fd_num: u64, buf: u64, len: u64) -> SysResult {
    let file = fs::file(fd_num)?;
    let len = len.min(i32::MAX as u64) as usize;
    Ok(file.ops().getdents(&file, buf, len)? as u64)
}

/// The parent directory of `path` and its last component, refusing the
/// names `.`, `..` and `/` with `dot`.
pub(super) fn parent_of(dirfd: u64, path: &[u8], dot: Errno) -> Result<(Found, &[u8]), Errno> {
    let base = base_of(dirfd, path)?;
    let (dir, name) = vfs::resolve_parent(&base, path)?;
    if name.is_empty() || name == b"." || name == b".." {
        return Err(dot);
    }
    Ok((dir, name))
}

pub(super) fn mkdirat(dirfd: u64, path: u64, mode: u64) -> SysResult {
    let path = user_path(path)?;
    let (dir, name) = parent_of(dirfd, &path, Errno::EEXIST)?;
    if vfs::is_mount_point(&vfs::join(&dir.path, name)?) || dir.inode.lookup(name).is_ok() {
        return Err(Errno::EEXIST);
    }
    let perm = mode as u32 & 0o7777 & !umask();
    dir.inode.create(name, FileType::Directory, perm)?;
    Ok(0)
}

pub(super) fn mkdir(path: u64, mode: u64) -> SysResult {
    mkdirat(AT_FDCWD as u64, path, mode)
}

fn remove(dirfd: u64, path: &[u8], dir_wanted: bool) -> SysResult {
    let base = base_of(dirfd, path)?;
    let (dir, name) = vfs::resolve_parent(&base, path)?;
    if dir_wanted {
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            b"" => return Err(Errno::EBUSY),
            _ => {}
        }
    } else if name.is_empty() || name == b"." || name == b".." {
        return Err(Errno::EISDIR);
    }
    let full = vfs::join(&dir.path, name)?;
    if vfs::is_mount_point(&full) {
        return Err(Errno::EBUSY);
    }
    let node = dir.inode.lookup(name)?;
    match (node.file_type() == FileType::Directory, dir_wanted) {
        (true, false) => return Err(Errno::EISDIR),
        (false, true) => return Err(Errno::ENOTDIR),
        _ => {}
    }
    if !dir_wanted && usercore::fsabi::wants_directory(path) {
        return Err(Errno::ENOTDIR);
    }
    dir.inode.unlink(name, dir_wanted)?;
    // The working directory may be gone now; it stays as a path.
    Ok(0)
}

pub(super) fn unlinkat(dirfd: u64, path: u64, flags: u64) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    remove(dirfd, &path, flags & AT_REMOVEDIR != 0)
}

pub(super) fn unlink(path: u64) -> SysResult {
    unlinkat(AT_FDCWD as u64, path, 0)
}

pub(super) fn rmdir(path: u64) -> SysResult {
    unlinkat(AT_FDCWD as u64, path, AT_REMOVEDIR)
}

const RENAME_NOREPLACE: u64 = 1;

pub(super) fn renameat2(olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL);
    }
    let old = user_path(old)?;
    let new = user_path(new)?;
    let (from, old_name) = parent_of(olddir, &old, Errno::EBUSY)?;
    let (to, new_name) = parent_of(newdir, &new, Errno::EBUSY)?;
    let old_full = vfs::join(&from.path, old_name)?;
    let new_full = vfs::join(&to.path, new_name)?;
    if vfs::is_mount_point(&old_full) || vfs::is_mount_point(&new_full) {
        return Err(Errno::EBUSY);
    }
    let node = from.inode.lookup(old_name)?;
    let is_dir = node.file_type() == FileType::Directory;
    if !is_dir && (usercore::fsabi::wants_directory(&old) || usercore::fsabi::wants_directory(&new))
    {
        return Err(Errno::ENOTDIR);
    }
    // A directory cannot move into itself or below itself.
    if is_dir
        && new_full.starts_with(&old_full)
        && new_full.get(old_full.len()).is_some_and(|&b| b == b'/')
    {
        return Err(Errno::EINVAL);
    }
    if old_full == new_full {
        return Ok(0);
    }
    from.inode
        .rename(old_name, &to.inode, new_name, flags & RENAME_NOREPLACE != 0)?;
    Ok(0)
}

pub(super) fn renameat(olddir: u64, old: u64, newdir: u64, new: u64) -> SysResult {
    renameat2(olddir, old, newdir, new, 0)
}

pub(super) fn rename(old: u64, new: u64) -> SysResult {
    renameat2(AT_FDCWD as u64, old, AT_FDCWD as u64, new, 0)
}

pub(super) fn getcwd(buf: u64, size: u64) -> SysResult {
    let cwd = fd::cwd()?;
    if (size as usize) < cwd.len() + 1 {
        return Err(Errno::ERANGE);
    }
    copy_to_user(buf, &cwd)?;
    copy_to_user(buf + cwd.len() as u64, &[0])?;
    Ok(cwd.len() as u64 + 1)
}

fn set_cwd(path: Vec<u8>) {
    let old = sched::thread::with_current_group(|p| core::mem::replace(&mut p.fds.cwd, path));
    drop(old);
}

pub(super) fn chdir(path: u64) -> SysResult {
    let path = user_path(path)?;
    let cwd = fd::cwd()?;
    let found = vfs::resolve(&cwd, &path, true)?;
    if found.inode.file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    set_cwd(found.path);
    Ok(0)
}

pub(super) fn fchdir(fd_num: u64) -> SysResult {
    let file = fs::file(fd_num)?;
    let is_dir = file
        .ops()
        .inode()
        .is_some_and(|i| i.file_type() == FileType::Directory);
    if !is_dir || file.path().is_empty() {
        return Err(Errno::ENOTDIR);
    }
    set_cwd(kalloc::try_to_vec(file.path())?);
    Ok(0)
}

const R_OK: u64 = 4;
const W_OK: u64 = 2;
const X_OK: u64 = 1;

pub(super) fn faccessat2(dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if mode & !(R_OK | W_OK | X_OK) != 0
        || flags & !(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(dirfd, path, flags & !AT_EACCESS)?;
    // One user, root: reading and writing are always allowed, except
    // writing on a read-only file system; executing needs an x bit
    // (directories can always be searched).
    if mode & W_OK != 0 && st.st_dev == vfs::DEV_RAMFS {
        return Err(Errno::EROFS);
    }
    let is_dir = st.st_mode & usercore::fsabi::mode::S_IFMT == usercore::fsabi::mode::S_IFDIR;
    if mode & X_OK != 0 && !is_dir && st.st_mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

pub(super) fn faccessat(dirfd: u64, path: u64, mode: u64) -> SysResult {
    faccessat2(dirfd, path, mode, 0)
}

pub(super) fn access(path: u64, mode: u64) -> SysResult {
    faccessat2(AT_FDCWD as u64, path, mode, 0)
}

pub(super) fn readlinkat(dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let base = base_of(dirfd, &path)?;
    let found = vfs::resolve(&base, &path, false)?;
    let target = found.inode.readlink()?;
    let n = target.len().min(size as usize);
    copy_to_user(buf, &target[..n])?;
    Ok(n as u64)
}

pub(super) fn readlink(path: u64, buf: u64, size: u64) -> SysResult {
    readlinkat(AT_FDCWD as u64, path, buf, size)
}

pub(super) fn umask_call(mask: u64) -> SysResult {
    let old = sched::thread::with_current_group(|p| {
        core::mem::replace(&mut p.fds.umask, mask as u32 & 0o777)
    });
    Ok(old as u64)
}

pub(super) fn truncate(path: u64, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let cwd = fd::cwd()?;
    let found = vfs::resolve(&cwd, &path, true)?;
    found.inode.truncate(len)?;
    Ok(0)
}

pub(super) fn ftruncate(fd_num: u64, len: u64) -> SysResult {
    let file = fs::file(fd_num)?;
    if (len as i64) < 0 || !file.writable() {
        return Err(Errno::EINVAL);
    }
    file.ops().truncate(&file, len)?;
    Ok(0)
}

pub(super) fn fsync(fd_num: u64) -> SysResult {
    // Nothing is written anywhere but memory: done.
    fs::file(fd_num)?;
    Ok(0)
}
