use super::memory::{load, store, Slot};
use super::*;
use crate::host::HostTables;
use crate::USER_END;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

const UW: PteFlags = PteFlags(PteFlags::USER.0 | PteFlags::WRITABLE.0);

fn setup() -> (HostTables, PageTables) {
    let mut mem = HostTables::new();
    let pt = PageTables::new(&mut mem).unwrap();
    (mem, pt)
}

#[test]
fn map_translate_unmap_frees_tables() {
    let (mut mem, mut pt) = setup();
    let va = 0x0000_7fff_dead_b000;
    pt.map(&mut mem, va, 0x5000, UW).unwrap();
    assert_eq!(mem.live(), 4);
    let (pa, pte, level) = pt.translate(&mut mem, va + 0x123).unwrap();
    assert_eq!((pa, level), (0x5123, Level::Pt));
    assert!(pte.has(PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITABLE));
    // Intermediate entries allow everything in the lower half.
    let steps = pt.translate_walk(&mut mem, va).unwrap();
    assert_eq!(steps.len(), 4);
    for step in &steps[..3] {
        assert_eq!(
            step.entry.flags(),
            PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER
        );
    }
    assert_eq!(steps[0].table, pt.root());
    assert_eq!(steps[3].index, Level::Pt.index(va));
    assert_eq!(
        pt.map(&mut mem, va, 0x6000, UW),
        Err(MapError::AlreadyMapped { va, existing: pte })
    );
    assert_eq!(pt.user_table_count(&mut mem), 4);
    let old = pt.unmap(&mut mem, va).unwrap();
    assert_eq!(old, pte);
    assert_eq!(mem.live(), 1);
    assert!(pt.translate(&mut mem, va).is_none());
    assert!(pt.unmap(&mut mem, va).is_none());
    assert_eq!(pt.translate_walk(&mut mem, va).unwrap().len(), 1);
}

#[test]
fn kernel_half_tables_are_not_freed_and_not_user() {
    let (mut mem, mut pt) = setup();
    let va = 0xffff_8000_0010_0000;
    pt.map(&mut mem, va, 0x7000, PteFlags::WRITABLE).unwrap();
    let steps = pt.translate_walk(&mut mem, va).unwrap();
    assert_eq!(steps[0].index, 256);
    assert_eq!(
        steps[1].entry.flags(),
        PteFlags::PRESENT | PteFlags::WRITABLE
    );
    pt.unmap(&mut mem, va).unwrap();
    assert_eq!(mem.live(), 4);
    // A user address space shares them.
    let user = PageTables::new_user(&mut mem, &pt).unwrap();
    pt.map(&mut mem, va, 0x8000, PteFlags::WRITABLE).unwrap();
    assert_eq!(user.translate(&mut mem, va).unwrap().0, 0x8000);
    assert_eq!(user.user_table_count(&mut mem), 1);
    assert_eq!(user.table_count(&mut mem), 4);
}

#[test]
fn hostile_inputs_are_errors() {
    let (mut mem, mut pt) = setup();
    assert_eq!(
        pt.map(&mut mem, 0x0000_8000_0000_0000, 0, UW),
        Err(MapError::NonCanonical(USER_END))
    );
    assert_eq!(
        pt.map(&mut mem, 0x1001, 0, UW),
        Err(MapError::Unaligned(0x1001))
    );
    assert_eq!(
        pt.map(&mut mem, 0x1000, 0x10, UW),
        Err(MapError::Unaligned(0x10))
    );
    assert_eq!(
        pt.map(&mut mem, 0x1000, 1 << 52, UW),
        Err(MapError::BadPhysAddr(1 << 52))
    );
    assert_eq!(
        pt.map(&mut mem, 0x1000, 0, PteFlags::HUGE),
        Err(MapError::HugeFlag)
    );
    assert!(pt.unmap(&mut mem, 0x1234).is_none());
    assert!(pt.unmap(&mut mem, 0xdead_0000_0000_0000).is_none());
    assert!(pt.translate(&mut mem, 0xdead_0000_0000_0000).is_none());
    assert!(pt.translate_walk(&mut mem, 0xdead_0000_0000_0000).is_err());
    let mut w = Recorder::default();
    assert!(pt.walk(&mut mem, 0x5000, 0x4000, &mut w).is_err());
    assert!(pt.walk(&mut mem, 0xdead_0000_0000_0000, 0, &mut w).is_err());
    assert!(pt.walk(&mut mem, 0, 0x0000_9000_0000_0000, &mut w).is_err());
    assert_eq!(mem.live(), 1);
}

