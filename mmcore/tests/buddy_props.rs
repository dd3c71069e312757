//! Property tests: the buddy allocator against a simple model of live blocks.

use std::collections::BTreeMap;

use mmcore::buddy::BuddyAllocator;
use mmcore::frame::{PageMeta, Pfn, MAX_ORDER};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Allocate a block of this order.
    Alloc(usize),
    /// Free the live block at this index (modulo the live count).
    Free(usize),
    /// Free an arbitrary (pfn offset, order) pair: must succeed exactly when
    /// the model says it is a live block, otherwise fail and change nothing.
    FreeArbitrary(u64, usize),
    /// Free the live block at this index, then free it again.
    DoubleFree(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let order = prop_oneof![4 => 0..=2usize, 2 => 3..=6usize, 1 => 7..=MAX_ORDER];
    prop_oneof![
        6 => order.clone().prop_map(Op::Alloc),
        5 => any::<usize>().prop_map(Op::Free),
        1 => (any::<u64>(), 0..=MAX_ORDER + 1).prop_map(|(p, o)| Op::FreeArbitrary(p, o)),
        1 => any::<usize>().prop_map(Op::DoubleFree),
    ]
}

/// Memory layout: metadata for `frames` frames at `base`, with free ranges
/// given as (start offset, length) pairs, possibly overlapping.
fn layout() -> impl Strategy<Value = (u64, u64, Vec<(u64, u64)>)> {
    let base = prop_oneof![Just(0u64), 0..1u64 << 22, (1u64 << 20)..(1u64 << 40)];
    let frames = if cfg!(miri) { 16..200u64 } else { 64..6000u64 };
    (base, frames).prop_flat_map(|(base, frames)| {
        let range = (0..frames, 0..frames);
        (
            Just(base),
            Just(frames),
            proptest::collection::vec(range, 1..5),
        )
    })
}

fn config() -> ProptestConfig {
    if cfg!(miri) {
        // Few, short cases; no failure files (Miri isolates the file system).
        ProptestConfig {
            cases: 4,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    } else {
        ProptestConfig {
            cases: 256,
            ..ProptestConfig::default()
        }
    }
}

fn ops_len() -> std::ops::Range<usize> {
    if cfg!(miri) {
        5..30
    } else {
        50..1500
    }
}

/// Observable state compared around rejected operations.
fn snapshot(b: &BuddyAllocator<'_>) -> (mmcore::buddy::BuddyStats, Vec<Vec<Pfn>>) {
    let lists = (0..=MAX_ORDER)
        .map(|k| b.free_blocks(k).collect())
        .collect();
    (b.stats(), lists)
}

fn sorted_free_blocks(b: &BuddyAllocator<'_>) -> Vec<Vec<Pfn>> {
    (0..=MAX_ORDER)
        .map(|k| {
            let mut v: Vec<Pfn> = b.free_blocks(k).collect();
            v.sort();
            v
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn buddy_matches_model((base, frames, ranges) in layout(), ops in proptest::collection::vec(op(), ops_len())) {
        let mut meta = vec![PageMeta::RESERVED; frames as usize];
        let mut b = BuddyAllocator::new(&mut meta, Pfn(base));
        // Which frames are managed, per the model.
        let mut managed = vec![false; frames as usize];
        for &(start, len) in &ranges {
            let end = (start + len).min(frames);
            let newly = (start..end).filter(|&i| !managed[i as usize]).count() as u64;
            prop_assert_eq!(b.add_free_range(Pfn(base + start), Pfn(base + end)), newly);
            for i in start..end {
                managed[i as usize] = true;
            }
        }
        let managed_pages = managed.iter().filter(|&&m| m).count() as u64;
        prop_assert_eq!(b.managed_pages(), managed_pages);
        prop_assert_eq!(b.free_pages(), managed_pages);
        b.check_invariants().map_err(TestCaseError::fail)?;
        let initial_info = b.buddyinfo();
        let initial_blocks = sorted_free_blocks(&b);

        // Model: live blocks by pfn -> order.
        let mut live: BTreeMap<u64, usize> = BTreeMap::new();
        let mut live_pages = 0u64;
        let (mut pgalloc, mut pgfree) = (0u64, 0u64);

        for op in ops {
            match op {
                Op::Alloc(order) => match b.alloc(order) {
                    Some(pfn) => {
                        let p = pfn.0;
                        prop_assert!(pfn.is_aligned(order), "{} not aligned to order {}", pfn, order);
                        prop_assert!(p >= base && p + (1 << order) <= base + frames);
                        for i in p..p + (1 << order) {
                            prop_assert!(managed[(i - base) as usize], "handed out unmanaged frame {:#x}", i);
                        }
                        // No overlap with the neighbouring live blocks.
                        if let Some((&q, &qo)) = live.range(..=p).next_back() {
                            prop_assert!(q + (1 << qo) <= p, "overlaps block {:#x}/{}", q, qo);
                        }
                        if let Some((&q, _)) = live.range(p..).next() {
                            prop_assert!(p + (1 << order) <= q, "overlaps block at {:#x}", q);
                        }
                        prop_assert_eq!(b.refcount(pfn), 1);
                        live.insert(p, order);
                        live_pages += 1 << order;
                        pgalloc += 1 << order;
                    }
                    None => {
                        // Failure is only allowed if no block of that order or larger is free.
                        let info = b.buddyinfo();
                        prop_assert!(info[order..].iter().all(|&n| n == 0), "alloc({}) failed with {:?}", order, info);
                    }
                },
                Op::Free(i) | Op::DoubleFree(i) => {
                    if live.is_empty() {
                        continue;
                    }
                    let (&p, &order) = live.iter().nth(i % live.len()).unwrap();
                    prop_assert_eq!(b.free(Pfn(p), order), Ok(()));
                    live.remove(&p);
                    live_pages -= 1 << order;
                    pgfree += 1 << order;
                    if matches!(op, Op::DoubleFree(_)) {
                        let before = snapshot(&b);
                        let err = b.free(Pfn(p), order);
                        prop_assert!(err.is_err(), "double free of {:#x} accepted", p);
                        prop_assert_eq!(snapshot(&b), before);
                    }
                }
                Op::FreeArbitrary(p, order) => {
                    let p = base + p % (frames + 4);
                    let valid = live.get(&p) == Some(&order);
                    let before = snapshot(&b);
                    let result = b.free(Pfn(p), order);
                    if valid {
                        prop_assert_eq!(result, Ok(()));
                        live.remove(&p);
                        live_pages -= 1 << order;
                        pgfree += 1 << order;
                    } else {
                        prop_assert!(result.is_err(), "bad free of {:#x}/{} accepted", p, order);
                        // The message names the pfn.
                        let msg = result.unwrap_err().to_string();
                        prop_assert!(msg.contains(&format!("{:#x}", p)), "{}", msg);
                        prop_assert_eq!(snapshot(&b), before);
                    }
                }
            }
            let stats = b.stats();
            prop_assert_eq!(stats.free_pages, managed_pages - live_pages);
            prop_assert_eq!((stats.pgalloc, stats.pgfree), (pgalloc, pgfree));
            b.check_invariants().map_err(TestCaseError::fail)?;
        }

        // Freeing everything restores the initial free lists exactly.
        for (&p, &order) in &live {
            prop_assert_eq!(b.free(Pfn(p), order), Ok(()));
        }
        b.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(b.free_pages(), managed_pages);
        prop_assert_eq!(b.buddyinfo(), initial_info);
        prop_assert_eq!(sorted_free_blocks(&b), initial_blocks);
    }
}
