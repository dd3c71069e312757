//! The three modules together, as the kernel uses them: processes with a
//! [`VmSpace`] (regions + page tables), a frame table with reference counts
//! and contents behind owned [`FrameHandle`]s, a page cache, and a
//! simulated TLB. Faults, fork and exit run vmcore's own executor (the code
//! the kernel runs), through a host backend. Random touch / fork / exit
//! sequences are checked against a model that knows only "which page holds
//! which content, shared by whom"; the simulated TLB catches a frame freed
//! while a translation to it may still be cached, and stale translations
//! show up as wrong contents.

use std::cell::RefCell;
use std::collections::HashMap;

use proptest::prelude::*;
use vmcore::fault::{FaultAccess, FaultMode, FrameUse};
use vmcore::frame::FrameHandle;
use vmcore::gather::{Gather, TlbFlush};
use vmcore::host::HostTables;
use vmcore::paging::{PageTables, TableMemory, ENTRIES};
use vmcore::space::{
    FaultBackend, FaultError, FaultEvent, FilePage, ShareFrames, SwapPage, VmSpace,
};
use vmcore::swap::SwapEntry;
use vmcore::vma::{Prot, Sharing, Vma, VmaKind};
use vmcore::PAGE_SIZE;
const P: u64 = PAGE_SIZE;
const ZERO_PAGE: u64 = 0x1000;
const FILE_SHARED: u32 = 1;
const FILE_PRIVATE: u32 = 2;

/// The regions every process has (fork copies them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Region {
    /// Private anonymous, read-write.
    Anon,
    /// Shared mapping of FILE_SHARED, read-write.
    SharedFile,
    /// Private mapping of FILE_PRIVATE, read-write.
    PrivateFile,
}

const REGIONS: [(Region, u64, u64); 3] = [
    (Region::Anon, 0x40_0000, 6),
    (Region::SharedFile, 0x80_0000, 3),
    (Region::PrivateFile, 0xc0_0000, 3),
];

fn region_vma(region: Region) -> Vma {
    let &(_, base, pages) = REGIONS.iter().find(|r| r.0 == region).unwrap();
    let vma = Vma::anonymous(base, base + pages * P, Prot::RW);
    match region {
        Region::Anon => vma,
        Region::SharedFile => Vma {
            sharing: Sharing::Shared,
            kind: VmaKind::File {
                file: FILE_SHARED,
                offset: 0,
            },
            ..vma
        },
        Region::PrivateFile => Vma {
            kind: VmaKind::File {
                file: FILE_PRIVATE,
                offset: 0,
            },
            ..vma
        },
    }
}

fn va(region: Region, page: u64) -> u64 {
    region_vma(region).start + page * P
}

/// What a file page initially contains.
fn file_content(file: u32, offset: u64) -> u64 {
    1_000_000 * file as u64 + offset / P
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stats {
    zero_maps: u32,
    new_zeroed: u32,
    fills: u32,
    copies: u32,
    reuses: u32,
}

struct Frame {
    refs: u32,
    content: u64,
}

/// The physical side, thread-local so frame handles can give their
/// reference back on drop (proptest runs cases one at a time).
#[derive(Default)]
struct Phys {
    frames: HashMap<u64, Frame>,
    next_pa: u64,
    /// Cached translations: (pid, page) -> (frame, writable).
    tlb: HashMap<(usize, u64), (u64, bool)>,
    /// Swap slots: slot -> (leaves referencing it, content).
    slots: HashMap<u64, (u32, u64)>,
    next_slot: u64,
    /// The swap cache: slot -> its page (the cache's reference).
    swap_cache: HashMap<u64, HostFrame>,
    /// Pages swapped in / out so far.
    swapins: u32,
    swapouts: u32,
}

/// One fewer leaf references `slot`; at none, the slot and any cached page
/// of it go (the cache's frame reference is dropped after the lock).
fn put_slot(slot: u64) {
    let cached = phys(|p| {
        let s = p.slots.get_mut(&slot).expect("a live slot");
        s.0 -= 1;
        if s.0 == 0 {
            p.slots.remove(&slot);
            p.swap_cache.remove(&slot)
        } else {
            None
        }
    });
    drop(cached);
}

thread_local! {
    static PHYS: RefCell<Phys> = RefCell::new(Phys::default());
}

fn phys<R>(f: impl FnOnce(&mut Phys) -> R) -> R {
    PHYS.with(|p| f(&mut p.borrow_mut()))
}

/// One counted reference to a model frame (the zero page counts nothing).
#[derive(Debug)]
struct HostFrame(u64);

impl HostFrame {
    fn alloc(content: u64) -> HostFrame {
        phys(|p| {
            p.next_pa = p.next_pa.max(0x10_0000) + P;
            p.frames.insert(p.next_pa, Frame { refs: 1, content });
            HostFrame(p.next_pa)
        })
    }

    /// Another reference to the frame at `self` without dropping `self`'s
    /// (for a handle made from an address the caller does not own).
    fn try_clone_keep(self) -> HostFrame {
        let pa = self.0;
        std::mem::forget(self);
        HostFrame(pa).try_clone_forget()
    }

    fn try_clone_forget(self) -> HostFrame {
        let clone = self.try_clone();
        std::mem::forget(self);
        clone
    }

    fn try_clone(&self) -> HostFrame {
        if self.0 != ZERO_PAGE {
            phys(|p| p.frames.get_mut(&self.0).expect("a live frame").refs += 1);
        }
        HostFrame(self.0)
    }
}

impl Drop for HostFrame {
    fn drop(&mut self) {
        if self.0 == ZERO_PAGE {
            return;
        }
        phys(|p| {
            let frame = p
                .frames
                .get_mut(&self.0)
                .expect("reference to a freed frame");
            frame.refs -= 1;
            if frame.refs == 0 {
                p.frames.remove(&self.0);
                let stale: Vec<_> = p.tlb.iter().filter(|(_, v)| v.0 == self.0).collect();
                assert!(
                    stale.is_empty(),
                    "frame {:#x} freed while the TLB still maps it: {stale:?}",
                    self.0
                );
            }
        })
    }
}

impl FrameHandle for HostFrame {
    fn addr(&self) -> u64 {
        self.0
    }
    fn into_raw(self) -> u64 {
        let pa = self.0;
        std::mem::forget(self);
        pa
    }
    unsafe fn from_raw(addr: u64) -> HostFrame {
        HostFrame(addr)
    }
}

fn content_locked(p: &Phys, pa: u64) -> u64 {
    if pa == ZERO_PAGE {
        0
    } else {
        p.frames[&pa].content
    }
}

fn content(pa: u64) -> u64 {
    if pa == ZERO_PAGE {
        0
    } else {
        phys(|p| p.frames[&pa].content)
    }
}

/// The simulated TLB of one process: flushes drop its cached entries.
struct HostTlb {
    pid: usize,
}

impl TlbFlush for HostTlb {
    type Frame = HostFrame;
    fn flush_page(&mut self, va: u64) {
        phys(|p| p.tlb.remove(&(self.pid, va)));
    }
    fn flush_all(&mut self) {
        phys(|p| p.tlb.retain(|&(pid, _), _| pid != self.pid));
    }
    fn release_swap(&mut self, entry: SwapEntry) {
        put_slot(entry.slot);
    }
}

/// Frames, the page cache and the statistics for the executor.
struct Backend<'a> {
    cache: &'a mut HashMap<(u32, u64), HostFrame>,
    stats: &'a mut Stats,
    /// A zeroed frame cleared "unlocked" before the fault (the kernel's
    /// threaded path); what the fault did not take stays here.
    prepared: Option<HostFrame>,
    /// Stop a demand-zero fill (or a private file copy) that has no
    /// prepared frame.
    defer: bool,
    /// A copy of the cache frame at the address given, made "unlocked".
    copy: Option<(u64, HostFrame)>,
    /// The cache frame a first pass stopped at (`CopyWanted`).
    source: Option<HostFrame>,
}

