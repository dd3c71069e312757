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
    decide, leaf_flags, protect_pte, Fault, FaultAccess, FaultAction, FaultMode, FrameUse,
    PresentPage, SegvReason,
};
use crate::frame::FrameHandle;
use crate::gather::{Gather, TlbFlush};
use crate::paging::{LeafEntry, Pte, PteFlags, TableMemory};
use crate::vma::Vma;
use crate::{page_down, PAGE_SIZE};

use super::{gather_leaf, VmSpace, STACK_GUARD_GAP, STACK_LIMIT};

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

    /// A fresh zeroed frame for a user page, `None` when out of memory.
    fn alloc_zeroed(&mut self) -> Option<Self::Frame>;

    /// A fresh frame with the contents of the frame at `src` (which the
    /// caller keeps mapped meanwhile), `None` when out of memory.
    fn copy_of(&mut self, src: u64) -> Option<Self::Frame>;

    /// The page-cache page of `file` at byte `offset` (page aligned), read
    /// in if needed.
    fn file_page(&mut self, file: u32, offset: u64) -> Result<FilePage<Self::Frame>, FaultError>;

    /// Counts an event (nothing by default).
    fn count(&mut self, _event: FaultEvent) {}
}

/// One fault, as the helpers see it (Linux's `struct vm_fault`): the
/// region, the page, the access and the leaf entry the single walk found.
struct Vmf<'t> {
    vma: Vma,
    /// The page-aligned faulting address.
    page: u64,
    access: FaultAccess,
    entry: LeafEntry<'t>,
    /// The entry as the walk read it.
    pte: Pte,
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
            let vmf = Vmf {
                vma,
                page,
                access,
                entry,
                pte,
            };
            match action {
                FaultAction::MapZeroPage => do_anonymous_page(vmf, mem, backend, gather, action)?,
                FaultAction::MapNewZeroed if !pte.is_present() => {
                    do_anonymous_page(vmf, mem, backend, gather, action)?
                }
                FaultAction::MapNewZeroed | FaultAction::CopyOnWrite => {
                    wp_page_copy(vmf, mem, backend, gather, action)?
                }
                FaultAction::FillFromFile {
                    file,
                    offset,
                    private_copy,
                } => do_file_page(
                    vmf,
                    mem,
                    backend,
                    gather,
                    action,
                    file,
                    offset,
                    private_copy,
                )?,
                FaultAction::ReuseWritable => wp_page_reuse(vmf, mem, backend, gather)?,
                FaultAction::RefreshPte => refresh_pte(vmf, mem, gather)?,
                FaultAction::Spurious => gather.add_range(page, page + PAGE_SIZE),
                // Both returned above.
                FaultAction::GrowStack | FaultAction::Segv(_) => {
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
        let limit = vma.end.saturating_sub(STACK_LIMIT);
        if vma.start - page > STACK_GUARD_GAP {
            return Err(segv(backend, SegvReason::NoRegion));
        }
        self.fault_cache = None;
        if self.vmas.grow_down(page, limit).is_err() {
            return Err(segv(backend, SegvReason::NoRegion));
        }
        backend.count(FaultEvent::StackGrow);
        Ok(())
    }
}

fn segv<B: FaultBackend>(backend: &mut B, reason: SegvReason) -> FaultError {
    backend.count(FaultEvent::Segv);
    FaultError::Segv(reason)
}

/// The leaf for `frame` that `action` installs in `vmf`'s region: the
/// region's flags plus Accessed, and Dirty for a write (as the retried
/// access would set them; Linux's `pte_mkdirty` on a write fault), so the
/// MMU need not update the entry again.
fn new_leaf(vmf: &Vmf<'_>, action: &FaultAction, frame: u64) -> Pte {
    let mut flags =
        leaf_flags(&vmf.vma, action).expect("a mapping action has flags") | PteFlags::ACCESSED;
    if vmf.access == FaultAccess::Write && flags.contains(PteFlags::WRITABLE) {
        flags |= PteFlags::DIRTY;
    }
    Pte::new(frame, flags.with(PteFlags::PRESENT))
}

/// Writes the leaf for `frame`, consuming its handle; the leaf it
/// replaces (if present) goes to the gather with its reference. If no
/// table page can be had, nothing changes and `frame` is dropped.
fn install<M, T>(
    vmf: Vmf<'_>,
    mem: &mut M,
    gather: &mut Gather<T>,
    action: &FaultAction,
    frame: T::Frame,
) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    T: TlbFlush,
{
    let new = new_leaf(&vmf, action, frame.addr());
    let old = vmf
        .entry
        .set(mem, new)
        .map_err(|_| FaultError::OutOfMemory)?;
    // The leaf owns the reference now.
    let _ = frame.into_raw();
    // SAFETY: `old` was this address space's leaf and `set` just replaced
    // it, so its reference is ours to hand on.
    unsafe { gather_leaf(gather, vmf.page, PAGE_SIZE, old) };
    Ok(())
}

