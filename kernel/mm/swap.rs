//! Swap: where anonymous pages go when memory runs short, and how they
//! come back.
//!
//! - The *device* (compressed RAM, or a disk) stores page-sized slots; it
//!   sits behind its own lock and is never called with the frames lock
//!   held (compressing allocates).
//! - The *swap area* (under the frames lock, with the frames and the LRU):
//!   the slot map with per-slot counts (swapcore's `SlotMap`, Linux's
//!   `swap_map`) and the *swap cache*, slot → frame, allocation-free. A
//!   slot's count is the number of leaves recording it, plus one while the
//!   swap cache holds a page for it (Linux's `SWAP_HAS_CACHE`).
//!
//! A page being swapped out sits in the swap cache while its leaves are
//! replaced by swap entries and it is written; a fault on one of those
//! entries finds it there (a minor fault). A page shared by fork is
//! written once, and every sharer that faults it back maps the same frame.
//! Ferrite has one swap area at a time (device 0 in every entry).

use alloc::boxed::Box;
use alloc::vec::Vec;
use mmcore::{FrameKind, Pfn};
use swapcore::{ClusterCursor, Page, SlotMap, SwapDevice, SwapIoError, Zram};
use vmcore::swap::SwapEntry;

use super::frame_ref::{self, FrameRef};
use super::frames::{self, PhysicalMemory};
use super::pageext::flags;
use super::vmstat;
use crate::arch::sync::IrqMutex;
use reclaimcore::{Kind, Shadow};

/// The slot side of the swap area (under the frames lock).
pub struct SwapArea {
    slots: SlotMap,
    /// Swap cache: per slot, the frame holding its page, or the shadow
    /// of the page last evicted to it ([`CacheEntry`]).
    cache: Vec<CacheEntry>,
    cursor: ClusterCursor,
    /// Pages in the swap cache.
    cached: u64,
    /// New pages may be written here (Linux's `SWP_WRITEOK`): cleared
    /// while `swapoff` brings pages back, so reclaim does not send them
    /// out again.
    writeok: bool,
}

/// One slot's swap-cache entry: empty, the frame holding the slot's page,
/// or — once that page was evicted — its shadow (what the LRU needs to
/// judge a refault, Linux's shadow entry in the swap cache's xarray).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheEntry(u32);

/// Tags a [`CacheEntry`] holding a shadow (frame numbers stay below).
const SHADOW_TAG: u32 = 1 << 31;
const _: () = assert!(reclaimcore::SHADOW_BITS < 32);

impl CacheEntry {
    fn page(pfn: Pfn) -> CacheEntry {
        debug_assert!(pfn.0 < SHADOW_TAG as u64);
        CacheEntry(pfn.0 as u32)
    }

    fn shadow(shadow: Shadow) -> CacheEntry {
        CacheEntry(SHADOW_TAG | shadow.to_bits() as u32)
    }

    /// The cached frame, if a page is cached.
    fn pfn(self) -> Option<Pfn> {
        (self.0 != 0 && self.0 & SHADOW_TAG == 0).then_some(Pfn(self.0 as u64))
    }

    /// The evicted page's shadow, if one is left.
    fn shadow_bits(self) -> Option<Shadow> {
        (self.0 & SHADOW_TAG != 0).then(|| Shadow::from_bits((self.0 & !SHADOW_TAG) as u64))
    }
}

/// The device and a bounce buffer for it: up to [`RUN_PAGES`] pages, so a
/// run of slots is one device request (one disk request). Heap memory, so
/// in the direct map: a disk hands it to the device as it is.
struct Device {
    dev: Box<dyn SwapDevice + Send>,
    buf: Vec<Page>,
    /// Its writes' one heap allocation is fallible and handled (zram's
    /// buffer for the page): failure injection may fail it.
    injectable: bool,
}

/// Pages the device moves in one run at most (256 KiB: a disk's largest
/// request, `virtio_blk::MAX_REQUEST_PAGES`).
pub const RUN_PAGES: usize = 64;

/// The bounce buffer: [`RUN_PAGES`] pages, or as many as memory allows
/// (halving down to one page; `None` without even that).
fn bounce_buffer() -> Option<Vec<Page>> {
    let mut pages = RUN_PAGES;
    loop {
        let mut buf = Vec::new();
        if super::kalloc::try_reserve(&mut buf, pages).is_ok() {
            buf.resize(pages, [0u8; swapcore::PAGE_SIZE]);
            return Some(buf);
        }
        if pages == 1 {
            return None;
        }
        pages /= 2;
    }
}

