//! Range walks over the tree: the public visitor traits ([`PageWalker`],
//! [`PageWalkerMut`]), the linear form of addresses they iterate over, and
//! the one recursive [`walk_table`] every walk is built on.

use core::fmt;

use super::memory::{load, store, table_is_empty, Slot};
use super::{Level, MapError, Pte, TableMemory, ENTRIES};
use crate::{is_canonical, USER_END};

/// What a walker wants done with a present non-leaf entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkAction {
    /// Visit the table it points to.
    Descend,
    /// Do not look below this entry.
    Skip,
}

/// Read-only visitor for [`PageTables::walk`](super::PageTables::walk) (Linux's `mm_walk_ops`).
///
/// Addresses are canonical. An `end` of 0 means the top of the address
/// space (2^64 wrapped).
pub trait PageWalker {
    /// A present entry pointing to a table at `level - 1`, covering
    /// `[va, va + level.entry_size())`.
    fn entry(&mut self, level: Level, va: u64, pte: Pte) -> WalkAction {
        let _ = (level, va, pte);
        WalkAction::Descend
    }
    /// A present leaf mapping `[va, va + size)`: 4 KiB at level 1, or a
    /// huge leaf (2 MiB / 1 GiB) that may extend beyond the walked range.
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
        let _ = (va, size, pte);
    }
    /// `[start, end)` (clipped to the walked range) has nothing mapped: a
    /// non-present entry at `level` (an empty one, or a swap entry, which
    /// [`PageWalker::swapped`] sees first).
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        let _ = (start, end, level);
    }
    /// A 4 KiB page at `va` whose leaf is not present but records where the
    /// page went (a [`crate::swap::SwapEntry`]).
    fn swapped(&mut self, va: u64, pte: Pte) {
        let _ = (va, pte);
    }
}

/// What a mutating walker wants done with a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafUpdate {
    /// Leave it.
    Keep,
    /// Store this entry instead (a non-present one clears the leaf; a huge
    /// leaf stays huge).
    Set(Pte),
    /// Clear it. Lower-half tables left empty are freed.
    Clear,
}

/// Visitor for [`PageTables::walk_mut`](super::PageTables::walk_mut): like [`PageWalker`] but may
/// rewrite or clear leaves.
pub trait PageWalkerMut {
    /// As [`PageWalker::entry`].
    fn entry(&mut self, level: Level, va: u64, pte: Pte) -> WalkAction {
        let _ = (level, va, pte);
        WalkAction::Descend
    }
    /// As [`PageWalker::leaf`], returning what to do with the leaf.
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) -> LeafUpdate;
    /// As [`PageWalker::hole`].
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        let _ = (start, end, level);
    }
}

/// One step of a translation, for a `walk PID ADDR` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The table's level.
    pub level: Level,
    /// Physical address of the table.
    pub table: u64,
    /// Index used in that table.
    pub index: usize,
    /// The entry found there.
    pub entry: Pte,
}

impl fmt::Display for WalkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} @ {:#x} [{:3}] = {}",
            self.level.name(),
            self.table,
            self.index,
            self.entry
        )
    }
}

/// The linear (48-bit, hole-free) form of the address space that walks
/// iterate over: lower half is `[0, 2^47)`, upper half `[2^47, 2^48)`.
pub(super) const LINEAR_END: u64 = 1 << 48;
pub(super) const LINEAR_USER_END: u64 = USER_END;

pub(super) const fn to_linear(va: u64) -> u64 {
    va & (LINEAR_END - 1)
}

pub(super) const fn to_canonical(lin: u64) -> u64 {
    if lin & LINEAR_USER_END != 0 {
        lin | !(LINEAR_END - 1)
    } else {
        lin
    }
}

/// Canonical form of an exclusive linear end: the lower half ends at
/// [`USER_END`], the whole space at 0 (2^64 wrapped).
pub(super) const fn end_to_canonical(lin_end: u64) -> u64 {
    to_canonical(lin_end - 1).wrapping_add(1)
}

/// Converts a walk range to linear form: `start` canonical, `end` canonical
/// or [`USER_END`] or 0 (top of the address space).
pub(super) fn linear_range(start: u64, end: u64) -> Result<(u64, u64), MapError> {
    if !is_canonical(start) {
        return Err(MapError::NonCanonical(start));
    }
    if end == start {
        // Empty, even at 0: `[0, 0)` must never read as "to the top".
        let lin = to_linear(start);
        return Ok((lin, lin));
    }
    let lin_end = match end {
        0 => LINEAR_END,
        USER_END => LINEAR_USER_END,
        e if is_canonical(e) => to_linear(e),
        e => return Err(MapError::NonCanonical(e)),
    };
    let lin_start = to_linear(start);
    if lin_end < lin_start {
        return Err(MapError::BadRange { start, end });
    }
    Ok((lin_start, lin_end))
}

