//! `swapoff`: every swapped-out page back into RAM, then the swap area
//! off (Linux's `swapoff` and its `try_to_unuse`), or a refusal that says
//! why.
//!
//! 1. Enough memory? The pages that need a frame (used slots minus those
//!    whose page is still in the swap cache) must fit in free memory above
//!    the user reserve plus the page cache that could be dropped (Linux
//!    checks the same with `security_vm_enough_memory_mm`). Refused
//!    otherwise, nothing changed.
//! 2. No new swap-outs: the area stops taking pages (`SWP_WRITEOK`
//!    cleared) and reclaim passes already under way are waited for.
//! 3. Every address space is walked for swap entries and each is faulted
//!    in, as a kernel read, a batch at a time with the address space
//!    locked and interrupts off (the lock is the one its own faults take,
//!    so a process mid-fault finishes first: a busy space is retried after
//!    yielding).
//!    Then every anonymous object (shared anonymous memory, tmpfs files)
//!    is walked for swapped-out pages and each is read back into its
//!    index (`pagecache::swap_in_all`).
//! 4. Pages left only in the swap cache (no entry records their slot) are
//!    dropped from it; with no slot in use the area goes.
//!
//! On any failure the area takes pages again and stays on; the pages
//! already brought back stay in RAM (as Linux's do).

use super::aspace::{FaultError, SharedAddressSpace};
use super::{frames, pagecache, reclaim, swap};
use crate::arch::sync::try_lock_irq_off;

/// Why `swapoff` refused or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapoffError {
    /// No swap area is active.
    NotActive,
    /// The swapped-out pages would not fit in memory (pages needed, pages
    /// available).
    NotEnoughMemory { needed: u64, available: u64 },
    /// A page could not be brought in (no frame for it, or its region
    /// forbids even a kernel read, e.g. `PROT_NONE`).
    Fault { addr: u64, why: FaultError },
    /// A swapped-out page of an anonymous object (shared anonymous
    /// memory, a tmpfs file) could not be read back.
    Object {
        file: u32,
        index: u64,
        why: pagecache::CacheError,
    },
    /// An address space stayed locked by its owner.
    Busy,
    /// Slots are still in use after every address space was walked (a
    /// process forked meanwhile, or more than reclaim lists).
    StillInUse { pages: u64 },
}

impl core::fmt::Display for SwapoffError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SwapoffError::NotActive => f.write_str("no swap area is active"),
            SwapoffError::NotEnoughMemory { needed, available } => write!(
                f,
                "not enough memory: {} kB swapped out, {} kB free or freeable",
                needed * 4,
                available * 4
            ),
            SwapoffError::Fault {
                why: FaultError::OutOfMemory,
                addr,
            } => write!(f, "out of memory bringing back the page at {addr:#x}"),
            SwapoffError::Fault { addr, why } => {
                write!(f, "cannot bring back the page at {addr:#x}: {why:?}")
            }
            SwapoffError::Object { file, index, why } => write!(
                f,
                "cannot bring back page {index} of shared memory object {file}: {why:?}"
            ),
            SwapoffError::Busy => f.write_str("an address space stayed busy"),
            SwapoffError::StillInUse { pages } => {
                write!(f, "{pages} pages still swapped out after a full pass")
            }
        }
    }
}

/// What `swapoff` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unused {
    /// Swap entries faulted back in.
    pub pages_in: u64,
    /// Address spaces walked.
    pub spaces: u64,
    /// Pages dropped from the swap cache.
    pub uncached: u64,
}

/// How many times a busy address space (or a reclaim pass under way) is
/// waited for before giving up.
const MAX_WAITS: u32 = 10_000;

/// Passes over all address spaces before slots still in use are reported.
const PASSES: u32 = 3;

/// Pages that need a frame to come back, and pages free or freeable for
/// them.
pub fn memory_check() -> (u64, u64) {
    let (_, used, cached) = swap::usage();
    let needed = used.saturating_sub(cached);
    let available = frames::free_pages().saturating_sub(frames::user_reserve())
        + pagecache::reclaimable_pages();
    (needed, available)
}

/// Brings every swapped-out page of every address space back into RAM,
/// leaving swap on (Linux's `try_to_unuse`). `yield_now` lets a process
/// holding its address space (or preempted in reclaim) run.
pub fn try_to_unuse(yield_now: fn()) -> Result<Unused, SwapoffError> {
    if !swap::set_writeok(false) {
        return Err(SwapoffError::NotActive);
    }
    let result = unuse(yield_now);
    swap::set_writeok(true);
    result
}

/// Every page back into RAM, then swap off (the shell's `swapoff`).
pub fn swapoff_all(yield_now: fn()) -> Result<Unused, SwapoffError> {
    if !swap::enabled() {
        return Err(SwapoffError::NotActive);
    }
    let (needed, available) = memory_check();
    if needed > available {
        return Err(SwapoffError::NotEnoughMemory { needed, available });
    }
    if !swap::set_writeok(false) {
        return Err(SwapoffError::NotActive);
    }
    let done = unuse(yield_now).and_then(|done| match swap::swapoff() {
        Ok(()) => Ok(done),
        Err(swap::SwapError::NotActive) => Err(SwapoffError::NotActive),
        Err(_) => Err(SwapoffError::StillInUse {
            pages: swap::usage().1,
        }),
    });
    if done.is_err() {
        swap::set_writeok(true);
    }
    done
}

fn unuse(yield_now: fn()) -> Result<Unused, SwapoffError> {
    let mut waits = 0;
    while reclaim::in_flight() > 0 {
        waits += 1;
        if waits > MAX_WAITS {
            return Err(SwapoffError::Busy);
        }
        yield_now();
    }
    let mut done = Unused::default();
    for _ in 0..PASSES {
        let spaces = reclaim::address_spaces();
        done.spaces = spaces.len() as u64;
        for a in &spaces {
            match unuse_space(a, yield_now) {
                Ok(pages) => done.pages_in += pages,
                Err(e) => {
                    // Refused: the pages this pass brought back are mapped
                    // again; the cache must not keep them and their slots
                    // (nothing else would ever let go of those).
                    swap::drop_unreferenced_cache();
                    return Err(e);
                }
            }
        }
        match pagecache::swap_in_all() {
            Ok(pages) => done.pages_in += pages,
            Err((file, index, why)) => {
                swap::drop_unreferenced_cache();
                return Err(SwapoffError::Object { file, index, why });
            }
        }
        done.uncached += swap::drop_unreferenced_cache();
        let (_, used, _) = swap::usage();
        if used == 0 {
            return Ok(done);
        }
    }
    Err(SwapoffError::StillInUse {
        pages: swap::usage().1,
    })
}

/// Faults in every swap entry of `a`; returns how many.
fn unuse_space(a: &SharedAddressSpace, yield_now: fn()) -> Result<u64, SwapoffError> {
    let mut from = 0;
    let mut pages = 0;
    let mut waits = 0;
    loop {
        // Interrupts are off while the lock is held (see "Locking" in
        // `mm`) and back on between batches.
        let step = match try_lock_irq_off(a) {
            Some(mut guard) => guard.swap_in_batch(from),
            None => {
                waits += 1;
                if waits > MAX_WAITS {
                    return Err(SwapoffError::Busy);
                }
                yield_now();
                continue;
            }
        };
        let (n, next) = step.map_err(|(addr, why)| SwapoffError::Fault { addr, why })?;
        pages += n;
        match next {
            Some(next) => from = next,
            None => return Ok(pages),
        }
    }
}
