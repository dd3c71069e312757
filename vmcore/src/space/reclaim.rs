//! What reclaim does to one mapping of a page: read and clear its accessed
//! bit (Linux's `page_referenced_one`), replace it with a swap entry
//! (`try_to_unmap_one` for an anonymous page), or just clear it (the same
//! for a clean page-cache page, which comes back from its file). The kernel
//! finds the mappings (reverse mapping) and decides; these are the
//! page-table halves.

use crate::gather::{Gather, TlbFlush};
use crate::paging::{LeafUpdate, PteFlags, TableMemory};
use crate::swap::SwapEntry;
use crate::PAGE_SIZE;

use super::{gather_leaf, VmSpace};

impl VmSpace {
    /// If the leaf at `va` maps the frame at `frame`: clears its accessed
    /// bit and says whether it was set (`Some(young)`); the cleared entry is
    /// flushed through `gather` so the CPU sets the bit again on the next
    /// access. `None` if the leaf maps something else.
    pub fn clear_young<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        va: u64,
        frame: u64,
    ) -> Option<bool>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        let mut found = None;
        let mut check = |_: u64, _: u64, pte: crate::paging::Pte| {
            if !pte.is_present() || pte.addr() != frame {
                return LeafUpdate::Keep;
            }
            let young = pte.has(PteFlags::ACCESSED);
            found = Some(young);
            if young {
                LeafUpdate::Set(pte.without(PteFlags::ACCESSED))
            } else {
                LeafUpdate::Keep
            }
        };
        let _ = self
            .tables
            .update_leaves(mem, va, va.saturating_add(PAGE_SIZE), &mut check);
        if found == Some(true) {
            gather.add_range(va, va + PAGE_SIZE);
        }
        found
    }

    /// If the leaf at `va` maps the frame at `frame`: replaces it with the
    /// swap entry `entry` and hands its frame reference to the gather
    /// (released after the flush). Returns the old leaf's dirty bit, or
    /// `None` (and no change) if the leaf maps something else. The caller
    /// has taken the slot reference the new entry holds.
    pub fn unmap_to_swap<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        va: u64,
        frame: u64,
        entry: SwapEntry,
    ) -> Option<bool>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        let old = self.tables.replace_with_swap(mem, va, frame, entry)?;
        let dirty = old.has(PteFlags::DIRTY);
        // SAFETY: `old` was this address space's present leaf and has just
        // been replaced: its frame reference is ours to hand on.
        unsafe { gather_leaf(gather, va, PAGE_SIZE, old) };
        Some(dirty)
    }

    /// If the leaf at `va` maps the frame at `frame`: clears it and hands
    /// its frame reference to the gather (released after the flush, so the
    /// frame cannot go while the TLB may still reach it). Returns the old
    /// leaf's dirty bit, or `None` (and no change) if the leaf maps
    /// something else (a private copy of the page, say) or nothing. The
    /// region stays: the next touch faults the page in again.
    pub fn unmap_frame<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        va: u64,
        frame: u64,
    ) -> Option<bool>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        let old = self.tables.clear_leaf_of(mem, va, frame)?;
        let dirty = old.has(PteFlags::DIRTY);
        // SAFETY: `old` was this address space's present leaf and has just
        // been cleared: its frame reference is ours to hand on.
        unsafe { gather_leaf(gather, va, PAGE_SIZE, old) };
        Some(dirty)
    }
}
