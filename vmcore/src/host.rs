//! Host-side [`TableMemory`]: page tables in boxed arrays keyed by a fake
//! physical address, with allocation accounting and failure injection so
//! tests can check for leaks and out-of-memory handling.

use std::boxed::Box;
use std::collections::HashMap;

use crate::paging::{TableMemory, ENTRIES};
use crate::PAGE_SIZE;

/// Page tables for host tests.
#[derive(Debug, Default)]
pub struct HostTables {
    tables: HashMap<u64, Box<[u64; ENTRIES]>>,
    next: u64,
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
        self.tables.len()
    }

    /// Total successful allocations and frees so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.allocs, self.frees)
    }

    /// True if `phys` is a live table.
    pub fn is_live(&self, phys: u64) -> bool {
        self.tables.contains_key(&phys)
    }

    /// Lets only `n` more allocations succeed (`None`: unlimited).
    pub fn set_budget(&mut self, n: Option<usize>) {
        self.budget = n;
    }

    /// A copy of the table at `phys`.
    pub fn read(&self, phys: u64) -> [u64; ENTRIES] {
        *self.tables[&phys]
    }
}

// SAFETY: `alloc_table` hands out distinct, page-aligned fake addresses
// below 2^52 (a counter, never reused) for fresh zeroed boxes. `table`
// returns a pointer into the live box for that address, which is 8-aligned,
// 4 KiB long and does not move until `free_table` drops it; unknown
// addresses panic. Tests are single-threaded, so no other access happens.
unsafe impl TableMemory for HostTables {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        match self.tables.get_mut(&phys) {
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
        self.next += 1;
        let phys = 0x10_0000 + self.next * PAGE_SIZE;
        self.tables.insert(phys, Box::new([0; ENTRIES]));
        self.allocs += 1;
        Some(phys)
    }

    fn free_table(&mut self, phys: u64) {
        assert!(
            self.tables.remove(&phys).is_some(),
            "double free of table {phys:#x}"
        );
        self.frees += 1;
    }
}
