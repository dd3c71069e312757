//! Ferrite's policy: two lists, shadows, and a recency test on refault.
//!
//! - **Lists.** *Active* holds the working set, ordered by last use;
//!   *inactive* holds newcomers and demoted pages; victims come from the
//!   inactive tail (the active tail only when inactive is empty).
//! - **Time** is a counter that ticks at every insert and touch; each page
//!   carries the tick of its last use (its *stamp*).
//! - **Shadows.** An evicted page's [`Shadow`] is its stamp and whether it
//!   was ever active (30 + 1 bits): the kernel keeps it where the page was,
//!   as Linux's `mm/workingset.c` keeps an eviction counter.
//! - **New page** (no shadow): active while memory fills (active below its
//!   target), else the inactive head.
//! - **Touch** of an inactive page: if it was ever active, or a use was
//!   already seen since it came in, it is promoted (a second use within the
//!   inactive window). Otherwise it is only marked and goes round the
//!   inactive list once more: the kernel maps a faulted page with its
//!   accessed bit set, so the first use reclaim sees may be the fault
//!   itself (Linux's `folio_check_references` looks twice for the same
//!   reason). A touch of an active page sends it to the active head and
//!   counts a use (at most 3 are counted).
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
//!   second use: the inactive target grows by 8 x max(1, active/inactive)
//!   (8 times ARC's step: a new working set gets its room within a few
//!   refaults). A refault that loses shows extra inactive room would not
//!   have helped: it shrinks by one. The target stays within
//!   1..=capacity/2.
//! - **Demotion** (active over its target, after an activation): the
//!   active tail spends one of its counted uses and goes back to the
//!   active head instead, if it has any (a second chance per use, as a
//!   counting CLOCK: an often-used page outlives a merely recent one); the
//!   page being activated is passed over. The first tail with no uses left
//!   moves to the inactive tail if it was used before everything there (it
//!   goes first), else to the inactive head.
//! - **Refill** (a candidate asked for while the inactive list is below its
//!   target, Linux's `shrink_active_list`): the active tail moves to the
//!   inactive head until it is not, so a page is looked at only after a
//!   trip along the inactive list — under a kernel, time for a page in use
//!   to have its accessed bit set again.
//!
//! Under a kernel, only candidates' accessed bits are seen: uses of active
//! pages go unseen until they are demoted, so the active list is ordered
//! by activation rather than by use. `sim::Mode::Bits` measures that case
//! (the quality example prints both).

use alloc::vec::Vec;

use crate::table::{Node, Slot, Table};
use crate::{AllocError, InsertError, Policy, Shadow};

/// Stamps are kept modulo 2^30 (ages are computed with wrap-around; a
/// shadow older than 2^30 ticks may look young, as in Linux, harmlessly).
const STAMP_MASK: u64 = (1 << (crate::SHADOW_BITS - 1)) - 1;
/// In a page's data and its shadow: the page was active at some point.
const WAS_ACTIVE: u64 = 1 << (crate::SHADOW_BITS - 1);
/// In a page's data only: a use of this inactive page was seen since it
/// came in (the first may be the fault that brought it in).
const REFERENCED: u64 = 1 << crate::SHADOW_BITS;
/// The bits of a page's data its shadow keeps.
const SHADOW_MASK: u64 = STAMP_MASK | WAS_ACTIVE;
/// In an active page's data only: uses since demotion last passed it by
/// (saturating at [`MAX_USES`]), one second chance each.
const USES_SHIFT: u32 = crate::SHADOW_BITS + 1;
const USE: u64 = 1 << USES_SHIFT;
const MAX_USES: u64 = 3;
/// A never-active refault that wins the recency test grows the inactive
/// target by this many times ARC's step: a new working set must get its
/// room within a few refaults (a losing refault shrinks it by one).
const GROWTH: usize = 8;

/// The kinds of page a kernel keeps on separate lists (Linux's anon and
/// file LRUs): each kind has its own active and inactive list and split;
/// they share one clock, so shadows of either kind compare with every
/// page's recency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anonymous memory: evicting it means writing it to swap.
    Anon = 0,
    /// Page-cache pages: a clean one is simply dropped.
    File = 1,
}

impl Kind {
    /// Both kinds.
    pub const ALL: [Kind; 2] = [Kind::Anon, Kind::File];

    fn active(self) -> usize {
        2 * self as usize
    }

    fn inactive(self) -> usize {
        2 * self as usize + 1
    }

