//! Ferrite's policy: two lists, shadows, and a recency test on refault.
//!
//! - **Lists.** *Active* holds the working set, ordered by last use;
//!   *inactive* holds newcomers and demoted pages; victims come from the
//!   inactive tail (the active tail only when inactive is empty).
//! - **Time** is a counter that ticks at every insert and touch; each page
//!   carries the tick of its last use (its *stamp*).
//! - **Shadows.** An evicted page's [`Shadow`] is its stamp and whether it
//!   was ever active (47 + 1 bits): the kernel keeps it where the page was,
//!   as Linux's `mm/workingset.c` keeps an eviction counter.
//! - **New page** (no shadow): active while memory fills (active below its
//!   target), else the inactive head.
//! - **Touch**: an inactive page is promoted (a second use within the
//!   inactive window); an active one goes to the active head.
//! - **Refault** (a shadow): activated when active is below its target, or
//!   when the page's last use is more recent than the coldest active
//!   page's, i.e. its reuse distance is shorter than that page's recency:
//!   LIRS's test, done with the shadow instead of a ghost list. Otherwise
//!   it goes to the inactive list. In a loop larger than memory every
//!   active page was used more recently than the refaulting one, so the
//!   active set stays put and only the excess cycles (OPT-like, where LRU
//!   misses every time); a one-time scan never refaults, so it never
//!   displaces the active set.
//! - **Adaptive split** (ARC's rule, with shadows): a never-active page that
//!   wins the recency test shows the inactive list was too short to see its
//!   second use: the inactive target grows by max(1, active/inactive). A
//!   refault that loses shows extra inactive room would not have helped: it
//!   shrinks by one. The target stays within 1..=capacity/2.
//! - **Demotion** (active over its target): the active tail moves to the
//!   inactive tail if it was used before everything there (it goes first),
//!   else to the inactive head.

use crate::table::{Slot, Table};
use crate::{AllocError, InsertError, Policy, Shadow};

const ACTIVE: usize = 0;
const INACTIVE: usize = 1;
/// Stamps are kept modulo 2^47 (ages are computed with wrap-around; a
/// shadow older than 2^47 ticks may look young, as in Linux, harmlessly).
const STAMP_MASK: u64 = (1 << (crate::SHADOW_BITS - 1)) - 1;
/// In a page's data and its shadow: the page was active at some point.
const WAS_ACTIVE: u64 = 1 << (crate::SHADOW_BITS - 1);

/// Ferrite's replacement policy (see the module documentation).
pub struct Ferrite {
    /// Per page: stamp | WAS_ACTIVE.
    table: Table<u64, 2>,
    now: u64,
    /// The inactive list's target size; active may hold the rest.
    inactive_target: usize,
}

impl Ferrite {
    /// Ferrite's policy over at most `capacity` pages.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Ferrite {
            table: Table::with_capacity(capacity)?,
            now: 0,
            inactive_target: (capacity / 32).max(1),
        })
    }

    /// Pages on the active list.
    pub fn active_len(&self) -> usize {
        self.table.list_len(ACTIVE)
    }

    /// Pages on the inactive list.
    pub fn inactive_len(&self) -> usize {
        self.table.list_len(INACTIVE)
    }

    /// The inactive list's current target size.
    pub fn inactive_target(&self) -> usize {
        self.inactive_target
    }

    fn tick(&mut self) -> u64 {
        self.now = (self.now + 1) & STAMP_MASK;
        self.now
    }

    /// Ticks since `stamp`.
    fn age(&self, stamp: u64) -> u64 {
        self.now.wrapping_sub(stamp & STAMP_MASK) & STAMP_MASK
    }

    fn active_limit(&self) -> usize {
        self.table.capacity().saturating_sub(self.inactive_target)
    }

    fn active_has_room(&self) -> bool {
        self.table.list_len(ACTIVE) < self.active_limit()
    }

    /// Whether a page refaulting with `shadow` should be active;
    /// adapts the inactive target.
    fn refault_activates(&mut self, shadow: Shadow) -> bool {
        if self.active_has_room() {
            return true;
        }
        let age = self.age(shadow.to_bits());
        let coldest = self
            .table
            .tail(ACTIVE)
            .map(|t| self.age(self.table.data(t)));
        let cap = self.table.capacity();
        if coldest.is_some_and(|coldest| age < coldest) {
            if shadow.to_bits() & WAS_ACTIVE == 0 {
                let step = (self.active_len() / self.inactive_len().max(1)).max(1);
                self.inactive_target = (self.inactive_target + step).min(cap / 2).max(1);
            }
            true
        } else {
            self.inactive_target = self.inactive_target.saturating_sub(1).max(1);
            false
        }
    }

    fn activate(&mut self, slot: Slot) {
        if self.active_limit() == 0 {
            self.table.move_to_head(slot, INACTIVE);
            return;
        }
        *self.table.data_mut(slot) |= WAS_ACTIVE;
        self.table.move_to_head(slot, ACTIVE);
        while self.table.list_len(ACTIVE) > self.active_limit() {
            let Some(tail) = self.table.tail(ACTIVE) else {
                break;
            };
            let oldest = self
                .table
                .tail(INACTIVE)
                .is_none_or(|i| self.age(self.table.data(tail)) >= self.age(self.table.data(i)));
            if oldest {
                self.table.move_to_tail(tail, INACTIVE);
            } else {
                self.table.move_to_head(tail, INACTIVE);
            }
        }
    }
}

