//! Ferrite's virtual-memory core: the parts of virtual memory that are pure
//! decisions and bookkeeping, so they can be tested on the host.
//!
//! - [`vma`]: the per-process set of virtual memory areas (what *should* be
//!   mapped, with which protection and backing), like Linux's
//!   `vm_area_struct`s in their maple tree.
//! - [`paging`]: x86_64 4-level page tables (what *is* mapped), reached
//!   through the [`paging::TableMemory`] trait, with a range walker in the
//!   spirit of Linux's `walk_page_range`.
//! - [`radix`]: the page cache's sparse index (page number → frame).
//! - [`range`]: user address ranges validated once (alignment, overflow,
//!   user space, the minimum mmap address) for every memory system call.
//! - [`fault`]: what to do about a page fault (demand zero, file fill,
//!   copy-on-write, stack growth or SIGSEGV), and how fork and mprotect
//!   rewrite leaf entries.
//! - [`frame`]: a counted frame reference as a value ([`frame::FrameHandle`]).
//! - [`gather`]: gather, flush, then free: frames and tables that leave the
//!   page tables wait for the TLB flush.
//! - [`swap`]: swap entries in non-present leaves (`swp_entry_t`).
//! - [`commit`]: the overcommit policy (`vm.overcommit_memory`): may this
//!   many more pages be committed?
//! - [`space`]: an address space (regions + tables) and every operation on
//!   it: the fault executor, unmap, protect, remap, fork, teardown.
//!
//! The kernel supplies the physical side (frames, the direct map, reference
//! counts, the TLB) through small traits; the host tests supply models of
//! it and run the very same code.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, feature = "host"))]
extern crate std;

pub mod commit;
pub mod fault;
pub mod frame;
pub mod gather;
pub mod hiwater;
#[cfg(any(test, feature = "host"))]
pub mod host;
pub mod mlock;
pub mod paging;
pub mod radix;
pub mod range;
pub mod rlimit;
pub mod space;
pub mod swap;
pub mod vma;

pub use fault::{FaultAccess, FaultAction, SegvReason};
pub use paging::{LeafEntry, Level, MapError, PageTables, Pte, PteFlags, TableMemory};
pub use range::{RangeError, UserRange};
pub use vma::{Prot, Sharing, VmError, Vma, VmaKind, VmaSet};

/// Size of a base page (and of a page table): [`mmcore::PAGE_SIZE`], the
/// one definition, as a `u64` for addresses.
pub const PAGE_SIZE: u64 = mmcore::PAGE_SIZE as u64;

/// Exclusive end of the user (lower) half of the canonical address space.
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// Lowest user address anything is ever mapped at (Linux's
/// `mmap_min_addr`): a null pointer plus a small offset always faults. New
/// mappings are placed at or above it ([`UserRange::placement`]), and a
/// grows-down region never grows below it ([`fault::decide`]).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;

/// Rounds `addr` down to a page boundary.
pub const fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds `addr` up to a page boundary, or `None` if that overflows.
pub const fn page_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(a) => Some(page_down(a)),
        None => None,
    }
}

/// True if `addr` is a multiple of [`PAGE_SIZE`].
pub const fn is_page_aligned(addr: u64) -> bool {
    addr & (PAGE_SIZE - 1) == 0
}

/// True if `va` is canonical for 48-bit virtual addresses (bits 63..47 all
/// equal), i.e. the CPU would not raise #GP for using it.
pub const fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}
