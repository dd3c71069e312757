//! Address spaces: a page-table tree plus the regions (VMAs) that say what
//! may be mapped in it, and the fault handling that fills one from the other.
//!
//! Mapping a region allocates nothing. Pages arrive on first touch: a read
//! of private anonymous memory maps the one shared zero page read-only, a
//! write maps a fresh zeroed frame, a file page comes from the page cache.
//! `fork` shares every private page copy-on-write; the first write on either
//! side copies it (or, if the other side has let go, just makes it writable
//! again). vmcore decides each case; this module carries it out on frames.

use alloc::sync::Arc;
use alloc::vec::Vec;
use mmcore::{FrameKind, Pfn, PhysMem};
use spin::{Mutex, Once};
use vmcore::fault::{self, Fault, FaultMode, FrameUse, PresentPage};
use vmcore::paging::{LeafUpdate, WalkStep};
use vmcore::{
    FaultAccess, FaultAction, LeafEntry, PageTables, Pte, PteFlags, SegvReason, VmError, Vma,
};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

use super::frames::{self, DirectMap};
use super::layout::{PAGE_SIZE, USER_STACK_LIMIT};
use super::pgtable::{self, FrameTables};
use super::{pagecache, vmstat};
use crate::arch::sync::{IrqMutex, IrqOff};

/// How far below a stack region a fault may still grow it (Linux allows
/// about this much below the stack pointer).
pub const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

static ZERO_PAGE: Once<Pfn> = Once::new();

/// The one frame of zeros every untouched anonymous page reads from.
pub fn zero_page() -> Pfn {
    *ZERO_PAGE.call_once(|| {
        frames::alloc_zeroed(0, FrameKind::ZeroPage).expect("a frame for the zero page")
    })
}

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

#[derive(Debug)]
pub struct OutOfMemory;

pub struct AddressSpace {
    tables: PageTables,
    vmas: vmcore::VmaSet,
    /// The region the last fault was in: consecutive faults nearly always
    /// land in the same one (Linux kept a per-mm `vmacache` for this), so
    /// they skip the O(log n) tree lookup. Cleared whenever regions change.
    last_fault_vma: Option<Vma>,
    /// The page-cache files (ramdisk files, shared anonymous objects) some
    /// region here maps, each holding one [`pagecache::hold`]: a shared
    /// anonymous object lives while any address space holds it.
    holds: Vec<u32>,
}

/// The file a region maps, if any.
fn file_of(vma: &Vma) -> Option<u32> {
    match vma.kind {
        vmcore::VmaKind::File { file, .. } => Some(file),
        vmcore::VmaKind::Anonymous => None,
    }
}

fn frame_of(pte: Pte) -> Pfn {
    Pfn::from_addr(pte.addr())
}

/// Drops the reference a leaf held on its frame (the zero page is never
/// counted).
fn release_leaf(pte: Pte) {
    if pte.is_present() {
        let pfn = frame_of(pte);
        if pfn != zero_page() {
            frames::put_page(pfn);
        }
    }
}

/// What a fault handler needs to know about the frame behind `pte`.
fn present_page(pte: Pte) -> Option<PresentPage> {
    if !pte.is_present() {
        return None;
    }
    let pfn = frame_of(pte);
    let frame = if pfn == zero_page() {
        FrameUse::ZeroPage
    } else {
        match frames::with(|m| (m.buddy.kind(pfn), m.buddy.refcount(pfn))) {
            (FrameKind::UserFile, _) => FrameUse::PageCache,
            (_, refs) => FrameUse::Anon { refs: refs as u32 },
        }
    };
    Some(PresentPage { pte, frame })
}

/// Writes `new` into the entry a fault found, and returns the entry it
/// replaced. A present entry may be cached in the TLB, so it is flushed if
/// the tables are live; an empty one never is.
fn set_leaf(entry: LeafEntry, page: u64, new: Pte, active: bool) -> Result<Pte, FaultError> {
    let old = entry
        .set(&mut FrameTables, new)
        .map_err(|_| FaultError::OutOfMemory)?;
    if active && old.is_present() {
        x86_64::instructions::tlb::flush(VirtAddr::new(page));
    }
    Ok(old)
}

