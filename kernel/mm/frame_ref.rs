//! [`FrameRef`]: one counted reference to a user frame, as a value.
//!
//! Allocating a user page, looking a page up in the page cache and copying
//! a page give a `FrameRef`; [`FrameRef::try_clone`] takes one more
//! reference; dropping one gives its reference back (the frame is freed
//! with the last). Installing a leaf consumes a handle and taking a leaf
//! out yields one (vmcore's `space` does both through
//! [`FrameHandle::into_raw`] / [`FrameHandle::from_raw`]). The shared zero
//! page is a distinguished handle that counts nothing.
//!
//! This module is the only code that touches the per-frame reference
//! counts of user frames (`get_page`/`put_page` in Linux terms). They are
//! atomic ([`mmcore::pageref`], one per frame beside the buddy allocator's
//! metadata, whose own count stays 1 while a user frame is allocated):
//! taking a reference from one held, and dropping one that is not the
//! last, takes no lock. The last drop frees the frame under the frames
//! lock (off the LRU, its reverse map forgotten, back to the buddy
//! allocator), and so does a drop that leaves only the swap cache's
//! reference (the page may leave the swap cache then). A reference found
//! through a structure that holds none (reclaim's LRU lists) is taken
//! under the frames lock with a get that refuses a zero count: such a
//! frame's last holder is on its way to free it.

use mmcore::pageref::{PageRef, Put};
use mmcore::{FrameKind, Pfn};
use spin::Once;
use vmcore::frame::FrameHandle;
use vmcore::gather::{FrameBatch, TlbFlush};
use vmcore::space::ShareFrames;
use vmcore::swap::SwapEntry;

use super::frames::{self, PhysicalMemory};
use super::pgtable::LockedFrameTables;
use crate::arch::mmu;

static ZERO_PAGE: Once<Pfn> = Once::new();

/// The frame of zeros every untouched private anonymous page reads from.
fn zero_pfn() -> Pfn {
    *ZERO_PAGE.call_once(|| {
        frames::alloc_zeroed(0, FrameKind::ZeroPage).expect("a frame for the zero page")
    })
}

/// One counted reference to a user frame (see the module documentation).
#[derive(Debug, PartialEq, Eq)]
pub struct FrameRef {
    pfn: Pfn,
}

impl FrameRef {
    /// A fresh user frame (anonymous or page cache), zeroed if asked, with
    /// its one reference. `None` when out of memory (see
    /// [`frames::alloc_user`]).
    pub fn alloc_user(kind: FrameKind, zeroed: bool) -> Option<FrameRef> {
        frames::alloc_user(kind, zeroed).map(|pfn| FrameRef { pfn })
    }

    /// A fresh anonymous frame for the page at `va` of address-space
    /// family `family`, on the LRU with its reverse map.
    pub fn alloc_anon(zeroed: bool, family: u32, va: u64) -> Option<FrameRef> {
        frames::alloc_user_anon(zeroed, family, va).map(|pfn| FrameRef { pfn })
    }

    /// The shared zero page.
    pub fn zero_page() -> FrameRef {
        FrameRef { pfn: zero_pfn() }
    }

    /// True for the shared zero page.
    pub fn is_zero_page(&self) -> bool {
        self.pfn == zero_pfn()
    }

    /// The frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// Another reference to the same frame; `None` if its count cannot
    /// grow (65 535 references). No lock: one atomic operation.
    pub fn try_clone(&self) -> Option<FrameRef> {
        if self.is_zero_page() {
            return Some(FrameRef { pfn: self.pfn });
        }
        count_of(self.pfn)
            .try_get()
            .map(|_| FrameRef { pfn: self.pfn })
    }

    /// Gives the reference back with the frames lock already held.
    fn put_locked(self, m: &mut PhysicalMemory) -> Option<u64> {
        let pfn = self.pfn;
        core::mem::forget(self);
        put_locked(m, pfn)
    }

    /// The number of references to the frame (1: this is the only one).
    pub fn refcount(&self) -> u16 {
        frames::refcount(self.pfn)
    }
}

/// The atomic count of user frame `pfn`.
#[inline]
fn count_of(pfn: Pfn) -> &'static PageRef {
    frames::page_ref(pfn).expect("a user frame the allocator describes")
}

/// Drops one reference to `pfn` (without the frames lock); what the
/// caller must do under it next.
#[inline]
fn put_ref(pfn: Pfn) -> Put {
    match count_of(pfn).put() {
        Ok(put) => put,
        Err(_) => panic!("dropping a reference to frame {:#x} that has none", pfn.0),
    }
}

