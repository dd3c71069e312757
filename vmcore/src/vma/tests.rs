use super::*;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;

const P: u64 = PAGE_SIZE;

fn anon(start: u64, end: u64, prot: Prot) -> Vma {
    Vma::anonymous(start * P, end * P, prot)
}

fn file(start: u64, end: u64, id: u32, offset_pages: u64) -> Vma {
    Vma {
        kind: VmaKind::File {
            file: id,
            offset: offset_pages * P,
        },
        ..anon(start, end, Prot::READ)
    }
}

fn ranges(set: &VmaSet) -> Vec<(u64, u64)> {
    set.iter().map(|v| (v.start / P, v.end / P)).collect()
}

#[test]
fn map_and_find() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    set.map(anon(30, 40, Prot::READ)).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.find(10 * P).unwrap().start, 10 * P);
    assert_eq!(set.find(20 * P - 1).unwrap().start, 10 * P);
    assert!(set.find(20 * P).is_none());
    assert!(set.find(9 * P + 100).is_none());
    assert_eq!(set.find(35 * P).unwrap().prot, Prot::READ);
    assert!(set.find(u64::MAX).is_none());
    assert_eq!(set.total_bytes(), 20 * P);
}

#[test]
fn map_rejects_bad_ranges() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    assert_eq!(
        set.map(anon(15, 25, Prot::RW)),
        Err(VmError::Overlap {
            start: 10 * P,
            end: 20 * P
        })
    );
    assert_eq!(
        set.map(anon(5, 11, Prot::RW)),
        Err(VmError::Overlap {
            start: 10 * P,
            end: 20 * P
        })
    );
    assert!(matches!(
        set.map(Vma::anonymous(1, P, Prot::RW)),
        Err(VmError::Unaligned { .. })
    ));
    assert!(matches!(
        set.map(anon(5, 5, Prot::RW)),
        Err(VmError::EmptyRange { .. })
    ));
    assert!(matches!(
        set.map(anon(6, 5, Prot::RW)),
        Err(VmError::EmptyRange { .. })
    ));
    assert!(matches!(
        set.map(Vma::anonymous(USER_END - P, USER_END + P, Prot::RW)),
        Err(VmError::OutOfRange { .. })
    ));
    let bad_off = Vma {
        kind: VmaKind::File { file: 1, offset: 3 },
        ..anon(50, 51, Prot::READ)
    };
    assert_eq!(set.map(bad_off), Err(VmError::BadOffset { offset: 3 }));
    let overflow = Vma {
        kind: VmaKind::File {
            file: 1,
            offset: u64::MAX - P + 1,
        },
        ..anon(50, 52, Prot::READ)
    };
    assert!(matches!(set.map(overflow), Err(VmError::BadOffset { .. })));
    assert_eq!(ranges(&set), vec![(10, 20)]);
}

#[test]
fn adjacent_compatible_regions_merge() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    set.map(anon(20, 30, Prot::RW)).unwrap();
    assert_eq!(ranges(&set), vec![(10, 30)]);
    set.map(anon(5, 10, Prot::RW)).unwrap();
    assert_eq!(ranges(&set), vec![(5, 30)]);
    // Different protection: no merge.
    set.map(anon(30, 31, Prot::READ)).unwrap();
    assert_eq!(ranges(&set), vec![(5, 30), (30, 31)]);
    // Filling a hole between two compatible regions merges all three.
    set.map(anon(40, 50, Prot::READ)).unwrap();
    set.map(anon(31, 40, Prot::READ)).unwrap();
    assert_eq!(ranges(&set), vec![(5, 30), (30, 50)]);
}

