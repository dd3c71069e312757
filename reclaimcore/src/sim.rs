//! Runs a policy over a trace the way the kernel drives it: a miss evicts
//! a victim when memory is full, keeps the victim's shadow where the page
//! was (here: a map), and inserts the missing page with the shadow from its
//! own last eviction. Hits are reported in one of two ways ([`Mode`]):
//!
//! - [`Mode::Trace`]: every hit is a [`Policy::touched`] (the policy sees
//!   every access, as a trace does);
//! - [`Mode::Bits`]: as the kernel sees them, through accessed bits. Every
//!   access, the faulting one included (the kernel maps a faulted page
//!   young), sets the page's referenced bit; the policy hears of it only
//!   when reclaim checks a candidate: candidate, and if its bit is set,
//!   clear it, [`Policy::touched`], and ask again; else evict it. A page
//!   the policy keeps on its active list is never checked, so its uses go
//!   unseen.

use alloc::collections::{BTreeMap, BTreeSet};

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

/// How the policy learns of hits (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every hit is a touch.
    Trace,
    /// Accesses set referenced bits; reclaim reports them for candidates.
    Bits,
}

/// A memory of `policy.capacity()` frames managed by `policy`, with the
/// shadows of evicted pages (kept without bound, unlike the kernel's).
pub struct Memory<P> {
    policy: P,
    mode: Mode,
    shadows: BTreeMap<u64, Shadow>,
    /// Resident pages with their referenced bit set ([`Mode::Bits`]).
    referenced: BTreeSet<u64>,
    stats: Stats,
}

impl<P: Policy> Memory<P> {
    /// An empty memory managed by `policy`, every hit a touch.
    pub fn new(policy: P) -> Self {
        Self::with_mode(policy, Mode::Trace)
    }

    /// An empty memory managed by `policy`, hits reported as `mode` says.
    pub fn with_mode(policy: P, mode: Mode) -> Self {
        Memory {
            policy,
            mode,
            shadows: BTreeMap::new(),
            referenced: BTreeSet::new(),
            stats: Stats::default(),
        }
    }

    /// One access to `page`.
    pub fn access(&mut self, page: u64) -> Access {
        if self.policy.contains(page) {
            match self.mode {
                Mode::Trace => self.policy.touched(page),
                Mode::Bits => {
                    self.referenced.insert(page);
                }
            }
            self.stats.hits += 1;
            return Access::Hit;
        }
        self.stats.misses += 1;
        if self.policy.capacity() == 0 {
            return Access::Miss;
        }
        if self.policy.len() == self.policy.capacity() {
            let (victim, shadow) = self.reclaim();
            self.shadows.insert(victim, shadow);
        }
        let shadow = self.shadows.remove(&page);
        if shadow.is_some() {
            self.stats.refaults += 1;
        }
        self.policy.insert(page, shadow).expect("room was made");
        if self.mode == Mode::Bits {
            self.referenced.insert(page);
        }
        Access::Miss
    }

    /// Evicts one page, as the kernel's reclaim does in this mode.
    fn reclaim(&mut self) -> (u64, Shadow) {
        if self.mode == Mode::Trace {
            return self.policy.victim().expect("a full memory has a victim");
        }
        // Each touch clears a bit, so this ends within capacity + 1
        // candidates.
        loop {
            let page = self.policy.candidate().expect("a full memory has a victim");
            if !self.referenced.remove(&page) {
                let shadow = self.policy.evict(page).expect("a candidate is resident");
                return (page, shadow);
            }
            self.policy.touched(page);
        }
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

/// Runs `policy` over `trace`, every hit a touch.
pub fn run<P: Policy>(policy: P, trace: &[u64]) -> Stats {
    run_in(Mode::Trace, policy, trace)
}

/// Runs `policy` over `trace`, hits reported as `mode` says.
pub fn run_in<P: Policy>(mode: Mode, policy: P, trace: &[u64]) -> Stats {
    let mut memory = Memory::with_mode(policy, mode);
    for &page in trace {
        memory.access(page);
    }
    memory.stats()
}

/// The misses of `policy` over `trace`, every hit a touch.
pub fn misses<P: Policy>(policy: P, trace: &[u64]) -> u64 {
    run(policy, trace).misses
}

/// The misses of `policy` over `trace`, hits reported as `mode` says.
pub fn misses_in<P: Policy>(mode: Mode, policy: P, trace: &[u64]) -> u64 {
    run_in(mode, policy, trace).misses
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lru;

    #[test]
    fn bits_are_seen_only_at_reclaim() {
        // 1, 2, 1, then 3 in two frames. Every hit a touch: LRU evicts 2.
        let trace = [1, 2, 1, 3];
        let mut m = Memory::new(Lru::with_capacity(2).unwrap());
        for page in trace {
            m.access(page);
        }
        assert!(m.policy().contains(1) && !m.policy().contains(2));
        // Accessed bits: the second use of 1 goes unseen; reclaim finds 1
        // (the oldest) and 2 referenced (by their faults), touches both,
        // clearing their bits, and then evicts 1: second chance, as CLOCK.
        let mut m = Memory::with_mode(Lru::with_capacity(2).unwrap(), Mode::Bits);
        for page in trace {
            m.access(page);
        }
        assert!(!m.policy().contains(1) && m.policy().contains(2));
        assert_eq!(
            m.stats(),
            Stats {
                hits: 1,
                misses: 3,
                refaults: 0
            }
        );
        // 2's bit was cleared then, 3's is set by its fault: 2 goes next.
        m.access(4);
        assert!(!m.policy().contains(2) && m.policy().contains(3));
    }
}
