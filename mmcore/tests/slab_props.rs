//! Property tests: the slab heap against a model of live allocations, with
//! every live object filled with a pattern that is verified before it is freed.

use std::alloc::Layout;
use std::ptr::NonNull;

use mmcore::buddy::BuddyAllocator;
use mmcore::frame::host::Arena;
use mmcore::frame::{Pfn, PhysMem, PAGE_SIZE};
use mmcore::slab::{SlabError, SlabHeap, KMALLOC_MAX_SIZE};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        size: usize,
        align_shift: u32,
    },
    Free(usize),
    /// Free a live object, then free it again right away (must be rejected).
    DoubleFree(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![
        6 => 1..=256usize,
        3 => 257..=KMALLOC_MAX_SIZE,
        1 => KMALLOC_MAX_SIZE + 1..=16384usize,
    ];
    let align_shift = prop_oneof![6 => 0..=4u32, 2 => 5..=8u32, 1 => 9..=12u32];
    prop_oneof![
        5 => (size, align_shift).prop_map(|(size, align_shift)| Op::Alloc { size, align_shift }),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::DoubleFree),
    ]
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
            cases: 128,
            ..ProptestConfig::default()
        }
    }
}

fn ops_len() -> std::ops::Range<usize> {
    if cfg!(miri) {
        5..25
    } else {
        50..1500
    }
}

struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    tag: u8,
}

fn fill(l: &Live) {
    // SAFETY: `l.ptr` is a live allocation of `l.layout.size()` bytes owned by the test.
    unsafe { l.ptr.as_ptr().write_bytes(l.tag, l.layout.size()) };
}

fn intact(l: &Live) -> bool {
    // SAFETY: as in `fill`; the bytes were initialised by `fill`.
    let bytes = unsafe { std::slice::from_raw_parts(l.ptr.as_ptr(), l.layout.size()) };
    bytes.iter().all(|&b| b == l.tag)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn slab_heap_matches_model(ops in proptest::collection::vec(op(), ops_len())) {
        let frames: u64 = if cfg!(miri) { 96 } else { 4096 };
        let arena = Arena::new(Pfn(1 << 20), frames);
        let mut meta = arena.new_meta();
        let mut buddy = BuddyAllocator::new(&mut meta, arena.base_pfn());
        buddy.add_free_range(arena.base_pfn(), arena.end_pfn());
        let initial_info = buddy.buddyinfo();
        let mut heap = SlabHeap::new();
        let mut live: Vec<Live> = Vec::new();
        let mut next_tag = 1u8;

        for op in ops {
            match op {
                Op::Alloc { size, align_shift } => {
                    let layout = Layout::from_size_align(size, 1 << align_shift).unwrap();
                    match heap.alloc(layout, &mut buddy, &arena) {
                        Ok(ptr) => {
                            prop_assert_eq!(ptr.as_ptr() as usize % layout.align(), 0, "misaligned for {:?}", layout);
                            prop_assert!(arena.contains(ptr.as_ptr()));
                            prop_assert!(arena.contains(ptr.as_ptr().wrapping_add(size - 1)));
                            let l = Live { ptr, layout, tag: next_tag };
                            next_tag = next_tag.wrapping_add(1).max(1);
                            fill(&l);
                            live.push(l);
                        }
                        Err(SlabError::OutOfMemory { .. }) => {
                            // Only when the buddy allocator really has no block big enough.
                            let info = buddy.buddyinfo();
                            let max_free = info.iter().rposition(|&n| n > 0).map_or(0, |k| PAGE_SIZE << k);
                            prop_assert!(max_free < size.max(layout.align()) * 2 || max_free < 8 * PAGE_SIZE,
                                "OOM for {:?} with buddyinfo {:?}", layout, info);
                        }
                        Err(e) => prop_assert!(false, "alloc({:?}) failed: {}", layout, e),
                    }
                }
                Op::Free(i) | Op::DoubleFree(i) => {
                    if live.is_empty() {
                        continue;
                    }
                    let l = live.swap_remove(i % live.len());
                    prop_assert!(intact(&l), "object {:p} {:?} was overwritten", l.ptr, l.layout);
                    prop_assert_eq!(heap.dealloc(l.ptr, l.layout, &mut buddy, &arena), Ok(()));
                    if matches!(op, Op::DoubleFree(_)) {
                        let stats_before = buddy.stats();
                        let caches_before: Vec<_> = heap.caches().collect();
                        let e = heap.dealloc(l.ptr, l.layout, &mut buddy, &arena);
                        prop_assert!(e.is_err(), "double free of {:p} accepted", l.ptr);
                        prop_assert_eq!(buddy.stats(), stats_before);
                        prop_assert_eq!(heap.caches().collect::<Vec<_>>(), caches_before);
                    }
                }
            }
            // Accounting: the heap is the only user of the buddy allocator.
            prop_assert_eq!(heap.pages_held(), buddy.managed_pages() - buddy.free_pages());
            let small = live.iter().filter(|l| heap.kmalloc_cache_for(l.layout).is_some()).count() as u64;
            let active: u64 = heap.caches().map(|c| c.active_objs).sum();
            prop_assert_eq!(active, small);
            prop_assert_eq!(heap.large_stats().0, live.len() as u64 - small);
            heap.check_invariants(&buddy).map_err(TestCaseError::fail)?;
            buddy.check_invariants().map_err(TestCaseError::fail)?;
        }

        for l in live.drain(..) {
            prop_assert!(intact(&l), "object {:p} {:?} was overwritten", l.ptr, l.layout);
            prop_assert_eq!(heap.dealloc(l.ptr, l.layout, &mut buddy, &arena), Ok(()));
        }
        heap.shrink(&mut buddy);
        prop_assert_eq!(heap.pages_held(), 0);
        prop_assert_eq!(buddy.free_pages(), frames);
        prop_assert_eq!(buddy.buddyinfo(), initial_info);
        // Every object pointer the arena maps back to a frame of the arena.
        prop_assert_eq!(arena.ptr_to_pfn(arena.frame_ptr(arena.base_pfn())), arena.base_pfn());
    }
}
