//! A swap device's slots: which are free, how many references each in-use
//! slot has (Linux's `swap_map`), and clusters that keep neighbouring pages
//! together.
//!
//! # Counts
//!
//! A slot's count is the number of references to the swapped page: one per
//! page-table entry holding the swap entry (fork copies an entry with
//! [`SlotMap::dup`]), plus one for the swap cache if the kernel chooses to
//! count it that way. [`SlotMap::put`] drops one; at zero the slot is free
//! and the kernel discards the device's copy. Counts stop at [`MAX_COUNT`]:
//! a `dup` beyond it fails and the caller backs out (fork returns `ENOMEM`,
//! or copies the page into memory instead).
//!
//! # Clusters
//!
//! Slots are grouped in clusters of [`CLUSTER_SLOTS`] (the last one may be
//! shorter). An allocation stream (a [`ClusterCursor`]: one per CPU, or one
//! per reclaim pass) owns a cluster and hands out its slots in ascending
//! order, so pages evicted one after another (usually neighbours in a
//! region) get neighbouring slots: sequential disk writes, and readahead
//! that finds the region's other pages next to the one that faulted. When the
//! cluster has no free slot after the cursor, the stream takes a wholly free
//! cluster; only when none is left does it fall back to any cluster with a
//! free slot (the device is fragmented).
//!
//! Clusters are kept on two intrusive lists (free: no slot used; partial:
//! some used, some free), threaded through per-cluster arrays allocated once,
//! so allocating, duplicating and releasing a slot never allocate and are
//! O(1) apart from a scan of at most one cluster.

use alloc::vec::Vec;

use crate::NoMemory;

/// Slots per cluster (Linux's `SWAPFILE_CLUSTER`): 1 MiB of pages.
pub const CLUSTER_SLOTS: u64 = 256;

/// The largest reference count a slot can hold; [`SlotMap::dup`] fails at it.
pub const MAX_COUNT: u32 = u16::MAX as u32;

/// No cluster (list ends, an unused cursor).
const NIL: u32 = u32::MAX;

/// An allocation stream's position: the cluster it fills and the next slot
/// offset in it. Start with [`ClusterCursor::new`]; pass the same cursor to
/// [`SlotMap::alloc_in`] for every page of one stream. A cursor is only
/// a hint: one from another map, or one whose cluster filled up, is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterCursor {
    cluster: u32,
    next: u32,
}

impl ClusterCursor {
    /// A cursor in no cluster: its first allocation takes a free cluster.
    pub const fn new() -> Self {
        ClusterCursor {
            cluster: NIL,
            next: 0,
        }
    }
}

impl Default for ClusterCursor {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-cluster bookkeeping: slots in use and the links of the list the
/// cluster is on (free when `used == 0`, partial when `0 < used < len`,
/// none when full).
#[derive(Clone, Copy, Debug)]
struct Cluster {
    used: u32,
    prev: u32,
    next: u32,
}

/// A doubly linked list of clusters, threaded through `Cluster::{prev,next}`.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// Which list a cluster belongs on, from its use count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Free,
    Partial,
    Full,
}

/// The slots of one swap device and their reference counts.
#[derive(Debug)]
pub struct SlotMap {
    /// Reference count per slot; 0 = free.
    counts: Vec<u16>,
    clusters: Vec<Cluster>,
    free: List,
    partial: List,
    used: u64,
    /// The stream [`SlotMap::alloc`] uses.
    cursor: ClusterCursor,
}

impl SlotMap {
    /// The most slots a map can have (offsets fit in 32 bits: 16 TiB of
    /// swap per device).
    pub const MAX_PAGES: u64 = u32::MAX as u64;

