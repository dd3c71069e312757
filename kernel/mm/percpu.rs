//! Per-CPU allocator caches: each CPU's object magazines (in front of the
//! slab heap) and order-0 page lists (in front of the buddy allocator),
//! from `mmcore::percpu`, and its LRU-add batch (`mmcore::lruadd`).
//!
//! **User pages** (issue 14: faults of different processes must not meet
//! on the frames lock). An anonymous page for a fault comes from this
//! CPU's `UserAnon` list ([`alloc_user_anon`]); its reverse map and its
//! place on the LRU are recorded in this CPU's batch (Linux's `lru_add`
//! folio batch) and applied under one frames-lock hold for the whole
//! batch: when the list is refilled (the same hold), when the batch is
//! full, and when the CPU drains. So a fault takes the frames lock about
//! once per 16 pages instead of twice per page. The min watermark is
//! checked without the lock, against the buddy allocator's free count as
//! of the lock's last release ([`frames::buddy_free_pages`]) plus this
//! list; below it, or when the list cannot be refilled above it, the old
//! slow path runs (drains, page-cache reclaim, kswapd). A page waiting in
//! a batch is in use but not on the LRU (reclaim does not see it, as in
//! Linux); if its last reference goes meanwhile, `frame_ref`'s `put`
//! leaves the frame to the batch, which frees it (the frame is marked
//! [`PENDING`](mmcore::lruadd::PENDING) from the moment it goes on the
//! list). User pages are never freed onto the list: their last reference
//! goes under the frames lock anyway, straight to the buddy allocator.
//!
//! A CPU reaches only its own caches, through
//! [`CpuLocal`](crate::arch::cpulocal::CpuLocal): interrupts off, no lock,
//! no atomic read-modify-write. A hit (an object or frame in the cache, or
//! room for one being freed) takes no shared lock at all; a miss refills or
//! flushes a batch under the frames lock, taken *inside* the CPU's cache
//! section (order: CPU cache -> frames -> `RESERVE`; nothing takes a CPU
//! cache under the frames lock, since nothing allocates there).
//!
//! **Drains.** No CPU ever touches another CPU's cache; a drain of all
//! caches is a *request*: the requester drains its own, bumps every other
//! CPU's request number and sends it the wake-up IPI; a CPU drains itself
//! when it goes idle (every time: an idle CPU holds nothing) and on its
//! next allocator slow path if asked, and then acknowledges. We chose this
//! over a lock per cache because on this machine an uncontended atomic lock
//! taken around each call costs more than the whole magazine fast path
//! (`make bench`'s slab-locked lines), and over running the drain in an
//! IPI handler because the handler would take the frames lock in interrupt
//! context. Drains happen:
//! - when memory is short: the heap, the frame allocator and the
//!   user-page allocator drain (their own CPU at once, others by request)
//!   before page-cache reclaim, the emergency reserve or failing (so also
//!   before the OOM killer, which runs only after an allocation failed);
//! - when a CPU goes idle ([`on_idle`]);
//! - before a page must be on the LRU (tests: [`flush_lru_add_local`]);
//! - for an exact count ([`drain_all_sync`], used by the tests' frame
//!   balance and `settled_free_pages`): waits for every CPU holding
//!   anything to acknowledge.
//!
//! **Accounting.** Frames on a page list are allocated in the buddy
//! allocator, labelled with the list's kind; [`adjust_stats`] counts them as
//! free instead (meminfo, `frames::free_pages`), so MemFree plus the kinds
//! still add up to MemTotal exactly. (Linux leaves them out of
//! NR_FREE_PAGES; here buddyinfo leaves them out, and zoneinfo's
//! `pagesets` lists them per CPU, so buddyinfo + pagesets = MemFree.) Objects in magazines count as
//! allocated in the slab's statistics, like Linux's per-CPU caches.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mmcore::buddy::BuddyStats;
use mmcore::lruadd::{self, LruAdd, LruAddBatch};
use mmcore::percpu::{ObjectCache, PageList, PcpError, PCP_POLICY};
use mmcore::{FrameKind, Pfn};

