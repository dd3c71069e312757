//! Open file descriptions and the operations behind them.
//!
//! A [`File`] is Linux's `struct file`: what `open` makes and what every
//! descriptor naming it shares (`dup`, `fork`, `F_DUPFD`): one offset, one
//! set of status flags (`O_APPEND`, `O_NONBLOCK`) and the access mode it
//! was opened with. What the file *is* (the console, a ramdisk file, a
//! tmpfs file, a directory, `/dev/null`, a pipe) is its [`FileOps`]: the
//! system calls reach it only through that trait.
//!
//! Buffers are user addresses: an implementation copies through
//! `mm::uaccess` (a bad one is `EFAULT`) and never holds a spin lock across
//! the copy (it may fault); it copies into a kernel bounce buffer first.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::mm::kalloc;
use crate::proc::syscall::Errno;

pub use crate::arch::uapi::Stat;
pub use usercore::fsabi::{FileType, PollEvents};

/// Open flags (Linux's x86_64 values).
pub mod flags {
    pub const O_RDONLY: u32 = 0;
    pub const O_WRONLY: u32 = 1;
    pub const O_RDWR: u32 = 2;
    pub const O_ACCMODE: u32 = 3;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE: u32 = 0o20000000 | O_DIRECTORY;
    /// The status flags `F_SETFL` may change (Linux's `SETFL_MASK` less
    /// the ones with no meaning here).
    pub const SETFL_MASK: u32 = O_APPEND | O_NONBLOCK | O_DSYNC | O_DIRECT | O_NOATIME;
}

/// `lseek`'s `whence`.
pub const SEEK_SET: u32 = 0;
pub const SEEK_CUR: u32 = 1;
pub const SEEK_END: u32 = 2;

/// What an open file is, and what can be done with it. Every method but
/// `read`, `write` and `stat` has a default: what Linux answers for a file
/// that does not support the operation.
pub trait FileOps: Send + Sync {
    /// Reads up to `len` bytes to user address `buf` at the file's offset
    /// (advancing it, for a file that has one).
    fn read(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno>;

    /// Writes up to `len` bytes from user address `buf`.
    fn write(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno>;

    /// What `poll` would see now. Default: readable and writable.
    fn poll(&self, _file: &File) -> PollEvents {
        PollEvents::IN | PollEvents::OUT
    }

    /// `fstat`.
    fn stat(&self, file: &File) -> Result<Stat, Errno>;

    /// `ioctl`: not a terminal by default.
    fn ioctl(&self, _file: &File, _request: u64, _arg: u64) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }

    /// `lseek`: not seekable by default (a pipe, a terminal).
    fn seek(&self, _file: &File, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    /// `pread64`: needs a seekable file.
    fn pread(&self, _file: &File, _buf: u64, _len: usize, _offset: u64) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    /// `pwrite64`: needs a seekable file.
    fn pwrite(&self, _file: &File, _buf: u64, _len: usize, _offset: u64) -> Result<usize, Errno> {
        Err(Errno::ESPIPE)
    }

    /// `getdents64` into user `buf`: only directories have entries.
    fn getdents(&self, _file: &File, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// `ftruncate`: only regular files opened for writing have a size to
    /// set.
    fn truncate(&self, _file: &File, _size: u64) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }

    /// The file-system node behind it, if it has one (`fchdir`, `*at`
    /// calls relative to a directory descriptor).
    fn inode(&self) -> Option<super::vfs::InodeRef> {
        None
    }

    /// The page-cache object a `mmap` of it maps, if it can be mapped, and
    /// whether a shared writable mapping reaches the file.
    fn mmap_object(&self, _file: &File) -> Result<MmapObject, Errno> {
        Err(Errno::ENODEV)
    }
}

/// What `mmap` of a file maps.
#[derive(Clone, Copy, Debug)]
pub struct MmapObject {
    /// The page-cache id.
    pub cache_id: u32,
    /// A shared writable mapping reaches the file (tmpfs); false for a
    /// read-only file (the ramdisk).
    pub shared_writable: bool,
}

/// An open file description (Linux's `struct file`).
pub struct File {
    ops: Arc<dyn FileOps>,
    /// The offset. A read, write, seek or getdents that uses and moves it
    /// holds [`File::lock_pos`] (Linux's `f_pos_lock`), so two processes
    /// sharing the description never read or write at the same offset.
    pos: AtomicU64,
    /// Held by [`File::lock_pos`].
    pos_busy: AtomicBool,
    /// Access mode and status flags (`O_*`).
    flags: AtomicU32,
    /// The absolute path it was opened by, if it was opened by path (for
    /// `fchdir`, `/proc/<pid>/fd`). Empty otherwise.
    path: Vec<u8>,
}

impl File {
    /// A new description of `ops` with open flags `flags` (creation flags
    /// and `O_CLOEXEC` are not kept).
    pub fn new(ops: Arc<dyn FileOps>, flags: u32) -> Result<Arc<File>, Errno> {
        Self::with_path(ops, flags, Vec::new())
    }

    /// [`File::new`], remembering the path it was opened by.
    pub fn with_path(ops: Arc<dyn FileOps>, flags: u32, path: Vec<u8>) -> Result<Arc<File>, Errno> {
        let kept = flags & (self::flags::O_ACCMODE | self::flags::SETFL_MASK | self::flags::O_PATH);
        Ok(kalloc::try_arc(File {
            ops,
            pos: AtomicU64::new(0),
            pos_busy: AtomicBool::new(false),
            flags: AtomicU32::new(kept | self::flags::O_LARGEFILE),
            path,
        })?)
    }

    pub fn ops(&self) -> &Arc<dyn FileOps> {
        &self.ops
    }

    /// The access mode and status flags (`F_GETFL`).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// `F_SETFL`: changes the changeable status flags, keeps the rest.
    pub fn set_status_flags(&self, new: u32) {
        let keep = !self::flags::SETFL_MASK;
        let _ = self
            .flags
            .try_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some((old & keep) | (new & self::flags::SETFL_MASK))
            });
    }

