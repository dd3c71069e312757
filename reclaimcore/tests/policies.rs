//! Every policy against simple models: the kernel's event interface, whole
//! traces, and OPT as the bound.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use reclaimcore::{
    opt, sim, Access, Clock, Ferrite, Fifo, InsertError, Lru, Policy, Shadow, SHADOW_BITS,
};

/// One of each policy (an enum, not `dyn`, so `sim::Memory` takes it).
enum Any {
    Fifo(Fifo),
    Lru(Lru),
    Clock(Clock),
    Ferrite(Ferrite),
}

macro_rules! each {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            Any::Fifo($p) => $e,
            Any::Lru($p) => $e,
            Any::Clock($p) => $e,
            Any::Ferrite($p) => $e,
        }
    };
}

impl Policy for Any {
    fn name(&self) -> &'static str {
        each!(self, p => p.name())
    }
    fn capacity(&self) -> usize {
        each!(self, p => p.capacity())
    }
    fn len(&self) -> usize {
        each!(self, p => p.len())
    }
    fn contains(&self, page: u64) -> bool {
        each!(self, p => p.contains(page))
    }
    fn insert(&mut self, page: u64, shadow: Option<Shadow>) -> Result<(), InsertError> {
        each!(self, p => p.insert(page, shadow))
    }
    fn touched(&mut self, page: u64) {
        each!(self, p => p.touched(page))
    }
    fn remove(&mut self, page: u64) -> bool {
        each!(self, p => p.remove(page))
    }
    fn candidate(&mut self) -> Option<u64> {
        each!(self, p => p.candidate())
    }
    fn evict(&mut self, page: u64) -> Option<Shadow> {
        each!(self, p => p.evict(page))
    }
    fn rotate(&mut self, page: u64) {
        each!(self, p => p.rotate(page))
    }
}

fn policies(capacity: usize) -> Vec<Any> {
    vec![
        Any::Fifo(Fifo::with_capacity(capacity).unwrap()),
        Any::Lru(Lru::with_capacity(capacity).unwrap()),
        Any::Clock(Clock::with_capacity(capacity).unwrap()),
        Any::Ferrite(Ferrite::with_capacity(capacity).unwrap()),
    ]
}

/// Runs a policy over a trace, checking hits against residency and the
/// resident set's bound after every access.
fn run_checked(policy: Any, trace: &[u64]) -> Result<sim::Stats, TestCaseError> {
    let capacity = policy.capacity();
    let mut memory = sim::Memory::new(policy);
    for &page in trace {
        let resident = memory.policy().contains(page);
        let access = memory.access(page);
        prop_assert_eq!(access == Access::Hit, resident);
        prop_assert!(memory.policy().len() <= capacity);
        prop_assert!(capacity == 0 || memory.policy().contains(page));
    }
    Ok(memory.stats())
}

/// LRU as a list, most recent at the back.
fn naive_lru(trace: &[u64], capacity: usize) -> u64 {
    let mut list: VecDeque<u64> = VecDeque::new();
    let mut misses = 0;
    for &page in trace {
        if let Some(i) = list.iter().position(|&p| p == page) {
            list.remove(i);
        } else {
            misses += 1;
            if list.len() == capacity {
                list.pop_front();
            }
        }
        if capacity > 0 {
            list.push_back(page);
        }
    }
    misses
}

fn naive_fifo(trace: &[u64], capacity: usize) -> u64 {
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut misses = 0;
    for &page in trace {
        if !queue.contains(&page) {
            misses += 1;
            if capacity == 0 {
                continue;
            }
            if queue.len() == capacity {
                queue.pop_front();
            }
            queue.push_back(page);
        }
    }
    misses
}

/// The textbook clock: frames in a circle, a hand, a reference bit set by
/// every hit.
fn naive_clock(trace: &[u64], capacity: usize) -> u64 {
    let mut frames: Vec<(u64, bool)> = Vec::new();
    let mut hand = 0;
    let mut misses = 0;
    for &page in trace {
        if let Some(f) = frames.iter_mut().find(|f| f.0 == page) {
            f.1 = true;
            continue;
        }
        misses += 1;
        if capacity == 0 {
            continue;
        }
        if frames.len() < capacity {
            frames.push((page, false));
            continue;
        }
        while frames[hand].1 {
            frames[hand].1 = false;
            hand = (hand + 1) % capacity;
        }
        frames[hand] = (page, false);
        hand = (hand + 1) % capacity;
    }
    misses
}