use super::direct::DirectMap;
use super::frames;
use crate::arch::cpulocal::{CpuLocal, Slot};
use crate::arch::percpu::MAX_CPUS;

/// The kinds with per-CPU page lists: kernel pages (vmalloc, buffers),
/// page tables, and anonymous user pages. The last list serves only
/// [`alloc_user_anon`] (faults): its frames are handed out
/// [`PENDING`](mmcore::lruadd::PENDING) and reach the LRU through the
/// CPU's LRU-add batch; they are never freed onto it (a user page's last
/// reference goes under the frames lock, straight to the buddy allocator).
pub const PAGE_KINDS: [FrameKind; 3] =
    [FrameKind::Kernel, FrameKind::PageTable, FrameKind::UserAnon];

/// [`PAGE_KINDS`]' index of the anonymous user pages' list.
const USER: usize = 2;

/// The list [`alloc_page`] and [`free_page`] use for `kind` (not the user
/// list: its frames must go through the LRU-add batch).
fn page_list_index(kind: FrameKind) -> Option<usize> {
    PAGE_KINDS[..USER].iter().position(|&k| k == kind)
}

struct CpuCaches {
    objects: ObjectCache,
    pages: [PageList; PAGE_KINDS.len()],
    /// Fresh anonymous pages waiting to go on the LRU.
    lru_add: LruAddBatch,
}

impl CpuCaches {
    const fn new() -> CpuCaches {
        CpuCaches {
            objects: ObjectCache::new(),
            pages: [
                PageList::new(PAGE_KINDS[0], PCP_POLICY),
                PageList::new(PAGE_KINDS[1], PCP_POLICY),
                PageList::new(PAGE_KINDS[2], PCP_POLICY),
            ],
            lru_add: LruAddBatch::new(),
        }
    }
}

static CACHES: CpuLocal<CpuCaches> =
    CpuLocal::new([const { Slot::new(CpuCaches::new()) }; MAX_CPUS]);

/// What other CPUs may read or ask of one CPU's caches.
#[repr(align(64))]
struct Shared {
    /// Frames on each page list (written by the owner; under the frames
    /// lock whenever the buddy allocator's counts change with it).
    pages: [AtomicU64; PAGE_KINDS.len()],
    /// The caches may hold something (set on every fill, cleared by a drain).
    dirty: AtomicBool,
    /// Highest drain request number addressed to this CPU ...
    drain_req: AtomicU64,
    /// ... and the highest it has carried out.
    drain_done: AtomicU64,
    /// Drains this CPU did.
    drains: AtomicU64,
}

impl Shared {
    const fn new() -> Shared {
        Shared {
            pages: [const { AtomicU64::new(0) }; PAGE_KINDS.len()],
            dirty: AtomicBool::new(false),
            drain_req: AtomicU64::new(0),
            drain_done: AtomicU64::new(0),
            drains: AtomicU64::new(0),
        }
    }
}

static SHARED: [Shared; MAX_CPUS] = [const { Shared::new() }; MAX_CPUS];

/// Frames whose last reference went while they waited in an LRU-add batch:
/// allocated in the buddy allocator until their batch frees them, counted
/// as free meanwhile ([`pages_held`]). Changed under the frames lock.
static PENDING_FREED: AtomicU64 = AtomicU64::new(0);

/// `frame_ref`'s `put` left a frame to its batch (under the frames lock).
pub(super) fn note_pending_freed() {
    PENDING_FREED.fetch_add(1, Ordering::Relaxed);
}
static DRAIN_SEQ: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------- objects

/// Fast path of the heap: an object for `layout` from this CPU's magazine.
/// Panics if the slab's debug checks (`slab-debug`) find the object was
/// written while it sat in the magazine (memory is corrupt).
#[inline]
pub fn try_alloc_object(layout: Layout) -> Option<NonNull<u8>> {
    CACHES
        .with(|c, _| {
            c.objects
                .try_alloc(layout)
                .unwrap_or_else(|e| panic!("kernel heap: {e}"))
        })
        .flatten()
}

