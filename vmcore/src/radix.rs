//! The page cache's index: page number within a file → frame, as a sparse
//! three-level radix tree of 512-entry nodes.
//!
//! It has the shape of a page table (9 bits of the index per level) and
//! plays the part of Linux's xarray (`address_space->i_pages`): lookups are
//! three array reads, a file's pages cost memory only where some are cached,
//! and — the reason it is not a `BTreeMap` — every insertion that needs a
//! new node can fail cleanly with [`IndexError::NoMemory`] instead of
//! aborting the kernel. Values are owned: the page cache stores its frame
//! references (handles) here, so removing one hands the reference back.

use alloc::vec::Vec;

const BITS: u32 = 9;
const FANOUT: usize = 1 << BITS;
const MASK: u64 = FANOUT as u64 - 1;

/// Indexes at or above this do not fit (2^27 pages: 512 GiB of file).
pub const MAX_INDEX: u64 = 1 << (3 * BITS);

/// Why an insertion failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexError {
    /// The index is at or above [`MAX_INDEX`].
    TooLarge,
    /// No memory for a node.
    NoMemory,
}

/// A sparse map from page index to a value.
#[derive(Debug)]
pub struct PageIndex<T> {
    /// Top level: one entry per 2^18 pages; each is a middle node (empty if
    /// nothing is cached there), whose entries are leaves of 512 slots.
    root: Vec<Vec<Vec<Option<T>>>>,
    len: usize,
}

/// One entry of an index that can hold a page *or* the place its contents
/// went (Linux's xarray value entry: shmem leaves a swap entry in the
/// mapping's slot in place of the page it swapped out). `P` is the
/// resident page, `S` what stands for a swapped-out one.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry<P, S> {
    /// The page is resident.
    Page(P),
    /// The page is swapped out; this records where.
    Swapped(S),
}

impl<P, S> Entry<P, S> {
    /// The resident page, if it is one.
    pub fn page(&self) -> Option<&P> {
        match self {
            Entry::Page(p) => Some(p),
            Entry::Swapped(_) => None,
        }
    }

    /// The swapped-out record, if it is one.
    pub fn swapped(&self) -> Option<&S> {
        match self {
            Entry::Page(_) => None,
            Entry::Swapped(s) => Some(s),
        }
    }

    /// Whether it is a swapped-out record.
    pub fn is_swapped(&self) -> bool {
        matches!(self, Entry::Swapped(_))
    }
}

impl<T> Default for PageIndex<T> {
    fn default() -> Self {
        PageIndex::new()
    }
}

fn split(index: u64) -> (usize, usize, usize) {
    (
        (index >> (2 * BITS)) as usize,
        ((index >> BITS) & MASK) as usize,
        (index & MASK) as usize,
    )
}

/// The index whose three parts [`split`] gives.
fn join(a: usize, b: usize, c: usize) -> u64 {
    ((a as u64) << (2 * BITS)) | ((b as u64) << BITS) | c as u64
}

/// Grows `v` to at least `len` entries (new ones `Vec::new()`, which
/// allocates nothing), failing cleanly.
fn grow<T>(v: &mut Vec<Vec<T>>, len: usize) -> Result<(), IndexError> {
    if v.len() < len {
        v.try_reserve_exact(len - v.len())
            .map_err(|_| IndexError::NoMemory)?;
        v.resize_with(len, Vec::new);
    }
    Ok(())
}

/// Gives back a node's room beyond its entries, so that an index whose
/// pages went holds no more than one that never had them (a file's index
/// does not keep its high-water size). Without memory for the smaller copy
/// the node stays as it is (only memory, nothing wrong).
fn fit<T>(v: &mut Vec<T>) {
    if v.is_empty() {
        *v = Vec::new();
    } else if v.capacity() > v.len() {
        let mut smaller = Vec::new();
        if smaller.try_reserve_exact(v.len()).is_ok() {
            smaller.append(v);
            *v = smaller;
        }
    }
}

impl<T> PageIndex<T> {
    /// An empty index (allocates nothing).
    pub const fn new() -> PageIndex<T> {
        PageIndex {
            root: Vec::new(),
            len: 0,
        }
    }

