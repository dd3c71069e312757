//! Gather, flush, then free: how frames and page tables leave an address
//! space (Linux's `mmu_gather`, Asterinas's `TlbFlusher`).
//!
//! When a leaf is cleared or replaced, the CPU may still hold the old
//! translation in its TLB, and keep using the old frame through it until
//! the entry is invalidated. So a frame taken out of live page tables must
//! not go back to the allocator (where it could become someone else's page,
//! or a page table) before the flush that covers it. A [`Gather`] collects,
//! while page tables change, the virtual range to flush and the frames and
//! table pages that left; [`Gather::finish`] (or a full batch) flushes the
//! TLB first and only then gives them back.
//!
//! Forgetting the flush is not possible: the type is `#[must_use]`, and
//! dropping it flushes and releases frames too (table pages need the table
//! memory, so a gather holding table pages must be finished; debug builds
//! check). The hardware side is the [`TlbFlush`] trait: on one CPU it
//! invalidates locally; an SMP kernel adds "and on every other CPU that
//! has this address space loaded" inside it, and nothing else changes.

use alloc::vec::Vec;
use arrayvec::ArrayVec;

use crate::frame::FrameHandle;
use crate::paging::{TableMemory, ENTRIES};
use crate::swap::SwapEntry;
use crate::PAGE_SIZE;

/// Frames a gather holds in place (no allocation); beyond them it moves
/// its frames to extra storage it allocates (fallibly) as it grows, up to
/// [`MAX_GATHER_FRAMES`], and flushes early only when that fails.
pub const FRAME_BATCH: usize = 64;

/// Page-table pages held in place; beyond them, as for frames, up to
/// [`MAX_GATHER_TABLES`].
pub const TABLE_BATCH: usize = 16;

/// The most frames one flush covers: a bigger unmap flushes (and, on
/// several CPUs, sends a shootdown round) once per this many frames.
/// Linux's `mmu_gather` stops at about 10 000 pages
/// (`MAX_GATHER_BATCH_COUNT` batches of a page each); 8192 frame handles
/// are 64 KiB of extra storage at most (a 32 MiB unmap in one round).
pub const MAX_GATHER_FRAMES: usize = 8192;

/// The most page-table pages one flush covers (one per 2 MiB unmapped,
/// plus the levels above: 512 cover the 8192 frames' tables many times).
pub const MAX_GATHER_TABLES: usize = 512;

/// A batch of frames waiting for a flush.
pub type FrameBatch<F> = ArrayVec<F, FRAME_BATCH>;

/// Flushing more pages than this invalidates the whole TLB instead (one
/// `invlpg` per page costs more beyond it; Linux's
/// `tlb_single_page_flush_ceiling` is 33). The same ceiling holds on the
/// other CPUs: a shootdown carries at most this many pages, more is a
/// full flush there too.
pub const FLUSH_ALL_THRESHOLD: u64 = 32;

/// How a flush of `pages` pages is done: one invalidation per page up to
/// the ceiling, the whole (non-global) TLB beyond.
pub fn flush_whole(pages: u64) -> bool {
    pages > FLUSH_ALL_THRESHOLD
}

/// The capacity to grow extra storage holding `len` items to, when `step`
/// more must fit and at most `limit` may be held; `None` when the limit
/// is reached (the gather flushes early instead). Doubling, so a big unmap
/// allocates O(log n) times.
pub fn grown_capacity(len: usize, step: usize, limit: usize) -> Option<usize> {
    let need = len.checked_add(step)?;
    if need > limit {
        return None;
    }
    Some(need.max(len.saturating_mul(2)).min(limit))
}

/// The MMU side of a gather: invalidating translations, and giving frames
/// back once that is done.
pub trait TlbFlush {
    /// The frame references the gather holds until the flush.
    type Frame: FrameHandle;

    /// Invalidates the translation of the page at `va` wherever the address
    /// space may be cached (a no-op if it is loaded nowhere).
    fn flush_page(&mut self, va: u64);

