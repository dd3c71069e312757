//! Per-CPU front ends of the allocators: object magazines in front of the
//! slab heap and order-0 page lists in front of the buddy allocator.
//!
//! Both are plain data owned by one CPU; the kernel keeps one of each per
//! CPU and touches it only with interrupts off (and under a per-CPU lock
//! that is uncontended unless another CPU drains it). The shared allocators
//! are reached only on a miss (empty magazine or list: refill a batch) or an
//! overflow (full: flush a batch), under the kernel's frames lock, so a CPU
//! takes that lock once per batch instead of once per object.
//!
//! # Object magazines
//!
//! One magazine per kmalloc class and CPU: a small stack of free objects
//! (Bonwick's magazine, in the single-array form of Linux's SLAB
//! `array_cache`): allocation pops the most recently freed (cache-hot)
//! object, free pushes. An empty magazine takes [`MagPolicy::batch`] objects
//! from the slab; a full one gives the `batch` *oldest* (coldest) objects
//! back. Refilling and flushing half a magazine leaves room both ways, so an
//! alloc/free pair at a boundary never thrashes (the hysteresis Bonwick gets
//! from his loaded + previous pair).
//!
//! Why magazines and not SLUB's CPU slab: a CPU slab needs the slab's free
//! list itself to be per-CPU (frozen slabs, a lockless cmpxchg on
//! freelist+tid, remote frees onto a second list), a rewrite of the slab
//! heap whose state lives in the frame metadata under the frames lock. A
//! magazine sits entirely in front of the unchanged slab: an object freed on
//! any CPU simply goes into that CPU's magazine, and a drain is "free every
//! cached object", which the slab already checks (double free, wrong
//! cache, not an object) when it happens.
//!
//! Objects in magazines count as allocated in the slab's statistics (as
//! Linux's per-CPU caches do), and keep their slabs from being empty; a
//! drain gives them back.
//!
//! # Debug checks (`slab-debug`)
//!
//! Debug builds run the same magazines as release builds (Linux's SLUB
//! leaves its fast path when debugging is on; this one stays, so the
//! kernel's tests exercise it). The checks happen where an object changes
//! hands: going into a magazine (a free: [`ObjectCache::try_free`], or a
//! refill taking it from the slab) it must be allocated — one freed already
//! or sitting in a magazine is a double free, reported at once — and its red
//! zone intact; it is then poisoned and marked *cached* in its debug
//! trailer. Coming out (an allocation, or a flush or drain giving it back
//! to the slab) it must be marked cached with its poison intact, else it
//! was written after it was freed; then its red zone is armed for the new
//! request. The slab's own checks run on the refill and the flush as
//! always, including the address checks (a pointer into no slab, or not at
//! an object's start) that the fast path cannot make without the heap.
//!
//! # Page lists
//!
//! Linux's `per_cpu_pages`: per CPU and frame kind, a stack of order-0
//! frames that the buddy allocator has handed out already, labelled with
//! that kind, so taking one or giving one back changes no shared state.
//! One list per kind (as Linux keeps one per migrate type) means a frame
//! never needs relabelling on the fast path. Below `batch` the list is
//! refilled with up to `batch` frames; above `high` the `batch` oldest go
//! back to the buddy allocator. The kernel counts frames on the lists as
//! free (and not as their kind).

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::buddy::{BuddyAllocator, FreeError};
use crate::frame::{FrameKind, Pfn, PhysMem};
use crate::slab::{
    debug_into_magazine, debug_out_of_magazine, kmalloc_class, SlabError, SlabHeap, DEBUG,
    KMALLOC_SIZES,
};

const NR_KMALLOC: usize = KMALLOC_SIZES.len();

/// Most objects a magazine can hold (the small classes' limit).
pub const MAG_CAPACITY: usize = 32;

/// How many objects a class's magazine holds and moves at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MagPolicy {
    /// Objects held at most (0: no caching).
    pub limit: u16,
    /// Objects taken from the slab when empty and given back when full.
    pub batch: u16,
}

/// The magazine size for objects of `size` bytes: fewer objects the bigger
/// they are (as Linux's SLAB sizes its array caches), so a CPU holds at most
/// 8 KiB (small classes) to 32 KiB (the 4 KiB and 8 KiB classes) per class.
pub const fn mag_policy(size: usize) -> MagPolicy {
    let limit = if size <= 256 {
        MAG_CAPACITY as u16
    } else if size <= 1024 {
        16
    } else if size <= 4096 {
        8
    } else {
        4
    };
    MagPolicy {
        limit,
        batch: limit / 2,
    }
}

