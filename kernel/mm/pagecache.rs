//! Files that can back memory, and the page cache in front of them.
//!
//! A file is registered as a byte slice that lives for the kernel's lifetime
//! (the ramdisk is mapped read-only and never freed). The first touch of a
//! file page reads it into a cache frame (a major fault); every later touch,
//! from any address space, maps that same frame. The cache holds one
//! reference to each of its frames, each mapping holds another.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use mmcore::{FrameKind, Pfn, PhysMem};
use spin::Mutex;

use super::frames::{self, DirectMap};
use super::layout::PAGE_SIZE;

/// What backs a cache "file".
#[derive(Clone, Copy)]
enum Backing {
    /// Bytes that live forever (a ramdisk file).
    Bytes(&'static [u8]),
    /// Zero-filled memory with no file behind it: the object behind a
    /// shared anonymous mapping (Linux's shmem), so every process that maps
    /// it sees the same frames, even for pages first touched after a fork.
    Anonymous,
}

struct Cache {
    files: Vec<Backing>,
    pages: BTreeMap<(u32, u64), Pfn>,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    files: Vec::new(),
    pages: BTreeMap::new(),
});

fn locked<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut CACHE.lock()))
}

/// Makes `bytes` available as a backing file; returns its id.
pub fn register(bytes: &'static [u8]) -> u32 {
    locked(|c| {
        c.files.push(Backing::Bytes(bytes));
        (c.files.len() - 1) as u32
    })
}

/// A new zero-filled object for a shared anonymous mapping; returns its id.
/// Its pages stay cached while mapped and go at the next `shrink` after
/// the last mapping is gone.
pub fn register_anonymous() -> u32 {
    locked(|c| {
        c.files.push(Backing::Anonymous);
        (c.files.len() - 1) as u32
    })
}

/// A cache page of the file.
pub struct CachePage {
    pub pfn: Pfn,
    /// Whether it had to be read in now (a major fault).
    pub major: bool,
}

/// The cache frame for `(file, offset)` with one more reference taken for
/// the caller's mapping; reads the page in first if needed. `None` when out
/// of memory or the file does not exist. Bytes past the end of the file
/// read as zero, as in Linux.
pub fn get(file: u32, offset: u64) -> Option<CachePage> {
    locked(|c| {
        if let Some(&pfn) = c.pages.get(&(file, offset)) {
            frames::get_page(pfn)?;
            return Some(CachePage { pfn, major: false });
        }
        let backing = *c.files.get(file as usize)?;
        let pfn = frames::alloc_zeroed(0, FrameKind::UserFile)?;
        if let Backing::Bytes(data) = backing {
            let start = (offset as usize).min(data.len());
            let end = (start + PAGE_SIZE as usize).min(data.len());
            // SAFETY: a fresh frame we own, reached through the direct map;
            // the copy stays within one page.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[start..end].as_ptr(),
                    DirectMap.frame_ptr(pfn),
                    end - start,
                )
            };
        }
        c.pages.insert((file, offset), pfn);
        // The cache's own reference is the one alloc gave; take the
        // mapping's.
        frames::get_page(pfn)?;
        Some(CachePage { pfn, major: true })
    })
}

/// Pages in the cache (`Cached` in meminfo).
pub fn cached_pages() -> u64 {
    locked(|c| c.pages.len() as u64)
}

/// Drops cache pages no mapping uses; returns how many were freed.
pub fn shrink() -> u64 {
    locked(|c| {
        let idle: Vec<(u32, u64)> = c
            .pages
            .iter()
            .filter(|(_, &pfn)| frames::refcount(pfn) == 1)
            .map(|(&k, _)| k)
            .collect();
        for key in &idle {
            if let Some(pfn) = c.pages.remove(key) {
                frames::put_page(pfn);
            }
        }
        idle.len() as u64
    })
}