/// Fast path of the heap's free: true if `ptr` stayed in this CPU's
/// magazine. Panics on an object freed twice in a row, or (`slab-debug`)
/// any double free or red-zone overrun (memory is corrupt).
///
/// # Safety
/// `ptr` was allocated by the kernel heap for `layout` and is given up
/// (`GlobalAlloc::dealloc`'s contract).
#[inline]
pub unsafe fn try_free_object(ptr: NonNull<u8>, layout: Layout) -> bool {
    CACHES
        .with(|c, cpu| {
            // SAFETY: the caller's contract.
            let kept = unsafe { c.objects.try_free(ptr, layout) }
                .unwrap_or_else(|e| panic!("kernel heap: {e}"));
            if kept {
                SHARED[cpu].dirty.store(true, Ordering::Relaxed);
            }
            kept
        })
        .unwrap_or(false)
}

/// Runs `f` with this CPU's object cache (`None`: not available here, use
/// the slab heap directly). For the heap's slow paths, which take the
/// frames lock inside `f`.
pub fn with_objects<R>(f: impl FnOnce(Option<&mut ObjectCache>) -> R) -> R {
    let mut f = Some(f);
    let done = CACHES.with(|c, cpu| {
        serve_drain_request(c, cpu);
        SHARED[cpu].dirty.store(true, Ordering::Relaxed);
        let f = f.take().expect("run once");
        f(Some(&mut c.objects))
    });
    match done {
        Some(r) => r,
        None => (f.take().expect("not run yet"))(None),
    }
}

// ---------------------------------------------------------------- pages

/// An order-0 frame of `kind` from this CPU's page list (refilled with a
/// batch when empty, leaving the min watermark plus a batch to the others),
/// zeroed if asked. `None`: no list for `kind` here, or no frame left (the
/// caller asks the buddy allocator).
pub fn alloc_page(kind: FrameKind, zeroed: bool) -> Option<Pfn> {
    let k = page_list_index(kind)?;
    let floor =
        super::kswapd::try_watermarks().map_or(u64::MAX, |w| w.min + u64::from(PCP_POLICY.batch));
    let pfn = CACHES
        .with(|c, cpu| {
            let list = &mut c.pages[k];
            let shared = &SHARED[cpu];
            let pfn = match list.pop() {
                Some(p) => Some(p),
                None => frames::with(|m| {
                    let p = list.refill(&mut m.buddy, floor);
                    shared.pages[k].store(list.len() as u64, Ordering::Relaxed);
                    p
                }),
            };
            shared.pages[k].store(list.len() as u64, Ordering::Relaxed);
            if !list.is_empty() {
                shared.dirty.store(true, Ordering::Relaxed);
            }
            pfn
        })
        .flatten()?;
    if zeroed {
        super::direct::zero_frame(pfn);
    }
    Some(pfn)
}

/// Frees an order-0 frame of `kind` (as allocated) to this CPU's page
/// list, or to the buddy allocator if there is none. A frame freed twice
/// is refused: on the list already at once, else when the list flushes it.
pub fn free_page(pfn: Pfn, kind: FrameKind) -> Result<(), PcpError> {
    let Some(k) = page_list_index(kind) else {
        return frames::free(pfn, 0).map_err(PcpError::Buddy);
    };
    let done = CACHES.with(|c, cpu| {
        let list = &mut c.pages[k];
        let shared = &SHARED[cpu];
        let r = match list.push(pfn) {
            Ok(true) => Ok(()),
            Ok(false) => frames::with(|m| {
                let r = list.free(pfn, &mut m.buddy);
                shared.pages[k].store(list.len() as u64, Ordering::Relaxed);
                r
            }),
            Err(e) => Err(e),
        };
        shared.pages[k].store(list.len() as u64, Ordering::Relaxed);
        shared.dirty.store(true, Ordering::Relaxed);
        r
    });
    match done {
        Some(r) => r,
        None => frames::free(pfn, 0).map_err(PcpError::Buddy),
    }
}