/// OPT by exhaustive search (tiny traces): on a miss with memory full, try
/// evicting each resident page.
fn brute_opt(trace: &[u64], capacity: usize) -> u64 {
    fn go(trace: &[u64], capacity: usize, resident: &mut Vec<u64>) -> u64 {
        let Some((&page, rest)) = trace.split_first() else {
            return 0;
        };
        if resident.contains(&page) {
            return go(rest, capacity, resident);
        }
        if capacity == 0 {
            return 1 + go(rest, capacity, resident);
        }
        if resident.len() < capacity {
            resident.push(page);
            let m = go(rest, capacity, resident);
            resident.pop();
            return 1 + m;
        }
        let mut best = u64::MAX;
        for i in 0..resident.len() {
            let old = resident[i];
            resident[i] = page;
            best = best.min(go(rest, capacity, resident));
            resident[i] = old;
        }
        1 + best
    }
    go(trace, capacity, &mut Vec::new())
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Touch(u64),
    Remove(u64),
    Evict,
    Rotate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..20).prop_map(Op::Insert),
        3 => (0u64..20).prop_map(Op::Touch),
        1 => (0u64..20).prop_map(Op::Remove),
        2 => Just(Op::Evict),
        1 => Just(Op::Rotate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any sequence of kernel events: each policy's resident set is the
    /// model's, never above capacity; candidates are resident; inserts are
    /// refused exactly when full or already resident; shadows fit in
    /// SHADOW_BITS and are handed back on refault.
    #[test]
    fn kernel_events_match_a_set(capacity in 0usize..8, ops in proptest::collection::vec(op(), 0..300)) {
        for mut p in policies(capacity) {
            let mut model: BTreeSet<u64> = BTreeSet::new();
            let mut shadows: BTreeMap<u64, Shadow> = BTreeMap::new();
            for op in &ops {
                match *op {
                    Op::Insert(page) => {
                        let want = if model.contains(&page) {
                            Err(InsertError::Resident)
                        } else if model.len() == capacity {
                            Err(InsertError::Full)
                        } else {
                            Ok(())
                        };
                        let shadow = if want.is_ok() { shadows.remove(&page) } else { None };
                        let r = p.insert(page, shadow);
                        prop_assert_eq!(r, want, "{}", p.name());
                        if r.is_ok() {
                            model.insert(page);
                        }
                    }
                    Op::Touch(page) => p.touched(page),
                    Op::Remove(page) => prop_assert_eq!(p.remove(page), model.remove(&page)),
                    Op::Evict => match p.candidate() {
                        None => prop_assert!(model.is_empty()),
                        Some(page) => {
                            prop_assert!(model.contains(&page), "{}: candidate {} not resident", p.name(), page);
                            let shadow = p.evict(page);
                            prop_assert!(shadow.is_some());
                            prop_assert!(shadow.unwrap().to_bits() < 1 << SHADOW_BITS);
                            prop_assert_eq!(p.evict(page), None);
                            model.remove(&page);
                            shadows.insert(page, shadow.unwrap());
                        }
                    },
                    Op::Rotate => {
                        if let Some(page) = p.candidate() {
                            p.rotate(page);
                        }
                    }
                }
                prop_assert_eq!(p.len(), model.len(), "{}", p.name());
                prop_assert!(p.len() <= p.capacity());
                for page in 0..20 {
                    prop_assert_eq!(p.contains(page), model.contains(&page), "{}: page {}", p.name(), page);
                }
            }
        }
    }

    /// On random traces: hits + misses = accesses, the resident set stays
    /// within capacity, OPT takes no more misses than any policy, and FIFO,
    /// LRU and CLOCK equal their textbook models.
    #[test]
    fn traces_against_models_and_opt(
        capacity in 0usize..12,
        universe in 1u64..24,
        raw in proptest::collection::vec(any::<u64>(), 0..600),
    ) {
        let trace: Vec<u64> = raw.iter().map(|r| r % universe).collect();
        let best = opt::misses(&trace, capacity);
        for p in policies(capacity) {
            let name = p.name();
            let stats = run_checked(p, &trace)?;
            prop_assert_eq!(stats.hits + stats.misses, trace.len() as u64);
            prop_assert!(best <= stats.misses, "{} took {} misses, OPT {}", name, stats.misses, best);
            let model = match name {
                "FIFO" => Some(naive_fifo(&trace, capacity)),
                "LRU" => Some(naive_lru(&trace, capacity)),
                "CLOCK" => Some(naive_clock(&trace, capacity)),
                _ => None,
            };
            if let Some(model) = model {
                prop_assert_eq!(stats.misses, model, "{}", name);
            }
        }
    }

    /// OPT (the heap-based simulator) equals an exhaustive search.
    #[test]
    fn opt_is_optimal(capacity in 0usize..4, raw in proptest::collection::vec(0u64..6, 0..14)) {
        prop_assert_eq!(opt::misses(&raw, capacity), brute_opt(&raw, capacity));
    }
}
