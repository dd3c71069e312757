//! The file-system tree: nodes ([`Inode`]), the mount table, and the path
//! walk.
//!
//! A file system is a tree of [`Inode`]s; the mount table says which tree
//! answers below which absolute path (`/` the ramdisk, `/tmp` a tmpfs,
//! `/dev` the devices, `/proc` whatever [`mount`] is given there). A path
//! is walked from the root one component at a time, keeping the stack of
//! directories passed, so `..` goes back to the directory the walk came
//! from, across mount points too. Symbolic links are followed (at most
//! [`MAX_LINKS`] of them per walk, then `ELOOP`); a process's working
//! directory is an absolute path, walked again when used.
//!
//! Every allocation a walk makes (the path, the stack) is fallible.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use usercore::fsabi::{self, FileType, NAME_MAX, PATH_MAX};

use super::file::{self, File, FileOps, Stat};
use crate::arch::sync::IrqMutex;
use crate::mm::kalloc;
use crate::proc::syscall::Errno;

pub type InodeRef = Arc<dyn Inode>;

/// `st_dev` of each file system (major 0, like Linux's anonymous devices).
pub const DEV_RAMFS: u64 = 1;
pub const DEV_TMPFS: u64 = 2;
pub const DEV_DEVFS: u64 = 3;
pub const DEV_PROCFS: u64 = 4;
pub const DEV_PIPEFS: u64 = 5;

/// A `struct stat` with the fields every node has. The times are the
/// boot time (a node with times of its own, tmpfs's, sets them after).
pub fn stat_for(dev: u64, ino: u64, kind: FileType, perm: u32, size: u64, rdev: u64) -> Stat {
    let boot = crate::time::boot_wall_ns();
    let (sec, nsec) = (
        boot.div_euclid(1_000_000_000),
        boot.rem_euclid(1_000_000_000),
    );
    Stat {
        st_dev: dev,
        st_ino: ino,
        st_nlink: if kind == FileType::Directory { 2 } else { 1 },
        st_mode: kind.mode_bits() | (perm & 0o7777),
        st_uid: 0,
        st_gid: 0,
        pad0: 0,
        st_rdev: rdev,
        st_size: size as i64,
        st_blksize: 4096,
        st_blocks: (size.div_ceil(512)) as i64,
        st_atime: sec,
        st_atime_nsec: nsec,
        st_mtime: sec,
        st_mtime_nsec: nsec,
        st_ctime: sec,
        st_ctime_nsec: nsec,
        unused: [0; 3],
    }
}

/// A directory entry as [`Inode::entry`] gives it.
pub struct DirEntry {
    name: [u8; NAME_MAX],
    len: u8,
    pub ino: u64,
    pub kind: FileType,
}

impl DirEntry {
    /// An entry named `name` (at most `NAME_MAX` bytes: longer is cut).
    pub fn new(name: &[u8], ino: u64, kind: FileType) -> DirEntry {
        let len = name.len().min(NAME_MAX);
        let mut buf = [0; NAME_MAX];
        buf[..len].copy_from_slice(&name[..len]);
        DirEntry {
            name: buf,
            len: len as u8,
            ino,
            kind,
        }
    }

    pub fn name(&self) -> &[u8] {
        &self.name[..self.len as usize]
    }
}

/// A node of a file-system tree: a file, a directory, a device, a link.
/// Every method but `file_type`, `stat` and `as_any` has a default: what
/// Linux answers when the node does not support it. A file system (tmpfs,
/// procfs, ...) implements the ones it supports.
pub trait Inode: Send + Sync {
    fn file_type(&self) -> FileType;

    fn stat(&self) -> Stat;

    /// For downcasting by a file system that needs its own node type back
    /// (`rename` between two of its directories).
    fn as_any(&self) -> &dyn Any;

    /// The child `name` of this directory (`name` is never `.` or `..`).
    fn lookup(&self, _name: &[u8]) -> Result<InodeRef, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// This directory's entry number `index` (`.` and `..` not counted),
    /// `None` past the last.
    fn entry(&self, _index: usize) -> Result<Option<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Creates `name` in this directory: a regular file or a directory.
    fn create(&self, _name: &[u8], _kind: FileType, _perm: u32) -> Result<InodeRef, Errno> {
        Err(self.refuse_change())
    }

