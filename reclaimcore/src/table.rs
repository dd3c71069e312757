//! The resident set every policy shares: a fixed number of slots, each on
//! one of `L` doubly linked lists, and an index from page id to slot.
//! Everything is allocated up front ([`Table::with_capacity`]); no later
//! call allocates.
//!
//! Two ways to find a page's slot:
//! - *hashed* (any `u64` ids, e.g. page numbers of a trace): an open
//!   addressing index;
//! - *dense* (ids `0..capacity`, e.g. frame numbers from the first managed
//!   frame): the slot is the id, no index at all, and the slots may live in
//!   memory the caller provides ([`Table::dense`]), as the kernel does with
//!   one [`Node`] per frame, reserved at boot like `struct page`.

use alloc::vec::Vec;

use crate::AllocError;

/// "No slot" in links and in the index.
const NIL: u32 = u32::MAX;
/// [`Node::list`] of a slot holding no page.
const FREE: u8 = u8::MAX;

/// One slot: a page's links and its policy data (opaque outside the
/// crate; public so that a caller can provide the storage).
#[derive(Clone, Copy, Debug)]
pub struct Node<T> {
    page: u64,
    prev: u32,
    next: u32,
    list: u8,
    data: T,
}

impl<T: Default> Default for Node<T> {
    fn default() -> Self {
        Node {
            page: 0,
            prev: NIL,
            next: NIL,
            list: FREE,
            data: T::default(),
        }
    }
}

/// A slot number; valid until its page is removed.
pub(crate) type Slot = u32;

/// `L` lists over at most `capacity` pages, with per-page data `T`, in
/// slots stored in `S`. Lists run from head (newest) to tail (oldest).
pub(crate) struct Table<T, const L: usize, S = Vec<Node<T>>> {
    nodes: S,
    /// Free slots, linked through `next`.
    free: u32,
    heads: [u32; L],
    tails: [u32; L],
    lens: [usize; L],
    index: Index,
    _data: core::marker::PhantomData<T>,
}

impl<T: Copy + Default, const L: usize> Table<T, L> {
    /// Room for `capacity` pages with any ids (at most `u32::MAX / 2`).
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        if capacity >= NIL as usize / 2 {
            return Err(AllocError);
        }
        let mut nodes = Vec::new();
        nodes.try_reserve_exact(capacity).map_err(|_| AllocError)?;
        for i in 0..capacity {
            let next = if i + 1 < capacity { i as u32 + 1 } else { NIL };
            nodes.push(Node {
                next,
                ..Node::default()
            });
        }
        Ok(Table {
            nodes,
            free: if capacity > 0 { 0 } else { NIL },
            heads: [NIL; L],
            tails: [NIL; L],
            lens: [0; L],
            index: Index::Hashed(HashIndex::with_capacity(capacity)?),
            _data: core::marker::PhantomData,
        })
    }
}

