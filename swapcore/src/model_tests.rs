//! Property tests: [`SlotMap`] and [`Zram`] against simple models over long
//! random operation sequences. (Inside the crate so they can also run the
//! slot map's internal consistency check after every step.)

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use crate::{
    ClusterCursor, Page, SlotMap, SwapDevice, SwapIoError, Zram, CLUSTER_SLOTS, PAGE_SIZE,
};

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 3 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

// ---------------------------------------------------------------- SlotMap

/// Cursors 0..STREAMS are the test's; STREAMS stands for `SlotMap::alloc`.
const STREAMS: usize = 3;

#[derive(Clone, Debug)]
enum SlotOp {
    Alloc(usize),
    /// Dup / put a slot: the `i`-th in-use slot, or (`stray`) slot `i`
    /// whatever its state.
    Dup {
        i: usize,
        stray: bool,
    },
    Put {
        i: usize,
        stray: bool,
    },
    Readahead {
        slot: u64,
        n: u64,
    },
}

/// `puts` weighs releases against 6 for allocations: low fills the map
/// (and fragments it), high keeps it mostly empty.
fn slot_op(puts: u32) -> impl Strategy<Value = SlotOp> {
    prop_oneof![
        6 => (0..=STREAMS).prop_map(SlotOp::Alloc),
        2 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(i, stray)| SlotOp::Dup { i, stray }),
        puts => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(i, stray)| SlotOp::Put { i, stray }),
        1 => (0..800u64, 0..300u64).prop_map(|(slot, n)| SlotOp::Readahead { slot, n }),
    ]
}

/// What the model says a stream's next allocation may be, given the last
/// slot it handed out (`None`: a fresh stream) and the counts.
fn allowed(counts: &[u32], last: Option<u64>, got: Option<u64>) -> Result<(), TestCaseError> {
    let pages = counts.len() as u64;
    let free = |s: u64| counts[s as usize] == 0;
    let cluster_end = |s: u64| (s - s % CLUSTER_SLOTS + CLUSTER_SLOTS).min(pages);
    // 1. The first free slot after the last one, in its cluster.
    if let Some(last) = last {
        if let Some(s) = (last + 1..cluster_end(last)).find(|&s| free(s)) {
            prop_assert_eq!(
                got,
                Some(s),
                "stream after {} must continue in its cluster",
                last
            );
            return Ok(());
        }
    }
    let wholly_free = |base: u64| (base..cluster_end(base)).all(free);
    let any_wholly_free = (0..pages).step_by(CLUSTER_SLOTS as usize).any(wholly_free);
    let Some(got) = got else {
        prop_assert!((0..pages).all(|s| !free(s)), "None while a slot is free");
        return Ok(());
    };
    prop_assert!(got < pages && free(got), "slot {} was not free", got);
    let base = got - got % CLUSTER_SLOTS;
    if any_wholly_free {
        // 2. The start of a fresh cluster.
        prop_assert!(
            got == base && wholly_free(base),
            "{} is not a fresh cluster's start",
            got
        );
    } else {
        // 3. The first free slot of some partly used cluster.
        prop_assert!(
            (base..got).all(|s| !free(s)),
            "{} is not its cluster's first free slot",
            got
        );
    }
    Ok(())
}

