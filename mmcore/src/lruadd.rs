//! The per-CPU LRU-add batch (Linux's `lru_add` folio batch in
//! `mm/swap.c`): a fresh anonymous page's reverse map and its insertion on
//! the LRU lists are recorded on the faulting CPU without a lock and
//! applied to many pages under one hold of the frames lock, when the batch
//! fills or the CPU drains its caches.
//!
//! While a page waits in a batch it is *pending*: it is in use (mapped,
//! counted) but not on the LRU, so reclaim cannot find it (as in Linux,
//! where a page in a CPU's batch is not on an LRU list yet). The last
//! reference to a pending page may go before its batch is applied (the
//! process unmapped it or exited): then the frame must not go back to the
//! buddy allocator at once, or the batch would later put a free (or
//! reused) frame on the LRU. [`last_put`] marks it instead and the batch
//! frees it when it gets there ([`flushed`]). Both run under the frames
//! lock, on the frame's flags word ([`PENDING`], [`PENDING_FREED`]).
//!
//! A frame is marked [`PENDING`] when it goes on a CPU's user page list
//! (under the frames lock: nobody else knows the frame then), so handing
//! it out and recording it need no lock at all; a frame drained from the
//! list back to the buddy allocator has its flags cleared.

use crate::frame::Pfn;

/// Entries a batch holds (Linux's `PAGEVEC_SIZE` was 15, a folio batch
/// holds 31).
pub const LRU_ADD_BATCH: usize = 31;

/// Flag: the frame's reverse map and LRU insertion wait in a batch (or it
/// sits on a user page list, to be handed out so).
pub const PENDING: u32 = 1 << 16;
/// Flag: a [`PENDING`] frame lost its last reference; the batch frees it.
pub const PENDING_FREED: u32 = 1 << 17;

/// One page waiting to go on the LRU: its frame and its reverse map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LruAdd {
    /// The frame.
    pub pfn: Pfn,
    /// The address-space family it was born in.
    pub family: u32,
    /// Its virtual page number there.
    pub vpn: u64,
}

/// One CPU's pages waiting to go on the LRU, oldest first.
#[derive(Clone, Debug)]
pub struct LruAddBatch {
    entries: [LruAdd; LRU_ADD_BATCH],
    len: u8,
}

impl Default for LruAddBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl LruAddBatch {
    /// An empty batch.
    pub const fn new() -> LruAddBatch {
        LruAddBatch {
            entries: [LruAdd {
                pfn: Pfn(0),
                family: 0,
                vpn: 0,
            }; LRU_ADD_BATCH],
            len: 0,
        }
    }

