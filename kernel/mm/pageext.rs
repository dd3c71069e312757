//! Per-frame data beyond the buddy allocator's `PageMeta` (Linux's
//! `page_ext`, and the parts of `struct page` that reclaim uses): the
//! reverse mapping of a page, its swap-cache slot, and its place on the
//! LRU lists. Two arrays over all frames, reserved at boot, guarded by the
//! frames lock with the rest of physical memory, so nothing here
//! allocates.
//!
//! The LRU lists are `reclaimcore`'s [`Lruvec`]: the same code the host
//! tests and the replacement-quality benchmark run, here over one
//! [`LruNode`] per frame (a dense table: a frame's slot is its index).
//! Anonymous pages go on the anon lists, page-cache pages on the file
//! lists; each kind has an active and an inactive list.
//!
//! Reverse mapping of an anonymous page: the *family* of address spaces it
//! was born in (a process and its fork descendants share one) and its
//! virtual page number. Fork keeps addresses, so every leaf that maps the
//! page is at that address in an address space of the family (Linux's
//! `anon_vma` plus `page->index`, for a kernel without mremap of shared
//! pages; a page mremap moved is found where it was, so reclaim leaves it
//! resident rather than lose track of it). A page-cache page records its
//! file and page index instead ([`flags::FILE`]).

use mmcore::Pfn;
use reclaimcore::{Kind, LruNode, Lruvec, Shadow};

/// Bits of [`PageExt::flags`].
pub mod flags {
    /// In the swap cache at [`super::PageExt::slot`].
    pub const SWAPCACHE: u32 = 1 << 1;
    /// A page-cache page: `family` is its file, `vpn` its page index.
    pub const FILE: u32 = 1 << 2;
    /// Reclaim is looking at it (taken off for a moment, Linux's
    /// `isolate_lru_page`): another reclaimer passes it by.
    pub const ISOLATED: u32 = 1 << 3;
}

/// What reclaim knows about one frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageExt {
    /// The address-space family of an anonymous page (0: none), or the
    /// file of a page-cache page.
    pub family: u32,
    /// [`flags`].
    pub flags: u32,
    /// Virtual page number where the family maps it, or the page's index
    /// in its file.
    pub vpn: u64,
    /// Its swap slot while in the swap cache.
    pub slot: u64,
}

/// The per-frame array and the LRU lists over the same frames.
pub struct PageExts {
    ext: &'static mut [PageExt],
    lru: Lruvec<&'static mut [LruNode]>,
    base: Pfn,
}

impl PageExts {
    /// Over `ext` and `nodes`, one entry each per frame from `base`.
    pub fn new(ext: &'static mut [PageExt], nodes: &'static mut [LruNode], base: Pfn) -> PageExts {
        PageExts {
            ext,
            lru: Lruvec::dense(nodes).expect("fewer than 2^31 frames"),
            base,
        }
    }

    fn index(&self, pfn: Pfn) -> Option<usize> {
        let i = pfn.0.checked_sub(self.base.0)? as usize;
        (i < self.ext.len()).then_some(i)
    }

    /// The entry of `pfn`, if it is a managed frame.
    pub fn get(&self, pfn: Pfn) -> Option<&PageExt> {
        self.ext.get(self.index(pfn)?)
    }

    /// The entry of `pfn`, mutable.
    pub fn get_mut(&mut self, pfn: Pfn) -> Option<&mut PageExt> {
        let i = self.index(pfn)?;
        self.ext.get_mut(i)
    }

    /// The lists (lengths, for the views).
    pub fn lru(&self) -> &Lruvec<&'static mut [LruNode]> {
        &self.lru
    }

    /// Pages of `kind` on the lists.
    pub fn lru_len(&self, kind: Kind) -> u64 {
        self.lru.len(kind) as u64
    }

    /// `pfn` became resident as a page of `kind`; `shadow` is its shadow
    /// from its last eviction, if it is a refault. Returns whether it went
    /// on the active list (`None`: not a managed frame, or already on).
    pub fn lru_add(&mut self, pfn: Pfn, kind: Kind, shadow: Option<Shadow>) -> Option<bool> {
        let i = self.index(pfn)?;
        // Refused (already on, or full): nothing changed.
        self.lru.insert(kind, i as u64, shadow).ok()
    }

    /// Whether `pfn` is on an active list.
    pub fn is_active(&self, pfn: Pfn) -> bool {
        self.index(pfn)
            .and_then(|i| self.lru.state(i as u64))
            .is_some_and(|(_, active)| active)
    }

    /// Whether `pfn` is on the lists.
    pub fn on_lru(&self, pfn: Pfn) -> bool {
        self.index(pfn).is_some_and(|i| self.lru.contains(i as u64))
    }

    /// The page of `kind` reclaim should look at next, marked
    /// [`flags::ISOLATED`] and moved to the head of its list so that
    /// another reclaimer looks elsewhere. Pages another reclaimer has
    /// isolated are passed over (at most `tries` of them).
    pub fn isolate(&mut self, kind: Kind, tries: usize) -> Option<Pfn> {
        for _ in 0..tries.max(1) {
            let i = self.lru.candidate(kind)? as usize;
            self.lru.rotate(i as u64);
            let e = &mut self.ext[i];
            if e.flags & flags::ISOLATED == 0 {
                e.flags |= flags::ISOLATED;
                return Some(Pfn(self.base.0 + i as u64));
            }
        }
        None
    }

    /// Reclaim is done looking at `pfn` (kept or gone).
    pub fn putback(&mut self, pfn: Pfn) {
        if let Some(e) = self.get_mut(pfn) {
            e.flags &= !flags::ISOLATED;
        }
    }

    /// Reclaim found `pfn` referenced: a use the lists hear of.
    pub fn touched(&mut self, pfn: Pfn) {
        if let Some(i) = self.index(pfn) {
            self.lru.touched(i as u64);
        }
    }

    /// `pfn` was evicted: off the lists, with the shadow to leave where
    /// the page was.
    pub fn evict(&mut self, pfn: Pfn) -> Option<Shadow> {
        let i = self.index(pfn)?;
        self.lru.evict(i as u64)
    }

    /// A frame is being freed: forget everything about it.
    pub fn clear(&mut self, pfn: Pfn) {
        if let Some(i) = self.index(pfn) {
            self.lru.remove(i as u64);
            self.ext[i] = PageExt::default();
        }
    }
}
