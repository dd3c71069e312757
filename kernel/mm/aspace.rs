//! Address spaces: vmcore's [`VmSpace`] (regions, page tables and every
//! operation on them) on real memory, plus the page-cache files its regions
//! hold.
//!
//! Mapping a region allocates nothing. Pages arrive on first touch: a read
//! of private anonymous memory maps the one shared zero page read-only, a
//! write maps a fresh zeroed frame, a file page comes from the page cache.
//! `fork` shares every private page copy-on-write; the first write on either
//! side copies it (or, if the other side has let go, just makes it writable
//! again). vmcore decides each case and carries it out; this module supplies
//! the physical side: frames as [`FrameRef`] handles, the page cache, the
//! TLB ([`KernelTlb`]), and a [`Gather`] per operation that flushes before
//! any frame taken out goes back.

use alloc::sync::Arc;
use alloc::vec::Vec;
use mmcore::Pfn;
use spin::Mutex;
use vmcore::fault::{FaultMode, FrameUse};
use vmcore::gather::Gather;
use vmcore::paging::{PageWalker, WalkAction, WalkStep};
use vmcore::space::{FaultBackend, FaultEvent, FilePage, SwapPage, VmSpace};
use vmcore::swap::SwapEntry;
use vmcore::{FaultAccess, FaultAction, PageTables, Pte, VmError, Vma};

use super::commit::{self, Charge};
use super::frame_ref::{self, FrameRef, KernelTlb};
use super::frames;
use super::kalloc;
use super::pagecache::{self, MapRoom};
use super::pgtable::{self, FrameTables, LockedFrameTables};
use super::vmstat;
use crate::arch::mmu;
use crate::arch::sync::{IrqMutex, IrqOff};

pub use vmcore::space::{FaultError, STACK_GUARD_GAP};

/// Pages [`AddressSpace::swap_in_batch`] brings in at most per call.
pub const SWAP_IN_BATCH: usize = 32;

/// The one frame of zeros every untouched anonymous page reads from.
pub fn zero_page() -> Pfn {
    FrameRef::zero_page().pfn()
}

#[derive(Debug)]
pub struct OutOfMemory;

pub struct AddressSpace {
    space: VmSpace,
    /// The reverse-map family: this address space and its fork
    /// descendants, whose anonymous pages sit at the same addresses.
    family: u32,
    /// This address space's name in the page cache's reverse map (unique,
    /// never reused).
    id: u64,
    /// The page-cache files (ramdisk files, shared anonymous objects) some
    /// region here maps, each holding one [`pagecache::hold`]: a shared
    /// anonymous object lives while any address space holds it. Its
    /// regions of each are registered in that file's reverse map
    /// ([`pagecache::set_mappings`]) after every change to them.
    holds: Vec<u32>,
    /// The commit charge of the charged regions ([`commit`]): always their
    /// pages, given back when the space is dropped.
    committed: Charge,
    /// Where exec put the program and its arguments (`/proc/PID/stat`,
    /// `cmdline`, `exe`); a fork copies it.
    pub image: ImageInfo,
    /// `VmPeak` and `VmHWM`: sampled before every change that can shrink
    /// the space ([`AddressSpace::note_hiwater`]).
    hiwater: vmcore::hiwater::Hiwater,
}

/// What exec records about the program in its address space (Linux's
/// `mm_struct` fields of the same names): the text and data segments, the
/// initial stack pointer, the argument and environment strings on the
/// stack, and the program's path. All zero for a space exec did not make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageInfo {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
    /// The program file (a ramdisk path), for `/proc/PID/exe`.
    pub exe: Option<&'static str>,
}

/// The file a region maps, if any.
fn file_of(vma: &Vma) -> Option<u32> {
    match vma.kind {
        vmcore::VmaKind::File { file, .. } => Some(file),
        vmcore::VmaKind::Anonymous => None,
    }
}

/// The physical side of a fault: frames from the buddy allocator (through
/// the user reserve), the page cache, swap, and vmstat's counters.
struct KernelFaults {
    family: u32,
    /// Frames prepared before the lock was taken, for the faulting page
    /// ([`AddressSpace::handle_fault_prepared`]).
    prepared: Prepared,
    /// Stop a demand-zero fill or a private file copy that has no prepared
    /// frame (the caller clears or copies one unlocked).
    defer: bool,
}

/// What a fault of a threaded address space prepares with it unlocked
/// ([`AddressSpace::handle_fault_prepared`]); what the fault did not use
/// stays here, for the caller to drop once it has unlocked.
#[derive(Default)]
pub struct Prepared {
    /// A zeroed frame, for a demand-zero fill.
    pub zeroed: Option<FrameRef>,
    /// A copy of `source`, for a private copy of a file page (used only if
    /// the cache still has that frame).
    pub copy: Option<FrameRef>,
    /// The page-cache frame a first pass stopped at
    /// ([`FaultError::CopyWanted`]): the one to copy. This reference keeps
    /// it from being freed and reused until `Prepared` is dropped, so the
    /// same address in the cache at the second pass is the same page.
    pub source: Option<FrameRef>,
}

