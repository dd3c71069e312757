//! Files that can back memory, and the page cache in front of them.
//!
//! Two kinds of "file" back memory:
//! - a ramdisk file: bytes that live for the kernel's lifetime. Its pages
//!   are clean copies, so a page no process maps can be dropped whenever
//!   memory is short ([`shrink`]) and read again on the next touch.
//! - an anonymous object, the memory behind `MAP_SHARED | MAP_ANONYMOUS`
//!   (Linux's shmem): zero-filled pages that every process mapping it
//!   shares, even pages first touched after a fork. Its pages have no copy
//!   anywhere else: they live on the anon LRU lists and reclaim sends them
//!   to swap ([`swap_out`], Linux's `shmem_writepage`), leaving the slot in
//!   the page's place in the index (a [`vmcore::radix::Entry::Swapped`]
//!   that owns the slot: dropping it frees the slot). A lookup finding
//!   one (a fault, a tmpfs read or write) reads it back into a new frame
//!   and frees the slot; truncation and the object's death (when the last
//!   address space holding one of its regions lets go, [`release`]) free
//!   the slots with the pages. `swapoff` reads every one back
//!   ([`swap_in_all`]). Swap-in and swap-out hold the file's lock across
//!   the device I/O (the device's lock nests inside it), so no lookup,
//!   truncation or second swap of the page runs meanwhile.
//!
//! The first touch of a page reads it into a cache frame (a major fault);
//! every later touch, from any address space, maps that same frame. The
//! cache holds one reference ([`FrameRef`]) to each of its frames in its
//! index, each mapping another; removing a page from the index drops the
//! cache's.
//! Each file's pages are found through a [`PageIndex`] (a radix tree), whose
//! nodes are allocated fallibly: a full kernel heap is an out-of-memory
//! fault, not a panic.
//!
//! # Reverse map (Linux's `i_mmap`)
//!
//! Each file keeps the list of regions that map it: ([`Mapping`]) the
//! address space (by its id, [`AddressSpace::id`]), the region's start,
//! its file offset and its length. The address space registers them
//! itself, after every change to its regions (map, `MAP_FIXED`, munmap,
//! mprotect splits, mremap, fork, stack growth, teardown), by replacing
//! its entries for each file it holds with its regions of that file now
//! ([`set_mappings`]); the room for them is reserved before the change
//! ([`reserve_mappings`]), so a change that cannot get memory fails before
//! anything changed and the replacement never allocates. Address spaces
//! on other CPUs change their regions of the same file at the same time,
//! each between its own reservation and its replacement, so a reservation
//! is counted in the file ([`MapRoom`], held until the replacement is
//! done): the list's capacity covers its entries plus every reservation
//! outstanding, not only the latest one. From a page
//! `(file, index)` every leaf that may map it is then at
//! `start + index * 4096 - offset` in each region covering it
//! ([`unmap_page_everywhere`], [`page_referenced`]).
//!
//! Address spaces are named by id, not referenced: the map keeps none
//! alive (a dying space removes its entries in its `Drop`). A walk
//! resolves ids against the list of live address spaces (reclaim's
//! [`address_spaces`](super::reclaim::address_spaces), read before the
//! cache and file locks) and takes each with `try_lock`; a mapper it cannot reach or
//! lock makes the page [`Busy`], and it stays. Whether the map is complete
//! is not trusted either: a page is dropped only when, after every leaf
//! found was cleared, the cache's reference is the last one.
//!
//! The frame -> `(file, index)` direction ([`owner_of`]) is kept here, in a
//! radix tree keyed by frame number, until the per-frame data
//! (`pageext`) carries it.
//!
//! # Locks
//!
//! Each file has a lock of its own (its slot in the file table, Linux's
//! per-mapping `i_pages` lock): its index, shadows, reverse map and
//! counts. A fault's lookup takes only its file's lock, so faults on
//! different files never meet; the reference it takes on the page is an
//! atomic one ([`FrameRef::try_clone`]). The file table itself is found
//! without a lock: chunks of slots made once and never freed, published
//! with a release store. The global cache lock (`CACHE`) serializes
//! what works over every file: registering a file (finding it a slot),
//! and reclaim's sweeps (the CLOCK hand); it nests outside the file locks.
//!
//! Lock order: an address space, the cache lock, a file's lock, then the
//! frames lock (one file lock at a time). Frames for new pages are
//! allocated with no cache or file lock held, because allocating may
//! reclaim cache pages ([`try_shrink`], which only *tries* every lock).
//! Reverse-map walks hold a file's lock (and the cache lock for a sweep)
//! and only *try* address-space locks (and never allocate), so they never
//! wait against the address space -> file order of a fault.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use mmcore::{FrameKind, Pfn};
use vmcore::radix::{Entry, IndexError, PageIndex};

use super::aspace::{AddressSpace, SharedAddressSpace};
use super::commit::Charge;
use super::frame_ref::FrameRef;
use super::layout::PAGE_SIZE;
use crate::arch::sync::IrqMutex;

