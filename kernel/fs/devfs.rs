//! `/dev`: `null`, `zero`, `full`, `random`, `urandom`, `console`, `tty`.
//! A fixed directory of character devices; each opens to its own
//! [`FileOps`].

use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use usercore::fsabi::FileType;

use super::file::{File, FileOps, Stat};
use super::vfs::{stat_for, DirEntry, Inode, InodeRef, DEV_DEVFS};
use crate::mm::kalloc;
use crate::mm::uaccess::{access_ok, copy_to_user};
use crate::proc::syscall::Errno;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    Console,
    Tty,
}

/// Name, device, device number (`major << 8 | minor`), in listing order.
const DEVICES: [(&str, Device, u64); 7] = [
    ("console", Device::Console, (5 << 8) | 1),
    ("full", Device::Full, (1 << 8) | 7),
    ("null", Device::Null, (1 << 8) | 3),
    ("random", Device::Random, (1 << 8) | 8),
    ("tty", Device::Tty, 5 << 8),
    ("urandom", Device::Urandom, (1 << 8) | 9),
    ("zero", Device::Zero, (1 << 8) | 5),
];

enum Node {
    Root,
    Dev(usize),
}

pub struct DevNode(Node);

/// The `/dev` directory.
pub fn root() -> Result<InodeRef, Errno> {
    Ok(kalloc::try_arc(DevNode(Node::Root))? as InodeRef)
}

impl Inode for DevNode {
    fn file_type(&self) -> FileType {
        match self.0 {
            Node::Root => FileType::Directory,
            Node::Dev(_) => FileType::CharDevice,
        }
    }

    fn stat(&self) -> Stat {
        match self.0 {
            Node::Root => stat_for(DEV_DEVFS, 1, FileType::Directory, 0o755, 0, 0),
            Node::Dev(i) => stat_for(
                DEV_DEVFS,
                i as u64 + 2,
                FileType::CharDevice,
                0o666,
                0,
                DEVICES[i].2,
            ),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let Node::Root = self.0 else {
            return Err(Errno::ENOTDIR);
        };
        let i = DEVICES
            .iter()
            .position(|d| d.0.as_bytes() == name)
            .ok_or(Errno::ENOENT)?;
        Ok(kalloc::try_arc(DevNode(Node::Dev(i)))? as InodeRef)
    }

    fn entry(&self, index: usize) -> Result<Option<DirEntry>, Errno> {
        let Node::Root = self.0 else {
            return Err(Errno::ENOTDIR);
        };
        Ok(DEVICES
            .get(index)
            .map(|d| DirEntry::new(d.0.as_bytes(), index as u64 + 2, FileType::CharDevice)))
    }

    fn truncate(&self, _size: u64) -> Result<(), Errno> {
        // Linux: O_TRUNC on a device is ignored.
        match self.0 {
            Node::Root => Err(Errno::EISDIR),
            Node::Dev(_) => Ok(()),
        }
    }

    fn open(&self, me: &InodeRef, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match self.0 {
            Node::Root => Ok(
                kalloc::try_arc(super::vfs::InodeFile { inode: me.clone() })? as Arc<dyn FileOps>,
            ),
            Node::Dev(i) => match DEVICES[i].1 {
                Device::Console | Device::Tty => Ok(super::console::ops()),
                dev => Ok(kalloc::try_arc(MemDevice { dev, index: i })? as Arc<dyn FileOps>),
            },
        }
    }
}

/// `null`, `zero`, `full`, `random`, `urandom` (Linux's "mem" devices).
struct MemDevice {
    dev: Device,
    index: usize,
}

/// The fallback generator's state (xorshift64*, seeded from the TSC).
static PRNG: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit value: RDRAND where the CPU has it, else a xorshift64*
/// generator seeded from the time-stamp counter (not cryptographic).
pub fn random_u64() -> u64 {
    if let Some(v) = crate::arch::cpu::rdrand64() {
        return v;
    }
    let mut x = PRNG.load(Ordering::Relaxed);
    if x == 0 {
        x = crate::arch::cpu::rdtsc() | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    PRNG.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

impl MemDevice {
    /// Fills user `buf` with zeros or random bytes, in chunks.
    fn fill(&self, buf: u64, len: usize) -> Result<usize, Errno> {
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            if matches!(self.dev, Device::Random | Device::Urandom) {
                for word in chunk[..n].chunks_mut(8) {
                    let bytes = random_u64().to_ne_bytes();
                    word.copy_from_slice(&bytes[..word.len()]);
                }
            }
            if copy_to_user(buf + done as u64, &chunk[..n]).is_err() {
                return if done == 0 {
                    Err(Errno::EFAULT)
                } else {
                    Ok(done)
                };
            }
            done += n;
        }
        Ok(done)
    }
}

impl FileOps for MemDevice {
    fn read(&self, _file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        match self.dev {
            Device::Null => Ok(0),
            _ => self.fill(buf, len),
        }
    }

    fn write(&self, _file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        match self.dev {
            Device::Full => Err(Errno::ENOSPC),
            _ => {
                // Linux checks the buffer for random/urandom (it mixes the
                // bytes in); null and zero take anything.
                if matches!(self.dev, Device::Random | Device::Urandom)
                    && !access_ok(buf, len, vmcore::Prot::READ)
                {
                    return Err(Errno::EFAULT);
                }
                Ok(len)
            }
        }
    }

    fn pread(&self, file: &File, buf: u64, len: usize, _offset: u64) -> Result<usize, Errno> {
        self.read(file, buf, len)
    }

    fn pwrite(&self, file: &File, buf: u64, len: usize, _offset: u64) -> Result<usize, Errno> {
        self.write(file, buf, len)
    }

    fn seek(&self, file: &File, _offset: i64, _whence: u32) -> Result<u64, Errno> {
        // Linux: seeking these devices always lands at 0.
        file.set_pos(0);
        Ok(0)
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(stat_for(
            DEV_DEVFS,
            self.index as u64 + 2,
            FileType::CharDevice,
            0o666,
            0,
            DEVICES[self.index].2,
        ))
    }
}
