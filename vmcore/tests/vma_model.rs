//! `VmaSet` against a page-granular model: random sequences of map,
//! map_fixed, unmap and protect must leave the set describing exactly the
//! model's pages, sorted, non-overlapping, aligned and fully merged; and
//! the overcommit charge (`VM_ACCOUNT` pages) must follow the model's
//! per-page flags: what `protect_charge` announces is exactly what
//! `protect` starts charging, and an unmap gives back exactly what
//! `committed_pages` said the range held.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vmcore::vma::{Prot, Sharing, VmError, Vma, VmaFlags, VmaKind, VmaSet, VmaTag};
use vmcore::PAGE_SIZE;

const P: u64 = PAGE_SIZE;
const BASE: u64 = 0x1000_0000;
const PAGES: u64 = 48;

/// What the model knows about one page: everything a region says about it,
/// with the file offset of *this* page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageInfo {
    prot: Prot,
    sharing: Sharing,
    flags: VmaFlags,
    kind: VmaKind,
}

type Model = BTreeMap<u64, PageInfo>;

fn page_info(vma: &Vma, page: u64) -> PageInfo {
    let kind = match vma.kind {
        VmaKind::Anonymous => VmaKind::Anonymous,
        VmaKind::File { file, offset } => VmaKind::File {
            file,
            offset: offset + (page * P - vma.start),
        },
    };
    PageInfo {
        prot: vma.prot,
        sharing: vma.sharing,
        flags: vma.flags,
        kind,
    }
}

/// Could pages `a` and then `b` (adjacent) be in one region?
fn continues(a: &PageInfo, b: &PageInfo) -> bool {
    let backing = match (a.kind, b.kind) {
        (VmaKind::Anonymous, VmaKind::Anonymous) => true,
        (
            VmaKind::File {
                file: fa,
                offset: oa,
            },
            VmaKind::File {
                file: fb,
                offset: ob,
            },
        ) => fa == fb && oa + P == ob,
        _ => false,
    };
    backing && a.prot == b.prot && a.sharing == b.sharing && a.flags == b.flags
}

