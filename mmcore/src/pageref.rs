//! Atomic reference counts of user frames (Linux's `page->_refcount` with
//! `get_page`, `folio_try_get` and `put_page_testzero`).
//!
//! One [`PageRef`] per frame, a `u32`: the count in the low 16 bits (at
//! most [`MAX_REFS`], as the buddy allocator's counts), and a few flag bits
//! above it that the put path needs to see in the same atomic operation
//! ([`SWAPCACHE`]). Taking a reference to a frame one already holds, and
//! dropping one that is not the last, is one atomic operation and no lock;
//! only the holder that drops the count to zero frees the frame (under the
//! frames lock, in the kernel).
//!
//! A reference found through a structure that does not itself hold one
//! (reclaim's LRU lists) is taken with [`PageRef::try_get`], which refuses
//! a count of zero: the frame is on its way out, its last holder about to
//! free it. A count never comes back from zero except by [`PageRef::init`]
//! on a fresh allocation.

use core::sync::atomic::{fence, AtomicU32, Ordering};

/// The most references a frame can have (the count's 16 bits).
pub const MAX_REFS: u32 = 0xffff;
/// The bits holding the count.
const COUNT: u32 = 0xffff;
/// Flag: the frame is in the swap cache (mirrors the kernel's page flag,
/// set and cleared under the frames lock), so a put that leaves one
/// reference may leave only the swap cache's.
pub const SWAPCACHE: u32 = 1 << 16;
/// Flag: a page-cache frame (`FrameKind::UserFile`), set by [`PageRef::init`]
/// for the frame's life: what a fault needs to know of a mapped frame,
/// without the frames lock.
pub const FILE: u32 = 1 << 17;

/// What a [`PageRef::put`] left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// That was the last reference: the caller frees the frame.
    Last,
    /// One reference is left and the frame is in the swap cache: it may
    /// be the cache's own (the caller looks under its lock).
    OneLeftSwapCached,
    /// Others hold it still.
    Held,
}

/// A misuse: a put of a frame with no reference (a bug in the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoReference;

/// One frame's reference count and flags (see the module docs).
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct PageRef(AtomicU32);

impl PageRef {
    /// A free frame's: no references, no flags.
    pub const fn new() -> PageRef {
        PageRef(AtomicU32::new(0))
    }

    /// A freshly allocated frame gets its one reference and `flags` (0 or
    /// [`FILE`]). Only its allocator knows the frame yet, so a plain store
    /// does; whoever hears of it later does so through a lock or a page
    /// table.
    pub fn init(&self, flags: u32) {
        debug_assert_eq!(flags & COUNT, 0);
        self.0.store(1 | flags, Ordering::Relaxed);
    }

