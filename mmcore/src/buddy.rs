//! Binary buddy frame allocator.
//!
//! Free blocks of 2^k frames live on per-order lists threaded through the
//! [`PageMeta`] array, so allocating, splitting, freeing and merging touch
//! only metadata, never frame contents. Blocks are naturally aligned in PFN
//! space (a block of order k starts at a multiple of 2^k), which makes a
//! block's buddy `pfn ^ (1 << k)`, as in Linux's `mm/page_alloc.c`.
//!
//! Every `free` is validated against the metadata first: double frees, frees
//! of frames never handed out, of tail frames and with the wrong order are
//! reported as [`FreeError`] and leave the allocator untouched.

use core::fmt;

use crate::frame::{flags, FrameKind, PageMeta, Pfn, PhysMem, MAX_ORDER, NO_CACHE, NR_ORDERS};
use crate::list::MetaList;

/// Why a `free` (or an operation on an allocated block) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// `order` is larger than [`MAX_ORDER`].
    BadOrder {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
    },
    /// The frame is not covered by the metadata array.
    OutOfRange {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
    },
    /// The frame was never given to the allocator (reserved memory).
    NotManaged {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
    },
    /// The frame is already free (a block head on a free list, or inside one).
    DoubleFree {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
        /// Head of the free block containing the frame.
        free_head: Pfn,
        /// Order of that free block.
        free_order: usize,
    },
    /// The frame lies inside an allocated block but is not its first frame.
    TailFrame {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
        /// Head of the allocated block containing the frame.
        head: Pfn,
        /// Order of that block.
        head_order: usize,
    },
    /// The block was allocated with a different order.
    WrongOrder {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
        /// Order the block was allocated with.
        allocated_order: usize,
    },
    /// The block is in use as a slab; only the slab heap may free it.
    SlabOwned {
        /// Frame passed in.
        pfn: Pfn,
        /// Order passed in.
        order: usize,
    },
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FreeError::BadOrder { pfn, order } => {
                write!(f, "buddy: free of pfn {pfn} with order {order} > MAX_ORDER {MAX_ORDER}")
            }
            FreeError::OutOfRange { pfn, order } => write!(
                f,
                "buddy: free of pfn {pfn} (order {order}) outside the frames the allocator describes"
            ),
            FreeError::NotManaged { pfn, order } => write!(
                f,
                "buddy: free of pfn {pfn} (order {order}): frame was never handed out (reserved)"
            ),
            FreeError::DoubleFree { pfn, order, free_head, free_order } => write!(
                f,
                "buddy: double free of pfn {pfn} (order {order}): already free in block {free_head} of order {free_order}"
            ),
            FreeError::TailFrame { pfn, order, head, head_order } => write!(
                f,
                "buddy: free of pfn {pfn} (order {order}): it is a tail frame of the block at {head} of order {head_order}"
            ),
            FreeError::WrongOrder { pfn, order, allocated_order } => write!(
                f,
                "buddy: free of pfn {pfn} with order {order}, but it was allocated with order {allocated_order}"
            ),
            FreeError::SlabOwned { pfn, order } => write!(
                f,
                "buddy: free of pfn {pfn} (order {order}): block is owned by the slab heap"
            ),
        }
    }
}

/// Allocator statistics (see [`BuddyAllocator::stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BuddyStats {
    /// Frames described by the metadata array.
    pub spanned_pages: u64,
    /// Frames handed to the allocator via `add_free_range`.
    pub managed_pages: u64,
    /// Frames currently on free lists.
    pub free_pages: u64,
    /// Free blocks per order, like Linux's `/proc/buddyinfo`.
    pub free_blocks: [u64; NR_ORDERS],
    /// Pages handed out by `alloc` (Linux `pgalloc`).
    pub pgalloc: u64,
    /// Pages returned by `free` (Linux `pgfree`).
    pub pgfree: u64,
    /// `alloc` calls that failed for lack of a large enough block.
    pub alloc_failures: u64,
    /// Pages per [`FrameKind`] (indexed by discriminant): allocated blocks by
    /// their owner, `Free` = free pages, `Reserved` = unmanaged frames.
    pub pages_by_kind: [u64; FrameKind::COUNT],
}

/// State of one block in [`BuddyAllocator::blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockState {
    /// A single frame never given to the allocator.
    Reserved,
    /// A free block.
    Free,
    /// An allocated block with its owner.
    Allocated(FrameKind),
}

