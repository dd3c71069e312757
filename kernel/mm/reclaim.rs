//! Reclaim: freeing pages when user memory runs short (Linux's
//! `shrink_lruvec` and `shrink_folio_list`).
//!
//! The lists are reclaimcore's [`Lruvec`](reclaimcore::Lruvec) over every
//! frame (`pageext`): anonymous and file pages, each kind with an active
//! and an inactive list, shadows of evicted pages left in the swap cache so
//! a refault can be judged (`mm/workingset.c`). Reclaim asks the lists for
//! a candidate of a kind (the inactive tail) and looks at every leaf that
//! maps it through the reverse map (an anonymous page's family of address
//! spaces at its address), test-and-clearing accessed bits:
//! - referenced: a use the lists hear of
//!   ([`Lruvec::touched`](reclaimcore::Lruvec::touched)); they look twice
//!   like Linux — the first reference to a new inactive page only proves
//!   the fault that brought it in and sends it round the inactive list
//!   again, a second one activates it;
//! - not referenced: evicted. An anonymous page goes to the swap cache,
//!   every leaf mapping it becomes a swap entry (through each address
//!   space's gather, so the TLB is flushed before the frame can go), its
//!   contents go to the swap device, and the frame is freed leaving the
//!   page's shadow in its slot. A clean file page no process maps is
//!   dropped from the page cache (it comes back from its file). A page of
//!   an anonymous object (shared anonymous memory, a tmpfs file: on the
//!   anon lists, as Linux's shmem) is unmapped everywhere through the
//!   file reverse map and written to a slot that replaces it in the
//!   object's index (`pagecache::swap_out`).
//!
//! The kinds are scanned in proportion to their sizes weighted by
//! `vm.swappiness` (Linux's default 60: anonymous pages 60, file pages
//! 140); without swap only file pages are scanned.
//!
//! Lock contract: called with no lock held (the fault handler drops its
//! address space's lock before reclaiming). Address spaces are taken with
//! `try_lock`: one that is busy keeps its pages this round.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use mmcore::Pfn;

use reclaimcore::Kind;

use super::aspace::{self, SharedAddressSpace};
use super::frame_ref::{self, FrameRef};
use super::pageext::flags;
use super::{frames, pagecache, swap, vmstat};
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

/// Who reclaims: the counters differ (`pgscan_direct` vs `pgscan_kswapd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimer {
    /// An allocation that could not be satisfied, in the allocating task.
    Direct,
    /// The background thread, between the low and high watermarks.
    Kswapd,
}

impl Reclaimer {
    fn scanned(self) {
        match self {
            Reclaimer::Direct => vmstat::PGSCAN_DIRECT.inc(),
            Reclaimer::Kswapd => vmstat::PGSCAN_KSWAPD.inc(),
        }
    }

    fn stolen(self) {
        match self {
            Reclaimer::Direct => vmstat::PGSTEAL_DIRECT.inc(),
            Reclaimer::Kswapd => vmstat::PGSTEAL_KSWAPD.inc(),
        }
    }
}

/// Linux's `vm.swappiness`: how much reclaim leans on anonymous memory
/// (0..=200; file pages weigh `200 - swappiness`).
static SWAPPINESS: AtomicU32 = AtomicU32::new(60);

/// `vm.swappiness`.
pub fn swappiness() -> u32 {
    SWAPPINESS.load(Ordering::Relaxed)
}

/// Sets `vm.swappiness` (clamped to 0..=200, as Linux refuses above).
pub fn set_swappiness(value: u32) {
    SWAPPINESS.store(value.min(200), Ordering::Relaxed);
}

/// Direct reclaim for a user allocation that failed: frees a batch, and
/// enough more to bring free memory a batch above the user reserve (the
/// kernel's own allocations, the heap refilling its emergency blocks, may
/// have taken what the last round freed). Returns pages freed.
pub fn reclaim_for_user() -> u64 {
    let (free, reserve) = (frames::free_pages(), frames::user_reserve());
    let deficit = (reserve + 2 * BATCH).saturating_sub(free);
    reclaim(BATCH.max(deficit))
}

/// Direct reclaim of up to `target` pages; returns how many it freed.
pub fn reclaim(target: u64) -> u64 {
    reclaim_by(target, Reclaimer::Direct)
}

