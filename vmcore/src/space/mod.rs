//! An address space as the kernel runs it: the regions (what may be
//! mapped), the page tables (what is), and every operation that changes
//! them, generic over the physical side so the host tests run the very
//! code the kernel runs.
//!
//! One file per operation:
//! - [`fault`]: carrying out a page fault (`handle_mm_fault` and the
//!   helpers Linux splits it into);
//! - [`unmap`]: `munmap`, `MAP_FIXED` over old pages, `MADV_DONTNEED`,
//!   exit;
//! - [`protect`][protect]: `mprotect`;
//! - [`remap`]: `mremap` moving a region;
//! - [`fork`]: the copy-on-write duplicate.
//!
//! The physical side comes in through small traits: [`TableMemory`] for
//! page-table pages, [`FaultBackend`](fault::FaultBackend) for frames
//! (allocate, copy, the page cache, the zero page), [`ShareFrames`] for
//! fork, and [`TlbFlush`] inside the [`Gather`] every change that takes a
//! leaf out goes through. Frames move as [`FrameHandle`] values: a leaf
//! written consumes one, a leaf taken out yields one, which waits in the
//! gather until the TLB no longer holds the old translation.
//!
//! Locking is the caller's: every method takes `&mut self`, so the kernel
//! calls them with the address space's lock held.

use crate::frame::FrameHandle;
use crate::gather::{Gather, TlbFlush};
use crate::mlock::LockedRanges;
use crate::paging::{PageTables, Pte};
use crate::rlimit::{self, Rlimits, RLIMIT_AS, RLIMIT_DATA, RLIMIT_STACK, RLIM_INFINITY};
use crate::vma::{VmError, Vma, VmaSet};
use crate::PAGE_SIZE;

pub mod fault;
pub mod fork;
pub mod protect;
pub mod reclaim;
pub mod remap;
pub mod unmap;

pub use fault::{FaultBackend, FaultError, FaultEvent, FilePage, SwapPage};
pub use fork::ShareFrames;

/// How far below a stack region a fault may still grow it (Linux's
/// `stack_guard_gap`, 256 pages).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// How far a stack may grow down from its top by default (`RLIMIT_STACK`,
/// 8 MiB; [`VmSpace::rlimits`] holds the one in force).
pub const STACK_LIMIT: u64 = rlimit::DEFAULT_STACK;

/// Regions plus page tables.
pub struct VmSpace {
    tables: PageTables,
    vmas: VmaSet,
    /// The region the last fault was in: consecutive faults nearly always
    /// land in the same one (Linux kept a per-mm `vmacache` for this), so
    /// they skip the O(log n) lookup. Cleared whenever regions change.
    fault_cache: Option<Vma>,
    /// The process's resource limits; `RLIMIT_AS`, `RLIMIT_DATA` and
    /// `RLIMIT_STACK` are enforced here (see [`crate::rlimit`]).
    rlimits: Rlimits,
    /// The `mlock`ed ranges: reclaim leaves their pages alone. A range's
    /// part that is unmapped or replaced is unlocked; a moved one moves
    /// with its lock.
    locked: LockedRanges,
}

impl VmSpace {
    /// An address space over `tables` (normally a fresh user tree: the
    /// kernel half shared, the lower half empty) with no regions.
    pub fn new(tables: PageTables) -> VmSpace {
        VmSpace {
            tables,
            vmas: VmaSet::new(),
            fault_cache: None,
            rlimits: Rlimits::default(),
            locked: LockedRanges::new(),
        }
    }

    /// Physical address of the root table (for CR3).
    pub fn root(&self) -> u64 {
        self.tables.root()
    }

    /// The regions (read-only: changes go through the methods here, which
    /// keep pages, TLB and the fault cache in step).
    pub fn vmas(&self) -> &VmaSet {
        &self.vmas
    }

    /// The page tables, for reading (walks, translation, statistics).
    pub fn tables(&self) -> &PageTables {
        &self.tables
    }

    /// Adds a region. Nothing is allocated until it is touched.
    pub fn map(&mut self, vma: Vma) -> Result<(), VmError> {
        self.may_expand(&vma)?;
        self.reserve_future_lock()?;
        self.fault_cache = None;
        self.vmas.map(vma)?;
        self.lock_if_future(vma.start, vma.end);
        Ok(())
    }

    /// Room to lock a new region under `MCL_FUTURE`, taken before the
    /// regions change (after that, nothing may fail).
    pub(crate) fn reserve_future_lock(&mut self) -> Result<(), VmError> {
        if self.locked.future().is_some() {
            self.locked.reserve()?;
        }
        Ok(())
    }

