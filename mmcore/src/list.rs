//! Intrusive doubly linked lists threaded through the `prev`/`next` fields
//! of [`PageMeta`], addressed by index into the metadata array.
//!
//! Keeping the links in the metadata (as Linux's `page->lru` does) means the
//! allocators never read or write the memory of the frames they manage.

use crate::frame::{PageMeta, NIL};

/// A list of metadata indices. The list does not own the metadata array; every
/// operation takes it so the same array can hold many lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MetaList {
    head: u32,
    len: u32,
}

impl MetaList {
    pub(crate) const fn new() -> MetaList {
        MetaList { head: NIL, len: 0 }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    pub(crate) fn first(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub(crate) fn push_front(&mut self, meta: &mut [PageMeta], idx: u32) {
        let old = self.head;
        meta[idx as usize].prev = NIL;
        meta[idx as usize].next = old;
        if old != NIL {
            meta[old as usize].prev = idx;
        }
        self.head = idx;
        self.len += 1;
    }

    /// Unlinks `idx`, which must be on this list.
    pub(crate) fn remove(&mut self, meta: &mut [PageMeta], idx: u32) {
        let PageMeta { prev, next, .. } = meta[idx as usize];
        if prev == NIL {
            debug_assert_eq!(self.head, idx, "removing a node that is not on this list");
            self.head = next;
        } else {
            meta[prev as usize].next = next;
        }
        if next != NIL {
            meta[next as usize].prev = prev;
        }
        meta[idx as usize].prev = NIL;
        meta[idx as usize].next = NIL;
        self.len -= 1;
    }

    pub(crate) fn pop_front(&mut self, meta: &mut [PageMeta]) -> Option<u32> {
        let idx = self.first()?;
        self.remove(meta, idx);
        Some(idx)
    }

    /// Walks the list checking link consistency; calls `f` on each index.
    /// Fails on a broken back link, an out-of-range index, a cycle or a
    /// length mismatch.
    pub(crate) fn check(
        &self,
        meta: &[PageMeta],
        mut f: impl FnMut(u32) -> Result<(), &'static str>,
    ) -> Result<(), &'static str> {
        let mut prev = NIL;
        let mut cur = self.head;
        let mut seen = 0u32;
        while cur != NIL {
            let m = meta.get(cur as usize).ok_or("list link out of range")?;
            if m.prev != prev {
                return Err("list back link does not match");
            }
            seen += 1;
            if seen > self.len {
                return Err("list longer than its length (cycle?)");
            }
            f(cur)?;
            prev = cur;
            cur = m.next;
        }
        if seen != self.len {
            return Err("list shorter than its length");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn collect(list: &MetaList, meta: &[PageMeta]) -> Vec<u32> {
        let mut out = Vec::new();
        list.check(meta, |i| {
            out.push(i);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn push_remove_pop() {
        let mut meta = vec![PageMeta::RESERVED; 8];
        let mut l = MetaList::new();
        assert!(l.is_empty());
        for i in [1, 3, 5, 7] {
            l.push_front(&mut meta, i);
        }
        assert_eq!(collect(&l, &meta), [7, 5, 3, 1]);
        l.remove(&mut meta, 5);
        assert_eq!(collect(&l, &meta), [7, 3, 1]);
        l.remove(&mut meta, 1);
        assert_eq!(collect(&l, &meta), [7, 3]);
        assert_eq!(l.pop_front(&mut meta), Some(7));
        assert_eq!(l.pop_front(&mut meta), Some(3));
        assert_eq!(l.pop_front(&mut meta), None);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn check_detects_broken_links() {
        let mut meta = vec![PageMeta::RESERVED; 4];
        let mut l = MetaList::new();
        l.push_front(&mut meta, 0);
        l.push_front(&mut meta, 1);
        meta[0].prev = 3;
        assert!(l.check(&meta, |_| Ok(())).is_err());
        meta[0].prev = 1;
        meta[0].next = 1; // cycle
        assert!(l.check(&meta, |_| Ok(())).is_err());
    }
}