/// What backs a cache file.
#[derive(Clone, Copy)]
enum Backing {
    /// Bytes that live forever (a ramdisk file).
    Bytes(&'static [u8]),
    /// Zero-filled memory with no file behind it (shared anonymous memory).
    Anonymous,
}

/// The swap slot holding a swapped-out page of an anonymous object (its
/// index's entry for the page, Linux's swap entry in a shmem mapping's
/// xarray). It owns the slot's one share: dropping it (truncate, the
/// object's death, the page read back in) frees the slot.
#[derive(Debug, PartialEq, Eq)]
struct SwapSlot(u64);

impl Drop for SwapSlot {
    fn drop(&mut self) {
        super::swap::release(super::swap::entry_of(self.0));
    }
}

/// One page of a cache file: its frame (the cache's reference), or for an
/// anonymous object the swap slot it went to.
type Slot = Entry<FrameRef, SwapSlot>;

struct CacheFile {
    backing: Backing,
    /// Address spaces holding a region of it (plus a creator's hold while
    /// `mmap` sets it up). An anonymous object dies when this reaches 0;
    /// ramdisk files never do.
    users: u32,
    pages: PageIndex<Slot>,
    /// Entries of `pages` that are swapped out (the rest are resident).
    swapped: u64,
    /// Shadows of pages reclaim dropped ([`reclaimcore::Shadow`] bits),
    /// taken back when the page is read in again: Linux keeps them in the
    /// page's own xarray slot; here they have an index of their own.
    shadows: PageIndex<u32>,
    /// The regions mapping it (the reverse map; see the module docs).
    mappings: Vec<Mapping>,
    /// Entries reserved in `mappings` by changes under way ([`MapRoom`]s
    /// alive): its capacity is at least its length plus this.
    reserved: usize,
    /// Which file this is, of all that ever had its slot (a slot is reused
    /// once its file died): a [`MapRoom`] gives its room back only to the
    /// file it was reserved in.
    serial: u64,
    /// An anonymous object's commit charge for its size (Linux's
    /// `shmem_acct_size`), given back when it dies.
    _charge: Charge,
    /// An anonymous object with a size (a tmpfs file): a page wholly past
    /// it is [`CacheError::PastEof`] (`SIGBUS` for a mapping).
    eof: Option<u64>,
    /// The size limit its pages are charged to (a tmpfs file's): every
    /// page in its index holds one page of it.
    limit: Option<PageLimit>,
}

/// A limit an anonymous object's pages are charged to (tmpfs's size):
/// a page that comes into its index, by a `write` or a fault of a
/// mapping alike, takes one page of it (none left: [`CacheError::NoSpace`],
/// `SIGBUS` for a fault, as Linux's shmem); a page that leaves (truncate,
/// the object's death) gives it back.
#[derive(Clone, Copy)]
pub struct PageLimit {
    /// Takes one page; false if the limit is used up.
    pub take: fn() -> bool,
    /// Gives `n` pages back.
    pub give: fn(u64),
}

/// Charges `file`'s pages to `limit` from now on (set once, on a new
/// object with no pages).
pub fn set_limit(file: u32, limit: PageLimit) {
    with_file(file, |f| f.limit = Some(limit));
}

/// Pages in `file`'s index now.
pub fn object_pages(file: u32) -> u64 {
    with_file(file, |f| f.pages.len() as u64).unwrap_or(0)
}

/// One region of an address space that maps a cache file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The address space ([`AddressSpace::id`]).
    pub space: u64,
    /// The region's first address.
    pub start: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    /// The region's length in bytes.
    pub len: u64,
}

impl Mapping {
    /// Where this region maps page `index` of the file, if it does.
    pub fn va_of(&self, index: u64) -> Option<u64> {
        let at = index.checked_mul(PAGE_SIZE)?.checked_sub(self.offset)?;
        (at < self.len).then(|| self.start + at)
    }
}

/// A mapper of the page could not be reached (its address space was
/// locked, or not in the list walked): the page stays as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// No memory for the reverse map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// What the global cache lock guards (see "Locks" in the module docs).
struct Cache {
    /// Where the last sweep of mapped pages stopped (file, index): the
    /// next one goes on from there (a CLOCK hand).
    hand: (u32, u64),
}

static CACHE: IrqMutex<Cache> =
    IrqMutex::ranked(Cache { hand: (0, 0) }, crate::arch::sync::rank::CACHE);

/// Statistics of the page-cache lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    CACHE.stat()
}

/// Pages cached over all files (`Cached`).
static PAGES: AtomicU64 = AtomicU64::new(0);

/// The next file's [`CacheFile::serial`].
static SERIALS: AtomicU64 = AtomicU64::new(0);

/// Mapped pages dropped so far (after being unmapped everywhere).
static MAPPED_DROPPED: AtomicU64 = AtomicU64::new(0);

fn locked<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    CACHE.with(f)
}

/// One file's slot: its lock and, while the file lives, its state (a dead
/// anonymous object leaves `None` for reuse).
type FileSlot = IrqMutex<Option<CacheFile>>;

/// Slots per chunk of the file table.
const CHUNK: usize = 64;
/// Chunks at most: 16 384 files.
const CHUNKS: usize = 256;

/// The file table: chunks of [`CHUNK`] slots, each made (under `CACHE`)
/// when the ones before are full and never freed, published with a
/// release store, so that a file's slot is found with no lock.
static TABLE: [AtomicPtr<FileSlot>; CHUNKS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS];

/// Slots in the published chunks.
static SLOTS: AtomicU32 = AtomicU32::new(0);

/// File `id`'s slot, if its chunk exists.
fn slot(id: u32) -> Option<&'static FileSlot> {
    let id = id as usize;
    let chunk = TABLE.get(id / CHUNK)?.load(Ordering::Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: a non-null entry points at a leaked, never freed array of
    // `CHUNK` initialised slots (`new_chunk`), published with a release
    // store that the acquire load above pairs with; `id % CHUNK` is inside
    // it. Slots are only ever shared (each is its own lock).
    Some(unsafe { &*chunk.add(id % CHUNK) })
}

/// Runs `f` on file `id` under its lock; `None` if there is no such file.
fn with_file<R>(id: u32, f: impl FnOnce(&mut CacheFile) -> R) -> Option<R> {
    slot(id)?.lock().as_mut().map(f)
}

/// Runs `f` on every live file, each under its own lock in turn.
fn each_file(mut f: impl FnMut(u32, &mut CacheFile)) {
    for id in 0..SLOTS.load(Ordering::Acquire) {
        if let Some(slot) = slot(id) {
            if let Some(file) = slot.lock().as_mut() {
                f(id, file);
            }
        }
    }
}

/// The page-cache file locks' statistics, summed (`/proc/lock_stat`).
pub fn file_lock_stat() -> crate::arch::sync::LockStat {
    let mut sum = crate::arch::sync::LockStat::default();
    for id in 0..SLOTS.load(Ordering::Acquire) {
        if let Some(slot) = slot(id) {
            let s = slot.stat();
            sum.acquisitions += s.acquisitions;
            sum.contentions += s.contentions;
            sum.wait_cycles += s.wait_cycles;
        }
    }
    sum
}

/// Makes and publishes the next chunk of slots (under `CACHE`); false if
/// the table is full or there is no memory.
fn new_chunk(_: &mut Cache) -> bool {
    let made = SLOTS.load(Ordering::Relaxed) as usize;
    let Some(entry) = TABLE.get(made / CHUNK) else {
        return false;
    };
    let mut chunk: Vec<FileSlot> = Vec::new();
    if chunk.try_reserve_exact(CHUNK).is_err() {
        return false;
    }
    for _ in 0..CHUNK {
        chunk.push(IrqMutex::ranked(None, crate::arch::sync::rank::CACHE_FILE));
    }
    let chunk: &'static mut [FileSlot] = chunk.leak();
    entry.store(chunk.as_mut_ptr(), Ordering::Release);
    SLOTS.store((made + CHUNK) as u32, Ordering::Release);
    true
}

