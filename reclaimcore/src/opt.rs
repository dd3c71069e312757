//! Belady's OPT (MIN): on a miss with memory full, evict the resident page
//! whose next use is furthest in the future (or never comes). It needs the
//! whole trace, so it is not a [`crate::Policy`]: it is the bound every
//! online policy is measured against. No demand-paging policy takes fewer
//! misses on any trace.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;

/// OPT's misses over `trace` with `capacity` frames.
pub fn misses(trace: &[u64], capacity: usize) -> u64 {
    // Dense ids, then each access's next use of the same page.
    let mut ids: Vec<u64> = trace.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let dense: Vec<usize> = trace
        .iter()
        .map(|p| ids.binary_search(p).unwrap_or(0))
        .collect();
    let never = trace.len();
    let mut next_use = vec![never; trace.len()];
    let mut seen = vec![never; ids.len()];
    for i in (0..trace.len()).rev() {
        next_use[i] = seen[dense[i]];
        seen[dense[i]] = i;
    }
    // Resident pages with their next use; the heap holds (next use, page)
    // entries, stale ones skipped when they surface.
    let mut resident = vec![false; ids.len()];
    let mut current = vec![never; ids.len()];
    let mut heap: BinaryHeap<(usize, usize)> = BinaryHeap::new();
    let mut count = 0;
    let mut misses = 0;
    for (i, &page) in dense.iter().enumerate() {
        if !resident[page] {
            misses += 1;
            if capacity == 0 {
                continue;
            }
            if count == capacity {
                loop {
                    let (when, victim) = heap.pop().expect("a full memory has entries");
                    if resident[victim] && current[victim] == when {
                        resident[victim] = false;
                        count -= 1;
                        break;
                    }
                }
            }
            resident[page] = true;
            count += 1;
        }
        current[page] = next_use[i];
        heap.push((next_use[i], page));
    }
    misses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked() {
        // The textbook reference string (Silberschatz, 3 frames): 9 misses.
        let trace = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(misses(&trace, 3), 9);
        assert_eq!(misses(&trace, 0), 20);
        assert_eq!(misses(&trace, 6), 6, "only cold misses");
        // A loop of 4 pages in 3 frames: cold 3, then one miss per
        // (frames - 1) = 2 accesses: 4 0 1 2 3 0 1 2 3 ...
        let looped: Vec<u64> = (0..12).map(|i| i % 4).collect();
        // 0 1 2 | 3 evicts 2 (used furthest ahead) | 0 1 hit | 2 evicts 1 |
        // 3 0 hit | 1 evicts 0 (never used again) | 2 3 hit: 6 misses.
        assert_eq!(misses(&looped, 3), 6);
    }
}