static DEVICE: IrqMutex<Option<Device>> = IrqMutex::new(None);

/// Statistics of the swap-device lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    DEVICE.stat()
}

/// Why `swapon`/`swapoff` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapError {
    /// A swap area is already active.
    Busy,
    /// No memory for the slot tables.
    NoMemory,
    /// No swap area is active.
    NotActive,
    /// Pages are still swapped out (bring them in first).
    InUse,
}

impl core::fmt::Display for SwapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SwapError::Busy => "a swap area is already active",
            SwapError::NoMemory => "not enough memory for the swap area's tables",
            SwapError::NotActive => "no swap area is active",
            SwapError::InUse => "pages are still swapped out",
        })
    }
}

/// Makes `dev` the swap area.
pub fn swapon(dev: Box<dyn SwapDevice + Send>) -> Result<(), SwapError> {
    install(dev, false)
}

/// [`swapon`]; `injectable`: see [`Device::injectable`].
fn install(dev: Box<dyn SwapDevice + Send>, injectable: bool) -> Result<(), SwapError> {
    if frames::with(|m| m.swap.is_some()) {
        return Err(SwapError::Busy);
    }
    let pages = dev.pages();
    let slots = SlotMap::try_new(pages).map_err(|_| SwapError::NoMemory)?;
    let mut cache = Vec::new();
    cache
        .try_reserve_exact(pages as usize)
        .map_err(|_| SwapError::NoMemory)?;
    cache.resize(pages as usize, CacheEntry::default());
    let buf = bounce_buffer().ok_or(SwapError::NoMemory)?;
    let area = SwapArea {
        slots,
        cache,
        cursor: ClusterCursor::default(),
        cached: 0,
        writeok: true,
    };
    let installed = frames::with(|m| {
        if m.swap.is_some() {
            return false;
        }
        m.swap = Some(area);
        true
    });
    if !installed {
        return Err(SwapError::Busy);
    }
    log::info!(
        "swap: {} pages ({} MiB) on {}",
        pages,
        pages >> 8,
        dev.name()
    );
    *DEVICE.lock() = Some(Device {
        dev,
        buf,
        injectable,
    });
    Ok(())
}

/// Compressed RAM of `pages` pages as the swap area.
pub fn swapon_zram(pages: u64) -> Result<(), SwapError> {
    let zram = Zram::try_new("zram0", pages).map_err(|_| SwapError::NoMemory)?;
    let dev = super::kalloc::try_box(zram).map_err(|_| SwapError::NoMemory)?;
    install(dev, true)
}

/// Turns swap off; refused while any page is still swapped out.
pub fn swapoff() -> Result<(), SwapError> {
    let area = frames::with(|m| match &m.swap {
        None => Err(SwapError::NotActive),
        Some(a) if a.slots.used() > 0 => Err(SwapError::InUse),
        Some(_) => Ok(m.swap.take()),
    })?;
    drop(area);
    drop(DEVICE.lock().take());
    Ok(())
}

/// Lets reclaim write pages to the swap area, or stops it (`swapoff`
/// while it brings pages back). Returns false if no area is active.
pub fn set_writeok(ok: bool) -> bool {
    frames::with(|m| match m.swap.as_mut() {
        Some(a) => {
            a.writeok = ok;
            true
        }
        None => false,
    })
}

/// Drops from the swap cache every page no leaf records any more (only
/// the cache's share of its slot is left; the page is resident wherever
/// it is mapped), freeing those slots. For `swapoff`, after every swap
/// entry was faulted back in. Returns how many it dropped.
pub fn drop_unreferenced_cache() -> u64 {
    let mut dropped = 0;
    let mut slot = 0;
    loop {
        // A bounded stretch of slots per lock round trip.
        let (next, freed) = frames::with(|m| {
            let Some(area) = m.swap.as_ref() else {
                return (None, [None; 32]);
            };
            let pages = area.slots.pages();
            let mut freed = [None; 32];
            let mut n = 0;
            let mut s = slot;
            while s < pages && s < slot + 4096 && n < freed.len() {
                let Some(area) = m.swap.as_ref() else { break };
                let pfn = area.cache[s as usize].pfn();
                if let Some(pfn) = pfn.filter(|_| area.slots.count(s) == 1) {
                    freed[n] = Some((s, uncache_locked(m, s, pfn, None)));
                    n += 1;
                }
                s += 1;
            }
            ((s < pages).then_some(s), freed)
        });
        for (s, free) in freed.into_iter().flatten() {
            dropped += 1;
            if free {
                discard_slot(s);
            }
        }
        match next {
            Some(n) => slot = n,
            None => return dropped,
        }
    }
}

