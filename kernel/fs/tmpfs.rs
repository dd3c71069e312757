//! tmpfs: a writable file system in memory (mounted at `/tmp`).
//!
//! A file's bytes live in the page cache: each file is a shared anonymous
//! page-cache object (what `MAP_SHARED | MAP_ANONYMOUS` memory is) plus a
//! size, so `read`, `write` and a `MAP_SHARED` mapping of it all see the
//! same frames, as in Linux's shmem. A hole reads as zeros without a page
//! being allocated; the first write to a page allocates it.
//!
//! Size limit: like Linux's default, half of RAM ([`limit_pages`]),
//! counted in pages the files' page-cache objects hold (the cache charges
//! them: [`pagecache::PageLimit`]), however a page came in: a `write`, or
//! a first touch through a mapping. A write that would pass it stops with
//! what it wrote so far, or `ENOSPC` if it wrote nothing; a fault that
//! would is `SIGBUS`, as in Linux. A page the frame allocator cannot give
//! is `ENOMEM` the same way. Nothing written before is lost. A page is
//! given back when it leaves its object (truncate) or the object dies
//! (its last name, open file and mapping gone).
//!
//! Every node has Linux's three times (see [`meta`]: set from the wall
//! clock by the changes Linux sets them on) and a mode `chmod` changes;
//! files and symbolic links have a link count (hard links: one node under
//! several names; it lives while a name or an open file holds it).
//!
//! Directories are sorted vectors of (name, node), grown fallibly. Locks
//! are held only for a lookup or a change of a directory's entries, never
//! across a user copy or a page-cache call.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use usercore::fsabi::FileType;

use super::file::{MmapObject, Stat};
use super::vfs::{stat_for, DirEntry, Inode, InodeRef, DEV_TMPFS};
use crate::arch::sync::IrqMutex;
use crate::mm::kalloc;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::uaccess::{copy_from_user, copy_to_user};
use crate::mm::{direct, pagecache};
use crate::proc::syscall::Errno;

/// The largest file (Linux's `MAX_LFS_FILESIZE` is far larger; the page
/// index is the bound here).
pub const MAX_FILE_SIZE: u64 = 1 << 40;

/// Pages written to tmpfs files now (the size limit counts these).
static USED_PAGES: AtomicU64 = AtomicU64::new(0);
/// A limit set by a test (0: the default, half of RAM).
static LIMIT_OVERRIDE: AtomicU64 = AtomicU64::new(0);
static NEXT_INO: AtomicU64 = AtomicU64::new(2);

/// The most pages all tmpfs files together may hold: half of RAM, as
/// Linux's default `size=50%`, unless a test set another.
pub fn limit_pages() -> u64 {
    match LIMIT_OVERRIDE.load(Ordering::Relaxed) {
        0 => crate::mm::frames::stats().managed_pages / 2,
        n => n,
    }
}

/// Sets the size limit in pages (0: back to half of RAM). For tests.
pub fn set_limit_pages(pages: u64) {
    LIMIT_OVERRIDE.store(pages, Ordering::Relaxed);
}

/// Pages tmpfs files hold now (written through `write`).
pub fn used_pages() -> u64 {
    USED_PAGES.load(Ordering::Relaxed)
}

/// Takes one page of the limit; false if it is used up.
fn charge_page() -> bool {
    let limit = limit_pages();
    USED_PAGES
        .try_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            (used < limit).then_some(used + 1)
        })
        .is_ok()
}

/// The page cache charges tmpfs files' pages here.
const LIMIT: pagecache::PageLimit = pagecache::PageLimit {
    take: charge_page,
    give: uncharge_pages,
};

fn uncharge_pages(n: u64) {
    let _ = USED_PAGES.try_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
        Some(used.saturating_sub(n))
    });
}

mod meta;

type Entries = Vec<(Vec<u8>, Arc<TmpNode>)>;

pub struct TmpNode {
    ino: u64,
    perm: AtomicU32,
    /// Names it has (a file's or a symbolic link's; directories count
    /// their subdirectories instead).
    nlink: AtomicU32,
    times: meta::Times,
    body: Body,
}