/// Frees up to `target` pages from the LRU lists; returns how many it
/// freed. Each round scans a batch split between the kinds (see the
/// module documentation); it stops when a round frees nothing it could
/// have freed more of (every list looked at twice over).
pub fn reclaim_by(target: u64, who: Reclaimer) -> u64 {
    let _in_flight = InFlight::enter();
    if who == Reclaimer::Direct {
        vmstat::ALLOCSTALL.inc();
    }
    // This CPU's fresh anonymous pages onto the LRU first, so reclaim
    // can find them (Linux's `lru_add_drain` before shrinking a list).
    super::percpu::flush_lru_add_local();
    let spaces = spaces();
    let swap_on = swap::enabled();
    let (anon_len, file_len) =
        frames::with(|m| (m.ext.lru_len(Kind::Anon), m.ext.lru_len(Kind::File)));
    let budget = 2 * (file_len + if swap_on { anon_len } else { 0 }) + 8;
    let mut freed = 0;
    let mut scanned = 0;
    let mut swap_full = !swap_on;
    let mut writeback = Writeback::new();
    while freed < target && scanned < budget {
        let (anon, file) = split_scan(BATCH, swap_full);
        let mut progress = false;
        for (kind, n) in [(Kind::File, file), (Kind::Anon, anon)] {
            for _ in 0..n {
                let Some(page) = isolate(kind) else { break };
                scanned += 1;
                progress = true;
                who.scanned();
                match shrink_page(&spaces, page, kind) {
                    Shrunk::Freed => freed += 1,
                    Shrunk::Kept => {}
                    Shrunk::Queued(page, slot) => {
                        if let Some(page) = writeback.queue(page, slot) {
                            freed += writeback.flush();
                            let _ = writeback.queue(page, slot);
                        }
                    }
                    Shrunk::SwapFull => {
                        swap_full = true;
                        break;
                    }
                }
                if freed + writeback.len() >= target {
                    break;
                }
            }
        }
        freed += writeback.flush();
        if !progress {
            break;
        }
    }
    for _ in 0..freed {
        who.stolen();
    }
    freed
}

/// Anonymous pages unmapped into the swap cache and waiting to be written
/// (Linux's `shrink_folio_list` writes its batch out before it frees):
/// written in runs of consecutive slots, one device request each, then
/// freed.
struct Writeback {
    pages: [Option<(FrameRef, u64)>; BATCH as usize],
    n: usize,
}

impl Writeback {
    fn new() -> Writeback {
        Writeback {
            pages: core::array::from_fn(|_| None),
            n: 0,
        }
    }

    fn len(&self) -> u64 {
        self.n as u64
    }

    /// Queues `page` for `slot`; gives it back if the batch is full.
    fn queue(&mut self, page: FrameRef, slot: u64) -> Option<FrameRef> {
        if self.n == self.pages.len() {
            return Some(page);
        }
        self.pages[self.n] = Some((page, slot));
        self.n += 1;
        None
    }

    /// Writes every queued page, then frees those only the swap cache
    /// still holds; returns how many were freed.
    fn flush(&mut self) -> u64 {
        let n = core::mem::take(&mut self.n);
        let batch = &mut self.pages[..n];
        batch.sort_unstable_by_key(|p| p.as_ref().map_or(u64::MAX, |p| p.1));
        let mut freed = 0;
        let mut start = 0;
        while start < n {
            // The run of consecutive slots from `start`.
            let first = batch[start].as_ref().map_or(0, |p| p.1);
            let mut end = start + 1;
            while end < n && batch[end].as_ref().map(|p| p.1) == Some(first + (end - start) as u64)
            {
                end += 1;
            }
            let mut pfns = [Pfn(0); BATCH as usize];
            for (pfn, p) in pfns.iter_mut().zip(&batch[start..end]) {
                *pfn = p.as_ref().map_or(Pfn(0), |p| p.0.pfn());
            }
            let written = swap::write_out_run(first, &pfns[..end - start]).is_ok();
            for p in &mut batch[start..end] {
                let Some((page, slot)) = p.take() else {
                    continue;
                };
                if written {
                    vmstat::PSWPOUT.inc();
                    freed += u64::from(free_written(page, slot));
                } else {
                    putback(page);
                }
            }
            start = end;
        }
        freed
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        // Unwritten pages stay in the swap cache, mapped by swap entries.
        for p in &mut self.pages {
            if let Some((page, _)) = p.take() {
                putback(page);
            }
        }
    }
}