/// The internal visitor all walks are built on: sees `mem` and the leaf's
/// slot, and can stop the walk early.
pub(super) trait Visit<M: ?Sized> {
    fn entry(&mut self, _mem: &mut M, _level: Level, _va: u64, _pte: Pte) -> WalkAction {
        WalkAction::Descend
    }
    /// Returns true if it cleared the leaf.
    fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, pte: Pte) -> bool;
    /// A non-present, non-empty 4 KiB leaf (a swap entry); returns true if
    /// it cleared it.
    fn swapped(&mut self, _mem: &mut M, _slot: Slot, _va: u64, _pte: Pte) -> bool {
        false
    }
    fn hole(&mut self, _start: u64, _end: u64, _level: Level) {}
    fn stopped(&self) -> bool {
        false
    }
    /// Whether lower-half tables the walk leaves empty are freed (munmap)
    /// or kept for the next fault there (`MADV_DONTNEED`).
    fn frees_tables(&self) -> bool {
        true
    }
    /// Whether a table the walk covers entirely is freed if empty even
    /// when this walk cleared nothing in it (unmapping: a table an earlier
    /// `MADV_DONTNEED` left empty goes with the munmap or exit covering
    /// it).
    fn frees_covered_tables(&self) -> bool {
        false
    }
}

/// Visits the part `[start, end)` (linear, non-empty) of the table `table`
/// at `level`. Returns true if an entry of this table was cleared.
pub(super) fn walk_table<M, V>(
    mem: &mut M,
    table: u64,
    level: Level,
    start: u64,
    end: u64,
    v: &mut V,
) -> bool
where
    M: TableMemory + ?Sized,
    V: Visit<M> + ?Sized,
{
    let size = level.entry_size();
    let table_base = start & !(size * ENTRIES as u64 - 1);
    let mut cleared = false;
    for idx in level.index(start)..=level.index(end - 1) {
        if v.stopped() {
            break;
        }
        let entry_lin = table_base + idx as u64 * size;
        let (lo, hi) = (start.max(entry_lin), end.min(entry_lin + size));
        let va = to_canonical(entry_lin);
        let pte = load(mem, table, idx);
        if !pte.is_present() {
            if pte.0 != 0 && level == Level::Pt {
                cleared |= v.swapped(mem, Slot { table, idx, level }, va, pte);
            }
            v.hole(to_canonical(lo), end_to_canonical(hi), level);
            continue;
        }
        let Some(lower) = level
            .lower()
            .filter(|_| !(level.may_be_huge() && pte.is_huge()))
        else {
            cleared |= v.leaf(mem, Slot { table, idx, level }, va, size, pte);
            continue;
        };
        if v.entry(mem, level, va, pte) == WalkAction::Skip {
            continue;
        }
        let child = pte.addr();
        let covered = lo == entry_lin && hi == entry_lin + size;
        let emptied = walk_table(mem, child, lower, lo, hi, v);
        if (emptied || (covered && v.frees_covered_tables()))
            && entry_lin < LINEAR_USER_END
            && v.frees_tables()
            && table_is_empty(mem, child)
        {
            store(mem, table, idx, Pte::EMPTY);
            mem.free_table(child);
            cleared = true;
        }
    }
    cleared
}

pub(super) struct ReadOnly<'a, W: ?Sized>(pub(super) &'a mut W);

impl<M: TableMemory + ?Sized, W: PageWalker + ?Sized> Visit<M> for ReadOnly<'_, W> {
    fn entry(&mut self, _: &mut M, level: Level, va: u64, pte: Pte) -> WalkAction {
        self.0.entry(level, va, pte)
    }
    fn leaf(&mut self, _: &mut M, _: Slot, va: u64, size: u64, pte: Pte) -> bool {
        self.0.leaf(va, size, pte);
        false
    }
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        self.0.hole(start, end, level);
    }
    fn swapped(&mut self, _: &mut M, _: Slot, va: u64, pte: Pte) -> bool {
        self.0.swapped(va, pte);
        false
    }
}

pub(super) struct Mutating<'a, W: ?Sized>(pub(super) &'a mut W);

impl<M: TableMemory + ?Sized, W: PageWalkerMut + ?Sized> Visit<M> for Mutating<'_, W> {
    fn entry(&mut self, _: &mut M, level: Level, va: u64, pte: Pte) -> WalkAction {
        self.0.entry(level, va, pte)
    }
    fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, pte: Pte) -> bool {
        match self.0.leaf(va, size, pte) {
            LeafUpdate::Keep => false,
            LeafUpdate::Set(new) => slot.replace(mem, pte, new),
            LeafUpdate::Clear => {
                slot.take(mem);
                true
            }
        }
    }
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        self.0.hole(start, end, level);
    }
}

/// Counts the tables below the entries it descends through.
pub(super) struct TableCounter(pub(super) usize);

impl PageWalker for TableCounter {
    fn entry(&mut self, _: Level, _: u64, _: Pte) -> WalkAction {
        self.0 += 1;
        WalkAction::Descend
    }
}