/// Stores `file` in a free slot; `None` if the table cannot grow.
fn add(file: CacheFile) -> Option<u32> {
    locked(|c| loop {
        for id in 0..SLOTS.load(Ordering::Relaxed) {
            let mut s = slot(id)?.lock();
            if s.is_none() {
                *s = Some(file);
                return Some(id);
            }
        }
        if !new_chunk(c) {
            return None;
        }
    })
}

/// Makes `bytes` available as a backing file; returns its id.
///
/// Called once per ramdisk file (the ramdisk keeps the id), so the table
/// only grows to the number of files in the ramdisk.
pub fn register(bytes: &'static [u8]) -> u32 {
    add(CacheFile {
        backing: Backing::Bytes(bytes),
        users: 0,
        pages: PageIndex::new(),
        swapped: 0,
        shadows: PageIndex::new(),
        mappings: Vec::new(),
        reserved: 0,
        serial: SERIALS.fetch_add(1, Ordering::Relaxed),
        _charge: Charge::none(),
        eof: None,
        limit: None,
    })
    .expect("room for a ramdisk file in the page cache")
}

/// A new zero-filled object for a shared anonymous mapping; returns its id,
/// or `None` when out of memory. The caller holds it (one user) until it
/// calls [`release`]; an address space that maps it takes a hold of its own.
/// The object keeps `charge` (its commit charge) until it dies.
pub fn register_anonymous(charge: Charge) -> Option<u32> {
    add(CacheFile {
        backing: Backing::Anonymous,
        users: 1,
        pages: PageIndex::new(),
        swapped: 0,
        shadows: PageIndex::new(),
        mappings: Vec::new(),
        reserved: 0,
        serial: SERIALS.fetch_add(1, Ordering::Relaxed),
        _charge: charge,
        eof: None,
        limit: None,
    })
}

/// One more holder of `file` (an address space with a region of it).
pub fn hold(file: u32) {
    with_file(file, |f| f.users += 1);
}

/// One holder fewer. An anonymous object whose last holder goes is freed
/// with its pages: nothing maps them any more (every region of it is gone,
/// and regions are unmapped before their holder lets go).
pub fn release(file: u32) {
    let dead = slot(file).and_then(|slot| {
        let mut s = slot.lock();
        let f = s.as_mut()?;
        f.users = f.users.saturating_sub(1);
        if f.users > 0 || matches!(f.backing, Backing::Bytes(_)) {
            return None;
        }
        let dead = s.take()?;
        PAGES.fetch_sub(dead.pages.len() as u64 - dead.swapped, Ordering::Relaxed);
        // Resident or swapped out, each page holds one of the limit.
        if let Some(limit) = dead.limit {
            (limit.give)(dead.pages.len() as u64);
        }
        Some(dead)
    });
    // Dropping the index (outside the lock) drops the cache's reference
    // to each resident page and frees each swapped-out page's slot.
    drop(dead);
}

/// Room reserved in a file's reverse map for a change to one address
/// space's regions ([`reserve_mappings`]). Keep it until the change and its
/// [`set_mappings`] are done (or the change failed): while it lives, no
/// other space's replacement can take the room. Dropping it takes the
/// file's lock. The file must outlive it (the reserver holds it, or maps
/// it): a file that dies frees its slot for the next one registered, and
/// a room given back after that would be taken from the new file's.
#[must_use = "the room is given back when this is dropped"]
#[derive(Debug)]
pub struct MapRoom {
    file: u32,
    serial: u64,
    entries: usize,
}

impl Drop for MapRoom {
    fn drop(&mut self) {
        if self.entries == 0 {
            return;
        }
        with_file(self.file, |f| {
            if f.serial != self.serial {
                // Its file died (a bug in the reserver, which must hold
                // it); this slot's file owes it nothing.
                debug_assert!(false, "reverse-map room outlived its file");
                return;
            }
            debug_assert!(
                f.reserved >= self.entries,
                "reverse-map room given back twice"
            );
            f.reserved = f.reserved.saturating_sub(self.entries);
            shrink_if_unused(f);
        });
    }
}

/// Makes room in `file`'s reverse map for `more` entries beyond those it
/// has and those other changes under way reserved, so that the next
/// [`set_mappings`] that adds at most that many does not allocate, even if
/// other address spaces' replacements come first. An address space calls
/// it before a change to its regions and keeps the [`MapRoom`] until it
/// has replaced its entries (fails: the change is refused with `ENOMEM`
/// before anything changed). No such file: nothing to reserve.
pub fn reserve_mappings(file: u32, more: usize) -> Result<MapRoom, NoMemory> {
    let reserved = with_file(file, |f| {
        let wanted = f.reserved.checked_add(more).ok_or(NoMemory)?;
        super::kalloc::try_reserve(&mut f.mappings, wanted).map_err(|_| NoMemory)?;
        f.reserved = wanted;
        Ok((f.serial, more))
    });
    let (serial, entries) = reserved.unwrap_or(Ok((0, 0)))?;
    Ok(MapRoom {
        file,
        serial,
        entries,
    })
}

/// A list nothing maps and no change reserved room in gives its memory
/// back.
fn shrink_if_unused(f: &mut CacheFile) {
    if f.mappings.is_empty() && f.reserved == 0 {
        f.mappings = Vec::new();
    }
}

/// Replaces the reverse-map entries of address space `space` for `file`
/// by `regions` (its regions of that file now; none when it lets go).
/// Called with that address space locked, after a change to its regions,
/// while the [`MapRoom`] reserved for that change lives. Allocates only if
/// no room was reserved (a bug): if that fails too, the entry is left
/// out, which keeps the page it maps from being dropped but is otherwise
/// harmless (see the module docs).
pub fn set_mappings(file: u32, space: u64, regions: impl Iterator<Item = Mapping>) {
    with_file(file, |f| {
        f.mappings.retain(|m| m.space != space);
        for m in regions {
            debug_assert_eq!(m.space, space);
            if f.mappings.len() == f.mappings.capacity() {
                debug_assert!(false, "reverse map of file {file}: no room reserved");
                if f.mappings.try_reserve(1).is_err() {
                    continue;
                }
            }
            f.mappings.push(m);
        }
        shrink_if_unused(f);
    });
}