    /// Invalidates every (non-global) translation of the address space.
    fn flush_all(&mut self);

    /// Gives back the slot reference a swap entry taken out of the tables
    /// held (unmap, exit). No flush is needed: the MMU never caches a
    /// non-present entry.
    fn release_swap(&mut self, entry: SwapEntry);

    /// Gives back frames that left the tables, after the flush that covers
    /// them. The default drops each; the kernel frees a batch under one
    /// lock.
    fn release(&mut self, frames: &mut FrameBatch<Self::Frame>) {
        frames.clear();
    }

    /// Ends one flush: the invalidations asked since the last call must be
    /// complete on every CPU when this returns (an SMP kernel sends its
    /// batch to the other CPUs here and waits for them). The default does
    /// nothing (each call above already completed).
    fn flush_done(&mut self) {}

    /// Told before [`TlbFlush::flush_done`] when page tables were
    /// unlinked since the last flush: this flush must also reach CPUs that
    /// hold the space only lazily (an idle context or a kernel thread,
    /// which never use its user half but whose MMU may still walk its
    /// tables speculatively), since the tables are freed after it (Linux's
    /// `freed_tables`).
    fn tables_unlinked(&mut self) {}
}

/// Counts of what a gather did (for tests and statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatherStats {
    /// Single pages invalidated.
    pub pages_flushed: u64,
    /// Whole-TLB flushes.
    pub full_flushes: u64,
    /// Frames released after a flush.
    pub frames_released: u64,
    /// Page-table pages freed after a flush.
    pub tables_freed: u64,
    /// Flushes ended ([`TlbFlush::flush_done`] calls: on several CPUs, one
    /// shootdown round each at most).
    pub flushes: u64,
    /// Flushes made early because the gather could hold no more (its
    /// extra storage at its limit, or not allocatable).
    pub early_flushes: u64,
}

/// Pending TLB invalidations plus the frames and page-table pages waiting
/// for them. See the module documentation.
#[must_use = "a gather holds frames until it flushes: finish it"]
pub struct Gather<T: TlbFlush> {
    tlb: T,
    /// The range to invalidate, `start == end` when there is none.
    start: u64,
    end: u64,
    frames: FrameBatch<T::Frame>,
    /// Frames beyond the in-place batch (allocated as the gather grows).
    more_frames: Vec<T::Frame>,
    tables: ArrayVec<u64, TABLE_BATCH>,
    more_tables: Vec<u64>,
    /// How many frames / tables this gather may hold before it flushes.
    frame_limit: usize,
    table_limit: usize,
    /// A table page was unlinked since the last flush: the MMU's
    /// paging-structure caches may still point to it, so a flush is owed
    /// even if no leaf changed.
    table_flush_owed: bool,
    stats: GatherStats,
}

impl<T: TlbFlush> Gather<T> {
    /// An empty gather flushing through `tlb`. (Construction writes two
    /// lengths, not the batches: a gather on the fault path costs nothing
    /// until something is gathered. Keep it in place — `finish` takes it
    /// by reference — since moving its batches is a memory copy, which is
    /// dear under emulation.)
    #[inline]
    pub fn new(tlb: T) -> Gather<T> {
        Gather::with_limits(tlb, MAX_GATHER_FRAMES, MAX_GATHER_TABLES)
    }

    /// A gather that holds at most `frames` frames and `tables` table
    /// pages before it flushes early (at least the in-place batches).
    #[inline]
    pub fn with_limits(tlb: T, frames: usize, tables: usize) -> Gather<T> {
        Gather {
            tlb,
            start: 0,
            end: 0,
            frames: ArrayVec::new(),
            more_frames: Vec::new(),
            tables: ArrayVec::new(),
            more_tables: Vec::new(),
            frame_limit: frames.max(FRAME_BATCH),
            table_limit: tables.max(TABLE_BATCH),
            table_flush_owed: false,
            stats: GatherStats::default(),
        }
    }