impl FaultBackend for Backend<'_> {
    type Frame = HostFrame;

    fn zero_page(&mut self) -> HostFrame {
        HostFrame(ZERO_PAGE)
    }

    fn frame_use(&mut self, addr: u64) -> FrameUse {
        if addr == ZERO_PAGE {
            FrameUse::ZeroPage
        } else if self.cache.values().any(|c| c.0 == addr) {
            FrameUse::PageCache
        } else {
            FrameUse::Anon {
                refs: phys(|p| p.frames[&addr].refs),
            }
        }
    }

    fn alloc_zeroed(&mut self, _va: u64) -> Option<HostFrame> {
        Some(HostFrame::alloc(0))
    }

    fn copy_of(&mut self, src: u64, _va: u64) -> Option<HostFrame> {
        Some(HostFrame::alloc(content(src)))
    }

    fn file_page(&mut self, file: u32, offset: u64) -> Result<FilePage<HostFrame>, FaultError> {
        self.stats.fills += 1;
        let mut major = false;
        let cached = self.cache.entry((file, offset)).or_insert_with(|| {
            major = true;
            HostFrame::alloc(file_content(file, offset))
        });
        Ok(FilePage {
            frame: cached.try_clone(),
            major,
        })
    }

    fn swap_in(&mut self, entry: SwapEntry, _va: u64) -> Result<SwapPage<HostFrame>, FaultError> {
        let slot = entry.slot;
        let hit = phys(|p| p.swap_cache.get(&slot).map(|f| f.0));
        let (frame, major) = match hit {
            Some(pa) => (HostFrame(pa).try_clone_keep(), false),
            None => {
                let content = phys(|p| p.slots[&slot].1);
                let frame = HostFrame::alloc(content);
                let cache = frame.try_clone();
                phys(|p| p.swap_cache.insert(slot, cache));
                phys(|p| p.swapins += 1);
                (frame, true)
            }
        };
        // This leaf no longer references the slot.
        put_slot(slot);
        let exclusive = phys(|p| !p.slots.contains_key(&slot) && p.frames[&frame.0].refs == 1);
        Ok(SwapPage {
            frame,
            major,
            exclusive,
        })
    }

    fn take_prepared(&mut self) -> Option<HostFrame> {
        self.prepared.take()
    }

    fn defer_new_frames(&mut self) -> bool {
        self.defer
    }

    fn take_prepared_copy(&mut self, src: u64) -> Option<HostFrame> {
        match self.copy.take() {
            Some((from, copy)) if from == src => Some(copy),
            other => {
                self.copy = other;
                None
            }
        }
    }

    fn hold_source(&mut self, src: HostFrame) {
        self.source = Some(src);
    }

    fn count(&mut self, event: FaultEvent) {
        match event {
            FaultEvent::ZeroPageMap => self.stats.zero_maps += 1,
            FaultEvent::DemandZero => self.stats.new_zeroed += 1,
            FaultEvent::CowCopy => self.stats.copies += 1,
            FaultEvent::CowReuse => self.stats.reuses += 1,
            FaultEvent::Segv | FaultEvent::StackGrow | FaultEvent::MajorFault => {}
        }
    }
}

/// Table memory that also counts fork's shared references.
struct ForkMem<'a>(&'a mut HostTables);

// SAFETY: forwards to `HostTables`, whose contract carries over.
unsafe impl TableMemory for ForkMem<'_> {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        self.0.table(phys)
    }
    fn alloc_table(&mut self) -> Option<u64> {
        self.0.alloc_table()
    }
    fn free_table(&mut self, phys: u64) {
        self.0.free_table(phys)
    }
}