fn check(set: &VmaSet, model: &Model) {
    let mut pages = Model::new();
    let mut prev: Option<&Vma> = None;
    for vma in set.iter() {
        assert!(vma.start < vma.end, "empty region {vma}");
        assert!(vma.start % P == 0 && vma.end % P == 0, "unaligned {vma}");
        if let Some(prev) = prev {
            assert!(prev.end <= vma.start, "overlap or unsorted: {prev} / {vma}");
            if prev.end == vma.start {
                let (a, b) = (
                    page_info(prev, prev.end / P - 1),
                    page_info(vma, vma.start / P),
                );
                assert!(!continues(&a, &b), "not merged: {prev} / {vma}");
            }
        }
        for page in vma.start / P..vma.end / P {
            pages.insert(page, page_info(vma, page));
        }
        prev = Some(vma);
    }
    assert_eq!(&pages, model);
    assert_eq!(set.len(), set.iter().count());
    let committed: u64 = set.iter().map(Vma::committed_pages).sum();
    assert_eq!(committed, model_committed(model, 0, u64::MAX));
    assert_eq!(set.committed_pages(0, vmcore::USER_END), committed);
    // `find` agrees with the model everywhere (and just outside).
    for page in BASE / P - 1..BASE / P + PAGES + 1 {
        let found = set.find(page * P + 17).map(|v| page_info(v, page));
        assert_eq!(found, model.get(&page).copied(), "find({:#x})", page * P);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Map(Vma),
    MapFixed(Vma),
    Unmap(u64, u64),
    Protect(u64, u64, Prot),
    FindFree(u64, Option<u64>),
}

fn range() -> impl Strategy<Value = (u64, u64)> {
    (0..PAGES, 1..12u64).prop_map(|(s, n)| (BASE + s * P, BASE + (s + n).min(PAGES) * P))
}

fn prot() -> impl Strategy<Value = Prot> {
    prop_oneof![
        Just(Prot::READ),
        Just(Prot::RW),
        Just(Prot::RX),
        Just(Prot::NONE)
    ]
}

fn vma() -> impl Strategy<Value = Vma> {
    let kind = prop_oneof![
        3 => Just(VmaKind::Anonymous),
        2 => (0..2u32, 0..8u64).prop_map(|(file, off)| VmaKind::File { file, offset: off * P }),
    ];
    let sharing = prop_oneof![4 => Just(Sharing::Private), 1 => Just(Sharing::Shared)];
    let tag = prop_oneof![4 => Just(VmaTag::Mmap), 1 => Just(VmaTag::Heap)];
    let noreserve = prop_oneof![3 => Just(false), 1 => Just(true)];
    (range(), prot(), kind, sharing, tag, noreserve).prop_map(
        |((start, end), prot, kind, sharing, tag, noreserve)| Vma {
            start,
            end,
            prot,
            sharing,
            kind,
            flags: VmaFlags {
                grows_down: false,
                tag,
                // As mmap sets them.
                account: Vma::accountable(sharing, prot, noreserve),
                noreserve,
                no_write: false,
            },
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => vma().prop_map(Op::Map),
        2 => vma().prop_map(Op::MapFixed),
        2 => range().prop_map(|(s, e)| Op::Unmap(s, e)),
        3 => (range(), prot()).prop_map(|((s, e), p)| Op::Protect(s, e, p)),
        1 => (1..6u64, proptest::option::of(0..PAGES)).prop_map(|(n, h)| Op::FindFree(n * P, h.map(|h| BASE + h * P))),
    ]
}

/// Pages of `[start, end)` that the model has, as maximal runs.
fn mapped_runs(model: &Model, start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (&page, _) in model.range(start / P..end / P) {
        match runs.last_mut() {
            Some(run) if run.1 == page * P => run.1 += P,
            _ => runs.push((page * P, page * P + P)),
        }
    }
    runs
}

/// Coalesces touching ranges (the set reports one range per region piece).
fn coalesce(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(s, e) in ranges {
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    out
}

fn model_insert(model: &mut Model, vma: &Vma) {
    for page in vma.start / P..vma.end / P {
        model.insert(page, page_info(vma, page));
    }
}

fn model_remove(model: &mut Model, start: u64, end: u64) {
    for page in start / P..end / P {
        model.remove(&page);
    }
}

/// Charged pages of `[start, end)` in the model.
fn model_committed(model: &Model, start: u64, end: u64) -> u64 {
    model
        .range(start / P..end / P)
        .filter(|(_, info)| info.flags.account)
        .count() as u64
}

fn apply(set: &mut VmaSet, model: &mut Model, op: &Op) {
    match *op {
        Op::Map(vma) => {
            let overlaps = (vma.start / P..vma.end / P).any(|p| model.contains_key(&p));
            let result = set.map(vma);
            if overlaps {
                assert!(matches!(result, Err(VmError::Overlap { .. })), "{result:?}");
            } else {
                result.unwrap();
                model_insert(model, &vma);
            }
        }
        Op::MapFixed(vma) => {
            let expected = mapped_runs(model, vma.start, vma.end);
            let removed = set.map_fixed(vma).unwrap();
            assert_eq!(coalesce(&removed), expected);
            model_remove(model, vma.start, vma.end);
            model_insert(model, &vma);
        }
        Op::Unmap(start, end) => {
            let expected = mapped_runs(model, start, end);
            assert_eq!(
                set.committed_pages(start, end),
                model_committed(model, start, end)
            );
            let removed = set.unmap(start, end).unwrap();
            assert_eq!(coalesce(&removed), expected);
            model_remove(model, start, end);
        }
        Op::Protect(start, end, prot) => {
            let hole = (start / P..end / P).find(|p| !model.contains_key(p));
            let charge = set.protect_charge(start, end, prot);
            let before = model_committed(model, 0, u64::MAX);
            let result = set.protect(start, end, prot);
            match hole {
                Some(page) => assert_eq!(result, Err(VmError::NotMapped { addr: page * P })),
                None => {
                    // Exactly the pages whose protection differed change.
                    let mut expected: Vec<(u64, u64)> = Vec::new();
                    for page in (start / P..end / P).filter(|p| model[p].prot != prot) {
                        match expected.last_mut() {
                            Some(run) if run.1 == page * P => run.1 += P,
                            _ => expected.push((page * P, page * P + P)),
                        }
                    }
                    assert_eq!(coalesce(&result.unwrap()), expected);
                    for page in start / P..end / P {
                        let info = model.get_mut(&page).unwrap();
                        // Linux's mprotect_fixup: made writable, and not
                        // charged, writable, shared or NORESERVE before.
                        if prot.contains(Prot::WRITE)
                            && !info.prot.contains(Prot::WRITE)
                            && info.sharing == Sharing::Private
                            && !info.flags.account
                            && !info.flags.noreserve
                        {
                            info.flags.account = true;
                        }
                        info.prot = prot;
                    }
                    assert_eq!(model_committed(model, 0, u64::MAX), before + charge);
                }
            }
        }
        Op::FindFree(len, hint) => {
            let (lo, hi) = (BASE, BASE + PAGES * P);
            let free = |s: u64| (s / P..(s + len) / P).all(|p| !model.contains_key(&p));
            let expected = match hint {
                Some(h) if h + len <= hi && free(h) => Some(h),
                _ => (0..=(PAGES - len / P))
                    .rev()
                    .map(|i| lo + i * P)
                    .find(|&s| free(s)),
            };
            assert_eq!(set.find_free(len, hint, lo, hi), expected);
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 4 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn vma_set_matches_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 12 } else { 60 })) {
        let mut set = VmaSet::new();
        let mut model = Model::new();
        for op in &ops {
            apply(&mut set, &mut model, op);
            check(&set, &model);
        }
        // fork: the clone is equal and independent.
        let mut child = set.try_clone().unwrap();
        prop_assert_eq!(&child, &set);
        child.unmap(BASE, BASE + PAGES * P).unwrap();
        check(&set, &model);
        prop_assert!(child.is_empty());
    }
}