/// Runs `f` on the active device's name (`None` without swap).
pub fn with_name<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    let dev = DEVICE.lock();
    f(dev.as_ref().map(|d| d.dev.name()))
}

/// (total, used, cached) pages of swap.
pub fn usage() -> (u64, u64, u64) {
    frames::with(|m| usage_locked(m))
}

/// [`usage`] under the frames lock.
pub fn usage_locked(m: &PhysicalMemory) -> (u64, u64, u64) {
    match &m.swap {
        Some(a) => (a.slots.pages(), a.slots.used(), a.cached),
        None => (0, 0, 0),
    }
}

/// Whether a swap area is active.
pub fn enabled() -> bool {
    frames::with(|m| m.swap.is_some())
}

/// The swap entry of `slot` on the active area.
pub fn entry_of(slot: u64) -> SwapEntry {
    SwapEntry::new(0, slot).expect("slots fit an entry")
}

/// Removes `pfn` from the swap cache at `slot` (under the frames lock):
/// the cache's slot share and frame reference go; `shadow` (an evicted
/// page's) stays in the entry while leaves still record the slot. Returns
/// true if the slot became free (the device may forget it).
pub fn uncache_locked(m: &mut PhysicalMemory, slot: u64, pfn: Pfn, shadow: Option<Shadow>) -> bool {
    let Some(area) = m.swap.as_mut() else {
        return false;
    };
    if area.cache.get(slot as usize).copied() != Some(CacheEntry::page(pfn)) {
        debug_assert!(false, "uncache of slot {slot:#x}: not {pfn}'s");
        return false;
    }
    area.cached -= 1;
    let freed = area.slots.put(slot) == 0;
    area.cache[slot as usize] = match shadow {
        Some(shadow) if !freed => CacheEntry::shadow(shadow),
        _ => CacheEntry::default(),
    };
    if let Some(e) = m.ext.get_mut(pfn) {
        e.flags &= !flags::SWAPCACHE;
    }
    frame_ref::mark_swapcache(pfn, false);
    frame_ref::put_pfn_locked(m, pfn);
    freed
}

/// `pfn` just lost a mapping (under the frames lock). If only the swap
/// cache holds the page now and no leaf records its slot, nothing will
/// ever ask for it: it leaves the cache and its frame and slot are freed
/// (Linux's `free_swap_cache` at unmap). Such pages are left by reclaim
/// when it could not replace a leaf (its address space was busy) and the
/// mapper then unmapped or exited. Returns the slot if it became free —
/// the caller tells the device ([`discard_slot`]) once the lock is dropped.
pub fn free_swap_cache_locked(m: &mut PhysicalMemory, pfn: Pfn) -> Option<u64> {
    if frames::refcount(pfn) != 1 {
        return None;
    }
    let e = m.ext.get(pfn)?;
    if e.flags & flags::SWAPCACHE == 0 {
        return None;
    }
    let slot = e.slot;
    let area = m.swap.as_ref()?;
    if area.slots.count(slot) != 1 || area.cache.get(slot as usize)?.pfn() != Some(pfn) {
        return None;
    }
    uncache_locked(m, slot, pfn, None).then_some(slot)
}

/// Tells the device `slot` is free.
pub fn discard_slot(slot: u64) {
    if let Some(d) = DEVICE.lock().as_mut() {
        d.dev.discard(slot);
    }
}

/// A leaf recording `entry` went away (unmap, exit).
pub fn release(entry: SwapEntry) {
    let slot = entry.slot;
    let free = frames::with(|m| {
        let Some(area) = m.swap.as_mut() else {
            return false;
        };
        let left = area.slots.put(slot);
        let entry = area.cache.get(slot as usize).copied().unwrap_or_default();
        if let Some(cached) = entry.pfn().filter(|_| left == 1) {
            // Only the cache holds it now.
            return uncache_locked(m, slot, cached, None);
        }
        if left == 0 {
            // No page will come back to this slot: its shadow goes too.
            area.cache[slot as usize] = CacheEntry::default();
        }
        left == 0
    });
    if free {
        discard_slot(slot);
    }
}