/// The reverse map of `file` as (entries, capacity, entries reserved by
/// changes under way), for tests and inspection; `None` if there is no
/// such file.
pub fn mappings_room(file: u32) -> Option<(usize, usize, usize)> {
    with_file(file, |f| {
        (f.mappings.len(), f.mappings.capacity(), f.reserved)
    })
}

/// The reverse map of `file` (for tests and inspection); `None` if there
/// is no such file or no memory for the copy.
pub fn mappings(file: u32) -> Option<Vec<Mapping>> {
    with_file(file, |f| {
        let mut copy = Vec::new();
        copy.try_reserve_exact(f.mappings.len()).ok()?;
        copy.extend_from_slice(&f.mappings);
        Some(copy)
    })
    .flatten()
}

/// The file and page index whose cache page is frame `pfn`, if it is one
/// (recorded in the frame's `page_ext` when the page was read in; not
/// under the frames lock).
pub fn owner_of(pfn: Pfn) -> Option<(u32, u64)> {
    super::frames::with(|m| {
        let e = m.ext.get(pfn)?;
        (e.flags & super::pageext::flags::FILE != 0).then_some((e.family, e.vpn))
    })
}

/// A cache page of the file.
pub struct CachePage {
    /// A reference to the cache's frame, for the caller's mapping.
    pub frame: FrameRef,
    /// Whether it had to be read in now (a major fault).
    pub major: bool,
}

/// Why [`get`] found no page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// No frame, or no memory for the index.
    NoMemory,
    /// The page lies wholly past the end of the file (`SIGBUS`, as Linux).
    PastEof,
    /// No such file.
    NoFile,
    /// A swapped-out page could not be read back (`SIGBUS` for a
    /// mapping, `EIO` for a read or write).
    Io,
    /// The object's [`PageLimit`] is used up (`ENOSPC`; `SIGBUS` for a
    /// mapping).
    NoSpace,
}

enum Lookup {
    Hit(FrameRef),
    Miss(Backing, Option<PageLimit>),
    /// A swapped-out page of an anonymous object.
    Swapped,
}

/// The cache frame for `(file, offset)` with one more reference taken for
/// the caller's mapping; reads the page in first if needed (from its file,
/// or from swap for a swapped-out page of an anonymous object). Bytes past
/// the end of the file in its last page read as zero; a page wholly past
/// the end is [`CacheError::PastEof`].
pub fn get(file: u32, offset: u64) -> Result<CachePage, CacheError> {
    let index = offset / PAGE_SIZE;
    // A page that changed under a swap-in (truncated, swapped out again)
    // is looked up again; a few times at most.
    for _ in 0..4 {
        let lookup = with_file(file, |f| {
            if f.eof
                .is_some_and(|eof| index.saturating_mul(PAGE_SIZE) >= eof)
            {
                return Err(CacheError::PastEof);
            }
            match f.pages.get(index) {
                Some(Entry::Page(cached)) => {
                    return cached
                        .try_clone()
                        .map(Lookup::Hit)
                        .ok_or(CacheError::NoMemory)
                }
                Some(Entry::Swapped(_)) => return Ok(Lookup::Swapped),
                None => {}
            }
            if let Backing::Bytes(data) = f.backing {
                if offset >= data.len() as u64 {
                    return Err(CacheError::PastEof);
                }
            }
            Ok(Lookup::Miss(f.backing, f.limit))
        })
        .unwrap_or(Err(CacheError::NoFile))?;
        match lookup {
            Lookup::Hit(frame) => {
                return Ok(CachePage {
                    frame,
                    major: false,
                })
            }
            Lookup::Swapped => {
                if let Some(page) = swap_in(file, index)? {
                    return Ok(page);
                }
            }
            Lookup::Miss(backing, limit) => return read_in_limited(file, index, backing, limit),
        }
    }
    Err(CacheError::NoMemory)
}

/// [`get`]'s miss: a new page of a limited object takes its page of the
/// limit first, given back unless the page went into the index.
fn read_in_limited(
    file: u32,
    index: u64,
    backing: Backing,
    limit: Option<PageLimit>,
) -> Result<CachePage, CacheError> {
    if let Some(limit) = limit {
        if !(limit.take)() {
            return Err(CacheError::NoSpace);
        }
    }
    let got = read_in(file, index, backing);
    if let Some(limit) = limit {
        if !matches!(got, Ok(CachePage { major: true, .. })) {
            (limit.give)(1);
        }
    }
    got
}

/// Reads page `index` of `file`, not cached, into a new cache frame (see
/// [`get`]), or takes the one a racing reader put there first.
fn read_in(file: u32, index: u64, backing: Backing) -> Result<CachePage, CacheError> {
    let offset = index * PAGE_SIZE;
    // Read the page in without the file's lock (allocating may reclaim).
    let frame = FrameRef::alloc_user(FrameKind::UserFile, true).ok_or(CacheError::NoMemory)?;
    if let Backing::Bytes(data) = backing {
        let start = offset as usize;
        let end = (start + PAGE_SIZE as usize).min(data.len());
        // `start < end <= data.len()` (checked past-EOF above).
        super::direct::write_frame(frame.pfn(), &data[start..end]);
    }
    // (Returning early drops `frame`: our page goes back.)
    let Some(slot) = slot(file) else {
        return Err(CacheError::NoFile);
    };
    let mut s = slot.lock();
    let Some(f) = s.as_mut() else {
        // The object died meanwhile (its last holder went).
        return Err(CacheError::NoFile);
    };
    {
        let shadow = f
            .shadows
            .remove(index)
            .map(|bits| reclaimcore::Shadow::from_bits(bits as u64));
        match f.pages.get(index) {
            Some(Entry::Page(raced)) => {
                // Someone else read it in while we were copying: use theirs.
                let frame = raced.try_clone().ok_or(CacheError::NoMemory)?;
                return Ok(CachePage {
                    frame,
                    major: false,
                });
            }
            // Read in and swapped out again meanwhile: not ours to fill
            // (a zero page would hide its contents).
            Some(Entry::Swapped(_)) => return Err(CacheError::NoMemory),
            None => {}
        }
        // The cache keeps the allocation's reference; the mapping gets
        // another.
        let mapping = frame.try_clone().ok_or(CacheError::NoMemory)?;
        let pfn = frame.pfn();
        match f.pages.insert(index, Entry::Page(frame)) {
            Ok(_) => {}
            Err(IndexError::NoMemory) | Err(IndexError::TooLarge) => {
                return Err(CacheError::NoMemory);
            }
        }
        PAGES.fetch_add(1, Ordering::Relaxed);
        track(f.backing, file, index, pfn, shadow);
        Ok(CachePage {
            frame: mapping,
            major: true,
        })
    }
}

