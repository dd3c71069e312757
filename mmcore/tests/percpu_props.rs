//! Property tests: the per-CPU object magazines and page lists against a
//! simple model. Several "CPUs" (one cache each) share one slab heap and
//! buddy allocator; objects and frames are often freed on another CPU than
//! the one that allocated them. The model keeps each magazine / list as a
//! stack whose entries are known (an object the test freed there) or
//! unknown (one a refill brought in), and checks after every step that
//! the caches hold exactly what the model says, that every live object is
//! intact and distinct, and that objects and frames add up exactly.

use std::alloc::Layout;
use std::collections::{HashSet, VecDeque};
use std::ptr::NonNull;

use mmcore::buddy::BuddyAllocator;
use mmcore::frame::host::Arena;
use mmcore::frame::{FrameKind, Pfn};
use mmcore::percpu::{ObjectCache, PageList, PCP_POLICY};
use mmcore::slab::SlabHeap;
use proptest::prelude::*;

const CPUS: usize = 3;
/// Sizes hitting small, middle and the largest classes, plus a large one.
const SIZES: [usize; 6] = [8, 24, 200, 1000, 4096, 9000];

#[derive(Clone, Debug)]
enum Op {
    Alloc { cpu: usize, size: usize },
    Free { cpu: usize, which: usize },
    Drain { cpu: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..CPUS, 0..SIZES.len()).prop_map(|(cpu, s)| Op::Alloc { cpu, size: SIZES[s] }),
        5 => (0..CPUS, any::<usize>()).prop_map(|(cpu, which)| Op::Free { cpu, which }),
        1 => (0..CPUS).prop_map(|cpu| Op::Drain { cpu }),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 96 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops_len() -> std::ops::Range<usize> {
    if cfg!(miri) {
        5..25
    } else {
        50..1200
    }
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
}

fn fill(l: &Live) {
    // SAFETY: a live allocation of `l.layout.size()` bytes owned by the test.
    unsafe { l.ptr.as_ptr().write_bytes(l.tag, l.layout.size()) };
}

fn intact(l: &Live) -> bool {
    // SAFETY: as in `fill`; the bytes were initialised by `fill`.
    let bytes = unsafe { std::slice::from_raw_parts(l.ptr.as_ptr(), l.layout.size()) };
    bytes.iter().all(|&b| b == l.tag)
}

/// The model of one magazine: oldest first; `None` = brought in by a refill.
type MagModel = VecDeque<Option<usize>>;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn magazines_match_model(ops in proptest::collection::vec(op(), ops_len())) {
        let arena = Arena::new(Pfn(1 << 20), 4096);
        let mut meta = arena.new_meta();
        let mut buddy = BuddyAllocator::new(&mut meta, arena.base_pfn());
        buddy.add_free_range(arena.base_pfn(), arena.end_pfn());
        let mut heap = SlabHeap::new();
        let mut cpus: Vec<ObjectCache> = (0..CPUS).map(|_| ObjectCache::new()).collect();
        let mut model: Vec<Vec<MagModel>> = vec![vec![MagModel::new(); SIZES.len()]; CPUS];
        let mut live: Vec<Live> = Vec::new();
        let mut tag = 1u8;
        let class_of = |size: usize| SIZES.iter().position(|&s| s == size).unwrap();

        for op in ops {
            match op {
                Op::Alloc { cpu, size } => {
                    let layout = Layout::from_size_align(size, 8).unwrap();
                    let m = &mut model[cpu][class_of(size)];
                    let policy = cpus[cpu].policy_for(layout);
                    let expect = m.pop_back();
                    let ptr = cpus[cpu].alloc(layout, &mut heap, &mut buddy, &arena).unwrap();
                    match expect {
                        Some(Some(p)) => prop_assert_eq!(ptr.as_ptr() as usize, p, "not the hot object"),
                        Some(None) => {}
                        None => {
                            // A miss: a refill of `batch` more (memory is plentiful).
                            if let Some(p) = policy {
                                for _ in 0..p.batch {
                                    m.push_back(None);
                                }
                            }
                        }
                    }
                    prop_assert!(live.iter().all(|l| l.ptr != ptr), "{:p} handed out twice", ptr);
                    let l = Live { ptr, layout, tag };
                    tag = tag.wrapping_add(1).max(1);
                    fill(&l);
                    live.push(l);
                }
                Op::Free { cpu, which } => {
                    if live.is_empty() {
                        continue;
                    }
                    let l = live.swap_remove(which % live.len());
                    prop_assert!(intact(&l), "object {:p} overwritten", l.ptr);
                    let policy = cpus[cpu].policy_for(l.layout);
                    // SAFETY: a live object the model allocated for `l.layout`,
                    // freed once.
                    unsafe { cpus[cpu].dealloc(l.ptr, l.layout, &mut heap, &mut buddy, &arena) }
                        .unwrap();
                    if let Some(p) = policy.filter(|p| p.limit > 0) {
                        let m = &mut model[cpu][class_of(l.layout.size())];
                        if m.len() >= p.limit as usize {
                            m.drain(..p.batch as usize);
                        }
                        m.push_back(Some(l.ptr.as_ptr() as usize));
                    }
                }
                Op::Drain { cpu } => {
                    let expect: usize = model[cpu].iter().map(|m| m.len()).sum();
                    let n = cpus[cpu].drain(&mut heap, &mut buddy, &arena).unwrap();
                    prop_assert_eq!(n, expect as u64);
                    model[cpu].iter_mut().for_each(|m| m.clear());
                }
            }
            // The caches hold exactly what the model says.
            for (c, cache) in cpus.iter().enumerate() {
                for (i, &size) in SIZES.iter().enumerate() {
                    let l = Layout::from_size_align(size, 8).unwrap();
                    prop_assert_eq!(cache.cached_for(l), model[c][i].len() as u64,
                        "cpu {} size {}", c, size);
                    if let Some(p) = cache.policy_for(l) {
                        prop_assert!(cache.cached_for(l) <= u64::from(p.limit));
                    }
                }
            }
            // Objects add up: the slab counts cached objects as allocated.
            let small = live.iter().filter(|l| heap.kmalloc_cache_for(l.layout).is_some()).count() as u64;
            let cached: u64 = cpus.iter().map(|c| c.cached()).sum();
            let active: u64 = heap.caches().map(|c| c.active_objs).sum();
            prop_assert_eq!(active, small + cached);
            prop_assert_eq!(heap.pages_held(), buddy.managed_pages() - buddy.free_pages());
        }
        for l in &live {
            prop_assert!(intact(l));
        }
        for l in live.drain(..) {
            heap.dealloc(l.ptr, l.layout, &mut buddy, &arena).unwrap();
        }
        for c in &mut cpus {
            c.drain(&mut heap, &mut buddy, &arena).unwrap();
        }
        prop_assert_eq!(heap.caches().map(|c| c.active_objs).sum::<u64>(), 0);
        heap.shrink(&mut buddy);
        prop_assert_eq!(buddy.free_pages(), buddy.managed_pages());
        prop_assert_eq!(heap.check_invariants(&buddy), Ok(()));
        prop_assert_eq!(buddy.check_invariants(), Ok(()));
    }