fn readahead_model(counts: &[u32], slot: u64, n: u64) -> Vec<u64> {
    let pages = counts.len() as u64;
    let n = n.min(CLUSTER_SLOTS);
    if n == 0 || slot >= pages {
        return Vec::new();
    }
    let cluster = slot / CLUSTER_SLOTS;
    let start = slot - slot % n;
    (start.max(cluster * CLUSTER_SLOTS)..start + n)
        .filter(|&s| {
            s < pages && s / CLUSTER_SLOTS == cluster && s != slot && counts[s as usize] > 0
        })
        .collect()
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn slot_map_matches_model(
        pages in prop_oneof![0..40u64, 200..800u64],
        ops in (1..7u32).prop_flat_map(|puts| {
            proptest::collection::vec(slot_op(puts), 1..if cfg!(miri) { 40 } else { 1500 })
        }),
    ) {
        let mut map = SlotMap::try_new(pages).unwrap();
        let mut counts = vec![0u32; pages as usize];
        let mut cursors = [ClusterCursor::new(); STREAMS];
        let mut last: [Option<u64>; STREAMS + 1] = [None; STREAMS + 1];
        for op in ops {
            match op {
                SlotOp::Alloc(stream) => {
                    let got = match cursors.get_mut(stream) {
                        Some(cursor) => map.alloc_in(cursor),
                        None => map.alloc(),
                    };
                    allowed(&counts, last[stream], got)?;
                    if let Some(s) = got {
                        counts[s as usize] = 1;
                        last[stream] = Some(s);
                    }
                }
                SlotOp::Dup { i, stray } | SlotOp::Put { i, stray } => {
                    let in_use: Vec<u64> = (0..pages).filter(|&s| counts[s as usize] > 0).collect();
                    let slot = if stray || in_use.is_empty() {
                        (i as u64) % (pages + 2)
                    } else {
                        in_use[i % in_use.len()]
                    };
                    let model = counts.get_mut(slot as usize);
                    if matches!(op, SlotOp::Dup { .. }) {
                        let ok = map.dup(slot);
                        match model {
                            Some(c) if *c > 0 => {
                                prop_assert!(ok);
                                *c += 1;
                            }
                            _ => prop_assert!(!ok, "dup of free slot {} succeeded", slot),
                        }
                    } else {
                        let left = map.put(slot);
                        match model {
                            Some(c) if *c > 0 => {
                                *c -= 1;
                                prop_assert_eq!(left, *c);
                            }
                            _ => prop_assert_eq!(left, 0),
                        }
                    }
                }
                SlotOp::Readahead { slot, n } => {
                    let got: Vec<u64> = map.readahead_window(slot, n).collect();
                    prop_assert_eq!(got, readahead_model(&counts, slot, n));
                }
            }
            map.check();
            for (s, &c) in counts.iter().enumerate() {
                prop_assert_eq!(map.count(s as u64), c, "slot {}", s);
            }
            let used = counts.iter().filter(|&&c| c > 0).count() as u64;
            prop_assert_eq!((map.used(), map.free()), (used, pages - used));
        }

        // Everything returns: drop every reference, then one stream gets
        // every slot back, cluster by cluster, each in ascending order.
        for s in 0..pages {
            for _ in 0..counts[s as usize] {
                map.put(s);
            }
        }
        map.check();
        prop_assert_eq!((map.used(), map.free()), (0, pages));
        let mut cursor = ClusterCursor::new();
        let all: Vec<u64> = core::iter::from_fn(|| map.alloc_in(&mut cursor)).collect();
        for pair in all.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let a_ends_cluster = (a + 1) % CLUSTER_SLOTS == 0 || a + 1 == pages;
            prop_assert!(b == a + 1 || (a_ends_cluster && b % CLUSTER_SLOTS == 0), "{} then {}", a, b);
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..pages).collect::<Vec<_>>());
    }
}

// ------------------------------------------------------------------- Zram

#[derive(Clone, Copy, Debug)]
enum Kind {
    Zero,
    /// Every word the same (not zero).
    Same,
    /// Incompressible.
    Random,
    /// A few distinct bytes in runs: compresses well.
    Runs,
    /// Half random, half zero: compresses to about half.
    Half,
}

fn make_page(kind: Kind, seed: u64) -> Page {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut page = [0u8; PAGE_SIZE];
    match kind {
        Kind::Zero => {}
        Kind::Same => {
            let word = (seed | 1).to_ne_bytes();
            page.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = word[i % 8]);
        }
        Kind::Random => page.iter_mut().for_each(|b| *b = next() as u8),
        Kind::Runs => {
            let mut i = 0;
            while i < PAGE_SIZE {
                let r = next();
                let len = (r % 64 + 1) as usize;
                let end = (i + len).min(PAGE_SIZE);
                page[i..end].fill((r >> 8) as u8 % 4);
                i = end;
            }
        }
        Kind::Half => page[..PAGE_SIZE / 2]
            .iter_mut()
            .for_each(|b| *b = next() as u8),
    }
    page
}

fn is_same_filled(page: &Page) -> bool {
    page.iter().enumerate().all(|(i, &b)| b == page[i % 8])
}

#[derive(Clone, Debug)]
enum ZramOp {
    Write(u64, Kind, u64),
    Read(u64),
    Discard(u64),
}