    /// A map of `pages` free slots. Fails if the arrays (2 bytes per slot,
    /// 12 per cluster) cannot be allocated or `pages` exceeds
    /// [`SlotMap::MAX_PAGES`].
    pub fn try_new(pages: u64) -> Result<Self, NoMemory> {
        if pages > Self::MAX_PAGES {
            return Err(NoMemory);
        }
        let slots = usize::try_from(pages).map_err(|_| NoMemory)?;
        let nclusters = slots.div_ceil(CLUSTER_SLOTS as usize);
        let mut counts = Vec::new();
        counts.try_reserve_exact(slots).map_err(|_| NoMemory)?;
        counts.resize(slots, 0);
        let mut clusters = Vec::new();
        clusters
            .try_reserve_exact(nclusters)
            .map_err(|_| NoMemory)?;
        let mut map = SlotMap {
            counts,
            clusters,
            free: List::EMPTY,
            partial: List::EMPTY,
            used: 0,
            cursor: ClusterCursor::new(),
        };
        for c in 0..nclusters as u32 {
            map.clusters.push(Cluster {
                used: 0,
                prev: NIL,
                next: NIL,
            });
            map.push_back(Which::Free, c);
        }
        Ok(map)
    }

    /// Number of slots.
    pub fn pages(&self) -> u64 {
        self.counts.len() as u64
    }

    /// Slots in use (count ≥ 1).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Free slots.
    pub fn free(&self) -> u64 {
        self.pages() - self.used
    }

    /// `slot`'s reference count (0: free or out of range).
    pub fn count(&self, slot: u64) -> u32 {
        self.index(slot).map_or(0, |i| u32::from(self.counts[i]))
    }

    /// A free slot from the map's own allocation stream, now with count 1;
    /// `None` when every slot is in use.
    pub fn alloc(&mut self) -> Option<u64> {
        let mut cursor = self.cursor;
        let slot = self.alloc_in(&mut cursor);
        self.cursor = cursor;
        slot
    }

    /// A free slot for the stream `cursor`, now with count 1; `None` when
    /// every slot is in use.
    ///
    /// The slot is the first free one after the cursor's last in its
    /// cluster; else the first slot of a wholly free cluster (which the
    /// cursor moves to); else the first free slot of a partly used cluster.
    pub fn alloc_in(&mut self, cursor: &mut ClusterCursor) -> Option<u64> {
        let nclusters = self.clusters.len() as u32;
        if cursor.cluster < nclusters {
            let c = cursor.cluster;
            if let Some(off) = self.first_free(c, cursor.next) {
                return Some(self.take(cursor, c, off));
            }
        }
        if self.free.head != NIL {
            let c = self.free.head;
            return Some(self.take(cursor, c, 0));
        }
        if self.partial.head != NIL {
            let c = self.partial.head;
            // A partial cluster has a free slot by definition.
            if let Some(off) = self.first_free(c, 0) {
                return Some(self.take(cursor, c, off));
            }
        }
        None
    }

    /// One more reference to in-use `slot` (fork copied its entry). Returns
    /// false, changing nothing, if the count is already [`MAX_COUNT`], or
    /// the slot is free or out of range (a caller bug).
    pub fn dup(&mut self, slot: u64) -> bool {
        let Some(i) = self.index(slot) else {
            return false;
        };
        let count = &mut self.counts[i];
        if *count == 0 || u32::from(*count) >= MAX_COUNT {
            return false;
        }
        *count += 1;
        true
    }

    /// One reference fewer to `slot`; returns the count left. At 0 the slot
    /// is free again (the caller discards the device's copy). A free or
    /// out-of-range slot is left alone and 0 returned.
    pub fn put(&mut self, slot: u64) -> u32 {
        let Some(i) = self.index(slot) else {
            return 0;
        };
        let count = self.counts[i];
        if count == 0 {
            return 0;
        }
        self.counts[i] = count - 1;
        if count == 1 {
            let c = (slot / CLUSTER_SLOTS) as u32;
            let before = self.which(c);
            self.clusters[c as usize].used -= 1;
            self.used -= 1;
            self.relist(c, before);
        }
        u32::from(count - 1)
    }