    /// The flush backend.
    pub fn tlb(&self) -> &T {
        &self.tlb
    }

    /// What this gather has done so far.
    pub fn stats(&self) -> GatherStats {
        self.stats
    }

    /// Records that `[start, end)` (page aligned) changed and must be
    /// invalidated before anything gathered is released.
    pub fn add_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if self.start == self.end {
            (self.start, self.end) = (start, end);
        } else {
            self.start = self.start.min(start);
            self.end = self.end.max(end);
        }
    }

    /// Records that the leaf at `va` (of `size` bytes) was cleared or
    /// replaced, and holds the frame reference it owned until the flush.
    pub fn add_frame(&mut self, va: u64, size: u64, frame: T::Frame) {
        self.add_range(va, va.saturating_add(size));
        if self.frames.is_full() && !self.spill_frames() {
            self.stats.early_flushes += 1;
            self.flush_and_release();
        }
        self.frames.push(frame);
    }

    /// A swap entry left the tables: its slot reference goes back at once.
    pub fn add_swap(&mut self, entry: SwapEntry) {
        self.tlb.release_swap(entry);
    }

    /// Invalidates what is pending now and releases the frames it covered
    /// (page-table pages wait for [`Gather::finish`] or
    /// [`GatherTables`]'s next batch).
    pub fn flush(&mut self) {
        self.flush_and_release();
    }

    /// Moves the full in-place frame batch to the extra storage, growing
    /// it if it may and can; false if not (then the gather flushes).
    fn spill_frames(&mut self) -> bool {
        let len = self.more_frames.len();
        if self.more_frames.capacity() - len < FRAME_BATCH {
            let Some(cap) = grown_capacity(len, FRAME_BATCH, self.frame_limit - FRAME_BATCH) else {
                return false;
            };
            if self.more_frames.try_reserve_exact(cap - len).is_err() {
                return false;
            }
        }
        self.more_frames.extend(self.frames.drain(..));
        true
    }

    /// The same for page-table pages.
    fn spill_tables(&mut self) -> bool {
        let len = self.more_tables.len();
        if self.more_tables.capacity() - len < TABLE_BATCH {
            let Some(cap) = grown_capacity(len, TABLE_BATCH, self.table_limit - TABLE_BATCH) else {
                return false;
            };
            if self.more_tables.try_reserve_exact(cap - len).is_err() {
                return false;
            }
        }
        self.more_tables.extend(self.tables.drain(..));
        true
    }

    /// Frames and table pages held, waiting for a flush.
    pub fn held(&self) -> (usize, usize) {
        (
            self.frames.len() + self.more_frames.len(),
            self.tables.len() + self.more_tables.len(),
        )
    }

    /// The frames held now, waiting for a flush or (after
    /// [`Gather::flush_keep_frames`]) for their release.
    pub fn held_frames(&self) -> impl Iterator<Item = &T::Frame> {
        self.frames.iter().chain(self.more_frames.iter())
    }

    fn end_flush(&mut self, tables: bool) {
        if tables {
            self.tlb.tables_unlinked();
        }
        self.tlb.flush_done();
        self.stats.flushes += 1;
    }

    fn flush_tlb(&mut self) {
        let tables = core::mem::take(&mut self.table_flush_owed);
        if self.start == self.end {
            if tables {
                self.tlb.flush_all();
                self.end_flush(true);
                self.stats.full_flushes += 1;
            }
            return;
        }
        let pages = (self.end - self.start) / PAGE_SIZE;
        if flush_whole(pages) {
            self.tlb.flush_all();
            self.stats.full_flushes += 1;
        } else {
            for i in 0..pages {
                self.tlb.flush_page(self.start + i * PAGE_SIZE);
            }
            self.stats.pages_flushed += pages;
        }
        self.end_flush(tables);
        (self.start, self.end) = (0, 0);
    }

    fn flush_and_release(&mut self) {
        self.flush_tlb();
        self.release_frames();
    }

    /// Gives back every frame held (the flush covering them is done), a
    /// batch at a time: the in-place one, then the extra storage through
    /// it.
    fn release_frames(&mut self) {
        loop {
            if !self.frames.is_empty() {
                self.stats.frames_released += self.frames.len() as u64;
                self.tlb.release(&mut self.frames);
                // `release` may keep some (it must not); drop what is left.
                self.frames.clear();
            }
            let n = self.more_frames.len();
            if n == 0 {
                break;
            }
            let from = n.saturating_sub(FRAME_BATCH);
            self.frames.extend(self.more_frames.drain(from..));
        }
    }

    /// Flushes, then gives back every gathered frame and page-table page
    /// (the latter to `mem`). Returns what the gather did in all. The
    /// gather is empty afterwards and may be reused.
    #[inline]
    pub fn finish<M: TableMemory + ?Sized>(&mut self, mem: &mut M) -> GatherStats {
        self.flush_and_release();
        self.free_tables(mem);
        self.stats
    }

    /// Flushes and frees the gathered page-table pages, but keeps the
    /// frames: they are released when the gather is finished or dropped.
    /// For a caller that releases them later, outside a lock it holds now
    /// (the frames are unreachable through the TLB already: only the
    /// references are left to give back). Returns what the gather did so
    /// far.
    pub fn flush_keep_frames<M: TableMemory + ?Sized>(&mut self, mem: &mut M) -> GatherStats {
        self.flush_tlb();
        self.free_tables(mem);
        self.stats
    }

    /// Frees the pending table pages. The TLB (including the paging-
    /// structure caches) must have been flushed since they were unlinked.
    fn free_tables<M: TableMemory + ?Sized>(&mut self, mem: &mut M) {
        for table in self.tables.drain(..).chain(self.more_tables.drain(..)) {
            mem.free_table(table);
            self.stats.tables_freed += 1;
        }
    }
}

