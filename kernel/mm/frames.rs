//! The kernel's physical memory: the boot memory map fed through an early
//! boot allocator (memblock) into the per-frame metadata array and the buddy
//! allocator, plus the slab heap that shares its lock.
//!
//! One lock guards buddy and slab together: the slab heap takes its slabs
//! from the buddy allocator in the middle of an allocation, and a single lock
//! (taken with interrupts off) cannot deadlock against itself.

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use core::sync::atomic::{AtomicU64, Ordering};

use mmcore::buddy::BuddyStats;
use mmcore::frame::{init_meta_array, meta_bytes_for};
use mmcore::memblock::MemBlock;
use mmcore::pageref::PageRef;
use mmcore::{BuddyAllocator, FrameKind, FreeError, PageMeta, Pfn, SlabHeap};

use super::layout::PAGE_SIZE;
use crate::arch::sync::IrqMutex;

/// The direct map moved to [`super::direct`]; the old path still works.
pub use super::direct::DirectMap;

/// Frames below 1 MiB stay reserved: real-mode IVT, BIOS data, EBDA and
/// option ROMs live there on PCs, and frame 0 would look like a null address.
/// The application processors' real-mode start-up code (`arch::smp`) goes in
/// usable RAM below 640 KiB: this reservation keeps it out of the buddy
/// allocator under BIOS and UEFI alike.
const LOW_RESERVE: u64 = 1 << 20;

pub struct PhysicalMemory {
    pub buddy: BuddyAllocator<'static>,
    pub slab: SlabHeap,
    /// Per-frame reclaim data and the anonymous LRU.
    pub ext: super::pageext::PageExts,
    /// The swap area's slots and swap cache, while swap is on.
    pub swap: Option<super::swap::SwapArea>,
}

impl PhysicalMemory {
    /// A block of `2^order` frames labelled with its owner, zeroed if
    /// asked: the one place frames leave the allocator for the kernel.
    pub fn alloc_owned(&mut self, order: usize, kind: FrameKind, zeroed: bool) -> Option<Pfn> {
        if zeroed {
            self.buddy.alloc_zeroed(order, kind, &DirectMap)
        } else {
            self.buddy.alloc_as(order, kind)
        }
    }
}

/// The frames lock (see "Locking" in `mm`): buddy and slab together.
static MEMORY: IrqMutex<Option<PhysicalMemory>> =
    IrqMutex::ranked(None, crate::arch::sync::rank::FRAMES);

/// The user frames' atomic reference counts (`mmcore::pageref`), one per
/// frame from the first the allocator describes; reached without the
/// frames lock ([`page_ref`]).
static PAGE_REFS: spin::Once<(&'static [PageRef], Pfn)> = spin::Once::new();

/// The reference count of user frame `pfn` (anonymous or page cache):
/// taken and dropped by [`super::frame_ref`] without the frames lock, the
/// last drop frees the frame under it. `None` for a frame the allocator
/// does not describe.
#[inline]
pub fn page_ref(pfn: Pfn) -> Option<&'static PageRef> {
    let (refs, base) = PAGE_REFS.get()?;
    refs.get(usize::try_from(pfn.0.checked_sub(base.0)?).ok()?)
}

/// Statistics of the frames lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    MEMORY.stat()
}

/// The buddy allocator's free frames as of the frames lock's last release
/// (read without the lock by the fault path's watermark check).
static BUDDY_FREE: AtomicU64 = AtomicU64::new(0);

/// Runs `f` on the physical memory state under the frames lock (interrupts
/// off). `f` must not allocate from the heap: the heap takes this lock.
pub fn with<R>(f: impl FnOnce(&mut PhysicalMemory) -> R) -> R {
    MEMORY.with(|m| {
        let m = m.as_mut().expect("mm::frames::init ran");
        let r = f(m);
        let free = m.buddy.free_pages();
        if BUDDY_FREE.load(Ordering::Relaxed) != free {
            BUDDY_FREE.store(free, Ordering::Relaxed);
        }
        r
    })
}

