//! Files that can back memory, and the page cache in front of them.
//!
//! Two kinds of "file" back memory:
//! - a ramdisk file: bytes that live for the kernel's lifetime. Its pages
//!   are clean copies, so a page no process maps can be dropped whenever
//!   memory is short ([`shrink`]) and read again on the next touch.
//! - an anonymous object, the memory behind `MAP_SHARED | MAP_ANONYMOUS`
//!   (Linux's shmem): zero-filled pages that every process mapping it
//!   shares, even pages first touched after a fork. Its pages have no copy
//!   anywhere else, so they stay until the object dies: when the last
//!   address space holding one of its regions lets go ([`release`]).
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
//! Lock order: the cache lock, then the frames lock. Frames for new pages
//! are allocated with the cache lock *not* held, because allocating may
//! reclaim cache pages ([`try_shrink`]).

use alloc::vec::Vec;
use mmcore::FrameKind;
use vmcore::radix::{IndexError, PageIndex};

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

struct CacheFile {
    backing: Backing,
    /// Address spaces holding a region of it (plus a creator's hold while
    /// `mmap` sets it up). An anonymous object dies when this reaches 0;
    /// ramdisk files never do.
    users: u32,
    pages: PageIndex<FrameRef>,
    /// Shadows of pages reclaim dropped ([`reclaimcore::Shadow`] bits),
    /// taken back when the page is read in again: Linux keeps them in the
    /// page's own xarray slot; here they have an index of their own.
    shadows: PageIndex<u32>,
    /// An anonymous object's commit charge for its size (Linux's
    /// `shmem_acct_size`), given back when it dies.
    _charge: Charge,
}

struct Cache {
    /// Indexed by file id; a dead anonymous object leaves `None` for reuse.
    files: Vec<Option<CacheFile>>,
    /// Pages cached over all files.
    pages: u64,
}

static CACHE: IrqMutex<Cache> = IrqMutex::new(Cache {
    files: Vec::new(),
    pages: 0,
});

fn locked<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    CACHE.with(f)
}

impl Cache {
    fn file(&mut self, id: u32) -> Option<&mut CacheFile> {
        self.files.get_mut(id as usize)?.as_mut()
    }

    /// Stores `file` in a free slot; `None` if the id table cannot grow.
    fn add(&mut self, file: CacheFile) -> Option<u32> {
        if let Some(free) = self.files.iter().position(Option::is_none) {
            self.files[free] = Some(file);
            return Some(free as u32);
        }
        self.files.try_reserve(1).ok()?;
        self.files.push(Some(file));
        Some((self.files.len() - 1) as u32)
    }
}

/// Makes `bytes` available as a backing file; returns its id.
///
/// Called once per ramdisk file (the ramdisk keeps the id), so the table
/// only grows to the number of files in the ramdisk.
pub fn register(bytes: &'static [u8]) -> u32 {
    locked(|c| {
        c.add(CacheFile {
            backing: Backing::Bytes(bytes),
            users: 0,
            pages: PageIndex::new(),
            shadows: PageIndex::new(),
            _charge: Charge::none(),
        })
    })
    .expect("room for a ramdisk file in the page cache")
}

/// A new zero-filled object for a shared anonymous mapping; returns its id,
/// or `None` when out of memory. The caller holds it (one user) until it
/// calls [`release`]; an address space that maps it takes a hold of its own.
/// The object keeps `charge` (its commit charge) until it dies.
pub fn register_anonymous(charge: Charge) -> Option<u32> {
    locked(|c| {
        c.add(CacheFile {
            backing: Backing::Anonymous,
            users: 1,
            pages: PageIndex::new(),
            shadows: PageIndex::new(),
            _charge: charge,
        })
    })
}

/// One more holder of `file` (an address space with a region of it).
pub fn hold(file: u32) {
    locked(|c| {
        if let Some(f) = c.file(file) {
            f.users += 1;
        }
    })
}

