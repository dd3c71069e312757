//! Early boot allocator, after Linux's memblock.
//!
//! Before the buddy allocator exists (it needs a metadata array, which needs
//! memory) the kernel allocates from a list of usable physical ranges taken
//! from the firmware memory map. `MemBlock` keeps two sorted, merged range
//! sets in fixed arrays (no heap): `memory` (usable RAM) and `reserved`
//! (what was handed out or explicitly reserved). Free memory is
//! `memory - reserved`; at handover [`MemBlock::free_frames`] yields it as
//! whole frames for [`BuddyAllocator::add_free_range`](crate::buddy::BuddyAllocator::add_free_range).

use core::fmt;

use crate::frame::{Pfn, PAGE_SIZE};

/// Capacity of each range set (UEFI maps have ~120 entries).
pub const MAX_RANGES: usize = 256;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// `[start, end)`.
    pub const fn new(start: u64, end: u64) -> PhysRange {
        PhysRange { start, end }
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the range has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A range set is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memblock: more than {MAX_RANGES} separate ranges")
    }
}

/// Sorted, non-overlapping, non-adjacent ranges in a fixed array.
#[derive(Clone)]
struct RangeSet {
    ranges: [PhysRange; MAX_RANGES],
    len: usize,
}

impl RangeSet {
    const fn new() -> RangeSet {
        RangeSet {
            ranges: [PhysRange::new(0, 0); MAX_RANGES],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Adds `r`, merging with overlapping or adjacent ranges.
    fn add(&mut self, r: PhysRange) -> Result<(), TooManyRanges> {
        if r.is_empty() {
            return Ok(());
        }
        // First range whose end reaches r.start (may merge from there).
        let first = self.as_slice().partition_point(|x| x.end < r.start);
        // One past the last range whose start is <= r.end.
        let last = self.as_slice().partition_point(|x| x.start <= r.end);
        if first == last {
            if self.len == MAX_RANGES {
                return Err(TooManyRanges);
            }
            self.ranges.copy_within(first..self.len, first + 1);
            self.ranges[first] = r;
            self.len += 1;
            return Ok(());
        }
        let merged = PhysRange::new(
            r.start.min(self.ranges[first].start),
            r.end.max(self.ranges[last - 1].end),
        );
        self.ranges[first] = merged;
        let removed = last - first - 1;
        self.ranges.copy_within(last..self.len, first + 1);
        self.len -= removed;
        Ok(())
    }

    fn total(&self) -> u64 {
        self.as_slice().iter().map(PhysRange::len).sum()
    }
}

/// Which end of memory `alloc` takes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Highest suitable address first (Linux's default: keeps low memory free).
    TopDown,
    /// Lowest suitable address first.
    BottomUp,
}

/// The early boot allocator.
#[derive(Clone)]
pub struct MemBlock {
    memory: RangeSet,
    reserved: RangeSet,
}

impl Default for MemBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl MemBlock {
    /// An allocator with no memory.
    pub const fn new() -> MemBlock {
        MemBlock {
            memory: RangeSet::new(),
            reserved: RangeSet::new(),
        }
    }

    /// Declares `[start, end)` usable RAM (unaligned edges are fine: only
    /// whole frames are ever handed out).
    pub fn add_usable(&mut self, start: u64, end: u64) -> Result<(), TooManyRanges> {
        self.memory.add(PhysRange::new(start, end))
    }

    /// Marks `[start, end)` as in use (kernel image, boot data, ...).
    pub fn reserve(&mut self, start: u64, end: u64) -> Result<(), TooManyRanges> {
        self.reserved.add(PhysRange::new(start, end))
    }

    /// Usable RAM ranges, sorted and merged.
    pub fn memory(&self) -> &[PhysRange] {
        self.memory.as_slice()
    }

    /// Reserved ranges, sorted and merged.
    pub fn reserved(&self) -> &[PhysRange] {
        self.reserved.as_slice()
    }

    /// Bytes of usable RAM.
    pub fn total_usable(&self) -> u64 {
        self.memory.total()
    }

    /// Bytes reserved (including reservations outside usable RAM).
    pub fn total_reserved(&self) -> u64 {
        self.reserved.total()
    }

    /// Frames spanned by usable RAM: `[lowest, highest)`, for sizing the
    /// metadata array. `None` if there is no memory.
    pub fn pfn_span(&self) -> Option<(Pfn, Pfn)> {
        let m = self.memory();
        let first = m.first()?;
        let last = m.last()?;
        Some((Pfn::from_addr(first.start), Pfn::from_addr_up(last.end)))
    }