/// How many of `batch` scans go to anonymous and to file pages: in
/// proportion to the lists' sizes weighted by swappiness (Linux's
/// `get_scan_count` without its cost feedback).
fn split_scan(batch: u64, no_anon: bool) -> (u64, u64) {
    let (anon, file) = frames::with(|m| (m.ext.lru_len(Kind::Anon), m.ext.lru_len(Kind::File)));
    let anon_prio = if no_anon { 0 } else { swappiness() as u64 };
    let (a, f) = (anon * anon_prio, file * (200 - anon_prio));
    if a + f == 0 {
        return (if no_anon { 0 } else { batch }, 0);
    }
    let anon_scan = (batch * a).div_ceil(a + f);
    (anon_scan, batch - anon_scan.min(batch))
}

/// The next page of `kind` to look at, pinned and isolated.
fn isolate(kind: Kind) -> Option<FrameRef> {
    // A bounded search (under the frames lock, interrupts off): a page
    // that cannot be pinned is passed over, never waited for.
    frames::with(|m| {
        for _ in 0..8 {
            let pfn = m.ext.isolate(kind, 8)?;
            match frame_ref::pin_locked(m, pfn) {
                Some(pin) => return Some(pin),
                // Being freed right now: it leaves the lists by itself.
                None => m.ext.putback(pfn),
            }
        }
        None
    })
}

enum Shrunk {
    Freed,
    Kept,
    /// Unmapped into the swap cache at this slot: to be written.
    Queued(FrameRef, u64),
    SwapFull,
}

/// Reclaim is done with `page`: back among the others (wherever the lists
/// put it) and unpinned.
fn putback(page: FrameRef) {
    frames::with(|m| m.ext.putback(page.pfn()));
    drop(page);
}

/// What the accessed bits say about a page reclaim is looking at.
enum Verdict {
    /// Evict it.
    Reclaim,
    /// Keep it (the lists have placed it).
    Keep,
}

/// Turns "was it referenced" into a decision: a referenced page is a use
/// the lists hear of (they decide: look twice on the inactive list, then
/// activate), an unreferenced one is evicted.
fn verdict(pfn: Pfn, referenced: bool) -> Verdict {
    if !referenced {
        return Verdict::Reclaim;
    }
    frames::with(|m| {
        let was_active = m.ext.is_active(pfn);
        m.ext.touched(pfn);
        if !was_active && m.ext.is_active(pfn) {
            vmstat::PGACTIVATE.inc();
        }
    });
    Verdict::Keep
}

/// The fate of one page taken off the lists (Linux's
/// `shrink_folio_list` for one page).
fn shrink_page(spaces: &[SharedAddressSpace], page: FrameRef, kind: Kind) -> Shrunk {
    match kind {
        Kind::Anon => match shmem_owner(page.pfn()) {
            Some((file, index)) => shrink_shmem(page, file, index),
            None => shrink_anon(spaces, page),
        },
        Kind::File => shrink_file(page),
    }
}

/// The anonymous object and page index of an anon-list page that belongs
/// to one (shared anonymous memory, a tmpfs file: Linux's shmem).
fn shmem_owner(pfn: Pfn) -> Option<(u32, u64)> {
    frames::with(|m| {
        let e = m.ext.get(pfn)?;
        (e.flags & flags::FILE != 0).then_some((e.family, e.vpn))
    })
}

/// A page of an anonymous object: unreferenced, it is unmapped from every
/// address space that maps it (the file reverse map, each TLB flushed
/// before the leaf's reference goes), written to a swap slot, and the slot
/// takes its place in the object's index (`pagecache::swap_out`). A
/// referenced one is a use the lists hear of; one whose mappers are busy,
/// or that is in use (a read or write of the tmpfs file holds it), stays
/// for another round.
fn shrink_shmem(page: FrameRef, file: u32, index: u64) -> Shrunk {
    let pfn = page.pfn();
    // Mapped: more than the index's reference and our pin.
    if frames::refcount(pfn) > 2 {
        let referenced = pagecache::page_referenced(file, index);
        if let Verdict::Keep = verdict(pfn, referenced) {
            putback(page);
            return Shrunk::Kept;
        }
        // A dirty leaf wrote the frame itself: it is written out below,
        // after every leaf is gone.
        if pagecache::unmap_page_everywhere(file, index).is_err() {
            putback(page);
            return Shrunk::Kept;
        }
    }
    let result = pagecache::swap_out(file, index, pfn);
    putback(page);
    match result {
        pagecache::SwapOut::Done => Shrunk::Freed,
        pagecache::SwapOut::Kept => Shrunk::Kept,
        pagecache::SwapOut::NoSlot => Shrunk::SwapFull,
    }
}

