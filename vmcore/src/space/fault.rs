//! Carrying out a page fault: [`VmSpace::handle_fault`].
//!
//! [`crate::fault::decide`] says what a fault needs; this module does it,
//! split the way Linux splits `handle_mm_fault`: [`do_anonymous_page`]
//! (first touch of anonymous memory), [`do_file_page`] (first touch of a
//! file page), [`wp_page_copy`] and [`wp_page_reuse`] (a write to a
//! read-only copy-on-write leaf), plus stack growth and the two leaf fix-ups.
//! Every step that writes a leaf goes through [`install`], which consumes
//! the new frame's handle and hands the replaced leaf's to the gather.
//!
//! Lock contract: the caller holds the address space exclusively (`&mut
//! VmSpace`); the backend takes whatever locks frames and the page cache
//! need, one at a time, and none of them is held on return.

use crate::fault::{
    decide, leaf_flags, protect_pte, swapin_flags, Fault, FaultAccess, FaultAction, FaultMode,
    FrameUse, PresentPage, SegvReason,
};
use crate::frame::FrameHandle;
use crate::gather::{Gather, TlbFlush};
use crate::paging::{LeafEntry, Pte, PteFlags, TableMemory};
use crate::swap::SwapEntry;
use crate::vma::Vma;
use crate::{page_down, PAGE_SIZE};

use super::{gather_leaf, VmSpace, STACK_GUARD_GAP};

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// The access is not allowed: SIGSEGV, or -EFAULT for a user copy.
    Segv(SegvReason),
    /// A user access to the kernel half.
    KernelAddress,
    /// A file page wholly past the end of its file: SIGBUS.
    PastEof,
    /// No frame (or page-table frame) was available.
    OutOfMemory,
    /// The fault needs a fresh zeroed frame and the backend asked to stop
    /// there ([`FaultBackend::defer_new_frames`]): nothing was changed but a
    /// stack growth; the caller clears a frame with the address space
    /// unlocked and faults again offering it
    /// ([`FaultBackend::take_prepared`]). Never leaves the fault path.
    ZeroedFrameWanted,
    /// The same for a private copy of a file page: the backend holds the
    /// page-cache frame ([`FaultBackend::hold_source`]); the caller copies
    /// it unlocked and faults again offering the copy
    /// ([`FaultBackend::take_prepared_copy`]).
    CopyWanted,
}

/// Things worth counting that a fault did (the kernel's vmstat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultEvent {
    /// The access was refused.
    Segv,
    /// A grows-down stack region was extended.
    StackGrow,
    /// The shared zero page was mapped.
    ZeroPageMap,
    /// A zeroed frame was mapped.
    DemandZero,
    /// A file page had to be read in (a major fault).
    MajorFault,
    /// A copy-on-write copy was made.
    CowCopy,
    /// A copy-on-write leaf became writable without a copy.
    CowReuse,
}

/// A page brought back from swap for a fault.
pub struct SwapPage<F> {
    /// The page, with a reference for the caller's leaf.
    pub frame: F,
    /// Whether the device had to be read (a major fault) rather than the
    /// swap cache found it.
    pub major: bool,
    /// Whether nothing else shares the frame any more (no other leaf, no
    /// swap slot or cache entry), so it may be mapped writable.
    pub exclusive: bool,
}

/// A page-cache page for a fault.
pub struct FilePage<F> {
    /// The cache's frame, with a reference for the caller.
    pub frame: F,
    /// Whether it had to be read in now.
    pub major: bool,
}

/// The physical side of a fault.
pub trait FaultBackend {
    /// The frame references the backend hands out.
    type Frame: FrameHandle;

    /// The shared zero page (a handle that counts nothing).
    fn zero_page(&mut self) -> Self::Frame;

    /// What the frame at `addr`, mapped by a present leaf, is.
    fn frame_use(&mut self, addr: u64) -> FrameUse;