    /// Pages waiting.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// No page waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fast path: records `page`; false if the batch is full (apply it
    /// first).
    #[inline]
    pub fn push(&mut self, page: LruAdd) -> bool {
        match self.entries.get_mut(self.len as usize) {
            Some(slot) => {
                *slot = page;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Empties the batch, oldest first, through `apply` (which runs under
    /// the frames lock and applies [`flushed`]); returns how many.
    pub fn flush(&mut self, mut apply: impl FnMut(LruAdd)) -> usize {
        let n = self.len as usize;
        for &page in &self.entries[..n] {
            apply(page);
        }
        self.len = 0;
        n
    }
}

/// A frame's last reference went (under the frames lock): true if it may
/// be freed now; false if it is [`PENDING`], and now marked so that its
/// batch frees it.
#[inline]
pub fn last_put(flags: &mut u32) -> bool {
    if *flags & PENDING != 0 {
        *flags |= PENDING_FREED;
        false
    } else {
        true
    }
}

/// What a batch does with one of its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Still in use: set its reverse map and put it on the LRU.
    Add,
    /// Its last reference went while it waited: free the frame.
    Free,
}

/// The batch reached a frame (under the frames lock): clears the pending
/// marks and says what to do.
#[inline]
pub fn flushed(flags: &mut u32) -> Flushed {
    let freed = *flags & PENDING_FREED != 0;
    *flags &= !(PENDING | PENDING_FREED);
    if freed {
        Flushed::Free
    } else {
        Flushed::Add
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::vec::Vec;

    fn page(n: u64) -> LruAdd {
        LruAdd {
            pfn: Pfn(n),
            family: n as u32 + 1,
            vpn: n * 3,
        }
    }

    #[test]
    fn a_batch_fills_and_flushes_in_order() {
        let mut b = LruAddBatch::new();
        for n in 0..LRU_ADD_BATCH as u64 {
            assert!(b.push(page(n)));
        }
        assert!(!b.push(page(99)), "full");
        let mut seen = Vec::new();
        assert_eq!(b.flush(|p| seen.push(p)), LRU_ADD_BATCH);
        assert_eq!(
            seen,
            (0..LRU_ADD_BATCH as u64).map(page).collect::<Vec<_>>()
        );
        assert!(b.is_empty());
        assert_eq!(b.flush(|_| panic!("empty")), 0);
    }

    #[test]
    fn a_page_freed_while_pending_is_freed_by_the_flush() {
        let mut flags = PENDING;
        assert!(!last_put(&mut flags));
        assert_eq!(flushed(&mut flags), Flushed::Free);
        assert_eq!(flags, 0);
        let mut flags = PENDING | 1;
        assert_eq!(flushed(&mut flags), Flushed::Add);
        assert_eq!(flags, 1, "other flags stay");
        assert!(last_put(&mut flags), "not pending: freed at once");
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A fault takes a frame and records it (CPU `0`).
        Alloc(usize),
        /// Another reference to the `n`th live frame (fork).
        Get(usize),
        /// A reference to the `n`th live frame goes.
        Put(usize),
        /// CPU `0`'s batch is applied (full, or a drain).
        Flush(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..2usize).prop_map(Op::Alloc),
            1 => any::<usize>().prop_map(Op::Get),
            3 => any::<usize>().prop_map(Op::Put),
            1 => (0..2usize).prop_map(Op::Flush),
        ]
    }

    /// The kernel's use, on a model: frames with flags and reference
    /// counts, two CPUs' batches, a free pool and an LRU set. No frame is
    /// freed twice or while referenced, none goes on the LRU after it was
    /// freed, and after every batch is applied the LRU holds exactly the
    /// referenced frames with their reverse maps.
    fn run(ops: Vec<Op>) {
        const FRAMES: u64 = 64;
        let mut free: BTreeSet<u64> = (0..FRAMES).collect();
        let mut flags: BTreeMap<u64, u32> = BTreeMap::new();
        let mut refs: BTreeMap<u64, u32> = BTreeMap::new();
        let mut lru: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
        let mut batches = [LruAddBatch::new(), LruAddBatch::new()];
        fn apply(
            b: &mut LruAddBatch,
            free: &mut BTreeSet<u64>,
            flags: &mut BTreeMap<u64, u32>,
            lru: &mut BTreeMap<u64, (u32, u64)>,
            refs: &BTreeMap<u64, u32>,
        ) {
            b.flush(|p| {
                let f = flags.get_mut(&p.pfn.0).expect("allocated");
                match flushed(f) {
                    Flushed::Add => {
                        assert!(refs.contains_key(&p.pfn.0));
                        assert!(lru.insert(p.pfn.0, (p.family, p.vpn)).is_none());
                    }
                    Flushed::Free => {
                        assert!(!refs.contains_key(&p.pfn.0));
                        flags.remove(&p.pfn.0);
                        assert!(free.insert(p.pfn.0), "freed twice");
                    }
                }
            });
        }
        for op in ops {
            match op {
                Op::Alloc(cpu) => {
                    let Some(&n) = free.iter().next() else {
                        continue;
                    };
                    free.remove(&n);
                    flags.insert(n, PENDING);
                    refs.insert(n, 1);
                    if !batches[cpu].push(page(n)) {
                        apply(&mut batches[cpu], &mut free, &mut flags, &mut lru, &refs);
                        assert!(batches[cpu].push(page(n)));
                    }
                }
                Op::Get(i) => {
                    if refs.is_empty() {
                        continue;
                    }
                    let n = *refs.keys().nth(i % refs.len()).unwrap();
                    *refs.get_mut(&n).unwrap() += 1;
                }
                Op::Put(i) => {
                    if refs.is_empty() {
                        continue;
                    }
                    let n = *refs.keys().nth(i % refs.len()).unwrap();
                    let r = refs.get_mut(&n).unwrap();
                    *r -= 1;
                    if *r == 0 {
                        refs.remove(&n);
                        if last_put(flags.get_mut(&n).unwrap()) {
                            // Off the LRU, back to the pool.
                            assert!(lru.remove(&n).is_some(), "not pending: on the LRU");
                            flags.remove(&n);
                            assert!(free.insert(n));
                        }
                    }
                }
                Op::Flush(cpu) => apply(&mut batches[cpu], &mut free, &mut flags, &mut lru, &refs),
            }
            for n in lru.keys() {
                assert!(!free.contains(n) && refs.contains_key(n));
            }
        }
        for b in &mut batches {
            apply(b, &mut free, &mut flags, &mut lru, &refs);
        }
        assert_eq!(
            lru.keys().copied().collect::<Vec<_>>(),
            refs.keys().copied().collect::<Vec<_>>()
        );
        for (n, rmap) in &lru {
            assert_eq!(*rmap, (page(*n).family, page(*n).vpn));
        }
        assert_eq!(free.len() + refs.len(), FRAMES as usize);
        assert!(flags.values().all(|&f| f == 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn batches_match_the_model(ops in proptest::collection::vec(op(), 0..300)) {
            run(ops);
        }
    }
}