impl ShareFrames for ForkMem<'_> {
    fn share_swap(&mut self, entry: SwapEntry) -> bool {
        phys(|p| p.slots.get_mut(&entry.slot).expect("a live slot").0 += 1);
        true
    }

    fn share(&mut self, addr: u64) -> bool {
        if addr != ZERO_PAGE {
            phys(|p| p.frames.get_mut(&addr).expect("a mapped frame").refs += 1);
        }
        true
    }
}

/// The swap entry the leaf at `va` records, if any.
fn leaf_swap(space: &VmSpace, mem: &mut HostTables, va: u64) -> Option<SwapEntry> {
    struct Find(Option<SwapEntry>);
    impl vmcore::paging::PageWalker for Find {
        fn swapped(&mut self, _: u64, pte: vmcore::paging::Pte) {
            self.0 = pte.swap_entry();
        }
    }
    let mut find = Find(None);
    let _ = space.tables().walk(mem, va, va + P, &mut find);
    find.0
}

/// The simulated kernel.
struct Kernel {
    mem: HostTables,
    page_cache: HashMap<(u32, u64), HostFrame>,
    procs: Vec<Option<VmSpace>>,
    stats: Stats,
    /// Faults take the kernel's two-pass path (zeroed frame prepared
    /// between the passes).
    two_phase: bool,
    /// A private file copy prepared between the passes, offered to the
    /// next [`Kernel::fault`] (what it leaves was refused) ...
    copy: Option<(u64, HostFrame)>,
    /// ... and the cache frame the last first pass stopped at.
    source: Option<HostFrame>,
}

impl Kernel {
    fn new() -> Kernel {
        phys(|p| *p = Phys::default());
        let mut mem = HostTables::new();
        let mut space = VmSpace::new(PageTables::new(&mut mem).unwrap());
        for (region, ..) in REGIONS {
            space.map(region_vma(region)).unwrap();
        }
        Kernel {
            mem,
            page_cache: HashMap::new(),
            procs: vec![Some(space)],
            stats: Stats::default(),
            two_phase: false,
            copy: None,
            source: None,
        }
    }

    /// A user access through the simulated TLB, faulting as the CPU would;
    /// returns the value read (or written).
    fn access(&mut self, pid: usize, va: u64, write: Option<u64>) -> u64 {
        for _ in 0..3 {
            let cached = phys(|p| p.tlb.get(&(pid, va)).copied());
            let hit = match cached {
                Some((pa, writable)) if write.is_none() || writable => Some(pa),
                _ => {
                    let space = self.procs[pid].as_ref().unwrap();
                    match space.tables().translate(&mut self.mem, va) {
                        Some((pa, pte, _)) if write.is_none() || pte.is_writable() => {
                            phys(|p| p.tlb.insert((pid, va), (pa, pte.is_writable())));
                            Some(pa)
                        }
                        _ => None,
                    }
                }
            };
            if let Some(pa) = hit {
                return match write {
                    Some(value) => {
                        assert_ne!(pa, ZERO_PAGE, "write to the zero page");
                        phys(|p| p.frames.get_mut(&pa).unwrap().content = value);
                        value
                    }
                    None => content(pa),
                };
            }
            let access = if write.is_some() {
                FaultAccess::Write
            } else {
                FaultAccess::Read
            };
            if self.two_phase {
                // The kernel's threaded path: a first pass that stops at a
                // demand-zero fill, a frame cleared "unlocked", a second
                // pass with it in hand.
                let mut prepared = None;
                let first = self.fault(pid, va, access, &mut prepared, true);
                if first == Err(FaultError::ZeroedFrameWanted) {
                    prepared = Some(HostFrame::alloc(0));
                    self.fault(pid, va, access, &mut prepared, false)
                        .unwrap_or_else(|e| panic!("fault at {va:#x}: {e:?}"));
                    assert!(prepared.is_none(), "prepared frame refused alone");
                } else if first == Err(FaultError::CopyWanted) {
                    let src = self.source.take().expect("the source is held");
                    self.copy = Some((src.0, HostFrame::alloc(content(src.0))));
                    self.fault(pid, va, access, &mut prepared, false)
                        .unwrap_or_else(|e| panic!("fault at {va:#x}: {e:?}"));
                    assert!(self.copy.is_none(), "prepared copy refused alone");
                    drop(src);
                    // The second pass looked the cache page up again: one
                    // fill, as the model counts it.
                    self.stats.fills -= 1;
                } else {
                    first.unwrap_or_else(|e| panic!("fault at {va:#x}: {e:?}"));
                }
            } else {
                self.fault(pid, va, access, &mut None, false)
                    .unwrap_or_else(|e| panic!("fault at {va:#x}: {e:?}"));
            }
        }
        panic!("fault at {va:#x} not resolved");
    }

    /// One pass of the executor for a fault at `va` in `pid`, offering the
    /// frame in `prepared` (what it leaves there was refused) and, with
    /// `defer`, stopping at a demand-zero fill that has none.
    fn fault(
        &mut self,
        pid: usize,
        va: u64,
        access: FaultAccess,
        prepared: &mut Option<HostFrame>,
        defer: bool,
    ) -> Result<vmcore::FaultAction, FaultError> {
        let space = self.procs[pid].as_mut().unwrap();
        let mut gather = Gather::new(HostTlb { pid });
        let mut backend = Backend {
            cache: &mut self.page_cache,
            stats: &mut self.stats,
            prepared: prepared.take(),
            defer,
            copy: self.copy.take(),
            source: None,
        };
        let result = space.handle_fault(
            &mut self.mem,
            &mut backend,
            &mut gather,
            va,
            access,
            FaultMode::User,
        );
        *prepared = backend.prepared.take();
        self.copy = backend.copy.take();
        self.source = backend.source.take();
        drop(backend);
        let _ = gather.finish(&mut self.mem);
        result
    }