    /// A fresh zeroed frame for the anonymous page at `va`, `None` when out
    /// of memory. (The address is for the reverse map and the LRU.)
    fn alloc_zeroed(&mut self, va: u64) -> Option<Self::Frame>;

    /// A fresh frame for the anonymous page at `va` with the contents of the
    /// frame at `src` (which the caller keeps mapped meanwhile), `None`
    /// when out of memory.
    fn copy_of(&mut self, src: u64, va: u64) -> Option<Self::Frame>;

    /// The page-cache page of `file` at byte `offset` (page aligned), read
    /// in if needed.
    fn file_page(&mut self, file: u32, offset: u64) -> Result<FilePage<Self::Frame>, FaultError>;

    /// The page swapped out to `entry`, for the leaf at `va` that records
    /// it: from the swap cache, or read from the device into a fresh frame.
    /// The leaf's slot reference is the backend's to drop (the executor
    /// then replaces the leaf, which cannot fail: its table exists).
    fn swap_in(&mut self, entry: SwapEntry, va: u64) -> Result<SwapPage<Self::Frame>, FaultError>;

    /// Counts an event (nothing by default).
    fn count(&mut self, _event: FaultEvent) {}

    /// A zeroed frame the caller prepared for this fault's page before it
    /// locked the address space (cleared with no lock held): a demand-zero
    /// fill takes it instead of calling [`Self::alloc_zeroed`]. A fault that
    /// needs none leaves it with the backend (another thread filled the
    /// page meanwhile, the region went away): the caller drops it. None by
    /// default.
    fn take_prepared(&mut self) -> Option<Self::Frame> {
        None
    }

    /// Whether a fill that needs a new frame and was offered none stops
    /// before allocating: a demand-zero fill with
    /// [`FaultError::ZeroedFrameWanted`], a private copy of a file page
    /// with [`FaultError::CopyWanted`] (so that the frame is cleared or
    /// copied outside the address-space lock). False by default.
    fn defer_new_frames(&mut self) -> bool {
        false
    }

    /// A copy of the frame at `src` the caller prepared unlocked for this
    /// fault's page (a private copy of a file page): used by the fill only
    /// if the page-cache frame is still `src`; else it stays with the
    /// backend for the caller to drop. None by default.
    fn take_prepared_copy(&mut self, _src: u64) -> Option<Self::Frame> {
        None
    }

    /// With [`Self::defer_new_frames`], a private copy with no prepared one
    /// stops with [`FaultError::CopyWanted`] after handing the source
    /// frame (a reference: it cannot be freed meanwhile) here.
    fn hold_source(&mut self, _src: Self::Frame) {}
}

/// One fault, as the helpers see it (Linux's `struct vm_fault`): the
/// region, the page, the access and the leaf entry the single walk found.
///
/// It also carries the physical side, so each step below is a method with
/// everything it may touch in one place.
struct Vmf<'t, 'c, M: ?Sized, B, T: TlbFlush> {
    vma: Vma,
    /// The page-aligned faulting address.
    page: u64,
    access: FaultAccess,
    /// The leaf's place, until a step writes it (once; steps borrow the
    /// context, so it is never moved, which under TCG meant copying all of
    /// it for each step).
    entry: Option<LeafEntry<'t>>,
    /// The entry as the walk read it.
    pte: Pte,
    mem: &'c mut M,
    backend: &'c mut B,
    gather: &'c mut Gather<T>,
}