    /// Number of values stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at `index`.
    pub fn get(&self, index: u64) -> Option<&T> {
        if index >= MAX_INDEX {
            return None;
        }
        let (a, b, c) = split(index);
        self.root.get(a)?.get(b)?.get(c)?.as_ref()
    }

    /// Stores `value` at `index`; returns the value it replaced. On
    /// failure nothing changed but that `value` is dropped (a node made on
    /// the way stays allocated, which only costs memory until the next
    /// removal there).
    pub fn insert(&mut self, index: u64, value: T) -> Result<Option<T>, IndexError> {
        if index >= MAX_INDEX {
            return Err(IndexError::TooLarge);
        }
        let (a, b, c) = split(index);
        grow(&mut self.root, a + 1)?;
        let mid = &mut self.root[a];
        grow(mid, b + 1)?;
        let leaf = &mut mid[b];
        if leaf.is_empty() {
            leaf.try_reserve_exact(FANOUT)
                .map_err(|_| IndexError::NoMemory)?;
            leaf.resize_with(FANOUT, || None);
        }
        let old = leaf[c].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        Ok(old)
    }

    /// Removes the value at `index`, freeing nodes left empty.
    pub fn remove(&mut self, index: u64) -> Option<T> {
        if index >= MAX_INDEX {
            return None;
        }
        let (a, b, c) = split(index);
        let leaf = self.root.get_mut(a)?.get_mut(b)?;
        let old = leaf.get_mut(c)?.take()?;
        self.len -= 1;
        if leaf.iter().all(Option::is_none) {
            *leaf = Vec::new();
            self.trim_mid(a);
            self.trim_root();
        }
        Some(old)
    }

    /// Frees the empty tail of the middle node `a` (all of it if empty).
    fn trim_mid(&mut self, a: usize) {
        let mid = &mut self.root[a];
        while mid.last().is_some_and(Vec::is_empty) {
            mid.pop();
        }
        fit(mid);
    }

    /// Frees the empty tail of the root (all of it if empty).
    fn trim_root(&mut self) {
        while self.root.last().is_some_and(Vec::is_empty) {
            self.root.pop();
        }
        fit(&mut self.root);
    }

