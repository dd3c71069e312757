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
    /// `write_run(first, len pages)`, page `i` made from `seed + i`.
    WriteRun(u64, usize, Kind, u64),
    ReadRun(u64, usize),
}

fn run_pages(len: usize, kind: Kind, seed: u64) -> Vec<Page> {
    (0..len as u64)
        .map(|i| make_page(kind, seed.wrapping_add(i)))
        .collect()
}

/// Checks a `write_run` of `pages` from `first` against the model and
/// brings the model up to date. `Ok` must have stored every page; a refused
/// (out-of-range) run must have changed nothing; any other error leaves each
/// slot with its old or its new page, whichever the device reads back.
/// Returns whether a page write failed for want of memory.
fn check_write_run(
    dev: &mut dyn SwapDevice,
    model: &mut [Option<Page>],
    first: u64,
    pages: &[Page],
    result: Result<(), SwapIoError>,
) -> Result<bool, TestCaseError> {
    let in_range = first
        .checked_add(pages.len() as u64)
        .is_some_and(|end| end <= model.len() as u64);
    match result {
        Ok(()) => {
            prop_assert!(in_range, "run {}+{} accepted", first, pages.len());
            for (i, page) in pages.iter().enumerate() {
                model[first as usize + i] = Some(*page);
            }
            Ok(false)
        }
        Err(SwapIoError::OutOfRange) => {
            prop_assert!(!in_range, "run {}+{} refused", first, pages.len());
            Ok(false)
        }
        Err(e) => {
            prop_assert!(in_range, "run {}+{}: {:?}", first, pages.len(), e);
            for (i, page) in pages.iter().enumerate() {
                let slot = first as usize + i;
                let mut back = [0xa5; PAGE_SIZE];
                prop_assert_eq!(dev.read_page(slot as u64, &mut back), Ok(()));
                let old = model[slot].unwrap_or([0; PAGE_SIZE]);
                prop_assert!(back == old || back == *page, "slot {} holds neither", slot);
                if back == *page {
                    model[slot] = Some(*page);
                }
            }
            Ok(e == SwapIoError::NoMemory)
        }
    }
}