    /// Views zero-filled per-frame memory as free frames' counts.
    pub fn from_zeroed(words: &mut [u32]) -> &[PageRef] {
        // SAFETY: `PageRef` is a transparent `AtomicU32`, which has the
        // size and alignment of `u32` (x86_64 and every target with 32-bit
        // atomics); the exclusive borrow of `words` is given up for the
        // shared one returned, so nothing else reads them non-atomically.
        unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<PageRef>(), words.len()) }
    }

    /// The frame was freed: no references, no flags.
    pub fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// The count now (a snapshot; exact only when nobody can change it).
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed) & COUNT
    }

    /// The flag bits now.
    pub fn flags(&self) -> u32 {
        self.0.load(Ordering::Relaxed) & !COUNT
    }

    /// One more reference, unless the count is zero (the frame is being
    /// freed) or full ([`MAX_REFS`]). Returns the new count.
    #[inline]
    pub fn try_get(&self) -> Option<u32> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let n = cur & COUNT;
            if n == 0 || n == MAX_REFS {
                return None;
            }
            // Relaxed as Linux's `page_ref_inc`: a new reference is made
            // from one already held (or under the lock of the structure
            // that found the frame), which orders what matters.
            match self
                .0
                .compare_exchange_weak(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(n + 1),
                Err(now) => cur = now,
            }
        }
    }

    /// Drops one reference. [`Put::Last`] for the holder of the last one,
    /// who frees the frame: every access to it by the others happened
    /// before (release by each put, acquire by the last).
    #[inline]
    pub fn put(&self) -> Result<Put, NoReference> {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let n = cur & COUNT;
            if n == 0 {
                return Err(NoReference);
            }
            match self
                .0
                .compare_exchange_weak(cur, cur - 1, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        Ok(match cur & COUNT {
            1 => {
                fence(Ordering::Acquire);
                Put::Last
            }
            2 if cur & SWAPCACHE != 0 => Put::OneLeftSwapCached,
            _ => Put::Held,
        })
    }

    /// Sets `flag` (a held frame's; under the lock that owns the flag).
    pub fn set_flag(&self, flag: u32) {
        debug_assert_eq!(flag & COUNT, 0);
        self.0.fetch_or(flag, Ordering::Relaxed);
    }

    /// Clears `flag`.
    pub fn clear_flag(&self, flag: u32) {
        debug_assert_eq!(flag & COUNT, 0);
        self.0.fetch_and(!flag, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::vec::Vec;

    #[test]
    fn count_and_limits() {
        let r = PageRef::new();
        assert_eq!(r.try_get(), None, "a free frame cannot be pinned");
        assert_eq!(r.put(), Err(NoReference));
        r.init(0);
        assert_eq!(r.count(), 1);
        assert_eq!(r.try_get(), Some(2));
        assert_eq!(r.put(), Ok(Put::Held));
        assert_eq!(r.put(), Ok(Put::Last));
        assert_eq!(r.count(), 0);
        assert_eq!(r.try_get(), None, "no resurrection from zero");
        r.init(0);
        for n in 2..=MAX_REFS {
            assert_eq!(r.try_get(), Some(n));
        }
        assert_eq!(r.try_get(), None, "65 535 references at most");
        assert_eq!(r.count(), MAX_REFS);
    }

    #[test]
    fn swapcache_flag_reports_one_left() {
        let r = PageRef::new();
        r.init(0);
        r.try_get();
        r.try_get();
        r.set_flag(SWAPCACHE);
        assert_eq!(r.put(), Ok(Put::Held));
        assert_eq!(r.put(), Ok(Put::OneLeftSwapCached));
        assert_eq!(r.flags(), SWAPCACHE);
        assert_eq!(r.count(), 1);
        r.clear_flag(SWAPCACHE);
        assert_eq!(r.put(), Ok(Put::Last));
        // The flags never leak into the count, nor borrow from it.
        r.init(0);
        r.set_flag(SWAPCACHE);
        assert_eq!(r.put(), Ok(Put::Last));
        assert_eq!(r.put(), Err(NoReference));
        assert_eq!(r.flags(), SWAPCACHE);
        r.clear();
        assert_eq!((r.count(), r.flags()), (0, 0));
    }

    #[test]
    fn file_flag_and_zeroed_words() {
        let mut words = [0u32; 3];
        let refs = PageRef::from_zeroed(&mut words);
        assert!(refs.iter().all(|r| r.count() == 0 && r.flags() == 0));
        refs[1].init(FILE);
        assert_eq!(refs[1].try_get(), Some(2));
        assert_eq!(refs[1].put(), Ok(Put::Held));
        assert_eq!(refs[1].flags(), FILE);
        assert_eq!(refs[1].put(), Ok(Put::Last));
        refs[1].init(0);
        assert_eq!(refs[1].flags(), 0, "init replaces the flags");
        assert_eq!((refs[0].count(), refs[2].count()), (0, 0));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Init,
        Get,
        Put,
        Set,
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::Init),
            6 => Just(Op::Get),
            6 => Just(Op::Put),
            1 => Just(Op::Set),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Against a model: a count and a flag.
        #[test]
        fn matches_the_model(ops in proptest::collection::vec(op(), 0..400), near_full in any::<bool>()) {
            let r = PageRef::new();
            let (mut count, mut flag) = (0u32, false);
            if near_full {
                r.init(0);
                for _ in 1..MAX_REFS - 3 {
                    r.try_get().unwrap();
                }
                count = MAX_REFS - 3;
            }
            for op in ops {
                match op {
                    Op::Init => {
                        if count == 0 {
                            r.init(0);
                            count = 1;
                            flag = false;
                        }
                    }
                    Op::Get => {
                        let want = (count != 0 && count != MAX_REFS).then(|| count + 1);
                        prop_assert_eq!(r.try_get(), want);
                        if let Some(n) = want {
                            count = n;
                        }
                    }
                    Op::Put => {
                        let want = match count {
                            0 => Err(NoReference),
                            1 => Ok(Put::Last),
                            2 if flag => Ok(Put::OneLeftSwapCached),
                            _ => Ok(Put::Held),
                        };
                        prop_assert_eq!(r.put(), want);
                        count = count.saturating_sub(1);
                    }
                    Op::Set => {
                        r.set_flag(SWAPCACHE);
                        flag = true;
                    }
                    Op::Clear => {
                        r.clear_flag(SWAPCACHE);
                        flag = false;
                    }
                }
                prop_assert_eq!(r.count(), count);
                prop_assert_eq!(r.flags() != 0, flag);
            }
        }
    }

    /// Threads taking and dropping references while others pin and
    /// unpin: the count comes back exactly, and exactly one put is the
    /// last.
    #[test]
    fn concurrent_gets_and_puts_balance() {
        let rounds = if cfg!(miri) { 20 } else { 20_000 };
        let r = Arc::new(PageRef::new());
        r.init(0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        assert!(r.try_get().is_some());
                        assert_eq!(r.put(), Ok(Put::Held));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(r.count(), 1);
        // Now several holders drop concurrently: one of them sees Last.
        for _ in 0..7 {
            r.try_get().unwrap();
        }
        let lasts: u32 = (0..8)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || u32::from(r.put() == Ok(Put::Last)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(lasts, 1);
        assert_eq!(r.try_get(), None);
    }
}