    /// Allocates `size` bytes (rounded up to whole pages) aligned to `align`
    /// (at least [`PAGE_SIZE`]), from the top of memory.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        self.alloc_in(size, align, 0, u64::MAX, Direction::TopDown)
    }

    /// Like [`alloc`](Self::alloc) but from the bottom of memory.
    pub fn alloc_low(&mut self, size: u64, align: u64) -> Option<u64> {
        self.alloc_in(size, align, 0, u64::MAX, Direction::BottomUp)
    }

    /// Allocates within `[min_addr, max_addr)` in the given direction. The
    /// result is recorded as reserved.
    pub fn alloc_in(
        &mut self,
        size: u64,
        align: u64,
        min_addr: u64,
        max_addr: u64,
        dir: Direction,
    ) -> Option<u64> {
        let page = PAGE_SIZE as u64;
        if size == 0 {
            return None;
        }
        let size = size.checked_next_multiple_of(page)?;
        let align = align.max(page).checked_next_power_of_two()?;
        let fit = |r: PhysRange| -> Option<u64> {
            let lo = r.start.max(min_addr).checked_next_multiple_of(align)?;
            let hi = r.end.min(max_addr);
            if lo.checked_add(size)? > hi {
                return None;
            }
            Some(match dir {
                Direction::BottomUp => lo,
                Direction::TopDown => (hi - size) & !(align - 1),
            })
        };
        let found = match dir {
            Direction::BottomUp => self.free_ranges().find_map(fit),
            Direction::TopDown => self.free_ranges_rev().find_map(fit),
        }?;
        self.reserved
            .add(PhysRange::new(found, found + size))
            .ok()?;
        Some(found)
    }