// ---------------------------------------------------------------- user pages

/// Fast path of a fault: a fresh anonymous frame for the page at `va` of
/// family `family`, from this CPU's user page list, zeroed if asked, its
/// reverse map and LRU insertion recorded in this CPU's batch. The frames
/// lock is taken only to refill the list (a batch at a time, applying the
/// LRU-add batch under the same hold). The min watermark is checked
/// against the buddy allocator's free count as of its last lock release
/// plus this list. `None`: the list is empty and cannot be refilled above
/// the min watermark, or the watermark is reached (the caller takes the
/// slow path, which drains the caches and reclaims).
pub fn alloc_user_anon(zeroed: bool, family: u32, va: u64) -> Option<Pfn> {
    let marks = super::kswapd::try_watermarks()?;
    // One CPU section for the lot (interrupts off while the page is
    // cleared: a page of stores). The page is cleared before it is
    // recorded: once on the LRU, reclaim may look at it.
    let (pfn, free) = CACHES
        .with(|c, cpu| {
            let shared = &SHARED[cpu];
            let buddy_free = frames::buddy_free_pages();
            let list = &mut c.pages[USER];
            let pfn = match list.pop() {
                Some(p) if buddy_free + list.len() as u64 >= marks.min => p,
                Some(p) => {
                    // Below the min watermark (kernel allocations took
                    // the buddy allocator down): the slow path decides.
                    list.push(p).expect("just popped");
                    return None;
                }
                None => {
                    serve_drain_request(c, cpu);
                    let CpuCaches { pages, lru_add, .. } = c;
                    let list = &mut pages[USER];
                    let p = frames::with(|m| {
                        apply_lru_add(lru_add, m);
                        let p = list.refill(&mut m.buddy, marks.min);
                        for f in list.frames().chain(p) {
                            if let Some(e) = m.ext.get_mut(f) {
                                e.flags |= lruadd::PENDING;
                            }
                        }
                        p
                    })?;
                    shared.dirty.store(true, Ordering::Relaxed);
                    p
                }
            };
            let left = c.pages[USER].len() as u64;
            shared.pages[USER].store(left, Ordering::Relaxed);
            frames::init_ref(pfn, mmcore::FrameKind::UserAnon);
            if zeroed {
                super::direct::zero_frame(pfn);
            }
            let page = LruAdd {
                pfn,
                family,
                vpn: va >> 12,
            };
            if !c.lru_add.push(page) {
                let batch = &mut c.lru_add;
                frames::with(|m| apply_lru_add(batch, m));
                let pushed = c.lru_add.push(page);
                debug_assert!(pushed, "an empty batch takes a page");
            }
            // Re-read: a refill may just have taken frames.
            Some((pfn, frames::buddy_free_pages() + left))
        })
        .flatten()?;
    if free < marks.low {
        super::kswapd::wake();
    }
    Some(pfn)
}

/// Applies an LRU-add batch under the frames lock: each page still in use
/// gets its reverse map and goes on the anon LRU; one whose last reference
/// went meanwhile is freed (see `mmcore::lruadd`).
fn apply_lru_add(batch: &mut LruAddBatch, m: &mut frames::PhysicalMemory) -> usize {
    batch.flush(|page| {
        let Some(e) = m.ext.get_mut(page.pfn) else {
            return;
        };
        match lruadd::flushed(&mut e.flags) {
            lruadd::Flushed::Add => {
                e.family = page.family;
                e.vpn = page.vpn;
                m.ext.lru_add(page.pfn, reclaimcore::Kind::Anon, None);
            }
            lruadd::Flushed::Free => {
                PENDING_FREED.fetch_sub(1, Ordering::Relaxed);
                m.ext.clear(page.pfn);
                m.buddy
                    .free(page.pfn, 0)
                    .expect("a pending frame freed by its batch");
            }
        }
    })
}

