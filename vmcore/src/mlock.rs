//! Locked memory (`mlock`, `mlockall`): the address ranges of an address
//! space whose pages stay resident. Linux marks such regions `VM_LOCKED`;
//! here the address space keeps the ranges beside its regions, sorted
//! and disjoint, and forgets a range's part whenever that part is
//! unmapped, replaced (`MAP_FIXED`) or moved (`mremap`), so a later
//! mapping at the same addresses starts unlocked, as in Linux. Reclaim
//! asks [`LockedRanges::contains`] and passes locked pages over.

use alloc::vec::Vec;

use crate::vma::VmError;

/// Sorted, disjoint, non-adjacent `[start, end)` ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedRanges {
    ranges: Vec<(u64, u64)>,
}

impl LockedRanges {
    /// No range locked.
    pub const fn new() -> LockedRanges {
        LockedRanges { ranges: Vec::new() }
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

    /// Unlocks everything (`munlockall`, and a fork's child).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
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