/// Fork copied a leaf recording `entry` (under the frames lock).
pub fn dup_locked(m: &mut PhysicalMemory, entry: SwapEntry) -> bool {
    m.swap.as_mut().is_some_and(|a| a.slots.dup(entry.slot))
}

/// A swapped-in page for a fault.
pub struct SwappedIn {
    pub frame: FrameRef,
    pub major: bool,
    pub exclusive: bool,
}

/// Slots read around a missed one (Linux's `page-cluster` 3: 8 pages).
pub const READAHEAD: u64 = 8;

/// Reads `slot` into a fresh frame and puts it in the swap cache, as the
/// page at `va` of `family`. Returns a reference to the cached page and
/// whether it was read now (false: someone else had already cached it).
/// `None` if no frame could be had, the read failed, or swap is off.
fn read_to_cache(slot: u64, family: u32, va: u64) -> Option<(FrameRef, bool)> {
    let fresh = FrameRef::alloc_user(FrameKind::UserAnon, false)?;
    read_in_run(slot, &[fresh.pfn()]).ok()?;
    cache_read(slot, fresh, family, va)
}

/// Puts `fresh`, just read from `slot`, in the swap cache as the page at
/// `va` of `family` (see [`read_to_cache`]).
fn cache_read(slot: u64, fresh: FrameRef, family: u32, va: u64) -> Option<(FrameRef, bool)> {
    vmstat::PSWPIN.inc();
    let pfn = fresh.pfn();
    // Into the cache, unless someone read it in meanwhile.
    let raced = frames::with(|m| -> Option<Option<FrameRef>> {
        let area = m.swap.as_mut()?;
        let cur = area.cache[slot as usize];
        if let Some(cur) = cur.pfn() {
            return frame_ref::pin_locked(m, cur).map(Some);
        }
        if area.slots.count(slot) == 0 || !area.slots.dup(slot) {
            return None;
        }
        let shadow = cur.shadow_bits();
        area.cache[slot as usize] = CacheEntry::page(pfn);
        area.cached += 1;
        // The cache's own reference.
        if !frame_ref::take_ref_locked(m, pfn) {
            return None;
        }
        if let Some(e) = m.ext.get_mut(pfn) {
            e.flags |= flags::SWAPCACHE;
            e.slot = slot;
            e.family = family;
            e.vpn = va >> 12;
        }
        frame_ref::mark_swapcache(pfn, true);
        if let Some(active) = m.ext.lru_add(pfn, Kind::Anon, shadow) {
            if shadow.is_some() {
                vmstat::WORKINGSET_REFAULT_ANON.inc();
                if active {
                    vmstat::WORKINGSET_ACTIVATE_ANON.inc();
                }
            }
        }
        Some(None)
    })?;
    Some(match raced {
        Some(theirs) => (theirs, false),
        None => (fresh, true),
    })
}

/// Reads a missed `slot` with swap readahead: its in-use neighbours in
/// its cluster go into the swap cache too, guessed to be the neighbouring
/// pages of `va` (the reclaim stream fills a cluster in LRU order, which
/// for a program that touched its memory in order is address order). A
/// wrong guess costs a frame until reclaim finds the page unmapped and
/// takes it back. Each stretch of neighbouring slots is one device read
/// ([`read_in_run`]), `slot`'s own stretch first. Returns what
/// [`read_to_cache`] does for `slot`.
fn read_around(slot: u64, family: u32, va: u64) -> Option<(FrameRef, bool)> {
    // `slot` and its uncached in-use neighbours, ascending (the window
    // holds READAHEAD slots, `slot` among them).
    let mut want = [0u64; READAHEAD as usize];
    let n = frames::with(|m| {
        let area = m.swap.as_ref()?;
        let mut n = 0;
        let mut slot_in = false;
        for s in area.slots.readahead_window(slot, READAHEAD) {
            if s > slot && !slot_in && n < want.len() {
                want[n] = slot;
                n += 1;
                slot_in = true;
            }
            if area.cache[s as usize].pfn().is_none() && n < want.len() {
                want[n] = s;
                n += 1;
            }
        }
        if !slot_in && n < want.len() {
            want[n] = slot;
            n += 1;
        }
        Some(n)
    })?;
    // The stretches of consecutive slots, as ranges of `want`.
    let mut stretches = [(0, 0); READAHEAD as usize];
    let mut count = 0;
    for i in 0..n {
        if i > 0 && want[i - 1] + 1 == want[i] {
            stretches[count - 1].1 = i + 1;
        } else {
            stretches[count] = (i, i + 1);
            count += 1;
        }
    }
    let stretches = &stretches[..count];
    // `slot`'s own stretch first.
    let own = stretches
        .iter()
        .position(|&(a, b)| want[a..b].contains(&slot))?;
    let (a, b) = stretches[own];
    let mine = match read_stretch(&want[a..b], slot, family, va) {
        Ok(mine) => mine?,
        // No frames for the whole stretch, or its read failed: the page
        // alone, without readahead.
        Err(()) => return read_to_cache(slot, family, va),
    };
    for (k, &(a, b)) in stretches.iter().enumerate() {
        if k != own && read_stretch(&want[a..b], slot, family, va).is_err() {
            break;
        }
    }
    Some(mine)
}

