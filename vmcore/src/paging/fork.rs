//! Fork: copying the user half of one tree into another, table by table.

use super::memory::{load, store, table_is_empty, Slot};
use super::tables::link_flags;
use super::{Level, MapError, PageTables, Pte, TableMemory, ENTRIES};

/// The body of [`PageTables::clone_user_for_fork`]: copies the user entries
/// of the parent table `table` at `level` (covering linear addresses from
/// `base`) into the child table `ctable`. Returns whether it stored
/// anything in `ctable`.
fn fork_table<M, F>(
    mem: &mut M,
    table: u64,
    ctable: u64,
    level: Level,
    base: u64,
    f: &mut F,
    count: &mut usize,
) -> Result<bool, MapError>
where
    M: TableMemory + ?Sized,
    F: FnMut(&mut M, u64, Pte) -> Option<(Pte, Pte)>,
{
    // The root's upper half is the shared kernel half.
    let entries = if level == Level::Pml4 {
        ENTRIES / 2
    } else {
        ENTRIES
    };
    let mut stored = false;
    let Some(lower) = level.lower() else {
        for idx in 0..entries {
            let pte = load(mem, table, idx);
            // Present leaves and swap entries are copied; empty ones not.
            if pte.0 == 0 {
                continue;
            }
            let va = base + idx as u64 * Level::Pt.entry_size();
            let existing = load(mem, ctable, idx);
            if existing.0 != 0 {
                return Err(MapError::AlreadyMapped { va, existing });
            }
            let Some((parent, child)) = f(mem, va, pte) else {
                continue;
            };
            if child.0 != 0 {
                store(mem, ctable, idx, child);
                *count += 1;
                stored = true;
            }
            if parent != pte && pte.is_present() {
                Slot {
                    table,
                    idx,
                    level: Level::Pt,
                }
                .replace(mem, pte, parent);
            }
        }
        return Ok(stored);
    };
    for idx in 0..entries {
        let pte = load(mem, table, idx);
        if !pte.is_present() {
            continue;
        }
        let lin = base + idx as u64 * level.entry_size();
        if level.may_be_huge() && pte.is_huge() {
            return Err(MapError::HugePageInTheWay { va: lin, level });
        }
        let centry = load(mem, ctable, idx);
        let (child_table, fresh) = if centry.is_present() {
            (centry.addr(), false)
        } else {
            let phys = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            store(mem, ctable, idx, Pte::new(phys, link_flags(lin)));
            (phys, true)
        };
        let result = fork_table(mem, pte.addr(), child_table, lower, lin, f, count);
        if fresh && !matches!(result, Ok(true)) && table_is_empty(mem, child_table) {
            // A fresh table that got nothing: do not keep it.
            store(mem, ctable, idx, Pte::EMPTY);
            mem.free_table(child_table);
        } else {
            stored = true;
        }
        result?;
    }
    Ok(stored)
}

impl PageTables {
    /// Fork: for every user 4 KiB leaf of `self`, calls `f(mem, va, pte)`
    /// (with the table memory, so a backend that counts frame references
    /// under the same lock as it allocates tables needs no second handle to
    /// it); if it
    /// returns `Some((parent, child))`, stores `parent` here and maps
    /// `child` at the same address in `child` (which should have an empty
    /// lower half; a present `child` entry already there is an error). `f`
    /// is only called once the child's tables for that page exist, so on
    /// `OutOfMemory` every `child` entry `f` produced is in place and the
    /// caller can simply `destroy` the child. Returns the number of leaves
    /// copied. A huge leaf in the user half is an error.
    ///
    /// Like Linux's `copy_page_range`, it goes table by table: each child
    /// table is found or made once, then a page table's 512 entries are
    /// copied in one tight loop.
    ///
    /// Pair it with [`crate::fault::fork_pte`] and a frame reference
    /// increment when the frame is shared.
    pub fn clone_user_for_fork<M, F>(
        &mut self,
        child: &mut PageTables,
        mem: &mut M,
        f: &mut F,
    ) -> Result<usize, MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(&mut M, u64, Pte) -> Option<(Pte, Pte)>,
    {
        let mut count = 0;
        fork_table(mem, self.root, child.root, Level::Pml4, 0, f, &mut count)?;
        Ok(count)
    }
}