    /// Removes `name` from this directory: `dir` says whether the caller
    /// wants a directory (`rmdir`) or anything else (`unlink`).
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(self.refuse_change())
    }

    /// Moves `old` in this directory to `new` in `new_dir` (replacing what
    /// is there, as `rename` does).
    fn rename(
        &self,
        _old: &[u8],
        _new_dir: &InodeRef,
        _new: &[u8],
        _noreplace: bool,
    ) -> Result<(), Errno> {
        Err(self.refuse_change())
    }

    /// A symbolic link's target.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// Adds `name` in this directory for `target` (a hard link).
    fn link(&self, _name: &[u8], _target: &InodeRef) -> Result<(), Errno> {
        Err(self.refuse_change())
    }

    /// Creates the symbolic link `name` -> `target` in this directory.
    fn symlink(&self, _name: &[u8], _target: &[u8]) -> Result<(), Errno> {
        Err(self.refuse_change())
    }

    /// `chmod`: sets the permission bits (`0o7777`).
    fn chmod(&self, _mode: u32) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    /// `utimensat`: sets the access and modification times (nanoseconds
    /// since the epoch; `None` leaves one as it is) and the change time
    /// to now.
    fn set_times(&self, _atime: Option<i64>, _mtime: Option<i64>) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    /// Reads from byte `offset` into user `buf` (regular files).
    fn read_at(&self, _offset: u64, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Reads from byte `offset` into kernel memory `out` (regular files):
    /// for the kernel's own readers (the shell, [`read_file`]).
    fn read_kernel(&self, _offset: u64, _out: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Writes at byte `offset` from user `buf` (regular files).
    fn write_at(&self, _offset: u64, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Sets the size (regular files).
    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(match self.file_type() {
            FileType::Directory => Errno::EISDIR,
            _ => Errno::EINVAL,
        })
    }

    /// The page-cache object behind it, for `mmap`.
    fn mmap_object(&self) -> Result<file::MmapObject, Errno> {
        Err(Errno::ENODEV)
    }

    /// The operations of a new open file description of this node: by
    /// default regular files and directories through the methods above.
    /// Devices and generated files (procfs) give their own.
    fn open(&self, me: &InodeRef, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(kalloc::try_arc(InodeFile { inode: me.clone() })? as Arc<dyn FileOps>)
    }

    /// What a change to this node's children is refused with: `ENOTDIR`
    /// for a non-directory, `EROFS` for a read-only directory.
    fn refuse_change(&self) -> Errno {
        match self.file_type() {
            FileType::Directory => Errno::EROFS,
            _ => Errno::ENOTDIR,
        }
    }
}

/// The open file of a regular file or directory node.
pub struct InodeFile {
    pub inode: InodeRef,
}

impl FileOps for InodeFile {
    fn read(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        if self.inode.file_type() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        let _pos = file.lock_pos();
        let n = self.inode.read_at(file.pos(), buf, len)?;
        file.set_pos(file.pos() + n as u64);
        Ok(n)
    }

    fn write(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        let _pos = file.lock_pos();
        let at = if file.append() {
            self.inode.stat().st_size as u64
        } else {
            file.pos()
        };
        let n = self.inode.write_at(at, buf, len)?;
        file.set_pos(at + n as u64);
        Ok(n)
    }

    fn pread(&self, _file: &File, buf: u64, len: usize, offset: u64) -> Result<usize, Errno> {
        if self.inode.file_type() == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        self.inode.read_at(offset, buf, len)
    }

    fn pwrite(&self, file: &File, buf: u64, len: usize, offset: u64) -> Result<usize, Errno> {
        // Linux: O_APPEND makes pwrite append, whatever the offset.
        let at = if file.append() {
            self.inode.stat().st_size as u64
        } else {
            offset
        };
        self.inode.write_at(at, buf, len)
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(self.inode.stat())
    }

    fn seek(&self, file: &File, offset: i64, whence: u32) -> Result<u64, Errno> {
        let size = match self.inode.file_type() {
            FileType::Directory => 0,
            _ => self.inode.stat().st_size as u64,
        };
        let _pos = file.lock_pos();
        let new = file::seek_position(file.pos(), size, offset, whence)?;
        if new > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        file.set_pos(new);
        Ok(new)
    }

    fn getdents(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        let _pos = file.lock_pos();
        getdents(&self.inode, file, buf, len)
    }

    fn truncate(&self, _file: &File, size: u64) -> Result<(), Errno> {
        self.inode.truncate(size)
    }

    fn inode(&self) -> Option<InodeRef> {
        Some(self.inode.clone())
    }

    fn mmap_object(&self, _file: &File) -> Result<file::MmapObject, Errno> {
        self.inode.mmap_object()
    }
}

/// `getdents64` of directory `dir` open as `file`: the offset is the next
/// entry's number (0 `.`, 1 `..`, then the directory's own, then the
/// mount points directly below it that it does not list itself).
fn getdents(dir: &InodeRef, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
    if dir.file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    // Records are built in a bounce buffer, then copied out in one go.
    let mut out = kalloc::try_zeroed(len.min(32 * 1024))?;
    let mut used = 0;
    let mut index = file.pos() as usize;
    let mounts = mounts_below(file.path())?;
    loop {
        let entry = match index {
            0 => Some(DirEntry::new(b".", dir.stat().st_ino, FileType::Directory)),
            1 => Some(DirEntry::new(b"..", 1, FileType::Directory)),
            i => match dir.entry(i - 2)? {
                Some(e) => Some(e),
                None => {
                    // Past the directory's own entries: count them once.
                    let own = count_entries(dir)?;
                    mounts
                        .iter()
                        .filter(|m| dir.lookup(m).is_err())
                        .nth(i - 2 - own)
                        .map(|m| DirEntry::new(m, 1, FileType::Directory))
                }
            },
        };
        let Some(entry) = entry else { break };
        match fsabi::put_dirent64(
            &mut out[used..],
            entry.ino,
            index as i64 + 1,
            entry.kind,
            entry.name(),
        ) {
            Some(n) => used += n,
            None if used == 0 => return Err(Errno::EINVAL),
            None => break,
        }
        index += 1;
    }
    crate::mm::uaccess::copy_to_user(buf, &out[..used])?;
    file.set_pos(index as u64);
    Ok(used)
}

fn count_entries(dir: &InodeRef) -> Result<usize, Errno> {
    let mut n = 0;
    while dir.entry(n)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// The mount table: absolute path -> the root of the tree mounted there.
static MOUNTS: IrqMutex<Vec<(Vec<u8>, InodeRef)>> = IrqMutex::new(Vec::new());

/// Mounts the tree rooted at `root` at absolute path `path` (`/` for the
/// root file system); a second mount at the same path replaces the first.
/// `/proc`'s file system plugs in here.
pub fn mount(path: &[u8], root: InodeRef) -> Result<(), Errno> {
    let path = kalloc::try_to_vec(path)?;
    let mut mounts = MOUNTS.lock();
    if let Some(m) = mounts.iter_mut().find(|m| m.0 == path) {
        m.1 = root;
        return Ok(());
    }
    kalloc::try_push(&mut mounts, (path, root))?;
    Ok(())
}

/// Takes the tree mounted at `path` off the table (it is returned, to be
/// dropped by the caller); `None` if nothing is mounted there.
pub fn unmount(path: &[u8]) -> Option<InodeRef> {
    let mut mounts = MOUNTS.lock();
    let at = mounts.iter().position(|m| m.0 == path)?;
    Some(mounts.remove(at).1)
}

fn mounted_at(path: &[u8]) -> Option<InodeRef> {
    MOUNTS
        .lock()
        .iter()
        .find(|m| m.0 == path)
        .map(|m| m.1.clone())
}

/// Names of the mount points directly below `dir` (an absolute path).
fn mounts_below(dir: &[u8]) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    let mounts = MOUNTS.lock();
    for (path, _) in mounts.iter() {
        if path.as_slice() == b"/" {
            continue;
        }
        let (parent, name) = fsabi::split_last(path);
        let parent = if parent.is_empty() {
            b"/".as_slice()
        } else {
            parent
        };
        if parent == dir || (dir.is_empty() && parent == b"/") {
            kalloc::try_push(&mut out, kalloc::try_to_vec(name)?)?;
        }
    }
    Ok(out)
}

/// The root of the whole tree.
pub fn root() -> Result<InodeRef, Errno> {
    mounted_at(b"/").ok_or(Errno::ENOENT)
}

/// Symbolic links one walk follows at most (Linux's `MAXSYMLINKS`).
pub const MAX_LINKS: usize = 40;

/// A node found by a walk, with the absolute path it was found by.
pub struct Found {
    pub inode: InodeRef,
    /// Normalised: `/`, or `/a/b` (no `.`, `..`, repeated or trailing `/`).
    pub path: Vec<u8>,
}

/// Where a relative path starts: the absolute path of a directory (the
/// working directory, or a directory descriptor's path).
pub type Base<'a> = &'a [u8];

/// Walks `path` (absolute, or relative to `base`), following a symbolic
/// link in the last component if `follow`. An empty path is `ENOENT`.
pub fn resolve(base: Base, path: &[u8], follow: bool) -> Result<Found, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let found = walk(base, path, follow, &mut 0)?;
    if fsabi::wants_directory(path) && found.inode.file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(found)
}