enum Body {
    Dir(IrqMutex<Entries>),
    File(TmpFile),
    /// A symbolic link and its target.
    Symlink(Vec<u8>),
}

struct TmpFile {
    /// The page-cache object holding the bytes (this file holds it).
    cache_id: u32,
    size: IrqMutex<u64>,
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        // The last name and the last open file are gone: the object goes
        // when no mapping holds it either.
        pagecache::release(self.cache_id);
    }
}

/// A new, empty tmpfs: its root directory.
pub fn new_root() -> Result<InodeRef, Errno> {
    Ok(TmpNode::new(FileType::Directory, 0o1777)? as InodeRef)
}

impl TmpNode {
    fn new(kind: FileType, perm: u32) -> Result<Arc<TmpNode>, Errno> {
        let body = match kind {
            FileType::Directory => Body::Dir(IrqMutex::new(Vec::new())),
            FileType::Regular => {
                let cache_id = pagecache::register_anonymous(crate::mm::commit::Charge::none())
                    .ok_or(Errno::ENOMEM)?;
                pagecache::set_eof(cache_id, 0);
                pagecache::set_limit(cache_id, LIMIT);
                Body::File(TmpFile {
                    cache_id,
                    size: IrqMutex::new(0),
                })
            }
            _ => return Err(Errno::EINVAL),
        };
        // (On failure the body drops, and with it the cache object.)
        Self::with_body(body, perm)
    }

    fn with_body(body: Body, perm: u32) -> Result<Arc<TmpNode>, Errno> {
        Ok(kalloc::try_arc(TmpNode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            perm: AtomicU32::new(perm & 0o7777),
            nlink: AtomicU32::new(1),
            times: meta::Times::now(),
            body,
        })?)
    }

    fn entries(&self) -> Result<&IrqMutex<Entries>, Errno> {
        match &self.body {
            Body::Dir(entries) => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn file(&self) -> Result<&TmpFile, Errno> {
        match &self.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
            Body::Symlink(_) => Err(Errno::EINVAL),
        }
    }

    fn is_empty_dir(&self) -> bool {
        matches!(&self.body, Body::Dir(e) if e.lock().is_empty())
    }
}

/// Whether directory `dir` is `top` or lies anywhere below it: a search of
/// `top`'s subtree (an explicit, fallible stack: no recursion on the
/// kernel stack however deep the tree; one directory locked at a time).
fn is_within(dir: &TmpNode, top: &Arc<TmpNode>) -> Result<bool, Errno> {
    let mut todo: Vec<Arc<TmpNode>> = Vec::new();
    kalloc::try_push(&mut todo, top.clone())?;
    while let Some(at) = todo.pop() {
        if core::ptr::eq(&*at, dir) {
            return Ok(true);
        }
        if let Body::Dir(entries) = &at.body {
            let list = entries.lock();
            kalloc::try_reserve(&mut todo, list.len())?;
            for (_, child) in list.iter() {
                if matches!(child.body, Body::Dir(_)) {
                    todo.push(child.clone());
                }
            }
        }
    }
    Ok(false)
}

fn find(entries: &Entries, name: &[u8]) -> Result<usize, usize> {
    entries.binary_search_by(|(n, _)| n.as_slice().cmp(name))
}

/// Runs a page-cache call that may need a frame (a new page, a
/// swapped-out one read back), reclaiming and trying again while memory
/// is short, as a fault does (no lock is held here: reclaim may swap this
/// file's own pages out).
fn with_reclaim<T>(
    mut f: impl FnMut() -> Result<T, pagecache::CacheError>,
) -> Result<T, pagecache::CacheError> {
    for _ in 0..16 {
        match f() {
            Err(pagecache::CacheError::NoMemory) if crate::mm::reclaim::reclaim_for_user() > 0 => {}
            other => return other,
        }
    }
    f()
}

/// The error a read or write gets for a page the cache could not give.
fn cache_errno(e: pagecache::CacheError) -> Errno {
    match e {
        pagecache::CacheError::Io => Errno::EIO,
        pagecache::CacheError::NoSpace => Errno::ENOSPC,
        _ => Errno::ENOMEM,
    }
}