    /// Reclaim one anonymous frame (the `n`-th, modulo their number):
    /// into the swap cache, every leaf mapping it replaced by its swap
    /// entry (found by trying every page of every process: the model's
    /// reverse map), written out, and freed if nothing else holds it.
    fn swap_out(&mut self, n: usize) {
        let mut candidates: Vec<u64> = phys(|p| {
            let cached: Vec<u64> = p.swap_cache.values().map(|f| f.0).collect();
            p.frames
                .keys()
                .copied()
                .filter(|pa| !cached.contains(pa))
                .collect()
        });
        candidates.retain(|pa| !self.page_cache.values().any(|c| c.0 == *pa));
        candidates.sort_unstable();
        if candidates.is_empty() {
            return;
        }
        let frame = candidates[n % candidates.len()];
        let slot = phys(|p| {
            p.next_slot += 1;
            p.slots.insert(p.next_slot, (0, content_locked(p, frame)));
            p.next_slot
        });
        let entry = SwapEntry::new(0, slot).unwrap();
        let cache = HostFrame(frame).try_clone_forget();
        phys(|p| p.swap_cache.insert(slot, cache));
        for pid in 0..self.procs.len() {
            let Some(space) = self.procs[pid].as_mut() else {
                continue;
            };
            let mut gather = Gather::new(HostTlb { pid });
            for (region, base, pages) in REGIONS {
                if region == Region::SharedFile {
                    continue;
                }
                for page in 0..pages {
                    let va = base + page * P;
                    if space
                        .unmap_to_swap(&mut self.mem, &mut gather, va, frame, entry)
                        .is_some()
                    {
                        phys(|p| p.slots.get_mut(&slot).unwrap().0 += 1);
                    }
                }
            }
            let _ = gather.finish(&mut self.mem);
        }
        phys(|p| p.swapouts += 1);
        // Written; free the page if only the cache holds it now.
        let only_cache = phys(|p| p.frames[&frame].refs == 1);
        if only_cache {
            let cached = phys(|p| p.swap_cache.remove(&slot));
            drop(cached);
            if phys(|p| p.slots[&slot].0 == 0) {
                phys(|p| p.slots.remove(&slot));
            }
        }
    }

    /// Reclaim one page of FILE_PRIVATE (the `n`-th, modulo its pages)
    /// from the page cache: every leaf mapping the cache frame is cleared
    /// (found by trying every process at the page's address: the model's
    /// reverse map), private copies at that address stay, and the frame
    /// is dropped once only the cache holds it. Returns the leaves
    /// cleared, or `None` if the page was not cached.
    fn drop_file_page(&mut self, n: u64) -> Option<usize> {
        let page = n % 3;
        let pa = self.page_cache.get(&(FILE_PRIVATE, page * P))?.0;
        let at = va(Region::PrivateFile, page);
        let mut cleared = 0;
        for pid in 0..self.procs.len() {
            let Some(space) = self.procs[pid].as_mut() else {
                continue;
            };
            let mut gather = Gather::new(HostTlb { pid });
            if let Some(dirty) = space.unmap_frame(&mut self.mem, &mut gather, at, pa) {
                assert!(!dirty, "a private file page's cache frame was written");
                cleared += 1;
                assert!(
                    space.tables().translate(&mut self.mem, at).is_none(),
                    "leaf still there"
                );
            }
            // The frame goes back (if at all) only after this flush: the
            // simulated TLB catches it otherwise.
            let _ = gather.finish(&mut self.mem);
        }
        if phys(|p| p.frames[&pa].refs) == 1 {
            self.page_cache.remove(&(FILE_PRIVATE, page * P));
        }
        Some(cleared)
    }

    fn fork(&mut self, pid: usize) -> usize {
        let mut child = VmSpace::new(PageTables::new(&mut self.mem).unwrap());
        let parent = self.procs[pid].as_mut().unwrap();
        parent.fork_regions(&mut child).unwrap();
        let mut gather = Gather::new(HostTlb { pid });
        parent
            .fork_pages(&mut child, &mut ForkMem(&mut self.mem), &mut gather)
            .unwrap();
        let _ = gather.finish(&mut self.mem);
        self.procs.push(Some(child));
        self.procs.len() - 1
    }

    fn exit(&mut self, pid: usize) {
        let mut space = self.procs[pid].take().unwrap();
        let mut gather = Gather::new(HostTlb { pid });
        space.teardown(&mut self.mem, &mut gather);
        let _ = gather.finish(&mut self.mem);
        self.mem.free_table(space.root());
    }

    /// Reference counts equal the number of leaves (plus the page cache's
    /// own reference) for every frame, and no frame is orphaned.
    fn check_refcounts(&mut self) {
        let mut refs: HashMap<u64, u32> = self.page_cache.values().map(|f| (f.0, 1)).collect();
        for pa in phys(|p| p.swap_cache.values().map(|f| f.0).collect::<Vec<_>>()) {
            *refs.entry(pa).or_default() += 1;
        }
        // Every slot is referenced by exactly its count of swap leaves.
        let mut slot_refs: HashMap<u64, u32> = HashMap::new();
        for space in self.procs.iter().flatten() {
            for (_, base, pages) in REGIONS {
                for page in 0..pages {
                    if let Some(e) = leaf_swap(space, &mut self.mem, base + page * P) {
                        *slot_refs.entry(e.slot).or_default() += 1;
                    }
                }
            }
        }
        let slots: HashMap<u64, u32> = phys(|p| {
            p.slots
                .iter()
                .map(|(&s, &(count, _))| (s, count))
                .filter(|&(_, c)| c > 0)
                .collect()
        });
        assert_eq!(slots, slot_refs, "slot counts vs swap leaves");
        assert!(
            phys(|p| p.slots.values().all(|&(c, _)| c > 0)),
            "a slot no leaf references was kept"
        );
        for space in self.procs.iter().flatten() {
            for (_, base, pages) in REGIONS {
                for page in 0..pages {
                    if let Some((pa, _, _)) =
                        space.tables().translate(&mut self.mem, base + page * P)
                    {
                        if pa != ZERO_PAGE {
                            *refs.entry(pa).or_default() += 1;
                        }
                    }
                }
            }
        }
        let actual: HashMap<u64, u32> =
            phys(|p| p.frames.iter().map(|(&pa, f)| (pa, f.refs)).collect());
        assert_eq!(actual, refs);
    }
}