    /// Every `(index, value)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.root.iter().enumerate().flat_map(|(a, mid)| {
            mid.iter().enumerate().flat_map(move |(b, leaf)| {
                leaf.iter()
                    .enumerate()
                    .filter_map(move |(c, v)| Some((join(a, b, c), v.as_ref()?)))
            })
        })
    }

    /// Every `(index, value)` at or above `from`, in index order (nodes
    /// wholly below `from` are skipped, not walked).
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = (u64, &T)> + '_ {
        let (fa, fb, fc) = if from >= MAX_INDEX {
            (self.root.len(), 0, 0)
        } else {
            split(from)
        };
        self.root
            .iter()
            .enumerate()
            .skip(fa)
            .flat_map(move |(a, mid)| {
                let b0 = if a == fa { fb } else { 0 };
                mid.iter().enumerate().skip(b0).flat_map(move |(b, leaf)| {
                    let c0 = if a == fa && b == fb { fc } else { 0 };
                    leaf.iter()
                        .enumerate()
                        .skip(c0)
                        .filter_map(move |(c, v)| Some((join(a, b, c), v.as_ref()?)))
                })
            })
    }

    /// Keeps the values `keep(index, value)` says to keep, removing the
    /// rest (dropping them, and freeing nodes left empty). Returns how many
    /// were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &T) -> bool) -> usize {
        let mut removed = 0;
        for a in 0..self.root.len() {
            for b in 0..self.root[a].len() {
                let leaf = &mut self.root[a][b];
                let mut any = false;
                for (c, slot) in leaf.iter_mut().enumerate() {
                    let Some(value) = slot else { continue };
                    if keep(join(a, b, c), value) {
                        any = true;
                    } else {
                        *slot = None;
                        removed += 1;
                    }
                }
                if !any {
                    *leaf = Vec::new();
                }
            }
            self.trim_mid(a);
        }
        self.trim_root();
        self.len -= removed;
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use proptest::prelude::*;

    #[test]
    fn basics() {
        let mut ix = PageIndex::<u64>::new();
        assert_eq!(ix.get(5), None);
        assert_eq!(ix.insert(5, 50), Ok(None));
        assert_eq!(ix.insert(5, 51), Ok(Some(50)));
        assert_eq!(ix.insert(MAX_INDEX - 1, 7), Ok(None));
        assert_eq!(ix.insert(MAX_INDEX, 7), Err(IndexError::TooLarge));
        assert_eq!(ix.len(), 2);
        assert_eq!(
            ix.iter().collect::<Vec<_>>(),
            [(5, &51), (MAX_INDEX - 1, &7)]
        );
        assert_eq!(ix.remove(5), Some(51));
        assert_eq!(ix.remove(5), None);
        assert_eq!(ix.remove(MAX_INDEX - 1), Some(7));
        assert!(ix.is_empty());
        assert!(ix.root.is_empty(), "every node freed");
    }

    #[test]
    fn entries_page_or_swapped() {
        let mut ix = PageIndex::<Entry<u64, u32>>::new();
        ix.insert(3, Entry::Page(30)).unwrap();
        ix.insert(4, Entry::Swapped(7)).unwrap();
        assert_eq!(ix.get(3).and_then(Entry::page), Some(&30));
        assert_eq!(ix.get(3).and_then(Entry::swapped), None);
        assert_eq!(ix.get(4).and_then(Entry::swapped), Some(&7));
        assert!(ix.get(4).is_some_and(Entry::is_swapped));
        // Swapping out replaces the page in its slot: the page comes back.
        assert_eq!(ix.insert(3, Entry::Swapped(8)), Ok(Some(Entry::Page(30))));
        assert_eq!(ix.len(), 2);
        let swapped: Vec<u64> = ix
            .iter()
            .filter(|(_, e)| e.is_swapped())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(swapped, [3, 4]);
    }

    #[test]
    fn iter_from_skips_below() {
        let mut ix = PageIndex::<u64>::new();
        for i in [0, 5, 511, 512, 1 << 18, (1 << 18) + 513, MAX_INDEX - 1] {
            ix.insert(i, i).unwrap();
        }
        for from in [
            0,
            1,
            5,
            6,
            511,
            512,
            513,
            1 << 18,
            (1 << 18) + 1,
            MAX_INDEX - 1,
            MAX_INDEX,
            u64::MAX,
        ] {
            let want: Vec<u64> = ix.iter().map(|(i, _)| i).filter(|&i| i >= from).collect();
            let got: Vec<u64> = ix.iter_from(from).map(|(i, _)| i).collect();
            assert_eq!(got, want, "from {from}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Against a BTreeMap: same contents after any sequence, nodes
        /// freed once empty.
        #[test]
        fn matches_a_map(ops in prop::collection::vec(
            (0u8..4, prop_oneof![0u64..2048, (MAX_INDEX - 4096)..MAX_INDEX], 1u64..1000),
            1..400,
        )) {
            let mut ix = PageIndex::<u64>::new();
            let mut model = BTreeMap::new();
            for (op, index, value) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(ix.insert(index, value).unwrap(), model.insert(index, value)),
                    2 => prop_assert_eq!(ix.remove(index), model.remove(&index)),
                    _ => {
                        let removed = ix.retain(|i, v| (i + v) % 3 != 0);
                        let before = model.len();
                        model.retain(|i, v| (*i + *v) % 3 != 0);
                        prop_assert_eq!(removed, before - model.len());
                    }
                }
                prop_assert_eq!(ix.len(), model.len());
                prop_assert_eq!(ix.get(index), model.get(&index));
            }
            let all: Vec<(u64, &u64)> = model.iter().map(|(&k, v)| (k, v)).collect();
            prop_assert_eq!(ix.iter().collect::<Vec<_>>(), all);
            let keys: Vec<u64> = model.keys().copied().collect();
            for k in keys {
                ix.remove(k);
            }
            prop_assert!(ix.root.is_empty());
        }
    }
}
