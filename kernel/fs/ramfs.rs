//! The ramdisk as a file-system tree: read-only, mounted at `/`. Its files
//! are the cpio archive's (see `proc::ramdisk`); its directories are the
//! archive's directory entries and every path prefix of a file. Nodes are
//! made on lookup (small, fallible allocations) and name the archive's
//! bytes, so they cost nothing to keep.

use alloc::sync::Arc;
use core::any::Any;

use usercore::fsabi::FileType;

use super::file::{self, Stat};
use super::vfs::{stat_for, DirEntry, Inode, InodeRef, DEV_RAMFS};
use crate::mm::kalloc;
use crate::mm::uaccess::copy_to_user;
use crate::proc::ramdisk::{self, RamFile};
use crate::proc::syscall::Errno;

enum Node {
    /// A directory: its path in the archive (`""` for the root).
    Dir(&'static str),
    File {
        path: &'static str,
        file: RamFile,
    },
    Symlink {
        path: &'static str,
        target: &'static [u8],
    },
}

pub struct RamNode(Node);

/// The root directory.
pub fn root() -> Result<InodeRef, Errno> {
    Ok(kalloc::try_arc(RamNode(Node::Dir("")))? as InodeRef)
}

/// An inode number from a path (stable: FNV-1a), never 0 or 1.
fn ino_of(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h | 2
}

impl RamNode {
    fn path(&self) -> &'static str {
        match self.0 {
            Node::Dir(p) => p,
            Node::File { path, .. } | Node::Symlink { path, .. } => path,
        }
    }
}

impl Inode for RamNode {
    fn file_type(&self) -> FileType {
        match self.0 {
            Node::Dir(_) => FileType::Directory,
            Node::File { .. } => FileType::Regular,
            Node::Symlink { .. } => FileType::Symlink,
        }
    }

    fn stat(&self) -> Stat {
        let ino = if self.path().is_empty() {
            1
        } else {
            ino_of(self.path())
        };
        match self.0 {
            Node::Dir(_) => stat_for(DEV_RAMFS, ino, FileType::Directory, 0o755, 0, 0),
            Node::File { file, .. } => {
                let perm = ramdisk::permissions(self.path()).unwrap_or(0o644);
                stat_for(
                    DEV_RAMFS,
                    ino,
                    FileType::Regular,
                    perm,
                    file.data.len() as u64,
                    0,
                )
            }
            Node::Symlink { target, .. } => stat_for(
                DEV_RAMFS,
                ino,
                FileType::Symlink,
                0o777,
                target.len() as u64,
                0,
            ),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let Node::Dir(dir) = self.0 else {
            return Err(Errno::ENOTDIR);
        };
        let name = core::str::from_utf8(name).map_err(|_| Errno::ENOENT)?;
        let node = ramdisk::child(dir, name).ok_or(Errno::ENOENT)?;
        let node = match node {
            ramdisk::Child::Dir(path) => Node::Dir(path),
            ramdisk::Child::File(path, file) => Node::File { path, file },
            ramdisk::Child::Symlink(path, target) => Node::Symlink { path, target },
        };
        Ok(kalloc::try_arc(RamNode(node))? as InodeRef)
    }

    fn entry(&self, index: usize) -> Result<Option<DirEntry>, Errno> {
        let Node::Dir(dir) = self.0 else {
            return Err(Errno::ENOTDIR);
        };
        Ok(ramdisk::children(dir).nth(index).map(|(name, kind)| {
            let full_ino = {
                let mut h = ino_of(dir);
                for b in name.bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
                }
                h | 2
            };
            DirEntry::new(name.as_bytes(), full_ino, kind)
        }))
    }

    fn readlink(&self) -> Result<alloc::vec::Vec<u8>, Errno> {
        match self.0 {
            Node::Symlink { target, .. } => Ok(kalloc::try_to_vec(target)?),
            _ => Err(Errno::EINVAL),
        }
    }

    fn read_at(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        let Node::File { file, .. } = self.0 else {
            return Err(Errno::EISDIR);
        };
        let start = offset.min(file.data.len() as u64) as usize;
        let end = start + len.min(file.data.len() - start);
        copy_to_user(buf, &file.data[start..end])?;
        Ok(end - start)
    }

    fn read_kernel(&self, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        let Node::File { file, .. } = self.0 else {
            return Err(Errno::EISDIR);
        };
        let start = offset.min(file.data.len() as u64) as usize;
        let n = out.len().min(file.data.len() - start);
        out[..n].copy_from_slice(&file.data[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, _offset: u64, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        Err(match self.0 {
            Node::Dir(_) => Errno::EISDIR,
            _ => Errno::EROFS,
        })
    }

    fn mmap_object(&self) -> Result<file::MmapObject, Errno> {
        match self.0 {
            Node::File { file, .. } => Ok(file::MmapObject {
                cache_id: file.id,
                shared_writable: false,
            }),
            _ => Err(Errno::ENODEV),
        }
    }

    fn open(&self, me: &InodeRef, flags: u32) -> Result<Arc<dyn file::FileOps>, Errno> {
        if flags & file::flags::O_ACCMODE != file::flags::O_RDONLY
            && flags & file::flags::O_PATH == 0
        {
            return Err(match self.0 {
                Node::Dir(_) => Errno::EISDIR,
                _ => Errno::EROFS,
            });
        }
        Ok(kalloc::try_arc(super::vfs::InodeFile { inode: me.clone() })? as Arc<dyn file::FileOps>)
    }
}