impl<T: TlbFlush> Drop for Gather<T> {
    /// A gather dropped without [`Gather::finish`] still flushes before it
    /// lets go of its frames. Table pages would leak: that is a bug.
    fn drop(&mut self) {
        self.flush_and_release();
        debug_assert!(
            self.tables.is_empty() && self.more_tables.is_empty(),
            "a gather holding page tables was dropped without finish()"
        );
    }
}

/// Table memory whose freed tables go to a gather: hand it to the page-table
/// operations that may free tables (unmapping, teardown), so a table the
/// MMU may still walk through its caches is freed only after the flush.
pub struct GatherTables<'a, M: TableMemory + ?Sized, T: TlbFlush> {
    /// The real table memory.
    pub mem: &'a mut M,
    /// Where frames and tables wait for the flush.
    pub gather: &'a mut Gather<T>,
}

impl<'a, M: TableMemory + ?Sized, T: TlbFlush> GatherTables<'a, M, T> {
    /// Wraps `mem` so its table frees go through `gather`.
    pub fn new(mem: &'a mut M, gather: &'a mut Gather<T>) -> Self {
        GatherTables { mem, gather }
    }
}

// SAFETY: every method forwards to `mem`, whose contract carries over;
// `free_table` only delays the free (a table no entry points to stays
// allocated a little longer), it never frees anything `mem` would not.
unsafe impl<M: TableMemory + ?Sized, T: TlbFlush> TableMemory for GatherTables<'_, M, T> {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        self.mem.table(phys)
    }

    fn alloc_table(&mut self) -> Option<u64> {
        self.mem.alloc_table()
    }

    fn free_table(&mut self, phys: u64) {
        if self.gather.tables.is_full() && !self.gather.spill_tables() {
            self.gather.stats.early_flushes += 1;
            self.gather.flush_and_release();
            self.gather.free_tables(self.mem);
        }
        self.gather.tables.push(phys);
        self.gather.table_flush_owed = true;
    }
}

#[cfg(test)]
mod tests;
