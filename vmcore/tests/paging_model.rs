//! `PageTables` against a map va -> (pa, flags): random map / unmap /
//! protect / hostile-input sequences, checking translate, the walker, the
//! page-table count, and that tearing down leaves only the root.

use std::collections::BTreeMap;

use proptest::prelude::*;
use vmcore::host::HostTables;
use vmcore::paging::{
    Level, MapError, PageTables, PageWalker, Pte, PteFlags, WalkAction, ADDR_MASK,
};
use vmcore::{is_canonical, USER_END};

type Model = BTreeMap<u64, (u64, PteFlags)>;

/// Addresses that share and split tables at every level, in both halves.
fn va_strategy() -> impl Strategy<Value = u64> {
    let pml4 = prop_oneof![Just(0u64), Just(1), Just(255), Just(256), Just(511)];
    let mid = prop_oneof![Just(0u64), Just(1), Just(511)];
    let pt = prop_oneof![Just(0u64), Just(1), Just(2), Just(511)];
    (pml4, mid.clone(), mid, pt).prop_map(|(a, b, c, d)| {
        let lin = a << 39 | b << 30 | c << 21 | d << 12;
        if a >= 256 {
            lin | 0xffff_0000_0000_0000
        } else {
            lin
        }
    })
}

fn flags_strategy() -> impl Strategy<Value = PteFlags> {
    let bits = [
        PteFlags::WRITABLE,
        PteFlags::USER,
        PteFlags::WRITE_THROUGH,
        PteFlags::NO_CACHE,
        PteFlags::ACCESSED,
        PteFlags::DIRTY,
        PteFlags::GLOBAL,
        PteFlags::COW,
        PteFlags::NO_EXECUTE,
    ];
    proptest::collection::vec(any::<bool>(), bits.len()).prop_map(move |on| {
        bits.iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .fold(PteFlags::EMPTY, |acc, (f, _)| acc | *f)
    })
}

#[derive(Clone, Debug)]
enum Op {
    Map(u64, u64, PteFlags),
    Unmap(u64),
    Protect(u64, PteFlags),
    /// Arbitrary addresses: must be refused (or accepted) without panicking.
    Hostile(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let pa = (0..1u64 << 40).prop_map(|p| p & ADDR_MASK);
    prop_oneof![
        4 => (va_strategy(), pa, flags_strategy()).prop_map(|(v, p, f)| Op::Map(v, p, f)),
        3 => va_strategy().prop_map(Op::Unmap),
        2 => (va_strategy(), flags_strategy()).prop_map(|(v, f)| Op::Protect(v, f)),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(v, p)| Op::Hostile(v, p)),
    ]
}

#[derive(Default)]
struct Leaves {
    leaves: Vec<(u64, u64, Pte)>,
    tables: usize,
    hole_bytes: u128,
}

impl PageWalker for Leaves {
    fn entry(&mut self, _: Level, _: u64, _: Pte) -> WalkAction {
        self.tables += 1;
        WalkAction::Descend
    }
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
        self.leaves.push((va, size, pte));
    }
    fn hole(&mut self, start: u64, end: u64, _: Level) {
        // Holes are canonical; measure them in the linear 48-bit space.
        let lin = |a: u64| (a & 0xffff_ffff_ffff) as u128;
        let end = if end == 0 {
            1u128 << 48
        } else if end == USER_END {
            1 << 47
        } else {
            lin(end)
        };
        self.hole_bytes += end - lin(start);
    }
}

