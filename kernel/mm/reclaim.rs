//! Reclaim: freeing anonymous pages by swapping them out when user
//! memory runs short (Linux's `shrink_page_list` on the anonymous LRU).
//!
//! The LRU is a CLOCK over every anonymous page: reclaim takes the oldest,
//! asks every leaf that maps it (through the reverse map: its family of
//! address spaces, at its address) whether it was accessed since the last
//! look, clearing the bit as it goes. A page that was is given a second
//! chance at the tail; one that was not goes to the swap cache, every leaf
//! mapping it becomes a swap entry (through each address space's gather,
//! so the TLB is flushed before the frame can go), its contents go to the
//! swap device, and the frame is freed.
//!
//! Lock contract: called with no lock held (the fault handler drops its
//! address space's lock before reclaiming). Address spaces are taken with
//! `try_lock`: one that is busy keeps its pages this round.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use mmcore::Pfn;

use super::aspace::{self, SharedAddressSpace};
use super::frame_ref::{self, FrameRef};
use super::pageext::flags;
use super::{frames, swap, vmstat};
use crate::arch::hook::{FnPointer, Hook};

/// Lists every user address space (the process layer installs it).
pub type SpacesHook = fn(&mut dyn FnMut(&SharedAddressSpace));

static SPACES: Hook<SpacesHook> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for SpacesHook {}

/// Installs the function that lists the address spaces to reclaim from.
pub fn set_spaces_hook(hook: SpacesHook) {
    SPACES.set(hook);
}

/// The most address spaces one reclaim pass looks at.
const MAX_SPACES: usize = 64;

fn spaces() -> Vec<SharedAddressSpace> {
    let mut list: Vec<SharedAddressSpace> = Vec::new();
    if list.try_reserve_exact(MAX_SPACES).is_err() {
        return list;
    }
    let mut add = |a: &SharedAddressSpace| {
        if list.len() < MAX_SPACES && !list.iter().any(|b| alloc::sync::Arc::ptr_eq(a, b)) {
            list.push(a.clone());
        }
    };
    if let Some(hook) = SPACES.get() {
        hook(&mut add);
    }
    if let Some(current) = aspace::current() {
        add(&current);
    }
    list
}

/// Every user address space (at most 64), for `swapoff`.
pub fn address_spaces() -> Vec<SharedAddressSpace> {
    spaces()
}

/// Reclaim passes under way (a process may be preempted in one):
/// `swapoff` waits for them once it has stopped new swap-outs.
static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

/// Reclaim passes under way.
pub fn in_flight() -> u32 {
    IN_FLIGHT.load(Ordering::Acquire)
}

struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Pages direct reclaim frees at least (Linux's `SWAP_CLUSTER_MAX`).
pub const BATCH: u64 = 32;

/// Direct reclaim for a user allocation that failed: frees a batch, and
/// enough more to bring free memory a batch above the user reserve (the
/// kernel's own allocations, the heap refilling its emergency blocks, may
/// have taken what the last round freed). Returns pages freed.
pub fn reclaim_for_user() -> u64 {
    let (free, reserve) = (frames::free_pages(), frames::user_reserve());
    let deficit = (reserve + 2 * BATCH).saturating_sub(free);
    reclaim(BATCH.max(deficit))
}

/// Who reclaims: the counters it moves (`pgscan_direct`/`pgsteal_direct`
/// and `allocstall`, or `pgscan_kswapd`/`pgsteal_kswapd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimer {
    Direct,
    Kswapd,
}

/// Frees up to `target` pages by swapping anonymous pages out; returns how
/// many it freed. Does nothing without a swap area.
pub fn reclaim(target: u64) -> u64 {
    reclaim_by(target, Reclaimer::Direct)
}

