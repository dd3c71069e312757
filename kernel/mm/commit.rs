//! Overcommit accounting: `Committed_AS`, `CommitLimit` and the
//! `vm.overcommit_*` tunables, as in Linux.
//!
//! Every page of an accountable region (private and writable, unless
//! `MAP_NORESERVE` is honoured: [`vmcore::Vma::accountable`]) and of every
//! shared anonymous object is *committed* from the moment it is mapped or
//! made until it is unmapped or freed, touched or not. Before committing
//! more, the kernel asks [`charge`], which applies
//! [`vmcore::commit::Overcommit::allows`] (Linux's `__vm_enough_memory`) and
//! refuses with [`VmError::Overcommit`] (`ENOMEM`):
//! - mode 0 (default): refuse one request larger than RAM + swap;
//! - mode 1: grant everything;
//! - mode 2: grant while `Committed_AS` stays below `CommitLimit` (swap +
//!   `overcommit_ratio` % of RAM, or `overcommit_kbytes`).
//!
//! A granted charge is a [`Charge`]: a value holding its pages, which go
//! back to `Committed_AS` when it is dropped. Each address space owns one
//! for all its charged regions ([`crate::mm::aspace`]: map, unmap, protect,
//! stack growth and fork adjust it; dropping the space gives it back), and
//! each shared anonymous object owns one for its size
//! ([`crate::mm::pagecache`]). So `Committed_AS` is always the sum of the
//! charges alive, and nothing can forget to give one back.
//!
//! Only atomics here: a charge may be taken under any lock.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use vmcore::commit::{Overcommit, OvercommitMode};
use vmcore::VmError;

use super::frames;

/// `Committed_AS`, in pages: the sum of every live [`Charge`].
static COMMITTED: AtomicU64 = AtomicU64::new(0);

/// `vm.overcommit_memory` (0, 1, 2).
static MODE: AtomicU8 = AtomicU8::new(0);
/// `vm.overcommit_ratio` (percent of RAM).
static RATIO: AtomicU64 = AtomicU64::new(Overcommit::LINUX.ratio);
/// `vm.overcommit_kbytes` (0: use the ratio).
static KBYTES: AtomicU64 = AtomicU64::new(Overcommit::LINUX.kbytes);

/// Pages of swap in use by the commit limit (`total_swap_pages`).
///
/// A stub returning 0 until swap exists: then it becomes the total size of
/// the active swap devices, and both `CommitLimit` and the mode-0 limit on
/// one request grow with it, as in Linux.
pub fn swap_total_pages() -> u64 {
    super::swap::usage().0
}

/// RAM the policy counts (`totalram_pages`: the frames the buddy
/// allocator manages, `MemTotal`).
fn ram_pages() -> u64 {
    frames::stats().managed_pages
}

/// The tunables now.
pub fn policy() -> Overcommit {
    Overcommit {
        mode: OvercommitMode::from_value(u64::from(MODE.load(Ordering::Relaxed)))
            .unwrap_or_default(),
        ratio: RATIO.load(Ordering::Relaxed),
        kbytes: KBYTES.load(Ordering::Relaxed),
    }
}

/// Sets `vm.overcommit_memory`; `None` for a value outside 0..=2.
pub fn set_mode(value: u64) -> Option<()> {
    let mode = OvercommitMode::from_value(value)?;
    MODE.store(mode.value() as u8, Ordering::Relaxed);
    Some(())
}

/// Sets `vm.overcommit_ratio`; like Linux, this clears
/// `vm.overcommit_kbytes` (the two are alternatives). `None` if it does not
/// fit Linux's `int`.
pub fn set_ratio(value: u64) -> Option<()> {
    if value > i32::MAX as u64 {
        return None;
    }
    RATIO.store(value, Ordering::Relaxed);
    KBYTES.store(0, Ordering::Relaxed);
    Some(())
}

/// Sets `vm.overcommit_kbytes`; like Linux, this clears
/// `vm.overcommit_ratio`.
pub fn set_kbytes(value: u64) {
    KBYTES.store(value, Ordering::Relaxed);
    RATIO.store(0, Ordering::Relaxed);
}

/// `Committed_AS` in pages.
pub fn committed_pages() -> u64 {
    COMMITTED.load(Ordering::Relaxed)
}

/// `CommitLimit` in pages (shown in every mode; enforced in mode 2).
pub fn commit_limit_pages() -> u64 {
    policy().commit_limit(ram_pages(), swap_total_pages())
}

/// Whether `MAP_NORESERVE` is honoured now (every mode but 2).
pub fn honours_noreserve() -> bool {
    policy().honours_noreserve()
}

/// Pages committed to `Committed_AS`, given back when dropped.
#[must_use = "dropping a charge gives its pages back at once"]
#[derive(Debug)]
pub struct Charge {
    pages: u64,
}

impl Charge {
    /// A charge of nothing.
    pub const fn none() -> Charge {
        Charge { pages: 0 }
    }

    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Takes `other`'s pages into this charge.
    pub fn absorb(&mut self, mut other: Charge) {
        self.pages += core::mem::take(&mut other.pages);
    }

    /// Gives `pages` of this charge back (all of it, at most).
    pub fn give_back(&mut self, pages: u64) {
        let pages = pages.min(self.pages);
        self.pages -= pages;
        COMMITTED.fetch_sub(pages, Ordering::Relaxed);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.give_back(self.pages);
    }
}

/// Commits `pages` more if the policy allows it (Linux's
/// `security_vm_enough_memory_mm`), else [`VmError::Overcommit`].
pub fn charge(pages: u64) -> Result<Charge, VmError> {
    if pages == 0 {
        return Ok(Charge::none());
    }
    let policy = policy();
    let (ram, swap) = match policy.mode {
        OvercommitMode::Always => (0, 0),
        _ => (ram_pages(), swap_total_pages()),
    };
    let mut committed = COMMITTED.load(Ordering::Relaxed);
    loop {
        let after = committed
            .checked_add(pages)
            .filter(|_| policy.allows(pages, committed, ram, swap))
            .ok_or(VmError::Overcommit { pages })?;
        match COMMITTED.compare_exchange_weak(
            committed,
            after,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(Charge { pages }),
            Err(now) => committed = now,
        }
    }
}