    fn of_list(list: usize) -> Kind {
        if list < 2 {
            Kind::Anon
        } else {
            Kind::File
        }
    }
}

/// One kind's split between its lists.
#[derive(Clone, Copy, Debug)]
struct Split {
    /// The inactive list's target size; active may hold the rest.
    inactive_target: usize,
    /// The pages of this kind memory holds: its length when reclaim last
    /// asked for a candidate (memory was full then), at first the capacity.
    limit: usize,
}

/// The most active pages one [`Lruvec::candidate`] call demotes.
const REFILL_MAX: usize = 1024;

/// A slot of a [`Lruvec`]'s table, for callers providing the storage
/// ([`Lruvec::dense`]).
pub type LruNode = Node<u64>;

/// Ferrite's lists for both kinds of page over one table (Linux's
/// `lruvec`). [`Ferrite`] is the same thing with one kind, as a [`Policy`].
pub struct Lruvec<S = Vec<LruNode>> {
    /// Per page: stamp | WAS_ACTIVE | REFERENCED | uses << USES_SHIFT.
    table: Table<u64, 4, S>,
    now: u64,
    split: [Split; 2],
}

impl Lruvec {
    /// Lists over at most `capacity` pages with any ids.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Self::over(Table::with_capacity(capacity)?))
    }
}

impl<S: AsRef<[LruNode]> + AsMut<[LruNode]>> Lruvec<S> {
    /// Lists over pages `0..nodes.len()` (frame numbers from the first
    /// managed frame, in the kernel), one slot each in `nodes`: nothing is
    /// allocated. `None` if `nodes` has `u32::MAX / 2` slots or more.
    pub fn dense(nodes: S) -> Option<Self> {
        Some(Self::over(Table::dense(nodes)?))
    }

    fn over(table: Table<u64, 4, S>) -> Self {
        let capacity = table.capacity();
        let split = Split {
            inactive_target: (capacity / 32).max(1),
            limit: capacity,
        };
        Lruvec {
            table,
            now: 0,
            split: [split; 2],
        }
    }

    /// The most pages the lists can hold.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Pages of `kind` on either list.
    pub fn len(&self, kind: Kind) -> usize {
        self.active_len(kind) + self.inactive_len(kind)
    }

    /// Whether no page of either kind is on the lists.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Pages of `kind` on its active list.
    pub fn active_len(&self, kind: Kind) -> usize {
        self.table.list_len(kind.active())
    }

    /// Pages of `kind` on its inactive list.
    pub fn inactive_len(&self, kind: Kind) -> usize {
        self.table.list_len(kind.inactive())
    }

    /// `kind`'s inactive list's current target size.
    pub fn inactive_target(&self, kind: Kind) -> usize {
        self.split[kind as usize].inactive_target
    }

    /// Whether `page` is on the lists.
    pub fn contains(&self, page: u64) -> bool {
        self.table.find(page).is_some()
    }

    /// The kind of `page` and whether it is active, if it is on the lists.
    pub fn state(&self, page: u64) -> Option<(Kind, bool)> {
        let list = self.table.list_of(self.table.find(page)?);
        Some((Kind::of_list(list), list.is_multiple_of(2)))
    }

    fn tick(&mut self) -> u64 {
        self.now = (self.now + 1) & STAMP_MASK;
        self.now
    }

    /// Ticks since `stamp`.
    fn age(&self, stamp: u64) -> u64 {
        self.now.wrapping_sub(stamp & STAMP_MASK) & STAMP_MASK
    }

    fn active_limit(&self, kind: Kind) -> usize {
        let s = self.split[kind as usize];
        s.limit.saturating_sub(s.inactive_target)
    }

    fn active_has_room(&self, kind: Kind) -> bool {
        self.active_len(kind) < self.active_limit(kind)
    }

    /// Whether a page of `kind` refaulting with `shadow` should be active;
    /// adapts the inactive target.
    fn refault_activates(&mut self, kind: Kind, shadow: Shadow) -> bool {
        if self.active_has_room(kind) {
            return true;
        }
        let age = self.age(shadow.to_bits());
        let coldest = self
            .table
            .tail(kind.active())
            .map(|t| self.age(self.table.data(t)));
        let (active, inactive) = (self.active_len(kind), self.inactive_len(kind));
        let split = &mut self.split[kind as usize];
        let most = (split.limit / 2).max(1);
        if coldest.is_some_and(|coldest| age < coldest) {
            if shadow.to_bits() & WAS_ACTIVE == 0 {
                let step = (active / inactive.max(1)).max(1) * GROWTH;
                split.inactive_target = (split.inactive_target + step).min(most);
            }
            true
        } else {
            split.inactive_target = split.inactive_target.saturating_sub(1).max(1);
            false
        }
    }