/// One block of the memory picture: `2^order` frames from `pfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// First frame.
    pub pfn: Pfn,
    /// Block order (0 for reserved frames).
    pub order: usize,
    /// What the block is.
    pub state: BlockState,
}

/// The buddy allocator over a caller-provided metadata array.
///
/// The array describes frames `[base_pfn, base_pfn + meta.len())`; only frames
/// later passed to [`add_free_range`](Self::add_free_range) are ever handed out.
pub struct BuddyAllocator<'m> {
    meta: &'m mut [PageMeta],
    base: u64,
    free: [MetaList; NR_ORDERS],
    managed_pages: u64,
    free_pages: u64,
    pgalloc: u64,
    pgfree: u64,
    alloc_failures: u64,
    /// Allocated pages per kind (Free and Reserved slots unused here).
    alloc_pages_by_kind: [u64; FrameKind::COUNT],
}

impl<'m> BuddyAllocator<'m> {
    /// Creates an allocator describing `[base_pfn, base_pfn + meta.len())`,
    /// all frames Reserved. The metadata is reset.
    pub fn new(meta: &'m mut [PageMeta], base_pfn: Pfn) -> Self {
        assert!(
            (meta.len() as u64) < u64::from(u32::MAX),
            "metadata array too large for 32-bit links"
        );
        meta.fill(PageMeta::RESERVED);
        BuddyAllocator {
            meta,
            base: base_pfn.0,
            free: [MetaList::new(); NR_ORDERS],
            managed_pages: 0,
            free_pages: 0,
            pgalloc: 0,
            pgfree: 0,
            alloc_failures: 0,
            alloc_pages_by_kind: [0; FrameKind::COUNT],
        }
    }

    /// First frame described by the metadata.
    pub fn base_pfn(&self) -> Pfn {
        Pfn(self.base)
    }

