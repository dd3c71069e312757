//! `/proc` in the VFS: each [`Node`] as an [`Inode`], each open file as
//! [`FileOps`] keeping its text (one snapshot per open file, as Linux's
//! `seq_file`). Text is made and sliced in kernel memory with no lock
//! held across the copy to user memory.

use alloc::sync::Arc;
use core::any::Any;

use usercore::fsabi::FileType;

use super::{Kind, Node, PidFile, ProcError, Text};
use crate::fs::file::{self, File, FileOps, Stat};
use crate::fs::vfs::{self, stat_for, DirEntry, Inode, InodeRef, DEV_PROCFS};
use crate::mm::kalloc;
use crate::mm::uaccess::{copy_from_user, copy_to_user};
use crate::proc::syscall::Errno;

/// Most bytes one read returns (a reader asks again for the rest).
const READ_MAX: usize = 64 * 1024;
/// Most bytes a tunable takes in one write (Linux: a page).
const WRITE_MAX: usize = 4096;

impl From<ProcError> for Errno {
    fn from(e: ProcError) -> Errno {
        e.errno()
    }
}

/// A node of `/proc`.
pub struct ProcInode(Node);

/// The `/proc` directory, for [`vfs::mount`].
pub fn root() -> Result<InodeRef, Errno> {
    Ok(kalloc::try_arc(ProcInode(Node::Root))? as InodeRef)
}

/// Mounts `/proc`.
pub fn mount() -> Result<(), Errno> {
    vfs::mount(b"/proc", root()?)
}

fn inode_ref(node: Node) -> Result<InodeRef, Errno> {
    Ok(kalloc::try_arc(ProcInode(node))? as InodeRef)
}

fn file_type(node: Node) -> FileType {
    match super::kind(node) {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::Regular,
        Kind::Symlink => FileType::Symlink,
    }
}

/// Inode numbers: fixed ones below 256, a process's `pid << 8` and up.
fn ino(node: Node) -> u64 {
    match node {
        Node::Root => 1,
        Node::PressureDir => 2,
        Node::SysDir => 3,
        Node::SysVmDir => 4,
        Node::SelfLink => 5,
        Node::Global(g) => 16 + g as u64,
        Node::SysVm(i) => 64 + i as u64,
        Node::PidDir(pid) => (pid as u64) << 8,
        Node::Pid(pid, f) => ((pid as u64) << 8) | (1 + f as u64),
        Node::FdDir(pid) => ((pid as u64) << 8) | 0x40,
        Node::FdinfoDir(pid) => ((pid as u64) << 8) | 0x41,
        Node::Fd(pid, n) => (1 << 48) | ((pid as u64) << 16) | n as u64,
        Node::Fdinfo(pid, n) => (2 << 48) | ((pid as u64) << 16) | n as u64,
    }
}

impl Inode for ProcInode {
    fn file_type(&self) -> FileType {
        file_type(self.0)
    }

    fn stat(&self) -> Stat {
        // Linux's /proc files have size 0: readers read to the end.
        stat_for(
            DEV_PROCFS,
            ino(self.0),
            file_type(self.0),
            super::mode(self.0) as u32,
            0,
            0,
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        if super::kind(self.0) != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let name = core::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        inode_ref(super::child(self.0, name).ok_or(Errno::ENOENT)?)
    }

    fn entry(&self, index: usize) -> Result<Option<DirEntry>, Errno> {
        if super::kind(self.0) != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let list = super::list(self.0)?;
        Ok(list
            .get(index)
            .map(|e| DirEntry::new(e.name.as_str().as_bytes(), ino(e.node), file_type(e.node))))
    }

    fn readlink(&self) -> Result<alloc::vec::Vec<u8>, Errno> {
        Ok(super::readlink(self.0)?)
    }

    fn read_kernel(&self, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        Ok(super::read(self.0, offset, out)?)
    }

    fn open(&self, me: &InodeRef, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match super::kind(self.0) {
            Kind::File => Ok(kalloc::try_arc(ProcFileOps {
                node: self.0,
                inode: me.clone(),
                text: spin::Mutex::new(None),
            })? as Arc<dyn FileOps>),
            _ => Ok(kalloc::try_arc(vfs::InodeFile { inode: me.clone() })? as Arc<dyn FileOps>),
        }
    }

    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        // O_TRUNC on a /proc file (`echo 1 > /proc/sys/vm/...`) is ignored.
        match super::kind(self.0) {
            Kind::Dir => Err(Errno::EISDIR),
            _ => Ok(()),
        }
    }
}

/// An open `/proc` file.
struct ProcFileOps {
    node: Node,
    inode: InodeRef,
    /// The text of the last read (taken out while a read works on it: the
    /// lock is never held across making the text or a user copy).
    text: spin::Mutex<Option<Text>>,
}

impl ProcFileOps {
    /// Reads at `offset` into kernel memory.
    fn read_kernel(&self, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        if let Node::Pid(pid, PidFile::Pagemap) = self.node {
            return Ok(super::task::pagemap_read(pid, offset, out)?);
        }
        let cached = if offset == 0 {
            None
        } else {
            self.text.lock().take()
        };
        let text = match cached {
            Some(t) => t,
            None => super::generate(self.node)?,
        };
        let n = super::copy_at(&text.bytes, offset, out);
        *self.text.lock() = Some(text);
        Ok(n)
    }

    fn read_user(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        let mut len = len.min(READ_MAX);
        if matches!(self.node, Node::Pid(_, PidFile::Pagemap)) {
            // Whole entries are checked by pagemap_read; keep them whole.
            len = if len < 8 { len } else { len - len % 8 };
        }
        let mut out = kalloc::try_zeroed(len)?;
        let n = self.read_kernel(offset, &mut out)?;
        copy_to_user(buf, &out[..n])?;
        Ok(n)
    }
}

impl FileOps for ProcFileOps {
    fn read(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        let _pos = file.lock_pos();
        let n = self.read_user(file.pos(), buf, len)?;
        file.set_pos(file.pos() + n as u64);
        Ok(n)
    }

    fn pread(&self, _file: &File, buf: u64, len: usize, offset: u64) -> Result<usize, Errno> {
        self.read_user(offset, buf, len)
    }

    fn write(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        let n = self.pwrite(file, buf, len, file.pos())?;
        file.set_pos(file.pos() + n as u64);
        Ok(n)
    }

    fn pwrite(&self, _file: &File, buf: u64, len: usize, _offset: u64) -> Result<usize, Errno> {
        if len > WRITE_MAX {
            return Err(Errno::EINVAL);
        }
        let mut data = kalloc::try_zeroed(len)?;
        copy_from_user(&mut data, buf)?;
        Ok(super::write(self.node, &data)?)
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(self.inode.stat())
    }

    fn seek(&self, file: &File, offset: i64, whence: u32) -> Result<u64, Errno> {
        let new = file::seek_position(file.pos(), 0, offset, whence)?;
        file.set_pos(new);
        Ok(new)
    }

    fn inode(&self) -> Option<InodeRef> {
        Some(self.inode.clone())
    }
}