    fn activate(&mut self, kind: Kind, slot: Slot) {
        if self.active_limit(kind) == 0 {
            self.table.move_to_head(slot, kind.inactive());
            return;
        }
        *self.table.data_mut(slot) |= WAS_ACTIVE;
        self.table.move_to_head(slot, kind.active());
        self.trim_active(kind, slot);
    }

    /// Moves `kind`'s oldest active pages to the inactive list until the
    /// active list is within its limit; `slot` (the page just activated)
    /// stays.
    fn trim_active(&mut self, kind: Kind, slot: Slot) {
        while self.active_len(kind) > self.active_limit(kind) {
            let Some(tail) = self.table.tail(kind.active()) else {
                break;
            };
            let data = self.table.data(tail);
            if tail == slot {
                // Round to the page being activated: it is not the one to
                // go; the others have spent a second chance each by now.
                self.table.move_to_head(tail, kind.active());
                continue;
            }
            if data >> USES_SHIFT != 0 {
                // A second chance per use since demotion last came by.
                *self.table.data_mut(tail) = data - USE;
                self.table.move_to_head(tail, kind.active());
                continue;
            }
            let oldest = self
                .table
                .tail(kind.inactive())
                .is_none_or(|i| self.age(self.table.data(tail)) >= self.age(self.table.data(i)));
            if oldest {
                self.table.move_to_tail(tail, kind.inactive());
            } else {
                self.table.move_to_head(tail, kind.inactive());
            }
        }
    }

    /// `page`, of `kind`, became resident; `shadow` is what
    /// [`Lruvec::evict`] returned when it was last evicted, if known.
    /// Returns whether it went on the active list.
    pub fn insert(
        &mut self,
        kind: Kind,
        page: u64,
        shadow: Option<Shadow>,
    ) -> Result<bool, InsertError> {
        if self.contains(page) {
            return Err(InsertError::Resident);
        }
        if self.table.len() == self.table.capacity() {
            return Err(InsertError::Full);
        }
        let activate = match shadow {
            None => self.active_has_room(kind),
            Some(shadow) => self.refault_activates(kind, shadow),
        };
        let now = self.tick();
        if activate && self.active_limit(kind) > 0 {
            // Straight to the active head: what inserting on the inactive
            // list and then activating does, without the extra relink.
            let slot = self
                .table
                .insert(page, kind.active(), now | WAS_ACTIVE)
                .ok_or(InsertError::Full)?;
            self.trim_active(kind, slot);
        } else {
            self.table
                .insert(page, kind.inactive(), now)
                .ok_or(InsertError::Full)?;
        }
        Ok(activate)
    }

    /// `page` was used (accessed bit found set). Ignored if not resident.
    pub fn touched(&mut self, page: u64) {
        let Some(slot) = self.table.find(page) else {
            return;
        };
        let now = self.tick();
        let data = self.table.data_mut(slot);
        let old = *data;
        *data = (old & WAS_ACTIVE) | now;
        let list = self.table.list_of(slot);
        let kind = Kind::of_list(list);
        if list == kind.inactive() {
            if old & (WAS_ACTIVE | REFERENCED) != 0 {
                self.activate(kind, slot);
            } else {
                *self.table.data_mut(slot) |= REFERENCED;
                self.table.move_to_head(slot, list);
            }
        } else {
            let uses = (old >> USES_SHIFT).min(MAX_USES - 1) + 1;
            *self.table.data_mut(slot) |= uses << USES_SHIFT;
            self.table.move_to_head(slot, list);
        }
    }

    /// `page` left memory for good: forgotten, no shadow. Returns whether
    /// it was on the lists.
    pub fn remove(&mut self, page: u64) -> bool {
        self.table
            .find(page)
            .map(|s| self.table.remove(s))
            .is_some()
    }

    /// The page of `kind` to evict next: the inactive tail, else the
    /// active tail. Asking means memory is full, so `kind`'s present
    /// length becomes the size its lists are split against; and if the
    /// inactive list is below its target, the active list's oldest pages
    /// are moved to its head first (Linux's `shrink_active_list` when the
    /// inactive list is low), so a candidate has spent a trip along the
    /// inactive list — time to be used again — before it is looked at.
    pub fn candidate(&mut self, kind: Kind) -> Option<u64> {
        let len = self.len(kind);
        let split = &mut self.split[kind as usize];
        if len > 0 && split.limit != len {
            split.limit = len;
            split.inactive_target = split.inactive_target.clamp(1, (len / 2).max(1));
        }
        self.refill_inactive(kind);
        let slot = self
            .table
            .tail(kind.inactive())
            .or_else(|| self.table.tail(kind.active()))?;
        Some(self.table.page(slot))
    }