    /// One past the last frame described by the metadata.
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.base + self.meta.len() as u64)
    }

    #[inline]
    pub(crate) fn index_of(&self, pfn: Pfn) -> Option<u32> {
        let i = pfn.0.wrapping_sub(self.base);
        (i < self.meta.len() as u64).then_some(i as u32)
    }

    #[inline]
    pub(crate) fn pfn_of(&self, idx: u32) -> Pfn {
        Pfn(self.base + u64::from(idx))
    }

    #[inline]
    pub(crate) fn meta_at(&self, idx: u32) -> &PageMeta {
        &self.meta[idx as usize]
    }

    /// The whole metadata array, read-only.
    #[inline]
    pub(crate) fn meta_all(&self) -> &[PageMeta] {
        self.meta
    }

    /// The whole metadata array, for the slab heap's list operations.
    #[inline]
    pub(crate) fn meta_slice_mut(&mut self) -> &mut [PageMeta] {
        self.meta
    }

    /// Metadata of `pfn`, if described.
    #[inline]
    pub fn meta(&self, pfn: Pfn) -> Option<&PageMeta> {
        self.index_of(pfn).map(|i| &self.meta[i as usize])
    }

    /// Hands `[start, end)` to the allocator as maximal naturally aligned
    /// blocks, merging with adjacent free blocks. Frames outside the metadata
    /// or already managed are skipped. Returns the number of frames added.
    /// Linear in the number of frames.
    pub fn add_free_range(&mut self, start: Pfn, end: Pfn) -> u64 {
        let lo = start.0.max(self.base);
        let hi = end.0.min(self.base + self.meta.len() as u64);
        let mut added = 0;
        let mut p = lo;
        while p < hi {
            if self.meta[(p - self.base) as usize].is_managed() {
                p += 1;
                continue;
            }
            let run_start = p;
            while p < hi && !self.meta[(p - self.base) as usize].is_managed() {
                self.meta[(p - self.base) as usize] = PageMeta::MANAGED_FREE;
                p += 1;
            }
            added += p - run_start;
            self.managed_pages += p - run_start;
            self.free_pages += p - run_start;
            // Split [run_start, p) greedily into the largest aligned blocks.
            let mut q = run_start;
            while q < p {
                let mut order = (q.trailing_zeros() as usize).min(MAX_ORDER);
                while q + (1u64 << order) > p {
                    order -= 1;
                }
                self.insert_and_merge((q - self.base) as u32, order);
                q += 1u64 << order;
            }
        }
        added
    }

    /// Puts the free block at `idx` of `order` on the free lists, merging it
    /// with its buddy as long as the buddy is a free block of the same order.
    fn insert_and_merge(&mut self, mut idx: u32, mut order: usize) {
        while order < MAX_ORDER {
            let pfn = self.base + u64::from(idx);
            let Some(buddy) = self.index_of(Pfn(pfn ^ (1u64 << order))) else {
                break;
            };
            let b = &self.meta[buddy as usize];
            if b.flags & flags::FREE_HEAD == 0 || b.order as usize != order {
                break;
            }
            self.free[order].remove(self.meta, buddy);
            self.meta[buddy as usize].flags &= !flags::FREE_HEAD;
            idx = idx.min(buddy);
            order += 1;
        }
        let m = &mut self.meta[idx as usize];
        m.flags |= flags::FREE_HEAD;
        m.order = order as u8;
        m.kind = FrameKind::Free as u8;
        self.free[order].push_front(self.meta, idx);
    }

    /// Allocates a block of `2^order` frames, naturally aligned in PFN space.
    /// The block's kind is [`FrameKind::Kernel`] and its refcount 1.
    pub fn alloc(&mut self, order: usize) -> Option<Pfn> {
        self.alloc_as(order, FrameKind::Kernel)
    }

    /// Like [`alloc`](Self::alloc), with the block labelled as owned by
    /// `kind` from the start (one step instead of `alloc` + `set_kind`).
    ///
    /// # Panics
    /// If `kind` is `Free` or `Reserved`, which no allocated block can be.
    pub fn alloc_as(&mut self, order: usize, kind: FrameKind) -> Option<Pfn> {
        assert!(
            !matches!(kind, FrameKind::Free | FrameKind::Reserved),
            "alloc_as: an allocated block cannot be marked {kind:?}"
        );
        if order > MAX_ORDER {
            self.alloc_failures += 1;
            return None;
        }
        let Some(mut k) = (order..NR_ORDERS).find(|&k| !self.free[k].is_empty()) else {
            self.alloc_failures += 1;
            return None;
        };
        let idx = self.free[k].pop_front(self.meta)?;
        self.meta[idx as usize].flags &= !flags::FREE_HEAD;
        // Split: keep the lower half, put upper halves on the lower lists.
        while k > order {
            k -= 1;
            let upper = idx + (1u32 << k);
            let m = &mut self.meta[upper as usize];
            m.flags |= flags::FREE_HEAD;
            m.order = k as u8;
            m.kind = FrameKind::Free as u8;
            self.free[k].push_front(self.meta, upper);
        }
        let m = &mut self.meta[idx as usize];
        m.flags |= flags::ALLOC_HEAD;
        m.order = order as u8;
        m.kind = kind as u8;
        m.count = 1;
        m.cache = NO_CACHE;
        let pages = 1u64 << order;
        self.free_pages -= pages;
        self.pgalloc += pages;
        self.alloc_pages_by_kind[kind as usize] += pages;
        Some(Pfn(self.base + u64::from(idx)))
    }

    /// Like [`alloc_as`](Self::alloc_as), then zeroes the block through
    /// `mem`.
    pub fn alloc_zeroed<M: PhysMem + ?Sized>(
        &mut self,
        order: usize,
        kind: FrameKind,
        mem: &M,
    ) -> Option<Pfn> {
        let pfn = self.alloc_as(order, kind)?;
        let ptr = mem.frame_ptr(pfn);
        // SAFETY: the block [pfn, pfn + 2^order) was just allocated, so nobody
        // else uses it, and PhysMem guarantees its frames are mapped
        // contiguously and writable from `ptr`.
        unsafe { ptr.write_bytes(0, crate::frame::PAGE_SIZE << order) };
        Some(pfn)
    }

    /// Finds the free or allocated block containing the non-head frame `pfn`.
    /// Returns (head index, head meta). Only used on error paths.
    fn enclosing_block(&self, pfn: u64) -> Option<(u32, PageMeta)> {
        for k in 1..=MAX_ORDER {
            let head = pfn & !((1u64 << k) - 1);
            if let Some(h) = self.index_of(Pfn(head)) {
                let m = self.meta[h as usize];
                let is_head = m.flags & (flags::FREE_HEAD | flags::ALLOC_HEAD) != 0;
                if is_head && m.order as usize >= k {
                    return Some((h, m));
                }
            }
        }
        None
    }

    /// Checks that `pfn` heads an allocated block of exactly `order`.
    fn check_allocated(&self, pfn: Pfn, order: usize) -> Result<u32, FreeError> {
        if order > MAX_ORDER {
            return Err(FreeError::BadOrder { pfn, order });
        }
        let idx = self
            .index_of(pfn)
            .ok_or(FreeError::OutOfRange { pfn, order })?;
        let m = &self.meta[idx as usize];
        if m.flags & flags::ALLOC_HEAD != 0 {
            if m.order as usize != order {
                return Err(FreeError::WrongOrder {
                    pfn,
                    order,
                    allocated_order: m.order as usize,
                });
            }
            return Ok(idx);
        }
        if m.flags & flags::MANAGED == 0 {
            return Err(FreeError::NotManaged { pfn, order });
        }
        if m.flags & flags::FREE_HEAD != 0 {
            let free_order = m.order as usize;
            return Err(FreeError::DoubleFree {
                pfn,
                order,
                free_head: pfn,
                free_order,
            });
        }
        match self.enclosing_block(pfn.0) {
            Some((h, hm)) if hm.flags & flags::FREE_HEAD != 0 => Err(FreeError::DoubleFree {
                pfn,
                order,
                free_head: self.pfn_of(h),
                free_order: hm.order as usize,
            }),
            Some((h, hm)) => Err(FreeError::TailFrame {
                pfn,
                order,
                head: self.pfn_of(h),
                head_order: hm.order as usize,
            }),
            // A managed frame is always in some block; be defensive anyway.
            None => Err(FreeError::NotManaged { pfn, order }),
        }
    }

    /// Frees the block of `2^order` frames at `pfn`, merging with free buddies.
    /// Invalid frees are rejected without changing anything.
    pub fn free(&mut self, pfn: Pfn, order: usize) -> Result<(), FreeError> {
        let idx = self.check_allocated(pfn, order)?;
        if self.meta[idx as usize].flags & flags::SLAB != 0 {
            return Err(FreeError::SlabOwned { pfn, order });
        }
        self.release(idx, order);
        Ok(())
    }

    /// Frees a validated allocated block.
    fn release(&mut self, idx: u32, order: usize) {
        let m = &mut self.meta[idx as usize];
        let pages = 1u64 << order;
        self.alloc_pages_by_kind[m.kind as usize] -= pages;
        m.flags &= !flags::ALLOC_HEAD;
        m.kind = FrameKind::Free as u8;
        m.count = 0;
        m.cache = NO_CACHE;
        self.free_pages += pages;
        self.pgfree += pages;
        self.insert_and_merge(idx, order);
    }

    /// Frees a slab's block; the slab heap has already cleared its slab state.
    pub(crate) fn free_slab_block(&mut self, idx: u32, order: usize) {
        debug_assert!(self.meta[idx as usize].flags & flags::ALLOC_HEAD != 0);
        debug_assert_eq!(self.meta[idx as usize].order as usize, order);
        self.release(idx, order);
    }

    /// Records the owner of the allocated block headed by `pfn`; fails (with
    /// the same diagnosis `free` would give) if `pfn` heads no allocated block.
    ///
    /// # Panics
    /// If `kind` is `Free` or `Reserved`, which no allocated block can be.
    pub fn set_kind(&mut self, pfn: Pfn, kind: FrameKind) -> Result<(), FreeError> {
        let idx = self.head_index(pfn)?;
        assert!(
            !matches!(kind, FrameKind::Free | FrameKind::Reserved),
            "set_kind: an allocated block cannot be marked {kind:?}"
        );
        let m = &mut self.meta[idx as usize];
        let pages = 1u64 << m.order;
        self.alloc_pages_by_kind[m.kind as usize] -= pages;
        self.alloc_pages_by_kind[kind as usize] += pages;
        m.kind = kind as u8;
        Ok(())
    }

    /// Owner of the block containing `pfn` (tail frames report their block's
    /// kind; unmanaged frames are Reserved).
    pub fn kind(&self, pfn: Pfn) -> FrameKind {
        let Some(idx) = self.index_of(pfn) else {
            return FrameKind::Reserved;
        };
        let m = &self.meta[idx as usize];
        if m.flags & (flags::FREE_HEAD | flags::ALLOC_HEAD) != 0 || m.flags & flags::MANAGED == 0 {
            return m.kind();
        }
        match self.enclosing_block(pfn.0) {
            Some((_, hm)) => hm.kind(),
            None => FrameKind::Reserved,
        }
    }

    fn head_index(&self, pfn: Pfn) -> Result<u32, FreeError> {
        let idx = self
            .index_of(pfn)
            .ok_or(FreeError::OutOfRange { pfn, order: 0 })?;
        let order = self.meta[idx as usize].order as usize;
        if self.meta[idx as usize].flags & flags::ALLOC_HEAD != 0 {
            Ok(idx)
        } else {
            // Reuse free()'s diagnosis of what the frame is instead.
            Err(self
                .check_allocated(pfn, order)
                .err()
                .unwrap_or(FreeError::NotManaged { pfn, order }))
        }
    }

    /// Reference count of the allocated block headed by `pfn` (0 otherwise).
    #[inline]
    pub fn refcount(&self, pfn: Pfn) -> u16 {
        self.meta(pfn).map_or(0, PageMeta::refcount)
    }

    /// Increments the refcount of the allocated block headed by `pfn`.
    #[inline]
    pub fn ref_inc(&mut self, pfn: Pfn) -> Option<u16> {
        let idx = self.index_of(pfn)?;
        self.meta[idx as usize].ref_inc()
    }

    /// Decrements the refcount of the allocated block headed by `pfn` and
    /// returns the new count; the caller frees the block when it reaches 0.
    #[inline]
    pub fn ref_dec(&mut self, pfn: Pfn) -> Option<u16> {
        let idx = self.index_of(pfn)?;
        self.meta[idx as usize].ref_dec()
    }

    /// Free blocks per order (`/proc/buddyinfo`).
    pub fn buddyinfo(&self) -> [u64; NR_ORDERS] {
        core::array::from_fn(|k| u64::from(self.free[k].len()))
    }

    /// Frames currently free.
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Frames handed to the allocator.
    pub fn managed_pages(&self) -> u64 {
        self.managed_pages
    }

    /// A snapshot of all counters.
    pub fn stats(&self) -> BuddyStats {
        let mut pages_by_kind = self.alloc_pages_by_kind;
        pages_by_kind[FrameKind::Free as usize] = self.free_pages;
        pages_by_kind[FrameKind::Reserved as usize] = self.meta.len() as u64 - self.managed_pages;
        BuddyStats {
            spanned_pages: self.meta.len() as u64,
            managed_pages: self.managed_pages,
            free_pages: self.free_pages,
            free_blocks: self.buddyinfo(),
            pgalloc: self.pgalloc,
            pgfree: self.pgfree,
            alloc_failures: self.alloc_failures,
            pages_by_kind,
        }
    }

    /// Iterates over the blocks of order `order` on the free list (list order).
    pub fn free_blocks(&self, order: usize) -> impl Iterator<Item = Pfn> + '_ {
        let mut cur = self.free[order].first().unwrap_or(crate::frame::NIL);
        core::iter::from_fn(move || {
            if cur == crate::frame::NIL {
                return None;
            }
            let pfn = self.pfn_of(cur);
            cur = self.meta[cur as usize].next;
            Some(pfn)
        })
    }

    /// Walks the metadata array block by block: the kernel's memory picture.
    pub fn blocks(&self) -> impl Iterator<Item = BlockInfo> + '_ {
        let mut i = 0usize;
        core::iter::from_fn(move || {
            while i < self.meta.len() {
                let m = &self.meta[i];
                let pfn = Pfn(self.base + i as u64);
                if m.flags & flags::MANAGED == 0 {
                    i += 1;
                    return Some(BlockInfo {
                        pfn,
                        order: 0,
                        state: BlockState::Reserved,
                    });
                }
                if m.flags & (flags::FREE_HEAD | flags::ALLOC_HEAD) != 0 {
                    let order = m.order as usize;
                    i += 1 << order;
                    let state = if m.flags & flags::FREE_HEAD != 0 {
                        BlockState::Free
                    } else {
                        BlockState::Allocated(m.kind())
                    };
                    return Some(BlockInfo { pfn, order, state });
                }
                // Unreachable while invariants hold: tails are skipped above.
                i += 1;
            }
            None
        })
    }

    /// Checks every structural invariant: list links, head flags and orders,
    /// alignment, no overlapping blocks, no unmerged buddy pairs, and that
    /// the counters agree with the lists. Linear in the number of frames.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut listed_pages = 0u64;
        let mut listed_blocks = 0u64;
        for (order, list) in self.free.iter().enumerate() {
            list.check(self.meta, |idx| {
                let m = &self.meta[idx as usize];
                if m.flags & flags::FREE_HEAD == 0 || m.flags & flags::ALLOC_HEAD != 0 {
                    return Err("free list entry is not marked as a free head");
                }
                if m.order as usize != order {
                    return Err("free list entry has the wrong order");
                }
                if !self.pfn_of(idx).is_aligned(order) {
                    return Err("free block is not naturally aligned");
                }
                if idx as usize + (1 << order) > self.meta.len() {
                    return Err("free block runs past the metadata");
                }
                Ok(())
            })?;
            listed_pages += u64::from(list.len()) << order;
            listed_blocks += u64::from(list.len());
        }
        if listed_pages != self.free_pages {
            return Err("free page counter disagrees with the free lists");
        }
        let mut i = 0usize;
        let mut free_heads = 0u64;
        let mut alloc_pages = 0u64;
        let mut managed = 0u64;
        let mut by_kind = [0u64; FrameKind::COUNT];
        while i < self.meta.len() {
            let m = &self.meta[i];
            if m.flags & flags::MANAGED == 0 {
                if m.flags != 0 {
                    return Err("unmanaged frame has flags set");
                }
                i += 1;
                continue;
            }
            let is_free = m.flags & flags::FREE_HEAD != 0;
            let is_alloc = m.flags & flags::ALLOC_HEAD != 0;
            if !is_free && !is_alloc {
                return Err("managed frame outside any block");
            }
            if is_free && is_alloc {
                return Err("frame is both a free and an allocated head");
            }
            let order = m.order as usize;
            let pages = 1usize << order;
            if order > MAX_ORDER || i + pages > self.meta.len() {
                return Err("block order out of range");
            }
            if !self.pfn_of(i as u32).is_aligned(order) {
                return Err("block is not naturally aligned");
            }
            for t in &self.meta[i + 1..i + pages] {
                if t.flags & (flags::FREE_HEAD | flags::ALLOC_HEAD) != 0 {
                    return Err("blocks overlap (head flag inside a block)");
                }
                if t.flags & flags::MANAGED == 0 {
                    return Err("block contains an unmanaged frame");
                }
            }
            if is_free {
                free_heads += 1;
                if m.kind != FrameKind::Free as u8 {
                    return Err("free block not marked Free");
                }
                if order < MAX_ORDER {
                    let buddy = self.pfn_of(i as u32).0 ^ (1u64 << order);
                    if let Some(b) = self.meta(Pfn(buddy)) {
                        if b.flags & flags::FREE_HEAD != 0 && b.order as usize == order {
                            return Err("free buddies of the same order were not merged");
                        }
                    }
                }
            } else {
                alloc_pages += pages as u64;
                by_kind[m.kind as usize] += pages as u64;
            }
            managed += pages as u64;
            i += pages;
        }
        if free_heads != listed_blocks {
            return Err("a free head is missing from the free lists");
        }
        if managed != self.managed_pages {
            return Err("managed page counter disagrees with the metadata");
        }
        if alloc_pages + self.free_pages != self.managed_pages {
            return Err("allocated + free pages != managed pages");
        }
        if by_kind != self.alloc_pages_by_kind {
            return Err("per-kind page counters disagree with the metadata");
        }
        if self.pgalloc.wrapping_sub(self.pgfree) != alloc_pages {
            return Err("pgalloc - pgfree != allocated pages");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::host::Arena;
    use crate::frame::PAGE_SIZE;
    use std::format;
    use std::string::ToString;
    use std::vec;
    use std::vec::Vec;

    fn meta(n: usize) -> Vec<PageMeta> {
        vec![PageMeta::RESERVED; n]
    }

    #[test]
    fn starts_reserved_and_empty() {
        let mut m = meta(64);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        assert_eq!(b.alloc(0), None);
        assert_eq!(b.stats().alloc_failures, 1);
        assert_eq!(b.stats().pages_by_kind[FrameKind::Reserved as usize], 64);
        assert_eq!(b.kind(Pfn(3)), FrameKind::Reserved);
        b.check_invariants().unwrap();
    }

    #[test]
    fn add_range_builds_maximal_aligned_blocks() {
        let mut m = meta(4096);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        // [3, 2051): 3 | 4..8 | 8..16 | ... | 1024..2048 | 2048..2050 | 2050
        assert_eq!(b.add_free_range(Pfn(3), Pfn(2051)), 2048);
        b.check_invariants().unwrap();
        let info = b.buddyinfo();
        assert_eq!(info, [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(b.free_blocks(0).collect::<Vec<_>>(), [Pfn(2050), Pfn(3)]);
        assert_eq!(b.free_pages(), 2048);
        // Adding an overlapping range only adds the new frames and merges.
        assert_eq!(b.add_free_range(Pfn(0), Pfn(4096)), 2048);
        assert_eq!(b.buddyinfo(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
        b.check_invariants().unwrap();
    }

    #[test]
    fn add_range_is_clipped_to_metadata_and_works_above_4g() {
        let base = Pfn(0x140_0003); // above 4 GiB, unaligned
        let mut m = meta(100);
        let mut b = BuddyAllocator::new(&mut m, base);
        assert_eq!(b.add_free_range(Pfn(0), Pfn(u64::MAX / 2)), 100);
        b.check_invariants().unwrap();
        let mut got = Vec::new();
        while let Some(p) = b.alloc(0) {
            assert!(p >= base && p < base + 100);
            got.push(p);
        }
        assert_eq!(got.len(), 100);
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 100);
        for p in got {
            b.free(p, 0).unwrap();
        }
        b.check_invariants().unwrap();
        assert_eq!(b.free_pages(), 100);
    }

    #[test]
    fn split_and_merge() {
        let mut m = meta(1024);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(1024));
        let a = b.alloc(0).unwrap();
        assert_eq!(a, Pfn(0));
        assert_eq!(b.buddyinfo(), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        let c = b.alloc(3).unwrap();
        assert!(c.is_aligned(3));
        b.check_invariants().unwrap();
        b.free(a, 0).unwrap();
        b.free(c, 3).unwrap();
        assert_eq!(b.buddyinfo(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let s = b.stats();
        assert_eq!((s.pgalloc, s.pgfree), (9, 9));
        b.check_invariants().unwrap();
    }

    #[test]
    fn never_hands_out_reserved_frames() {
        let mut m = meta(64);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(10));
        b.add_free_range(Pfn(20), Pfn(33));
        let mut n = 0;
        while let Some(p) = b.alloc(0) {
            assert!((0..10).contains(&p.0) || (20..33).contains(&p.0), "{p:?}");
            n += 1;
        }
        assert_eq!(n, 23);
        assert_eq!(b.alloc(0), None);
    }

    #[test]
    fn bad_frees_are_rejected_without_change() {
        let mut m = meta(64);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(32));
        let blk = b.alloc(2).unwrap();
        let before_info = b.buddyinfo();
        let before_stats = b.stats();

        let e = b.free(blk + 1, 0).unwrap_err();
        assert_eq!(
            e,
            FreeError::TailFrame {
                pfn: blk + 1,
                order: 0,
                head: blk,
                head_order: 2
            }
        );
        let e = b.free(blk, 1).unwrap_err();
        assert_eq!(
            e,
            FreeError::WrongOrder {
                pfn: blk,
                order: 1,
                allocated_order: 2
            }
        );
        assert!(matches!(
            b.free(Pfn(40), 0),
            Err(FreeError::NotManaged { .. })
        ));
        assert!(matches!(
            b.free(Pfn(64), 0),
            Err(FreeError::OutOfRange { .. })
        ));
        assert!(matches!(b.free(blk, 11), Err(FreeError::BadOrder { .. })));
        // A frame inside a free block.
        let free_inner = if blk.0 < 16 { Pfn(17) } else { Pfn(1) };
        assert!(matches!(
            b.free(free_inner, 0),
            Err(FreeError::DoubleFree { .. })
        ));
        assert_eq!(b.buddyinfo(), before_info);
        assert_eq!(b.stats(), before_stats);

        b.free(blk, 2).unwrap();
        let e = b.free(blk, 2).unwrap_err();
        assert!(matches!(e, FreeError::DoubleFree { pfn, free_order: 5, .. } if pfn == blk));
        let msg = e.to_string();
        assert!(
            msg.contains("double free") && msg.contains(&format!("{blk}")),
            "{msg}"
        );
        b.check_invariants().unwrap();
        assert_eq!(b.buddyinfo(), [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn error_messages_name_pfn_and_order() {
        let e = FreeError::WrongOrder {
            pfn: Pfn(0x42),
            order: 1,
            allocated_order: 3,
        };
        assert_eq!(
            e.to_string(),
            "buddy: free of pfn 0x42 with order 1, but it was allocated with order 3"
        );
        let e = FreeError::TailFrame {
            pfn: Pfn(0x43),
            order: 0,
            head: Pfn(0x40),
            head_order: 2,
        };
        assert!(e
            .to_string()
            .contains("tail frame of the block at 0x40 of order 2"));
    }

    #[test]
    fn kinds_and_refcounts() {
        let mut m = meta(64);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(64));
        let p = b.alloc(1).unwrap();
        assert_eq!(b.kind(p), FrameKind::Kernel);
        b.set_kind(p, FrameKind::UserAnon).unwrap();
        assert_eq!(b.kind(p), FrameKind::UserAnon);
        assert_eq!(b.kind(p + 1), FrameKind::UserAnon);
        assert_eq!(b.stats().pages_by_kind[FrameKind::UserAnon as usize], 2);
        assert!(b.set_kind(p + 1, FrameKind::Kernel).is_err());
        assert_eq!(b.refcount(p), 1);
        assert_eq!(b.ref_inc(p), Some(2));
        assert_eq!(b.ref_dec(p), Some(1));
        assert_eq!(b.ref_dec(p), Some(0));
        b.free(p, 1).unwrap();
        assert_eq!(b.refcount(p), 0);
        assert_eq!(b.ref_inc(p), None);
        assert_eq!(b.kind(p), FrameKind::Free);
        assert_eq!(b.stats().pages_by_kind[FrameKind::UserAnon as usize], 0);
        b.check_invariants().unwrap();
    }

    #[test]
    fn alloc_as_labels_the_block_from_the_start() {
        let mut m = meta(64);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(64));
        let p = b.alloc_as(2, FrameKind::UserAnon).unwrap();
        assert_eq!(b.kind(p + 3), FrameKind::UserAnon);
        let by_kind = b.stats().pages_by_kind;
        assert_eq!(by_kind[FrameKind::UserAnon as usize], 4);
        assert_eq!(by_kind[FrameKind::Kernel as usize], 0);
        assert_eq!(b.refcount(p), 1);
        b.free(p, 2).unwrap();
        assert_eq!(b.stats().pages_by_kind[FrameKind::UserAnon as usize], 0);
        b.check_invariants().unwrap();
    }

    #[test]
    #[should_panic(expected = "cannot be marked Free")]
    fn alloc_as_refuses_the_free_label() {
        let mut m = meta(8);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(0), Pfn(8));
        b.alloc_as(0, FrameKind::Free);
    }

    #[test]
    fn blocks_describe_memory() {
        let mut m = meta(16);
        let mut b = BuddyAllocator::new(&mut m, Pfn(0));
        b.add_free_range(Pfn(2), Pfn(16));
        let p = b.alloc(2).unwrap();
        b.set_kind(p, FrameKind::PageTable).unwrap();
        let blocks: Vec<BlockInfo> = b.blocks().collect();
        let total: u64 = blocks.iter().map(|bl| 1u64 << bl.order).sum();
        assert_eq!(total, 16);
        assert_eq!(blocks[0].state, BlockState::Reserved);
        assert!(blocks
            .iter()
            .any(|bl| bl.pfn == p && bl.state == BlockState::Allocated(FrameKind::PageTable)));
    }

    #[test]
    fn alloc_zeroed_clears_memory() {
        let arena = Arena::new(Pfn(1024), 8);
        let mut m = arena.new_meta();
        let mut b = BuddyAllocator::new(&mut m, arena.base_pfn());
        b.add_free_range(arena.base_pfn(), arena.end_pfn());
        let p = b.alloc(1).unwrap();
        let ptr = arena.frame_ptr(p);
        // SAFETY: the block of 2 frames at p is allocated to this test.
        unsafe { ptr.write_bytes(0xAB, 2 * PAGE_SIZE) };
        b.free(p, 1).unwrap();
        let q = b.alloc_zeroed(1, FrameKind::UserAnon, &arena).unwrap();
        assert_eq!(q, p);
        assert_eq!(b.kind(q), FrameKind::UserAnon);
        let ptr = arena.frame_ptr(q);
        // SAFETY: the block is allocated to this test and 2 frames long.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, 2 * PAGE_SIZE) };
        assert!(bytes.iter().all(|&x| x == 0));
    }

    #[test]
    fn check_invariants_detects_corruption() {
        let mut m = meta(64);
        {
            let mut b = BuddyAllocator::new(&mut m, Pfn(0));
            b.add_free_range(Pfn(0), Pfn(64));
            b.alloc(0).unwrap();
            b.check_invariants().unwrap();
            b.meta[5].flags |= flags::FREE_HEAD; // stray head inside a free block
            assert!(b.check_invariants().is_err());
        }
    }
}