/// Frames an unmap took out of an address space's tables, already
/// flushed from every CPU's TLB, whose references go back (to the LRU and
/// the allocator) when this is dropped: after the address-space lock
/// ([`AddressSpace::unmap_deferred`]).
#[must_use = "dropping it frees the unmapped frames: drop it after the address-space lock"]
pub struct Unmapped(Gather<KernelTlb>);

impl Drop for Unmapped {
    fn drop(&mut self) {
        // Flushed already (and its tables freed): this only releases.
        self.0.finish(&mut FrameTables);
    }
}

/// Fresh reverse-map family ids.
static NEXT_FAMILY: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(1);

/// Fresh address-space ids (0 is none).
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// The id of the one address space whose end someone waits for (the OOM
/// killer's victim), 0 for none: its [`Drop`] clears it once every frame
/// is back. An `Arc`'s strong count cannot say that: it reaches 0 before
/// the teardown starts, and a killer on another CPU that saw 0 while the
/// frames were still going back killed a second process.
static AWAITED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Called at the start of every address space's teardown with its id,
/// after the last reference went (tests: a slow teardown on demand).
static TEARDOWN_HOOK: crate::arch::hook::Hook<fn(u64)> = crate::arch::hook::Hook::empty();

/// From now until address space `id` is torn down and its frames are
/// back, [`teardown_awaited`]`(id)` is true (one at a time: a later call
/// replaces the earlier). Call before anything can drop its last
/// reference.
pub fn await_teardown(id: u64) {
    AWAITED.store(id, core::sync::atomic::Ordering::SeqCst);
}

/// True while address space `id`, awaited with [`await_teardown`], still
/// holds frames.
pub fn teardown_awaited(id: u64) -> bool {
    id != 0 && AWAITED.load(core::sync::atomic::Ordering::SeqCst) == id
}

/// Installs `f` to run at the start of every teardown (tests).
pub fn set_teardown_hook(f: fn(u64)) {
    TEARDOWN_HOOK.set(f);
}

impl FaultBackend for KernelFaults {
    type Frame = FrameRef;

    fn zero_page(&mut self) -> FrameRef {
        FrameRef::zero_page()
    }

    fn frame_use(&mut self, addr: u64) -> FrameUse {
        frame_ref::frame_use(Pfn::from_addr(addr))
    }

    fn alloc_zeroed(&mut self, va: u64) -> Option<FrameRef> {
        FrameRef::alloc_anon(true, self.family, va)
    }

    fn copy_of(&mut self, src: u64, va: u64) -> Option<FrameRef> {
        frame_ref::copy_of(Pfn::from_addr(src), self.family, va)
    }

    fn swap_in(&mut self, entry: SwapEntry, va: u64) -> Result<SwapPage<FrameRef>, FaultError> {
        let page = super::swap::swap_in(entry, self.family, va).ok_or(FaultError::OutOfMemory)?;
        Ok(SwapPage {
            frame: page.frame,
            major: page.major,
            exclusive: page.exclusive,
        })
    }

    fn file_page(&mut self, file: u32, offset: u64) -> Result<FilePage<FrameRef>, FaultError> {
        let page = pagecache::get(file, offset).map_err(|e| match e {
            // A swapped-out page that could not be read back (Linux's shmem
            // fault on a swap-in I/O error), or a tmpfs page past the file
            // system's size limit: SIGBUS.
            pagecache::CacheError::PastEof
            | pagecache::CacheError::Io
            | pagecache::CacheError::NoSpace => FaultError::PastEof,
            pagecache::CacheError::NoMemory | pagecache::CacheError::NoFile => {
                FaultError::OutOfMemory
            }
        })?;
        Ok(FilePage {
            frame: page.frame,
            major: page.major,
        })
    }

    #[inline(always)]
    fn take_prepared(&mut self) -> Option<FrameRef> {
        self.prepared.zeroed.take()
    }

    #[inline(always)]
    fn take_prepared_copy(&mut self, src: u64) -> Option<FrameRef> {
        let source = self.prepared.source.as_ref()?;
        if source.pfn().addr() != src {
            return None;
        }
        self.prepared.copy.take()
    }

    fn hold_source(&mut self, src: FrameRef) {
        self.prepared.source = Some(src);
    }

    #[inline(always)]
    fn defer_new_frames(&mut self) -> bool {
        self.defer
    }