/// The buddy allocator's free frames as of the last release of the frames
/// lock, without taking it (frames on the CPUs' lists not included).
#[inline]
pub fn buddy_free_pages() -> u64 {
    BUDDY_FREE.load(Ordering::Relaxed)
}

/// What `init` found and did, for the boot log and `meminfo`.
#[derive(Clone, Copy, Debug, Default)]
pub struct InitReport {
    pub usable_bytes: u64,
    pub regions_added: usize,
    pub meta_bytes: u64,
    pub managed_pages: u64,
    pub init_cycles: u64,
}

static INIT_REPORT: spin::Once<InitReport> = spin::Once::new();

/// What `init` reported (`None` before it ran).
pub fn init_report() -> Option<InitReport> {
    INIT_REPORT.get().copied()
}

fn build_memblock(regions: &[MemoryRegion]) -> MemBlock {
    let mut memblock = MemBlock::new();
    for region in regions {
        if region.kind == MemoryRegionKind::Usable {
            memblock
                .add_usable(region.start, region.end)
                .expect("memblock holds the whole memory map");
        }
    }
    let facts = super::super::boot::facts();
    let mut reserve = |start: u64, len: u64| {
        memblock
            .reserve(start, start + len)
            .expect("memblock holds the reservations");
    };
    reserve(0, LOW_RESERVE);
    // The kernel file is in a `Bootloader` region already; reserving it
    // again costs nothing and guards against a map that says otherwise.
    // (The ramdisk is too, but the boot info only gives its virtual
    // address.)
    reserve(facts.kernel_file.0, facts.kernel_file.1);
    memblock
}

/// Builds the buddy allocator from the boot memory map.
pub fn init(regions: &'static [MemoryRegion]) {
    let start = crate::time::rdtsc();
    let mut memblock = build_memblock(regions);
    let usable_bytes = memblock.total_usable();
    let (lo, hi) = memblock.pfn_span().expect("the machine has usable memory");
    let frames = hi.0 - lo.0;
    // Per-frame metadata: the buddy allocator's PageMeta and reclaim's
    // PageExt, both reserved for good.
    let meta_bytes = meta_bytes_for(frames) as u64
        + frames
            * (core::mem::size_of::<super::pageext::PageExt>()
                + core::mem::size_of::<reclaimcore::LruNode>()
                + core::mem::size_of::<PageRef>()) as u64;
    let raw = super::direct::alloc_meta_array(&mut memblock, frames)
        .expect("room for the frame metadata array");
    let meta: &'static mut [PageMeta] = init_meta_array(raw);
    let ext = super::direct::alloc_boot_array::<super::pageext::PageExt>(&mut memblock, frames)
        .expect("room for the per-frame reclaim data");
    let lru = super::direct::alloc_boot_array::<reclaimcore::LruNode>(&mut memblock, frames)
        .expect("room for the per-frame LRU slots");
    let refs = super::direct::alloc_boot_array::<u32>(&mut memblock, frames)
        .expect("room for the per-frame reference counts");
    PAGE_REFS.call_once(|| (PageRef::from_zeroed(refs), lo));
    let mut buddy = BuddyAllocator::new(meta, lo);
    let mut regions_added = 0;
    for range in memblock.free_ranges() {
        buddy.add_free_range(Pfn::from_addr_up(range.start), Pfn::from_addr(range.end));
        regions_added += 1;
    }
    let init_cycles = crate::time::rdtsc() - start;
    let report = InitReport {
        usable_bytes,
        regions_added,
        meta_bytes,
        managed_pages: buddy.managed_pages(),
        init_cycles,
    };
    INIT_REPORT.call_once(|| report);
    *MEMORY.lock() = Some(PhysicalMemory {
        buddy,
        slab: SlabHeap::new(),
        ext: super::pageext::PageExts::new(ext, lru, lo),
        swap: None,
    });
    // Publishes the free count for the lock-free watermark check.
    with(|_| ());
    let us = crate::time::cycles_to_us(init_cycles);
    let gib = usable_bytes as f64 / (1u64 << 30) as f64;
    log::info!(
        "buddy: {} MiB free in {} ranges, {} KiB of frame metadata, set up in {}.{:03} ms ({:.2} ms per GiB)",
        (report.managed_pages * PAGE_SIZE) >> 20,
        regions_added,
        meta_bytes / 1024,
        us / 1000,
        us % 1000,
        us as f64 / 1000.0 / gib
    );
}