#[test]
fn file_regions_merge_only_with_contiguous_offsets() {
    let mut set = VmaSet::new();
    set.map(file(10, 20, 7, 0)).unwrap();
    set.map(file(20, 30, 7, 10)).unwrap();
    assert_eq!(ranges(&set), vec![(10, 30)]);
    set.map(file(30, 40, 7, 11)).unwrap();
    set.map(file(40, 50, 8, 31)).unwrap();
    assert_eq!(ranges(&set), vec![(10, 30), (30, 40), (40, 50)]);
    // Anonymous next to file never merges.
    set.map(anon(50, 60, Prot::READ)).unwrap();
    assert_eq!(set.len(), 4);
}

#[test]
fn unmap_splits_and_adjusts_offsets() {
    let mut set = VmaSet::new();
    set.map(file(10, 30, 3, 100)).unwrap();
    let removed = set.unmap(15 * P, 20 * P).unwrap();
    assert_eq!(removed, vec![(15 * P, 20 * P)]);
    assert_eq!(ranges(&set), vec![(10, 15), (20, 30)]);
    assert_eq!(
        set.find(20 * P).unwrap().kind,
        VmaKind::File {
            file: 3,
            offset: 110 * P
        }
    );
    assert_eq!(
        set.find(10 * P).unwrap().file_page(12 * P + 5),
        Some((3, 102 * P))
    );
    // Unmapping a hole is fine and removes nothing.
    assert_eq!(set.unmap(15 * P, 20 * P).unwrap(), vec![]);
    // Spanning several regions and holes.
    set.map(anon(40, 50, Prot::RW)).unwrap();
    let removed = set.unmap(12 * P, 45 * P).unwrap();
    assert_eq!(
        removed,
        vec![(12 * P, 15 * P), (20 * P, 30 * P), (40 * P, 45 * P)]
    );
    assert_eq!(ranges(&set), vec![(10, 12), (45, 50)]);
    assert!(set.unmap(3, 4 * P).is_err());
    assert!(set.unmap(4 * P, 4 * P).is_err());
}

#[test]
fn map_fixed_replaces() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    set.map(anon(25, 30, Prot::READ)).unwrap();
    let removed = set.map_fixed(anon(15, 27, Prot::EXEC)).unwrap();
    assert_eq!(removed, vec![(15 * P, 20 * P), (25 * P, 27 * P)]);
    assert_eq!(ranges(&set), vec![(10, 15), (15, 27), (27, 30)]);
    // Replacing with the same protection re-merges into one region.
    let removed = set.map_fixed(anon(10, 30, Prot::RW)).unwrap();
    assert_eq!(
        removed,
        vec![(10 * P, 15 * P), (15 * P, 27 * P), (27 * P, 30 * P)]
    );
    assert_eq!(ranges(&set), vec![(10, 30)]);
}

#[test]
fn protect_splits_and_remerges() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    let changed = set.protect(12 * P, 14 * P, Prot::READ).unwrap();
    assert_eq!(changed, vec![(12 * P, 14 * P)]);
    assert_eq!(ranges(&set), vec![(10, 12), (12, 14), (14, 20)]);
    assert_eq!(set.find(13 * P).unwrap().prot, Prot::READ);
    set.protect(12 * P, 14 * P, Prot::RW).unwrap();
    assert_eq!(ranges(&set), vec![(10, 20)]);
    // A hole anywhere in the range fails and changes nothing.
    set.map(anon(21, 30, Prot::RW)).unwrap();
    let before = set.try_clone().unwrap();
    assert_eq!(
        set.protect(15 * P, 25 * P, Prot::READ),
        Err(VmError::NotMapped { addr: 20 * P })
    );
    assert_eq!(
        set.protect(5 * P, 12 * P, Prot::READ),
        Err(VmError::NotMapped { addr: 5 * P })
    );
    assert_eq!(
        set.protect(25 * P, 31 * P, Prot::READ),
        Err(VmError::NotMapped { addr: 30 * P })
    );
    assert_eq!(set, before);
}

