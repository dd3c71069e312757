//! Per-frame data beyond the buddy allocator's `PageMeta` (Linux's
//! `page_ext`, and the parts of `struct page` that reclaim uses): the LRU
//! links, the reverse mapping of an anonymous page, and its swap-cache
//! slot. One array over all frames, allocated at boot, guarded by the
//! frames lock with the rest of physical memory, so nothing here
//! allocates.
//!
//! Reverse mapping: an anonymous page records the *family* of address
//! spaces it was born in (a process and its fork descendants share one)
//! and its virtual page number. Fork keeps addresses, so every leaf that
//! maps the page is at that address in an address space of the family
//! (Linux's `anon_vma` plus `page->index`, for a kernel without mremap
//! of shared pages; a page mremap moved is found where it was, so reclaim
//! leaves it resident rather than lose track of it).

use mmcore::Pfn;

/// Bits of [`PageExt::flags`].
pub mod flags {
    /// On the anonymous LRU list.
    pub const LRU: u32 = 1 << 0;
    /// In the swap cache at [`super::PageExt::slot`].
    pub const SWAPCACHE: u32 = 1 << 1;
}

/// What reclaim knows about one frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageExt {
    /// LRU neighbours, as index + 1 (0: none).
    prev: u32,
    next: u32,
    /// The address-space family of an anonymous page (0: none).
    pub family: u32,
    /// [`flags`].
    pub flags: u32,
    /// Virtual page number where the family maps it.
    pub vpn: u64,
    /// Its swap slot while in the swap cache.
    pub slot: u64,
}

/// The array, and the anonymous LRU list threaded through it (a CLOCK:
/// reclaim takes from the head and gives referenced pages a second chance
/// at the tail).
pub struct PageExts {
    ext: &'static mut [PageExt],
    base: Pfn,
    head: u32,
    tail: u32,
    len: u64,
}

impl PageExts {
    /// Over `ext`, one entry per frame from `base`.
    pub fn new(ext: &'static mut [PageExt], base: Pfn) -> PageExts {
        PageExts {
            ext,
            base,
            head: 0,
            tail: 0,
            len: 0,
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

    /// Pages on the LRU.
    pub fn lru_len(&self) -> u64 {
        self.len
    }

    /// Puts `pfn` at the tail of the LRU (no-op if it is on it).
    pub fn lru_add(&mut self, pfn: Pfn) {
        let Some(i) = self.index(pfn) else { return };
        if self.ext[i].flags & flags::LRU != 0 {
            return;
        }
        let link = i as u32 + 1;
        self.ext[i].prev = self.tail;
        self.ext[i].next = 0;
        if self.tail != 0 {
            self.ext[self.tail as usize - 1].next = link;
        } else {
            self.head = link;
        }
        self.tail = link;
        self.ext[i].flags |= flags::LRU;
        self.len += 1;
    }

    /// Takes `pfn` off the LRU (no-op if it is not on it).
    pub fn lru_del(&mut self, pfn: Pfn) {
        let Some(i) = self.index(pfn) else { return };
        if self.ext[i].flags & flags::LRU == 0 {
            return;
        }
        let (prev, next) = (self.ext[i].prev, self.ext[i].next);
        if prev != 0 {
            self.ext[prev as usize - 1].next = next;
        } else {
            self.head = next;
        }
        if next != 0 {
            self.ext[next as usize - 1].prev = prev;
        } else {
            self.tail = prev;
        }
        self.ext[i].prev = 0;
        self.ext[i].next = 0;
        self.ext[i].flags &= !flags::LRU;
        self.len -= 1;
    }

    /// The page at the head of the LRU (the oldest), taken off it.
    pub fn lru_pop(&mut self) -> Option<Pfn> {
        if self.head == 0 {
            return None;
        }
        let pfn = Pfn(self.base.0 + self.head as u64 - 1);
        self.lru_del(pfn);
        Some(pfn)
    }

    /// A frame is being freed: forget everything about it.
    pub fn clear(&mut self, pfn: Pfn) {
        self.lru_del(pfn);
        if let Some(e) = self.get_mut(pfn) {
            *e = PageExt::default();
        }
    }
}
