//! `fork`: a copy-on-write duplicate of an address space.

use crate::fault::fork_pte;
use crate::gather::{Gather, TlbFlush};
use crate::paging::{Pte, TableMemory};
use crate::swap::SwapEntry;
use crate::vma::{VmError, Vma};
use crate::USER_END;

use super::VmSpace;

/// Table memory that can also take frame references, for fork: the
/// kernel implements both under one frame-allocator lock, so copying a
/// page table's worth of entries is one lock round trip, not one per page.
pub trait ShareFrames: TableMemory {
    /// Takes one more reference to the frame at `addr`, which a present
    /// leaf maps (the zero page counts nothing and always succeeds).
    /// `false` if the frame cannot take another (its count is saturated).
    fn share(&mut self, addr: u64) -> bool;

    /// Takes one more reference to a swap slot (a child's copy of a swap
    /// entry); `false` if its count is saturated.
    fn share_swap(&mut self, entry: SwapEntry) -> bool;
}

impl VmSpace {
    /// First half of fork: gives `child` (an empty address space) a copy
    /// of the regions. This allocates; [`VmSpace::fork_pages`] does not.
    pub fn fork_regions(&self, child: &mut VmSpace) -> Result<(), VmError> {
        child.vmas = self.vmas.try_clone()?;
        child.fault_cache = None;
        child.rlimits = self.rlimits;
        // Locks are not inherited (Linux clears VM_LOCKED in the child).
        child.locked.clear();
        Ok(())
    }

    /// Second half of fork: fills `child`'s tables with a copy-on-write
    /// duplicate of this one's: every present page shared by both, private
    /// ones read-only until one side writes.
    ///
    /// Lock contract: it takes no lock and allocates nothing but table
    /// pages from `mem`, so the kernel runs it under the frame allocator's
    /// lock (which `mem` then stands for) without deadlocking on the heap.
    ///
    /// The parent's writable private leaves become read-only, so its old
    /// translations are flushed through `gather`. On failure (no memory,
    /// or a frame mapped too often) the child holds references to what it
    /// got; dropping it gives them back.
    pub fn fork_pages<M, T>(
        &mut self,
        child: &mut VmSpace,
        mem: &mut M,
        gather: &mut Gather<T>,
    ) -> Result<(), VmError>
    where
        M: ShareFrames + ?Sized,
        T: TlbFlush,
    {
        let vmas = &self.vmas;
        // Consecutive pages almost always share a region.
        let mut last: Option<&Vma> = None;
        let mut refused = false;
        let mut share = |mem: &mut M, va: u64, pte: Pte| -> Option<(Pte, Pte)> {
            let vma = match last {
                Some(v) if v.contains(va) => v,
                _ => {
                    last = vmas.find(va);
                    last?
                }
            };
            let (parent, child, shares) = fork_pte(vma, pte);
            // A frame shared by as many mappings as its count can hold
            // cannot take another: the fork fails rather than leave the
            // page out.
            let share = |mem: &mut M| match pte.swap_entry() {
                Some(entry) => mem.share_swap(entry),
                None => mem.share(pte.addr()),
            };
            if shares && !share(mem) {
                refused = true;
                return None;
            }
            Some((parent, child))
        };
        let result = self
            .tables
            .clone_user_for_fork(&mut child.tables, mem, &mut share);
        // The parent's writable leaves just became read-only.
        gather.add_range(0, USER_END);
        match result {
            Ok(_) if !refused => Ok(()),
            _ => Err(VmError::NoMemory),
        }
    }
}