/// Frees `pfn`, whose last reference was just dropped (under the frames
/// lock): it leaves the LRU and loses its reverse map; a frame still
/// waiting in a CPU's LRU-add batch is freed by that batch instead.
fn free_last_locked(m: &mut PhysicalMemory, pfn: Pfn) {
    // Still waiting in a CPU's LRU-add batch: the batch frees it
    // (else it would put a free frame on the LRU).
    if let Some(e) = m.ext.get_mut(pfn) {
        if !mmcore::lruadd::last_put(&mut e.flags) {
            super::percpu::note_pending_freed();
            return;
        }
    }
    m.ext.clear(pfn);
    count_of(pfn).clear();
    m.buddy
        .free(pfn, 0)
        .expect("last reference to an allocated frame")
}

/// Drops one reference to `pfn` with the frames lock held, freeing the
/// frame with the last, and the page's swap-cache entry if that is all
/// that is left of it (returns the slot to discard then, see
/// [`super::swap::free_swap_cache_locked`]).
fn put_locked(m: &mut PhysicalMemory, pfn: Pfn) -> Option<u64> {
    if pfn == zero_pfn() {
        return None;
    }
    match put_ref(pfn) {
        Put::Last => {
            free_last_locked(m, pfn);
            None
        }
        Put::OneLeftSwapCached => super::swap::free_swap_cache_locked(m, pfn),
        Put::Held => None,
    }
}

impl Drop for FrameRef {
    fn drop(&mut self) {
        if self.is_zero_page() {
            return;
        }
        // Not the last reference, nor one that leaves only the swap
        // cache's: no lock.
        let freed = match put_ref(self.pfn) {
            Put::Held => return,
            Put::Last => {
                frames::with(|m| free_last_locked(m, self.pfn));
                return;
            }
            Put::OneLeftSwapCached => {
                frames::with(|m| super::swap::free_swap_cache_locked(m, self.pfn))
            }
        };
        if let Some(slot) = freed {
            super::swap::discard_slot(slot);
        }
    }
}

impl FrameHandle for FrameRef {
    fn addr(&self) -> u64 {
        self.pfn.addr()
    }

    fn into_raw(self) -> u64 {
        let addr = self.pfn.addr();
        core::mem::forget(self);
        addr
    }

    unsafe fn from_raw(addr: u64) -> FrameRef {
        FrameRef {
            pfn: Pfn::from_addr(addr),
        }
    }
}

/// A handle to another reference to the user frame `pfn`, with the frames
/// lock held (reclaim pinning a page it found on the LRU, the swap cache
/// handing out its page). `None` if `pfn` is not an allocated user frame,
/// its last reference is being dropped (the count is zero: its holder
/// frees it as soon as it has the lock), or its count is full.
pub fn pin_locked(m: &mut PhysicalMemory, pfn: Pfn) -> Option<FrameRef> {
    take_ref_locked(m, pfn).then_some(FrameRef { pfn })
}

/// Takes a reference to `pfn` that a raw holder (the swap cache) keeps,
/// with the frames lock held; false if it cannot (as [`pin_locked`]).
pub fn take_ref_locked(m: &mut PhysicalMemory, pfn: Pfn) -> bool {
    is_user(m, pfn) && frames::page_ref(pfn).is_some_and(|r| r.try_get().is_some())
}

/// Whether `pfn` heads an allocated user frame (its count is the atomic
/// one).
fn is_user(m: &PhysicalMemory, pfn: Pfn) -> bool {
    matches!(m.buddy.kind(pfn), FrameKind::UserAnon | FrameKind::UserFile)
        && m.buddy.refcount(pfn) != 0
}

/// Drops a reference a raw holder (the swap cache) kept, with the frames
/// lock held (frees the frame with the last).
pub fn put_pfn_locked(m: &mut PhysicalMemory, pfn: Pfn) {
    if pfn != zero_pfn() && put_ref(pfn) == Put::Last {
        free_last_locked(m, pfn);
    }
}

/// The swap cache took `pfn` in (under the frames lock): a drop that
/// leaves one reference may leave only the cache's.
pub fn mark_swapcache(pfn: Pfn, cached: bool) {
    if let Some(r) = frames::page_ref(pfn) {
        if cached {
            r.set_flag(mmcore::pageref::SWAPCACHE);
        } else {
            r.clear_flag(mmcore::pageref::SWAPCACHE);
        }
    }
}

/// What the frame behind a present user leaf is, for the fault decision
/// (whether it is a page-cache page, and its reference count: one atomic
/// read, no lock; the leaf's reference keeps it allocated).
pub fn frame_use(pfn: Pfn) -> vmcore::fault::FrameUse {
    use vmcore::fault::FrameUse;
    if pfn == zero_pfn() {
        return FrameUse::ZeroPage;
    }
    let r = count_of(pfn);
    if r.flags() & mmcore::pageref::FILE != 0 {
        FrameUse::PageCache
    } else {
        FrameUse::Anon { refs: r.count() }
    }
}

/// One byte of physical memory at `pa` (a present user page's), through
/// the direct map.
pub fn read_byte(pa: u64) -> u8 {
    super::direct::read_byte(pa)
}