/// The first byte of the page after `pos`.
fn page_end(pos: u64) -> u64 {
    (pos / PAGE_SIZE + 1) * PAGE_SIZE
}

impl TmpFile {
    fn size(&self) -> u64 {
        *self.size.lock()
    }

    /// Reads up to `len` bytes from `offset`, a page piece at a time,
    /// handing each piece to `sink` with its distance from `offset`; stops
    /// early (with what was read) when `sink` refuses one (`EFAULT` if it
    /// refused the first).
    fn read_with(
        &self,
        offset: u64,
        len: usize,
        sink: &mut dyn FnMut(u64, &[u8]) -> bool,
    ) -> Result<usize, Errno> {
        let size = self.size();
        if offset >= size {
            return Ok(0);
        }
        let end = size.min(offset.saturating_add(len as u64));
        let mut bounce = [0u8; PAGE_SIZE as usize];
        let mut pos = offset;
        while pos < end {
            let n = (page_end(pos).min(end) - pos) as usize;
            let in_page = (pos % PAGE_SIZE) as usize;
            match with_reclaim(|| pagecache::peek(self.cache_id, pos / PAGE_SIZE)) {
                Ok(Some(frame)) => direct::read_frame_at(frame.pfn(), in_page, &mut bounce[..n]),
                Ok(None) => bounce[..n].fill(0),
                // A swapped-out page that could not come back.
                Err(e) if pos == offset => return Err(cache_errno(e)),
                Err(_) => return Ok((pos - offset) as usize),
            }
            if !sink(pos - offset, &bounce[..n]) {
                return if pos == offset {
                    Err(Errno::EFAULT)
                } else {
                    Ok((pos - offset) as usize)
                };
            }
            pos += n as u64;
        }
        Ok((end - offset) as usize)
    }

    fn read(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        self.read_with(offset, len, &mut |at, bytes| {
            copy_to_user(buf + at, bytes).is_ok()
        })
    }

    fn write(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let end = offset.checked_add(len as u64).ok_or(Errno::EFBIG)?;
        if offset >= MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let end = end.min(MAX_FILE_SIZE);
        let mut bounce = [0u8; PAGE_SIZE as usize];
        let mut pos = offset;
        let mut failure = None;
        while pos < end {
            let n = (page_end(pos).min(end) - pos) as usize;
            let in_page = (pos % PAGE_SIZE) as usize;
            if copy_from_user(&mut bounce[..n], buf + (pos - offset)).is_err() {
                failure = Some(Errno::EFAULT);
                break;
            }
            let index = pos / PAGE_SIZE;
            let frame = match with_reclaim(|| pagecache::peek(self.cache_id, index)) {
                Ok(Some(frame)) => frame,
                Err(e) => {
                    failure = Some(cache_errno(e));
                    break;
                }
                Ok(None) => match self.new_page(index) {
                    Ok(frame) => frame,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                },
            };
            direct::write_frame_at(frame.pfn(), in_page, &bounce[..n]);
            pos += n as u64;
            let mut size = self.size.lock();
            if pos > *size {
                *size = pos;
                pagecache::set_eof(self.cache_id, pos);
            }
        }
        match (pos - offset, failure) {
            (0, Some(e)) => Err(e),
            (done, _) => Ok(done as usize),
        }
    }

    /// Allocates page `index` (zeroed), charged to the limit (by the
    /// page cache).
    fn new_page(&self, index: u64) -> Result<crate::mm::frame_ref::FrameRef, Errno> {
        // The page may lie past the current end: let the cache give it.
        {
            let size = self.size.lock();
            pagecache::set_eof(self.cache_id, (*size).max((index + 1) * PAGE_SIZE));
        }
        let got = with_reclaim(|| pagecache::get(self.cache_id, index * PAGE_SIZE));
        {
            let size = self.size.lock();
            pagecache::set_eof(self.cache_id, *size);
        }
        got.map(|page| page.frame).map_err(cache_errno)
    }

