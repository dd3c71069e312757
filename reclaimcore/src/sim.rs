//! Runs a policy over a trace the way the kernel drives it: a hit is a
//! touch; a miss evicts a victim when memory is full, keeps the victim's
//! shadow where the page was (here: a map), and inserts the missing page
//! with the shadow from its own last eviction.

use alloc::collections::BTreeMap;

use crate::{Access, Policy, Shadow};

/// Hits and misses of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Accesses to resident pages.
    pub hits: u64,
    /// Accesses that brought a page in.
    pub misses: u64,
    /// Misses whose page had been resident before (refaults).
    pub refaults: u64,
}

/// A memory of `policy.capacity()` frames managed by `policy`, with the
/// shadows of evicted pages (kept without bound, unlike the kernel's).
pub struct Memory<P> {
    policy: P,
    shadows: BTreeMap<u64, Shadow>,
    stats: Stats,
}

impl<P: Policy> Memory<P> {
    /// An empty memory managed by `policy`.
    pub fn new(policy: P) -> Self {
        Memory {
            policy,
            shadows: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    /// One access to `page`.
    pub fn access(&mut self, page: u64) -> Access {
        if self.policy.contains(page) {
            self.policy.touched(page);
            self.stats.hits += 1;
            return Access::Hit;
        }
        self.stats.misses += 1;
        if self.policy.capacity() == 0 {
            return Access::Miss;
        }
        if self.policy.len() == self.policy.capacity() {
            let (victim, shadow) = self.policy.victim().expect("a full memory has a victim");
            self.shadows.insert(victim, shadow);
        }
        let shadow = self.shadows.remove(&page);
        if shadow.is_some() {
            self.stats.refaults += 1;
        }
        self.policy.insert(page, shadow).expect("room was made");
        Access::Miss
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

/// Runs `policy` over `trace`.
pub fn run<P: Policy>(policy: P, trace: &[u64]) -> Stats {
    let mut memory = Memory::new(policy);
    for &page in trace {
        memory.access(page);
    }
    memory.stats()
}

/// The misses of `policy` over `trace`.
pub fn misses<P: Policy>(policy: P, trace: &[u64]) -> u64 {
    run(policy, trace).misses
}
