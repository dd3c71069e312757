//! Locked memory (`mlock`, `mlockall`): the address ranges of an address
//! space whose pages stay resident. Linux marks such regions `VM_LOCKED`;
//! here the address space keeps the ranges beside its regions, sorted
//! and disjoint, and forgets a range's part whenever that part is
//! unmapped or replaced (`MAP_FIXED`), so a later
//! mapping at the same addresses starts unlocked, as in Linux. Reclaim
//! asks [`LockedRanges::contains`] and passes locked pages over.
//!
//! A region moved by `mremap` takes its lock along
//! ([`LockedRanges::moved`]), as Linux's `VM_LOCKED` moves with the
//! region. `mlockall(MCL_FUTURE)` (Linux's `mm->def_flags |= VM_LOCKED`)
//! is [`LockedRanges::future`]: every region mapped later is locked too
//! (and populated by the caller unless `MCL_ONFAULT`).
//!
//! # `RLIMIT_MEMLOCK`
//!
//! [`may_lock`] is Linux's rule (`can_do_mlock` and the limit checks of
//! `do_mlock`, `mlockall` and `mlock_future_ok`): a task with
//! `CAP_IPC_LOCK` may lock any amount; one without may lock nothing if the
//! limit is 0 (`EPERM`) and at most the limit in all (`ENOMEM`, `EAGAIN`
//! for `mmap`/`mremap`). Ferrite's processes run as root, so the kernel
//! passes whether the process still holds `CAP_IPC_LOCK`.

use alloc::vec::Vec;

use crate::vma::VmError;

/// Sorted, disjoint, non-adjacent `[start, end)` ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedRanges {
    ranges: Vec<(u64, u64)>,
    /// `mlockall(MCL_FUTURE)` is in force: `Some(onfault)`.
    future: Option<bool>,
}

/// Why [`may_lock`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockRefused {
    /// `RLIMIT_MEMLOCK` is 0 and the task lacks `CAP_IPC_LOCK` (`EPERM`).
    NotPermitted,
    /// Locking would pass `RLIMIT_MEMLOCK` (`ENOMEM`; `EAGAIN` from
    /// `mmap` and `mremap`).
    OverLimit,
}

/// Linux's `can_do_mlock` and limit check: may a task that has `locked`
/// bytes locked lock `more` bytes with `RLIMIT_MEMLOCK` at `limit`?
/// `cap_ipc_lock`: the task holds `CAP_IPC_LOCK` (then always yes).
pub fn may_lock(locked: u64, more: u64, limit: u64, cap_ipc_lock: bool) -> Result<(), LockRefused> {
    if cap_ipc_lock {
        return Ok(());
    }
    if limit == 0 {
        return Err(LockRefused::NotPermitted);
    }
    if limit != u64::MAX && locked.saturating_add(more) > limit {
        return Err(LockRefused::OverLimit);
    }
    Ok(())
}

impl LockedRanges {
    /// No range locked.
    pub const fn new() -> LockedRanges {
        LockedRanges {
            ranges: Vec::new(),
            future: None,
        }
    }

    /// `mlockall(MCL_FUTURE)`: `Some(onfault)` while regions mapped later
    /// are locked (`onfault`: their pages come in on first touch).
    pub fn future(&self) -> Option<bool> {
        self.future
    }

    /// Sets or clears [`future`](Self::future) (`mlockall` sets it with
    /// `MCL_FUTURE` and clears it without, as Linux rewrites `def_flags`).
    pub fn set_future(&mut self, future: Option<bool>) {
        self.future = future;
    }

    /// Bytes of `[start, end)` that are locked.
    pub fn bytes_in(&self, start: u64, end: u64) -> u64 {
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges[first..]
            .iter()
            .take_while(|&&(s, _)| s < end)
            .map(|&(s, e)| e.min(end) - s.max(start))
            .sum()
    }

    /// The ranges after `[old, old + len)` moves to `new` (`mremap`): its
    /// locked parts unlocked there and locked at the new place. Nothing
    /// changes here; the caller installs the result once the move is done.
    pub fn moved(&self, old: u64, len: u64, new: u64) -> Result<LockedRanges, VmError> {
        let end = old + len;
        let mut out = LockedRanges::new();
        out.ranges
            .try_reserve(self.ranges.len() + 2)
            .map_err(|_| VmError::NoMemory)?;
        out.ranges.extend(self.ranges.iter().copied());
        out.future = self.future;
        out.unlock(old, end)?;
        let first = self.ranges.partition_point(|&(_, e)| e <= old);
        for &(s, e) in self.ranges[first..].iter().take_while(|&&(s, _)| s < end) {
            let (s, e) = (s.max(old), e.min(end));
            out.lock(new + (s - old), new + (e - old))?;
        }
        Ok(out)
    }