#[test]
fn out_of_memory_leaves_nothing_behind() {
    let (mut mem, mut pt) = setup();
    for budget in 0..3 {
        mem.set_budget(Some(budget));
        assert_eq!(
            pt.map(&mut mem, 0x40_0000, 0x1000, UW),
            Err(MapError::OutOfMemory)
        );
        assert_eq!(mem.live(), 1);
    }
    mem.set_budget(Some(3));
    pt.map(&mut mem, 0x40_0000, 0x1000, UW).unwrap();
    // Same PT: no allocation needed.
    mem.set_budget(Some(0));
    pt.map(&mut mem, 0x40_1000, 0x2000, UW).unwrap();
    // New PD entry: needs one table.
    assert_eq!(
        pt.map(&mut mem, 0x4000_0000, 0x3000, UW),
        Err(MapError::OutOfMemory)
    );
    assert_eq!(mem.live(), 4);
}

/// Writes huge leaves directly, as the bootloader would.
fn plant_huge(mem: &mut HostTables, pt: &mut PageTables) {
    // 1 GiB page at 1 GiB, 2 MiB page at 4 GiB + 2 MiB.
    pt.map(mem, 0x1_0000_0000, 0x1000, UW).unwrap();
    let pdpt = pt.translate_walk(mem, 0x1_0000_0000).unwrap()[1].table;
    store(
        mem,
        pdpt,
        1,
        Pte::new(
            0x4000_0000,
            PteFlags::PRESENT | PteFlags::HUGE | PteFlags::WRITABLE,
        ),
    );
    let pd = pt.translate_walk(mem, 0x1_0000_0000).unwrap()[2].table;
    store(
        mem,
        pd,
        1,
        Pte::new(0x20_0000 | 0x1000, PteFlags::PRESENT | PteFlags::HUGE),
    );
}

#[test]
fn huge_pages_translate_and_walk() {
    let (mut mem, mut pt) = setup();
    plant_huge(&mut mem, &mut pt);
    let (pa, _, level) = pt.translate(&mut mem, 0x4123_4567).unwrap();
    assert_eq!((pa, level), (0x4123_4567, Level::Pdpt));
    // PAT bit 12 is not part of a huge page's address.
    let (pa, pte, level) = pt.translate(&mut mem, 0x1_0020_0042).unwrap();
    assert_eq!((pa, level), (0x20_0042, Level::Pd));
    assert!(pte.is_huge());
    assert_eq!(
        pt.map(&mut mem, 0x4000_0000, 0x1000, UW),
        Err(MapError::HugePageInTheWay {
            va: 0x4000_0000,
            level: Level::Pdpt
        })
    );
    let mut w = Recorder::default();
    pt.walk(&mut mem, 0, USER_END, &mut w).unwrap();
    assert_eq!(
        w.leaves,
        vec![
            (0x4000_0000, 1 << 30),
            (0x1_0000_0000, 4096),
            (0x1_0020_0000, 2 << 20)
        ]
    );
    // `update` keeps a huge leaf huge.
    pt.update(&mut mem, 0x4000_0000, |p| {
        p.without(PteFlags::HUGE | PteFlags::WRITABLE)
    })
    .unwrap();
    let (_, pte, level) = pt.translate(&mut mem, 0x4000_0000).unwrap();
    assert!(pte.is_huge() && !pte.is_writable() && level == Level::Pdpt);
    // Unmap only from the huge page's start.
    assert!(pt.unmap(&mut mem, 0x4000_1000).is_none());
    assert!(pt.unmap(&mut mem, 0x4000_0000).unwrap().is_huge());
    pt.teardown_user(&mut mem, &mut |_, _| {});
    assert_eq!(mem.live(), 1);
}

