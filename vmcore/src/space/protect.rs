//! `mprotect`: new protection for the regions, and for the leaves already
//! present, at once.

use crate::fault::protect_pte;
use crate::gather::{Gather, TlbFlush};
use crate::paging::{LeafUpdate, Pte, TableMemory};
use crate::vma::{Prot, VmError};

use super::VmSpace;

impl VmSpace {
    /// Changes the protection of `[start, end)`, splitting regions at the
    /// edges; present leaves take the new protection at once (a write stays
    /// disallowed where a copy-on-write copy is still owed), and their old
    /// translations are flushed through the gather. No frame changes hands.
    pub fn protect<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        start: u64,
        end: u64,
        prot: Prot,
    ) -> Result<(), VmError>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        self.fault_cache = None;
        for (s, e) in self.vmas.protect(start, end, prot)? {
            let Some(vma) = self.vmas.find(s).copied() else {
                continue;
            };
            let mut changed = false;
            let mut rewrite = |_: u64, _: u64, pte: Pte| {
                let new = protect_pte(&vma, pte);
                if new == pte {
                    return LeafUpdate::Keep;
                }
                changed = true;
                LeafUpdate::Set(new)
            };
            let _ = self.tables.update_leaves(mem, s, e, &mut rewrite);
            if changed {
                gather.add_range(s, e);
            }
        }
        Ok(())
    }
}
