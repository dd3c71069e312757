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

use arrayvec::ArrayVec;

use crate::frame::FrameHandle;
use crate::paging::{TableMemory, ENTRIES};
use crate::swap::SwapEntry;
use crate::PAGE_SIZE;

/// Frames held before a gather flushes early to make room.
pub const FRAME_BATCH: usize = 64;

/// Page-table pages held before a gather flushes early.
pub const TABLE_BATCH: usize = 16;

/// A batch of frames waiting for a flush.
pub type FrameBatch<F> = ArrayVec<F, FRAME_BATCH>;

/// Flushing more pages than this invalidates the whole TLB instead (one
/// `invlpg` per page costs more beyond it; Linux's
/// `tlb_single_page_flush_ceiling` is 33).
pub const FLUSH_ALL_THRESHOLD: u64 = 32;

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
    tables: ArrayVec<u64, TABLE_BATCH>,
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
        Gather {
            tlb,
            start: 0,
            end: 0,
            frames: ArrayVec::new(),
            tables: ArrayVec::new(),
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
        if self.frames.is_full() {
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

    fn flush_tlb(&mut self) {
        if self.start == self.end {
            if core::mem::take(&mut self.table_flush_owed) {
                self.tlb.flush_all();
                self.tlb.flush_done();
                self.stats.full_flushes += 1;
            }
            return;
        }
        self.table_flush_owed = false;
        let pages = (self.end - self.start) / PAGE_SIZE;
        if pages > FLUSH_ALL_THRESHOLD {
            self.tlb.flush_all();
            self.stats.full_flushes += 1;
        } else {
            for i in 0..pages {
                self.tlb.flush_page(self.start + i * PAGE_SIZE);
            }
            self.stats.pages_flushed += pages;
        }
        self.tlb.flush_done();
        (self.start, self.end) = (0, 0);
    }

    fn flush_and_release(&mut self) {
        self.flush_tlb();
        if !self.frames.is_empty() {
            self.stats.frames_released += self.frames.len() as u64;
            self.tlb.release(&mut self.frames);
            // `release` may keep some (it must not); drop what is left.
            self.frames.clear();
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

    /// Frees the pending table pages. The TLB (including the paging-
    /// structure caches) must have been flushed since they were unlinked.
    fn free_tables<M: TableMemory + ?Sized>(&mut self, mem: &mut M) {
        for table in self.tables.drain(..) {
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
            self.tables.is_empty(),
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
        if self.gather.tables.is_full() {
            self.gather.flush_and_release();
            self.gather.free_tables(self.mem);
        }
        self.gather.tables.push(phys);
        self.gather.table_flush_owed = true;
    }
}

#[cfg(test)]
mod tests;