    /// The in-use slots other than `slot` in the aligned window of `n`
    /// slots around it (`n` capped at [`CLUSTER_SLOTS`]), clipped to
    /// `slot`'s cluster, in ascending order: what swap-in may read ahead.
    /// Like Linux's cluster readahead, a window of 8 around slot 21 is
    /// slots 16..24. Empty for `n == 0` or an out-of-range slot.
    pub fn readahead_window(&self, slot: u64, n: u64) -> impl Iterator<Item = u64> + '_ {
        let n = n.min(CLUSTER_SLOTS);
        let (start, end) = if n == 0 || slot >= self.pages() {
            (0, 0)
        } else {
            let cluster_start = slot - slot % CLUSTER_SLOTS;
            let cluster_end = (cluster_start + CLUSTER_SLOTS).min(self.pages());
            let start = (slot - slot % n).max(cluster_start);
            (start, (start + n).min(cluster_end))
        };
        (start..end).filter(move |&s| s != slot && self.counts[s as usize] != 0)
    }

    fn index(&self, slot: u64) -> Option<usize> {
        let i = usize::try_from(slot).ok()?;
        (i < self.counts.len()).then_some(i)
    }

    /// Slots in cluster `c` (all but the last have [`CLUSTER_SLOTS`]).
    fn cluster_len(&self, c: u32) -> u32 {
        let base = u64::from(c) * CLUSTER_SLOTS;
        (self.pages() - base).min(CLUSTER_SLOTS) as u32
    }

    /// The first free offset ≥ `from` in cluster `c`.
    fn first_free(&self, c: u32, from: u32) -> Option<u32> {
        let base = (u64::from(c) * CLUSTER_SLOTS) as usize;
        let len = self.cluster_len(c);
        if from >= len {
            return None;
        }
        let slots = &self.counts[base + from as usize..base + len as usize];
        slots.iter().position(|&n| n == 0).map(|i| from + i as u32)
    }

    /// Marks free slot `off` of cluster `c` used and leaves `cursor` just
    /// after it.
    fn take(&mut self, cursor: &mut ClusterCursor, c: u32, off: u32) -> u64 {
        let slot = u64::from(c) * CLUSTER_SLOTS + u64::from(off);
        debug_assert_eq!(self.counts[slot as usize], 0);
        self.counts[slot as usize] = 1;
        let before = self.which(c);
        self.clusters[c as usize].used += 1;
        self.used += 1;
        self.relist(c, before);
        *cursor = ClusterCursor {
            cluster: c,
            next: off + 1,
        };
        slot
    }

    fn which(&self, c: u32) -> Which {
        let used = self.clusters[c as usize].used;
        if used == 0 {
            Which::Free
        } else if used < self.cluster_len(c) {
            Which::Partial
        } else {
            Which::Full
        }
    }

    /// Moves cluster `c` to the list its use count calls for, given the one
    /// it was on.
    fn relist(&mut self, c: u32, before: Which) {
        let after = self.which(c);
        if after != before {
            self.unlink(before, c);
            self.push_back(after, c);
        }
    }

    fn list(&mut self, which: Which) -> Option<&mut List> {
        match which {
            Which::Free => Some(&mut self.free),
            Which::Partial => Some(&mut self.partial),
            Which::Full => None,
        }
    }

    fn push_back(&mut self, which: Which, c: u32) {
        let Some(list) = self.list(which) else {
            return;
        };
        let tail = list.tail;
        list.tail = c;
        if tail == NIL {
            list.head = c;
        }
        if tail != NIL {
            self.clusters[tail as usize].next = c;
        }
        let cluster = &mut self.clusters[c as usize];
        cluster.prev = tail;
        cluster.next = NIL;
    }

    fn unlink(&mut self, which: Which, c: u32) {
        let Cluster { prev, next, .. } = self.clusters[c as usize];
        let Some(list) = self.list(which) else {
            return;
        };
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        if prev != NIL {
            self.clusters[prev as usize].next = next;
        }
        if next != NIL {
            self.clusters[next as usize].prev = prev;
        }
        let cluster = &mut self.clusters[c as usize];
        cluster.prev = NIL;
        cluster.next = NIL;
    }

    /// Checks every internal invariant (tests only): list membership
    /// matches use counts, counts per cluster and in total add up.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        use std::vec;
        let mut seen = vec![None; self.clusters.len()];
        for (which, list) in [(Which::Free, self.free), (Which::Partial, self.partial)] {
            let mut prev = NIL;
            let mut c = list.head;
            while c != NIL {
                assert!(seen[c as usize].is_none(), "cluster {c} on two lists");
                seen[c as usize] = Some(which);
                assert_eq!(self.clusters[c as usize].prev, prev);
                prev = c;
                c = self.clusters[c as usize].next;
            }
            assert_eq!(list.tail, prev);
        }
        let mut total = 0;
        for c in 0..self.clusters.len() as u32 {
            let base = (u64::from(c) * CLUSTER_SLOTS) as usize;
            let len = self.cluster_len(c) as usize;
            let used = self.counts[base..base + len]
                .iter()
                .filter(|&&n| n != 0)
                .count();
            assert_eq!(self.clusters[c as usize].used as usize, used, "cluster {c}");
            let expect = match self.which(c) {
                Which::Full => None,
                w => Some(w),
            };
            assert_eq!(seen[c as usize], expect, "cluster {c} on the wrong list");
            total += used as u64;
        }
        assert_eq!(total, self.used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn allocates_sequentially_then_takes_a_fresh_cluster() {
        let mut map = SlotMap::try_new(3 * CLUSTER_SLOTS).unwrap();
        let got: Vec<u64> = (0..CLUSTER_SLOTS + 2)
            .map(|_| map.alloc().unwrap())
            .collect();
        let want: Vec<u64> = (0..CLUSTER_SLOTS + 2).collect();
        assert_eq!(got, want);
        assert_eq!(map.used(), CLUSTER_SLOTS + 2);
        assert_eq!(map.free(), 2 * CLUSTER_SLOTS - 2);
        map.check();
    }

    #[test]
    fn two_streams_fill_two_clusters() {
        let mut map = SlotMap::try_new(4 * CLUSTER_SLOTS).unwrap();
        let (mut a, mut b) = (ClusterCursor::new(), ClusterCursor::new());
        let mut got_a = Vec::new();
        let mut got_b = Vec::new();
        for _ in 0..10 {
            got_a.push(map.alloc_in(&mut a).unwrap());
            got_b.push(map.alloc_in(&mut b).unwrap());
        }
        assert_eq!(got_a, (0..10).collect::<Vec<_>>());
        assert_eq!(
            got_b,
            (CLUSTER_SLOTS..CLUSTER_SLOTS + 10).collect::<Vec<_>>()
        );
        map.check();
    }

    #[test]
    fn a_stream_skips_used_slots_and_does_not_go_back() {
        let mut map = SlotMap::try_new(2 * CLUSTER_SLOTS).unwrap();
        let mut cursor = ClusterCursor::new();
        for _ in 0..4 {
            map.alloc_in(&mut cursor).unwrap();
        }
        // Slot 1 freed behind the cursor: the stream goes on at 4.
        assert_eq!(map.put(1), 0);
        assert_eq!(map.alloc_in(&mut cursor), Some(4));
        // Another stream took 5 and 6: this one skips them.
        let mut other = ClusterCursor {
            cluster: 0,
            next: 5,
        };
        assert_eq!(map.alloc_in(&mut other), Some(5));
        assert_eq!(map.alloc_in(&mut other), Some(6));
        assert_eq!(map.alloc_in(&mut cursor), Some(7));
        map.check();
    }

    #[test]
    fn fragmented_map_falls_back_to_partial_clusters() {
        let mut map = SlotMap::try_new(2 * CLUSTER_SLOTS + 10).unwrap();
        let all: Vec<u64> = core::iter::from_fn(|| map.alloc()).collect();
        assert_eq!(all.len() as u64, 2 * CLUSTER_SLOTS + 10);
        assert_eq!(map.alloc(), None);
        assert_eq!(map.free(), 0);
        // Free one slot in the middle of cluster 1 and one in the short
        // last cluster: a fresh stream finds them, in list order.
        map.put(CLUSTER_SLOTS + 7);
        map.put(2 * CLUSTER_SLOTS + 3);
        map.check();
        let mut cursor = ClusterCursor::new();
        assert_eq!(map.alloc_in(&mut cursor), Some(CLUSTER_SLOTS + 7));
        assert_eq!(map.alloc_in(&mut cursor), Some(2 * CLUSTER_SLOTS + 3));
        assert_eq!(map.alloc_in(&mut cursor), None);
        map.check();
    }

    #[test]
    fn a_cluster_freed_whole_is_fresh_again() {
        let mut map = SlotMap::try_new(2 * CLUSTER_SLOTS).unwrap();
        for _ in 0..2 * CLUSTER_SLOTS {
            map.alloc().unwrap();
        }
        for s in 0..CLUSTER_SLOTS {
            map.put(s);
        }
        map.check();
        let mut cursor = ClusterCursor::new();
        assert_eq!(map.alloc_in(&mut cursor), Some(0));
        assert_eq!(map.alloc_in(&mut cursor), Some(1));
    }

    #[test]
    fn counts_dup_put_and_the_ceiling() {
        let mut map = SlotMap::try_new(16).unwrap();
        let s = map.alloc().unwrap();
        assert_eq!(map.count(s), 1);
        assert!(map.dup(s));
        assert_eq!(map.count(s), 2);
        assert_eq!(map.put(s), 1);
        assert_eq!(map.used(), 1);
        for _ in 1..MAX_COUNT {
            assert!(map.dup(s));
        }
        assert_eq!(map.count(s), MAX_COUNT);
        assert!(!map.dup(s), "dup past the ceiling must fail");
        assert_eq!(map.count(s), MAX_COUNT);
        for left in (0..MAX_COUNT).rev() {
            assert_eq!(map.put(s), left);
        }
        assert_eq!(map.used(), 0);
        assert_eq!(map.free(), 16);
        map.check();
    }

    #[test]
    fn misuse_is_refused_not_acted_on() {
        let mut map = SlotMap::try_new(8).unwrap();
        assert!(!map.dup(3), "dup of a free slot");
        assert_eq!(map.put(3), 0, "put of a free slot");
        assert!(!map.dup(8));
        assert_eq!(map.put(u64::MAX), 0);
        assert_eq!(map.count(100), 0);
        assert_eq!(map.used(), 0);
        let mut foreign = ClusterCursor {
            cluster: 1000,
            next: 7,
        };
        assert_eq!(map.alloc_in(&mut foreign), Some(0));
        map.check();
    }

    #[test]
    fn sizes_and_limits() {
        let empty = SlotMap::try_new(0).unwrap();
        assert_eq!((empty.pages(), empty.free()), (0, 0));
        assert_eq!(SlotMap::try_new(0).unwrap().alloc(), None);
        assert!(SlotMap::try_new(SlotMap::MAX_PAGES + 1).is_err());
        let one = SlotMap::try_new(1).unwrap();
        assert_eq!(one.pages(), 1);
    }

    #[test]
    fn readahead_window_is_aligned_clipped_and_in_use_only() {
        let mut map = SlotMap::try_new(CLUSTER_SLOTS + 20).unwrap();
        for _ in 0..CLUSTER_SLOTS + 20 {
            map.alloc().unwrap();
        }
        map.put(18);
        let w: Vec<u64> = map.readahead_window(21, 8).collect();
        assert_eq!(w, [16, 17, 19, 20, 22, 23]);
        // Clipped to the short last cluster.
        let w: Vec<u64> = map.readahead_window(CLUSTER_SLOTS + 17, 8).collect();
        assert_eq!(
            w,
            [CLUSTER_SLOTS + 16, CLUSTER_SLOTS + 18, CLUSTER_SLOTS + 19]
        );
        // A window wider than a cluster stops at the cluster.
        assert_eq!(
            map.readahead_window(5, 10_000).count() as u64,
            CLUSTER_SLOTS - 2
        );
        // A window that is not a power of two is still aligned to itself
        // and never crosses into the next cluster.
        let w: Vec<u64> = map.readahead_window(CLUSTER_SLOTS - 2, 3).collect();
        assert_eq!(w, [CLUSTER_SLOTS - 4, CLUSTER_SLOTS - 3]);
        assert_eq!(map.readahead_window(CLUSTER_SLOTS - 1, 3).count(), 0);
        assert_eq!(map.readahead_window(21, 0).count(), 0);
        assert_eq!(map.readahead_window(CLUSTER_SLOTS + 20, 8).count(), 0);
    }
}
