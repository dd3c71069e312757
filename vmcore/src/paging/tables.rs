//! [`PageTables`]: one address space's tree, and the single-page
//! operations on it (map, unmap, update, translate, [`LeafEntry`]) plus the
//! range operations built on the walker.

use alloc::vec::Vec;

use super::memory::{load, store, table_is_empty, take, Slot};
use super::walk::{
    linear_range, to_linear, walk_table, Mutating, ReadOnly, TableCounter, Visit, LINEAR_END,
};
use super::{
    LeafUpdate, Level, MapError, PageWalker, PageWalkerMut, Pte, PteFlags, TableMemory, WalkStep,
    ADDR_MASK, ENTRIES,
};
use crate::{is_canonical, is_page_aligned, USER_END};

/// The leaf entry for one page (see [`PageTables::leaf_entry`]): a 4 KiB
/// entry, present or empty, or a present huge leaf.
pub struct LeafEntry<'t> {
    pub(super) tables: &'t mut PageTables,
    va: u64,
    /// Where the entry is; `None` while tables on the way are missing.
    slot: Option<Slot>,
    pte: Pte,
}

impl LeafEntry<'_> {
    /// The entry as the walk read it ([`Pte::EMPTY`] if there is none).
    pub fn pte(&self) -> Pte {
        self.pte
    }

    /// The level it sits at: [`Level::Pt`] unless it is a huge leaf.
    pub fn level(&self) -> Level {
        self.slot.map_or(Level::Pt, |s| s.level)
    }

    /// Writes `new`, which must be present (clearing goes through
    /// [`PageTables::unmap`], which also frees empty tables), creating
    /// missing tables. A/D bits the MMU set since the walk are kept. Returns
    /// the entry replaced, with those bits. On failure nothing changed.
    pub fn set<M: TableMemory + ?Sized>(self, mem: &mut M, new: Pte) -> Result<Pte, MapError> {
        if !new.is_present() {
            return Err(MapError::NotPresent);
        }
        match self.slot {
            Some(slot) if self.pte.is_present() => Ok(slot.exchange(mem, self.pte, new)),
            Some(slot) => {
                // An empty entry: the MMU never writes to one.
                store(mem, slot.table, slot.idx, new);
                Ok(Pte::EMPTY)
            }
            None => {
                self.tables.map_pte(mem, self.va, new)?;
                Ok(Pte::EMPTY)
            }
        }
    }
}

/// Flags of an entry linking to a lower table for `va`: they allow
/// everything (user + writable in the lower half, writable in the upper
/// half), so the leaf alone decides.
pub(super) const fn link_flags(va: u64) -> PteFlags {
    if va < USER_END {
        PteFlags(PteFlags::PRESENT.0 | PteFlags::WRITABLE.0 | PteFlags::USER.0)
    } else {
        PteFlags(PteFlags::PRESENT.0 | PteFlags::WRITABLE.0)
    }
}

/// One address space's page-table tree, named by its root (the PML4 frame,
/// what CR3 holds).
///
/// It does not free anything on drop (it cannot reach the memory): call
/// [`PageTables::destroy`].
#[derive(Debug, PartialEq, Eq)]
pub struct PageTables {
    pub(super) root: u64,
}

/// What [`PageTables::unmap_range`] does with the tables it empties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyTables {
    /// Free them (`munmap`, exit).
    Free,
    /// Keep them for the next fault there (`MADV_DONTNEED`).
    Keep,
}

impl PageTables {
    /// An empty tree: a fresh zeroed root.
    pub fn new<M: TableMemory + ?Sized>(mem: &mut M) -> Option<PageTables> {
        Some(PageTables {
            root: mem.alloc_table()?,
        })
    }

    /// A new user address space: an empty lower half and the kernel half
    /// (root entries 256..512) shared with `kernel`, as Linux's `pgd_alloc`
    /// copies the kernel PGD entries. For later kernel mappings to show up
    /// everywhere, the kernel should populate all 256 upper root entries
    /// before creating processes.
    pub fn new_user<M: TableMemory + ?Sized>(
        mem: &mut M,
        kernel: &PageTables,
    ) -> Option<PageTables> {
        let tables = PageTables::new(mem)?;
        for idx in ENTRIES / 2..ENTRIES {
            let entry = load(mem, kernel.root, idx);
            store(mem, tables.root, idx, entry);
        }
        Some(tables)
    }

