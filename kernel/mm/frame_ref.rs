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
//! counts of user frames (`get_page`/`put_page` in Linux terms).

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
    /// grow (65 535 references).
    pub fn try_clone(&self) -> Option<FrameRef> {
        if self.is_zero_page() {
            return Some(FrameRef { pfn: self.pfn });
        }
        frames::with(|m| m.buddy.ref_inc(self.pfn)).map(|_| FrameRef { pfn: self.pfn })
    }

    /// Gives the reference back with the frames lock already held.
    fn put_locked(self, m: &mut PhysicalMemory) {
        let pfn = self.pfn;
        core::mem::forget(self);
        put(m, pfn);
    }

    /// The number of references to the frame (1: this is the only one).
    pub fn refcount(&self) -> u16 {
        frames::refcount(self.pfn)
    }
}

/// Drops one reference to `pfn`, freeing the frame with the last (it
/// leaves the LRU and loses its reverse map then; a frame still waiting in
/// a CPU's LRU-add batch is freed by that batch instead).
fn put(m: &mut PhysicalMemory, pfn: Pfn) {
    if pfn == zero_pfn() {
        return;
    }
    match m.buddy.ref_dec(pfn) {
        Some(0) => {
            // Still waiting in a CPU's LRU-add batch: the batch frees it
            // (else it would put a free frame on the LRU).
            if let Some(e) = m.ext.get_mut(pfn) {
                if !mmcore::lruadd::last_put(&mut e.flags) {
                    super::percpu::note_pending_freed();
                    return;
                }
            }
            m.ext.clear(pfn);
            m.buddy
                .free(pfn, 0)
                .expect("last reference to an allocated frame")
        }
        Some(_) => {}
        None => panic!("dropping a reference to frame {:#x} that has none", pfn.0),
    }
}

impl Drop for FrameRef {
    fn drop(&mut self) {
        if !self.is_zero_page() {
            let freed = frames::with(|m| {
                put(m, self.pfn);
                super::swap::free_swap_cache_locked(m, self.pfn)
            });
            if let Some(slot) = freed {
                super::swap::discard_slot(slot);
            }
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

/// A handle to another reference to the allocated frame `pfn`, with the
/// frames lock held (reclaim pinning a page it found on the LRU, the swap
/// cache handing out its page). `None` if `pfn` is not allocated or its
/// count is full.
pub fn pin_locked(m: &mut PhysicalMemory, pfn: Pfn) -> Option<FrameRef> {
    m.buddy.ref_inc(pfn).map(|_| FrameRef { pfn })
}

/// Takes a reference to `pfn` that a raw holder (the swap cache) keeps,
/// with the frames lock held; false if it cannot.
pub fn take_ref_locked(m: &mut PhysicalMemory, pfn: Pfn) -> bool {
    m.buddy.ref_inc(pfn).is_some()
}

/// Drops a reference a raw holder (the swap cache) kept, with the frames
/// lock held.
pub fn put_pfn_locked(m: &mut PhysicalMemory, pfn: Pfn) {
    put(m, pfn);
}

/// What the frame behind a present user leaf is, for the fault decision
/// (its kind and reference count, read under one lock).
pub fn frame_use(pfn: Pfn) -> vmcore::fault::FrameUse {
    use vmcore::fault::FrameUse;
    if pfn == zero_pfn() {
        return FrameUse::ZeroPage;
    }
    match frames::with(|m| (m.buddy.kind(pfn), m.buddy.refcount(pfn))) {
        (FrameKind::UserFile, _) => FrameUse::PageCache,
        (_, refs) => FrameUse::Anon { refs: refs as u32 },
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
        pfn == zero_pfn() || self.0.buddy.ref_inc(pfn).is_some()
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
                let pfn = frame.pfn;
                frame.put_locked(m);
                if let Some(slot) = super::swap::free_swap_cache_locked(m, pfn) {
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