/// A page just put in `file`'s index at `index` in frame `pfn`: findable
/// from its frame and on the LRU lists — a ramdisk page on the file lists
/// (with its shadow, if a refault), an anonymous object's page on the
/// anon lists (swap is where it goes, as Linux's shmem). Under the cache
/// lock.
fn track(backing: Backing, file: u32, index: u64, pfn: Pfn, shadow: Option<reclaimcore::Shadow>) {
    super::frames::with(|m| {
        if let Some(e) = m.ext.get_mut(pfn) {
            e.flags |= super::pageext::flags::FILE;
            e.family = file;
            e.vpn = index;
        }
        if matches!(backing, Backing::Anonymous) {
            m.ext.lru_add(pfn, reclaimcore::Kind::Anon, None);
            return;
        }
        let active = m.ext.lru_add(pfn, reclaimcore::Kind::File, shadow);
        if shadow.is_some() {
            super::vmstat::WORKINGSET_REFAULT_FILE.inc();
            if active == Some(true) {
                super::vmstat::WORKINGSET_ACTIVATE_FILE.inc();
            }
        }
    });
}

/// Reads the swapped-out page `index` of anonymous object `file` back
/// from its slot into a new frame, puts it back in the index and frees
/// the slot (Linux's `shmem_swapin_folio`). `Ok(None)`: the entry is no
/// longer a swapped-out page (someone read it in, or truncated it): look
/// again. [`CacheError::Io`] if the device could not read it.
fn swap_in(file: u32, index: u64) -> Result<Option<CachePage>, CacheError> {
    let frame = FrameRef::alloc_user(FrameKind::UserFile, false).ok_or(CacheError::NoMemory)?;
    let pfn = frame.pfn();
    let _stall = super::psi::MemStall::enter();
    let done = with_file(file, |f| {
        let slot = match f.pages.get(index) {
            Some(Entry::Swapped(slot)) => slot.0,
            Some(Entry::Page(raced)) => {
                let frame = raced.try_clone().ok_or(CacheError::NoMemory)?;
                return Ok(Some((
                    CachePage {
                        frame,
                        major: false,
                    },
                    None,
                )));
            }
            None => return Ok(None),
        };
        // Read with the file's lock held (the device's lock nests inside
        // it): nobody can swap the page in or out, or truncate it, under
        // us.
        super::swap::read_in_run(slot, &[pfn]).map_err(|_| CacheError::Io)?;
        super::vmstat::PSWPIN.inc();
        let mapping = frame.try_clone().ok_or(CacheError::NoMemory)?;
        // The entry exists: replacing it allocates nothing.
        let old = f
            .pages
            .insert(index, Entry::Page(frame))
            .map_err(|_| CacheError::NoMemory)?;
        f.swapped -= 1;
        PAGES.fetch_add(1, Ordering::Relaxed);
        track(Backing::Anonymous, file, index, pfn, None);
        Ok(Some((
            CachePage {
                frame: mapping,
                major: true,
            },
            old,
        )))
    })
    .unwrap_or(Err(CacheError::NoFile))?;
    // The old entry (the slot) is dropped here, outside the file's lock:
    // its slot goes back.
    Ok(done.map(|(page, _old)| page))
}

/// The page `index` of `file` with a reference for the caller, if it is
/// in the file (allocates no frame for a hole, reads nothing from a
/// ramdisk; a swapped-out page of an anonymous object is read back in).
pub fn peek(file: u32, index: u64) -> Result<Option<FrameRef>, CacheError> {
    for _ in 0..4 {
        let swapped = with_file(file, |f| match f.pages.get(index) {
            Some(Entry::Page(frame)) => frame
                .try_clone()
                .map(|f| Some(Some(f)))
                .ok_or(CacheError::NoMemory),
            Some(Entry::Swapped(_)) => Ok(None),
            None => Ok(Some(None)),
        })
        .unwrap_or(Err(CacheError::NoFile))?;
        match swapped {
            Some(found) => return Ok(found),
            None => {
                if let Some(page) = swap_in(file, index)? {
                    return Ok(Some(page.frame));
                }
            }
        }
    }
    Err(CacheError::NoMemory)
}

/// Gives anonymous object `file` an end (a tmpfs file's size): faults on
/// pages wholly past it are [`CacheError::PastEof`]. Pages already cached
/// past it stay until [`truncate_pages`] drops them.
pub fn set_eof(file: u32, eof: u64) {
    with_file(file, |f| {
        if matches!(f.backing, Backing::Anonymous) {
            f.eof = Some(eof);
        }
    });
}

/// Drops the pages of anonymous object `file` from page `from` on (a tmpfs
/// file shrunk by `ftruncate`): each is unmapped from every address space
/// that maps it first, so a later touch there faults, past the end of the
/// file: `SIGBUS`; a swapped-out one gives its slot back. Returns how many
/// pages (resident or swapped out) were dropped. A page whose mapper
/// cannot be reached now ([`Busy`]) is retried a few times, then left in
/// the index (where it is unreachable past the end, and freed with the
/// object).
pub fn truncate_pages(file: u32, from: u64) -> u64 {
    let indices = |f: &mut CacheFile| -> Option<Vec<u64>> {
        let mut out = Vec::new();
        for (index, _) in f.pages.iter().filter(|&(i, _)| i >= from) {
            out.try_reserve(1).ok()?;
            out.push(index);
        }
        Some(out)
    };
    let mut dropped = 0;
    for _ in 0..4 {
        let Some(pages) = with_file(file, indices).flatten() else {
            return dropped;
        };
        if pages.is_empty() {
            break;
        }
        for index in pages {
            if unmap_page_everywhere(file, index).is_err() {
                // Tried again in the next round.
                continue;
            }
            let removed = with_file(file, |f| {
                let page = f.pages.remove(index)?;
                match page {
                    Entry::Page(_) => {
                        PAGES.fetch_sub(1, Ordering::Relaxed);
                    }
                    Entry::Swapped(_) => f.swapped -= 1,
                }
                if let Some(limit) = f.limit {
                    (limit.give)(1);
                }
                Some(page)
            })
            .flatten();
            // The cache's reference (or the slot) goes here, outside the
            // lock.
            if removed.is_some() {
                dropped += 1;
            }
        }
    }
    dropped
}