#[derive(Default)]
struct Recorder {
    leaves: Vec<(u64, u64)>,
    holes: Vec<(u64, u64, Level)>,
    entries: Vec<(Level, u64)>,
}

impl PageWalker for Recorder {
    fn entry(&mut self, level: Level, va: u64, _: Pte) -> WalkAction {
        self.entries.push((level, va));
        WalkAction::Descend
    }
    fn leaf(&mut self, va: u64, size: u64, _: Pte) {
        self.leaves.push((va, size));
    }
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        self.holes.push((start, end, level));
    }
}

#[test]
fn walk_reports_entries_leaves_and_holes() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x2000, 0x9000, UW).unwrap();
    let mut w = Recorder::default();
    pt.walk(&mut mem, 0x1000, 0x4000, &mut w).unwrap();
    assert_eq!(w.leaves, vec![(0x2000, 4096)]);
    assert_eq!(
        w.holes,
        vec![(0x1000, 0x2000, Level::Pt), (0x3000, 0x4000, Level::Pt)]
    );
    assert_eq!(
        w.entries,
        vec![(Level::Pml4, 0), (Level::Pdpt, 0), (Level::Pd, 0)]
    );

    // The whole space: upper-half holes come out canonical, the last one
    // ending at 0 (2^64).
    let mut w = Recorder::default();
    pt.walk_all(&mut mem, &mut w);
    assert_eq!(
        w.holes.last(),
        Some(&(0xffff_ff80_0000_0000, 0, Level::Pml4))
    );
    assert!(w
        .holes
        .contains(&(0x0000_0080_0000_0000, 0x0000_0100_0000_0000, Level::Pml4)));
    assert!(w
        .holes
        .contains(&(0x0000_7f80_0000_0000, USER_END, Level::Pml4)));
    assert!(w
        .holes
        .contains(&(0xffff_8000_0000_0000, 0xffff_8080_0000_0000, Level::Pml4)));

    // Skip stops the descent.
    struct SkipAll(usize);
    impl PageWalker for SkipAll {
        fn entry(&mut self, _: Level, _: u64, _: Pte) -> WalkAction {
            WalkAction::Skip
        }
        fn leaf(&mut self, _: u64, _: u64, _: Pte) {
            self.0 += 1;
        }
    }
    let mut s = SkipAll(0);
    pt.walk(&mut mem, 0, USER_END, &mut s).unwrap();
    assert_eq!(s.0, 0);
}

#[test]
fn update_leaves_and_unmap_range() {
    let (mut mem, mut pt) = setup();
    for i in 0..600u64 {
        pt.map(
            &mut mem,
            0x20_0000 - 0x1000 * 50 + i * 0x1000,
            0x100_0000 + i * 0x1000,
            UW,
        )
        .unwrap();
    }
    // Read-only everything in a sub-range.
    let mut n = 0;
    pt.update_leaves(&mut mem, 0x20_0000, 0x21_0000, &mut |_, _, pte| {
        n += 1;
        LeafUpdate::Set(pte.without(PteFlags::WRITABLE))
    })
    .unwrap();
    assert_eq!(n, 16);
    assert!(!pt.translate(&mut mem, 0x20_f000).unwrap().1.is_writable());
    assert!(pt.translate(&mut mem, 0x21_0000).unwrap().1.is_writable());
    // Set(non-present) clears.
    pt.update_leaves(&mut mem, 0x21_0000, 0x21_1000, &mut |_, _, _| {
        LeafUpdate::Set(Pte::EMPTY)
    })
    .unwrap();
    assert!(pt.translate(&mut mem, 0x21_0000).is_none());
    let tables = mem.live();
    let mut seen = vec![];
    let count = pt
        .unmap_range(
            &mut mem,
            0x1c_0000,
            0x20_0000,
            EmptyTables::Free,
            &mut |_, va, size, _| seen.push((va, size)),
        )
        .unwrap();
    assert_eq!(count, 50);
    assert_eq!(seen.first(), Some(&(0x1c_e000, 4096)));
    assert_eq!(mem.live(), tables - 1);
    let mut dropped = 0;
    pt.teardown_user(&mut mem, &mut |_, _| dropped += 1);
    assert_eq!(dropped, 549);
    assert_eq!(mem.live(), 1);
    pt.destroy(&mut mem, &mut |_, _| {});
    assert_eq!(mem.live(), 0);
}