    #[test]
    fn page_lists_match_model(
        ops in proptest::collection::vec(op(), ops_len()),
        floor in 0u64..200,
    ) {
        let frames = 256u64;
        let arena = Arena::new(Pfn(1 << 20), frames);
        let mut meta = arena.new_meta();
        let mut buddy = BuddyAllocator::new(&mut meta, arena.base_pfn());
        buddy.add_free_range(arena.base_pfn(), arena.end_pfn());
        let mut lists: Vec<PageList> =
            (0..CPUS).map(|_| PageList::new(FrameKind::PageTable, PCP_POLICY)).collect();
        let mut model: Vec<MagModel> = vec![MagModel::new(); CPUS];
        let mut live: Vec<Pfn> = Vec::new();

        for op in ops {
            match op {
                Op::Alloc { cpu, .. } => {
                    let expect = model[cpu].pop_back();
                    let free_before = buddy.free_pages();
                    let got = lists[cpu].pop().or_else(|| lists[cpu].refill(&mut buddy, floor));
                    match (expect, got) {
                        (Some(Some(p)), Some(g)) => prop_assert_eq!(g.0 as usize, p),
                        (Some(None), Some(_)) => {}
                        (None, Some(_)) => {
                            let took = free_before - buddy.free_pages();
                            prop_assert!(took >= 1 && took <= u64::from(PCP_POLICY.batch));
                            prop_assert!(buddy.free_pages() >= floor.min(free_before));
                            for _ in 1..took {
                                model[cpu].push_back(None);
                            }
                        }
                        (None, None) => prop_assert!(free_before <= floor),
                        (Some(_), None) => prop_assert!(false, "model had a frame"),
                    }
                    if let Some(g) = got {
                        prop_assert!(!live.contains(&g), "frame {:?} handed out twice", g);
                        prop_assert_eq!(buddy.kind(g), FrameKind::PageTable);
                        live.push(g);
                    }
                }
                Op::Free { cpu, which } => {
                    if live.is_empty() {
                        continue;
                    }
                    let p = live.swap_remove(which % live.len());
                    lists[cpu].free(p, &mut buddy).unwrap();
                    if model[cpu].len() >= PCP_POLICY.high as usize {
                        model[cpu].drain(..PCP_POLICY.batch as usize);
                    }
                    model[cpu].push_back(Some(p.0 as usize));
                    // A second free while it sits on the list is refused.
                    prop_assert!(lists[cpu].push(p).is_err());
                }
                Op::Drain { cpu } => {
                    let n = lists[cpu].drain(&mut buddy).unwrap();
                    prop_assert_eq!(n, model[cpu].len());
                    model[cpu].clear();
                }
            }
            let held: u64 = lists.iter().map(|l| l.len() as u64).sum();
            for (l, m) in lists.iter().zip(&model) {
                prop_assert_eq!(l.len(), m.len());
                prop_assert!(l.len() <= PCP_POLICY.high as usize);
            }
            // Frames add up exactly; the lists' frames are labelled with their kind.
            prop_assert_eq!(buddy.free_pages() + held + live.len() as u64, frames);
            prop_assert_eq!(
                buddy.stats().pages_by_kind[FrameKind::PageTable as usize],
                held + live.len() as u64
            );
            let uniq: HashSet<_> = live.iter().collect();
            prop_assert_eq!(uniq.len(), live.len());
        }
        for p in live.drain(..) {
            buddy.free(p, 0).unwrap();
        }
        for l in &mut lists {
            l.drain(&mut buddy).unwrap();
        }
        prop_assert_eq!(buddy.free_pages(), frames);
        prop_assert_eq!(buddy.check_invariants(), Ok(()));
    }
}