/// The model: per process and page, what it maps, without page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MPage {
    Untouched,
    Zero,
    /// The file's page-cache page (shared file, or private before a write).
    Cache,
    /// A private frame (model id); writable unless shared COW since a fork.
    Frame {
        id: u32,
        writable: bool,
    },
}

#[derive(Default)]
struct Model {
    procs: Vec<Option<HashMap<(Region, u64), MPage>>>,
    /// id -> (refs, content)
    frames: HashMap<u32, (u32, u64)>,
    shared_file: HashMap<u64, u64>,
    next_id: u32,
    stats: Stats,
}

impl Model {
    fn new_frame(&mut self, content: u64) -> MPage {
        self.next_id += 1;
        self.frames.insert(self.next_id, (1, content));
        MPage::Frame {
            id: self.next_id,
            writable: true,
        }
    }

    fn put(&mut self, id: u32) {
        let frame = self.frames.get_mut(&id).unwrap();
        frame.0 -= 1;
        if frame.0 == 0 {
            self.frames.remove(&id);
        }
    }

    fn file_content(&self, region: Region, page: u64) -> u64 {
        match region {
            Region::SharedFile => self
                .shared_file
                .get(&page)
                .copied()
                .unwrap_or(file_content(FILE_SHARED, page * P)),
            _ => file_content(FILE_PRIVATE, page * P),
        }
    }

    fn read(&self, pid: usize, region: Region, page: u64) -> u64 {
        match self.procs[pid]
            .as_ref()
            .unwrap()
            .get(&(region, page))
            .copied()
            .unwrap_or(MPage::Untouched)
        {
            MPage::Untouched | MPage::Zero if region == Region::Anon => 0,
            MPage::Untouched | MPage::Cache => self.file_content(region, page),
            MPage::Zero => unreachable!(),
            MPage::Frame { id, .. } => self.frames[&id].1,
        }
    }

    fn touch(&mut self, pid: usize, region: Region, page: u64, write: Option<u64>) {
        let state = self.procs[pid]
            .as_ref()
            .unwrap()
            .get(&(region, page))
            .copied()
            .unwrap_or(MPage::Untouched);
        let new = match (region, state, write) {
            (Region::Anon, MPage::Untouched, None) => {
                self.stats.zero_maps += 1;
                MPage::Zero
            }
            (Region::Anon, MPage::Untouched | MPage::Zero, Some(v)) => {
                self.stats.new_zeroed += 1;
                self.new_frame(v)
            }
            (Region::SharedFile, MPage::Untouched, _)
            | (Region::PrivateFile, MPage::Untouched, None) => {
                self.stats.fills += 1;
                MPage::Cache
            }
            (Region::PrivateFile, MPage::Untouched, Some(v)) => {
                self.stats.fills += 1;
                self.new_frame(v)
            }
            (Region::PrivateFile, MPage::Cache, Some(v)) => {
                self.stats.copies += 1;
                self.new_frame(v)
            }
            (
                _,
                MPage::Frame {
                    id,
                    writable: false,
                },
                Some(v),
            ) => {
                if self.frames[&id].0 > 1 {
                    self.stats.copies += 1;
                    self.put(id);
                    self.new_frame(v)
                } else {
                    self.stats.reuses += 1;
                    MPage::Frame { id, writable: true }
                }
            }
            (_, state, _) => state,
        };
        if let (Some(v), MPage::Frame { id, .. }) = (write, new) {
            self.frames.get_mut(&id).unwrap().1 = v;
        }
        if let (Some(v), Region::SharedFile) = (write, region) {
            self.shared_file.insert(page, v);
        }
        self.procs[pid]
            .as_mut()
            .unwrap()
            .insert((region, page), new);
    }

    fn fork(&mut self, pid: usize) {
        let mut pages = self.procs[pid].clone().unwrap();
        for state in pages.values_mut() {
            if let MPage::Frame { id, writable } = state {
                *writable = false;
                self.frames.get_mut(id).unwrap().0 += 1;
            }
        }
        self.procs[pid] = Some(pages.clone());
        self.procs.push(Some(pages));
    }

    /// The cache page of FILE_PRIVATE `page` was unmapped everywhere and
    /// dropped: whoever mapped it will fault it in again; private copies
    /// stay. Returns how many processes mapped it.
    fn drop_file_page(&mut self, page: u64) -> usize {
        let mut mapped = 0;
        for pages in self.procs.iter_mut().flatten() {
            if pages.get(&(Region::PrivateFile, page)) == Some(&MPage::Cache) {
                pages.remove(&(Region::PrivateFile, page));
                mapped += 1;
            }
        }
        mapped
    }