    pub fn readable(&self) -> bool {
        let f = self.flags();
        f & self::flags::O_PATH == 0 && f & self::flags::O_ACCMODE != self::flags::O_WRONLY
    }

    pub fn writable(&self) -> bool {
        let f = self.flags();
        f & self::flags::O_PATH == 0 && f & self::flags::O_ACCMODE != self::flags::O_RDONLY
    }

    pub fn nonblocking(&self) -> bool {
        self.flags() & self::flags::O_NONBLOCK != 0
    }

    pub fn append(&self) -> bool {
        self.flags() & self::flags::O_APPEND != 0
    }

    /// The current offset.
    pub fn pos(&self) -> u64 {
        self.pos.load(Ordering::Relaxed)
    }

    pub fn set_pos(&self, pos: u64) {
        self.pos.store(pos, Ordering::Relaxed)
    }

    /// Takes the offset for one whole read, write, seek or getdents
    /// (Linux's `f_pos_lock`, taken for files with an offset: regular
    /// files, directories, `/proc` files; not pipes or terminals, whose
    /// reads may wait for long). Held across user copies, so it is not a
    /// spin lock: a second taker lets other processes run until it is
    /// free.
    pub fn lock_pos(&self) -> PosGuard<'_> {
        while self
            .pos_busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            crate::proc::sched::yield_now();
        }
        PosGuard(&self.pos_busy)
    }

    /// The absolute path it was opened by (empty if none).
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// `read(2)`: checks the access mode, then the file's own read.
    pub fn read(&self, buf: u64, len: usize) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        self.ops.read(self, buf, len)
    }

    /// `write(2)`: checks the access mode, then the file's own write.
    pub fn write(&self, buf: u64, len: usize) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        self.ops.write(self, buf, len)
    }

    pub fn pread(&self, buf: u64, len: usize, offset: u64) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        self.ops.pread(self, buf, len, offset)
    }

    pub fn pwrite(&self, buf: u64, len: usize, offset: u64) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        self.ops.pwrite(self, buf, len, offset)
    }

    pub fn stat(&self) -> Result<Stat, Errno> {
        self.ops.stat(self)
    }

    pub fn poll(&self) -> PollEvents {
        self.ops.poll(self)
    }

    pub fn seek(&self, offset: i64, whence: u32) -> Result<u64, Errno> {
        if self.flags() & self::flags::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        self.ops.seek(self, offset, whence)
    }

    pub fn ioctl(&self, request: u64, arg: u64) -> Result<u64, Errno> {
        if self.flags() & self::flags::O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        self.ops.ioctl(self, request, arg)
    }
}

/// [`File::lock_pos`] held; let go when dropped.
pub struct PosGuard<'a>(&'a AtomicBool);

impl Drop for PosGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The new offset of a seek on a file of `size` bytes from `pos`, as Linux's
/// `generic_file_llseek` computes it (a negative result is `EINVAL`; past the
/// end is allowed).
pub fn seek_position(pos: u64, size: u64, offset: i64, whence: u32) -> Result<u64, Errno> {
    let base = match whence {
        SEEK_SET => 0,
        SEEK_CUR => pos as i64,
        SEEK_END => size as i64,
        _ => return Err(Errno::EINVAL),
    };
    base.checked_add(offset)
        .filter(|&p| p >= 0)
        .map(|p| p as u64)
        .ok_or(Errno::EINVAL)
}