fn check(pt: &PageTables, mem: &mut HostTables, model: &Model, probes: &[u64]) {
    for &va in probes {
        let expected = model
            .get(&va)
            .map(|&(pa, flags)| (pa, flags.with(PteFlags::PRESENT)));
        let got = pt.translate(mem, va).map(|(pa, pte, level)| {
            assert_eq!(level, Level::Pt);
            assert_eq!(pa, pte.addr());
            (pa, pte.flags())
        });
        assert_eq!(got, expected, "translate({va:#x})");
    }
    let mut walk = Leaves::default();
    pt.walk_all(mem, &mut walk);
    let leaves: Vec<(u64, u64, u64, PteFlags)> = walk
        .leaves
        .iter()
        .map(|&(va, size, pte)| (va, size, pte.addr(), pte.flags()))
        .collect();
    let expected: Vec<(u64, u64, u64, PteFlags)> = model
        .iter()
        .map(|(&va, &(pa, f))| (va, 4096, pa, f.with(PteFlags::PRESENT)))
        .collect();
    assert_eq!(leaves, expected);
    // Leaves and holes tile the whole 2^48 linear space.
    assert_eq!(walk.hole_bytes + 4096 * model.len() as u128, 1u128 << 48);
    assert_eq!(pt.table_count(mem), walk.tables + 1);
    assert_eq!(mem.live(), walk.tables + 1, "a table is leaked or missing");
}

fn map_and_check(
    pt: &mut PageTables,
    mem: &mut HostTables,
    model: &mut Model,
    va: u64,
    pa: u64,
    flags: PteFlags,
) -> Result<(), TestCaseError> {
    let valid =
        is_canonical(va) && va.is_multiple_of(4096) && pa.is_multiple_of(4096) && pa < 1 << 52;
    let result = pt.map(mem, va, pa, flags);
    match (valid, model.get(&va)) {
        (false, _) => prop_assert!(result.is_err()),
        (true, Some(_)) => prop_assert!(
            matches!(result, Err(MapError::AlreadyMapped { .. })),
            "{:?}",
            result
        ),
        (true, None) => {
            prop_assert_eq!(result, Ok(()));
            model.insert(va, (pa, flags));
        }
    }
    Ok(())
}

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 3 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn page_tables_match_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 10 } else { 60 })) {
        let mut mem = HostTables::new();
        let mut pt = PageTables::new(&mut mem).unwrap();
        let mut model = Model::new();
        let mut probes: Vec<u64> = Vec::new();
        for op in &ops {
            match *op {
                Op::Map(va, pa, flags) => map_and_check(&mut pt, &mut mem, &mut model, va, pa, flags)?,
                Op::Hostile(va, pa) => map_and_check(&mut pt, &mut mem, &mut model, va, pa, PteFlags::USER)?,
                Op::Unmap(va) => {
                    let old = pt.unmap(&mut mem, va);
                    let expected = model.remove(&va).map(|(pa, f)| Pte::new(pa, f.with(PteFlags::PRESENT)));
                    prop_assert_eq!(old, expected);
                }
                Op::Protect(va, flags) => {
                    let new = pt.protect(&mut mem, va, flags);
                    if let Some((_, f)) = model.get_mut(&va) {
                        *f = flags | (*f & (PteFlags::ACCESSED | PteFlags::DIRTY));
                        prop_assert_eq!(new.map(|p| p.flags()), Some(f.with(PteFlags::PRESENT)));
                    } else {
                        prop_assert_eq!(new, None);
                    }
                }
            }
            match *op {
                Op::Map(va, ..) | Op::Hostile(va, _) | Op::Unmap(va) | Op::Protect(va, _) => probes.push(va),
            }
            check(&pt, &mut mem, &model, &probes);
        }
        // Unmap the lower half through the walker, the rest one by one.
        let user: Vec<u64> = model.range(..USER_END).map(|(&va, _)| va).collect();
        let mut seen = Vec::new();
        pt.teardown_user(&mut mem, &mut |va, _| seen.push(va));
        prop_assert_eq!(seen, user);
        model.retain(|&va, _| va >= USER_END);
        check(&pt, &mut mem, &model, &probes);
        prop_assert_eq!(pt.user_table_count(&mut mem), 1);
        for va in model.keys().copied().collect::<Vec<_>>() {
            prop_assert!(pt.unmap(&mut mem, va).is_some());
        }
        // Kernel-half tables stay (they are shared), so only count them.
        let kernel_tables = pt.table_count(&mut mem) - 1;
        prop_assert_eq!(mem.live(), 1 + kernel_tables);
    }
}