/// Pages in the cache (`Cached` in meminfo).
pub fn cached_pages() -> u64 {
    PAGES.load(Ordering::Relaxed)
}

/// Live anonymous objects (shared anonymous memory) and their resident
/// pages (`Shmem`; their swapped-out pages are in swap's use).
pub fn anonymous_objects() -> (usize, u64) {
    let (mut n, mut p) = (0, 0);
    each_file(|_, f| {
        if matches!(f.backing, Backing::Anonymous) {
            n += 1;
            p += f.pages.len() as u64 - f.swapped;
        }
    });
    (n, p)
}

/// Swapped-out pages of `file` among its `pages` pages from `first` on (a
/// shared mapping's `Swap` in smaps, Linux's `shmem_swap_usage`).
pub fn swapped_in_range(file: u32, first: u64, pages: u64) -> u64 {
    with_file(file, |f| {
        if f.swapped == 0 {
            return 0;
        }
        let end = first.saturating_add(pages);
        f.pages
            .iter_from(first)
            .take_while(|&(i, _)| i < end)
            .filter(|(_, e)| e.is_swapped())
            .count() as u64
    })
    .unwrap_or(0)
}

/// Swapped-out pages of anonymous objects (each holds one swap slot).
pub fn swapped_pages() -> u64 {
    let mut sum = 0;
    each_file(|_, f| sum += f.swapped);
    sum
}

/// Clean cache pages no mapping uses: what [`shrink`] would free now
/// (`MemAvailable` counts them as available).
pub fn reclaimable_pages() -> u64 {
    let mut sum = 0;
    each_file(|_, f| {
        if matches!(f.backing, Backing::Bytes(_)) {
            sum += f
                .pages
                .iter()
                .filter(|(_, e)| e.page().is_some_and(|frame| frame.refcount() == 1))
                .count() as u64;
        }
    });
    sum
}

/// Drops up to `target` clean cache pages no mapping uses (ramdisk pages
/// whose only reference is the cache's own); returns how many were freed.
/// Anonymous objects' pages are never dropped: they exist nowhere else.
fn shrink_unmapped_locked(_: &mut Cache, target: u64) -> u64 {
    let mut freed = 0;
    each_file(|_, f| shrink_unmapped_file(f, target, &mut freed));
    PAGES.fetch_sub(freed, Ordering::Relaxed);
    freed
}

/// [`shrink_unmapped_locked`]'s work on one file (under its lock).
fn shrink_unmapped_file(f: &mut CacheFile, target: u64, freed: &mut u64) {
    {
        if matches!(f.backing, Backing::Anonymous) {
            return;
        }
        // Dropping a page the index no longer keeps frees it.
        f.pages.retain(|_, e| {
            let Some(frame) = e.page() else { return true };
            if *freed >= target || frame.refcount() != 1 {
                return true;
            }
            *freed += 1;
            false
        });
    }
}

/// Reclaim: drops page `index` of `file` from the cache if the cache
/// holds it in `pfn` and nobody but the cache and the caller (its pin)
/// references it, leaving `shadow` where it was (if the index has room).
/// Returns whether it did.
pub fn drop_page(
    file: u32,
    index: u64,
    pfn: mmcore::Pfn,
    shadow: Option<reclaimcore::Shadow>,
) -> bool {
    with_file(file, |f| {
        if !matches!(f.backing, Backing::Bytes(_)) {
            return false;
        }
        let ours = f
            .pages
            .get(index)
            .and_then(Entry::page)
            .is_some_and(|frame| frame.pfn() == pfn && frame.refcount() == 2);
        if !ours {
            return false;
        }
        // Dropping the index's reference; the caller's pin frees it.
        let gone = f.pages.remove(index).is_some();
        if gone {
            if let Some(shadow) = shadow {
                // No room for the shadow: the refault looks like a first
                // touch, nothing worse.
                let _ = f.shadows.insert(index, shadow.to_bits() as u32);
            }
            PAGES.fetch_sub(1, Ordering::Relaxed);
        }
        gone
    })
    .unwrap_or(false)
}

/// The address spaces a reverse-map walk may visit, with their ids (read
/// before the cache and file locks are taken; one busy then is never found).
struct Reach<'a> {
    spaces: &'a [SharedAddressSpace],
    ids: [u64; MAX_REACH],
}

/// The most address spaces one walk resolves (as many as reclaim lists).
const MAX_REACH: usize = 64;

impl<'a> Reach<'a> {
    fn new(spaces: &'a [SharedAddressSpace]) -> Reach<'a> {
        let mut ids = [0; MAX_REACH];
        for (id, a) in ids.iter_mut().zip(spaces) {
            if let Some(a) = crate::arch::sync::try_lock_irq_off(a) {
                *id = a.id();
            }
        }
        Reach { spaces, ids }
    }

    /// The address space with id `space`, if reachable.
    fn find(&self, space: u64) -> Option<&'a SharedAddressSpace> {
        let i = self.ids.iter().position(|&id| id == space && id != 0)?;
        self.spaces.get(i)
    }

    /// Runs `f(space, va)` on every leaf address where `mappings` map page
    /// `index`, each address space locked; changes nothing and returns
    /// [`Busy`] if one of them cannot be reached or locked.
    fn each_leaf(
        &self,
        mappings: &[Mapping],
        index: u64,
        mut f: impl FnMut(&mut AddressSpace, u64),
    ) -> Result<(), Busy> {
        let at = || {
            mappings
                .iter()
                .filter_map(move |m| Some((m.space, m.va_of(index)?)))
        };
        // All or nothing: look first (the file's lock is held, interrupts
        // are off: nothing else runs between the two loops).
        for (space, _) in at() {
            let a = self.find(space).ok_or(Busy)?;
            drop(crate::arch::sync::try_lock_irq_off(a).ok_or(Busy)?);
        }
        for (space, va) in at() {
            let a = self.find(space).ok_or(Busy)?;
            let mut guard = crate::arch::sync::try_lock_irq_off(a).ok_or(Busy)?;
            f(&mut guard, va);
        }
        Ok(())
    }

