//! x86_64 4-level page tables: entries, the tree, and a range walker.
//!
//! The tree lives in physical frames that only the kernel can reach (through
//! its direct map), so every access goes through the [`TableMemory`] trait;
//! the host tests implement it with boxed arrays. Entries are read and
//! written as atomics because the MMU (on any CPU) sets the accessed and
//! dirty bits behind our back, the way Linux uses `READ_ONCE` and
//! `ptep_get_and_clear`.
//!
//! Invariants this module maintains for the tables it builds:
//! - every present entry at levels 4..2 without the huge bit points to a
//!   live page table;
//! - a non-present entry is zero (there is no swap), so "table is all
//!   zero" means "table is empty";
//! - lower-half (user) tables belong to one address space and are freed as
//!   soon as they become empty; upper-half (kernel) tables are shared by all
//!   address spaces and are never freed here.

mod entry;
mod error;
mod fork;
mod memory;
mod tables;
mod walk;

pub use entry::{Level, Pte, PteFlags, ADDR_MASK, ENTRIES};
pub use error::MapError;
pub use memory::TableMemory;
pub use tables::{EmptyTables, LeafEntry, PageTables};
pub use walk::{LeafUpdate, PageWalker, PageWalkerMut, WalkAction, WalkStep};

#[cfg(test)]
mod tests;