impl Policy for Ferrite {
    fn name(&self) -> &'static str {
        "Ferrite"
    }

    fn capacity(&self) -> usize {
        self.table.capacity()
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn contains(&self, page: u64) -> bool {
        self.table.find(page).is_some()
    }

    fn insert(&mut self, page: u64, shadow: Option<Shadow>) -> Result<(), InsertError> {
        if self.contains(page) {
            return Err(InsertError::Resident);
        }
        if self.table.len() == self.table.capacity() {
            return Err(InsertError::Full);
        }
        let activate = match shadow {
            None => self.active_has_room(),
            Some(shadow) => self.refault_activates(shadow),
        };
        let now = self.tick();
        let slot = self
            .table
            .insert(page, INACTIVE, now)
            .ok_or(InsertError::Full)?;
        if activate {
            self.activate(slot);
        }
        Ok(())
    }

    fn touched(&mut self, page: u64) {
        let Some(slot) = self.table.find(page) else {
            return;
        };
        let now = self.tick();
        let data = self.table.data_mut(slot);
        *data = (*data & WAS_ACTIVE) | now;
        if self.table.list_of(slot) == INACTIVE {
            self.activate(slot);
        } else {
            self.table.move_to_head(slot, ACTIVE);
        }
    }

    fn remove(&mut self, page: u64) -> bool {
        self.table
            .find(page)
            .map(|s| self.table.remove(s))
            .is_some()
    }

    fn candidate(&mut self) -> Option<u64> {
        let slot = self
            .table
            .tail(INACTIVE)
            .or_else(|| self.table.tail(ACTIVE))?;
        Some(self.table.page(slot))
    }

    fn evict(&mut self, page: u64) -> Option<Shadow> {
        let slot = self.table.find(page)?;
        Some(Shadow::from_bits(self.table.remove(slot)))
    }

    fn rotate(&mut self, page: u64) {
        if let Some(slot) = self.table.find(page) {
            let list = self.table.list_of(slot);
            self.table.move_to_head(slot, list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{misses, Memory};
    use crate::trace;

    #[test]
    fn new_pages_fill_active_then_go_inactive() {
        let mut p = Ferrite::with_capacity(4).unwrap();
        // Target inactive 1: three pages fill active, the fourth is inactive.
        for page in 1..=4 {
            p.insert(page, None).unwrap();
        }
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.candidate(), Some(4));
        // A second use promotes it; the coldest active page (1) is demoted.
        p.touched(4);
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.candidate(), Some(1));
    }

    #[test]
    fn one_time_scan_does_not_displace_the_working_set() {
        let mut m = Memory::new(Ferrite::with_capacity(8).unwrap());
        for _ in 0..3 {
            for page in 0..6 {
                m.access(page);
            }
        }
        let before = m.stats().misses;
        assert_eq!(before, 6);
        for page in 100..1000 {
            m.access(page);
        }
        for page in 0..6 {
            assert_eq!(
                m.access(page),
                crate::Access::Hit,
                "page {page} survived the scan"
            );
        }
        assert_eq!(m.stats().misses, before + 900);
    }

    #[test]
    fn loop_larger_than_memory_keeps_most_of_it() {
        // 11 pages in 10 frames: LRU misses all 1100 accesses; Ferrite
        // keeps an active set after the first pass and misses about 2 per
        // pass (the inactive target falls to 1).
        let t = trace::looping(11, 1100);
        assert_eq!(misses(crate::Lru::with_capacity(10).unwrap(), &t), 1100);
        let f = misses(Ferrite::with_capacity(10).unwrap(), &t);
        assert!(f <= 11 + 2 * 100, "{f} misses");
        assert!(f >= crate::opt::misses(&t, 10));
    }

    #[test]
    fn refault_of_a_recently_used_page_is_activated() {
        let mut p = Ferrite::with_capacity(4).unwrap();
        for page in 1..=3 {
            p.insert(page, None).unwrap(); // active (target inactive 1)
        }
        p.insert(10, None).unwrap(); // inactive
        let shadow = p.evict(10).unwrap();
        // Pages 1..3 are used after 10's last use: 10 is colder: inactive.
        for page in 1..=3 {
            p.touched(page);
        }
        p.insert(10, Some(shadow)).unwrap();
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        let shadow = p.evict(10).unwrap();
        // Now 11 is used, then 10 refaults having been used more recently
        // than the coldest active page (1): activated, 1 demoted.
        p.insert(11, None).unwrap();
        p.touched(11);
        assert_eq!(p.candidate(), Some(1));
        p.evict(1).unwrap();
        // 10 never was active: the inactive list was too short to see its
        // second use, so its target grows (1 + active/inactive = 4, capped
        // at capacity/2 = 2) and active shrinks to 2: 10 and 11 stay, 2
        // and 3 are demoted, the colder one (2) to the tail.
        p.insert(10, Some(shadow)).unwrap();
        assert_eq!(p.inactive_target(), 2);
        assert_eq!((p.active_len(), p.inactive_len()), (2, 2));
        assert_eq!(p.candidate(), Some(2), "the coldest active page goes first");
        p.evict(2).unwrap();
        assert_eq!(p.candidate(), Some(3));
    }

    #[test]
    fn stamps_wrap_without_panicking() {
        let mut p = Ferrite::with_capacity(2).unwrap();
        p.now = STAMP_MASK - 1;
        p.insert(1, None).unwrap();
        p.insert(2, None).unwrap();
        for _ in 0..4 {
            p.touched(1);
            p.touched(2);
        }
        let (page, shadow) = p.victim().unwrap();
        assert!(shadow.to_bits() < 1 << crate::SHADOW_BITS);
        p.insert(3, None).unwrap();
        p.victim().unwrap();
        p.insert(page, Some(shadow)).unwrap();
        assert_eq!(p.len(), 2);
    }
}