    /// Demotes `kind`'s oldest active pages to the inactive head until the
    /// inactive list reaches its target (at most [`REFILL_MAX`] per call,
    /// so a call stays short).
    fn refill_inactive(&mut self, kind: Kind) {
        let target = self.split[kind as usize].inactive_target;
        for _ in 0..REFILL_MAX {
            if self.inactive_len(kind) >= target {
                break;
            }
            let Some(tail) = self.table.tail(kind.active()) else {
                break;
            };
            self.table.move_to_head(tail, kind.inactive());
        }
    }

    /// Removes `page` as evicted and returns its shadow (`None` if it was
    /// not on the lists).
    pub fn evict(&mut self, page: u64) -> Option<Shadow> {
        let slot = self.table.find(page)?;
        Some(Shadow::from_bits(self.table.remove(slot) & SHADOW_MASK))
    }

    /// `page`, a candidate, cannot be evicted right now: to the head of
    /// its list, no use counted. Ignored if not resident.
    pub fn rotate(&mut self, page: u64) {
        if let Some(slot) = self.table.find(page) {
            let list = self.table.list_of(slot);
            self.table.move_to_head(slot, list);
        }
    }
}

/// Ferrite's replacement policy (see the module documentation): a
/// [`Lruvec`] holding one kind of page.
pub struct Ferrite(Lruvec);

impl Ferrite {
    /// Ferrite's policy over at most `capacity` pages.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Ferrite(Lruvec::with_capacity(capacity)?))
    }

    /// Pages on the active list.
    pub fn active_len(&self) -> usize {
        self.0.active_len(Kind::Anon)
    }

    /// Pages on the inactive list.
    pub fn inactive_len(&self) -> usize {
        self.0.inactive_len(Kind::Anon)
    }

    /// The inactive list's current target size.
    pub fn inactive_target(&self) -> usize {
        self.0.inactive_target(Kind::Anon)
    }
}