/// A stack of free objects of one class (addresses; see [`ObjectCache`]).
#[derive(Clone, Copy, Debug)]
struct Magazine {
    objs: [usize; MAG_CAPACITY],
    len: u16,
    policy: MagPolicy,
}

impl Magazine {
    const fn new(policy: MagPolicy) -> Magazine {
        Magazine {
            objs: [0; MAG_CAPACITY],
            len: 0,
            policy,
        }
    }
}

fn to_ptr(addr: usize) -> NonNull<u8> {
    NonNull::new(core::ptr::with_exposed_provenance_mut(addr))
        .expect("magazines hold non-null objects")
}

/// Counters of one CPU's object cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Allocations served from a magazine.
    pub alloc_hits: u64,
    /// Allocations that went to the slab (refills and uncached layouts).
    pub alloc_misses: u64,
    /// Frees kept in a magazine.
    pub free_hits: u64,
    /// Frees that went to the slab (flushes and uncached layouts).
    pub free_misses: u64,
}

/// One CPU's object magazines, one per kmalloc class.
///
/// The fast paths ([`try_alloc`](Self::try_alloc),
/// [`try_free`](Self::try_free)) need nothing but the cache; the slow
/// paths take the slab heap and the buddy allocator (in the kernel: under
/// the frames lock). [`alloc`](Self::alloc) and [`dealloc`](Self::dealloc)
/// combine them for callers that hold everything anyway.
#[derive(Clone, Debug)]
pub struct ObjectCache {
    mags: [Magazine; NR_KMALLOC],
    stats: CacheStats,
}

impl Default for ObjectCache {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectCache {
    /// Empty magazines with [`mag_policy`] for every kmalloc class.
    pub const fn new() -> ObjectCache {
        let mut mags = [Magazine::new(MagPolicy { limit: 0, batch: 0 }); NR_KMALLOC];
        let mut c = 0;
        while c < NR_KMALLOC {
            mags[c] = Magazine::new(mag_policy(KMALLOC_SIZES[c]));
            c += 1;
        }
        ObjectCache {
            mags,
            stats: CacheStats {
                alloc_hits: 0,
                alloc_misses: 0,
                free_hits: 0,
                free_misses: 0,
            },
        }
    }

    /// The class's policy (`None`: `layout` is not a kmalloc class).
    pub fn policy_for(&self, layout: Layout) -> Option<MagPolicy> {
        kmalloc_class(layout.size(), layout.align()).map(|c| self.mags[c].policy)
    }

    /// Objects held in all magazines.
    pub fn cached(&self) -> u64 {
        self.mags.iter().map(|m| u64::from(m.len)).sum()
    }

