//! Resource limits (`getrlimit`/`setrlimit`/`prlimit64`): the table a
//! process carries, Linux's numbering and defaults, and the rules for
//! changing it. The address space holds the table (one process, one address
//! space: a fork copies it, an exec keeps it) and enforces the three that
//! are about memory:
//! - `RLIMIT_AS`: every new or grown region (`mmap`, `brk`, `mremap`, stack
//!   growth) keeps the mapped total within it (Linux's `may_expand_vm`),
//!   or the call fails with `ENOMEM`;
//! - `RLIMIT_DATA`: the same for private writable regions that are not a
//!   stack (Linux's `data_vm`: the heap, the bss, writable private
//!   mappings);
//! - `RLIMIT_STACK`: how far the stack may grow down from its top.
//!
//! The others are kept and reported (`RLIMIT_NOFILE` is the file table's
//! size) but not enforced.

use crate::vma::Vma;
use crate::{Prot, Sharing};

/// CPU seconds.
pub const RLIMIT_CPU: u32 = 0;
/// Largest file written.
pub const RLIMIT_FSIZE: u32 = 1;
/// Private writable memory (`data_vm`).
pub const RLIMIT_DATA: u32 = 2;
/// Stack size.
pub const RLIMIT_STACK: u32 = 3;
/// Core file size.
pub const RLIMIT_CORE: u32 = 4;
/// Resident set (not enforced by Linux either).
pub const RLIMIT_RSS: u32 = 5;
/// Processes per user.
pub const RLIMIT_NPROC: u32 = 6;
/// Open files (one more than the highest descriptor).
pub const RLIMIT_NOFILE: u32 = 7;
/// Locked memory.
pub const RLIMIT_MEMLOCK: u32 = 8;
/// Address-space size (`total_vm`).
pub const RLIMIT_AS: u32 = 9;
/// Linux's `RLIM_NLIMITS`: resources 0..16 exist.
pub const RLIM_NLIMITS: u32 = 16;
/// No limit.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// The default stack limit (8 MiB, as Linux's `_STK_LIM`).
pub const DEFAULT_STACK: u64 = 8 << 20;

/// One resource's soft (`cur`) and hard (`max`) limit, in the layout of
/// Linux's `struct rlimit64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Rlimit {
    /// The soft limit: what is enforced.
    pub cur: u64,
    /// The hard limit: the ceiling for the soft one.
    pub max: u64,
}

/// Why a new limit was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RlimitError {
    /// No such resource, or soft above hard (`EINVAL`).
    Invalid,
    /// Above what the resource can ever be (`RLIMIT_NOFILE` past the file
    /// table: `EPERM`, as Linux says past `fs.nr_open`).
    NotPermitted,
}

/// Every resource's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimits {
    limits: [Rlimit; RLIM_NLIMITS as usize],
    /// The largest `RLIMIT_NOFILE` there can be (the file table's size).
    nofile_max: u64,
}

impl Rlimits {
    /// Linux's defaults for a root process, with `nofile` files at most:
    /// an 8 MiB soft stack limit, no core files, `nofile` files, the rest
    /// unlimited.
    pub const fn new(nofile: u64) -> Rlimits {
        let infinite = Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        };
        let mut limits = [infinite; RLIM_NLIMITS as usize];
        limits[RLIMIT_STACK as usize].cur = DEFAULT_STACK;
        limits[RLIMIT_CORE as usize].cur = 0;
        limits[RLIMIT_NOFILE as usize] = Rlimit {
            cur: nofile,
            max: nofile,
        };
        Rlimits {
            limits,
            nofile_max: nofile,
        }
    }

    /// The limits of `resource`, or `None` if there is no such resource.
    pub fn get(&self, resource: u32) -> Option<Rlimit> {
        self.limits.get(resource as usize).copied()
    }

    /// The soft limit of `resource` (which must exist).
    pub fn cur(&self, resource: u32) -> u64 {
        self.limits[resource as usize].cur
    }

    /// Sets `resource`'s limits (a root process may raise the hard limit,
    /// as Linux lets `CAP_SYS_RESOURCE` do). Returns the old ones.
    pub fn set(&mut self, resource: u32, new: Rlimit) -> Result<Rlimit, RlimitError> {
        let slot = self
            .limits
            .get_mut(resource as usize)
            .ok_or(RlimitError::Invalid)?;
        if new.cur > new.max {
            return Err(RlimitError::Invalid);
        }
        if resource == RLIMIT_NOFILE && new.max > self.nofile_max {
            return Err(RlimitError::NotPermitted);
        }
        Ok(core::mem::replace(slot, new))
    }
}

impl Default for Rlimits {
    fn default() -> Rlimits {
        Rlimits::new(1024)
    }
}

/// A region Linux counts in `data_vm` (`RLIMIT_DATA`): private, writable
/// and not a stack.
pub fn is_data(vma: &Vma) -> bool {
    vma.sharing == Sharing::Private && vma.prot.contains(Prot::WRITE) && !vma.flags.grows_down
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_linux_root_defaults() {
        let r = Rlimits::new(64);
        assert_eq!(
            r.get(RLIMIT_STACK),
            Some(Rlimit {
                cur: 8 << 20,
                max: RLIM_INFINITY
            })
        );
        assert_eq!(r.get(RLIMIT_NOFILE), Some(Rlimit { cur: 64, max: 64 }));
        assert_eq!(r.cur(RLIMIT_AS), RLIM_INFINITY);
        assert_eq!(r.cur(RLIMIT_CORE), 0);
        assert_eq!(r.get(RLIM_NLIMITS), None);
    }

    #[test]
    fn set_checks_like_linux() {
        let mut r = Rlimits::new(64);
        let bad = Rlimit { cur: 2, max: 1 };
        assert_eq!(r.set(RLIMIT_AS, bad), Err(RlimitError::Invalid));
        assert_eq!(
            r.set(99, Rlimit { cur: 1, max: 1 }),
            Err(RlimitError::Invalid)
        );
        assert_eq!(
            r.set(RLIMIT_NOFILE, Rlimit { cur: 10, max: 65 }),
            Err(RlimitError::NotPermitted)
        );
        let old = r.set(
            RLIMIT_AS,
            Rlimit {
                cur: 1 << 20,
                max: 2 << 20,
            },
        );
        assert_eq!(old.unwrap().cur, RLIM_INFINITY);
        assert_eq!(r.cur(RLIMIT_AS), 1 << 20);
        // Root may raise the hard limit again.
        assert!(r
            .set(
                RLIMIT_AS,
                Rlimit {
                    cur: 1,
                    max: RLIM_INFINITY
                }
            )
            .is_ok());
    }
}