    fn count(&mut self, event: FaultEvent) {
        match event {
            FaultEvent::Segv => vmstat::SEGV.inc(),
            FaultEvent::StackGrow => vmstat::STACK_GROW.inc(),
            FaultEvent::ZeroPageMap => vmstat::ZERO_PAGE_MAPS.inc(),
            FaultEvent::DemandZero => vmstat::DEMAND_ZERO.inc(),
            FaultEvent::MajorFault => vmstat::PGMAJFAULT.inc(),
            FaultEvent::CowCopy => vmstat::COW_COPY.inc(),
            FaultEvent::CowReuse => vmstat::COW_REUSE.inc(),
        }
    }
}

impl AddressSpace {
    /// An empty user half; the kernel half shared with every address space.
    pub fn new() -> Result<AddressSpace, OutOfMemory> {
        let tables = pgtable::with_kernel(|kernel, mem| PageTables::new_user(mem, kernel))
            .ok_or(OutOfMemory)?;
        Ok(AddressSpace {
            space: VmSpace::new(tables),
            family: NEXT_FAMILY.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            id: NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            holds: Vec::new(),
            committed: Charge::none(),
            image: ImageInfo::default(),
            hiwater: vmcore::hiwater::Hiwater::new(),
        })
    }

    /// Runs a change to the space with a gather for it (which flushes this
    /// CPU's TLB only if the address space is loaded here), then finishes
    /// the gather: flush, then free what left the tables.
    fn changing<R>(
        &mut self,
        f: impl FnOnce(&mut VmSpace, &mut FrameTables, &mut Gather<KernelTlb>) -> R,
    ) -> R {
        let mut gather = Gather::new(KernelTlb::for_root(self.root()));
        let result = f(&mut self.space, &mut FrameTables, &mut gather);
        gather.finish(&mut FrameTables);
        result
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
    /// scans when `maybe` says a file region was touched. The change's
    /// reverse-map rooms go back first: a file let go of may die and its
    /// slot serve a new file, which a room given back later would take
    /// from.
    fn drop_unused_holds(&mut self, maybe: bool, rooms: Vec<MapRoom>) {
        drop(rooms);
        if !maybe {
            return;
        }
        let (vmas, id) = (self.space.vmas(), self.id);
        self.holds.retain(|&file| {
            let used = vmas.iter().any(|v| file_of(v) == Some(file));
            if !used {
                pagecache::set_mappings(file, id, core::iter::empty());
                pagecache::release(file);
            }
            used
        });
    }

    /// Room in the reverse map of every file held (and `new`) for `more`
    /// more regions of this space: what one change to the regions may add
    /// (a split adds one per edge, a new region one). Before the change,
    /// so that running out of memory refuses it unchanged; keep what it
    /// returns until the change's file maps are synced.
    fn reserve_file_map(&self, new: Option<u32>, more: usize) -> Result<Vec<MapRoom>, VmError> {
        let mut rooms = kalloc::try_with_capacity(self.holds.len() + usize::from(new.is_some()))
            .map_err(|_| VmError::NoMemory)?;
        for &file in self.holds.iter().chain(new.iter()) {
            rooms.push(pagecache::reserve_mappings(file, more).map_err(|_| VmError::NoMemory)?);
        }
        Ok(rooms)
    }

    /// Registers this space's regions of `file` in its reverse map (they
    /// replace the ones registered before).
    fn sync_file_map(&self, file: u32) {
        let id = self.id;
        pagecache::set_mappings(
            file,
            id,
            self.space.vmas().iter().filter_map(|v| match v.kind {
                vmcore::VmaKind::File { file: f, offset } if f == file => {
                    Some(pagecache::Mapping {
                        space: id,
                        start: v.start,
                        offset,
                        len: v.end - v.start,
                    })
                }
                _ => None,
            }),
        );
    }

    /// [`Self::sync_file_map`] for every file held (after a change to
    /// regions that may have split, moved or removed file regions).
    fn sync_all_file_maps(&self) {
        for &file in &self.holds {
            self.sync_file_map(file);
        }
    }

    /// True if a region overlapping `[start, end)` maps a file.
    fn touches_files(&self, start: u64, end: u64) -> bool {
        self.space
            .vmas()
            .overlapping(start, end)
            .any(|v| file_of(v).is_some())
    }

    /// Physical address of the PML4 (for CR3).
    pub fn root(&self) -> u64 {
        self.space.root()
    }

    pub fn is_active(&self) -> bool {
        mmu::is_active(self.root())
    }

    /// The regions (read-only: changes go through the methods below, which
    /// keep pages, TLB and the fault cache in step).
    pub fn vmas(&self) -> &vmcore::VmaSet {
        self.space.vmas()
    }

    /// Adds a region. Nothing is allocated until it is touched; a charged
    /// region is charged now (or refused: [`VmError::Overcommit`]).
    pub fn map(&mut self, vma: Vma) -> Result<(), VmError> {
        let charge = commit::charge(vma.committed_pages())?;
        let hold = self.prepare_hold(&vma)?;
        let _room = match file_of(&vma) {
            Some(file) => {
                Some(pagecache::reserve_mappings(file, 1).map_err(|_| VmError::NoMemory)?)
            }
            None => None,
        };
        self.space.map(vma)?;
        self.record_hold(hold);
        if let Some(file) = file_of(&vma) {
            self.sync_file_map(file);
        }
        self.committed.absorb(charge);
        Ok(())
    }

    /// The process's resource limits (this address space enforces
    /// `RLIMIT_AS`, `RLIMIT_DATA` and `RLIMIT_STACK`: vmcore's `rlimit`).
    pub fn rlimits(&self) -> &vmcore::rlimit::Rlimits {
        self.space.rlimits()
    }

    /// The resource limits, to change.
    pub fn rlimits_mut(&mut self) -> &mut vmcore::rlimit::Rlimits {
        self.space.rlimits_mut()
    }

    /// Locks `[start, end)` against reclaim (`mlock`).
    pub fn mlock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.space.mlock(start, end)
    }