fn zram_op(pages: u64) -> impl Strategy<Value = ZramOp> {
    let kind = prop_oneof![
        Just(Kind::Zero),
        Just(Kind::Same),
        Just(Kind::Random),
        Just(Kind::Runs),
        Just(Kind::Half)
    ];
    // Slots up to two past the end: out-of-range requests are refused.
    prop_oneof![
        4 => (0..pages + 2, kind, any::<u64>()).prop_map(|(s, k, seed)| ZramOp::Write(s, k, seed)),
        3 => (0..pages + 2).prop_map(ZramOp::Read),
        2 => (0..pages + 2).prop_map(ZramOp::Discard),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn zram_matches_model(
        (pages, ops) in (1..24u64).prop_flat_map(|pages| {
            (Just(pages), proptest::collection::vec(zram_op(pages), 1..if cfg!(miri) { 12 } else { 300 }))
        }),
        limit in prop_oneof![3 => Just(0u64), 1 => 1u64..40_000],
    ) {
        let mut z = Zram::try_new("zram0", pages).unwrap();
        z.set_mem_limit(limit);
        let mut model: Vec<Option<Page>> = vec![None; pages as usize];
        let mut failed = 0;
        for op in ops {
            match op {
                ZramOp::Write(slot, kind, seed) => {
                    let page = make_page(kind, seed);
                    match (z.write_page(slot, &page), model.get_mut(slot as usize)) {
                        (Ok(()), Some(m)) => *m = Some(page),
                        (Err(SwapIoError::NoMemory), Some(_)) if limit != 0 => failed += 1,
                        (Err(SwapIoError::OutOfRange), None) => {}
                        (r, m) => prop_assert!(false, "write {}: {:?} (in range: {})", slot, r, m.is_some()),
                    }
                }
                ZramOp::Read(slot) => {
                    let mut back = [0xa5; PAGE_SIZE];
                    match (z.read_page(slot, &mut back), model.get(slot as usize)) {
                        (Ok(()), Some(m)) => {
                            let want = m.unwrap_or([0; PAGE_SIZE]);
                            prop_assert!(back == want, "slot {} read back different data", slot);
                        }
                        (Err(SwapIoError::OutOfRange), None) => {}
                        (r, m) => prop_assert!(false, "read {}: {:?} (in range: {})", slot, r, m.is_some()),
                    }
                }
                ZramOp::Discard(slot) => {
                    z.discard(slot);
                    if let Some(m) = model.get_mut(slot as usize) {
                        *m = None;
                    }
                }
            }
            let s = z.stats();
            let stored = model.iter().flatten().count() as u64;
            let same = model.iter().flatten().filter(|p| is_same_filled(p)).count() as u64;
            prop_assert_eq!(s.pages_stored, stored);
            prop_assert_eq!(s.same_pages, same);
            prop_assert_eq!(s.orig_data_size, stored * PAGE_SIZE as u64);
            prop_assert_eq!(s.failed_writes, failed);
            prop_assert!(s.huge_pages <= stored - same);
            let compressed = stored - same - s.huge_pages;
            prop_assert!(s.compr_data_size >= s.huge_pages * PAGE_SIZE as u64);
            prop_assert!(
                s.compr_data_size < s.huge_pages * PAGE_SIZE as u64 + compressed * Zram::MAX_COMPRESSED as u64
                    || compressed == 0 && s.compr_data_size == s.huge_pages * PAGE_SIZE as u64
            );
            prop_assert!(s.mem_used_total >= s.compr_data_size);
            prop_assert!(s.mem_used_max >= s.mem_used_total);
            prop_assert_eq!(z.mem_used(), s.mem_used_total);
            if limit != 0 {
                prop_assert!(s.mem_used_total <= limit);
            }
        }
        // Every stored page reads back, then discarding all frees every byte.
        for (slot, m) in model.iter().enumerate() {
            let mut back = [0xa5; PAGE_SIZE];
            z.read_page(slot as u64, &mut back).unwrap();
            prop_assert!(back == m.unwrap_or([0; PAGE_SIZE]));
            z.discard(slot as u64);
        }
        let s = z.stats();
        prop_assert_eq!(
            (s.pages_stored, s.orig_data_size, s.compr_data_size, s.mem_used_total, s.same_pages, s.huge_pages),
            (0, 0, 0, 0, 0, 0)
        );
    }
}