#[test]
fn replace_keeps_hardware_bits_set_meanwhile() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x1000, 0x2000, UW).unwrap();
    let pt_table = pt.translate_walk(&mut mem, 0x1000).unwrap()[3].table;
    let seen = load(&mut mem, pt_table, 1);
    // The "MMU" sets D after we looked.
    store(
        &mut mem,
        pt_table,
        1,
        seen.with(PteFlags::DIRTY | PteFlags::ACCESSED),
    );
    let slot = Slot {
        table: pt_table,
        idx: 1,
        level: Level::Pt,
    };
    slot.replace(&mut mem, seen, seen.without(PteFlags::WRITABLE));
    let now = load(&mut mem, pt_table, 1);
    assert!(now.has(PteFlags::DIRTY | PteFlags::ACCESSED) && !now.is_writable());
}

#[test]
fn fork_clone_shares_leaves() {
    let (mut mem, mut parent) = setup();
    for va in [0x1000u64, 0x2000, 0x40_0000, 0x7fff_ffff_f000] {
        parent.map(&mut mem, va, va + 0x1_0000_0000, UW).unwrap();
    }
    let mut child = PageTables::new(&mut mem).unwrap();
    let n = parent
        .clone_user_for_fork(&mut child, &mut mem, &mut |_, va, pte| {
            if va == 0x2000 {
                return None;
            }
            let ro = pte.without(PteFlags::WRITABLE).with(PteFlags::COW);
            Some((ro, ro))
        })
        .unwrap();
    assert_eq!(n, 3);
    let (pa, pte, _) = child.translate(&mut mem, 0x7fff_ffff_f000).unwrap();
    assert_eq!(pa, 0x7fff_ffff_f000 + 0x1_0000_0000);
    assert!(pte.is_cow() && !pte.is_writable());
    assert!(parent.translate(&mut mem, 0x1000).unwrap().1.is_cow());
    assert!(parent.translate(&mut mem, 0x2000).unwrap().1.is_writable());
    assert!(child.translate(&mut mem, 0x2000).is_none());
    assert_eq!(
        child.user_table_count(&mut mem),
        parent.user_table_count(&mut mem)
    );

    // Out of memory part-way: what was copied is in place; destroy cleans up.
    let mut child2 = PageTables::new(&mut mem).unwrap();
    mem.set_budget(Some(4));
    let mut copied = 0;
    let err = parent.clone_user_for_fork(&mut child2, &mut mem, &mut |_, _, pte| {
        copied += 1;
        Some((pte, pte))
    });
    assert_eq!(err, Err(MapError::OutOfMemory));
    mem.set_budget(None);
    let mut dropped = 0;
    child2.destroy(&mut mem, &mut |_, _| dropped += 1);
    assert_eq!(dropped, copied);
    child.destroy(&mut mem, &mut |_, _| {});
    parent.destroy(&mut mem, &mut |_, _| {});
    assert_eq!(mem.live(), 0);
}