#[test]
fn protect_leaves_regions_that_already_have_it() {
    let mut set = VmaSet::new();
    set.map(anon(10, 20, Prot::RW)).unwrap();
    // Nothing to do: no split, nothing to rewrite.
    let changed = set.protect(12 * P, 14 * P, Prot::RW).unwrap();
    assert!(changed.is_empty());
    assert_eq!(ranges(&set), vec![(10, 20)]);
    // Across three regions, only the two that differ are reported (and
    // split); the middle one is left as it was, then all merge.
    set.protect(14 * P, 16 * P, Prot::READ).unwrap();
    assert_eq!(ranges(&set), vec![(10, 14), (14, 16), (16, 20)]);
    let changed = set.protect(12 * P, 18 * P, Prot::READ).unwrap();
    assert_eq!(changed, vec![(12 * P, 14 * P), (16 * P, 18 * P)]);
    assert_eq!(ranges(&set), vec![(10, 12), (12, 18), (18, 20)]);
}

#[test]
fn protect_reports_many_pieces() {
    // Alternating protections: more pieces than fit inline. (All
    // MAP_NORESERVE, so that none is charged and all can merge.)
    let mut set = VmaSet::new();
    for i in 0..6 {
        let prot = if i % 2 == 0 { Prot::RW } else { Prot::RX };
        set.map(mapped(10 + i, 11 + i, prot, Sharing::Private, true))
            .unwrap();
    }
    let changed = set.protect(10 * P, 16 * P, Prot::READ).unwrap();
    let expected: Vec<(u64, u64)> = (10..16).map(|p| (p * P, p * P + P)).collect();
    assert_eq!(changed, expected);
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(ranges(&set), vec![(10, 16)]);
}

#[test]
fn find_free_top_down_and_hint() {
    let mut set = VmaSet::new();
    let (lo, hi) = (0x1000 * P, 0x2000 * P);
    assert_eq!(set.find_free(3 * P, None, lo, hi), Some(hi - 3 * P));
    set.map(Vma::anonymous(hi - 3 * P, hi, Prot::RW)).unwrap();
    assert_eq!(set.find_free(3 * P, None, lo, hi), Some(hi - 6 * P));
    set.map(Vma::anonymous(hi - 10 * P, hi - 8 * P, Prot::RW))
        .unwrap();
    assert_eq!(set.find_free(2 * P, None, lo, hi), Some(hi - 5 * P));
    assert_eq!(set.find_free(5 * P, None, lo, hi), Some(hi - 8 * P));
    assert_eq!(set.find_free(6 * P, None, lo, hi), Some(hi - 16 * P));
    // Hint honoured when free, ignored when not.
    assert_eq!(set.find_free(P, Some(lo + P), lo, hi), Some(lo + P));
    assert_eq!(set.find_free(P, Some(hi - P), lo, hi), Some(hi - 4 * P));
    assert_eq!(set.find_free(P, Some(lo + 1), lo, hi), Some(hi - 4 * P));
    // Length rounds up to pages; too big or zero fails.
    assert_eq!(set.find_free(1, None, lo, hi), Some(hi - 4 * P));
    assert_eq!(set.find_free(0, None, lo, hi), None);
    assert_eq!(set.find_free(hi, None, lo, hi), None);
    assert_eq!(set.find_free(u64::MAX, None, lo, hi), None);
    // Full window.
    let mut full = VmaSet::new();
    full.map(Vma::anonymous(lo, hi, Prot::RW)).unwrap();
    assert_eq!(full.find_free(P, None, lo, hi), None);
    assert_eq!(full.find_free(P, None, lo - P, hi), Some(lo - P));
}