impl Policy for Ferrite {
    fn name(&self) -> &'static str {
        "Ferrite"
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }

    fn len(&self) -> usize {
        self.0.len(Kind::Anon)
    }

    fn contains(&self, page: u64) -> bool {
        self.0.contains(page)
    }

    fn insert(&mut self, page: u64, shadow: Option<Shadow>) -> Result<(), InsertError> {
        self.0.insert(Kind::Anon, page, shadow).map(drop)
    }

    fn touched(&mut self, page: u64) {
        self.0.touched(page)
    }

    fn remove(&mut self, page: u64) -> bool {
        self.0.remove(page)
    }

    fn candidate(&mut self) -> Option<u64> {
        self.0.candidate(Kind::Anon)
    }

    fn evict(&mut self, page: u64) -> Option<Shadow> {
        self.0.evict(page)
    }

    fn rotate(&mut self, page: u64) {
        self.0.rotate(page)
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
        // Its first use seen may be the fault that brought it in: it only
        // goes round the inactive list again.
        p.touched(4);
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.0.state(4), Some((Kind::Anon, false)));
        // A second use promotes it; the coldest active page (1) is demoted.
        p.touched(4);
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.0.state(4), Some((Kind::Anon, true)));
        assert_eq!(p.candidate(), Some(1));
    }

    #[test]
    fn demotion_spares_the_often_used() {
        let mut p = Ferrite::with_capacity(4).unwrap();
        for page in 1..=3 {
            p.insert(page, None).unwrap(); // active
        }
        p.insert(10, None).unwrap(); // inactive
                                     // 1 is used three times, then 2 and 3 once each: by recency 1 is
                                     // the coldest, but it has more uses to spend.
        for page in [1, 1, 1, 2, 3] {
            p.touched(page);
        }
        p.touched(10);
        p.touched(10); // promoted: one active page must go
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.candidate(), Some(2));
        assert_eq!(p.0.state(1), Some((Kind::Anon, true)));
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
    fn refault_of_a_colder_page_stays_inactive() {
        let mut p = Ferrite::with_capacity(4).unwrap();
        for page in 1..=3 {
            p.insert(page, None).unwrap(); // active (target inactive 1)
        }
        p.insert(10, None).unwrap(); // inactive
        let shadow = p.evict(10).unwrap();
        // Pages 1..3 are used after 10's last use: 10 is colder: inactive,
        // and the inactive target cannot shrink below 1.
        for page in 1..=3 {
            p.touched(page);
        }
        assert!(!p.0.insert(Kind::Anon, 10, Some(shadow)).unwrap());
        assert_eq!((p.active_len(), p.inactive_len()), (3, 1));
        assert_eq!(p.inactive_target(), 1);
    }

    #[test]
    fn refault_of_a_recently_used_page_is_activated() {
        let mut p = Ferrite::with_capacity(4).unwrap();
        for page in 1..=3 {
            p.insert(page, None).unwrap(); // active, never used since
        }
        p.insert(10, None).unwrap(); // inactive
        let shadow = p.evict(10).unwrap();
        p.insert(11, None).unwrap();
        p.evict(11).unwrap();
        // 10 was used more recently than the coldest active page (1): its
        // reuse distance is shorter than 1's recency: activated. It never
        // was active: the inactive list was too short to see its second
        // use, so its target grows (capped at capacity/2 = 2) and active
        // shrinks to 2: 1 and 2 are demoted, the colder one (1) to the
        // tail.
        assert!(p.0.insert(Kind::Anon, 10, Some(shadow)).unwrap());
        assert_eq!(p.inactive_target(), 2);
        assert_eq!((p.active_len(), p.inactive_len()), (2, 2));
        assert_eq!(p.candidate(), Some(1), "the coldest active page goes first");
        p.evict(1).unwrap();
        assert_eq!(p.candidate(), Some(2));
    }

    #[test]
    fn kinds_keep_their_own_lists() {
        let mut v = Lruvec::with_capacity(8).unwrap();
        for page in 0..4 {
            v.insert(Kind::Anon, page, None).unwrap();
            v.insert(Kind::File, 10 + page, None).unwrap();
        }
        assert_eq!((v.len(Kind::Anon), v.len(Kind::File)), (4, 4));
        // Memory is full: each kind's split is against its own length.
        let anon = v.candidate(Kind::Anon).unwrap();
        let file = v.candidate(Kind::File).unwrap();
        assert!(anon < 4 && file >= 10, "{anon} {file}");
        assert_eq!(v.state(file).map(|s| s.0), Some(Kind::File));
        v.evict(file).unwrap();
        assert_eq!(v.len(Kind::File), 3);
        assert_eq!(v.len(Kind::Anon), 4);
        assert!(v.remove(anon));
        assert!(!v.contains(anon));
    }

    proptest::proptest! {
        /// A dense lruvec (ids are slots, storage given) makes exactly the
        /// choices a hashed one makes, for any sequence of kernel events.
        #[test]
        fn dense_matches_hashed(ops in proptest::collection::vec((0u8..6, 0u64..16, proptest::bool::ANY), 0..300)) {
            let mut hashed = Lruvec::with_capacity(16).unwrap();
            let mut nodes = std::vec![LruNode::default(); 16];
            let mut dense = Lruvec::dense(&mut nodes[..]).unwrap();
            let mut shadows = std::collections::BTreeMap::new();
            for (op, page, file) in ops {
                let kind = if file { Kind::File } else { Kind::Anon };
                match op {
                    0 | 1 => {
                        let shadow = shadows.remove(&page);
                        proptest::prop_assert_eq!(
                            hashed.insert(kind, page, shadow),
                            dense.insert(kind, page, shadow)
                        );
                    }
                    2 => { hashed.touched(page); dense.touched(page); }
                    3 => proptest::prop_assert_eq!(hashed.remove(page), dense.remove(page)),
                    4 => {
                        let c = hashed.candidate(kind);
                        proptest::prop_assert_eq!(c, dense.candidate(kind));
                        if let Some(c) = c {
                            let s = hashed.evict(c);
                            proptest::prop_assert_eq!(s, dense.evict(c));
                            shadows.insert(c, s.unwrap());
                        }
                    }
                    _ => { hashed.rotate(page); dense.rotate(page); }
                }
                for k in Kind::ALL {
                    proptest::prop_assert_eq!(hashed.active_len(k), dense.active_len(k));
                    proptest::prop_assert_eq!(hashed.inactive_len(k), dense.inactive_len(k));
                }
            }
        }
    }

    #[test]
    fn stamps_wrap_without_panicking() {
        let mut p = Ferrite::with_capacity(2).unwrap();
        p.0.now = STAMP_MASK - 1;
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