    /// Tests and clears the accessed bit of every leaf mapping the frame at
    /// `pa` as page `index`; true if one was set, a mapper is busy, or a
    /// mapping is mlock'ed (such a page counts as just used: reclaim never
    /// evicts it, as Linux keeps it on its unevictable list).
    fn referenced(&self, mappings: &[Mapping], index: u64, pa: u64) -> bool {
        let mut young = false;
        let done = self.each_leaf(mappings, index, |a, va| {
            young |= a.clear_young(va, pa).unwrap_or(false);
            young |= a.is_locked(va);
        });
        young || done.is_err()
    }

    /// Clears every leaf mapping the frame at `pa` as page `index` (each
    /// through its address space's gather); the leaves cleared and whether
    /// one of them was dirty.
    fn unmap(&self, mappings: &[Mapping], index: u64, pa: u64) -> Result<(usize, bool), Busy> {
        let (mut cleared, mut dirty) = (0, false);
        self.each_leaf(mappings, index, |a, va| {
            if let Some(d) = a.unmap_frame(va, pa) {
                cleared += 1;
                dirty |= d;
            }
        })?;
        Ok((cleared, dirty))
    }
}

/// Runs `f` on `file`'s reverse map and page `index`'s frame address
/// under the file's lock; `None` if the page is not cached.
fn with_page<R>(file: u32, index: u64, f: impl FnOnce(&[Mapping], u64) -> R) -> Option<R> {
    with_file(file, |file| {
        let pa = file.pages.get(index)?.page()?.pfn().addr();
        Some(f(&file.mappings, pa))
    })
    .flatten()
}

/// Clears every page-table entry, in every address space, that maps the
/// cache page `(file, index)` (a private copy at the same address is
/// another frame and stays); each TLB is flushed before the leaf's
/// reference goes. Returns the leaves cleared (0 if the page is not
/// cached), or [`Busy`] and no change if a mapper's address space could
/// not be locked. The page stays in the cache: the next touch maps it
/// again. Call with no lock held.
pub fn unmap_page_everywhere(file: u32, index: u64) -> Result<usize, Busy> {
    let spaces = super::reclaim::address_spaces();
    let result = unmap_page_in(&spaces, file, index);
    // (The list may hold the last reference to a space: dropped here,
    // with no lock held.)
    drop(spaces);
    result
}

/// Reclaim's second look at a mapped page it found unreferenced: unmaps
/// it everywhere; `Ok(true)` if no leaf was dirty (a dirty leaf of a
/// shared mapping wrote the cache frame itself: it must stay).
pub fn unmap_clean(file: u32, index: u64) -> Result<bool, Busy> {
    let spaces = super::reclaim::address_spaces();
    let reach = Reach::new(&spaces);
    let result = with_page(file, index, |mappings, pa| reach.unmap(mappings, index, pa))
        .unwrap_or(Ok((0, false)))
        .map(|(_, dirty)| !dirty);
    drop(spaces);
    result
}

/// [`unmap_page_everywhere`] over the address spaces `spaces`.
pub fn unmap_page_in(spaces: &[SharedAddressSpace], file: u32, index: u64) -> Result<usize, Busy> {
    let reach = Reach::new(spaces);
    with_page(file, index, |mappings, pa| reach.unmap(mappings, index, pa))
        .unwrap_or(Ok((0, false)))
        .map(|(cleared, _)| cleared)
}

/// Whether a leaf mapping the cache page `(file, index)` was accessed since
/// the last look (Linux's `folio_referenced`): tests and clears the
/// accessed bit in every mapper. A busy mapper counts as a reference (the
/// page is kept). Call with no lock held.
pub fn page_referenced(file: u32, index: u64) -> bool {
    let spaces = super::reclaim::address_spaces();
    let young = page_referenced_in(&spaces, file, index);
    drop(spaces);
    young
}

/// [`page_referenced`] over the address spaces `spaces`.
pub fn page_referenced_in(spaces: &[SharedAddressSpace], file: u32, index: u64) -> bool {
    let reach = Reach::new(spaces);
    with_page(file, index, |mappings, pa| {
        reach.referenced(mappings, index, pa)
    })
    .unwrap_or(false)
}

/// The second look at a mapped ramdisk page: if no mapper touched it since
/// the last look, unmaps it everywhere; true if the cache may drop it now
/// (only its own reference is left, no leaf was dirty).
fn evict_mapped(reach: &Reach, mappings: &[Mapping], index: u64, frame: &FrameRef) -> bool {
    if frame.refcount() == 1 {
        return true;
    }
    let pa = frame.pfn().addr();
    if reach.referenced(mappings, index, pa) {
        return false;
    }
    match reach.unmap(mappings, index, pa) {
        // A dirty leaf would have written the cache frame itself (a
        // shared mapping made writable): its data lives only there.
        Ok((_, dirty)) => !dirty && frame.refcount() == 1,
        Err(Busy) => false,
    }
}

/// Sweeps the mapped ramdisk pages from the hand on, dropping up to
/// `target` that were not referenced since the last sweep.
fn shrink_mapped_locked(c: &mut Cache, reach: &Reach, target: u64) -> u64 {
    let Cache { hand } = c;
    let n = SLOTS.load(Ordering::Acquire) as usize;
    if n == 0 || target == 0 {
        return 0;
    }
    let (first, from) = ((hand.0 as usize) % n, hand.1);
    let mut freed = 0;
    let mut stop = None;
    // The hand's file from the hand on, every other file, then the hand's
    // file up to the hand.
    for step in 0..=n {
        let id = (first + step) % n;
        let window = match step {
            0 => from..u64::MAX,
            s if s == n => 0..from,
            _ => 0..u64::MAX,
        };
        let Some(slot) = slot(id as u32) else {
            continue;
        };
        let mut s = slot.lock();
        let Some(f) = s.as_mut() else {
            continue;
        };
        if matches!(f.backing, Backing::Anonymous) {
            continue;
        }
        let CacheFile {
            pages: index_of,
            mappings,
            ..
        } = f;
        index_of.retain(|index, e| {
            if stop.is_some() || !window.contains(&index) {
                return true;
            }
            let Some(frame) = e.page() else { return true };
            if !evict_mapped(reach, mappings, index, frame) {
                return true;
            }
            freed += 1;
            if freed >= target {
                stop = Some((id as u32, index + 1));
            }
            false
        });
        if stop.is_some() {
            break;
        }
    }
    if let Some(h) = stop {
        *hand = h;
    }
    PAGES.fetch_sub(freed, Ordering::Relaxed);
    MAPPED_DROPPED.fetch_add(freed, Ordering::Relaxed);
    freed
}