    /// Free byte ranges (`memory - reserved`), ascending.
    pub fn free_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.memory().iter().flat_map(move |&m| {
            let res = self.reserved_within(m);
            let mut cursor = m.start;
            let mut it = res.iter();
            let mut done = false;
            core::iter::from_fn(move || {
                while !done {
                    match it.next() {
                        Some(r) => {
                            let piece = PhysRange::new(cursor, r.start.max(cursor));
                            cursor = cursor.max(r.end);
                            if !piece.is_empty() {
                                return Some(piece);
                            }
                        }
                        None => {
                            done = true;
                            let piece = PhysRange::new(cursor, m.end);
                            if !piece.is_empty() {
                                return Some(piece);
                            }
                        }
                    }
                }
                None
            })
        })
    }

    /// Free byte ranges, descending.
    pub fn free_ranges_rev(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.memory().iter().rev().flat_map(move |&m| {
            let res = self.reserved_within(m);
            let mut cursor = m.end;
            let mut it = res.iter().rev();
            let mut done = false;
            core::iter::from_fn(move || {
                while !done {
                    match it.next() {
                        Some(r) => {
                            let piece = PhysRange::new(r.end.min(cursor), cursor);
                            cursor = cursor.min(r.start);
                            if !piece.is_empty() {
                                return Some(piece);
                            }
                        }
                        None => {
                            done = true;
                            let piece = PhysRange::new(m.start, cursor);
                            if !piece.is_empty() {
                                return Some(piece);
                            }
                        }
                    }
                }
                None
            })
        })
    }

    /// The reserved ranges overlapping `m` (a contiguous run of the sorted set).
    fn reserved_within(&self, m: PhysRange) -> &[PhysRange] {
        let res = self.reserved();
        let first = res.partition_point(|r| r.end <= m.start);
        let last = res.partition_point(|r| r.start < m.end);
        &res[first..last.max(first)]
    }

    /// Free memory as whole frames `[start, end)` (starts rounded up, ends
    /// rounded down, empty pieces dropped), ascending: what the buddy
    /// allocator takes over at handover.
    pub fn free_frames(&self) -> impl Iterator<Item = (Pfn, Pfn)> + '_ {
        self.free_ranges().filter_map(|r| {
            let s = Pfn::from_addr_up(r.start);
            let e = Pfn::from_addr(r.end);
            (s < e).then_some((s, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const P: u64 = PAGE_SIZE as u64;

    fn frames(mb: &MemBlock) -> Vec<(u64, u64)> {
        mb.free_frames().map(|(s, e)| (s.0, e.0)).collect()
    }

    #[test]
    fn ranges_merge_and_sort() {
        let mut mb = MemBlock::new();
        mb.add_usable(10 * P, 20 * P).unwrap();
        mb.add_usable(0, 5 * P).unwrap();
        mb.add_usable(20 * P, 30 * P).unwrap(); // adjacent
        mb.add_usable(4 * P, 11 * P).unwrap(); // bridges
        assert_eq!(mb.memory(), &[PhysRange::new(0, 30 * P)]);
        mb.add_usable(100 * P, 101 * P).unwrap();
        mb.add_usable(50 * P, 60 * P).unwrap();
        assert_eq!(mb.memory().len(), 3);
        assert_eq!(mb.memory()[1], PhysRange::new(50 * P, 60 * P));
        assert_eq!(mb.total_usable(), 41 * P);
        assert_eq!(mb.pfn_span(), Some((Pfn(0), Pfn(101))));
    }

    #[test]
    fn unaligned_edges_are_trimmed_at_handover() {
        let mut mb = MemBlock::new();
        mb.add_usable(0x1234, 0x9fc00).unwrap(); // like the low-memory region
        mb.add_usable(0x100000 + 1, 0x100000 + P).unwrap(); // no whole frame
        assert_eq!(frames(&mb), [(2, 0x9f)]);
    }

    #[test]
    fn alloc_top_down_and_bottom_up() {
        let mut mb = MemBlock::new();
        mb.add_usable(P, 64 * P).unwrap();
        let a = mb.alloc(3 * P, P).unwrap();
        assert_eq!(a, 61 * P);
        let b = mb.alloc(100, P).unwrap(); // rounded to a page
        assert_eq!(b, 60 * P);
        let c = mb.alloc_low(P, P).unwrap();
        assert_eq!(c, P);
        let d = mb.alloc(P, 16 * P).unwrap();
        assert_eq!(d, 48 * P);
        assert_eq!(frames(&mb), [(2, 48), (49, 60)]);
        assert_eq!(mb.reserved().len(), 3);
        assert_eq!(mb.total_reserved(), 6 * P);
    }

    #[test]
    fn reservations_are_respected() {
        let mut mb = MemBlock::new();
        mb.add_usable(0, 32 * P).unwrap();
        mb.reserve(8 * P, 16 * P).unwrap();
        mb.reserve(30 * P + 5, 40 * P).unwrap(); // partly outside memory
        assert_eq!(frames(&mb), [(0, 8), (16, 30)]);
        let rev: Vec<PhysRange> = mb.free_ranges_rev().collect();
        assert_eq!(
            rev,
            [PhysRange::new(16 * P, 30 * P + 5), PhysRange::new(0, 8 * P)]
        );
        // 10 pages fit only in [16, 30).
        assert_eq!(mb.alloc_low(10 * P, P), Some(16 * P));
        assert_eq!(mb.alloc(9 * P, P), None);
        assert_eq!(mb.alloc(8 * P, P), Some(0));
        assert_eq!(frames(&mb), [(26, 30)]);
    }

    #[test]
    fn alloc_in_respects_limits() {
        let mut mb = MemBlock::new();
        mb.add_usable(0, 1 << 33).unwrap(); // 8 GiB
        let low = mb.alloc_in(P, P, 0, 1 << 32, Direction::TopDown).unwrap();
        assert_eq!(low, (1 << 32) - P);
        let high = mb.alloc(P, P).unwrap();
        assert_eq!(high, (1 << 33) - P);
        assert_eq!(
            mb.alloc_in(P, P, 1 << 33, u64::MAX, Direction::BottomUp),
            None
        );
        assert_eq!(mb.alloc(0, P), None);
    }

    #[test]
    fn many_small_regions_and_exhaustion() {
        let mut mb = MemBlock::new();
        // Separate 2-page regions with unaligned slack (fewer under Miri).
        let n: u64 = if cfg!(miri) { 24 } else { 200 };
        for i in 0..n {
            mb.add_usable(i * 4 * P + 7, i * 4 * P + 3 * P + 7).unwrap();
        }
        assert_eq!(mb.memory().len(), n as usize);
        assert_eq!(frames(&mb).len(), n as usize);
        let mut got = Vec::new();
        while let Some(a) = mb.alloc(P, P) {
            got.push(a);
        }
        assert_eq!(got.len(), 2 * n as usize);
        assert!(got.windows(2).all(|w| w[0] > w[1]), "top-down order");
        assert_eq!(frames(&mb), []);
        assert_eq!(mb.alloc(P, P), None);
    }

    #[test]
    fn range_set_capacity_is_enforced() {
        let mut mb = MemBlock::new();
        for i in 0..MAX_RANGES as u64 {
            mb.add_usable(i * 2 * P, i * 2 * P + P).unwrap();
        }
        assert_eq!(mb.add_usable(1 << 40, (1 << 40) + P), Err(TooManyRanges));
        // Merging into an existing range still works when full.
        mb.add_usable(P, 2 * P).unwrap();
        assert_eq!(mb.memory().len(), MAX_RANGES - 1);
    }
}