/// Applies this CPU's LRU-add batch now (pages someone needs on the LRU).
pub fn flush_lru_add_local() {
    CACHES.with(|c, _| {
        if !c.lru_add.is_empty() {
            let batch = &mut c.lru_add;
            frames::with(|m| apply_lru_add(batch, m));
        }
    });
}

/// Frames on every CPU's page lists, per [`PAGE_KINDS`] entry; the
/// `UserAnon` entry also counts the frames freed while in an LRU-add batch
/// (free, but for the batch's bookkeeping).
pub fn pages_held() -> [u64; PAGE_KINDS.len()] {
    let mut held = [0; PAGE_KINDS.len()];
    for s in &SHARED {
        for (h, p) in held.iter_mut().zip(&s.pages) {
            *h += p.load(Ordering::Relaxed);
        }
    }
    held[USER] += PENDING_FREED.load(Ordering::Relaxed);
    held
}

/// Frames on `cpu`'s page lists, all kinds (zoneinfo's `pagesets`). CPU
/// 0's count also has the frames freed while in any CPU's LRU-add batch
/// (free, not in the buddy allocator: so the CPUs' counts plus buddyinfo
/// still make MemFree).
pub fn pages_held_on(cpu: usize) -> u64 {
    let pending = if cpu == 0 {
        PENDING_FREED.load(Ordering::Relaxed)
    } else {
        0
    };
    SHARED[cpu]
        .pages
        .iter()
        .map(|p| p.load(Ordering::Relaxed))
        .sum::<u64>()
        + pending
}

/// Counts frames on the page lists as free rather than as their kind.
/// Call with `stats` read under the frames lock, as the lists' counts
/// change together with the buddy allocator's only under it.
pub fn adjust_stats(stats: &mut BuddyStats) {
    for (kind, n) in PAGE_KINDS.iter().zip(pages_held()) {
        let n = n.min(stats.pages_by_kind[*kind as usize]);
        stats.pages_by_kind[*kind as usize] -= n;
        stats.pages_by_kind[FrameKind::Free as usize] += n;
        stats.free_pages += n;
    }
}

// ---------------------------------------------------------------- drains

/// Gives everything this CPU's caches hold back (under the frames lock).
/// Panics if the slab or the buddy allocator refuses an object or frame
/// (freed twice: memory is corrupt).
fn drain_caches(c: &mut CpuCaches, cpu: usize) -> u64 {
    let shared = &SHARED[cpu];
    let req = shared.drain_req.load(Ordering::Acquire);
    let n = frames::with(|m| {
        let objs = c
            .objects
            .drain(&mut m.slab, &mut m.buddy, &DirectMap)
            .unwrap_or_else(|e| panic!("kernel heap: {e}"));
        // Pending pages first: those freed while waiting go back here.
        let mut pages = apply_lru_add(&mut c.lru_add, m) as u64;
        for f in c.pages[USER].frames() {
            m.ext.clear(f);
        }
        for (k, list) in c.pages.iter_mut().enumerate() {
            pages += list.drain(&mut m.buddy).unwrap_or_else(|e| panic!("{e}")) as u64;
            shared.pages[k].store(0, Ordering::Relaxed);
        }
        // What was given back may let the heap's emergency reserve
        // fill up again (order: frames -> RESERVE).
        super::heap::refill_reserve(m);
        objs + pages
    });
    shared.dirty.store(false, Ordering::Relaxed);
    shared.drains.fetch_add(1, Ordering::Relaxed);
    shared.drain_done.fetch_max(req, Ordering::Release);
    n
}

fn serve_drain_request(c: &mut CpuCaches, cpu: usize) {
    let s = &SHARED[cpu];
    if s.drain_req.load(Ordering::Acquire) > s.drain_done.load(Ordering::Relaxed) {
        drain_caches(c, cpu);
    }
}