impl VmSpace {
    /// Resolves a fault at `addr`, or says why it cannot be. Leaves that
    /// are replaced go to `gather` (the caller finishes it).
    ///
    /// The page tables are walked once: the entry found is what
    /// [`decide`] decides on and what gets rewritten (Linux's `vmf->pte`).
    pub fn handle_fault<M, B, T>(
        &mut self,
        mem: &mut M,
        backend: &mut B,
        gather: &mut Gather<T>,
        addr: u64,
        access: FaultAccess,
        mode: FaultMode,
    ) -> Result<FaultAction, FaultError>
    where
        M: TableMemory + ?Sized,
        B: FaultBackend,
        T: TlbFlush<Frame = B::Frame>,
    {
        let page = page_down(addr);
        // At most one stack growth, then the fault proper.
        for _ in 0..2 {
            let vma = self.fault_vma(addr);
            let Some(entry) = self.tables.leaf_entry(mem, page) else {
                return Err(segv(backend, SegvReason::NoRegion));
            };
            let pte = entry.pte();
            let present = pte.is_present().then(|| PresentPage {
                pte,
                frame: backend.frame_use(pte.addr()),
            });
            let action = decide(&Fault {
                addr,
                access,
                mode,
                vma: vma.as_ref(),
                page: present,
                swapped: pte.swap_entry(),
            });
            match action {
                FaultAction::Segv(reason) => return Err(segv(backend, reason)),
                FaultAction::GrowStack => {
                    if let Some(vma) = vma {
                        self.grow_stack(backend, &vma, page)?;
                    }
                    continue;
                }
                _ => {}
            }
            // `decide` acts only inside a region.
            let Some(vma) = vma else {
                return Err(segv(backend, SegvReason::NoRegion));
            };
            if matches!(action, FaultAction::Spurious) {
                // Another CPU fixed the leaf, or this TLB entry is stale.
                gather.add_range(page, page + PAGE_SIZE);
                return Ok(action);
            }
            let mut vmf = Vmf {
                vma,
                page,
                access,
                entry: Some(entry),
                pte,
                mem: &mut *mem,
                backend: &mut *backend,
                gather: &mut *gather,
            };
            match action {
                FaultAction::MapZeroPage => vmf.do_anonymous_page(action)?,
                FaultAction::MapNewZeroed if !pte.is_present() => vmf.do_anonymous_page(action)?,
                FaultAction::MapNewZeroed | FaultAction::CopyOnWrite => vmf.wp_page_copy(action)?,
                FaultAction::FillFromFile {
                    file,
                    offset,
                    private_copy,
                } => vmf.do_file_page(action, file, offset, private_copy)?,
                FaultAction::SwapIn { entry } => vmf.do_swap_page(entry)?,
                FaultAction::ReuseWritable => vmf.wp_page_reuse()?,
                FaultAction::RefreshPte => vmf.refresh_pte()?,
                // All returned above.
                FaultAction::Spurious | FaultAction::GrowStack | FaultAction::Segv(_) => {
                    return Err(segv(backend, SegvReason::NoRegion))
                }
            }
            return Ok(action);
        }
        Err(segv(backend, SegvReason::NoRegion))
    }

    /// The region for a fault at `addr`: the cached one if it contains
    /// `addr`, else a lookup (which may find a stack just above).
    fn fault_vma(&mut self, addr: u64) -> Option<Vma> {
        match self.fault_cache {
            Some(v) if v.contains(addr) => Some(v),
            _ => {
                let found = self.vmas.find_for_fault(addr).copied();
                self.fault_cache = found.filter(|v| v.contains(addr));
                found
            }
        }
    }

    /// Extends the grows-down stack `vma` to cover `page`, within the guard
    /// gap below it and the stack limit below its top.
    fn grow_stack<B: FaultBackend>(
        &mut self,
        backend: &mut B,
        vma: &Vma,
        page: u64,
    ) -> Result<(), FaultError> {
        let limit = vma.end.saturating_sub(self.stack_limit());
        if vma.start - page > STACK_GUARD_GAP {
            return Err(segv(backend, SegvReason::NoRegion));
        }
        // The growth counts against RLIMIT_AS (and is refused past it).
        let growth = Vma {
            start: page,
            end: vma.start,
            ..*vma
        };
        if self.may_expand(&growth).is_err() {
            return Err(segv(backend, SegvReason::NoRegion));
        }
        self.fault_cache = None;
        // A locked stack stays locked as it grows (Linux's VM_LOCKED is
        // the region's); the room for it is taken first.
        let locked = self.locked.contains(vma.start);
        if locked && self.locked.reserve().is_err() {
            return Err(FaultError::OutOfMemory);
        }
        if self.vmas.grow_down(page, limit).is_err() {
            return Err(segv(backend, SegvReason::NoRegion));
        }
        if locked {
            // Merges with the range at `vma.start`: no allocation.
            let _ = self.locked.lock(page, vma.start);
        }
        backend.count(FaultEvent::StackGrow);
        Ok(())
    }
}