#[test]
fn stack_grows_down() {
    let mut set = VmaSet::new();
    let stack = Vma {
        flags: VmaFlags {
            grows_down: true,
            tag: VmaTag::Stack,
            ..VmaFlags::default()
        },
        ..anon(100, 110, Prot::RW)
    };
    set.map(stack).unwrap();
    set.map(anon(80, 90, Prot::RW)).unwrap();
    assert_eq!(set.find_for_fault(99 * P + 8).unwrap().start, 100 * P);
    assert_eq!(set.find_for_fault(95 * P).unwrap().start, 100 * P);
    assert!(set.find_for_fault(79 * P).is_none());
    assert_eq!(set.find_for_fault(85 * P).unwrap().start, 80 * P);
    assert_eq!(set.grow_down(97 * P + 16, 92 * P), Ok((97 * P, 100 * P)));
    assert_eq!(ranges(&set), vec![(80, 90), (97, 110)]);
    assert_eq!(
        set.grow_down(91 * P, 92 * P),
        Err(VmError::StackLimit {
            addr: 91 * P,
            limit: 92 * P
        })
    );
    assert_eq!(set.grow_down(89 * P, 0), Ok((89 * P, 89 * P)));
    assert_eq!(
        set.grow_down(70 * P, 0),
        Err(VmError::NotGrowable { addr: 70 * P })
    );
    assert_eq!(
        set.grow_down(200 * P, 0),
        Err(VmError::NotGrowable { addr: 200 * P })
    );
    assert_eq!(set.grow_down(90 * P, 0), Ok((90 * P, 97 * P)));
    assert_eq!(ranges(&set), vec![(80, 90), (90, 110)]);
    assert!(set.find(90 * P).unwrap().flags.grows_down);
}

#[test]
fn fork_is_clone() {
    let mut set = VmaSet::new();
    set.map(anon(1, 2, Prot::RW)).unwrap();
    let mut child = set.try_clone().unwrap();
    child.unmap(P, 2 * P).unwrap();
    assert_eq!(set.len(), 1);
    assert!(child.is_empty());
}

#[test]
fn display() {
    let v = Vma {
        sharing: Sharing::Shared,
        flags: VmaFlags {
            grows_down: false,
            tag: VmaTag::Image,
            ..VmaFlags::default()
        },
        ..file(0x400, 0x401, 2, 1)
    };
    assert_eq!(
        v.to_string(),
        "0000000000400000-0000000000401000 r--s 00001000 file#2 [image]"
    );
    assert_eq!(Prot::RX.to_string(), "r-x");
    assert_eq!(format!("{:?}", Prot::NONE), "Prot(---)");
    assert_eq!(
        VmError::NotMapped { addr: 0x1000 }.to_string(),
        "address 0x1000 is not mapped"
    );
    assert_eq!((!Prot::READ) & Prot::RW, Prot::WRITE);
}

/// `vm.max_map_count`: past it, a new region or a split is refused and the
/// set is left as it was; changes that add no region still work.
#[test]
fn map_count_is_bounded() {
    let mut set = VmaSet::new();
    // One big region, then single pages with a gap between each (none merge).
    set.map(anon(16, 32, Prot::RW)).unwrap();
    for i in 0..MAX_MAP_COUNT as u64 - 1 {
        set.map(anon(40 + 2 * i, 41 + 2 * i, Prot::RW)).unwrap();
    }
    assert_eq!(set.len(), MAX_MAP_COUNT);
    let before = set.try_clone().unwrap();
    let next = 40 + 2 * MAX_MAP_COUNT as u64;
    assert_eq!(
        set.map(anon(next, next + 1, Prot::RW)),
        Err(VmError::TooManyRegions)
    );
    assert_eq!(
        set.unmap(20 * P, 21 * P),
        Err(VmError::TooManyRegions),
        "a split adds a region"
    );
    assert_eq!(
        set.protect(20 * P, 21 * P, Prot::READ),
        Err(VmError::TooManyRegions)
    );
    assert_eq!(set, before);
    // No split: a whole region changes, the edge of one is cut off.
    assert_eq!(
        set.protect(40 * P, 41 * P, Prot::READ).unwrap(),
        vec![(40 * P, 41 * P)]
    );
    assert_eq!(set.unmap(16 * P, 17 * P), Ok(vec![(16 * P, 17 * P)]));
    // A whole region goes, making room for a split.
    set.unmap(42 * P, 43 * P).unwrap();
    assert_eq!(set.len(), MAX_MAP_COUNT - 1);
    set.unmap(20 * P, 21 * P).unwrap();
    assert_eq!(set.len(), MAX_MAP_COUNT);
}