    /// Unlocks `[start, end)` (`munlock`).
    pub fn munlock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.space.munlock(start, end)
    }

    /// Unlocks everything and ends `MCL_FUTURE` (`munlockall`).
    pub fn munlock_all(&mut self) {
        self.space.munlock_all();
    }

    /// `mlockall(MCL_FUTURE)`: `Some(onfault)` while regions mapped from
    /// now on are locked.
    pub fn lock_future(&self) -> Option<bool> {
        self.space.locked().future()
    }

    /// Sets or clears `MCL_FUTURE`.
    pub fn set_lock_future(&mut self, future: Option<bool>) {
        self.space.set_lock_future(future);
    }

    /// The locked ranges, in order.
    pub fn locked_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.space.locked().iter()
    }

    /// Bytes of `[start, end)` already locked.
    pub fn locked_bytes_in(&self, start: u64, end: u64) -> u64 {
        self.space.locked().bytes_in(start, end)
    }

    /// Resident pages as `VmRSS` counts them (every present leaf but the
    /// shared zero page).
    pub fn rss_pages(&mut self) -> u64 {
        // The zero page is told by its address alone: no frames lock per
        // leaf (munmap samples VmHWM with this walk, and processes on other
        // CPUs would meet on that lock).
        struct Count(u64, u64);
        impl PageWalker for Count {
            fn leaf(&mut self, _: u64, size: u64, pte: Pte) {
                if pte.addr() != self.1 {
                    self.0 += (size / vmcore::PAGE_SIZE).max(1);
                }
            }
        }
        let mut count = Count(0, zero_page().addr());
        let _ = self
            .space
            .tables()
            .walk(&mut FrameTables, 0, vmcore::USER_END, &mut count);
        count.0
    }

    /// Samples `VmPeak`/`VmHWM` before `[start, end)` shrinks (Linux's
    /// `update_hiwater_rss` and `update_hiwater_vm`): a walk of the present
    /// pages, skipped when nothing is mapped there.
    fn note_hiwater(&mut self, start: u64, end: u64) {
        if self.space.vmas().overlapping(start, end).next().is_none() {
            return;
        }
        let vm = self.space.vmas().total_bytes() / vmcore::PAGE_SIZE;
        if self.hiwater.rss_may_exceed_peak() {
            let rss = self.rss_pages();
            self.hiwater.update(rss, vm);
        } else {
            // The faults and unmaps since the last walk cannot have put
            // more pages in than the peak (see `Hiwater`): no walk.
            self.hiwater.update_vm(vm);
        }
    }

    /// The peaks sampled so far (readers take the larger of each and the
    /// size now).
    pub fn hiwater(&self) -> vmcore::hiwater::Hiwater {
        self.hiwater
    }

    /// Whether the page at `va` is locked: reclaim passes it over.
    pub fn is_locked(&self, va: u64) -> bool {
        self.space.locked().contains(va)
    }

    /// Bytes locked (`VmLck` in `/proc/PID/status`).
    pub fn locked_bytes(&self) -> u64 {
        self.space.locked().bytes()
    }

    /// This address space's id in the page cache's reverse map.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Pages this address space has committed (its charged regions).
    pub fn committed_pages(&self) -> u64 {
        debug_assert_eq!(
            self.committed.pages(),
            self.space.vmas().committed_pages(0, vmcore::USER_END)
        );
        self.committed.pages()
    }

    /// Removes `[start, end)`: regions split at the edges, pages mapped there
    /// lose their frame references (after the flush), empty page tables are
    /// freed.
    pub fn unmap(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        self.unmap_deferred(start, end).map(drop)
    }

    /// [`Self::unmap`], but the references to the frames it took out of
    /// the tables go back when the returned [`Unmapped`] is dropped: drop
    /// it after this address space's lock, so other threads' faults do
    /// not wait for the frees (the TLBs were flushed before it returns:
    /// no CPU can reach the pages any more).
    pub fn unmap_deferred(&mut self, start: u64, end: u64) -> Result<Unmapped, VmError> {
        self.note_hiwater(start, end);
        let files = self.touches_files(start, end);
        let rooms = if files {
            // Unmapping the middle of a region splits it.
            self.reserve_file_map(None, 1)?
        } else {
            Vec::new()
        };
        let charged = self.space.vmas().committed_pages(start, end);
        let mut gather = Gather::new(KernelTlb::for_root(self.root()));
        let result = self.space.unmap(&mut FrameTables, &mut gather, start, end);
        gather.flush_keep_frames(&mut FrameTables);
        let gone = gather.held_frames().filter(|f| !f.is_zero_page()).count();
        self.hiwater.shrank(gone as u64);
        if result.is_ok() {
            self.committed.give_back(charged);
        }
        if files {
            self.sync_all_file_maps();
        }
        self.drop_unused_holds(files, rooms);
        result.map(|()| Unmapped(gather))
    }

    /// Drops the pages of `[start, end)` but keeps the regions
    /// (`MADV_DONTNEED`): the next touch faults in zeros (or the file) again.
    pub fn discard(&mut self, start: u64, end: u64) {
        self.note_hiwater(start, end);
        self.changing(|space, mem, gather| space.discard(mem, gather, start, end));
    }

    /// Maps a region at `[start, end)` replacing anything there
    /// (`MAP_FIXED`).
    pub fn map_fixed(&mut self, vma: Vma) -> Result<(), VmError> {
        self.note_hiwater(vma.start, vma.end);
        let files = self.touches_files(vma.start, vma.end);
        // Charged: the new region, less what it replaces.
        let replaced = self.space.vmas().committed_pages(vma.start, vma.end);
        let charge = commit::charge(vma.committed_pages().saturating_sub(replaced))?;
        let hold = self.prepare_hold(&vma)?;
        // The new region, and a split of the one it lands in.
        let rooms = self.reserve_file_map(file_of(&vma), 2)?;
        let result = self.changing(|space, mem, gather| space.map_fixed(mem, gather, vma));
        if files || file_of(&vma).is_some() {
            // (Before `record_hold`: a failed map left no region of a new
            // file, and the other files' regions are as they are.)
            self.sync_all_file_maps();
        }
        result?;
        self.record_hold(hold);
        if let Some(file) = file_of(&vma) {
            self.sync_file_map(file);
        }
        self.drop_unused_holds(files, rooms);
        self.committed.absorb(charge);
        self.committed
            .give_back(replaced.saturating_sub(vma.committed_pages()));
        Ok(())
    }

    /// Moves the region `[old, old + len)` to `new` (`mremap` with
    /// MREMAP_MAYMOVE): page-table entries move, frames stay where they are.
    /// The destination must be free. On failure nothing moved.
    pub fn move_region(&mut self, old: u64, len: u64, new: u64) -> Result<(), VmError> {
        let files = self.touches_files(old, old.saturating_add(len));
        let _rooms = if files {
            // The pieces move; the regions they left may split at both
            // edges.
            self.reserve_file_map(None, 2)?
        } else {
            Vec::new()
        };
        let result =
            self.changing(|space, mem, gather| space.move_region(mem, gather, old, len, new));
        if files {
            self.sync_all_file_maps();
        }
        result
    }

    /// Changes the protection of `[start, end)`, splitting regions at the
    /// edges; present pages take the new protection at once (a write stays
    /// disallowed where a copy-on-write copy is still owed).
    /// A private region made writable is charged first (refused:
    /// [`VmError::Overcommit`]).
    pub fn protect(&mut self, start: u64, end: u64, prot: vmcore::Prot) -> Result<(), VmError> {
        let charge = commit::charge(self.space.vmas().protect_charge(start, end, prot))?;
        let files = self.touches_files(start, end);
        let _rooms = if files {
            // A split at each edge.
            self.reserve_file_map(None, 2)?
        } else {
            Vec::new()
        };
        let result =
            self.changing(|space, mem, gather| space.protect(mem, gather, start, end, prot));
        if files {
            self.sync_all_file_maps();
        }
        result?;
        self.committed.absorb(charge);
        Ok(())
    }

    /// Resolves a fault at `addr`, or says why it cannot be (vmcore's
    /// executor on the kernel's frames).
    pub fn handle_fault(
        &mut self,
        addr: u64,
        access: FaultAccess,
        mode: FaultMode,
    ) -> Result<FaultAction, FaultError> {
        let mut none = Prepared::default();
        self.handle_fault_prepared(addr, access, mode, &mut none, false)
    }

    /// [`Self::handle_fault`] for a fault whose new frame is cleared or
    /// copied with this address space unlocked (threads of one process
    /// fault in parallel): with `defer`, a demand-zero fill that has no
    /// zeroed frame in `prepared` stops with
    /// [`FaultError::ZeroedFrameWanted`], and a private copy of a file page
    /// with no copy of it stops with [`FaultError::CopyWanted`], leaving
    /// the page-cache frame in `prepared.source` (having changed nothing
    /// but a stack growth); prepared frames (from [`Self::prepare_zeroed`]
    /// and [`Self::prepare_copy`] for this page) are used by the fill that
    /// wants them and otherwise left there for the caller to drop once
    /// unlocked.
    pub fn handle_fault_prepared(
        &mut self,
        addr: u64,
        access: FaultAccess,
        mode: FaultMode,
        prepared: &mut Prepared,
        defer: bool,
    ) -> Result<FaultAction, FaultError> {
        // Stack growth is charged first; refused, the fault is a SIGSEGV
        // (Linux: `acct_stack_growth`).
        // Most faults land in the last fault's region (cached), where no
        // stack can grow: they take no charge at all.
        let growth = if self.space.may_grow_stack_at(addr) {
            self.space.vmas().stack_growth_charge(addr)
        } else {
            0
        };
        let charge = if growth > 0 {
            let Ok(charge) = commit::charge(growth) else {
                vmstat::SEGV.inc();
                return Err(FaultError::Segv(vmcore::SegvReason::NoRegion));
            };
            Some(charge)
        } else {
            None
        };
        // A fault below a grows-down region may grow it (a file region's
        // start and offset move: its reverse-map entry follows).
        let may_grow = self.space.may_grow_stack_at(addr) && self.space.vmas().find(addr).is_none();
        let mut backend = KernelFaults {
            family: self.family,
            prepared: core::mem::take(prepared),
            defer,
        };
        let result = self.changing(|space, mem, gather| {
            space.handle_fault(mem, &mut backend, gather, addr, access, mode)
        });
        // Unused (refused): the caller drops it after unlocking.
        *prepared = backend.prepared;
        if result.is_ok() {
            // At most one page more is resident (see `Hiwater`).
            self.hiwater.grew(1);
        }
        if may_grow {
            if let Some(file) = self.space.vmas().find(addr).and_then(file_of) {
                self.sync_file_map(file);
            }
        }
        // Kept if the stack did grow (even if the fault then failed).
        if let Some(charge) = charge {
            if self.space.vmas().find(addr).is_some() {
                self.committed.absorb(charge);
            }
        }
        result
    }

    /// A fresh zeroed frame for the anonymous page at `addr` of an address
    /// space of reverse-map `family`, for [`Self::handle_fault_prepared`]:
    /// call with the address space unlocked (the clear is what other
    /// threads' faults would otherwise wait behind). `None`: out of memory.
    pub fn prepare_zeroed(family: u32, addr: u64) -> Option<FrameRef> {
        FrameRef::alloc_anon(true, family, vmcore::page_down(addr))
    }

    /// A private copy of the page-cache frame `src` for the page at `addr`,
    /// as [`Self::prepare_zeroed`] (call unlocked; `None`: out of memory).
    pub fn prepare_copy(src: &FrameRef, family: u32, addr: u64) -> Option<FrameRef> {
        frame_ref::copy_of(src.pfn(), family, vmcore::page_down(addr))
    }

    /// A copy-on-write duplicate: the same regions, and every present
    /// private page shared read-only by both until one of them writes.
    /// The child is charged what the parent is (Linux's `dup_mmap`);
    /// refused, the fork fails.
    pub fn fork(&mut self) -> Result<AddressSpace, OutOfMemory> {
        let charge = commit::charge(self.committed_pages()).map_err(|_| OutOfMemory)?;
        let mut child = AddressSpace::new()?;
        child.family = self.family;
        child.committed = charge;
        child.image = self.image;
        // The child's pages come in by copying the parent's leaves, which
        // the resident bound does not follow.
        child.hiwater.forget();
        child
            .holds
            .try_reserve_exact(self.holds.len())
            .map_err(|_| OutOfMemory)?;
        for &file in &self.holds {
            pagecache::hold(file);
            child.holds.push(file);
        }
        // Room for the child's regions in each file's reverse map.
        let mut rooms = kalloc::try_with_capacity(self.holds.len()).map_err(|_| OutOfMemory)?;
        for &file in &self.holds {
            let regions = self
                .space
                .vmas()
                .iter()
                .filter(|v| file_of(v) == Some(file))
                .count();
            rooms.push(pagecache::reserve_mappings(file, regions).map_err(|_| OutOfMemory)?);
        }
        self.space
            .fork_regions(&mut child.space)
            .map_err(|_| OutOfMemory)?;
        child.sync_all_file_maps();
        // One pass under the frames lock: tables for the child and a
        // reference per shared frame, without a lock round trip per page.
        // (The gather only records the range there; it flushes and frees
        // after, outside the lock.)
        let result = self.changing(|space, _, gather| {
            frames::with(|locked| {
                space.fork_pages(&mut child.space, &mut LockedFrameTables(locked), gather)
            })
        });
        // On failure the child holds references to what it got; dropping
        // it gives them back.
        result.map(|()| child).map_err(|_| OutOfMemory)
    }

    /// The reverse-map family (shared with fork relatives).
    pub fn family(&self) -> u32 {
        self.family
    }

    /// Reclaim: clears the accessed bit of the leaf at `va` if it maps the
    /// frame at `frame`; whether it was set, or `None` if not mapped here.
    pub fn clear_young(&mut self, va: u64, frame: u64) -> Option<bool> {
        self.changing(|space, mem, gather| space.clear_young(mem, gather, va, frame))
    }

    /// Reclaim: clears the leaf at `va` if it maps the frame at `frame` (a
    /// page-cache page going back to its file); its old dirty bit, or
    /// `None` if not mapped here. The TLB is flushed before the leaf's
    /// frame reference goes.
    pub fn unmap_frame(&mut self, va: u64, frame: u64) -> Option<bool> {
        self.changing(|space, mem, gather| space.unmap_frame(mem, gather, va, frame))
    }

    /// Reclaim: replaces the leaf at `va` mapping `frame` by `entry` (whose
    /// slot reference the caller took); the old dirty bit, or `None`.
    pub fn unmap_to_swap(&mut self, va: u64, frame: u64, entry: SwapEntry) -> Option<bool> {
        self.changing(|space, mem, gather| space.unmap_to_swap(mem, gather, va, frame, entry))
    }

    /// Swapped-out pages (leaves recording swap entries).
    pub fn swap_pages(&self) -> u64 {
        struct Count(u64);
        impl PageWalker for Count {
            fn swapped(&mut self, _: u64, _: Pte) {
                self.0 += 1;
            }
        }
        let mut count = Count(0);
        let _ = self
            .space
            .tables()
            .walk(&mut FrameTables, 0, vmcore::USER_END, &mut count);
        count.0
    }

    /// `swapoff`: faults back in up to [`SWAP_IN_BATCH`] swapped-out pages
    /// at or above `from` (a kernel read, or a write where the region is
    /// not readable). Returns the pages brought in and where to go on
    /// (`None`: nothing swapped above), or the address that failed and why.
    pub fn swap_in_batch(&mut self, from: u64) -> Result<(u64, Option<u64>), (u64, FaultError)> {
        struct Batch {
            vas: [u64; SWAP_IN_BATCH],
            n: usize,
        }
        impl PageWalker for Batch {
            fn entry(&mut self, _: vmcore::paging::Level, _: u64, _: Pte) -> WalkAction {
                if self.n == SWAP_IN_BATCH {
                    WalkAction::Skip
                } else {
                    WalkAction::Descend
                }
            }
            fn swapped(&mut self, va: u64, _: Pte) {
                if self.n < SWAP_IN_BATCH {
                    self.vas[self.n] = va;
                    self.n += 1;
                }
            }
        }
        let mut batch = Batch {
            vas: [0; SWAP_IN_BATCH],
            n: 0,
        };
        let _ = self
            .space
            .tables()
            .walk(&mut FrameTables, from, vmcore::USER_END, &mut batch);
        for &va in &batch.vas[..batch.n] {
            let readable = self
                .vmas()
                .find(va)
                .is_none_or(|v| v.prot.contains(vmcore::Prot::READ));
            let access = if readable {
                FaultAccess::Read
            } else {
                FaultAccess::Write
            };
            self.handle_fault(va, access, FaultMode::Kernel)
                .map_err(|e| (va, e))?;
        }
        let next = (batch.n == SWAP_IN_BATCH).then(|| batch.vas[batch.n - 1] + 4096);
        Ok((batch.n as u64, next))
    }

    /// Resident pages: (anonymous incl. zero page, file-backed).
    pub fn resident_pages(&mut self) -> (u64, u64) {
        struct Count {
            anon: u64,
            file: u64,
        }
        impl PageWalker for Count {
            fn leaf(&mut self, _: u64, _: u64, pte: Pte) {
                match frame_ref::frame_use(Pfn::from_addr(pte.addr())) {
                    FrameUse::PageCache => self.file += 1,
                    _ => self.anon += 1,
                }
            }
        }
        let mut count = Count { anon: 0, file: 0 };
        let _ = self
            .space
            .tables()
            .walk(&mut FrameTables, 0, vmcore::USER_END, &mut count);
        (count.anon, count.file)
    }

    /// Page-table pages of the user half.
    pub fn page_table_pages(&mut self) -> usize {
        self.space.tables().user_table_count(&mut FrameTables)
    }

    /// The page walk for one address, level by level.
    pub fn walk(&mut self, addr: u64) -> Vec<WalkStep> {
        self.space
            .tables()
            .translate_walk(&mut FrameTables, addr)
            .unwrap_or_default()
    }

    pub fn translate(&mut self, addr: u64) -> Option<(u64, Pte)> {
        self.space
            .tables()
            .translate(&mut FrameTables, addr)
            .map(|(pa, pte, _)| (pa, pte))
    }

    /// Walks the page tables over `[start, end)` (no faults, nothing
    /// changed): `/proc/PID/smaps` and `pagemap` read leaves, swap entries
    /// and holes through it.
    pub fn walk_pages(
        &mut self,
        start: u64,
        end: u64,
        walker: &mut impl vmcore::paging::PageWalker,
    ) {
        let _ = self
            .space
            .tables()
            .walk(&mut FrameTables, start, end, walker);
    }

    /// Reads user memory through the direct map, for the kernel's own
    /// inspection (tests, `pmap`): no faults, `None` if not present.
    pub fn peek(&mut self, addr: u64) -> Option<u8> {
        let (pa, _) = self.translate(addr)?;
        Some(frame_ref::read_byte(pa))
    }
}