/// Allocates a block of `2^order` frames owned by `kind`. A single frame
/// of a kind with per-CPU lists ([`super::percpu::PAGE_KINDS`], but for
/// `UserAnon`, whose list only faults use) comes from
/// this CPU's list; give it back with [`free_page`]. When the buddy
/// allocator is empty the CPUs' caches are drained and it is asked again.
pub fn alloc(order: usize, kind: FrameKind) -> Option<Pfn> {
    alloc_maybe_zeroed(order, kind, false)
}

/// Like [`alloc`], with the frames zeroed.
pub fn alloc_zeroed(order: usize, kind: FrameKind) -> Option<Pfn> {
    alloc_maybe_zeroed(order, kind, true)
}

fn alloc_maybe_zeroed(order: usize, kind: FrameKind, zeroed: bool) -> Option<Pfn> {
    if order == 0 {
        if let Some(pfn) = super::percpu::alloc_page(kind, zeroed) {
            return Some(pfn);
        }
    }
    with(|m| m.alloc_owned(order, kind, zeroed)).or_else(|| {
        super::percpu::drain_on_shortage();
        with(|m| m.alloc_owned(order, kind, zeroed))
    })
}

/// Frees an order-0 frame allocated as `kind` by [`alloc`]: onto this
/// CPU's page list if the kind has one (checked when the list flushes it
/// to the buddy allocator), else like [`free`].
pub fn free_page(pfn: Pfn, kind: FrameKind) -> Result<(), mmcore::percpu::PcpError> {
    super::percpu::free_page(pfn, kind)
}

/// Frames user pages may not take, the min watermark (Linux's
/// `min_free_kbytes`, see [`super::kswapd`]): the kernel's own allocations
/// (slab pages for region lists and process structures, kernel stacks,
/// page tables, reclaim's) still find memory when user space has used up
/// the rest, so running out is an `ENOMEM` or an OOM kill, never a kernel
/// without a frame.
pub fn user_reserve() -> u64 {
    super::kswapd::watermarks().min
}

/// One frame for a user page (anonymous or page cache), zeroed if asked.
///
/// Leaves [`user_reserve`] frames to the kernel, and wakes kswapd when it
/// leaves fewer than the low watermark. When memory is short it
/// first drops clean page-cache pages that nothing maps (they can be read
/// again from their file) and tries once more. Failure injection
/// (`fail_page_alloc`) applies here.
pub fn alloc_user(kind: FrameKind, zeroed: bool) -> Option<Pfn> {
    if super::failslab::should_fail_page() {
        return None;
    }
    alloc_user_rmap(kind, zeroed, None)
}

/// [`alloc_user`] for an anonymous page of address-space family `family`
/// at `va`, with its reverse map and on the LRU. Usually from this CPU's
/// user page list, its reverse map and LRU insertion batched, with no
/// frames lock taken ([`super::percpu::alloc_user_anon`]); when that list
/// is empty and cannot be refilled above the min watermark, as
/// [`alloc_user`] (drains, page-cache reclaim, kswapd) with the reverse
/// map and the LRU insertion under one more lock hold.
pub fn alloc_user_anon(zeroed: bool, family: u32, va: u64) -> Option<Pfn> {
    if super::failslab::should_fail_page() {
        return None;
    }
    super::percpu::alloc_user_anon(zeroed, family, va)
        .or_else(|| alloc_user_rmap(FrameKind::UserAnon, zeroed, Some((family, va))))
}