fn segv<B: FaultBackend>(backend: &mut B, reason: SegvReason) -> FaultError {
    backend.count(FaultEvent::Segv);
    FaultError::Segv(reason)
}

impl<M, B, T> Vmf<'_, '_, M, B, T>
where
    M: TableMemory + ?Sized,
    B: FaultBackend,
    T: TlbFlush<Frame = B::Frame>,
{
    /// The leaf for `frame` that `action` installs in this fault's region:
    /// the region's flags plus Accessed, and Dirty for a write (as the
    /// retried access would set them; Linux's `pte_mkdirty` on a write
    /// fault), so the MMU need not update the entry again.
    #[inline(always)]
    fn new_leaf(&self, action: &FaultAction, frame: u64) -> Pte {
        let mut flags =
            leaf_flags(&self.vma, action).expect("a mapping action has flags") | PteFlags::ACCESSED;
        if self.access == FaultAccess::Write && flags.contains(PteFlags::WRITABLE) {
            flags |= PteFlags::DIRTY;
        }
        Pte::new(frame, flags.with(PteFlags::PRESENT))
    }

    /// Writes the leaf for `frame`, consuming its handle; the leaf it
    /// replaces (if present) goes to the gather with its reference. If no
    /// table page can be had, nothing changes and `frame` is dropped.
    #[inline(always)]
    fn install(&mut self, action: &FaultAction, frame: B::Frame) -> Result<(), FaultError> {
        let new = self.new_leaf(action, frame.addr());
        self.install_leaf(new, frame)
    }

    /// [`Self::install`] with the leaf already made.
    #[inline(always)]
    fn install_leaf(&mut self, new: Pte, frame: B::Frame) -> Result<(), FaultError> {
        let old = self.set_leaf(new)?;
        // The leaf owns the reference now.
        let _ = frame.into_raw();
        // SAFETY: `old` was this address space's leaf and `set` just
        // replaced it, so its reference is ours to hand on.
        unsafe { gather_leaf(self.gather, self.page, PAGE_SIZE, old) };
        Ok(())
    }

    /// Writes `new` into the leaf (creating missing tables), returning the
    /// entry it replaced; out of memory if a table page cannot be had.
    #[inline(always)]
    fn set_leaf(&mut self, new: Pte) -> Result<Pte, FaultError> {
        // Each fault writes its leaf once: a second write finds none and
        // is refused like a failed one.
        let entry = self.entry.take().ok_or(FaultError::OutOfMemory)?;
        entry
            .set(self.mem, new)
            .map_err(|_| FaultError::OutOfMemory)
    }

    /// Rewrites the leaf in place with `new`, which keeps its frame (and
    /// the reference the leaf holds); the old translation is flushed.
    #[inline(always)]
    fn set_in_place(&mut self, new: Pte) -> Result<(), FaultError> {
        self.set_leaf(new)?;
        self.gather.add_range(self.page, self.page + PAGE_SIZE);
        Ok(())
    }

    /// First touch of anonymous memory (Linux's `do_anonymous_page`): a
    /// read of private memory maps the shared zero page; anything else a
    /// zeroed frame.
    #[inline(always)]
    fn do_anonymous_page(&mut self, action: FaultAction) -> Result<(), FaultError> {
        let frame = if matches!(action, FaultAction::MapZeroPage) {
            self.backend.count(FaultEvent::ZeroPageMap);
            self.backend.zero_page()
        } else {
            self.zeroed_frame()?
        };
        self.install(&action, frame)
    }

    /// The fresh zeroed frame of a demand-zero fill: the prepared one if
    /// the caller offers it, else (unless the backend defers) a new one.
    #[inline(always)]
    fn zeroed_frame(&mut self) -> Result<B::Frame, FaultError> {
        let frame = match self.backend.take_prepared() {
            Some(frame) => frame,
            None if self.backend.defer_new_frames() => return Err(FaultError::ZeroedFrameWanted),
            None => self
                .backend
                .alloc_zeroed(self.page)
                .ok_or(FaultError::OutOfMemory)?,
        };
        self.backend.count(FaultEvent::DemandZero);
        Ok(frame)
    }

    /// First touch of a file page (Linux's `do_read_fault` /
    /// `do_shared_fault` / `do_cow_fault`): map the page-cache frame, or a
    /// private copy of it for a write to a private mapping.
    #[inline]
    fn do_file_page(
        &mut self,
        action: FaultAction,
        file: u32,
        offset: u64,
        private_copy: bool,
    ) -> Result<(), FaultError> {
        let cached = self.backend.file_page(file, offset)?;
        if cached.major {
            self.backend.count(FaultEvent::MajorFault);
        }
        let frame = if private_copy {
            // The cache keeps its page; the copy is this mapping's own.
            let src = cached.frame.addr();
            match self.backend.take_prepared_copy(src) {
                Some(copy) => copy,
                None if self.backend.defer_new_frames() => {
                    self.backend.hold_source(cached.frame);
                    return Err(FaultError::CopyWanted);
                }
                None => self
                    .backend
                    .copy_of(src, self.page)
                    .ok_or(FaultError::OutOfMemory)?,
            }
        } else {
            cached.frame
        };
        self.install(&action, frame)
    }

    /// A write to a leaf that must not be written in place (Linux's
    /// `wp_page_copy`): a copy of a shared frame, or a zeroed frame in
    /// place of the zero page. The old leaf's reference goes to the gather.
    #[inline(always)]
    fn wp_page_copy(&mut self, action: FaultAction) -> Result<(), FaultError> {
        let frame = if matches!(action, FaultAction::CopyOnWrite) {
            self.backend.count(FaultEvent::CowCopy);
            self.backend
                .copy_of(self.pte.addr(), self.page)
                .ok_or(FaultError::OutOfMemory)?
        } else {
            self.zeroed_frame()?
        };
        self.install(&action, frame)
    }

    /// A page that was swapped out (Linux's `do_swap_page`): the backend
    /// finds it in the swap cache or reads it in; it is mapped writable
    /// only if nothing else shares it.
    #[inline]
    fn do_swap_page(&mut self, entry: SwapEntry) -> Result<(), FaultError> {
        let page = self.backend.swap_in(entry, self.page)?;
        if page.major {
            self.backend.count(FaultEvent::MajorFault);
        }
        let mut flags = swapin_flags(&self.vma, page.exclusive) | PteFlags::ACCESSED;
        if self.access == FaultAccess::Write && flags.contains(PteFlags::WRITABLE) {
            flags |= PteFlags::DIRTY;
        }
        let new = Pte::new(page.frame.addr(), flags.with(PteFlags::PRESENT));
        self.install_leaf(new, page.frame)
    }

    /// A write to a read-only leaf whose frame this address space may write
    /// in place (Linux's `wp_page_reuse`): the last user of a copy-on-write
    /// frame, or a shared mapping. The leaf keeps its frame and reference.
    #[inline(always)]
    fn wp_page_reuse(&mut self) -> Result<(), FaultError> {
        if self.pte.is_cow() {
            self.backend.count(FaultEvent::CowReuse);
        }
        let new = self.new_leaf(&FaultAction::ReuseWritable, self.pte.addr());
        self.set_in_place(new)
    }

    /// A read or execute of a leaf less permissive than its region (an
    /// `mprotect` that has not reached it): rewrite it from the region.
    #[inline(always)]
    fn refresh_pte(&mut self) -> Result<(), FaultError> {
        let new = protect_pte(&self.vma, self.pte);
        self.set_in_place(new)
    }
}