    /// Objects held in the magazine of `layout`'s class.
    pub fn cached_for(&self, layout: Layout) -> u64 {
        kmalloc_class(layout.size(), layout.align()).map_or(0, |c| u64::from(self.mags[c].len))
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Fast path: an object for `layout` from its class's magazine, or
    /// `None` (empty magazine, no caching, or a large layout). With
    /// `slab-debug` the object's poison is checked first: an error means it
    /// was written while in the magazine (it is dropped from the magazine).
    #[inline]
    pub fn try_alloc(&mut self, layout: Layout) -> Result<Option<NonNull<u8>>, SlabError> {
        let Some(c) = kmalloc_class(layout.size(), layout.align()) else {
            return Ok(None);
        };
        let m = &mut self.mags[c];
        if m.len == 0 {
            return Ok(None);
        }
        m.len -= 1;
        let p = to_ptr(m.objs[m.len as usize]);
        if DEBUG {
            // SAFETY: the magazine holds only objects of class `c` that
            // went in through `debug_into_magazine`.
            unsafe { debug_out_of_magazine(c, p, layout.size())? };
        }
        self.stats.alloc_hits += 1;
        Ok(Some(p))
    }

    /// Fast path: keeps `ptr` (allocated for `layout`) in its class's
    /// magazine; `Ok(false)` if it must go the slow way
    /// ([`free_slow`](Self::free_slow)). An object freed twice in a row is
    /// caught here (the top of the magazine); other double frees are caught
    /// by the slab when the magazine is flushed.
    ///
    /// With `slab-debug` every double free is caught here (the object's
    /// state says it is free or in a magazine), and the red zone is checked
    /// before the object is poisoned (see the module comment).
    ///
    /// # Safety
    /// `ptr` must have been allocated for `layout` (from this cache, another
    /// CPU's, or the slab heap) and not be used after this call: with
    /// `slab-debug` the object is poisoned at once. (Whether the address
    /// really is a slab object is checked only when the magazine gives it
    /// back to the slab.)
    #[inline]
    pub unsafe fn try_free(&mut self, ptr: NonNull<u8>, layout: Layout) -> Result<bool, SlabError> {
        let Some(c) = kmalloc_class(layout.size(), layout.align()) else {
            return Ok(false);
        };
        let m = &mut self.mags[c];
        if m.len >= m.policy.limit {
            return Ok(false);
        }
        let addr = ptr.as_ptr().expose_provenance();
        if m.len > 0 && m.objs[m.len as usize - 1] == addr {
            return Err(SlabError::DoubleFree {
                cache: "kmalloc (per-CPU magazine)",
                addr,
            });
        }
        if DEBUG {
            // SAFETY: the caller's contract: an object of class `c`
            // allocated with `layout.size()` bytes, given up.
            unsafe { debug_into_magazine(c, ptr, layout.size())? };
        }
        m.objs[m.len as usize] = addr;
        m.len += 1;
        self.stats.free_hits += 1;
        Ok(true)
    }

    /// Slow path of allocation: takes a batch of objects of `layout`'s class
    /// from the slab heap (at least one, the one returned; the rest only
    /// while the slab has them) or, for a layout no magazine holds, simply
    /// allocates from the heap.
    pub fn alloc_slow<M: PhysMem + ?Sized>(
        &mut self,
        layout: Layout,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        self.stats.alloc_misses += 1;
        if let Some(p) = self.try_alloc_uncounted(layout)? {
            return Ok(p);
        }
        let c = match kmalloc_class(layout.size(), layout.align()) {
            Some(c) if self.mags[c].policy.limit > 0 => c,
            _ => return heap.alloc(layout, buddy, mem),
        };
        let first = heap.alloc(layout, buddy, mem)?;
        let size = KMALLOC_SIZES[c];
        let m = &mut self.mags[c];
        while m.len < m.policy.batch {
            match heap.alloc_from(c, size, buddy, mem) {
                Ok(p) => {
                    if DEBUG {
                        // SAFETY: an object of class `c` the slab just
                        // handed out (whole: `size` is the class's).
                        unsafe { debug_into_magazine(c, p, size)? };
                    }
                    m.objs[m.len as usize] = p.as_ptr().expose_provenance();
                    m.len += 1;
                }
                Err(_) => break,
            }
        }
        Ok(first)
    }

    fn try_alloc_uncounted(&mut self, layout: Layout) -> Result<Option<NonNull<u8>>, SlabError> {
        let p = self.try_alloc(layout)?;
        if p.is_some() {
            self.stats.alloc_hits -= 1;
        }
        Ok(p)
    }

    /// Slow path of free: a full magazine gives its `batch` oldest objects
    /// back to the slab and keeps `ptr`; an uncached layout goes straight
    /// to the heap (which checks it).
    ///
    /// # Safety
    /// As [`try_free`](Self::try_free).
    pub unsafe fn free_slow<M: PhysMem + ?Sized>(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        self.stats.free_misses += 1;
        let c = match kmalloc_class(layout.size(), layout.align()) {
            Some(c) if self.mags[c].policy.limit > 0 => c,
            _ => return heap.dealloc(ptr, layout, buddy, mem),
        };
        if self.mags[c].len >= self.mags[c].policy.limit {
            let n = self.mags[c].policy.batch.max(1);
            self.flush_oldest(c, n, heap, buddy, mem)?;
        }
        // SAFETY: the caller's contract.
        if !unsafe { self.try_free(ptr, layout)? } {
            // Unreachable with limit > 0 after a flush; stay correct anyway.
            return heap.dealloc(ptr, layout, buddy, mem);
        }
        self.stats.free_hits -= 1;
        Ok(())
    }

    /// Gives the `n` oldest objects of class `c` back to the slab.
    fn flush_oldest<M: PhysMem + ?Sized>(
        &mut self,
        c: usize,
        n: u16,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        let size = KMALLOC_SIZES[c];
        let m = &mut self.mags[c];
        let n = n.min(m.len) as usize;
        for i in 0..n {
            let p = to_ptr(m.objs[i]);
            let r = if DEBUG {
                // SAFETY: an object of class `c` the magazine holds; it
                // leaves whole (`size` is the class's), to the slab.
                unsafe { debug_out_of_magazine(c, p, size) }
            } else {
                Ok(())
            };
            if let Err(e) = r.and_then(|()| heap.free_to(c, size, p.as_ptr(), buddy, mem)) {
                // Keep the objects not yet given back (the failed one is
                // dropped: it is not a free object of this class).
                m.objs.copy_within(i + 1..m.len as usize, 0);
                m.len -= (i + 1) as u16;
                return Err(e);
            }
        }
        m.objs.copy_within(n..m.len as usize, 0);
        m.len -= n as u16;
        Ok(())
    }

    /// [`try_alloc`](Self::try_alloc), else [`alloc_slow`](Self::alloc_slow).
    #[inline]
    pub fn alloc<M: PhysMem + ?Sized>(
        &mut self,
        layout: Layout,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        match self.try_alloc(layout)? {
            Some(p) => Ok(p),
            None => self.alloc_slow(layout, heap, buddy, mem),
        }
    }

    /// [`try_free`](Self::try_free), else [`free_slow`](Self::free_slow).
    ///
    /// # Safety
    /// As [`try_free`](Self::try_free).
    #[inline]
    pub unsafe fn dealloc<M: PhysMem + ?Sized>(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        // SAFETY: the caller's contract (for both).
        unsafe {
            if self.try_free(ptr, layout)? {
                return Ok(());
            }
            self.free_slow(ptr, layout, heap, buddy, mem)
        }
    }

    /// Gives every cached object back to the slab; returns how many. On an
    /// error (an object the slab refuses: a double free that reached the
    /// magazine) the rest are still given back and the first error is
    /// returned.
    pub fn drain<M: PhysMem + ?Sized>(
        &mut self,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<u64, SlabError> {
        let mut freed = 0;
        let mut first_err = None;
        for c in 0..NR_KMALLOC {
            while self.mags[c].len > 0 {
                let before = self.mags[c].len;
                let r = self.flush_oldest(c, before, heap, buddy, mem);
                freed += u64::from(before - self.mags[c].len);
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(freed),
        }
    }
}

/// Most frames a page list can hold.
pub const PCP_CAPACITY: usize = 64;

/// A page list's sizes (Linux's `pcp->batch` and `pcp->high`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePolicy {
    /// Frames taken from the buddy allocator when empty, and given back
    /// when above `high`.
    pub batch: u16,
    /// Frames held at most.
    pub high: u16,
}

/// The kernel's page-list sizes: 16-frame batches, at most 48 frames
/// (192 KiB) per list.
pub const PCP_POLICY: PagePolicy = PagePolicy {
    batch: 16,
    high: 48,
};

/// Why a page list refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpError {
    /// The frame is on the list already (freed twice).
    DoubleFree {
        /// The frame.
        pfn: Pfn,
    },
    /// The buddy allocator refused a frame while flushing.
    Buddy(FreeError),
}

impl core::fmt::Display for PcpError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            PcpError::DoubleFree { pfn } => {
                write!(f, "per-CPU page list: frame {:#x} freed twice", pfn.0)
            }
            PcpError::Buddy(e) => write!(f, "per-CPU page list: {e}"),
        }
    }
}