/// One holder fewer. An anonymous object whose last holder goes is freed
/// with its pages: nothing maps them any more (every region of it is gone,
/// and regions are unmapped before their holder lets go).
pub fn release(file: u32) {
    locked(|c| {
        let Some(f) = c.file(file) else { return };
        f.users = f.users.saturating_sub(1);
        if f.users > 0 || matches!(f.backing, Backing::Bytes(_)) {
            return;
        }
        if let Some(dead) = c.files[file as usize].take() {
            c.pages -= dead.pages.len() as u64;
            // Dropping the index drops the cache's reference to each page.
        }
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
}

enum Lookup {
    Hit(FrameRef),
    Miss(Backing),
}

/// The cache frame for `(file, offset)` with one more reference taken for
/// the caller's mapping; reads the page in first if needed. Bytes past the
/// end of the file in its last page read as zero; a page wholly past the
/// end is [`CacheError::PastEof`].
pub fn get(file: u32, offset: u64) -> Result<CachePage, CacheError> {
    let index = offset / PAGE_SIZE;
    let lookup = locked(|c| {
        let f = c.file(file).ok_or(CacheError::NoFile)?;
        if let Some(cached) = f.pages.get(index) {
            return cached
                .try_clone()
                .map(Lookup::Hit)
                .ok_or(CacheError::NoMemory);
        }
        if let Backing::Bytes(data) = f.backing {
            if offset >= data.len() as u64 {
                return Err(CacheError::PastEof);
            }
        }
        Ok(Lookup::Miss(f.backing))
    })?;
    let backing = match lookup {
        Lookup::Hit(frame) => {
            return Ok(CachePage {
                frame,
                major: false,
            })
        }
        Lookup::Miss(backing) => backing,
    };
    // Read the page in without the cache lock (allocating may reclaim).
    let frame = FrameRef::alloc_user(FrameKind::UserFile, true).ok_or(CacheError::NoMemory)?;
    if let Backing::Bytes(data) = backing {
        let start = offset as usize;
        let end = (start + PAGE_SIZE as usize).min(data.len());
        // `start < end <= data.len()` (checked past-EOF above).
        super::direct::write_frame(frame.pfn(), &data[start..end]);
    }
    locked(|c| {
        // (Returning early drops `frame`: our page goes back.)
        let Some(f) = c.file(file) else {
            // The object died meanwhile (its last holder went).
            return Err(CacheError::NoFile);
        };
        let shadow = f
            .shadows
            .remove(index)
            .map(|bits| reclaimcore::Shadow::from_bits(bits as u64));
        if let Some(raced) = f.pages.get(index) {
            // Someone else read it in while we were copying: use theirs.
            let frame = raced.try_clone().ok_or(CacheError::NoMemory)?;
            return Ok(CachePage {
                frame,
                major: false,
            });
        }
        // The cache keeps the allocation's reference; the mapping gets
        // another.
        let mapping = frame.try_clone().ok_or(CacheError::NoMemory)?;
        match f.pages.insert(index, frame) {
            Ok(_) => {}
            Err(IndexError::NoMemory) | Err(IndexError::TooLarge) => {
                return Err(CacheError::NoMemory);
            }
        }
        let file_page = matches!(f.backing, Backing::Bytes(_));
        c.pages += 1;
        if file_page {
            // A file page: on the file LRU, findable from its frame.
            super::frames::with(|m| {
                let pfn = mapping.pfn();
                if let Some(e) = m.ext.get_mut(pfn) {
                    e.flags |= super::pageext::flags::FILE;
                    e.family = file;
                    e.vpn = index;
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
        Ok(CachePage {
            frame: mapping,
            major: true,
        })
    })
}

/// Pages in the cache (`Cached` in meminfo).
pub fn cached_pages() -> u64 {
    locked(|c| c.pages)
}

/// Live anonymous objects (shared anonymous memory) and their cached pages.
pub fn anonymous_objects() -> (usize, u64) {
    locked(|c| {
        c.files
            .iter()
            .flatten()
            .filter(|f| matches!(f.backing, Backing::Anonymous))
            .fold((0, 0), |(n, p), f| (n + 1, p + f.pages.len() as u64))
    })
}

/// Clean cache pages no mapping uses: what [`shrink`] would free now
/// (`MemAvailable` counts them as available).
pub fn reclaimable_pages() -> u64 {
    locked(|c| {
        c.files
            .iter()
            .flatten()
            .filter(|f| matches!(f.backing, Backing::Bytes(_)))
            .map(|f| {
                f.pages
                    .iter()
                    .filter(|(_, frame)| frame.refcount() == 1)
                    .count() as u64
            })
            .sum()
    })
}

/// Drops the clean cache pages no mapping uses (ramdisk pages whose only
/// reference is the cache's own); returns how many were freed. Anonymous
/// objects' pages are never dropped: they exist nowhere else.
fn shrink_locked(c: &mut Cache) -> u64 {
    let mut freed = 0;
    for f in c.files.iter_mut().flatten() {
        if matches!(f.backing, Backing::Anonymous) {
            continue;
        }
        // Dropping a page the index no longer keeps frees it.
        freed += f.pages.retain(|_, frame| frame.refcount() != 1) as u64;
    }
    c.pages -= freed;
    freed
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
    locked(|c| {
        let Some(f) = c.file(file) else { return false };
        if !matches!(f.backing, Backing::Bytes(_)) {
            return false;
        }
        let ours = f
            .pages
            .get(index)
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
            c.pages -= 1;
        }
        gone
    })
}

/// [`shrink_locked`] under the cache lock, forgetting every shadow too
/// (`drop_caches`: what is left afterwards is only what is in use).
pub fn shrink() -> u64 {
    locked(|c| {
        for f in c.files.iter_mut().flatten() {
            f.shadows = PageIndex::new();
        }
        shrink_locked(c)
    })
}

/// Like [`shrink`] but gives up (returning 0) if the cache is busy, so the
/// frame allocator can call it on its way to failing from any context, even
/// one that holds the cache lock.
pub fn try_shrink() -> u64 {
    match CACHE.try_lock() {
        Some(mut c) => shrink_locked(&mut c),
        None => 0,
    }
}