/// A region as mmap makes it: charged if private, writable and not
/// `MAP_NORESERVE`.
fn mapped(start: u64, end: u64, prot: Prot, sharing: Sharing, noreserve: bool) -> Vma {
    let mut v = anon(start, end, prot);
    v.sharing = sharing;
    v.flags.noreserve = noreserve;
    v.flags.account = Vma::accountable(sharing, prot, noreserve);
    v
}

#[test]
fn accountable_is_private_writable_without_noreserve() {
    use Sharing::{Private, Shared};
    assert!(Vma::accountable(Private, Prot::RW, false));
    assert!(Vma::accountable(Private, Prot::WRITE, false));
    assert!(!Vma::accountable(Private, Prot::RW, true));
    assert!(!Vma::accountable(Private, Prot::READ, false));
    assert!(!Vma::accountable(Private, Prot::RX, false));
    assert!(!Vma::accountable(Shared, Prot::RW, false));
    assert_eq!(mapped(0, 4, Prot::RW, Private, false).committed_pages(), 4);
    assert_eq!(mapped(0, 4, Prot::RW, Private, true).committed_pages(), 0);
}

#[test]
fn committed_pages_clip_to_the_range() {
    let mut set = VmaSet::new();
    set.map(mapped(10, 20, Prot::RW, Sharing::Private, false))
        .unwrap();
    set.map(mapped(20, 30, Prot::READ, Sharing::Private, false))
        .unwrap();
    set.map(mapped(30, 40, Prot::RW, Sharing::Private, true))
        .unwrap();
    // Charged and uncharged regions never merge.
    assert_eq!(set.len(), 3);
    assert_eq!(set.committed_pages(0, USER_END), 10);
    assert_eq!(set.committed_pages(15 * P, 35 * P), 5);
    assert_eq!(set.committed_pages(12 * P, 13 * P), 1);
    assert_eq!(set.committed_pages(20 * P, 40 * P), 0);
    // Unmapping the middle of the charged region leaves its two ends
    // charged.
    set.unmap(12 * P, 14 * P).unwrap();
    assert_eq!(set.committed_pages(0, USER_END), 8);
}

#[test]
fn protect_charges_like_mprotect_fixup() {
    use Sharing::{Private, Shared};
    let mut set = VmaSet::new();
    set.map(mapped(10, 20, Prot::READ, Private, false)).unwrap();
    set.map(mapped(30, 40, Prot::READ, Private, true)).unwrap();
    set.map(mapped(50, 60, Prot::READ, Shared, false)).unwrap();
    set.map(mapped(70, 80, Prot::RW, Private, false)).unwrap();
    set.map(mapped(90, 100, Prot::RW, Private, true)).unwrap();
    // Only the private read-only region without NORESERVE would be charged.
    assert_eq!(set.protect_charge(0, 100 * P, Prot::RW), 10);
    assert_eq!(set.protect_charge(12 * P, 15 * P, Prot::RW), 3);
    assert_eq!(set.protect_charge(0, 100 * P, Prot::RX), 0);
    // Read-only again and back: each of the others stays as it was.
    for prot in [Prot::READ, Prot::RW] {
        set.protect(30 * P, 40 * P, prot).unwrap();
        set.protect(50 * P, 60 * P, prot).unwrap();
        set.protect(90 * P, 100 * P, prot).unwrap();
    }
    assert_eq!(set.committed_pages(0, USER_END), 10);
    // Writable: the middle of the first region becomes charged, and
    // splits off from its uncharged ends.
    set.protect(12 * P, 15 * P, Prot::RW).unwrap();
    assert_eq!(set.committed_pages(0, USER_END), 13);
    assert!(set.find(13 * P).unwrap().flags.account);
    assert!(!set.find(11 * P).unwrap().flags.account);
    // Read-only again: still charged (Linux never gives it back early),
    // and writable once more charges nothing new.
    set.protect(12 * P, 15 * P, Prot::READ).unwrap();
    assert_eq!(set.committed_pages(0, USER_END), 13);
    assert_eq!(set.protect_charge(12 * P, 15 * P, Prot::RW), 0);
    assert_eq!(set.protect_charge(10 * P, 20 * P, Prot::RW), 7);
    // The charged region read-only made writable: nothing new either.
    set.protect(70 * P, 80 * P, Prot::READ).unwrap();
    assert_eq!(set.protect_charge(70 * P, 80 * P, Prot::RW), 0);
    set.protect(70 * P, 80 * P, Prot::RW).unwrap();
    assert_eq!(set.committed_pages(0, USER_END), 13);
}

