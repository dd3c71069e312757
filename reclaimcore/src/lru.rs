//! Exact least-recently-used: every use moves the page to the head.
//! (The kernel sees uses only as accessed bits, so in the kernel this is
//! "least recently seen used".)

use crate::table::Table;
use crate::{AllocError, InsertError, Policy, Shadow};

/// LRU replacement.
pub struct Lru {
    table: Table<(), 1>,
}

impl Lru {
    /// An LRU over at most `capacity` pages.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Lru {
            table: Table::with_capacity(capacity)?,
        })
    }
}

impl Policy for Lru {
    fn name(&self) -> &'static str {
        "LRU"
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
        self.table.insert_new(page, 0, ()).map(|_| ())
    }

    fn touched(&mut self, page: u64) {
        if let Some(s) = self.table.find(page) {
            self.table.move_to_head(s, 0);
        }
    }

    fn remove(&mut self, page: u64) -> bool {
        self.table
            .find(page)
            .map(|s| self.table.remove(s))
            .is_some()
    }

    fn candidate(&mut self) -> Option<u64> {
        self.table.tail(0).map(|s| self.table.page(s))
    }

    fn evict(&mut self, page: u64) -> Option<Shadow> {
        self.remove(page).then_some(Shadow(0))
    }

    fn rotate(&mut self, page: u64) {
        self.touched(page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::misses;

    #[test]
    fn evicts_least_recently_used() {
        let mut p = Lru::with_capacity(3).unwrap();
        for page in [1, 2, 3] {
            p.insert(page, None).unwrap();
        }
        p.touched(1);
        assert_eq!(p.victim().map(|v| v.0), Some(2));
        p.insert(4, None).unwrap();
        p.touched(3);
        assert_eq!(p.victim().map(|v| v.0), Some(1));
        assert_eq!(p.victim().map(|v| v.0), Some(4));
        assert_eq!(p.victim().map(|v| v.0), Some(3));
        assert_eq!(p.victim(), None);
    }

    #[test]
    fn hand_checked_sequence() {
        // The textbook reference string (Silberschatz, 3 frames): LRU 12
        // misses, FIFO 15 (OPT 9, in opt.rs).
        let trace = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(misses(Lru::with_capacity(3).unwrap(), &trace), 12);
        assert_eq!(misses(crate::Fifo::with_capacity(3).unwrap(), &trace), 15);
        // A loop one page larger than memory misses every time.
        let looped: std::vec::Vec<u64> = (0..40).map(|i| i % 4).collect();
        assert_eq!(misses(Lru::with_capacity(3).unwrap(), &looped), 40);
    }
}