#[test]
fn fork_reuses_the_child_table_across_skipped_pages() {
    let (mut mem, mut parent) = setup();
    // Two page tables' worth of pages, the first page of each skipped, so
    // the child's table is made, freed and made again mid-walk.
    let pages: Vec<u64> = (0..24)
        .map(|i| 0x20_0000 * (i / 12) + 0x1000 * (i % 12))
        .collect();
    for &va in &pages {
        parent.map(&mut mem, va, va + 0x1_0000_0000, UW).unwrap();
    }
    let skipped = |va: u64| va.is_multiple_of(0x20_0000) || va % 0x5000 == 0x3000;
    let mut child = PageTables::new(&mut mem).unwrap();
    let n = parent
        .clone_user_for_fork(&mut child, &mut mem, &mut |_, va, pte| {
            (!skipped(va)).then_some((pte, pte))
        })
        .unwrap();
    assert_eq!(n, pages.iter().filter(|&&va| !skipped(va)).count());
    for &va in &pages {
        let got = child.translate(&mut mem, va).map(|(pa, _, _)| pa);
        let want = (!skipped(va)).then_some(va + 0x1_0000_0000);
        assert_eq!(got, want, "child at {va:#x}");
    }
    assert_eq!(child.user_table_count(&mut mem), 5);
    child.destroy(&mut mem, &mut |_, _| {});
    parent.destroy(&mut mem, &mut |_, _| {});
    assert_eq!(mem.live(), 0);
}

#[test]
fn leaf_entry_reads_and_rewrites_in_one_walk() {
    let (mut mem, mut pt) = setup();
    // No tables yet: the entry is empty and `set` builds the path.
    let entry = pt.leaf_entry(&mut mem, 0x40_0000).unwrap();
    assert_eq!(entry.pte(), Pte::EMPTY);
    let first = Pte::new(0x5000, UW.with(PteFlags::PRESENT));
    assert_eq!(entry.set(&mut mem, first), Ok(Pte::EMPTY));
    assert_eq!(mem.live(), 4);
    assert_eq!(pt.translate(&mut mem, 0x40_0000).unwrap().1, first);

    // An empty neighbour in an existing table.
    let entry = pt.leaf_entry(&mut mem, 0x40_1000).unwrap();
    assert_eq!((entry.pte(), entry.level()), (Pte::EMPTY, Level::Pt));
    entry.set(&mut mem, first).unwrap();
    assert_eq!(mem.live(), 4);

    // A present leaf: the old entry comes back, with the A/D bits the
    // "MMU" set after the walk.
    let entry = pt.leaf_entry(&mut mem, 0x40_0000).unwrap();
    assert_eq!(entry.pte(), first);
    let pt_table = entry.tables.path(&mut mem, 0x40_0000).0[3].0;
    store(&mut mem, pt_table, 0, first.with(PteFlags::DIRTY));
    let second = Pte::new(0x6000, PteFlags::USER | PteFlags::PRESENT);
    let old = entry.set(&mut mem, second).unwrap();
    assert_eq!(old, first.with(PteFlags::DIRTY));
    let now = pt.translate(&mut mem, 0x40_0000).unwrap().1;
    assert_eq!(now, second.with(PteFlags::DIRTY));

    // Clearing is not its job, and bad addresses have no entry.
    let entry = pt.leaf_entry(&mut mem, 0x40_0000).unwrap();
    assert_eq!(entry.set(&mut mem, Pte::EMPTY), Err(MapError::NotPresent));
    assert_eq!(pt.translate(&mut mem, 0x40_0000).unwrap().1, now);
    assert!(pt.leaf_entry(&mut mem, 0x40_0001).is_none());
    assert!(pt.leaf_entry(&mut mem, USER_END).is_none());

    // Out of memory for the tables: nothing changes.
    mem.set_budget(Some(0));
    let entry = pt.leaf_entry(&mut mem, 0x8000_0000).unwrap();
    assert_eq!(entry.set(&mut mem, first), Err(MapError::OutOfMemory));
    assert_eq!(mem.live(), 4);
}

#[test]
fn leaf_entry_keeps_a_huge_leaf_huge() {
    let (mut mem, mut pt) = setup();
    plant_huge(&mut mem, &mut pt);
    let entry = pt.leaf_entry(&mut mem, 0x4000_0000).unwrap();
    assert_eq!(entry.level(), Level::Pdpt);
    assert!(entry.pte().is_huge());
    entry
        .set(&mut mem, Pte::new(0x8000_0000, PteFlags::PRESENT))
        .unwrap();
    let (pa, pte, level) = pt.translate(&mut mem, 0x4000_1234).unwrap();
    assert_eq!((pa, level), (0x8000_1234, Level::Pdpt));
    assert!(pte.is_huge() && !pte.is_writable());
}