    /// Adopts an existing tree, e.g. the one the bootloader built.
    ///
    /// # Safety
    /// `root` must be a page-table frame that the `TableMemory` used with
    /// this value accepts, and every present non-leaf entry reachable from
    /// it must point to such a frame, recursively (the bootloader's tables
    /// satisfy this). Lower-half tables reachable from it must not be shared
    /// with another `PageTables`, since they will be freed when empty.
    pub const unsafe fn from_root(root: u64) -> PageTables {
        PageTables { root }
    }

    /// Physical address of the root, for CR3.
    pub const fn root(&self) -> u64 {
        self.root
    }

    /// Maps the 4 KiB page at `va` to frame `pa` with `flags` (PRESENT is
    /// implied). Missing tables are created; their entries allow everything
    /// (user + writable in the lower half, writable in the upper half) so
    /// the leaf alone decides. On failure nothing is changed.
    pub fn map<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        pa: u64,
        flags: PteFlags,
    ) -> Result<(), MapError> {
        if !is_page_aligned(pa) {
            return Err(MapError::Unaligned(pa));
        }
        if pa & !ADDR_MASK != 0 {
            return Err(MapError::BadPhysAddr(pa));
        }
        if flags.contains(PteFlags::HUGE) {
            return Err(MapError::HugeFlag);
        }
        self.map_pte(mem, va, Pte::new(pa, flags.with(PteFlags::PRESENT)))
    }

    /// Reclaim: if the 4 KiB leaf at `va` maps the frame at `frame`,
    /// replaces it with the non-present swap entry `entry` in one atomic
    /// exchange and returns the leaf it replaced (with its final A/D bits;
    /// its frame reference is the caller's now). `None`, and no change, if
    /// the leaf maps something else or nothing.
    pub fn replace_with_swap<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        frame: u64,
        entry: crate::swap::SwapEntry,
    ) -> Option<Pte> {
        self.exchange_leaf(mem, va, frame, entry.to_pte())
    }

    /// Reclaim: if the 4 KiB leaf at `va` maps the frame at `frame`, clears
    /// it in one atomic exchange and returns the leaf it cleared (with its
    /// final A/D bits; its frame reference is the caller's now). `None`,
    /// and no change, if the leaf maps something else or nothing. Tables
    /// left empty stay (the region is still there).
    pub fn clear_leaf_of<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        frame: u64,
    ) -> Option<Pte> {
        self.exchange_leaf(mem, va, frame, Pte::EMPTY)
    }

    /// Swaps the present 4 KiB leaf at `va` that maps `frame` for `new`.
    fn exchange_leaf<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        frame: u64,
        new: Pte,
    ) -> Option<Pte> {
        if !is_canonical(va) || !is_page_aligned(va) {
            return None;
        }
        let (path, level, pte) = self.path(mem, va);
        if level != Level::Pt || !pte.is_present() || pte.addr() != frame {
            return None;
        }
        let (table, idx) = path[Level::Pml4 as usize - Level::Pt as usize];
        Some(super::memory::exchange(mem, table, idx, new))
    }

    /// Writes the non-present swap leaf `pte` at `va` (mremap moving a
    /// swapped-out page), creating missing tables; the entry there must be
    /// empty.
    pub fn map_swap<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        entry: crate::swap::SwapEntry,
    ) -> Result<(), MapError> {
        let slot = self.leaf_slot(mem, va)?;
        let existing = load(mem, slot.table, slot.idx);
        if existing.0 != 0 {
            return Err(MapError::AlreadyMapped { va, existing });
        }
        store(mem, slot.table, slot.idx, entry.to_pte());
        Ok(())
    }

    pub(super) fn map_pte<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        pte: Pte,
    ) -> Result<(), MapError> {
        let slot = self.leaf_slot(mem, va)?;
        let existing = load(mem, slot.table, slot.idx);
        if existing.is_present() {
            return Err(MapError::AlreadyMapped { va, existing });
        }
        store(mem, slot.table, slot.idx, pte);
        Ok(())
    }

    /// The level-1 slot for `va`, creating missing tables. All tables are
    /// allocated before any is linked in, so running out of memory leaves
    /// the tree as it was.
    fn leaf_slot<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
    ) -> Result<Slot, MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical(va));
        }
        if !is_page_aligned(va) {
            return Err(MapError::Unaligned(va));
        }
        let mut table = self.root;
        let mut level = Level::Pml4;
        while let Some(lower) = level.lower() {
            let entry = load(mem, table, level.index(va));
            if !entry.is_present() {
                break;
            }
            if level.may_be_huge() && entry.is_huge() {
                return Err(MapError::HugePageInTheWay { va, level });
            }
            table = entry.addr();
            level = lower;
        }
        let missing = level as usize - 1;
        let mut fresh = [0u64; 3];
        for i in 0..missing {
            match mem.alloc_table() {
                Some(phys) => fresh[i] = phys,
                None => {
                    for &phys in &fresh[..i] {
                        mem.free_table(phys);
                    }
                    return Err(MapError::OutOfMemory);
                }
            }
        }
        let link = link_flags(va);
        for &phys in &fresh[..missing] {
            debug_assert!(is_page_aligned(phys) && phys & !ADDR_MASK == 0);
            store(mem, table, level.index(va), Pte::new(phys, link));
            table = phys;
            level = level.lower().unwrap_or(Level::Pt);
        }
        Ok(Slot {
            table,
            idx: Level::Pt.index(va),
            level: Level::Pt,
        })
    }

    /// The path from the root to the leaf (or hole) for `va`: the table and
    /// index at each level, and the level and entry where it stopped.
    pub(super) fn path<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> ([(u64, usize); 4], Level, Pte) {
        let mut path = [(0, 0); 4];
        let mut table = self.root;
        let mut level = Level::Pml4;
        loop {
            let idx = level.index(va);
            path[Level::Pml4 as usize - level as usize] = (table, idx);
            let entry = load(mem, table, idx);
            match level.lower() {
                Some(lower) if entry.is_present() && !(level.may_be_huge() && entry.is_huge()) => {
                    table = entry.addr();
                    level = lower;
                }
                _ => return (path, level, entry),
            }
        }
    }

    /// The entry that maps `va` (or would map it), found by one walk, for a
    /// fault handler to read, decide on and rewrite in place, as Linux does
    /// through `vmf->pte`. The entry borrows the tree, so no table can be
    /// freed while it is held. `None` for a non-canonical or unaligned `va`.
    pub fn leaf_entry<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
    ) -> Option<LeafEntry<'_>> {
        if !is_canonical(va) || !is_page_aligned(va) {
            return None;
        }
        let (path, level, pte) = self.path(mem, va);
        // A walk that stops at a missing table above the last level has no
        // slot yet: `set` creates the tables.
        let slot = (pte.is_present() || level == Level::Pt).then(|| {
            let (table, idx) = path[Level::Pml4 as usize - level as usize];
            Slot { table, idx, level }
        });
        Some(LeafEntry {
            tables: self,
            va,
            slot,
            pte: if slot.is_some() { pte } else { Pte::EMPTY },
        })
    }

    /// Removes the leaf mapping `va` and returns it (with its final A/D
    /// bits). Lower-half tables left empty are freed, up to but not
    /// including the root. A huge leaf is removed only if `va` is its first
    /// address; otherwise, and for bad addresses, returns `None`.
    pub fn unmap<M: TableMemory + ?Sized>(&mut self, mem: &mut M, va: u64) -> Option<Pte> {
        if !is_canonical(va) || !is_page_aligned(va) {
            return None;
        }
        let (path, level, entry) = self.path(mem, va);
        if !entry.is_present() || va & (level.entry_size() - 1) != 0 {
            return None;
        }
        let depth = Level::Pml4 as usize - level as usize;
        let (table, idx) = path[depth];
        let old = take(mem, table, idx);
        if va < USER_END {
            // Free tables bottom-up while they are empty; path[0] is the root.
            for d in (1..=depth).rev() {
                let (table, _) = path[d];
                if !table_is_empty(mem, table) {
                    break;
                }
                let (parent, pidx) = path[d - 1];
                store(mem, parent, pidx, Pte::EMPTY);
                mem.free_table(table);
            }
        }
        Some(old)
    }

    /// Rewrites the leaf mapping `va` (any size) with `f`; returns the new
    /// entry, or `None` if nothing is mapped. See [`LeafUpdate::Set`] for
    /// how the result is sanitised.
    pub fn update<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        f: impl FnOnce(Pte) -> Pte,
    ) -> Option<Pte> {
        if !is_canonical(va) {
            return None;
        }
        let (path, level, entry) = self.path(mem, va);
        if !entry.is_present() {
            return None;
        }
        let (table, idx) = path[Level::Pml4 as usize - level as usize];
        let new = f(entry);
        if (Slot { table, idx, level }).replace(mem, entry, new) {
            // Cleared through `update`: free tables as unmap would.
            if va < USER_END {
                self.free_empty_path(mem, va);
            }
            return Some(Pte::EMPTY);
        }
        Some(load(mem, table, idx))
    }

    fn free_empty_path<M: TableMemory + ?Sized>(&mut self, mem: &mut M, va: u64) {
        let (path, level, _) = self.path(mem, va);
        let depth = Level::Pml4 as usize - level as usize;
        for d in (1..=depth).rev() {
            let (table, _) = path[d];
            if !table_is_empty(mem, table) {
                break;
            }
            let (parent, pidx) = path[d - 1];
            store(mem, parent, pidx, Pte::EMPTY);
            mem.free_table(table);
        }
    }

    /// Replaces the flags of the leaf mapping `va`, keeping its address, its
    /// huge bit and the MMU's A/D bits. Returns the new entry.
    pub fn protect<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        flags: PteFlags,
    ) -> Option<Pte> {
        self.update(mem, va, |old| {
            let keep = old.flags() & (PteFlags::HUGE | PteFlags::HARDWARE_SET);
            Pte(old.0 & ADDR_MASK).with(flags | keep | PteFlags::PRESENT)
        })
    }

    /// Translates `va`: the physical address, the leaf entry, and the level
    /// it was found at (1: 4 KiB, 2: 2 MiB, 3: 1 GiB page).
    pub fn translate<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> Option<(u64, Pte, Level)> {
        if !is_canonical(va) {
            return None;
        }
        let (_, level, entry) = self.path(mem, va);
        if !entry.is_present() || level == Level::Pml4 {
            return None;
        }
        let offset = va & (level.entry_size() - 1);
        let base = if level == Level::Pt {
            entry.addr()
        } else {
            entry.huge_addr(level)
        };
        Some((base | offset, entry, level))
    }

    /// Every step of translating `va`, root first, ending at the leaf or at
    /// the first non-present entry.
    pub fn translate_walk<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> Result<Vec<WalkStep>, MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical(va));
        }
        let (path, last, _) = self.path(mem, va);
        let depth = Level::Pml4 as usize - last as usize;
        let mut steps = Vec::with_capacity(depth + 1);
        let mut level = Level::Pml4;
        for &(table, index) in &path[..=depth] {
            let entry = load(mem, table, index);
            steps.push(WalkStep {
                level,
                table,
                index,
                entry,
            });
            level = level.lower().unwrap_or(Level::Pt);
        }
        Ok(steps)
    }

    /// Visits `[start, end)` level by level (see [`PageWalker`]). `end` may
    /// be [`USER_END`] or 0 for "to the top" (unless `start` is 0 too:
    /// `[0, 0)` is empty).
    pub fn walk<M: TableMemory + ?Sized, W: PageWalker + ?Sized>(
        &self,
        mem: &mut M,
        start: u64,
        end: u64,
        walker: &mut W,
    ) -> Result<(), MapError> {
        let (lo, hi) = linear_range(start, end)?;
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut ReadOnly(walker));
        }
        Ok(())
    }

    /// [`PageTables::walk`] over the whole address space, both halves.
    pub fn walk_all<M: TableMemory + ?Sized, W: PageWalker + ?Sized>(
        &self,
        mem: &mut M,
        walker: &mut W,
    ) {
        walk_table(
            mem,
            self.root,
            Level::Pml4,
            0,
            LINEAR_END,
            &mut ReadOnly(walker),
        );
    }

    /// Like [`PageTables::walk`], but the walker may rewrite or clear
    /// leaves; lower-half tables that become empty are freed.
    pub fn walk_mut<M: TableMemory + ?Sized, W: PageWalkerMut + ?Sized>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        walker: &mut W,
    ) -> Result<(), MapError> {
        let (lo, hi) = linear_range(start, end)?;
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut Mutating(walker));
        }
        Ok(())
    }

    /// [`PageTables::walk_mut`] with a closure `f(va, size, pte)`, e.g. for
    /// `mprotect`: `|_, _, pte| LeafUpdate::Set(fault::protect_pte(&vma, pte))`.
    pub fn update_leaves<M, F>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        f: &mut F,
    ) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, u64, Pte) -> LeafUpdate,
    {
        struct Closure<'a, F>(&'a mut F);
        impl<F: FnMut(u64, u64, Pte) -> LeafUpdate> PageWalkerMut for Closure<'_, F> {
            fn leaf(&mut self, va: u64, size: u64, pte: Pte) -> LeafUpdate {
                (self.0)(va, size, pte)
            }
        }
        self.walk_mut(mem, start, end, &mut Closure(f))
    }

    /// Clears every leaf lying entirely inside `[start, end)`, calling
    /// `f(mem, va, size, final_pte)` for each so the caller can take over
    /// its frame reference (or, for a swap entry, its slot reference). With [`EmptyTables::Free`] (`munmap`, exit),
    /// lower-half tables left empty, or empty and wholly inside the range,
    /// are freed; with [`EmptyTables::Keep`] (`MADV_DONTNEED`, as Linux's
    /// `zap_page_range`: the range stays mapped, so the next fault reuses
    /// them) none is. A huge leaf only partly inside is left alone. Returns
    /// the number of leaves cleared.
    pub fn unmap_range<M, F>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        tables: EmptyTables,
        f: &mut F,
    ) -> Result<usize, MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(&mut M, u64, u64, Pte),
    {
        let free_tables = tables == EmptyTables::Free;
        struct Unmapper<'a, F> {
            f: &'a mut F,
            start: u64,
            end: u64,
            count: usize,
            free_tables: bool,
        }
        impl<M: TableMemory + ?Sized, F: FnMut(&mut M, u64, u64, Pte)> Visit<M> for Unmapper<'_, F> {
            fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, _: Pte) -> bool {
                let (lin, lin_start) = (to_linear(va), to_linear(self.start));
                if lin < lin_start || lin + size > self.end {
                    return false;
                }
                let old = slot.take(mem);
                (self.f)(mem, va, size, old);
                self.count += 1;
                true
            }
            fn swapped(&mut self, mem: &mut M, slot: Slot, va: u64, _: Pte) -> bool {
                let lin = to_linear(va);
                if lin < to_linear(self.start) || lin + 0x1000 > self.end {
                    return false;
                }
                let old = slot.take(mem);
                (self.f)(mem, va, 0x1000, old);
                self.count += 1;
                true
            }
            fn frees_tables(&self) -> bool {
                self.free_tables
            }
            fn frees_covered_tables(&self) -> bool {
                self.free_tables
            }
        }
        let (lo, hi) = linear_range(start, end)?;
        let mut v = Unmapper {
            f,
            start,
            end: hi,
            count: 0,
            free_tables,
        };
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut v);
        }
        Ok(v.count)
    }

    /// Exit / exec: clears every user (lower-half) leaf, calling `f(va,
    /// final_pte)` for each, and frees every lower-half table. Afterwards
    /// only the root (and the shared kernel half) remain.
    pub fn teardown_user<M, F>(&mut self, mem: &mut M, f: &mut F)
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, Pte),
    {
        let mut each = |_: &mut M, va: u64, _: u64, pte: Pte| f(va, pte);
        // The whole lower half is a valid range, so this cannot fail.
        let _ = self.unmap_range(mem, 0, USER_END, EmptyTables::Free, &mut each);
    }

    /// [`PageTables::teardown_user`], then frees the root. The kernel-half
    /// tables are shared and stay.
    pub fn destroy<M, F>(mut self, mem: &mut M, f: &mut F)
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, Pte),
    {
        self.teardown_user(mem, f);
        mem.free_table(self.root);
    }

    /// Number of page-table pages reachable from the root, including the
    /// root and the (shared) kernel half.
    pub fn table_count<M: TableMemory + ?Sized>(&self, mem: &mut M) -> usize {
        let mut counter = TableCounter(1);
        self.walk_all(mem, &mut counter);
        counter.0
    }

    /// Page-table pages this address space owns: the root plus every
    /// lower-half table (for meminfo's `PageTables` and per-process stats).
    pub fn user_table_count<M: TableMemory + ?Sized>(&self, mem: &mut M) -> usize {
        let mut counter = TableCounter(1);
        let _ = self.walk(mem, 0, USER_END, &mut counter);
        counter.0
    }
}