impl Drop for AddressSpace {
    /// Gives back every frame and table: leaves drop their frame
    /// references, user tables and the root go back to the buddy allocator.
    fn drop(&mut self) {
        if let Some(f) = TEARDOWN_HOOK.get() {
            f(self.id);
        }
        if self.is_active() {
            switch_to(None);
        }
        // Other CPUs may still have it loaded lazily (`forget_current`):
        // they leave before its tables go.
        crate::arch::tlb::leave_everywhere(self.root());
        self.changing(|space, mem, gather| space.teardown(mem, gather));
        // No fault guesses about this space once its root may be reused.
        super::fault::forget_root(self.root());
        frames::free(Pfn::from_addr(self.root()), 0).expect("address space root");
        // No region maps anything now: out of the files' reverse maps, and
        // the files may go.
        for file in self.holds.drain(..) {
            pagecache::set_mappings(file, self.id, core::iter::empty());
            pagecache::release(file);
        }
        // Every frame is back: whoever awaited this space may go on.
        let _ = AWAITED.compare_exchange(
            self.id,
            0,
            core::sync::atomic::Ordering::SeqCst,
            core::sync::atomic::Ordering::SeqCst,
        );
    }
}

/// The address space user faults are resolved in.
pub type SharedAddressSpace = Arc<Mutex<AddressSpace>>;