/// Checks a `read_run` of `len` pages from `first` against the model.
fn check_read_run(
    dev: &mut dyn SwapDevice,
    model: &[Option<Page>],
    first: u64,
    len: usize,
) -> Result<(), TestCaseError> {
    let mut back = vec![[0xa5; PAGE_SIZE]; len];
    let in_range = first
        .checked_add(len as u64)
        .is_some_and(|end| end <= model.len() as u64);
    match dev.read_run(first, &mut back) {
        Ok(()) => {
            prop_assert!(in_range);
            for (i, page) in back.iter().enumerate() {
                let want = model[first as usize + i].unwrap_or([0; PAGE_SIZE]);
                prop_assert!(
                    *page == want,
                    "slot {} of the run read back different data",
                    first as usize + i
                );
            }
        }
        Err(SwapIoError::OutOfRange) => prop_assert!(!in_range),
        Err(e) => prop_assert!(false, "read run {}+{}: {:?}", first, len, e),
    }
    Ok(())
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
        4 => (0..pages + 2, kind.clone(), any::<u64>()).prop_map(|(s, k, seed)| ZramOp::Write(s, k, seed)),
        3 => (0..pages + 2).prop_map(ZramOp::Read),
        2 => (0..pages + 2).prop_map(ZramOp::Discard),
        2 => (0..pages + 2, 0..10usize, kind, any::<u64>())
            .prop_map(|(s, n, k, seed)| ZramOp::WriteRun(s, n, k, seed)),
        2 => (0..pages + 2, 0..10usize).prop_map(|(s, n)| ZramOp::ReadRun(s, n)),
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
                ZramOp::WriteRun(first, len, kind, seed) => {
                    let pages = run_pages(len, kind, seed);
                    let result = z.write_run(first, &pages);
                    if check_write_run(&mut z, &mut model, first, &pages, result)? {
                        prop_assert!(limit != 0, "no memory without a limit");
                        failed += 1;
                    }
                }
                ZramOp::ReadRun(first, len) => check_read_run(&mut z, &model, first, len)?,
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

// ------------------------------------------------- Runs on a model device

/// A disk as simple as can be: a page per slot, only the single-page
/// operations (so runs take the trait's defaults), one slot that fails every
/// request with an I/O error, and a count of page requests.
struct ModelDisk {
    slots: Vec<Page>,
    bad: Option<u64>,
    requests: u64,
}

impl SwapDevice for ModelDisk {
    fn name(&self) -> &str {
        "model"
    }

    fn pages(&self) -> u64 {
        self.slots.len() as u64
    }

    fn write_page(&mut self, slot: u64, page: &Page) -> Result<(), SwapIoError> {
        self.requests += 1;
        if Some(slot) == self.bad {
            return Err(SwapIoError::Io);
        }
        let s = self
            .slots
            .get_mut(slot as usize)
            .ok_or(SwapIoError::OutOfRange)?;
        *s = *page;
        Ok(())
    }

    fn read_page(&mut self, slot: u64, page: &mut Page) -> Result<(), SwapIoError> {
        self.requests += 1;
        if Some(slot) == self.bad {
            return Err(SwapIoError::Io);
        }
        *page = *self
            .slots
            .get(slot as usize)
            .ok_or(SwapIoError::OutOfRange)?;
        Ok(())
    }

    fn discard(&mut self, _slot: u64) {}
}

#[test]
fn out_of_range_runs_touch_nothing() {
    let mut disk = ModelDisk {
        slots: vec![[1; PAGE_SIZE]; 8],
        bad: None,
        requests: 0,
    };
    let pages = vec![[2; PAGE_SIZE]; 3];
    assert_eq!(disk.write_run(6, &pages), Err(SwapIoError::OutOfRange));
    assert_eq!(
        disk.write_run(u64::MAX, &pages),
        Err(SwapIoError::OutOfRange)
    );
    let mut back = vec![[0; PAGE_SIZE]; 3];
    assert_eq!(disk.read_run(7, &mut back), Err(SwapIoError::OutOfRange));
    assert_eq!(disk.requests, 0, "refused before any page request");
    assert!(disk.slots.iter().all(|p| *p == [1; PAGE_SIZE]));
    assert!(back.iter().all(|p| *p == [0; PAGE_SIZE]));
    // Empty runs are in range anywhere up to the end, and do nothing.
    assert_eq!(disk.write_run(8, &[]), Ok(()));
    assert_eq!(disk.read_run(8, &mut []), Ok(()));
    assert_eq!(disk.write_run(9, &[]), Err(SwapIoError::OutOfRange));
    // A run is as many page requests as pages.
    disk.write_run(2, &pages).unwrap();
    disk.read_run(1, &mut back).unwrap();
    assert_eq!(disk.requests, 6);
    assert!(back[0] == [1; PAGE_SIZE] && back[1] == [2; PAGE_SIZE] && back[2] == [2; PAGE_SIZE]);
}

#[derive(Clone, Debug)]
enum RunOp {
    WriteRun(u64, usize, u64),
    ReadRun(u64, usize),
    Write(u64, u64),
}

proptest! {
    #![proptest_config(config(64))]

    /// Runs (the trait's defaults) against the model, on a disk with one
    /// failing slot: runs that avoid it behave exactly, runs that cross it
    /// fail with each slot old or new.
    #[test]
    fn default_runs_match_model(
        (pages, bad, ops) in (1..32u64).prop_flat_map(|pages| (
            Just(pages),
            proptest::option::of(0..pages),
            proptest::collection::vec(prop_oneof![
                3 => (0..pages + 2, 0..12usize, any::<u64>()).prop_map(|(s, n, seed)| RunOp::WriteRun(s, n, seed)),
                3 => (0..pages + 2, 0..12usize).prop_map(|(s, n)| RunOp::ReadRun(s, n)),
                1 => (0..pages, any::<u64>()).prop_map(|(s, seed)| RunOp::Write(s, seed)),
            ], 1..if cfg!(miri) { 10 } else { 200 }),
        )),
    ) {
        let mut disk = ModelDisk { slots: vec![[0; PAGE_SIZE]; pages as usize], bad: None, requests: 0 };
        let mut model: Vec<Option<Page>> = vec![None; pages as usize];
        for op in ops {
            let crosses_bad = |first: u64, len: usize| {
                bad.is_some_and(|b| b >= first && b < first.saturating_add(len as u64))
            };
            match op {
                RunOp::WriteRun(first, len, seed) => {
                    let pages = run_pages(len, Kind::Random, seed);
                    disk.bad = bad;
                    let result = disk.write_run(first, &pages);
                    disk.bad = None;
                    let in_range = first + len as u64 <= model.len() as u64;
                    prop_assert_eq!(result == Err(SwapIoError::Io), in_range && crosses_bad(first, len));
                    check_write_run(&mut disk, &mut model, first, &pages, result)?;
                }
                RunOp::ReadRun(first, len) => {
                    let in_range = first + len as u64 <= model.len() as u64;
                    if in_range && crosses_bad(first, len) {
                        disk.bad = bad;
                        let mut back = vec![[0; PAGE_SIZE]; len];
                        prop_assert_eq!(disk.read_run(first, &mut back), Err(SwapIoError::Io));
                        disk.bad = None;
                    } else {
                        check_read_run(&mut disk, &model, first, len)?;
                    }
                }
                RunOp::Write(slot, seed) => {
                    let page = make_page(Kind::Random, seed);
                    disk.write_page(slot, &page).unwrap();
                    model[slot as usize] = Some(page);
                }
            }
        }
    }
}