/// The directory that would hold `path`'s last component, and that
/// component (for calls that create, remove or rename a name). The last
/// component may be `.` or `..` or empty (`/`): the caller decides.
pub fn resolve_parent<'p>(base: Base, path: &'p [u8]) -> Result<(Found, &'p [u8]), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let (parent, name) = fsabi::split_last(path);
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let parent = if parent.is_empty() {
        b".".as_slice()
    } else {
        parent
    };
    let dir = walk(base, parent, true, &mut 0)?;
    if dir.inode.file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok((dir, name))
}

fn walk(base: Base, path: &[u8], follow: bool, links: &mut usize) -> Result<Found, Errno> {
    let root = root()?;
    // The directories passed (for `..`) and the path so far.
    let mut stack: Vec<InodeRef> = Vec::new();
    let mut at = Found {
        inode: root,
        path: kalloc::try_to_vec(b"/")?,
    };
    let start: &[u8] = if path.starts_with(b"/") { b"" } else { base };
    let mut parts = fsabi::components(start)
        .chain(fsabi::components(path))
        .peekable();
    while let Some(name) = parts.next() {
        let last = parts.peek().is_none();
        if name == b"." {
            if at.inode.file_type() != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            continue;
        }
        if name == b".." {
            if at.inode.file_type() != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            if let Some(up) = stack.pop() {
                at.inode = up;
                let (parent, _) = fsabi::split_last(&at.path);
                let keep = if parent.is_empty() { 1 } else { parent.len() };
                at.path.truncate(keep);
            }
            continue;
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if at.inode.file_type() != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let mut child_path = Vec::new();
        kalloc::try_reserve(&mut child_path, at.path.len() + 1 + name.len())?;
        child_path.extend_from_slice(&at.path);
        if child_path != b"/" {
            child_path.push(b'/');
        }
        child_path.extend_from_slice(name);
        let child = match mounted_at(&child_path) {
            Some(mounted) => mounted,
            None => at.inode.lookup(name)?,
        };
        if child.file_type() == FileType::Symlink && (!last || follow) {
            *links += 1;
            if *links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            // Walk the target from this directory, then the rest of the
            // path from where it leads.
            let target = child.readlink()?;
            let mut rest = Vec::new();
            kalloc::try_extend_from_slice(&mut rest, &target)?;
            for part in parts {
                kalloc::try_push(&mut rest, b'/')?;
                kalloc::try_extend_from_slice(&mut rest, part)?;
            }
            return walk(&at.path, &rest, follow, links);
        }
        kalloc::try_push(&mut stack, core::mem::replace(&mut at.inode, child))?;
        at.path = child_path;
    }
    Ok(at)
}

/// Opens `path` (relative to `base`) as `open(2)` with `flags` and
/// creation mode `perm` (already masked by the umask) does.
pub fn open(base: Base, path: &[u8], flags: u32, perm: u32) -> Result<Arc<File>, Errno> {
    use file::flags::*;
    let follow = flags & O_NOFOLLOW == 0;
    let found = if flags & O_CREAT != 0 {
        let (dir, name) = resolve_parent(base, path)?;
        if name.is_empty() || name == b"." || name == b".." || fsabi::wants_directory(path) {
            // `open("dir/", O_CREAT)`: Linux says EISDIR.
            return Err(Errno::EISDIR);
        }
        let child_path = join(&dir.path, name)?;
        let existing = match mounted_at(&child_path) {
            Some(m) => Ok(m),
            None => dir.inode.lookup(name),
        };
        match existing {
            Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            Ok(node) if node.file_type() == FileType::Symlink && follow => {
                resolve(base, path, true)?
            }
            Ok(node) => Found {
                inode: node,
                path: child_path,
            },
            Err(Errno::ENOENT) => Found {
                inode: dir.inode.create(name, FileType::Regular, perm)?,
                path: child_path,
            },
            Err(e) => return Err(e),
        }
    } else {
        resolve(base, path, follow)?
    };
    let inode = found.inode;
    let kind = inode.file_type();
    if kind == FileType::Symlink && flags & O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let access = flags & O_ACCMODE;
    if kind == FileType::Directory
        && (access != O_RDONLY || flags & O_CREAT != 0)
        && flags & O_PATH == 0
    {
        return Err(Errno::EISDIR);
    }
    let ops = inode.open(&inode, flags)?;
    if flags & (O_PATH | O_TRUNC) == O_TRUNC && access != O_RDONLY && kind == FileType::Regular {
        inode.truncate(0)?;
    }
    File::with_path(ops, flags, found.path)
}

/// `dir` + `/` + `name`, as a new absolute path.
pub fn join(dir: &[u8], name: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    kalloc::try_reserve(&mut out, dir.len() + 1 + name.len())?;
    out.extend_from_slice(dir);
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    Ok(out)
}

/// Mounts the file systems every kernel has: the ramdisk at `/`, a tmpfs
/// at `/tmp`, the devices at `/dev`, `/proc`.
pub fn init() {
    // The console's one `FileOps`, made now: what lives for good is
    // allocated at boot, not by the first process.
    drop(super::console::ops());
    let mounted = super::ramfs::root()
        .and_then(|root| mount(b"/", root))
        .and_then(|_| super::tmpfs::new_root())
        .and_then(|tmp| mount(b"/tmp", tmp))
        .and_then(|_| super::devfs::root())
        .and_then(|dev| mount(b"/dev", dev))
        .and_then(|_| crate::procfs::mount::mount());
    if let Err(e) = mounted {
        log::error!("vfs: mounting the file systems failed: {e:?}");
    }
}

/// The contents of the regular file at `path` (absolute, or relative to
/// `base`), at most `max` bytes: for the kernel's own readers (the shell).
pub fn read_file(base: Base, path: &[u8], max: usize) -> Result<Vec<u8>, Errno> {
    let found = resolve(base, path, true)?;
    if found.inode.file_type() != FileType::Regular {
        return Err(Errno::EINVAL);
    }
    // Read to the end, not to `st_size`: generated files (`/proc`) say 0.
    let size = (found.inode.stat().st_size as u64).min(max as u64) as usize;
    let mut out = kalloc::try_zeroed(size.max(4096).min(max))?;
    let mut len = 0;
    loop {
        let n = found.inode.read_kernel(len as u64, &mut out[len..])?;
        len += n;
        if n == 0 || len == max {
            break;
        }
        if len == out.len() {
            let more = out.len().min(max - len);
            kalloc::try_reserve(&mut out, more)?;
            out.resize(len + more, 0);
        }
    }
    out.truncate(len);
    Ok(out)
}

/// Whether a file system is mounted at absolute path `path`.
pub fn is_mount_point(path: &[u8]) -> bool {
    mounted_at(path).is_some()
}