    fn truncate(&self, new: u64) -> Result<(), Errno> {
        if new > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        // The new last page, if the new end cuts it (read back first if it
        // is swapped out: failing that, nothing changed).
        let partial = if new.is_multiple_of(PAGE_SIZE) || new >= self.size() {
            None
        } else {
            with_reclaim(|| pagecache::peek(self.cache_id, new / PAGE_SIZE)).map_err(cache_errno)?
        };
        let old = {
            let mut size = self.size.lock();
            let old = *size;
            *size = new;
            pagecache::set_eof(self.cache_id, new);
            old
        };
        if new < old {
            // Bytes past the new end in its last page read as zero if the
            // file grows again.
            if let Some(frame) = partial {
                let at = (new % PAGE_SIZE) as usize;
                direct::zero_frame_at(frame.pfn(), at, PAGE_SIZE as usize - at);
            }
            // (The cache gives their pages of the limit back.)
            pagecache::truncate_pages(self.cache_id, new.div_ceil(PAGE_SIZE));
        }
        Ok(())
    }
}

impl TmpNode {
    /// `stat` but for the times.
    fn stat_body(&self, perm: u32) -> Stat {
        match &self.body {
            Body::Dir(entries) => {
                let subdirs = entries
                    .lock()
                    .iter()
                    .filter(|(_, n)| matches!(n.body, Body::Dir(_)))
                    .count() as u64;
                let mut st = stat_for(DEV_TMPFS, self.ino, FileType::Directory, perm, 0, 0);
                st.st_nlink = 2 + subdirs;
                st
            }
            Body::File(f) => {
                let mut st = stat_for(DEV_TMPFS, self.ino, FileType::Regular, perm, f.size(), 0);
                st.st_nlink = self.nlink.load(Ordering::Relaxed) as u64;
                st.st_blocks = (pagecache::object_pages(f.cache_id) * (PAGE_SIZE / 512)) as i64;
                st
            }
            Body::Symlink(target) => {
                let mut st = stat_for(
                    DEV_TMPFS,
                    self.ino,
                    FileType::Symlink,
                    0o777,
                    target.len() as u64,
                    0,
                );
                st.st_nlink = self.nlink.load(Ordering::Relaxed) as u64;
                st
            }
        }
    }
}

impl Inode for TmpNode {
    fn file_type(&self) -> FileType {
        match self.body {
            Body::Dir(_) => FileType::Directory,
            Body::File(_) => FileType::Regular,
            Body::Symlink(_) => FileType::Symlink,
        }
    }