    /// Under `MCL_FUTURE`, locks a region just mapped (room reserved by
    /// [`reserve_future_lock`](Self::reserve_future_lock): a merge or one
    /// new range).
    pub(crate) fn lock_if_future(&mut self, start: u64, end: u64) {
        if self.locked.future().is_some() {
            let _ = self.locked.lock(start, end);
        }
    }

    /// The resource limits (the address space enforces the memory ones).
    pub fn rlimits(&self) -> &Rlimits {
        &self.rlimits
    }

    /// The resource limits, to change.
    pub fn rlimits_mut(&mut self) -> &mut Rlimits {
        &mut self.rlimits
    }

    /// Linux's `may_expand_vm`: `vma` (replacing whatever it overlaps)
    /// keeps the mapped total within `RLIMIT_AS` and, if it is a data
    /// region, the data total within `RLIMIT_DATA`; else
    /// [`VmError::Rlimit`].
    pub fn may_expand(&self, vma: &Vma) -> Result<(), VmError> {
        let (as_limit, data_limit) = (self.rlimits.cur(RLIMIT_AS), self.rlimits.cur(RLIMIT_DATA));
        if as_limit == RLIM_INFINITY && data_limit == RLIM_INFINITY {
            return Ok(());
        }
        let overlap = |v: &Vma| v.end.min(vma.end).saturating_sub(v.start.max(vma.start));
        let mut total = 0u64;
        let mut data = 0u64;
        for v in self.vmas.iter() {
            let kept = v.len() - overlap(v);
            total += kept;
            if rlimit::is_data(v) {
                data += kept;
            }
        }
        if total.saturating_add(vma.len()) > as_limit {
            return Err(VmError::Rlimit {
                resource: RLIMIT_AS,
            });
        }
        if rlimit::is_data(vma) && data.saturating_add(vma.len()) > data_limit {
            return Err(VmError::Rlimit {
                resource: RLIMIT_DATA,
            });
        }
        Ok(())
    }

    /// The locked ranges (`mlock`).
    pub fn locked(&self) -> &LockedRanges {
        &self.locked
    }

    /// Locks `[start, end)` (`mlock`: the caller checked it is mapped).
    pub fn mlock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.locked.lock(start, end)
    }

    /// Unlocks `[start, end)` (`munlock`).
    pub fn munlock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.locked.unlock(start, end)
    }

    /// Unlocks everything and ends `MCL_FUTURE` (`munlockall`).
    pub fn munlock_all(&mut self) {
        self.locked.clear();
    }

    /// Sets or clears `MCL_FUTURE` (`Some(onfault)`): see
    /// [`LockedRanges::future`].
    pub fn set_lock_future(&mut self, future: Option<bool>) {
        self.locked.set_future(future);
    }

    /// The stack size limit in force (`RLIMIT_STACK`'s soft limit).
    pub fn stack_limit(&self) -> u64 {
        self.rlimits.cur(RLIMIT_STACK)
    }

    /// False if the last fault's region (cached) contains `addr`: then a
    /// fault there cannot grow a stack, and callers can skip looking.
    pub fn may_grow_stack_at(&self, addr: u64) -> bool {
        !self.fault_cache.as_ref().is_some_and(|v| v.contains(addr))
    }

    /// Makes room for `room` more regions, so the changes after it cannot
    /// fail for lack of memory.
    pub fn reserve_regions(&mut self, room: usize) -> Result<(), VmError> {
        self.vmas.try_reserve(room)
    }
}

/// Takes the reference a present leaf owned back as a handle.
///
/// # Safety
/// `pte` is a present leaf this address space wrote (from a handle's
/// [`FrameHandle::into_raw`]) and has just cleared or replaced: its
/// reference has no other owner now.
unsafe fn leaf_frame<F: FrameHandle>(pte: Pte) -> F {
    // SAFETY: the caller's contract is `from_raw`'s.
    unsafe { F::from_raw(pte.addr()) }
}

/// Hands a leaf just taken out of the tables to the gather: a present
/// one's frame reference (released after the flush), or a swap entry's
/// slot reference.
///
/// # Safety
/// As for [`leaf_frame`].
unsafe fn gather_leaf<T: TlbFlush>(gather: &mut Gather<T>, va: u64, size: u64, old: Pte) {
    if old.is_present() {
        // SAFETY: the caller's contract.
        let frame = unsafe { leaf_frame::<T::Frame>(old) };
        gather.add_frame(va, size, frame);
    } else if let Some(entry) = old.swap_entry() {
        gather.add_swap(entry);
    }
}