/// Flushes the TLB entries of `[start, end)` if `root` is live: a page at a
/// time for small ranges, the whole (non-global) TLB for big ones.
fn flush_range(root: u64, start: u64, end: u64) {
    if Cr3::read().0.start_address().as_u64() != root {
        return;
    }
    let pages = (end - start) / PAGE_SIZE;
    if pages <= 32 {
        for i in 0..pages {
            x86_64::instructions::tlb::flush(VirtAddr::new(start + i * PAGE_SIZE));
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}

impl AddressSpace {
    /// An empty user half; the kernel half shared with every address space.
    pub fn new() -> Result<AddressSpace, OutOfMemory> {
        let tables = pgtable::with_kernel(|kernel, mem| PageTables::new_user(mem, kernel))
            .ok_or(OutOfMemory)?;
        Ok(AddressSpace {
            tables,
            vmas: vmcore::VmaSet::new(),
            last_fault_vma: None,
            holds: Vec::new(),
        })
    }

    /// Takes a hold on `vma`'s file before it is mapped (room for the
    /// record first, so a failure changes nothing); `Ok(None)` if it
    /// needs none. The caller records it with [`Self::record_hold`] once
    /// the region is in.
    fn prepare_hold(&mut self, vma: &Vma) -> Result<Option<u32>, VmError> {
        match file_of(vma) {
            Some(file) if !self.holds.contains(&file) => {
                self.holds.try_reserve(1).map_err(|_| VmError::NoMemory)?;
                Ok(Some(file))
            }
            _ => Ok(None),
        }
    }

    fn record_hold(&mut self, file: Option<u32>) {
        if let Some(file) = file {
            pagecache::hold(file);
            self.holds.push(file);
        }
    }

    /// Lets go of the files no region maps any more (after an unmap). Only
    /// scans when `maybe` says a file region was touched.
    fn drop_unused_holds(&mut self, maybe: bool) {
        if !maybe {
            return;
        }
        let vmas = &self.vmas;
        self.holds.retain(|&file| {
            let used = vmas.iter().any(|v| file_of(v) == Some(file));
            if !used {
                pagecache::release(file);
            }
            used
        });
    }

    /// True if a region overlapping `[start, end)` maps a file.
    fn touches_files(&self, start: u64, end: u64) -> bool {
        self.vmas
            .overlapping(start, end)
            .any(|v| file_of(v).is_some())
    }

    /// Physical address of the PML4 (for CR3).
    pub fn root(&self) -> u64 {
        self.tables.root()
    }

    pub fn is_active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.root()
    }

    /// The regions (read-only: changes go through the methods below, which
    /// keep pages, TLB and the fault cache in step).
    pub fn vmas(&self) -> &vmcore::VmaSet {
        &self.vmas
    }

    /// Adds a region. Nothing is allocated until it is touched.
    pub fn map(&mut self, vma: Vma) -> Result<(), VmError> {
        self.last_fault_vma = None;
        let hold = self.prepare_hold(&vma)?;
        self.vmas.map(vma)?;
        self.record_hold(hold);
        Ok(())
    }

    /// Removes `[start, end)`: regions split at the edges, pages mapped there
    /// lose their frame references, empty page tables are freed.
    pub fn unmap(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.last_fault_vma = None;
        let files = self.touches_files(start, end);
        for (s, e) in self.vmas.unmap(start, end)? {
            self.unmap_pages(s, e);
        }
        self.drop_unused_holds(files);
        Ok(())
    }

    /// Drops the pages of `[start, end)` but keeps the regions
    /// (`MADV_DONTNEED`): the next touch faults in zeros (or the file) again.
    pub fn discard(&mut self, start: u64, end: u64) {
        if start < end && end <= vmcore::USER_END {
            self.unmap_pages(start, end);
        }
    }

    /// Maps a region at `[start, end)` replacing anything there
    /// (`MAP_FIXED`).
    pub fn map_fixed(&mut self, vma: Vma) -> Result<(), VmError> {
        self.last_fault_vma = None;
        let files = self.touches_files(vma.start, vma.end);
        let hold = self.prepare_hold(&vma)?;
        for (s, e) in self.vmas.map_fixed(vma)? {
            self.unmap_pages(s, e);
        }
        self.record_hold(hold);
        self.drop_unused_holds(files);
        Ok(())
    }

    /// Moves the region `[old, old + len)` to `new` (`mremap` with
    /// MREMAP_MAYMOVE): page-table entries move, frames stay where they are.
    /// The destination must be free.
    pub fn move_region(&mut self, old: u64, len: u64, new: u64) -> Result<(), VmError> {
        self.last_fault_vma = None;
        let mut moved: Vec<Vma> = Vec::new();
        moved
            .try_reserve_exact(self.vmas.overlapping(old, old + len).len())
            .map_err(|_| VmError::NoMemory)?;
        moved.extend(self.vmas.overlapping(old, old + len).copied());
        if moved.is_empty() {
            return Err(VmError::NotMapped { addr: old });
        }
        for vma in &mut moved {
            let delta = vma.start.max(old) - old;
            let start = vma.start.max(old);
            let end = vma.end.min(old + len);
            let shift = |k: vmcore::VmaKind| match k {
                vmcore::VmaKind::File { file, offset } => vmcore::VmaKind::File {
                    file,
                    offset: offset + (start - vma.start),
                },
                anon => anon,
            };
            *vma = Vma {
                start: new + delta,
                end: new + delta + (end - start),
                kind: shift(vma.kind),
                ..*vma
            };
        }
        // Room for the new regions and the split the old range may need,
        // so nothing below fails half-way.
        self.vmas.try_reserve(moved.len() + 1)?;
        for vma in &moved {
            self.vmas.map(*vma)?;
        }
        // Take the present leaves out (a walk visits only what exists, so a
        // huge sparse region costs what is mapped, not its length), then
        // put each back at its new address.
        let mut present = 0usize;
        let _ = self
            .tables
            .update_leaves(&mut FrameTables, old, old + len, &mut |_, _, _| {
                present += 1;
                LeafUpdate::Keep
            });
        let mut leaves: Vec<(u64, Pte)> = Vec::new();
        if leaves.try_reserve_exact(present).is_err() {
            // Undo the new regions: they hold nothing yet.
            let _ = self.vmas.unmap(new, new + len);
            return Err(VmError::NoMemory);
        }
        let _ = self
            .tables
            .unmap_range(&mut FrameTables, old, old + len, &mut |va, _, pte| {
                leaves.push((va, pte))
            });
        for (va, pte) in leaves {
            let to = new + (va - old);
            if self
                .tables
                .map(&mut FrameTables, to, pte.addr(), pte.flags())
                .is_err()
            {
                // No frame for a page table: the page is dropped (it
                // faults in again from its region's backing).
                release_leaf(pte);
            }
        }
        self.vmas.unmap(old, old + len)?;
        flush_range(self.root(), old, old + len);
        Ok(())
    }

    fn unmap_pages(&mut self, start: u64, end: u64) {
        debug_assert!(start < end && end <= vmcore::USER_END);
        let mut release = |_: u64, _: u64, pte: Pte| release_leaf(pte);
        // The VMA set accepted the range, so it is valid for the tables too.
        let _ = self
            .tables
            .unmap_range(&mut FrameTables, start, end, &mut release);
        flush_range(self.root(), start, end);
    }

    /// Changes the protection of `[start, end)`, splitting regions at the
    /// edges; present pages take the new protection at once (a write stays
    /// disallowed where a copy-on-write copy is still owed).
    pub fn protect(&mut self, start: u64, end: u64, prot: vmcore::Prot) -> Result<(), VmError> {
        self.last_fault_vma = None;
        let changed = self.vmas.protect(start, end, prot)?;
        for (s, e) in changed {
            let vma = *self.vmas.find(s).expect("just protected");
            let mut rewrite =
                |_: u64, _: u64, pte: Pte| LeafUpdate::Set(fault::protect_pte(&vma, pte));
            let _ = self
                .tables
                .update_leaves(&mut FrameTables, s, e, &mut rewrite);
            flush_range(self.root(), s, e);
        }
        Ok(())
    }

    /// Resolves a fault at `addr`, or says why it cannot be.
    ///
    /// The page tables are walked once: the entry found is what vmcore
    /// decides on and what gets rewritten (Linux's `vmf->pte`).
    pub fn handle_fault(
        &mut self,
        addr: u64,
        access: FaultAccess,
        mode: FaultMode,
    ) -> Result<FaultAction, FaultError> {
        let page = vmcore::page_down(addr);
        let active = self.is_active();
        for _ in 0..2 {
            let vma = match self.last_fault_vma {
                Some(v) if v.contains(addr) => Some(v),
                _ => {
                    let found = self.vmas.find_for_fault(addr).copied();
                    self.last_fault_vma = found.filter(|v| v.contains(addr));
                    found
                }
            };
            let Some(entry) = self.tables.leaf_entry(&mut FrameTables, page) else {
                vmstat::SEGV.inc();
                return Err(FaultError::Segv(SegvReason::NoRegion));
            };
            let pte = entry.pte();
            let present = present_page(pte);
            let action = fault::decide(&Fault {
                addr,
                access,
                mode,
                vma: vma.as_ref(),
                page: present,
            });
            let flags = vma.as_ref().and_then(|v| fault::leaf_flags(v, &action));
            // The frame to map. Every action but a reuse brings a reference
            // of its own to it (the zero page is not counted).
            let pfn = match action {
                FaultAction::Segv(reason) => {
                    vmstat::SEGV.inc();
                    return Err(FaultError::Segv(reason));
                }
                FaultAction::GrowStack => {
                    let vma = vma.expect("decide only grows an existing stack");
                    // The lowest address the stack may reach: the stack
                    // limit below its top (its top never moves).
                    let limit = vma.end.saturating_sub(USER_STACK_LIMIT);
                    if vma.start - page > STACK_GUARD_GAP {
                        vmstat::SEGV.inc();
                        return Err(FaultError::Segv(SegvReason::NoRegion));
                    }
                    self.last_fault_vma = None;
                    if self.vmas.grow_down(page, limit).is_err() {
                        vmstat::SEGV.inc();
                        return Err(FaultError::Segv(SegvReason::NoRegion));
                    }
                    vmstat::STACK_GROW.inc();
                    continue;
                }
                FaultAction::MapZeroPage => {
                    vmstat::ZERO_PAGE_MAPS.inc();
                    zero_page()
                }
                FaultAction::MapNewZeroed => {
                    vmstat::DEMAND_ZERO.inc();
                    frames::alloc_user(FrameKind::UserAnon, true).ok_or(FaultError::OutOfMemory)?
                }
                FaultAction::FillFromFile {
                    file,
                    offset,
                    private_copy,
                } => {
                    let cached = pagecache::get(file, offset).map_err(|e| match e {
                        pagecache::CacheError::PastEof => FaultError::PastEof,
                        pagecache::CacheError::NoMemory | pagecache::CacheError::NoFile => {
                            FaultError::OutOfMemory
                        }
                    })?;
                    if cached.major {
                        vmstat::PGMAJFAULT.inc();
                    }
                    if private_copy {
                        let copy = copy_frame(cached.pfn);
                        frames::put_page(cached.pfn);
                        copy.ok_or(FaultError::OutOfMemory)?
                    } else {
                        cached.pfn
                    }
                }
                FaultAction::CopyOnWrite => {
                    vmstat::COW_COPY.inc();
                    copy_frame(frame_of(pte)).ok_or(FaultError::OutOfMemory)?
                }
                FaultAction::ReuseWritable => {
                    if pte.is_cow() {
                        vmstat::COW_REUSE.inc();
                    }
                    frame_of(pte)
                }
                FaultAction::RefreshPte => {
                    let vma = vma.expect("refresh needs a region");
                    let new = fault::protect_pte(&vma, pte);
                    set_leaf(entry, page, new, active)?;
                    return Ok(action);
                }
                FaultAction::Spurious => {
                    x86_64::instructions::tlb::flush(VirtAddr::new(page));
                    return Ok(action);
                }
            };
            // A and D set as the access is about to set them (Linux's
            // pte_mkdirty on a write fault): the retried access then needs
            // no locked update of the entry by the MMU.
            let mut flags = flags.expect("a mapping action has flags") | PteFlags::ACCESSED;
            if access == FaultAccess::Write && flags.contains(PteFlags::WRITABLE) {
                flags |= PteFlags::DIRTY;
            }
            let new = Pte::new(pfn.addr(), flags.with(PteFlags::PRESENT));
            let reuse = action == FaultAction::ReuseWritable;
            match set_leaf(entry, page, new, active) {
                // The leaf replaced gives up its reference, unless it was
                // the same frame's.
                Ok(old) if !reuse => release_leaf(old),
                Ok(_) => {}
                Err(e) => {
                    if !reuse {
                        release_leaf(new);
                    }
                    return Err(e);
                }
            }
            return Ok(action);
        }
        vmstat::SEGV.inc();
        Err(FaultError::Segv(SegvReason::NoRegion))
    }

    /// A copy-on-write duplicate: the same regions, and every present
    /// private page shared read-only by both until one of them writes.
    pub fn fork(&mut self) -> Result<AddressSpace, OutOfMemory> {
        let mut child = AddressSpace::new()?;
        child.vmas = self.vmas.try_clone().map_err(|_| OutOfMemory)?;
        child
            .holds
            .try_reserve_exact(self.holds.len())
            .map_err(|_| OutOfMemory)?;
        for &file in &self.holds {
            pagecache::hold(file);
            child.holds.push(file);
        }
        let vmas = &self.vmas;
        let zero = zero_page();
        let tables = &mut self.tables;
        let child_tables = &mut child.tables;
        let mut refused = false;
        // One pass under the frames lock: tables for the child and a
        // reference per shared frame, without a lock round trip per page.
        let result = frames::with(|locked| {
            let m: *mut frames::PhysicalMemory = locked;
            // Consecutive pages almost always share a region.
            let mut last: Option<&Vma> = None;
            let failed = &mut refused;
            let mut share = move |va: u64, pte: Pte| -> Option<(Pte, Pte)> {
                let vma = match last {
                    Some(v) if v.contains(va) => v,
                    _ => {
                        last = vmas.find(va);
                        last?
                    }
                };
                let (parent, child, shares) = fault::fork_pte(vma, pte);
                if shares && frame_of(pte) != zero {
                    // SAFETY: `m` is the locked memory state; the walker
                    // calls this closure and the table allocator one at a
                    // time, so the two `&mut` never overlap.
                    let memory = unsafe { &mut *m };
                    // A frame shared by 65535 mappings cannot take another:
                    // the fork fails rather than leave the page out.
                    if memory.buddy.ref_inc(frame_of(pte)).is_none() {
                        *failed = true;
                        return None;
                    }
                }
                Some((parent, child))
            };
            // SAFETY: as above: exclusive use between calls.
            let mut mem = pgtable::LockedFrameTables(unsafe { &mut *m });
            tables.clone_user_for_fork(child_tables, &mut mem, &mut share)
        });
        // The parent's writable leaves just became read-only.
        if self.is_active() {
            x86_64::instructions::tlb::flush_all();
        }
        match result {
            Ok(_) if !refused => Ok(child),
            // The child holds references to what it got; dropping it
            // gives them back.
            _ => Err(OutOfMemory),
        }
    }

    /// Resident pages: (anonymous incl. zero page, file-backed).
    pub fn resident_pages(&mut self) -> (u64, u64) {
        let mut anon = 0;
        let mut file = 0;
        let zero = zero_page();
        let mut count = |_: u64, _: u64, pte: Pte| {
            let pfn = frame_of(pte);
            if pfn != zero && frames::kind(pfn) == FrameKind::UserFile {
                file += 1;
            } else {
                anon += 1;
            }
            LeafUpdate::Keep
        };
        let _ = self
            .tables
            .update_leaves(&mut FrameTables, 0, vmcore::USER_END, &mut count);
        (anon, file)
    }

    /// Page-table pages of the user half.
    pub fn page_table_pages(&mut self) -> usize {
        self.tables.user_table_count(&mut FrameTables)
    }

    /// The page walk for one address, level by level.
    pub fn walk(&mut self, addr: u64) -> Vec<WalkStep> {
        self.tables
            .translate_walk(&mut FrameTables, addr)
            .unwrap_or_default()
    }

    pub fn translate(&mut self, addr: u64) -> Option<(u64, Pte)> {
        self.tables
            .translate(&mut FrameTables, addr)
            .map(|(pa, pte, _)| (pa, pte))
    }

    /// Reads user memory through the direct map, for the kernel's own
    /// inspection (tests, `pmap`): no faults, `None` if not present.
    pub fn peek(&mut self, addr: u64) -> Option<u8> {
        let (pa, _) = self.translate(addr)?;
        // SAFETY: `pa` is a present frame of this address space; the direct
        // map covers it; a byte read has no alignment needs.
        Some(unsafe { *(super::layout::phys_to_virt(pa) as *const u8) })
    }
}

/// A fresh user frame with the contents of `src`.
fn copy_frame(src: Pfn) -> Option<Pfn> {
    let dst = frames::alloc_user(FrameKind::UserAnon, false)?;
    // SAFETY: `dst` is ours alone; `src` is a mapped frame we hold a
    // reference to; both are whole pages in the direct map.
    unsafe {
        core::ptr::copy_nonoverlapping(
            DirectMap.frame_ptr(src),
            DirectMap.frame_ptr(dst),
            PAGE_SIZE as usize,
        )
    };
    Some(dst)
}

impl Drop for AddressSpace {
    /// Gives back every frame and table: leaves drop their frame
    /// references, user tables and the root go back to the buddy allocator.
    fn drop(&mut self) {
        if self.is_active() {
            switch_to(None);
        }
        let mut release = |_: u64, pte: Pte| release_leaf(pte);
        self.tables.teardown_user(&mut FrameTables, &mut release);
        frames::free(Pfn::from_addr(self.root()), 0).expect("address space root");
        // No region maps anything now: the files may go.
        for file in self.holds.drain(..) {
            pagecache::release(file);
        }
    }
}

/// The address space user faults are resolved in.
pub type SharedAddressSpace = Arc<Mutex<AddressSpace>>;

static CURRENT: IrqMutex<Option<SharedAddressSpace>> = IrqMutex::new(None);

/// Makes `aspace` current (CR3); `None` returns to the kernel's own tables.
pub fn switch_to(aspace: Option<SharedAddressSpace>) {
    let _irq = IrqOff::new();
    let root = match &aspace {
        Some(a) => a.lock().root(),
        None => pgtable::with_kernel(|k, _| k.root()),
    };
    switch_to_root(aspace, root);
}

/// Like [`switch_to`] with the root already known (the scheduler caches
/// it, and must not lock an address space that an interrupted thread may
/// hold).
pub fn switch_to_root(aspace: Option<SharedAddressSpace>, root: u64) {
    let frame = PhysFrame::containing_address(PhysAddr::new(root));
    if Cr3::read().0 != frame {
        // SAFETY: `root` is a PML4 whose kernel half is the kernel's own
        // (every address space copies it), so the code and stack running
        // now stay mapped across the switch.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }
    *CURRENT.lock() = aspace;
}

pub fn current() -> Option<SharedAddressSpace> {
    CURRENT.lock().clone()
}