/// A fresh anonymous user frame with the contents of `src`, for the page
/// at `va` of family `family`.
pub fn copy_of(src: Pfn, family: u32, va: u64) -> Option<FrameRef> {
    let dst = FrameRef::alloc_anon(false, family, va)?;
    // `dst` is a fresh frame only we reference; `src` one the caller keeps
    // a reference to (mapped, or held).
    super::direct::copy_frame(dst.pfn, src);
    Some(dst)
}

/// Fork takes a reference per shared frame under the lock it allocates
/// the child's tables with.
impl ShareFrames for LockedFrameTables<'_> {
    fn share(&mut self, addr: u64) -> bool {
        let pfn = Pfn::from_addr(addr);
        // The parent's leaf holds a reference: no lock needed for this one.
        pfn == zero_pfn() || count_of(pfn).try_get().is_some()
    }

    fn share_swap(&mut self, entry: SwapEntry) -> bool {
        super::swap::dup_locked(self.0, entry)
    }
}

/// The TLB for one address space: this CPU's if the space is loaded
/// here, and every other CPU that has it loaded (`arch::tlb`): pages are
/// invalidated here at once and batched for the others, who get one IPI
/// per flush ([`TlbFlush::flush_done`]) and acknowledge it before the
/// gather frees anything. CPUs that hold the space only lazily get it
/// only when page tables went ([`TlbFlush::tables_unlinked`]).
///
/// A system call changes its space with interrupts on, so it may be
/// preempted and resumed on another CPU between invalidating a page here
/// and [`TlbFlush::flush_done`]: the CPU it ends on may have run a sibling
/// thread of the space meanwhile (no CR3 reload between them) and hold the
/// old translation, yet it is not among "the others". So the CPU that did
/// the local invalidations is remembered, and `flush_done` repeats them
/// where it finds itself if that is another one.
pub struct KernelTlb {
    live: bool,
    root: u64,
    pages: [u64; crate::arch::tlb::MAX_PAGES],
    count: usize,
    full: bool,
    tables: bool,
    /// The CPU this batch's local invalidations ran on, and whether some
    /// ran on another.
    cpu: usize,
    moved: bool,
}

impl KernelTlb {
    /// For the address space rooted at `root`.
    pub fn for_root(root: u64) -> KernelTlb {
        KernelTlb {
            live: mmu::is_active(root),
            root,
            pages: [0; crate::arch::tlb::MAX_PAGES],
            count: 0,
            full: false,
            tables: false,
            cpu: crate::arch::percpu::cpu_index(),
            moved: false,
        }
    }

    /// Notes the CPU a local invalidation runs on (a different one: the
    /// caller migrated), and whether the space is loaded there.
    fn here(&mut self) -> bool {
        if crate::arch::percpu::cpu_index() != self.cpu {
            self.moved = true;
            self.live = mmu::is_active(self.root);
        }
        self.live
    }
}

impl TlbFlush for KernelTlb {
    type Frame = FrameRef;

    fn flush_page(&mut self, va: u64) {
        if self.here() {
            mmu::flush_page(va);
        }
        match self.pages.get_mut(self.count) {
            Some(slot) => {
                *slot = va;
                self.count += 1;
            }
            None => self.full = true,
        }
    }

    fn flush_all(&mut self) {
        if self.here() {
            mmu::flush_all();
        }
        self.full = true;
    }

    fn tables_unlinked(&mut self) {
        self.tables = true;
    }

    fn flush_done(&mut self) {
        // No migration from here to the shootdown's end.
        let _irq = crate::arch::sync::IrqOff::new();
        let me = crate::arch::percpu::cpu_index();
        if self.moved || me != self.cpu {
            // Preempted and moved since (some of) the local invalidations:
            // this CPU may hold what they removed elsewhere.
            self.live = mmu::is_active(self.root);
            if self.live && (self.full || self.count > 0) {
                if self.full {
                    mmu::flush_all();
                } else {
                    for &va in &self.pages[..self.count] {
                        mmu::flush_page(va);
                    }
                }
            }
            self.cpu = me;
            self.moved = false;
        }
        if self.full || self.count > 0 {
            let others = crate::arch::tlb::others_with(self.root, self.tables);
            if others != 0 {
                let pages = &self.pages[..self.count];
                crate::arch::tlb::shoot(others, self.root, pages, self.full, false);
            }
        }
        self.count = 0;
        self.full = false;
        self.tables = false;
    }

    fn release_swap(&mut self, entry: SwapEntry) {
        super::swap::release(entry);
    }

    fn release(&mut self, batch: &mut FrameBatch<FrameRef>) {
        // Slots freed with their swap-cache pages, told to the device once
        // the frames lock is dropped (the device is never called under it).
        let mut freed = [0u64; vmcore::gather::FRAME_BATCH];
        let mut n = 0;
        frames::with(|m| {
            for frame in batch.drain(..) {
                if let Some(slot) = frame.put_locked(m) {
                    freed[n] = slot;
                    n += 1;
                }
            }
        });
        for &slot in &freed[..n] {
            super::swap::discard_slot(slot);
        }
    }
}