/// One CPU's free order-0 frames of one kind (see the module comment).
#[derive(Clone, Debug)]
pub struct PageList {
    pfns: [u64; PCP_CAPACITY],
    len: u16,
    kind: FrameKind,
    policy: PagePolicy,
}

impl PageList {
    /// An empty list of frames of `kind`.
    ///
    /// # Panics
    /// If `policy.high` exceeds [`PCP_CAPACITY`] or `batch` is 0 or above
    /// `high`, or `kind` is not a kind allocated blocks have.
    pub const fn new(kind: FrameKind, policy: PagePolicy) -> PageList {
        assert!(policy.high as usize <= PCP_CAPACITY);
        assert!(policy.batch > 0 && policy.batch <= policy.high);
        assert!(!matches!(kind, FrameKind::Free | FrameKind::Reserved));
        PageList {
            pfns: [0; PCP_CAPACITY],
            len: 0,
            kind,
            policy,
        }
    }

    /// Frames on the list.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// No frames on the list.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kind the list's frames are labelled with.
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// The frames on the list, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = Pfn> + '_ {
        self.pfns[..self.len as usize].iter().map(|&p| Pfn(p))
    }

    /// Fast path: the most recently freed frame.
    #[inline]
    pub fn pop(&mut self) -> Option<Pfn> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(Pfn(self.pfns[self.len as usize]))
    }

    /// Fast path: keeps `pfn` (an order-0 frame of this list's kind) unless
    /// the list is at `high` (`Ok(false)`: flush first). A frame already on
    /// the list is refused.
    #[inline]
    pub fn push(&mut self, pfn: Pfn) -> Result<bool, PcpError> {
        if self.len >= self.policy.high {
            return Ok(false);
        }
        if self.pfns[..self.len as usize].contains(&pfn.0) {
            return Err(PcpError::DoubleFree { pfn });
        }
        self.pfns[self.len as usize] = pfn.0;
        self.len += 1;
        Ok(true)
    }

    /// Slow path of allocation: takes up to `batch` frames from `buddy`
    /// while it keeps more than `keep_free` free, and returns one of them;
    /// `None` if the buddy allocator gives none.
    pub fn refill(&mut self, buddy: &mut BuddyAllocator<'_>, keep_free: u64) -> Option<Pfn> {
        while self.len < self.policy.batch && buddy.free_pages() > keep_free {
            match buddy.alloc_as(0, self.kind) {
                Some(p) => {
                    self.pfns[self.len as usize] = p.0;
                    self.len += 1;
                }
                None => break,
            }
        }
        self.pop()
    }

    /// Slow path of free: gives the `batch` oldest frames back when full,
    /// then keeps `pfn`.
    pub fn free(&mut self, pfn: Pfn, buddy: &mut BuddyAllocator<'_>) -> Result<(), PcpError> {
        if self.len >= self.policy.high {
            self.flush(self.policy.batch as usize, buddy)?;
        }
        if self.push(pfn)? {
            Ok(())
        } else {
            buddy.free(pfn, 0).map_err(PcpError::Buddy)
        }
    }

    /// Gives the `n` oldest frames back to `buddy`; returns how many went.
    /// A frame the buddy allocator refuses is dropped from the list and
    /// reported (after the others went back).
    pub fn flush(&mut self, n: usize, buddy: &mut BuddyAllocator<'_>) -> Result<usize, PcpError> {
        let n = n.min(self.len as usize);
        let mut first_err = None;
        for &p in &self.pfns[..n] {
            if let Err(e) = buddy.free(Pfn(p), 0) {
                first_err.get_or_insert(PcpError::Buddy(e));
            }
        }
        self.pfns.copy_within(n..self.len as usize, 0);
        self.len -= n as u16;
        match first_err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Gives every frame back to `buddy`.
    pub fn drain(&mut self, buddy: &mut BuddyAllocator<'_>) -> Result<usize, PcpError> {
        self.flush(self.len as usize, buddy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::host::Arena;
    use std::string::ToString;
    use std::vec::Vec;

    fn buddy_on(arena: &Arena) -> BuddyAllocator<'static> {
        let meta = Vec::leak(arena.new_meta());
        let mut b = BuddyAllocator::new(meta, arena.base_pfn());
        b.add_free_range(arena.base_pfn(), arena.end_pfn());
        b
    }

    /// Frees through the cache (the tests free only what they allocated).
    fn free(
        cache: &mut ObjectCache,
        p: NonNull<u8>,
        l: Layout,
        heap: &mut SlabHeap,
        buddy: &mut BuddyAllocator<'_>,
        arena: &Arena,
    ) -> Result<(), SlabError> {
        // SAFETY: `p` came from the heap or a cache for `l`; the tests that
        // free twice rely on the checks refusing without writing.
        unsafe { cache.dealloc(p, l, heap, buddy, arena) }
    }

    #[test]
    fn policies_shrink_with_the_object_size() {
        assert_eq!(
            mag_policy(8),
            MagPolicy {
                limit: 32,
                batch: 16
            }
        );
        assert_eq!(mag_policy(512).limit, 16);
        assert_eq!(mag_policy(4096).limit, 8);
        assert_eq!(mag_policy(8192).limit, 4);
        for s in KMALLOC_SIZES {
            let p = mag_policy(s);
            assert!(p.limit as usize <= MAG_CAPACITY && p.batch <= p.limit);
        }
    }

    #[test]
    fn alloc_free_pairs_stay_in_the_magazine() {
        let arena = Arena::new(Pfn(1 << 20), 256);
        let mut buddy = buddy_on(&arena);
        let mut heap = SlabHeap::new();
        let mut cache = ObjectCache::new();
        let l = Layout::from_size_align(64, 8).unwrap();
        let p = cache.alloc(l, &mut heap, &mut buddy, &arena).unwrap();
        let after_refill = heap.cache_info(heap.kmalloc_cache_for(l).unwrap()).unwrap();
        assert_eq!(cache.cached(), 16);
        free(&mut cache, p, l, &mut heap, &mut buddy, &arena).unwrap();
        for _ in 0..1000 {
            let q = cache.alloc(l, &mut heap, &mut buddy, &arena).unwrap();
            assert_eq!(q, p, "the hot object comes back");
            free(&mut cache, q, l, &mut heap, &mut buddy, &arena).unwrap();
        }
        let now = heap.cache_info(heap.kmalloc_cache_for(l).unwrap()).unwrap();
        assert_eq!(
            now.active_objs, after_refill.active_objs,
            "the slab was not touched"
        );
        assert_eq!(cache.stats().alloc_misses, 1);
        let drained = cache.drain(&mut heap, &mut buddy, &arena).unwrap();
        assert_eq!(drained, 17);
        assert_eq!(heap.cache_info(now.id).unwrap().active_objs, 0);
        heap.shrink(&mut buddy);
        assert_eq!(buddy.free_pages(), 256);
    }

    #[test]
    fn a_full_magazine_flushes_its_oldest_half() {
        let arena = Arena::new(Pfn(1 << 20), 256);
        let mut buddy = buddy_on(&arena);
        let mut heap = SlabHeap::new();
        let mut cache = ObjectCache::new();
        let l = Layout::from_size_align(8, 8).unwrap();
        let objs: Vec<_> = (0..40)
            .map(|_| heap.alloc(l, &mut buddy, &arena).unwrap())
            .collect();
        for &o in &objs[..32] {
            free(&mut cache, o, l, &mut heap, &mut buddy, &arena).unwrap();
        }
        assert_eq!(cache.cached(), 32);
        free(&mut cache, objs[32], l, &mut heap, &mut buddy, &arena).unwrap();
        assert_eq!(cache.cached(), 17, "16 oldest flushed, one more kept");
        // The newest object is on top; the oldest kept is objs[16].
        assert_eq!(cache.try_alloc(l), Ok(Some(objs[32])));
        let id = heap.kmalloc_cache_for(l).unwrap();
        assert_eq!(heap.cache_info(id).unwrap().active_objs, 40 - 16);
    }

    #[test]
    fn a_double_free_is_caught_on_top_or_at_the_flush() {
        let arena = Arena::new(Pfn(1 << 20), 64);
        let mut buddy = buddy_on(&arena);
        let mut heap = SlabHeap::new();
        let mut cache = ObjectCache::new();
        let l = Layout::from_size_align(32, 8).unwrap();
        let a = heap.alloc(l, &mut buddy, &arena).unwrap();
        let b = heap.alloc(l, &mut buddy, &arena).unwrap();
        free(&mut cache, a, l, &mut heap, &mut buddy, &arena).unwrap();
        let e = free(&mut cache, a, l, &mut heap, &mut buddy, &arena).unwrap_err();
        assert!(matches!(e, SlabError::DoubleFree { .. }));
        free(&mut cache, b, l, &mut heap, &mut buddy, &arena).unwrap();
        // Not on top: a release build keeps it and the flush finds it; a
        // debug build knows at once (the object's state says "cached").
        let r = free(&mut cache, a, l, &mut heap, &mut buddy, &arena);
        if DEBUG {
            let e = r.unwrap_err();
            assert!(matches!(e, SlabError::DoubleFree { .. }), "{e}");
            assert!(e.to_string().contains("magazine"), "{e}");
            assert_eq!(cache.drain(&mut heap, &mut buddy, &arena), Ok(2));
        } else {
            r.unwrap();
            let e = cache.drain(&mut heap, &mut buddy, &arena).unwrap_err();
            assert!(matches!(e, SlabError::DoubleFree { .. }), "{e}");
        }
        assert_eq!(cache.cached(), 0);
    }

    #[test]
    fn large_layouts_pass_through() {
        let arena = Arena::new(Pfn(1 << 20), 64);
        let mut buddy = buddy_on(&arena);
        let mut heap = SlabHeap::new();
        let mut cache = ObjectCache::new();
        let l = Layout::from_size_align(20_000, 8).unwrap();
        let p = cache.alloc(l, &mut heap, &mut buddy, &arena).unwrap();
        assert_eq!(heap.large_stats().0, 1);
        free(&mut cache, p, l, &mut heap, &mut buddy, &arena).unwrap();
        assert_eq!(heap.large_stats().0, 0);
        assert_eq!(cache.cached(), 0);
    }

    /// The debug checks at the magazine's doors (`slab-debug` only).
    mod debug {
        use super::*;
        use crate::slab::{POISON_FREE, RED_ZONE};

        fn poke(p: NonNull<u8>, offset: usize, byte: u8) {
            // SAFETY: the tests poke inside a slot of a live slab they own.
            unsafe { p.as_ptr().add(offset).write(byte) }
        }

        fn peek(p: NonNull<u8>, offset: usize) -> u8 {
            // SAFETY: as `poke`.
            unsafe { p.as_ptr().add(offset).read() }
        }

        struct Setup {
            arena: Arena,
            buddy: BuddyAllocator<'static>,
            heap: SlabHeap,
            cache: ObjectCache,
        }

        fn setup() -> Option<Setup> {
            if !DEBUG {
                return None;
            }
            let arena = Arena::new(Pfn(1 << 20), 256);
            let buddy = buddy_on(&arena);
            Some(Setup {
                arena,
                buddy,
                heap: SlabHeap::new(),
                cache: ObjectCache::new(),
            })
        }

        impl Setup {
            fn alloc(&mut self, l: Layout) -> Result<NonNull<u8>, SlabError> {
                self.cache
                    .alloc(l, &mut self.heap, &mut self.buddy, &self.arena)
            }
            fn free(&mut self, p: NonNull<u8>, l: Layout) -> Result<(), SlabError> {
                free(
                    &mut self.cache,
                    p,
                    l,
                    &mut self.heap,
                    &mut self.buddy,
                    &self.arena,
                )
            }
            fn drain(&mut self) -> Result<u64, SlabError> {
                self.cache
                    .drain(&mut self.heap, &mut self.buddy, &self.arena)
            }
            fn active(&self, l: Layout) -> u64 {
                let id = self.heap.kmalloc_cache_for(l).unwrap();
                self.heap.cache_info(id).unwrap().active_objs
            }
        }

        #[test]
        fn debug_builds_keep_objects_in_magazines() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(40, 8).unwrap();
            let p = s.alloc(l).unwrap();
            assert_eq!(s.cache.cached(), 16, "a refill in debug builds too");
            s.free(p, l).unwrap();
            assert_eq!(s.cache.cached(), 17);
            // Poisoned while cached, whole object.
            for i in 0..64 {
                assert_eq!(peek(p, i), POISON_FREE, "byte {i}");
            }
            // Handed out again: the red zone is armed from the new size.
            let small = Layout::from_size_align(36, 8).unwrap();
            assert_eq!(s.alloc(small).unwrap(), p);
            for i in 36..64 {
                assert_eq!(peek(p, i), RED_ZONE, "byte {i}");
            }
            for i in 0..36 {
                poke(p, i, 0x11);
            }
            s.free(p, small).unwrap();
            assert_eq!(s.drain(), Ok(17));
            assert_eq!(s.active(l), 0);
            s.heap.check_invariants(&s.buddy).unwrap();
            s.heap.shrink(&mut s.buddy);
            assert_eq!(s.buddy.free_pages(), 256);
        }

        #[test]
        fn write_after_free_into_a_cached_object_is_caught_on_alloc() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(64, 8).unwrap();
            let p = s.alloc(l).unwrap();
            s.free(p, l).unwrap();
            poke(p, 10, 0);
            let e = s.alloc(l).unwrap_err();
            assert!(
                matches!(e, SlabError::UseAfterFree { offset: 10, found: 0, addr, .. } if addr == p.as_ptr() as usize),
                "{e}"
            );
        }

        #[test]
        fn write_after_free_is_caught_when_the_magazine_flushes() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(128, 8).unwrap();
            let p = s.alloc(l).unwrap();
            s.free(p, l).unwrap();
            poke(p, 127, 1);
            // The drain gives the oldest first; the poked one is on top.
            let e = s.drain().unwrap_err();
            assert!(
                matches!(
                    e,
                    SlabError::UseAfterFree {
                        offset: 127,
                        found: 1,
                        ..
                    }
                ),
                "{e}"
            );
            assert_eq!(s.cache.cached(), 0);
        }

        #[test]
        fn red_zone_overrun_is_caught_going_into_the_magazine() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(50, 8).unwrap();
            let p = s.alloc(l).unwrap();
            poke(p, 50, 0);
            let before = s.cache.cached();
            let e = s.free(p, l).unwrap_err();
            assert!(
                matches!(
                    e,
                    SlabError::RedZone {
                        offset: 50,
                        found: 0,
                        ..
                    }
                ),
                "{e}"
            );
            assert_eq!(s.cache.cached(), before, "not kept");
            // Past the object, in the fixed red zone (kmalloc-64).
            let q = s.alloc(l).unwrap();
            poke(q, 64 + 3, 0x42);
            let e = s.free(q, l).unwrap_err();
            assert!(
                matches!(
                    e,
                    SlabError::RedZone {
                        offset: 67,
                        found: 0x42,
                        ..
                    }
                ),
                "{e}"
            );
        }

        #[test]
        fn red_zone_written_while_cached_is_caught() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(32, 8).unwrap();
            let p = s.alloc(l).unwrap();
            s.free(p, l).unwrap();
            poke(p, 33, 7);
            let e = s.alloc(l).unwrap_err();
            assert!(matches!(e, SlabError::RedZone { offset: 33, .. }), "{e}");
        }

        #[test]
        fn double_frees_are_caught_at_once_wherever_the_object_is() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(16, 8).unwrap();
            let a = s.alloc(l).unwrap();
            let b = s.alloc(l).unwrap();
            s.free(a, l).unwrap();
            s.free(b, l).unwrap();
            // In this magazine, not on top.
            let e = s.free(a, l).unwrap_err();
            assert!(matches!(e, SlabError::DoubleFree { .. }), "{e}");
            // In another CPU's magazine.
            let mut other = ObjectCache::new();
            let e = free(&mut other, b, l, &mut s.heap, &mut s.buddy, &s.arena).unwrap_err();
            assert!(matches!(e, SlabError::DoubleFree { .. }), "{e}");
            assert_eq!(other.cached(), 0);
            // Back in the slab after a drain: the slab's state says free.
            let n = s.cache.cached();
            assert_eq!(s.drain(), Ok(n));
            let e = s.free(a, l).unwrap_err();
            assert!(matches!(e, SlabError::DoubleFree { .. }), "{e}");
            assert_eq!(s.active(l), 0);
            s.heap.check_invariants(&s.buddy).unwrap();
        }

        #[test]
        fn an_object_freed_on_another_cpu_is_checked_there() {
            let Some(mut s) = setup() else { return };
            let l = Layout::from_size_align(200, 8).unwrap();
            let p = s.alloc(l).unwrap();
            for i in 0..200 {
                poke(p, i, i as u8);
            }
            let mut other = ObjectCache::new();
            free(&mut other, p, l, &mut s.heap, &mut s.buddy, &s.arena).unwrap();
            assert_eq!(other.cached(), 1);
            assert_eq!(peek(p, 0), POISON_FREE);
            let q = other.alloc(l, &mut s.heap, &mut s.buddy, &s.arena).unwrap();
            assert_eq!(q, p);
            free(&mut other, q, l, &mut s.heap, &mut s.buddy, &s.arena).unwrap();
            assert_eq!(other.drain(&mut s.heap, &mut s.buddy, &s.arena), Ok(1));
            let n = s.cache.cached();
            assert_eq!(s.drain(), Ok(n));
            assert_eq!(s.active(l), 0);
        }
    }

    #[test]
    fn page_list_batches_and_balances() {
        let arena = Arena::new(Pfn(1 << 20), 256);
        let mut buddy = buddy_on(&arena);
        let mut list = PageList::new(FrameKind::PageTable, PCP_POLICY);
        let p = list.refill(&mut buddy, 0).unwrap();
        assert_eq!(list.len(), 15);
        assert_eq!(buddy.free_pages(), 256 - 16);
        assert_eq!(buddy.kind(p), FrameKind::PageTable);
        assert_eq!(list.push(p), Ok(true));
        assert_eq!(list.push(p), Err(PcpError::DoubleFree { pfn: p }));
        // Fill to high, then one more flushes a batch.
        let extra: Vec<_> = (0..33)
            .map(|_| buddy.alloc_as(0, FrameKind::PageTable).unwrap())
            .collect();
        for &f in &extra[..32] {
            list.free(f, &mut buddy).unwrap();
        }
        assert_eq!(list.len(), 48);
        list.free(extra[32], &mut buddy).unwrap();
        assert_eq!(list.len(), 33);
        assert_eq!(list.drain(&mut buddy), Ok(33));
        assert_eq!(buddy.free_pages(), 256);
    }

    #[test]
    fn refill_leaves_the_floor_alone() {
        let arena = Arena::new(Pfn(1 << 20), 64);
        let mut buddy = buddy_on(&arena);
        let mut list = PageList::new(FrameKind::Kernel, PCP_POLICY);
        assert!(list.refill(&mut buddy, 60).is_some());
        assert_eq!(buddy.free_pages(), 60);
        assert!(list.refill(&mut buddy, 64).is_some(), "what it holds");
        let mut n = 0;
        while list.pop().is_some() {
            n += 1;
        }
        assert_eq!(n, 2);
        assert!(list.refill(&mut buddy, 60).is_none());
    }
}
