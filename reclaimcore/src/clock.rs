//! CLOCK (second chance): a circular list with a reference bit per page.
//! The hand is the list's tail; a referenced page under the hand loses its
//! bit and goes round again (to the head), the first unreferenced one is
//! the victim.

use crate::table::Table;
use crate::{AllocError, InsertError, Policy, Shadow};

/// CLOCK replacement.
pub struct Clock {
    table: Table<bool, 1>,
}

impl Clock {
    /// A CLOCK over at most `capacity` pages.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Clock {
            table: Table::with_capacity(capacity)?,
        })
    }
}

impl Policy for Clock {
    fn name(&self) -> &'static str {
        "CLOCK"
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

    fn insert(&mut self, page: u64, _shadow: Option<Shadow>) -> Result<(), InsertError> {
        self.table.insert_new(page, 0, false).map(|_| ())
    }

    fn touched(&mut self, page: u64) {
        if let Some(s) = self.table.find(page) {
            *self.table.data_mut(s) = true;
        }
    }

    fn remove(&mut self, page: u64) -> bool {
        self.table
            .find(page)
            .map(|s| self.table.remove(s))
            .is_some()
    }

    fn candidate(&mut self) -> Option<u64> {
        // At most one full turn clears every bit; the next slot is then
        // unreferenced.
        for _ in 0..=self.table.len() {
            let s = self.table.tail(0)?;
            if !self.table.data(s) {
                return Some(self.table.page(s));
            }
            *self.table.data_mut(s) = false;
            self.table.move_to_head(s, 0);
        }
        self.table.tail(0).map(|s| self.table.page(s))
    }

    fn evict(&mut self, page: u64) -> Option<Shadow> {
        self.remove(page).then_some(Shadow(0))
    }

    fn rotate(&mut self, page: u64) {
        if let Some(s) = self.table.find(page) {
            self.table.move_to_head(s, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::misses;

    #[test]
    fn second_chance() {
        let mut p = Clock::with_capacity(3).unwrap();
        for page in [1, 2, 3] {
            p.insert(page, None).unwrap();
        }
        p.touched(1);
        p.touched(3);
        // 1 is referenced: cleared and passed over; 2 goes.
        assert_eq!(p.victim().map(|v| v.0), Some(2));
        p.insert(4, None).unwrap();
        // Order from the hand: 3 (referenced), 1 (cleared), 4: 3 is
        // cleared and passed, 1 goes.
        assert_eq!(p.victim().map(|v| v.0), Some(1));
        // Every page referenced (hand at 4, then 3): one full turn clears
        // both, and the page under the hand goes.
        p.touched(3);
        p.touched(4);
        assert_eq!(p.victim().map(|v| v.0), Some(4));
    }

    #[test]
    fn hand_checked_sequence() {
        // 3 frames: 1 2 3 1 4 1 5: 4 evicts 2 (1 referenced, cleared; 2
        // not), 5 evicts 3, not the just-referenced 1: 5 misses.
        assert_eq!(
            misses(Clock::with_capacity(3).unwrap(), &[1, 2, 3, 1, 4, 1, 5, 1]),
            5
        );
    }
}