/// The slow path both share (failure injection checked by the callers).
fn alloc_user_rmap(kind: FrameKind, zeroed: bool, rmap: Option<(u32, u64)>) -> Option<Pfn> {
    let marks = super::kswapd::watermarks();
    let mut free = u64::MAX;
    // The frame is cleared outside the frames lock (a page of stores,
    // which every fault of every CPU would otherwise wait behind), before
    // anyone else can know it: it goes on the LRU (where reclaim finds
    // it) only after, under a second short hold.
    let mut take = || {
        with(|m| {
            free = m.buddy.free_pages();
            if free <= marks.min {
                return None;
            }
            free -= 1;
            m.alloc_owned(0, kind, false)
        })
    };
    // Short: the CPUs' caches first (frames on their lists are free but
    // out of reach here), then clean page-cache pages.
    let pfn = take()
        .or_else(|| {
            (super::percpu::drain_on_shortage() > 0)
                .then(&mut take)
                .flatten()
        })
        .or_else(|| {
            (super::pagecache::try_shrink() > 0)
                .then(&mut take)
                .flatten()
        });
    if free < marks.low {
        super::kswapd::wake();
    }
    let pfn = pfn?;
    init_ref(pfn, kind);
    if zeroed {
        super::direct::zero_frame(pfn);
    }
    if let Some((family, va)) = rmap {
        with(|m| {
            if let Some(e) = m.ext.get_mut(pfn) {
                e.family = family;
                e.vpn = va >> 12;
            }
            m.ext.lru_add(pfn, reclaimcore::Kind::Anon, None);
        });
    }
    Some(pfn)
}

/// Frees a block; a double free or a block never handed out is refused with
/// the reason, and nothing changes.
pub fn free(pfn: Pfn, order: usize) -> Result<(), FreeError> {
    with(|m| {
        m.buddy.free(pfn, order)?;
        // A user frame taken with `alloc_user` and given back here (not
        // through `FrameRef`) leaves no count behind (cleared under the
        // lock: nobody can have allocated the frame again yet).
        if let Some(r) = page_ref(pfn) {
            r.clear();
        }
        Ok(())
    })
}

/// The buddy allocator's counters, with the frames on the CPUs' page
/// lists counted as free (see [`super::percpu::adjust_stats`]).
pub fn stats() -> BuddyStats {
    with(|m| {
        let mut s = m.buddy.stats();
        super::percpu::adjust_stats(&mut s);
        s
    })
}

/// The buddy allocator's own counters: frames on the CPUs' page lists are
/// allocated blocks of their list's kind here.
pub fn buddy_stats() -> BuddyStats {
    with(|m| m.buddy.stats())
}

/// Free frames: the buddy allocator's and those on the CPUs' page lists.
pub fn free_pages() -> u64 {
    with(|m| m.buddy.free_pages() + super::percpu::pages_held().iter().sum::<u64>())
}

/// A fresh user frame of `kind` gets its one counted reference (before
/// anything, the LRU first of all, can find it).
pub fn init_ref(pfn: Pfn, kind: FrameKind) {
    let flags = match kind {
        FrameKind::UserFile => mmcore::pageref::FILE,
        _ => 0,
    };
    if let Some(r) = page_ref(pfn) {
        r.init(flags);
    }
}

/// References to user frame `pfn` now (its atomic count: a snapshot, read
/// without the frames lock).
pub fn refcount(pfn: Pfn) -> u16 {
    page_ref(pfn).map_or(0, |r| r.count() as u16)
}

pub fn kind(pfn: Pfn) -> FrameKind {
    with(|m| m.buddy.kind(pfn))
}