    fn stat(&self) -> Stat {
        let perm = self.perm.load(Ordering::Relaxed);
        let mut st = self.stat_body(perm);
        self.times.fill(&mut st);
        st
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<InodeRef, Errno> {
        let entries = self.entries()?.lock();
        let at = find(&entries, name).map_err(|_| Errno::ENOENT)?;
        Ok(entries[at].1.clone() as InodeRef)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.body {
            Body::Symlink(target) => Ok(kalloc::try_to_vec(target)?),
            _ => Err(Errno::EINVAL),
        }
    }

    fn chmod(&self, mode: u32) -> Result<(), Errno> {
        self.perm.store(mode & 0o7777, Ordering::Relaxed);
        self.times.changed();
        Ok(())
    }

    fn set_times(&self, atime: Option<i64>, mtime: Option<i64>) -> Result<(), Errno> {
        self.times.set(atime, mtime);
        Ok(())
    }

    fn link(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        self.link_node(name, target)
    }

    fn symlink(&self, name: &[u8], target: &[u8]) -> Result<(), Errno> {
        self.symlink_node(name, target)
    }

    fn entry(&self, index: usize) -> Result<Option<DirEntry>, Errno> {
        let entries = self.entries()?.lock();
        Ok(entries
            .get(index)
            .map(|(name, node)| DirEntry::new(name, node.ino, node.file_type())))
    }

    fn create(&self, name: &[u8], kind: FileType, perm: u32) -> Result<InodeRef, Errno> {
        let entries = self.entries()?;
        let name = kalloc::try_to_vec(name)?;
        let node = TmpNode::new(kind, perm)?;
        let mut list = entries.lock();
        let at = match find(&list, &name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(at) => at,
        };
        kalloc::try_reserve(&mut list, 1)?;
        list.insert(at, (name, node.clone()));
        drop(list);
        self.times.modified();
        Ok(node as InodeRef)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let removed = {
            let mut list = self.entries()?.lock();
            let at = find(&list, name).map_err(|_| Errno::ENOENT)?;
            let node = &list[at].1;
            match (&node.body, dir) {
                (Body::Dir(_), false) => return Err(Errno::EISDIR),
                (Body::File(_) | Body::Symlink(_), true) => return Err(Errno::ENOTDIR),
                (Body::Dir(_), true) if !node.is_empty_dir() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            list.remove(at)
        };
        removed.1.unlinked();
        self.times.modified();
        // Dropped here, outside the lock: the file's pages go now if no
        // open file or mapping holds it.
        drop(removed);
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &InodeRef,
        new: &[u8],
        noreplace: bool,
    ) -> Result<(), Errno> {
        let to = new_dir
            .as_any()
            .downcast_ref::<TmpNode>()
            .ok_or(Errno::EXDEV)?;
        let node = {
            let list = self.entries()?.lock();
            let at = find(&list, old).map_err(|_| Errno::ENOENT)?;
            list[at].1.clone()
        };
        // A directory never moves into itself or below itself (EINVAL):
        // it would hold itself, unreachable and never freed. Checked on
        // the nodes, not on path strings (a descriptor's or the working
        // directory's path goes stale when a directory above it moves).
        if matches!(node.body, Body::Dir(_)) && is_within(to, &node)? {
            return Err(Errno::EINVAL);
        }
        let name = kalloc::try_to_vec(new)?;
        // The new name first, then the old one goes: the node is never
        // without a name (two locks, never held together).
        let replaced = {
            let mut list = to.entries()?.lock();
            match find(&list, new) {
                Ok(at) => {
                    let target = &list[at].1;
                    if noreplace {
                        return Err(Errno::EEXIST);
                    }
                    if Arc::ptr_eq(target, &node) {
                        return Ok(());
                    }
                    let is_dir = |n: &TmpNode| matches!(n.body, Body::Dir(_));
                    match (is_dir(&node), is_dir(target)) {
                        (true, false) => return Err(Errno::ENOTDIR),
                        (false, true) => return Err(Errno::EISDIR),
                        (true, true) if !target.is_empty_dir() => return Err(Errno::ENOTEMPTY),
                        _ => {}
                    }
                    Some(core::mem::replace(&mut list[at].1, node.clone()))
                }
                Err(at) => {
                    kalloc::try_reserve(&mut list, 1)?;
                    list.insert(at, (name, node.clone()));
                    None
                }
            }
        };
        let gone = {
            let mut list = self.entries()?.lock();
            match find(&list, old) {
                Ok(at) if Arc::ptr_eq(&list[at].1, &node) => Some(list.remove(at)),
                _ => None,
            }
        };
        if let Some(r) = &replaced {
            r.unlinked();
        }
        // Linux: both directories modified, the node itself changed.
        self.times.modified();
        to.times.modified();
        node.times.changed();
        drop((replaced, gone));
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        let n = self.file()?.read(offset, buf, len)?;
        self.times.accessed();
        Ok(n)
    }

    fn write_at(&self, offset: u64, buf: u64, len: usize) -> Result<usize, Errno> {
        let n = self.file()?.write(offset, buf, len)?;
        if n > 0 {
            self.times.modified();
        }
        Ok(n)
    }

    fn read_kernel(&self, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        let len = out.len();
        self.file()?.read_with(offset, len, &mut |at, bytes| {
            out[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
            true
        })
    }

    fn truncate(&self, size: u64) -> Result<(), Errno> {
        self.file()?.truncate(size)?;
        self.times.modified();
        Ok(())
    }

    fn mmap_object(&self) -> Result<MmapObject, Errno> {
        Ok(MmapObject {
            cache_id: self.file().map_err(|_| Errno::ENODEV)?.cache_id,
            shared_writable: true,
        })
    }
}