/// [`reclaim`] on behalf of `who`.
pub fn reclaim_by(target: u64, who: Reclaimer) -> u64 {
    let _in_flight = InFlight::enter();
    if !swap::enabled() {
        return 0;
    }
    let (scan, steal) = match who {
        Reclaimer::Direct => {
            vmstat::ALLOCSTALL.inc();
            (&vmstat::PGSCAN_DIRECT, &vmstat::PGSTEAL_DIRECT)
        }
        Reclaimer::Kswapd => (&vmstat::PGSCAN_KSWAPD, &vmstat::PGSTEAL_KSWAPD),
    };
    let spaces = spaces();
    let budget = frames::with(|m| m.ext.lru_len()) * 2 + 8;
    let mut freed = 0;
    for _ in 0..budget {
        if freed >= target {
            break;
        }
        // The oldest page, pinned so it cannot go while we look at it.
        let Some((page, family, va)) = frames::with(|m| {
            let pfn = m.ext.lru_pop()?;
            let e = *m.ext.get(pfn)?;
            let pin = frame_ref::pin_locked(m, pfn)?;
            Some((pin, e.family, e.vpn << 12))
        }) else {
            break;
        };
        scan.inc();
        match shrink_page(&spaces, page, family, va) {
            Shrunk::Freed => {
                freed += 1;
                steal.inc();
            }
            Shrunk::Kept => {}
            Shrunk::SwapFull => break,
        }
    }
    freed
}

enum Shrunk {
    Freed,
    Kept,
    SwapFull,
}

/// The fate of one page taken off the LRU (Linux's `shrink_page_list`
/// for one page): second chance, or out to swap.
fn shrink_page(spaces: &[SharedAddressSpace], page: FrameRef, family: u32, va: u64) -> Shrunk {
    let pfn = page.pfn();
    let pa = pfn.addr();
    let mut young = false;
    each_mapper(spaces, family, |a| {
        young |= a.clear_young(va, pa).unwrap_or(false);
    });
    if young {
        frames::with(|m| m.ext.lru_add(pfn));
        return Shrunk::Kept;
    }
    // Into the swap cache (or already there).
    let Some(slot) = frames::with(|m| swap::add_to_cache_locked(m, pfn)) else {
        frames::with(|m| m.ext.lru_add(pfn));
        return Shrunk::SwapFull;
    };
    // Every leaf we can find becomes the swap entry.
    each_mapper(spaces, family, |a| {
        if !frames::with(|m| swap::dup_slot_locked(m, slot)) {
            return;
        }
        if a.unmap_to_swap(va, pa, swap::entry_of(slot)).is_none() {
            frames::with(|m| swap::undup_slot_locked(m, slot));
        }
    });
    // Nothing maps it now that we know of: write it out.
    if swap::write_out(slot, pfn).is_err() {
        frames::with(|m| m.ext.lru_add(pfn));
        return Shrunk::Kept;
    }
    vmstat::PSWPOUT.inc();
    // Free it if only the cache and our pin hold it; else it stays cached
    // (mapped somewhere the reverse map does not know) and comes round
    // again.
    let freed = frames::with(|m| {
        if m.buddy.refcount(pfn) == 2 {
            let free_slot = swap::uncache_locked(m, slot, pfn);
            Some(free_slot)
        } else {
            m.ext.lru_add(pfn);
            None
        }
    });
    drop(page);
    match freed {
        Some(free_slot) => {
            if free_slot {
                swap::discard_slot(slot);
            }
            Shrunk::Freed
        }
        None => Shrunk::Kept,
    }
}

/// Runs `f` on each address space of `family` that is not busy.
fn each_mapper(
    spaces: &[SharedAddressSpace],
    family: u32,
    mut f: impl FnMut(&mut aspace::AddressSpace),
) {
    for a in spaces {
        if let Some(mut guard) = a.try_lock() {
            if guard.family() == family {
                f(&mut guard);
            }
        }
    }
}

/// Whether `pfn` is in the swap cache (for statistics and tests).
pub fn in_swap_cache(pfn: Pfn) -> bool {
    frames::with(|m| {
        m.ext
            .get(pfn)
            .is_some_and(|e| e.flags & flags::SWAPCACHE != 0)
    })
}