/// Reads the consecutive slots `run` into fresh frames with one device
/// read and puts them in the swap cache, each guessed to be mapped at its
/// distance from `slot` at `va`. Returns the page of `slot` if the run has
/// it (as [`read_to_cache`] does); `Err` if frames ran out or the read
/// failed (then nothing was cached).
fn read_stretch(
    run: &[u64],
    slot: u64,
    family: u32,
    va: u64,
) -> Result<Option<(FrameRef, bool)>, ()> {
    const NONE: Option<FrameRef> = None;
    let mut fresh = [NONE; READAHEAD as usize];
    let mut pfns = [Pfn(0); READAHEAD as usize];
    let Some(&first) = run.first() else {
        return Ok(None);
    };
    if run.len() > fresh.len() {
        return Err(());
    }
    for i in 0..run.len() {
        let frame = FrameRef::alloc_user(FrameKind::UserAnon, false).ok_or(())?;
        pfns[i] = frame.pfn();
        fresh[i] = Some(frame);
    }
    read_in_run(first, &pfns[..run.len()]).map_err(|_| ())?;
    let mut mine = None;
    for (&s, frame) in run.iter().zip(&mut fresh) {
        let Some(frame) = frame.take() else { break };
        let guess = va.wrapping_add(s.wrapping_sub(slot).wrapping_mul(vmcore::PAGE_SIZE));
        let cached = cache_read(s, frame, family, guess);
        if s == slot {
            mine = cached;
        }
        // (A neighbour's reference was only ours: the cache keeps the page.)
    }
    Ok(mine)
}

/// Brings the page of `entry` back for the leaf at `va` of an address
/// space of `family`: from the swap cache, or read from the device into a
/// fresh frame (a major fault). Drops that leaf's slot share.
pub fn swap_in(entry: SwapEntry, family: u32, va: u64) -> Option<SwappedIn> {
    let slot = entry.slot;
    let hit = frames::with(|m| {
        let pfn = m.swap.as_ref()?.cache.get(slot as usize)?.pfn()?;
        frame_ref::pin_locked(m, pfn)
    });
    let (frame, major) = match hit {
        Some(frame) => (frame, false),
        None => {
            let _stall = super::psi::MemStall::enter();
            read_around(slot, family, va)?
        }
    };
    // The leaf's share goes; if only the cache is left, the page leaves it.
    let pfn = frame.pfn();
    let (free, exclusive) = frames::with(|m| {
        let Some(area) = m.swap.as_mut() else {
            return (false, false);
        };
        let left = area.slots.put(slot);
        let mut free = left == 0;
        let mut gone = left == 0;
        if left == 1 && area.cache[slot as usize] == CacheEntry::page(pfn) {
            free = uncache_locked(m, slot, pfn, None);
            gone = true;
        }
        let exclusive = gone && frames::refcount(pfn) == 1;
        // Where it is mapped now (a readahead page only had a guess).
        if let Some(e) = m.ext.get_mut(pfn) {
            e.family = family;
            e.vpn = va >> 12;
        }
        (free, exclusive)
    });
    if free {
        discard_slot(slot);
    }
    Some(SwappedIn {
        frame,
        major,
        exclusive,
    })
}