/// A page-cache page: unreferenced, it is unmapped from every address
/// space that maps it (the file reverse map) and dropped from the cache —
/// its file still has the bytes. A referenced one is a use the lists hear
/// of; one whose mappers are busy stays for another round.
fn shrink_file(page: FrameRef) -> Shrunk {
    let pfn = page.pfn();
    let owner = frames::with(|m| {
        let e = m.ext.get(pfn)?;
        (e.flags & flags::FILE != 0).then_some((e.family, e.vpn))
    });
    let Some((file, index)) = owner else {
        putback(page);
        return Shrunk::Kept;
    };
    // Mapped: more than the cache's reference and our pin.
    if frames::refcount(pfn) > 2 {
        let referenced = pagecache::page_referenced(file, index);
        if let Verdict::Keep = verdict(pfn, referenced) {
            putback(page);
            return Shrunk::Kept;
        }
        if pagecache::unmap_clean(file, index) != Ok(true) {
            putback(page);
            return Shrunk::Kept;
        }
    }
    let shadow = frames::with(|m| m.ext.evict(pfn));
    if !pagecache::drop_page(file, index, pfn, shadow) {
        // Mapped again or gone meanwhile: back on the lists if cached.
        frames::with(|m| {
            if frames::refcount(pfn) > 1 && !m.ext.on_lru(pfn) {
                m.ext.lru_add(pfn, Kind::File, shadow);
            }
        });
        putback(page);
        return Shrunk::Kept;
    }
    putback(page);
    Shrunk::Freed
}

/// An anonymous page: second chance, or out to swap.
fn shrink_anon(spaces: &[SharedAddressSpace], page: FrameRef) -> Shrunk {
    let pfn = page.pfn();
    let pa = pfn.addr();
    let Some((family, va)) = frames::with(|m| m.ext.get(pfn).map(|e| (e.family, e.vpn << 12)))
    else {
        putback(page);
        return Shrunk::Kept;
    };
    let mut young = false;
    let mut locked = false;
    each_mapper(spaces, family, |a| {
        young |= a.clear_young(va, pa).unwrap_or(false);
        locked |= a.is_locked(va);
    });
    // An mlock'ed page counts as just used: it goes back to the active
    // list and is never written out (Linux keeps such pages on its
    // unevictable list).
    if let Verdict::Keep = verdict(pfn, young || locked) {
        putback(page);
        return Shrunk::Kept;
    }
    // Into the swap cache (or already there).
    let Some(slot) = frames::with(|m| swap::add_to_cache_locked(m, pfn)) else {
        putback(page);
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
    // Nothing maps it now that we know of: written with its batch.
    Shrunk::Queued(page, slot)
}

/// A page written to `slot`: freed if only the swap cache and our pin hold
/// it, leaving its shadow in the slot; else it stays cached (mapped
/// somewhere the reverse map does not know) and comes round again.
fn free_written(page: FrameRef, slot: u64) -> bool {
    let pfn = page.pfn();
    let freed = frames::with(|m| {
        // Still in the swap cache at `slot`: a fault may have taken it back
        // out meanwhile (this task can be preempted while it writes), and
        // then the two references are its new leaf's and our pin.
        let cached = m
            .ext
            .get(pfn)
            .is_some_and(|e| e.flags & flags::SWAPCACHE != 0 && e.slot == slot);
        if cached && frames::refcount(pfn) == 2 {
            let shadow = m.ext.evict(pfn);
            Some(swap::uncache_locked(m, slot, pfn, shadow))
        } else {
            None
        }
    });
    putback(page);
    match freed {
        Some(free_slot) => {
            if free_slot {
                swap::discard_slot(slot);
            }
            true
        }
        None => false,
    }
}

/// Runs `f` on each address space of `family` that is not busy.
fn each_mapper(
    spaces: &[SharedAddressSpace],
    family: u32,
    mut f: impl FnMut(&mut aspace::AddressSpace),
) {
    for a in spaces {
        if let Some(mut guard) = crate::arch::sync::try_lock_irq_off(a) {
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
