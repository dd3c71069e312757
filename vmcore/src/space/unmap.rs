//! Taking pages out: `munmap`, `MAP_FIXED` over old pages,
//! `MADV_DONTNEED`, and the teardown at exit or exec.
//!
//! Every leaf cleared hands its frame reference to the gather, and every
//! page table left empty is freed through it, so nothing the TLB may still
//! reach is reused before the flush (Linux's `unmap_region` +
//! `tlb_finish_mmu`).

use crate::gather::{Gather, GatherTables, TlbFlush};
use crate::paging::{EmptyTables, Pte, TableMemory};
use crate::vma::{VmError, Vma};
use crate::USER_END;

use super::{gather_leaf, VmSpace};

impl VmSpace {
    /// Removes `[start, end)`: regions split at the edges, pages mapped
    /// there go to the gather, page tables left empty are freed after the
    /// flush.
    pub fn unmap<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        start: u64,
        end: u64,
    ) -> Result<(), VmError>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        // Room to split a locked range first: after the regions change,
        // nothing may fail.
        self.locked.reserve()?;
        self.fault_cache = None;
        let removed = self.vmas.unmap(start, end)?;
        let _ = self.locked.unlock(start, end);
        for (s, e) in removed {
            self.unmap_pages(mem, gather, s, e);
        }
        Ok(())
    }

    /// Maps `vma` replacing whatever was at its addresses (`MAP_FIXED`).
    pub fn map_fixed<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        vma: Vma,
    ) -> Result<(), VmError>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        self.may_expand(&vma)?;
        // Room to split a locked range, and to lock the new region under
        // MCL_FUTURE (one more range at most).
        self.locked.reserve()?;
        self.reserve_future_lock()?;
        self.fault_cache = None;
        let removed = self.vmas.map_fixed(vma)?;
        let _ = self.locked.unlock(vma.start, vma.end);
        self.lock_if_future(vma.start, vma.end);
        for (s, e) in removed {
            self.unmap_pages(mem, gather, s, e);
        }
        Ok(())
    }

    /// Drops the pages of `[start, end)` but keeps the regions
    /// (`MADV_DONTNEED`): the next touch faults in zeros (or the file)
    /// again.
    pub fn discard<M, T>(&mut self, mem: &mut M, gather: &mut Gather<T>, start: u64, end: u64)
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        if start < end && end <= USER_END {
            let mut mem = GatherTables::new(mem, gather);
            // The region stays, so its page tables do too (Linux's
            // zap_page_range): the next touch needs them again.
            let _ =
                self.tables
                    .unmap_range(&mut mem, start, end, EmptyTables::Keep, &mut take_leaf);
        }
    }

    /// Exit or exec: every user page and every user page table goes (to
    /// the gather); the root stays for the caller to free after
    /// [`Gather::finish`].
    pub fn teardown<M, T>(&mut self, mem: &mut M, gather: &mut Gather<T>)
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        self.fault_cache = None;
        self.vmas = crate::vma::VmaSet::new();
        self.unmap_pages(mem, gather, 0, USER_END);
    }

    /// Clears the leaves of `[start, end)` (a range the region set
    /// accepted, so valid for the tables too).
    pub(super) fn unmap_pages<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        start: u64,
        end: u64,
    ) where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        debug_assert!(start < end && end <= USER_END);
        let mut mem = GatherTables::new(mem, gather);
        let _ = self
            .tables
            .unmap_range(&mut mem, start, end, EmptyTables::Free, &mut take_leaf);
    }
}

/// The walkers' callback for a leaf they just cleared: its reference goes
/// to the gather.
fn take_leaf<M: TableMemory + ?Sized, T: TlbFlush>(
    mem: &mut GatherTables<'_, M, T>,
    va: u64,
    size: u64,
    old: Pte,
) {
    // SAFETY: the walker just cleared this leaf of ours.
    unsafe { gather_leaf(mem.gather, va, size, old) };
}
