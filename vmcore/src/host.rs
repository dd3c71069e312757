//! Host-side [`TableMemory`]: page tables in boxed arrays keyed by a fake
//! physical address, with allocation accounting and failure injection so
//! tests can check for leaks and out-of-memory handling.

use std::boxed::Box;
use std::vec::Vec;

use crate::paging::{TableMemory, ENTRIES};
use crate::PAGE_SIZE;

/// Fake physical address of the first table.
const BASE: u64 = 0x10_0000;

/// Page tables for host tests.
///
/// Table `i` (in allocation order; addresses are never reused, so a stale
/// address is caught) lives at `BASE + i * PAGE_SIZE`. A vector rather than
/// a hash map keeps lookups cheap under Miri.
#[derive(Debug, Default)]
pub struct HostTables {
    tables: Vec<Option<Box<[u64; ENTRIES]>>>,
    live: usize,
    allocs: usize,
    frees: usize,
    budget: Option<usize>,
}

impl HostTables {
    /// No tables yet.
    pub fn new() -> HostTables {
        HostTables::default()
    }

    /// Number of live (allocated, not freed) tables.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Total successful allocations and frees so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.allocs, self.frees)
    }

    /// True if `phys` is a live table.
    pub fn is_live(&self, phys: u64) -> bool {
        self.slot(phys).is_some_and(|t| t.is_some())
    }

    /// Lets only `n` more allocations succeed (`None`: unlimited).
    pub fn set_budget(&mut self, n: Option<usize>) {
        self.budget = n;
    }

    /// A copy of the table at `phys`.
    pub fn read(&self, phys: u64) -> Option<[u64; ENTRIES]> {
        self.slot(phys)?.as_deref().copied()
    }

    fn index(phys: u64) -> Option<usize> {
        let offset = phys.checked_sub(BASE)?;
        (offset % PAGE_SIZE == 0).then_some((offset / PAGE_SIZE) as usize)
    }

    fn slot(&self, phys: u64) -> Option<&Option<Box<[u64; ENTRIES]>>> {
        self.tables.get(Self::index(phys)?)
    }
}

// SAFETY: `alloc_table` hands out distinct, page-aligned fake addresses
// below 2^52 (never reused) for fresh zeroed boxes. `table`
// returns a pointer into the live box for that address, which is 8-aligned,
// 4 KiB long and does not move until `free_table` drops it; unknown
// addresses panic. Tests are single-threaded, so no other access happens.
unsafe impl TableMemory for HostTables {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        let table = Self::index(phys)
            .and_then(|i| self.tables.get_mut(i))
            .and_then(Option::as_mut);
        match table {
            Some(table) => &mut **table,
            None => panic!("{phys:#x} is not a live page table"),
        }
    }

    fn alloc_table(&mut self) -> Option<u64> {
        if let Some(budget) = &mut self.budget {
            if *budget == 0 {
                return None;
            }
            *budget -= 1;
        }
        let phys = BASE + self.tables.len() as u64 * PAGE_SIZE;
        self.tables.push(Some(Box::new([0; ENTRIES])));
        self.allocs += 1;
        self.live += 1;
        Some(phys)
    }

    fn free_table(&mut self, phys: u64) {
        let table = Self::index(phys)
            .and_then(|i| self.tables.get_mut(i))
            .and_then(Option::take);
        assert!(
            table.is_some(),
            "free of {phys:#x}, which is not a live table"
        );
        self.frees += 1;
        self.live -= 1;
    }
}