/// Drains this CPU's caches; returns the objects and frames given back.
pub fn drain_local() -> u64 {
    CACHES.with(drain_caches).unwrap_or(0)
}

/// Asks every other CPU whose caches may hold something to drain them
/// (and wakes it); returns the request number.
fn request_drain_all() -> u64 {
    let me = CpuLocal::<CpuCaches>::this_cpu();
    let seq = DRAIN_SEQ.fetch_add(1, Ordering::AcqRel) + 1;
    for (i, s) in SHARED.iter().enumerate() {
        if Some(i) == me || !s.dirty.load(Ordering::Acquire) {
            continue;
        }
        s.drain_req.fetch_max(seq, Ordering::AcqRel);
        crate::arch::smp::wake(i);
    }
    seq
}

/// Memory is short: drains this CPU's caches now and asks the others to
/// drain theirs (without waiting: the caller may hold locks or have
/// interrupts off). Returns what this CPU gave back.
pub fn drain_on_shortage() -> u64 {
    let n = drain_local();
    request_drain_all();
    n
}

/// Drains every CPU's caches and waits (up to a second) until each CPU
/// that held anything has done so; false if one did not answer in time.
/// For exact counts; call with interrupts on and no lock held.
pub fn drain_all_sync() -> bool {
    drain_local();
    let seq = request_drain_all();
    let me = CpuLocal::<CpuCaches>::this_cpu();
    let deadline = crate::time::uptime_ns() + 1_000_000_000;
    let mut next_wake = crate::time::uptime_ns() + 1_000_000;
    loop {
        let pending = SHARED.iter().enumerate().filter(|&(i, s)| {
            Some(i) != me
                && s.drain_req.load(Ordering::Acquire) >= seq
                && s.drain_done.load(Ordering::Acquire) < seq
                && s.dirty.load(Ordering::Acquire)
        });
        let mut any = false;
        let now = crate::time::uptime_ns();
        for (i, _) in pending {
            any = true;
            if now >= next_wake {
                crate::arch::smp::wake(i);
            }
        }
        if !any {
            return true;
        }
        if now >= deadline {
            return false;
        }
        if now >= next_wake {
            next_wake = now + 1_000_000;
        }
        core::hint::spin_loop();
    }
}

/// The CPU is about to idle: it gives back everything its caches hold (an
/// idle CPU should not sit on memory others may need) and answers any
/// drain request. Cheap when the caches are empty.
pub fn on_idle() {
    CACHES.with(|c, cpu| {
        let s = &SHARED[cpu];
        if s.dirty.load(Ordering::Relaxed) {
            drain_caches(c, cpu);
        } else {
            let req = s.drain_req.load(Ordering::Acquire);
            s.drain_done.fetch_max(req, Ordering::Release);
        }
    });
}

/// One CPU's caches, for tests and views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuCacheInfo {
    /// Objects in the magazines.
    pub objects: u64,
    /// Frames on the page lists, per [`PAGE_KINDS`] entry.
    pub pages: [u64; PAGE_KINDS.len()],
    /// Magazine hit and miss counters.
    pub stats: mmcore::percpu::CacheStats,
    /// Drains done.
    pub drains: u64,
}

/// This CPU's caches (`None` before the CPU is set up).
pub fn local_info() -> Option<CpuCacheInfo> {
    CACHES.with(|c, cpu| CpuCacheInfo {
        objects: c.objects.cached(),
        pages: core::array::from_fn(|k| c.pages[k].len() as u64),
        stats: c.objects.stats(),
        drains: SHARED[cpu].drains.load(Ordering::Relaxed),
    })
}

/// Drains CPU `cpu` has done (any CPU's, read from anywhere).
pub fn drains_of(cpu: usize) -> u64 {
    SHARED
        .get(cpu)
        .map_or(0, |s| s.drains.load(Ordering::Relaxed))
}