/// Each CPU's current address space (by CPU index).
static CURRENT: [IrqMutex<Option<SharedAddressSpace>>; crate::arch::percpu::MAX_CPUS] =
    [const { IrqMutex::new(None) }; crate::arch::percpu::MAX_CPUS];

fn current_slot() -> &'static IrqMutex<Option<SharedAddressSpace>> {
    &CURRENT[crate::arch::percpu::cpu_index()]
}

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
    let old = {
        // CR3 and this CPU's slot change together (no migration between).
        let _irq = IrqOff::new();
        // SAFETY: `root` is a PML4 whose kernel half is the kernel's own
        // (every address space copies it), so the code and stack running
        // now stay mapped across the switch; `aspace` (or the kernel)
        // keeps it allocated while it is current.
        unsafe { mmu::switch_root(root) };
        core::mem::replace(&mut *current_slot().lock(), aspace)
    };
    // The one this CPU held goes after the lock (its drop may tear it down).
    drop(old);
}

/// Leaves this CPU's current address space without loading another root
/// (lazy TLB: the idle context and kernel threads run on whatever tables
/// are loaded; the space's drop makes every CPU leave it first).
pub fn forget_current() {
    let old = {
        let _irq = IrqOff::new();
        mmu::enter_lazy();
        current_slot().lock().take()
    };
    drop(old);
}

pub fn current() -> Option<SharedAddressSpace> {
    current_slot().lock().clone()
}
