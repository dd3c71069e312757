//! `mremap` moving a region: the page-table entries move, the frames stay
//! where they are.

use alloc::vec::Vec;

use crate::gather::{Gather, GatherTables, TlbFlush};
use crate::paging::{EmptyTables, PageWalker, Pte, TableMemory};
use crate::vma::{VmError, Vma, VmaKind};

use super::VmSpace;

impl VmSpace {
    /// Moves the regions in `[old, old + len)` to `new` (which must be
    /// free), with their pages. Either everything moves or, for lack of
    /// memory, nothing does: every leaf is placed at its new address
    /// before any old one is cleared, so a missing page-table page undoes
    /// the move instead of losing a page.
    pub fn move_region<M, T>(
        &mut self,
        mem: &mut M,
        gather: &mut Gather<T>,
        old: u64,
        len: u64,
        new: u64,
    ) -> Result<(), VmError>
    where
        M: TableMemory + ?Sized,
        T: TlbFlush,
    {
        // The lock moves with the range (Linux's VM_LOCKED moves with the
        // region): computed now, installed once the move is done.
        let locked = self.locked.moved(old, len, new)?;
        self.fault_cache = None;
        let end = old + len;
        let mut moved: Vec<Vma> = Vec::new();
        moved
            .try_reserve_exact(self.vmas.overlapping(old, end).len())
            .map_err(|_| VmError::NoMemory)?;
        moved.extend(
            self.vmas
                .overlapping(old, end)
                .map(|v| shifted(v, old, end, new)),
        );
        if moved.is_empty() {
            return Err(VmError::NotMapped { addr: old });
        }
        // Room for the new regions and the split the old range may need,
        // so nothing below fails half-way.
        self.vmas.try_reserve(moved.len() + 1)?;
        // The present leaves (a walk visits only what exists, so a huge
        // sparse region costs what is mapped, not its length).
        let mut count = Leaves(None, 0);
        let _ = self.tables.walk(mem, old, end, &mut count);
        let mut leaves = Leaves(Some(Vec::new()), 0);
        if let Some(list) = &mut leaves.0 {
            list.try_reserve_exact(count.1)
                .map_err(|_| VmError::NoMemory)?;
        }
        let _ = self.tables.walk(mem, old, end, &mut leaves);
        let leaves = leaves.0.unwrap_or_default();
        for vma in &moved {
            self.vmas.map(*vma)?;
        }
        // Place every leaf at its new address; the reference each holds
        // moves with it once the old leaf is cleared below.
        for &(va, pte) in &leaves {
            let to = new + (va - old);
            let placed = match pte.swap_entry() {
                Some(entry) => self.tables.map_swap(mem, to, entry),
                None => self.tables.map(mem, to, pte.addr(), pte.flags()),
            };
            if placed.is_err() {
                // Out of table pages: take the copies out again (they own
                // nothing: the old leaves still hold the references) and
                // the new regions with them.
                let mut mem = GatherTables::new(mem, gather);
                let mut forget = |_: &mut GatherTables<'_, M, T>, _: u64, _: u64, _: Pte| {};
                let _ = self.tables.unmap_range(
                    &mut mem,
                    new,
                    new + len,
                    EmptyTables::Free,
                    &mut forget,
                );
                let _ = self.vmas.unmap(new, new + len);
                return Err(VmError::NoMemory);
            }
        }
        // Clear the old leaves; their references now belong to the new
        // ones. Tables left empty go through the gather.
        let mut mem = GatherTables::new(mem, gather);
        let mut forget = |_: &mut GatherTables<'_, M, T>, _: u64, _: u64, _: Pte| {};
        let _ = self
            .tables
            .unmap_range(&mut mem, old, end, EmptyTables::Free, &mut forget);
        mem.gather.add_range(old, end);
        self.locked = locked;
        self.vmas.unmap(old, end)?;
        Ok(())
    }
}

/// The part of `vma` inside `[old, end)`, moved to start at `new` (a file
/// region's offset follows its start).
fn shifted(vma: &Vma, old: u64, end: u64, new: u64) -> Vma {
    let start = vma.start.max(old);
    let stop = vma.end.min(end);
    let kind = match vma.kind {
        VmaKind::File { file, offset } => VmaKind::File {
            file,
            offset: offset + (start - vma.start),
        },
        anon => anon,
    };
    Vma {
        start: new + (start - old),
        end: new + (stop - old),
        kind,
        ..*vma
    }
}

/// Counts the present leaves and swap entries of a range, or lists them
/// with their addresses once the list has room.
struct Leaves(Option<Vec<(u64, Pte)>>, usize);

impl PageWalker for Leaves {
    fn leaf(&mut self, va: u64, _: u64, pte: Pte) {
        self.1 += 1;
        if let Some(list) = &mut self.0 {
            if list.len() < list.capacity() {
                list.push((va, pte));
            }
        }
    }

    fn swapped(&mut self, va: u64, pte: Pte) {
        self.leaf(va, 0, pte);
    }
}
