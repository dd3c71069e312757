//! The memory page tables live in ([`TableMemory`]) and atomic access to
//! single entries in it.

use core::sync::atomic::{AtomicU64, Ordering};

use super::{Level, Pte, PteFlags, ENTRIES};

/// Access to the frames that hold page tables.
///
/// The kernel implements it with its direct map and the buddy allocator:
/// `table(phys)` is `(PHYS_OFFSET + phys) as *mut [u64; 512]`,
/// `alloc_table` takes an order-0 frame and zeroes it, `free_table` returns
/// it. The host tests use a map from address to boxed array.
///
/// # Safety
/// Implementors promise that:
/// - `alloc_table` returns the physical address of a 4 KiB-aligned,
///   zero-filled frame below 2^52 that nothing else uses until it is passed
///   to `free_table`;
/// - for any `phys` returned by `alloc_table` and not yet freed (and for
///   any root adopted with [`PageTables::from_root`](super::PageTables::from_root)), `table(phys)`
///   returns a pointer that is 8-byte aligned and valid for reads and
///   writes of 4 KiB for as long as the frame stays allocated, and that
///   anything else touching that memory meanwhile (other CPUs, the MMU)
///   does so atomically;
/// - `table` never returns a dangling pointer for an unknown `phys`: it
///   panics instead.
pub unsafe trait TableMemory {
    /// Pointer to the table in frame `phys`.
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES];
    /// A fresh zeroed table frame, or `None` when out of memory.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Gives back a table frame that no entry points to any more.
    fn free_table(&mut self, phys: u64);
}

/// The entry `idx` of table `table` as an atomic.
///
/// The reference borrows `mem` mutably, so the table cannot be freed (which
/// needs `&mut mem`) while it is in use.
pub(super) fn slot<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> &AtomicU64 {
    assert!(idx < ENTRIES);
    let entry = mem.table(table).cast::<u64>().wrapping_add(idx);
    // SAFETY: every `table` this module passes is the root (allocated by
    // `alloc_table` or adopted under `from_root`'s contract) or the address
    // in a present non-leaf entry, which this module only ever sets to live
    // tables from `alloc_table` and clears before freeing them. By the
    // `TableMemory` contract the pointer is then valid and 8-aligned for
    // 4 KiB, so `entry` (idx < 512) is in bounds, and all other accesses to
    // it are atomic. The returned lifetime is tied to the `&mut mem` borrow,
    // which prevents `free_table` while the reference lives.
    unsafe { AtomicU64::from_ptr(entry) }
}

pub(super) fn load<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> Pte {
    Pte(slot(mem, table, idx).load(Ordering::Acquire))
}

pub(super) fn store<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize, pte: Pte) {
    slot(mem, table, idx).store(pte.0, Ordering::Release);
}

/// Clears an entry, returning its final value (with any A/D bits the MMU
/// set up to that moment, like `ptep_get_and_clear`).
pub(super) fn take<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> Pte {
    Pte(slot(mem, table, idx).swap(0, Ordering::AcqRel))
}

/// Replaces an entry with `new` in one atomic exchange, returning its final
/// value (with any A/D bits the MMU set up to that moment).
pub(super) fn exchange<M: TableMemory + ?Sized>(
    mem: &mut M,
    table: u64,
    idx: usize,
    new: Pte,
) -> Pte {
    Pte(slot(mem, table, idx).swap(new.0, Ordering::AcqRel))
}

pub(super) fn table_is_empty<M: TableMemory + ?Sized>(mem: &mut M, table: u64) -> bool {
    (0..ENTRIES).all(|i| load(mem, table, i).0 == 0)
}

/// Where a leaf lives, handed to the internal visitors.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) table: u64,
    pub(super) idx: usize,
    pub(super) level: Level,
}

impl Slot {
    pub(super) fn take<M: TableMemory + ?Sized>(self, mem: &mut M) -> Pte {
        take(mem, self.table, self.idx)
    }

    /// Replaces the leaf that was seen as `seen` with `new`.
    ///
    /// A non-present `new` clears the entry (non-present entries are zero).
    /// A huge leaf stays huge, so it can never turn into a "table pointer"
    /// to arbitrary memory. A/D bits that the MMU set since `seen` are kept.
    /// Returns true if the entry was cleared.
    pub(super) fn replace<M: TableMemory + ?Sized>(self, mem: &mut M, seen: Pte, new: Pte) -> bool {
        if !new.is_present() {
            self.take(mem);
            return true;
        }
        self.exchange(mem, seen, new);
        false
    }

    /// Replaces the present leaf seen as `seen` with the present `new`,
    /// carrying over A/D bits the MMU set since; returns the entry replaced.
    pub(super) fn exchange<M: TableMemory + ?Sized>(self, mem: &mut M, seen: Pte, new: Pte) -> Pte {
        let new = if self.level.may_be_huge() {
            new.with(PteFlags::HUGE)
        } else {
            new
        };
        let atomic = slot(mem, self.table, self.idx);
        let mut cur = atomic.load(Ordering::Acquire);
        loop {
            let hw_new = cur & !seen.0 & PteFlags::HARDWARE_SET.0;
            match atomic.compare_exchange_weak(
                cur,
                new.0 | hw_new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Pte(cur),
                Err(now) => cur = now,
            }
        }
    }
}