    fn exit(&mut self, pid: usize) {
        for state in self.procs[pid].take().unwrap().into_values() {
            if let MPage::Frame { id, .. } = state {
                self.put(id);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Touch {
        proc: usize,
        region: usize,
        page: u64,
        write: bool,
    },
    Fork(usize),
    Exit(usize),
    SwapOut(usize),
    DropFilePage(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..8usize, 0..3usize, 0..6u64, any::<bool>())
            .prop_map(|(proc, region, page, write)| Op::Touch { proc, region, page, write }),
        2 => (0..8usize).prop_map(Op::Fork),
        1 => (0..8usize).prop_map(Op::Exit),
        3 => (0..64usize).prop_map(Op::SwapOut),
        2 => (0..3u64).prop_map(Op::DropFilePage),
    ]
}

/// Picks the `n`-th live process (modulo their number).
fn live(procs: &[Option<VmSpace>], n: usize) -> usize {
    let live: Vec<usize> = procs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_some())
        .map(|(i, _)| i)
        .collect();
    live[n % live.len()]
}

fn check(kernel: &mut Kernel, model: &Model, swapped: bool) {
    kernel.check_refcounts();
    if !swapped {
        assert_eq!(kernel.stats, model.stats);
        let anon_frames = phys(|p| p.frames.len()) - kernel.page_cache.len();
        assert_eq!(
            anon_frames,
            model.frames.len(),
            "anonymous frames leaked or lost"
        );
    }
    for pid in 0..kernel.procs.len() {
        let Some(space) = kernel.procs[pid].as_ref() else {
            continue;
        };
        for (region, base, pages) in REGIONS {
            for page in 0..pages {
                let state = model.procs[pid]
                    .as_ref()
                    .unwrap()
                    .get(&(region, page))
                    .copied();
                let leaf = space.tables().translate(&mut kernel.mem, base + page * P);
                match (state.unwrap_or(MPage::Untouched), leaf) {
                    (MPage::Untouched, None) => {}
                    (MPage::Zero, Some((pa, pte, _))) => {
                        assert!(pa == ZERO_PAGE && !pte.is_writable())
                    }
                    (MPage::Cache, Some((pa, pte, _))) => {
                        assert!(kernel.page_cache.values().any(|c| c.0 == pa));
                        assert_eq!(pte.is_writable(), region == Region::SharedFile);
                    }
                    (MPage::Frame { id, writable }, Some((pa, pte, _))) if !swapped => {
                        assert_eq!(pte.is_writable(), writable, "{region:?} page {page}");
                        assert_eq!(pte.is_cow(), !writable);
                        assert_eq!(phys(|p| p.frames[&pa].refs), model.frames[&id].0);
                    }
                    (MPage::Frame { .. }, Some(_)) => {}
                    (MPage::Frame { .. }, None) => {
                        // Swapped out: the content is in the cache or the slot.
                        let e = leaf_swap(space, &mut kernel.mem, base + page * P).unwrap_or_else(
                            || panic!("pid {pid} {region:?} {page}: no leaf, no swap entry"),
                        );
                        let got = phys(|p| match p.swap_cache.get(&e.slot) {
                            Some(f) => content_locked(p, f.0),
                            None => p.slots[&e.slot].1,
                        });
                        assert_eq!(
                            got,
                            model.read(pid, region, page),
                            "pid {pid} {region:?} {page} (swapped)"
                        );
                    }
                    (state, leaf) => {
                        panic!("pid {pid} {region:?} page {page}: model {state:?}, leaf {leaf:?}")
                    }
                }
                if let Some((pa, ..)) = leaf {
                    assert_eq!(
                        content(pa),
                        model.read(pid, region, page),
                        "pid {pid} {region:?} {page}"
                    );
                }
            }
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 3 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn faults_and_fork_match_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 12 } else { 80 }), two_phase in any::<bool>()) {
        let mut kernel = Kernel::new();
        kernel.two_phase = two_phase;
        let mut model = Model { procs: vec![Some(HashMap::new())], ..Model::default() };
        let mut next_value = 1;
        // Once pages have been swapped, the copy/reuse counts may differ
        // from the model's (a page swapped back in exclusively is mapped
        // writable, so a later write faults no more); contents, reference
        // counts and slot counts are still checked exactly.
        let mut swapped = false;
        for op in &ops {
            match *op {
                Op::Touch { proc, region, page, write } => {
                    let pid = live(&kernel.procs, proc);
                    let (region, _, pages) = REGIONS[region];
                    let page = page % pages;
                    let value = write.then(|| {
                        next_value += 1;
                        next_value
                    });
                    model.touch(pid, region, page, value);
                    let got = kernel.access(pid, va(region, page), value);
                    prop_assert_eq!(got, model.read(pid, region, page));
                }
                Op::Fork(n) => {
                    let pid = live(&kernel.procs, n);
                    let child = kernel.fork(pid);
                    model.fork(pid);
                    prop_assert_eq!(child, model.procs.len() - 1);
                }
                Op::Exit(n) => {
                    let pid = live(&kernel.procs, n);
                    if kernel.procs.iter().flatten().count() > 1 {
                        kernel.exit(pid);
                        model.exit(pid);
                    }
                }
                Op::SwapOut(n) => {
                    kernel.swap_out(n);
                    swapped = true;
                }
                Op::DropFilePage(page) => {
                    // Only a cached page can be dropped; a process whose
                    // private copy sits at that address keeps it.
                    if let Some(cleared) = kernel.drop_file_page(page) {
                        prop_assert_eq!(cleared, model.drop_file_page(page));
                    }
                }
            }
            check(&mut kernel, &model, swapped);
        }
        // Everyone exits: only the page cache is left, and no tables.
        for pid in 0..kernel.procs.len() {
            if kernel.procs[pid].is_some() {
                kernel.exit(pid);
                model.exit(pid);
            }
        }
        prop_assert_eq!(phys(|p| p.frames.len()), kernel.page_cache.len());
        prop_assert!(phys(|p| p.frames.values().all(|f| f.refs == 1)));
        prop_assert!(model.frames.is_empty());
        prop_assert_eq!(kernel.mem.live(), 0);
        prop_assert!(phys(|p| p.slots.is_empty() && p.swap_cache.is_empty()), "swap slots or cache left");
        kernel.page_cache.clear();
        prop_assert_eq!(phys(|p| p.frames.len()), 0);
    }
}