#[test]
fn stack_growth_is_charged_only_for_charged_stacks() {
    let mut set = VmaSet::new();
    let mut stack = mapped(100, 110, Prot::RW, Sharing::Private, false);
    stack.flags.grows_down = true;
    set.map(stack).unwrap();
    set.map(mapped(50, 60, Prot::RW, Sharing::Private, false))
        .unwrap();
    // From page 97 (with an offset inside it): 3 pages.
    assert_eq!(set.stack_growth_charge(97 * P + 5), 3);
    assert_eq!(set.stack_growth_charge(99 * P), 1);
    // Inside the stack or another region: no growth.
    assert_eq!(set.stack_growth_charge(105 * P), 0);
    assert_eq!(set.stack_growth_charge(55 * P), 0);
    // Above everything: nothing grows.
    assert_eq!(set.stack_growth_charge(200 * P), 0);
    assert_eq!(set.grow_down(97 * P, 0), Ok((97 * P, 100 * P)));
    assert_eq!(set.committed_pages(0, USER_END), 13 + 10);
    // A grows-down region mapped with NORESERVE (or read-only) grows free.
    let mut free = VmaSet::new();
    let mut stack = mapped(100, 110, Prot::RW, Sharing::Private, true);
    stack.flags.grows_down = true;
    free.map(stack).unwrap();
    assert_eq!(free.stack_growth_charge(97 * P), 0);
}

#[test]
fn protect_never_makes_a_no_write_shared_file_region_writable() {
    // Linux's VM_MAYWRITE: a shared mapping of a file opened read-only.
    // (make fuzz on 2 CPUs: made writable by mprotect, it let a batch
    // write into /bin/fuzz's cached text, and every later process
    // running it crashed.)
    let mut set = VmaSet::new();
    let mut ro = file(16, 24, 7, 0);
    ro.sharing = Sharing::Shared;
    ro.prot = Prot::READ;
    ro.flags.no_write = true;
    set.map(ro).unwrap();
    set.map(anon(24, 32, Prot::READ)).unwrap();
    for (s, e) in [(16, 24), (20, 21), (20, 28)] {
        for prot in [Prot::RW, Prot::WRITE, Prot::READ | Prot::WRITE | Prot::EXEC] {
            assert_eq!(
                set.protect(s * P, e * P, prot).err(),
                Some(VmError::WriteDenied { start: 16 * P })
            );
        }
    }
    // Nothing changed, and what does not ask for write is allowed.
    assert_eq!(set.find(20 * P).unwrap().prot, Prot::READ);
    assert_eq!(set.len(), 2);
    assert!(set.protect(16 * P, 24 * P, Prot::RX).is_ok());
    assert!(set.protect(24 * P, 32 * P, Prot::RW).is_ok());
}
