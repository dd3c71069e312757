//! Page replacement as pure logic: which resident page to evict.
//!
//! A [`Policy`] tracks a bounded set of resident pages, named by `u64` ids
//! (frame numbers in the kernel, page numbers in a trace), and chooses the
//! next one to evict. Every policy is built with its capacity up front
//! ([`Fifo::with_capacity`] etc. fail with [`AllocError`] instead of
//! aborting) and never allocates afterwards, so the kernel can drive it from
//! reclaim, where allocating is not an option.
//!
//! - [`Fifo`], [`Lru`] (exact), [`Clock`] (second chance): the textbook
//!   policies.
//! - [`Ferrite`]: Ferrite's own: an active and an inactive list, with
//!   activation on refault decided from the evicted page's shadow (like
//!   Linux's `mm/workingset.c`), by comparing recencies (like LIRS): scan
//!   resistant and loop friendly. See [`ferrite`].
//! - [`opt`]: Belady's OPT, offline over a whole trace: the lower bound.
//! - [`trace`]: deterministic, seeded access traces; [`sim`]: runs a policy
//!   over a trace the way the kernel drives it (shadows included);
//!   [`quality`]: the replacement-quality table of `make bench`.
//!
//! # What the kernel feeds a policy
//!
//! | kernel event | call |
//! |---|---|
//! | a page becomes resident (fault, swap-in, page-cache fill); `shadow` is what [`Policy::evict`] returned when this page (not this frame) was last evicted, if the kernel kept it in the page's swap or page-cache slot | [`Policy::insert`] |
//! | an accessed bit found set (and cleared) while harvesting, or any other sign of use (`mark_page_accessed`) | [`Policy::touched`] |
//! | the owner frees or unmaps the page for good (munmap, exit, truncate) | [`Policy::remove`] |
//! | reclaim wants a frame: ask for a candidate, test-and-clear its accessed bits through the reverse map; if set, report [`Policy::touched`] and ask again; if it cannot be evicted now (locked, under writeback, pinned), [`Policy::rotate`] it; otherwise unmap it, write it if dirty, and [`Policy::evict`] it, keeping the returned [`Shadow`] | [`Policy::candidate`], [`Policy::evict`] |
//!
//! [`sim::Memory`] is exactly this loop, in one of two modes
//! ([`sim::Mode`]): every access reported as a touch (a trace sees every
//! access), or accessed bits that reclaim checks on candidates only, as
//! the kernel does.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod clock;
pub mod ferrite;
pub mod fifo;
pub mod loadavg;
pub mod lru;
pub mod opt;
pub mod quality;
pub mod rng;
pub mod sim;
mod table;
pub mod trace;

pub use clock::Clock;
pub use ferrite::{Ferrite, Kind, LruNode, Lruvec};
pub use fifo::Fifo;
pub use lru::Lru;

/// Width of a [`Shadow`]: every shadow's value is below `1 << SHADOW_BITS`,
/// so the kernel can pack one into a non-present entry (a swap-cache or
/// page-cache slot) next to a few tag bits.
pub const SHADOW_BITS: u32 = 31;

/// What a policy remembers about an evicted page (Linux: the shadow entry
/// left in the page-cache slot). Opaque to the kernel: store it where the
/// page used to be, hand it back to [`Policy::insert`] on refault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow(u64);

impl Shadow {
    /// The shadow as a number below `1 << SHADOW_BITS`.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// A shadow from [`Shadow::to_bits`]; bits at and above
    /// [`SHADOW_BITS`] are dropped.
    pub fn from_bits(bits: u64) -> Self {
        Shadow(bits & ((1 << SHADOW_BITS) - 1))
    }
}

/// The outcome of one access in a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The page was resident.
    Hit,
    /// The page was not resident and had to be brought in.
    Miss,
}

/// Building a policy failed: its fixed-size tables could not be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

/// Why [`Policy::insert`] refused a page (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Every slot is in use: evict first.
    Full,
    /// The page is already resident.
    Resident,
}

/// A page-replacement policy over a bounded set of resident pages.
///
/// No method allocates; none panics on any sequence of calls (unknown
/// pages are ignored or refused, as each method says).
pub trait Policy {
    /// Short name for tables ("LRU", "CLOCK", ...).
    fn name(&self) -> &'static str;

    /// The most pages this policy can track at once.
    fn capacity(&self) -> usize;

    /// Number of resident pages.
    fn len(&self) -> usize;

    /// Whether no page is resident.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `page` is resident.
    fn contains(&self, page: u64) -> bool;

    /// `page` became resident. `shadow` is the [`Shadow`] from its last
    /// eviction, if known (a refault).
    fn insert(&mut self, page: u64, shadow: Option<Shadow>) -> Result<(), InsertError>;

    /// `page` was used (accessed bit found set). Ignored if not resident.
    fn touched(&mut self, page: u64);

    /// `page` left memory for good (freed, unmapped by its owner): forget
    /// it, leaving no shadow. Returns whether it was resident.
    fn remove(&mut self, page: u64) -> bool;

    /// The page the policy would evict next, or `None` when empty. May
    /// reorder internal state (advance a clock hand, demote pages) but
    /// removes nothing.
    fn candidate(&mut self) -> Option<u64>;

    /// Removes `page` as evicted and returns its shadow (`None` if it was
    /// not resident).
    fn evict(&mut self, page: u64) -> Option<Shadow>;

    /// `page`, a candidate, cannot be evicted right now: move it out of the
    /// way without counting a use. Ignored if not resident.
    fn rotate(&mut self, page: u64);

    /// Chooses a victim and evicts it: [`Policy::candidate`] then
    /// [`Policy::evict`].
    fn victim(&mut self) -> Option<(u64, Shadow)> {
        let page = self.candidate()?;
        let shadow = self.evict(page)?;
        Some((page, shadow))
    }
}
pub mod oom;
pub mod psi;