/// Reclaiming a private file page from the page cache clears exactly the
/// leaves that map the cache frame: a process that wrote the page (its
/// private copy at the same address) keeps its copy and its data, the
/// others fault the file page back in; the dirty bit of a shared mapping
/// that was written is reported.
#[test]
fn unmap_frame_clears_only_leaves_of_that_frame() {
    let mut kernel = Kernel::new();
    let page = 1;
    let at = va(Region::PrivateFile, page);
    assert_eq!(kernel.access(0, at, None), file_content(FILE_PRIVATE, P));
    let child = kernel.fork(0);
    assert_eq!(
        kernel.access(child, at, None),
        file_content(FILE_PRIVATE, P)
    );
    // The child writes: its copy is a different frame.
    kernel.access(child, at, Some(77));
    let cached = kernel.page_cache[&(FILE_PRIVATE, page * P)].0;
    let copy = kernel.procs[child]
        .as_ref()
        .unwrap()
        .tables()
        .translate(&mut kernel.mem, at)
        .unwrap()
        .0;
    assert_ne!(copy, cached);
    assert_eq!(
        kernel.drop_file_page(page),
        Some(1),
        "only the parent's leaf"
    );
    assert!(
        !kernel.page_cache.contains_key(&(FILE_PRIVATE, page * P)),
        "the unmapped page was not dropped"
    );
    assert!(phys(|p| !p.frames.contains_key(&cached)), "frame kept");
    assert_eq!(kernel.access(child, at, None), 77, "the private copy went");
    // The parent faults the file page in again (a fill).
    let fills = kernel.stats.fills;
    assert_eq!(kernel.access(0, at, None), file_content(FILE_PRIVATE, P));
    assert_eq!(kernel.stats.fills, fills + 1);
    kernel.check_refcounts();

    // Shared file pages: the dirty bit of a written leaf comes back.
    let (read, written) = (va(Region::SharedFile, 0), va(Region::SharedFile, 1));
    kernel.access(0, read, None);
    kernel.access(0, written, Some(5));
    for (addr, dirty) in [(read, false), (written, true)] {
        let pa = kernel.page_cache[&(FILE_SHARED, (addr - va(Region::SharedFile, 0)))].0;
        let space = kernel.procs[0].as_mut().unwrap();
        let mut gather = Gather::new(HostTlb { pid: 0 });
        // Not at another address, nor for another frame.
        assert_eq!(
            space.unmap_frame(&mut kernel.mem, &mut gather, addr + P * 2, pa),
            None
        );
        assert_eq!(
            space.unmap_frame(&mut kernel.mem, &mut gather, addr, pa + P * 64),
            None
        );
        assert_eq!(
            space.unmap_frame(&mut kernel.mem, &mut gather, addr, pa),
            Some(dirty)
        );
        assert_eq!(
            space.unmap_frame(&mut kernel.mem, &mut gather, addr, pa),
            None,
            "twice"
        );
        let _ = gather.finish(&mut kernel.mem);
    }
    kernel.check_refcounts();
}

/// Frames alive in the model (the zero page is none).
fn live_frames() -> usize {
    phys(|p| p.frames.len())
}

/// The frame the leaf at `va` of `pid` maps.
fn mapped(kernel: &mut Kernel, pid: usize, va: u64) -> Option<u64> {
    kernel.procs[pid]
        .as_ref()
        .unwrap()
        .tables()
        .translate(&mut kernel.mem, va)
        .map(|(pa, ..)| pa)
}

/// The two-pass fault: the first pass stops at the demand-zero fill with
/// nothing changed, the second maps exactly the frame prepared between.
#[test]
fn prepared_frame_is_used() {
    let mut kernel = Kernel::new();
    let at = va(Region::Anon, 2);
    let mut prepared = None;
    let first = kernel.fault(0, at, FaultAccess::Write, &mut prepared, true);
    assert_eq!(first, Err(FaultError::ZeroedFrameWanted));
    assert_eq!(live_frames(), 0, "the first pass allocated");
    assert_eq!(mapped(&mut kernel, 0, at), None, "the first pass mapped");
    assert_eq!(kernel.stats.new_zeroed, 0, "counted before the fill");
    let frame = HostFrame::alloc(0);
    let pa = frame.0;
    prepared = Some(frame);
    let second = kernel.fault(0, at, FaultAccess::Write, &mut prepared, false);
    assert_eq!(second, Ok(vmcore::FaultAction::MapNewZeroed));
    assert!(prepared.is_none(), "not taken");
    assert_eq!(mapped(&mut kernel, 0, at), Some(pa));
    assert_eq!(kernel.stats.new_zeroed, 1);
    assert_eq!(live_frames(), 1);
    // A write to the zero page (read first) takes one the same way.
    let next = va(Region::Anon, 3);
    assert_eq!(kernel.access(0, next, None), 0);
    let first = kernel.fault(0, next, FaultAccess::Write, &mut prepared, true);
    assert_eq!(first, Err(FaultError::ZeroedFrameWanted));
    let frame = HostFrame::alloc(0);
    let pa = frame.0;
    prepared = Some(frame);
    let second = kernel.fault(0, next, FaultAccess::Write, &mut prepared, false);
    assert_eq!(second, Ok(vmcore::FaultAction::MapNewZeroed));
    assert!(prepared.is_none());
    assert_eq!(mapped(&mut kernel, 0, next), Some(pa));
    assert_eq!(kernel.access(0, next, Some(9)), 9);
    kernel.check_refcounts();
    kernel.exit(0);
    assert_eq!(live_frames(), 0, "frames left after exit");
}