#[test]
fn display_decodes_flags() {
    let pte = Pte::new(
        0x123000,
        PteFlags::PRESENT
            | PteFlags::WRITABLE
            | PteFlags::USER
            | PteFlags::ACCESSED
            | PteFlags::DIRTY
            | PteFlags::NO_EXECUTE,
    );
    assert_eq!(pte.to_string(), "0x0000000000123000 P W U A D NX");
    assert_eq!(Pte::EMPTY.to_string(), "(none)");
    assert_eq!(PteFlags(1 << 52 | 1).to_string(), "P 0x10000000000000");
    assert_eq!(PteFlags::COW.to_string(), "COW");
    assert_eq!(PteFlags::EMPTY.to_string(), "-");
    let step = WalkStep {
        level: Level::Pd,
        table: 0x5000,
        index: 7,
        entry: pte,
    };
    assert_eq!(
        step.to_string(),
        "PD   @ 0x5000 [  7] = 0x0000000000123000 P W U A D NX"
    );
    assert_eq!(
        MapError::OutOfMemory.to_string(),
        "out of memory for page tables"
    );
}

/// `[0, 0)` (e.g. `madvise(NULL, 0, ...)`) is empty: it once read as "to the
/// top of the address space" and the walk reached the kernel half.
#[test]
fn empty_range_at_zero_visits_nothing() {
    let (mut mem, mut pt) = setup();
    pt.map(&mut mem, 0x40_0000, 0x5000, UW).unwrap();
    let mut seen = 0;
    let cleared = pt
        .unmap_range(&mut mem, 0, 0, EmptyTables::Free, &mut |_, _, _, _| {
            seen += 1
        })
        .unwrap();
    assert_eq!((cleared, seen), (0, 0));
    let mut visited = 0;
    pt.update_leaves(&mut mem, 0, 0, &mut |_, _, _| {
        visited += 1;
        LeafUpdate::Keep
    })
    .unwrap();
    assert_eq!(visited, 0);
    assert!(pt.translate(&mut mem, 0x40_0000).is_some());
}

/// `clear_range` (MADV_DONTNEED) keeps the tables it empties; the munmap
/// or teardown that later covers them frees them all the same.
#[test]
fn clear_range_keeps_tables_until_an_unmap_covers_them() {
    let (mut mem, mut pt) = setup();
    let before = mem.live();
    pt.map(&mut mem, 0x40_0000, 0x100_0000, UW).unwrap();
    pt.map(&mut mem, 0x60_0000, 0x100_1000, UW).unwrap();
    let with_tables = mem.live();
    let cleared = pt
        .unmap_range(
            &mut mem,
            0x40_0000,
            0x40_1000,
            EmptyTables::Keep,
            &mut |_, _, _, _| {},
        )
        .unwrap();
    assert_eq!(cleared, 1);
    assert!(pt.translate(&mut mem, 0x40_0000).is_none());
    assert_eq!(mem.live(), with_tables, "DONTNEED keeps the empty table");
    // An unmap of the whole 2 MiB the empty table covers frees it, though
    // it clears nothing there.
    let n = pt
        .unmap_range(
            &mut mem,
            0x40_0000,
            0x60_0000,
            EmptyTables::Free,
            &mut |_, _, _, _| {},
        )
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(mem.live(), with_tables - 1);
    // A partial unmap of an empty table leaves it; teardown frees all.
    pt.unmap_range(
        &mut mem,
        0x60_0000,
        0x60_1000,
        EmptyTables::Keep,
        &mut |_, _, _, _| {},
    )
    .unwrap();
    pt.teardown_user(&mut mem, &mut |_, _| {});
    assert_eq!(mem.live(), before);
}
