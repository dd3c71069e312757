//! Error numbers, and how the kernel's errors become them.
//!
//! A system call returns [`SysResult`]: the value, or an [`Errno`] with
//! Linux's x86_64 number. [`super::dispatch`] turns it into the register
//! value in one place (`-errno` for an error). The kernel's own error types
//! convert with `?` where one mapping is right for every call; where Linux
//! answers differently per call (a bad range is `EINVAL` for `munmap` but
//! `ENOMEM` for `mprotect`; a region-set failure is `EINVAL` for `munmap`
//! and `ENOMEM` for `mmap`), the call spells its choice out.

use vmcore::{RangeError, VmError};

use crate::mm::aspace;
use crate::mm::kalloc::AllocError;
use crate::mm::uaccess::Efault;
use crate::proc::exec::ExecError;
use crate::proc::fd::InstallError;
use crate::proc::sched::{NoChild, SpawnError};

/// A Linux error number (positive; the system call returns its negation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(i32);

/// What a system call returns: the value in RAX, or an error number.
pub type SysResult = Result<u64, Errno>;

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const ESRCH: Errno = Errno(3);
    pub const EINTR: Errno = Errno(4);
    pub const EIO: Errno = Errno(5);
    pub const E2BIG: Errno = Errno(7);
    pub const ENOEXEC: Errno = Errno(8);
    pub const EBADF: Errno = Errno(9);
    pub const ECHILD: Errno = Errno(10);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EFAULT: Errno = Errno(14);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EXDEV: Errno = Errno(18);
    pub const ENODEV: Errno = Errno(19);
    pub const ENOTDIR: Errno = Errno(20);
    pub const EISDIR: Errno = Errno(21);
    pub const EINVAL: Errno = Errno(22);
    pub const EMFILE: Errno = Errno(24);
    pub const ENOTTY: Errno = Errno(25);
    pub const EFBIG: Errno = Errno(27);
    pub const ENOSPC: Errno = Errno(28);
    pub const ESPIPE: Errno = Errno(29);
    pub const EROFS: Errno = Errno(30);
    pub const EPIPE: Errno = Errno(32);
    pub const ERANGE: Errno = Errno(34);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const ENOSYS: Errno = Errno(38);
    pub const ETIMEDOUT: Errno = Errno(110);
    pub const ENOTEMPTY: Errno = Errno(39);
    pub const ELOOP: Errno = Errno(40);
    pub const EOVERFLOW: Errno = Errno(75);
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// Interrupted by a signal: restarted unless a handler without
    /// `SA_RESTART` runs (never seen by user space: `signal::deliver`).
    pub const ERESTARTSYS: Errno = Errno(512);
    /// Interrupted by a signal: `EINTR` if a handler runs, else restarted
    /// (after a stop and SIGCONT).
    pub const ERESTARTNOHAND: Errno = Errno(514);

    /// The value the system call leaves in RAX: `-errno`.
    pub const fn to_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// A region-set failure where Linux reports everything but a shortage
    /// (of kernel memory, of map count: `vm.max_map_count`, or of commit:
    /// `vm.overcommit_memory`) as `other`.
    pub const fn vm_or(e: VmError, other: Errno) -> Errno {
        match e {
            VmError::NoMemory
            | VmError::TooManyRegions
            | VmError::Overcommit { .. }
            | VmError::Rlimit { .. } => Errno::ENOMEM,
            _ => other,
        }
    }
}

/// A bad user pointer.
impl From<Efault> for Errno {
    fn from(_: Efault) -> Errno {
        Errno::EFAULT
    }
}

/// The kernel heap is out of memory.
impl From<AllocError> for Errno {
    fn from(_: AllocError) -> Errno {
        Errno::ENOMEM
    }
}

/// No frame for a new address space's tables (fork).
impl From<aspace::OutOfMemory> for Errno {
    fn from(_: aspace::OutOfMemory) -> Errno {
        Errno::ENOMEM
    }
}

/// A process could not be created: no heap, or no room for its kernel
/// stack. Linux's fork says `ENOMEM` for both.
impl From<SpawnError> for Errno {
    fn from(_: SpawnError) -> Errno {
        Errno::ENOMEM
    }
}

impl From<InstallError> for Errno {
    fn from(e: InstallError) -> Errno {
        match e {
            InstallError::TableFull => Errno::EMFILE,
            InstallError::OutOfMemory => Errno::ENOMEM,
        }
    }
}

/// `wait4` with nothing to wait for.
impl From<NoChild> for Errno {
    fn from(_: NoChild) -> Errno {
        Errno::ECHILD
    }
}

/// A user range as `mmap` and `mprotect` judge it (Linux's
/// `do_mmap`/`do_mprotect_pkey`): not page aligned is `EINVAL`, below
/// `mmap_min_addr` is `EPERM` (the security hook's answer), and a range that
/// overflows, reaches past user space or is empty is `ENOMEM`. `munmap`,
/// `madvise` and `mremap` say `EINVAL` for every bad range: they map the
/// error themselves.
impl From<RangeError> for Errno {
    fn from(e: RangeError) -> Errno {
        match e {
            RangeError::Unaligned => Errno::EINVAL,
            RangeError::BelowMinimum => Errno::EPERM,
            RangeError::Overflow | RangeError::OutsideUser | RangeError::Empty => Errno::ENOMEM,
        }
    }
}

/// A region change that failed in a call that builds or changes regions
/// (mmap, mprotect, mremap): once their arguments are checked, whatever is
/// left is `ENOMEM` in Linux: no memory, `vm.max_map_count` reached, or a
/// hole in the range (`NotMapped`). The answers that differ say so at the
/// call: `munmap`'s `EINVAL` ([`Errno::vm_or`]), `mmap`'s `EEXIST` for
/// `MAP_FIXED_NOREPLACE` and `EOVERFLOW` for a file offset.
impl From<VmError> for Errno {
    fn from(_: VmError) -> Errno {
        Errno::ENOMEM
    }
}

/// What `execve` returns when loading fails.
impl From<ExecError> for Errno {
    fn from(e: ExecError) -> Errno {
        match e {
            ExecError::NotFound => Errno::ENOENT,
            ExecError::Elf(_) | ExecError::Region(_) => Errno::ENOEXEC,
            ExecError::TooBig => Errno::E2BIG,
            ExecError::OutOfMemory => Errno::ENOMEM,
        }
    }
}