/// First touch of anonymous memory (Linux's `do_anonymous_page`): a read
/// of private memory maps the shared zero page; anything else a zeroed
/// frame.
fn do_anonymous_page<M, B, T>(
    vmf: Vmf<'_>,
    mem: &mut M,
    backend: &mut B,
    gather: &mut Gather<T>,
    action: FaultAction,
) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    B: FaultBackend,
    T: TlbFlush<Frame = B::Frame>,
{
    let frame = if action == FaultAction::MapZeroPage {
        backend.count(FaultEvent::ZeroPageMap);
        backend.zero_page()
    } else {
        backend.count(FaultEvent::DemandZero);
        backend.alloc_zeroed().ok_or(FaultError::OutOfMemory)?
    };
    install(vmf, mem, gather, &action, frame)
}

/// First touch of a file page (Linux's `do_read_fault` /
/// `do_shared_fault` / `do_cow_fault`): map the page-cache frame, or a
/// private copy of it for a write to a private mapping.
#[allow(clippy::too_many_arguments)]
fn do_file_page<M, B, T>(
    vmf: Vmf<'_>,
    mem: &mut M,
    backend: &mut B,
    gather: &mut Gather<T>,
    action: FaultAction,
    file: u32,
    offset: u64,
    private_copy: bool,
) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    B: FaultBackend,
    T: TlbFlush<Frame = B::Frame>,
{
    let cached = backend.file_page(file, offset)?;
    if cached.major {
        backend.count(FaultEvent::MajorFault);
    }
    let frame = if private_copy {
        // The cache keeps its page; the copy is this mapping's own.
        backend
            .copy_of(cached.frame.addr())
            .ok_or(FaultError::OutOfMemory)?
    } else {
        cached.frame
    };
    install(vmf, mem, gather, &action, frame)
}

/// A write to a leaf that must not be written in place (Linux's
/// `wp_page_copy`): a copy of a shared frame, or a zeroed frame in place
/// of the zero page. The old leaf's reference goes to the gather.
fn wp_page_copy<M, B, T>(
    vmf: Vmf<'_>,
    mem: &mut M,
    backend: &mut B,
    gather: &mut Gather<T>,
    action: FaultAction,
) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    B: FaultBackend,
    T: TlbFlush<Frame = B::Frame>,
{
    let frame = if action == FaultAction::CopyOnWrite {
        backend.count(FaultEvent::CowCopy);
        backend.copy_of(vmf.pte.addr())
    } else {
        backend.count(FaultEvent::DemandZero);
        backend.alloc_zeroed()
    };
    let frame = frame.ok_or(FaultError::OutOfMemory)?;
    install(vmf, mem, gather, &action, frame)
}

/// A write to a read-only leaf whose frame this address space may write
/// in place (Linux's `wp_page_reuse`): the last user of a copy-on-write
/// frame, or a shared mapping. The leaf keeps its frame and its reference.
fn wp_page_reuse<M, B, T>(
    vmf: Vmf<'_>,
    mem: &mut M,
    backend: &mut B,
    gather: &mut Gather<T>,
) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    B: FaultBackend,
    T: TlbFlush,
{
    if vmf.pte.is_cow() {
        backend.count(FaultEvent::CowReuse);
    }
    let new = new_leaf(&vmf, &FaultAction::ReuseWritable, vmf.pte.addr());
    let page = vmf.page;
    vmf.entry
        .set(mem, new)
        .map_err(|_| FaultError::OutOfMemory)?;
    gather.add_range(page, page + PAGE_SIZE);
    Ok(())
}

/// A read or execute of a leaf less permissive than its region (an
/// `mprotect` that has not reached it): rewrite it from the region.
fn refresh_pte<M, T>(vmf: Vmf<'_>, mem: &mut M, gather: &mut Gather<T>) -> Result<(), FaultError>
where
    M: TableMemory + ?Sized,
    T: TlbFlush,
{
    let new = protect_pte(&vmf.vma, vmf.pte);
    let page = vmf.page;
    vmf.entry
        .set(mem, new)
        .map_err(|_| FaultError::OutOfMemory)?;
    gather.add_range(page, page + PAGE_SIZE);
    Ok(())
}