impl<T: Copy + Default, const L: usize, S> Table<T, L, S>
where
    S: AsRef<[Node<T>]> + AsMut<[Node<T>]>,
{
    /// Pages `0..nodes.len()`, each in its own slot of `nodes` (every
    /// slot is reset to empty). `None` if there are `u32::MAX / 2` slots
    /// or more.
    pub(crate) fn dense(mut nodes: S) -> Option<Self> {
        if nodes.as_ref().len() >= NIL as usize / 2 {
            return None;
        }
        nodes.as_mut().fill(Node::default());
        Some(Table {
            nodes,
            free: NIL,
            heads: [NIL; L],
            tails: [NIL; L],
            lens: [0; L],
            index: Index::Dense,
            _data: core::marker::PhantomData,
        })
    }

    fn node(&self, slot: Slot) -> &Node<T> {
        &self.nodes.as_ref()[slot as usize]
    }

    fn node_mut(&mut self, slot: Slot) -> &mut Node<T> {
        &mut self.nodes.as_mut()[slot as usize]
    }

    pub(crate) fn capacity(&self) -> usize {
        self.nodes.as_ref().len()
    }

    pub(crate) fn len(&self) -> usize {
        self.lens.iter().sum()
    }

    pub(crate) fn list_len(&self, list: usize) -> usize {
        self.lens[list]
    }

    pub(crate) fn find(&self, page: u64) -> Option<Slot> {
        match &self.index {
            Index::Hashed(index) => index.get(page, self.nodes.as_ref()),
            Index::Dense => {
                let node = self.nodes.as_ref().get(usize::try_from(page).ok()?)?;
                (node.list != FREE).then_some(page as Slot)
            }
        }
    }

    pub(crate) fn page(&self, slot: Slot) -> u64 {
        self.node(slot).page
    }

    pub(crate) fn list_of(&self, slot: Slot) -> usize {
        self.node(slot).list as usize
    }

    pub(crate) fn data(&self, slot: Slot) -> T {
        self.node(slot).data
    }

    pub(crate) fn data_mut(&mut self, slot: Slot) -> &mut T {
        &mut self.node_mut(slot).data
    }

    /// The oldest slot of `list`.
    pub(crate) fn tail(&self, list: usize) -> Option<Slot> {
        (self.tails[list] != NIL).then_some(self.tails[list])
    }

    /// [`Table::insert`] for a page that may already be there: the
    /// policies' common `Policy::insert` (resident: an error; full: an
    /// error; else added at the head of `list`).
    pub(crate) fn insert_new(
        &mut self,
        page: u64,
        list: usize,
        data: T,
    ) -> Result<Slot, crate::InsertError> {
        if self.find(page).is_some() {
            return Err(crate::InsertError::Resident);
        }
        self.insert(page, list, data)
            .ok_or(crate::InsertError::Full)
    }

    /// Adds `page` at the head of `list`. The caller has checked that the
    /// page is absent; `None` if every slot is in use.
    pub(crate) fn insert(&mut self, page: u64, list: usize, data: T) -> Option<Slot> {
        let slot = match &mut self.index {
            Index::Hashed(index) => {
                if self.free == NIL {
                    return None;
                }
                let slot = self.free;
                self.free = self.nodes.as_ref()[slot as usize].next;
                index.insert(page, slot);
                slot
            }
            Index::Dense => {
                let node = self.nodes.as_ref().get(usize::try_from(page).ok()?)?;
                if node.list != FREE {
                    return None;
                }
                page as Slot
            }
        };
        let node = self.node_mut(slot);
        node.page = page;
        node.data = data;
        self.link_head(slot, list);
        Some(slot)
    }

    /// Removes `slot`'s page; returns its data.
    pub(crate) fn remove(&mut self, slot: Slot) -> T {
        let page = self.node(slot).page;
        if let Index::Hashed(index) = &mut self.index {
            index.remove(page, self.nodes.as_ref());
        }
        self.unlink(slot);
        let free = match self.index {
            Index::Hashed(_) => core::mem::replace(&mut self.free, slot),
            Index::Dense => NIL,
        };
        let node = self.node_mut(slot);
        node.next = free;
        node.prev = NIL;
        node.list = FREE;
        node.data
    }

    /// Moves `slot` to the head of `list` (the same list or another).
    pub(crate) fn move_to_head(&mut self, slot: Slot, list: usize) {
        self.unlink(slot);
        self.link_head(slot, list);
    }

    /// Moves `slot` to the tail of `list` (the same list or another).
    pub(crate) fn move_to_tail(&mut self, slot: Slot, list: usize) {
        self.unlink(slot);
        let old = self.tails[list];
        let node = self.node_mut(slot);
        node.list = list as u8;
        node.next = NIL;
        node.prev = old;
        if old == NIL {
            self.heads[list] = slot;
        } else {
            self.node_mut(old).next = slot;
        }
        self.tails[list] = slot;
        self.lens[list] += 1;
    }

    fn link_head(&mut self, slot: Slot, list: usize) {
        let old = self.heads[list];
        let node = self.node_mut(slot);
        node.list = list as u8;
        node.prev = NIL;
        node.next = old;
        if old == NIL {
            self.tails[list] = slot;
        } else {
            self.node_mut(old).prev = slot;
        }
        self.heads[list] = slot;
        self.lens[list] += 1;
    }

    fn unlink(&mut self, slot: Slot) {
        let Node {
            prev, next, list, ..
        } = *self.node(slot);
        let list = list as usize;
        if prev == NIL {
            self.heads[list] = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tails[list] = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
        self.lens[list] -= 1;
    }

    /// The pages of `list`, head to tail (for tests and invariants).
    #[cfg(test)]
    pub(crate) fn pages(&self, list: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut at = self.heads[list];
        while at != NIL {
            out.push(self.node(at).page);
            at = self.node(at).next;
        }
        out
    }
}

/// How a page id finds its slot.
enum Index {
    /// Through a [`HashIndex`].
    Hashed(HashIndex),
    /// The id is the slot.
    Dense,
}

/// Open addressing with linear probing over a power-of-two table at most
/// half full; removal shifts later entries back (no tombstones), so lookups
/// stay short however long the table is used.
struct HashIndex {
    slots: Vec<u32>,
    mask: usize,
}

impl HashIndex {
    fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        let size = (capacity.max(1) * 2).next_power_of_two();
        let mut slots = Vec::new();
        slots.try_reserve_exact(size).map_err(|_| AllocError)?;
        slots.resize(size, NIL);
        Ok(HashIndex {
            slots,
            mask: size - 1,
        })
    }

    fn home(&self, page: u64) -> usize {
        // Fibonacci hashing: the top bits of a multiplicative hash.
        let h = page.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & self.mask
    }

    fn get<T>(&self, page: u64, nodes: &[Node<T>]) -> Option<Slot> {
        let mut i = self.home(page);
        loop {
            let s = self.slots[i];
            if s == NIL {
                return None;
            }
            if nodes[s as usize].page == page {
                return Some(s);
            }
            i = (i + 1) & self.mask;
        }
    }

    fn insert(&mut self, page: u64, slot: Slot) {
        let mut i = self.home(page);
        while self.slots[i] != NIL {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = slot;
    }

    fn remove<T>(&mut self, page: u64, nodes: &[Node<T>]) {
        let mut i = self.home(page);
        loop {
            let s = self.slots[i];
            if s == NIL {
                return;
            }
            if nodes[s as usize].page == page {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion: pull later entries of the run into the
        // hole when their home is at or before it (cyclically).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots[j];
            if s == NIL {
                break;
            }
            let home = self.home(nodes[s as usize].page);
            let dist_j = j.wrapping_sub(home) & self.mask;
            let dist_hole = j.wrapping_sub(hole) & self.mask;
            if dist_j >= dist_hole {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn lists_keep_order_and_lengths() {
        let mut t: Table<u8, 2> = Table::with_capacity(4).unwrap();
        let a = t.insert(10, 0, 1).unwrap();
        let _b = t.insert(11, 0, 2).unwrap();
        let c = t.insert(12, 1, 3).unwrap();
        assert_eq!(t.pages(0), [11, 10]);
        assert_eq!(t.pages(1), [12]);
        t.move_to_head(a, 1);
        assert_eq!(t.pages(0), [11]);
        assert_eq!(t.pages(1), [10, 12]);
        assert_eq!(t.tail(1), Some(c));
        assert_eq!(t.remove(c), 3);
        assert_eq!(t.pages(1), [10]);
        assert_eq!((t.list_len(0), t.list_len(1), t.len()), (1, 1, 2));
        assert_eq!(t.find(12), None);
        assert_eq!(t.find(10), Some(a));
        t.insert(13, 0, 0).unwrap();
        t.insert(14, 0, 0).unwrap();
        assert_eq!(t.insert(15, 0, 0), None, "full");
    }

    proptest! {
        /// The index and the lists agree with a map after any sequence of
        /// inserts, moves and removals (colliding ids included).
        #[test]
        fn table_matches_model(ops in proptest::collection::vec((0u8..3, 0u64..24, 0usize..2), 0..400)) {
            let mut t: Table<u64, 2> = Table::with_capacity(12).unwrap();
            let mut model: BTreeMap<u64, usize> = BTreeMap::new();
            for (op, raw, list) in ops {
                // Spread ids so several share a home bucket.
                let page = (raw << 40) | (raw % 3);
                match (op, t.find(page)) {
                    (0, None) => {
                        let r = t.insert(page, list, page);
                        prop_assert_eq!(r.is_some(), model.len() < 12);
                        if r.is_some() { model.insert(page, list); }
                    }
                    (1, Some(s)) => { t.move_to_head(s, list); model.insert(page, list); }
                    (2, Some(s)) => { prop_assert_eq!(t.remove(s), page); model.remove(&page); }
                    _ => {}
                }
                for (&p, &l) in &model {
                    let s = t.find(p);
                    prop_assert!(s.is_some());
                    prop_assert_eq!(t.page(s.unwrap()), p);
                    prop_assert_eq!(t.list_of(s.unwrap()), l);
                }
                prop_assert_eq!(t.len(), model.len());
                for l in 0..2 {
                    let mut pages = t.pages(l);
                    prop_assert_eq!(pages.len(), t.list_len(l));
                    pages.sort_unstable();
                    let want: Vec<u64> = model.iter().filter(|e| *e.1 == l).map(|e| *e.0).collect();
                    prop_assert_eq!(pages, want);
                }
            }
        }
    }
}