    /// Whether `addr` lies in a locked range.
    pub fn contains(&self, addr: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= addr);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= addr)
    }

    /// Bytes locked (`VmLck`).
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().copied()
    }

    /// Locks `[start, end)`, merging with what it touches. Fails (and
    /// changes nothing) only for lack of memory.
    pub fn lock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        if start >= end {
            return Ok(());
        }
        self.ranges.try_reserve(1).map_err(|_| VmError::NoMemory)?;
        // Every range touching [start, end) (adjacent ones too) merges.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        let (mut s, mut e) = (start, end);
        if first < last {
            s = s.min(self.ranges[first].0);
            e = e.max(self.ranges[last - 1].1);
        }
        self.ranges.splice(first..last, [(s, e)]);
        Ok(())
    }

    /// Unlocks `[start, end)`, splitting a range it cuts in two. Fails
    /// (and changes nothing) only for lack of memory.
    pub fn unlock(&mut self, start: u64, end: u64) -> Result<(), VmError> {
        if start >= end || self.ranges.is_empty() {
            return Ok(());
        }
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let last = self.ranges.partition_point(|&(s, _)| s < end);
        if first >= last {
            return Ok(());
        }
        self.ranges.try_reserve(1).map_err(|_| VmError::NoMemory)?;
        let (head, tail) = (self.ranges[first], self.ranges[last - 1]);
        let mut keep = [(0, 0); 2];
        let mut n = 0;
        if head.0 < start {
            keep[n] = (head.0, start);
            n += 1;
        }
        if tail.1 > end {
            keep[n] = (end, tail.1);
            n += 1;
        }
        self.ranges.splice(first..last, keep[..n].iter().copied());
        Ok(())
    }

    /// Room for one more range, so that an [`unlock`](Self::unlock) right
    /// after cannot fail. Nothing locked: nothing to split, no allocation.
    pub fn reserve(&mut self) -> Result<(), VmError> {
        if self.ranges.is_empty() {
            return Ok(());
        }
        self.ranges.try_reserve(1).map_err(|_| VmError::NoMemory)
    }

    /// Unlocks everything and forgets `MCL_FUTURE` (`munlockall`, and a
    /// fork's child: Linux's child starts with no lock and no
    /// `def_flags`).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
        self.future = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_merges_and_unlock_splits() {
        let mut l = LockedRanges::new();
        l.lock(10, 20).unwrap();
        l.lock(30, 40).unwrap();
        l.lock(20, 30).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [(10, 40)]);
        assert!(l.contains(10) && l.contains(39) && !l.contains(40) && !l.contains(9));
        l.unlock(15, 25).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), [(10, 15), (25, 40)]);
        assert_eq!(l.bytes(), 20);
        l.lock(50, 60).unwrap();
        l.unlock(0, 100).unwrap();
        assert_eq!(l.bytes(), 0);
        l.lock(5, 6).unwrap();
        l.unlock(6, 9).unwrap();
        assert!(l.contains(5));
        l.clear();
        assert!(!l.contains(5));
        // Nothing locked: reserving allocates nothing.
        l.reserve().unwrap();
        assert_eq!(l.ranges.capacity(), 0);
    }

    #[test]
    fn moved_takes_the_lock_along() {
        let mut l = LockedRanges::new();
        l.lock(10, 20).unwrap();
        l.lock(30, 40).unwrap();
        l.set_future(Some(false));
        // [15, 35) moves to 100: its locked parts [15,20) and [30,35) go
        // to [100,105) and [115,120).
        let m = l.moved(15, 20, 100).unwrap();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            [(10, 15), (35, 40), (100, 105), (115, 120)]
        );
        assert_eq!(m.future(), Some(false));
        // The original is untouched until the caller installs the result.
        assert_eq!(l.iter().collect::<Vec<_>>(), [(10, 20), (30, 40)]);
        assert_eq!(l.bytes_in(15, 35), 10);
        assert_eq!(l.bytes_in(0, 100), 20);
        assert_eq!(l.bytes_in(20, 30), 0);
        l.clear();
        assert_eq!(l.future(), None);
    }

    #[test]
    fn memlock_rule_is_linuxs() {
        // CAP_IPC_LOCK: anything, even with a limit of 0.
        assert_eq!(may_lock(0, 1 << 30, 0, true), Ok(()));
        // Without: a 0 limit refuses everything (can_do_mlock: EPERM)...
        assert_eq!(may_lock(0, 4096, 0, false), Err(LockRefused::NotPermitted));
        // ... else up to the limit in all.
        assert_eq!(may_lock(4096, 4096, 8192, false), Ok(()));
        assert_eq!(
            may_lock(4096, 8192, 8192, false),
            Err(LockRefused::OverLimit)
        );
        assert_eq!(may_lock(u64::MAX - 1, 8192, u64::MAX, false), Ok(()));
    }

    #[test]
    fn matches_a_page_model() {
        // Random-ish operations against a bitmap of 64 "pages".
        let mut l = LockedRanges::new();
        let mut model = [false; 64];
        let mut x = 12345u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (x >> 33) % 64;
            let b = (x >> 45) % 65;
            let (s, e) = (a.min(b), a.max(b));
            let lock = (x >> 20) & 1 == 0;
            if lock {
                l.lock(s, e).unwrap();
            } else {
                l.unlock(s, e).unwrap();
            }
            for p in s..e {
                model[p as usize] = lock;
            }
            for p in 0..64 {
                assert_eq!(l.contains(p), model[p as usize], "page {p}");
            }
            assert_eq!(l.bytes(), model.iter().filter(|&&m| m).count() as u64);
            // Disjoint, sorted, never adjacent.
            let v: Vec<_> = l.iter().collect();
            assert!(v.windows(2).all(|w| w[0].1 < w[1].0));
        }
    }
}