/// Frees up to `target` clean ramdisk pages from the cache: first those no
/// process maps, then mapped ones not referenced since the last look
/// (each unmapped everywhere first; a page some mapper touched meanwhile
/// only loses its accessed bits, and goes on a later call if it stays
/// idle). Returns pages freed. Shared anonymous memory is never dropped
/// here (it has no backing: reclaim swaps it out from the anon lists,
/// [`swap_out`]). Call with no lock held.
pub fn shrink_to(target: u64) -> u64 {
    let spaces = super::reclaim::address_spaces();
    let freed = shrink_in(&spaces, target);
    drop(spaces);
    freed
}

/// [`shrink_to`] over the address spaces `spaces`.
pub fn shrink_in(spaces: &[SharedAddressSpace], target: u64) -> u64 {
    let reach = Reach::new(spaces);
    locked(|c| {
        let freed = shrink_unmapped_locked(c, target);
        freed + shrink_mapped_locked(c, &reach, target - freed)
    })
}

/// [`shrink_to`] everything it can (one look at each mapped page), and
/// forget every shadow (`drop_caches`).
pub fn shrink() -> u64 {
    locked(forget_shadows);
    shrink_to(u64::MAX)
}

/// Drops every clean cache page no mapping uses (not mapped ones).
/// Forgets every shadow too: what is left afterwards is only what is in
/// use (the tests' settled state).
pub fn shrink_unmapped() -> u64 {
    locked(|c| {
        forget_shadows(c);
        shrink_unmapped_locked(c, u64::MAX)
    })
}

fn forget_shadows(_: &mut Cache) {
    each_file(|_, f| f.shadows = PageIndex::new());
}

/// Like [`shrink_unmapped`] but passes over what is busy (the cache lock:
/// nothing at all; a file's lock: that file), so the frame allocator can
/// call it on its way to failing from any context, even one that holds
/// the cache lock or a file's. It leaves mapped pages alone: reaching
/// their address spaces takes the scheduler's list, which the
/// allocator's caller may hold.
pub fn try_shrink() -> u64 {
    let Some(_cache) = CACHE.try_lock() else {
        return 0;
    };
    // Each file only tried too: the allocation may come from under one.
    let mut freed = 0;
    for id in 0..SLOTS.load(Ordering::Acquire) {
        if let Some(mut s) = slot(id).and_then(FileSlot::try_lock) {
            if let Some(f) = s.as_mut() {
                shrink_unmapped_file(f, u64::MAX, &mut freed);
            }
        }
    }
    PAGES.fetch_sub(freed, Ordering::Relaxed);
    freed
}

/// Mapped cache pages dropped so far (unmapped everywhere first).
pub fn mapped_dropped() -> u64 {
    MAPPED_DROPPED.load(Ordering::Relaxed)
}

/// What [`swap_out`] did with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapOut {
    /// Written to a slot that now stands in its place in the index; the
    /// cache's reference is gone (the caller's pin frees the frame).
    Done,
    /// Left as it was: not this frame any more, mapped or in use (more
    /// than the cache's reference and the caller's pin), or the write
    /// failed.
    Kept,
    /// No slot: swap is off, full, or being turned off.
    NoSlot,
}

/// Reclaim of page `index` of anonymous object `file`, held in `pfn`
/// (which the caller pinned, and has unmapped everywhere): if only the
/// index and the pin hold it, it is written to a fresh swap slot and the
/// slot replaces it in the index (Linux's `shmem_writepage`). Written with
/// the file's lock held, so no lookup can take the page meanwhile (the
/// device's lock nests inside the cache's). Call with no lock held.
pub fn swap_out(file: u32, index: u64, pfn: Pfn) -> SwapOut {
    let (result, old) = with_file(file, |f| {
        if !matches!(f.backing, Backing::Anonymous) {
            return (SwapOut::Kept, None);
        }
        let ours = f
            .pages
            .get(index)
            .and_then(Entry::page)
            .is_some_and(|frame| frame.pfn() == pfn && frame.refcount() == 2);
        if !ours {
            return (SwapOut::Kept, None);
        }
        let Some(slot) = super::swap::alloc_slot() else {
            return (SwapOut::NoSlot, None);
        };
        // (Dropped on failure: the slot goes back.)
        let slot = SwapSlot(slot);
        if super::swap::write_out(slot.0, pfn).is_err() {
            return (SwapOut::Kept, Some(Entry::Swapped(slot)));
        }
        super::vmstat::PSWPOUT.inc();
        // The entry exists: replacing it allocates nothing.
        match f.pages.insert(index, Entry::Swapped(slot)) {
            Ok(old) => {
                f.swapped += 1;
                PAGES.fetch_sub(1, Ordering::Relaxed);
                (SwapOut::Done, old)
            }
            Err(_) => (SwapOut::Kept, None),
        }
    })
    .unwrap_or((SwapOut::Kept, None));
    // The cache's reference (or an unused slot) goes here, outside the lock.
    drop(old);
    result
}

/// Brings every swapped-out page of every anonymous object back into RAM
/// (for `swapoff`); returns how many, or the first failure with the page
/// `(file, index)`.
pub fn swap_in_all() -> Result<u64, (u32, u64, CacheError)> {
    let files = SLOTS.load(Ordering::Acquire);
    let mut done = 0;
    for file in 0..files {
        let mut from = 0;
        loop {
            let next = with_file(file, |f| {
                if f.swapped == 0 {
                    return None;
                }
                f.pages
                    .iter_from(from)
                    .find(|(_, e)| e.is_swapped())
                    .map(|(i, _)| i)
            })
            .flatten();
            let Some(index) = next else { break };
            match swap_in(file, index) {
                // (The reference it gives is not kept: the page stays in
                // the index.)
                Ok(Some(_)) => done += 1,
                Ok(None) => {}
                Err(CacheError::NoFile) => break,
                Err(e) => return Err((file, index, e)),
            }
            from = index + 1;
        }
    }
    Ok(done)
}