/// Puts `pfn` in the swap cache for reclaim (under the frames lock): a
/// fresh slot (count 1: the cache's share) in the reclaim stream's
/// cluster, or the slot it already has. `None` when swap is off or full.
pub fn add_to_cache_locked(m: &mut PhysicalMemory, pfn: Pfn) -> Option<u64> {
    if !m.swap.as_ref()?.writeok {
        // swapoff is bringing pages back: none goes out.
        return None;
    }
    if let Some(e) = m.ext.get(pfn) {
        if e.flags & flags::SWAPCACHE != 0 {
            return Some(e.slot);
        }
    }
    let area = m.swap.as_mut()?;
    let slot = area.slots.alloc_in(&mut area.cursor)?;
    area.cache[slot as usize] = CacheEntry::page(pfn);
    area.cached += 1;
    if !frame_ref::take_ref_locked(m, pfn) {
        // Cannot happen for a pinned page; undo.
        let area = m.swap.as_mut()?;
        area.cache[slot as usize] = CacheEntry::default();
        area.cached -= 1;
        area.slots.put(slot);
        return None;
    }
    if let Some(e) = m.ext.get_mut(pfn) {
        e.flags |= flags::SWAPCACHE;
        e.slot = slot;
    }
    frame_ref::mark_swapcache(pfn, true);
    Some(slot)
}

/// A fresh slot for a page kept outside the swap cache: a swapped-out
/// page of a shared anonymous object (tmpfs, `MAP_SHARED|MAP_ANONYMOUS`),
/// whose object's index records the slot (count 1, its share; given back
/// with [`release`]). `None` when swap is off or full, or `swapoff` is
/// bringing pages back.
pub fn alloc_slot() -> Option<u64> {
    frames::with(|m| {
        let area = m.swap.as_mut()?;
        if !area.writeok {
            return None;
        }
        area.slots.alloc_in(&mut area.cursor)
    })
}

/// Drops a slot share reclaim took for a leaf it then did not replace
/// (under the frames lock; the cache still holds its own share).
pub fn undup_slot_locked(m: &mut PhysicalMemory, slot: u64) {
    if let Some(a) = m.swap.as_mut() {
        a.slots.put(slot);
    }
}

/// One more leaf will record `slot` (under the frames lock).
pub fn dup_slot_locked(m: &mut PhysicalMemory, slot: u64) -> bool {
    m.swap.as_mut().is_some_and(|a| a.slots.dup(slot))
}

/// Writes the page in `pfn` to `slot`.
pub fn write_out(slot: u64, pfn: Pfn) -> Result<(), SwapIoError> {
    write_out_run(slot, &[pfn])
}

/// Writes the pages in `pfns` to the run of slots from `first` on (page
/// `i` to slot `first + i`), through the bounce buffer: one device request
/// per [`RUN_PAGES`] pages on a disk. The device lock is dropped between
/// buffer-fulls. On an error, none of the run may be counted as written
/// (`pswpout` is the caller's to count).
pub fn write_out_run(first: u64, pfns: &[Pfn]) -> Result<(), SwapIoError> {
    in_buffer_fulls(first, pfns, |dev, injectable, slot, pages, pfns| {
        for (page, &pfn) in pages.iter_mut().zip(pfns) {
            super::direct::read_frame(pfn, page);
        }
        if injectable {
            super::kalloc::injectable(|| dev.write_run(slot, pages))
        } else {
            dev.write_run(slot, pages)
        }
    })
}

/// Runs `io(device, injectable, first slot, buffer, frames)` over `pfns`
/// one bounce buffer-full at a time (the device lock taken for each,
/// dropped between).
fn in_buffer_fulls(
    first: u64,
    pfns: &[Pfn],
    mut io: impl FnMut(&mut dyn SwapDevice, bool, u64, &mut [Page], &[Pfn]) -> Result<(), SwapIoError>,
) -> Result<(), SwapIoError> {
    let mut done = 0;
    while done < pfns.len() {
        let mut dev = DEVICE.lock();
        let Device {
            dev,
            buf,
            injectable,
        } = dev.as_mut().ok_or(SwapIoError::Io)?;
        let n = buf.len().min(pfns.len() - done);
        io(
            &mut **dev,
            *injectable,
            first + done as u64,
            &mut buf[..n],
            &pfns[done..done + n],
        )?;
        done += n;
    }
    Ok(())
}

/// Reads the run of slots from `first` on into the frames `pfns` (slot
/// `first + i` into `pfns[i]`), one device request per [`RUN_PAGES`] pages
/// on a disk. On an error the frames' contents are unspecified.
pub fn read_in_run(first: u64, pfns: &[Pfn]) -> Result<(), SwapIoError> {
    in_buffer_fulls(first, pfns, |dev, _, slot, pages, pfns| {
        dev.read_run(slot, pages)?;
        for (page, &pfn) in pages.iter().zip(pfns) {
            super::direct::write_frame(pfn, page);
        }
        Ok(())
    })
}