/// Another thread filled the page between the passes: the second pass
/// finds its leaf (spurious), leaves the prepared frame, and the caller's
/// drop gives it back; the other thread's data stays.
#[test]
fn prepared_frame_refused_after_another_fill() {
    let mut kernel = Kernel::new();
    let at = va(Region::Anon, 1);
    let mut prepared = None;
    let first = kernel.fault(0, at, FaultAccess::Write, &mut prepared, true);
    assert_eq!(first, Err(FaultError::ZeroedFrameWanted));
    let frame = HostFrame::alloc(0);
    let pa = frame.0;
    prepared = Some(frame);
    // The other thread (same space) faults and writes meanwhile.
    assert_eq!(kernel.access(0, at, Some(5)), 5);
    let theirs = mapped(&mut kernel, 0, at).unwrap();
    assert_ne!(theirs, pa);
    let second = kernel.fault(0, at, FaultAccess::Write, &mut prepared, false);
    assert_eq!(second, Ok(vmcore::FaultAction::Spurious));
    assert_eq!(prepared.as_ref().map(|f| f.0), Some(pa), "refused frame");
    assert_eq!(live_frames(), 2);
    drop(prepared.take());
    assert_eq!(live_frames(), 1, "refused frame not returned");
    assert_eq!(mapped(&mut kernel, 0, at), Some(theirs));
    assert_eq!(kernel.access(0, at, None), 5);
    kernel.check_refcounts();
    kernel.exit(0);
    assert_eq!(live_frames(), 0);
}

/// The region was unmapped between the passes: the second pass refuses
/// the access (SIGSEGV) and hands the frame back untouched.
#[test]
fn prepared_frame_refused_when_region_unmapped() {
    let mut kernel = Kernel::new();
    let at = va(Region::Anon, 4);
    let mut prepared = None;
    let first = kernel.fault(0, at, FaultAccess::Write, &mut prepared, true);
    assert_eq!(first, Err(FaultError::ZeroedFrameWanted));
    prepared = Some(HostFrame::alloc(0));
    let vma = region_vma(Region::Anon);
    let mut gather = Gather::new(HostTlb { pid: 0 });
    kernel.procs[0]
        .as_mut()
        .unwrap()
        .unmap(&mut kernel.mem, &mut gather, vma.start, vma.end)
        .unwrap();
    let _ = gather.finish(&mut kernel.mem);
    let second = kernel.fault(0, at, FaultAccess::Write, &mut prepared, false);
    assert_eq!(second, Err(FaultError::Segv(vmcore::SegvReason::NoRegion)));
    assert!(prepared.is_some(), "frame kept by a refused fault");
    drop(prepared.take());
    assert_eq!(live_frames(), 0, "refused frame not returned");
    assert_eq!(mapped(&mut kernel, 0, at), None);
    kernel.exit(0);
    assert_eq!(live_frames(), 0);
}

/// A fault that needs no new frame is not stopped by `defer` (a read
/// maps the zero page, a shared file page fills from the cache), and one
/// that needs one but is offered none without `defer` allocates as before.
#[test]
fn defer_stops_only_new_frame_fills() {
    let mut kernel = Kernel::new();
    let at = va(Region::Anon, 0);
    let mut prepared = None;
    let read = kernel.fault(0, at, FaultAccess::Read, &mut prepared, true);
    assert_eq!(read, Ok(vmcore::FaultAction::MapZeroPage));
    let file = va(Region::SharedFile, 0);
    let fill = kernel.fault(0, file, FaultAccess::Write, &mut prepared, true);
    assert!(matches!(fill, Ok(vmcore::FaultAction::FillFromFile { .. })));
    let write = kernel.fault(0, at, FaultAccess::Write, &mut prepared, false);
    assert_eq!(write, Ok(vmcore::FaultAction::MapNewZeroed));
    kernel.check_refcounts();
    kernel.exit(0);
    kernel.page_cache.clear();
    assert_eq!(live_frames(), 0);
}

/// A private copy of a file page, made between the passes: the first pass
/// stops holding the cache frame (nothing mapped, no frame but the cache's
/// allocated), the second installs the copy; offered for another cache
/// frame (the page was dropped and read in again) it is refused, and the
/// caller's drop gives it back.
#[test]
fn prepared_copy_is_used_or_refused() {
    let mut kernel = Kernel::new();
    let at = va(Region::PrivateFile, 1);
    let mut none = None;
    let first = kernel.fault(0, at, FaultAccess::Write, &mut none, true);
    assert_eq!(first, Err(FaultError::CopyWanted));
    assert_eq!(mapped(&mut kernel, 0, at), None, "the first pass mapped");
    let src = kernel.source.take().expect("the cache frame is held");
    assert_eq!(live_frames(), 1, "only the cache page");
    let copy = HostFrame::alloc(content(src.0));
    let pa = copy.0;
    kernel.copy = Some((src.0, copy));
    let second = kernel.fault(0, at, FaultAccess::Write, &mut none, false);
    assert!(second.is_ok(), "{second:?}");
    assert!(kernel.copy.is_none(), "not taken");
    assert_eq!(mapped(&mut kernel, 0, at), Some(pa));
    assert_eq!(kernel.access(0, at, None), file_content(FILE_PRIVATE, P));
    drop(src);
    // A copy of another frame than the cache's is refused: the second
    // pass copies under the lock instead.
    let next = va(Region::PrivateFile, 2);
    let first = kernel.fault(0, next, FaultAccess::Write, &mut none, true);
    assert_eq!(first, Err(FaultError::CopyWanted));
    let src = kernel.source.take().unwrap();
    let stale = HostFrame::alloc(12345);
    kernel.copy = Some((src.0 + 0x10_0000, stale));
    let second = kernel.fault(0, next, FaultAccess::Write, &mut none, false);
    assert!(second.is_ok(), "{second:?}");
    let refused = kernel.copy.take().expect("left with the caller");
    assert_ne!(mapped(&mut kernel, 0, next), Some(refused.0));
    assert_eq!(
        kernel.access(0, next, None),
        file_content(FILE_PRIVATE, 2 * P)
    );
    drop(refused);
    drop(src);
    kernel.check_refcounts();
    kernel.exit(0);
    kernel.page_cache.clear();
    assert_eq!(live_frames(), 0, "frames left");
}
