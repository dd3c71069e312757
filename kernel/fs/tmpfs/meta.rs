//! tmpfs metadata: the three times of a node, hard links and symbolic
//! links.
//!
//! Times are nanoseconds of the wall clock (`CLOCK_REALTIME`), set as
//! Linux's shmem sets them: a new node has all three now; a write or a
//! truncate sets the file's mtime and ctime; creating, removing or
//! renaming a name sets the directory's mtime and ctime; a change of the
//! node itself (chmod, a link count) its ctime; a read its atime by
//! Linux's default `relatime` rule (only if the atime is not newer than
//! the mtime or ctime, or is a day old). Each time is its own atomic: no
//! lock, so they can be set from anywhere.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicI64, Ordering};

use usercore::fsabi::PATH_MAX;

use super::{find, Body, TmpNode};
use crate::fs::file::Stat;
use crate::fs::vfs::InodeRef;
use crate::mm::kalloc;
use crate::proc::syscall::Errno;

const NS: i64 = 1_000_000_000;
/// `relatime`: an atime older than this is refreshed by any read.
const DAY_NS: i64 = 24 * 3600 * NS;

pub(super) struct Times {
    atime: AtomicI64,
    mtime: AtomicI64,
    ctime: AtomicI64,
}

fn now() -> i64 {
    crate::time::realtime_ns()
}

/// Splits nanoseconds into `(seconds, nanoseconds)` (floor: a time
/// before 1970 has a negative second and a positive nanosecond).
pub fn split(ns: i64) -> (i64, i64) {
    (ns.div_euclid(NS), ns.rem_euclid(NS))
}

impl Times {
    pub(super) fn now() -> Times {
        let t = now();
        Times {
            atime: AtomicI64::new(t),
            mtime: AtomicI64::new(t),
            ctime: AtomicI64::new(t),
        }
    }

    /// Into a `struct stat`.
    pub(super) fn fill(&self, st: &mut Stat) {
        (st.st_atime, st.st_atime_nsec) = split(self.atime.load(Ordering::Relaxed));
        (st.st_mtime, st.st_mtime_nsec) = split(self.mtime.load(Ordering::Relaxed));
        (st.st_ctime, st.st_ctime_nsec) = split(self.ctime.load(Ordering::Relaxed));
    }

    /// The contents changed (write, truncate, a directory's names).
    pub(super) fn modified(&self) {
        let t = now();
        self.mtime.store(t, Ordering::Relaxed);
        self.ctime.store(t, Ordering::Relaxed);
    }

    /// The node changed (mode, link count, rename).
    pub(super) fn changed(&self) {
        self.ctime.store(now(), Ordering::Relaxed);
    }

    /// Read (`relatime`).
    pub(super) fn accessed(&self) {
        let t = now();
        let a = self.atime.load(Ordering::Relaxed);
        if a <= self.mtime.load(Ordering::Relaxed)
            || a <= self.ctime.load(Ordering::Relaxed)
            || t - a >= DAY_NS
        {
            self.atime.store(t, Ordering::Relaxed);
        }
    }

    /// `utimensat`: the times given (`None`: left as they are); the ctime
    /// is now.
    pub(super) fn set(&self, atime: Option<i64>, mtime: Option<i64>) {
        if let Some(a) = atime {
            self.atime.store(a, Ordering::Relaxed);
        }
        if let Some(m) = mtime {
            self.mtime.store(m, Ordering::Relaxed);
        }
        self.changed();
    }
}

impl TmpNode {
    /// One of its names is gone (unlink, or replaced by a rename).
    pub(super) fn unlinked(&self) {
        if !matches!(self.body, Body::Dir(_)) {
            let _ = self
                .nlink
                .try_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
        }
        self.times.changed();
    }

    /// Adds `name` in this directory for the file or symbolic link
    /// `target` (`link(2)`).
    pub(super) fn link_node(&self, name: &[u8], target: &InodeRef) -> Result<(), Errno> {
        let entries = self.entries()?;
        let node = target
            .as_any()
            .downcast_ref::<TmpNode>()
            .ok_or(Errno::EXDEV)?;
        if matches!(node.body, Body::Dir(_)) {
            return Err(Errno::EPERM);
        }
        // The `Arc` the directory keeps: found again through the
        // `InodeRef` (the same allocation).
        let node = arc_of(target).ok_or(Errno::EXDEV)?;
        let name = kalloc::try_to_vec(name)?;
        let mut list = entries.lock();
        let at = match find(&list, &name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(at) => at,
        };
        // A file whose last name is gone (open still) gets no new one:
        // Linux says ENOENT.
        if node.nlink.load(Ordering::Relaxed) == 0 {
            return Err(Errno::ENOENT);
        }
        kalloc::try_reserve(&mut list, 1)?;
        node.nlink.fetch_add(1, Ordering::Relaxed);
        list.insert(at, (name, node.clone()));
        drop(list);
        node.times.changed();
        self.times.modified();
        Ok(())
    }

    /// Creates the symbolic link `name` -> `target` in this directory.
    pub(super) fn symlink_node(&self, name: &[u8], target: &[u8]) -> Result<(), Errno> {
        let entries = self.entries()?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let node = TmpNode::with_body(Body::Symlink(kalloc::try_to_vec(target)?), 0o777)?;
        let name = kalloc::try_to_vec(name)?;
        let mut list = entries.lock();
        let at = match find(&list, &name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(at) => at,
        };
        kalloc::try_reserve(&mut list, 1)?;
        list.insert(at, (name, node));
        drop(list);
        self.times.modified();
        Ok(())
    }
}

/// The `Arc<TmpNode>` behind an `InodeRef` that is a tmpfs node.
fn arc_of(inode: &InodeRef) -> Option<Arc<TmpNode>> {
    inode.as_any().downcast_ref::<TmpNode>()?;
    let raw = Arc::into_raw(inode.clone()) as *const TmpNode;
    // SAFETY: the `dyn Inode` is a `TmpNode` (checked just above), so the
    // data pointer of this `Arc<dyn Inode>` is the data pointer of an
    // `Arc<TmpNode>` of the same allocation; `from_raw` takes back the
    // one reference `into_raw` gave.
    Some(unsafe { Arc::from_raw(raw) })
}
