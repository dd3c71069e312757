//! First in, first out: evicts the page resident longest, uses ignored.

use crate::table::Table;
use crate::{AllocError, InsertError, Policy, Shadow};

/// FIFO replacement.
pub struct Fifo {
    table: Table<(), 1>,
}

impl Fifo {
    /// A FIFO over at most `capacity` pages.
    pub fn with_capacity(capacity: usize) -> Result<Self, AllocError> {
        Ok(Fifo {
            table: Table::with_capacity(capacity)?,
        })
    }
}

impl Policy for Fifo {
    fn name(&self) -> &'static str {
        "FIFO"
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

    fn touched(&mut self, _page: u64) {}

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
    fn belady_anomaly_sequence() {
        // The classic sequence: FIFO takes 9 misses with 3 frames, 10 with 4.
        let trace = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
        assert_eq!(misses(Fifo::with_capacity(3).unwrap(), &trace), 9);
        assert_eq!(misses(Fifo::with_capacity(4).unwrap(), &trace), 10);
    }

    #[test]
    fn uses_do_not_reorder() {
        let mut p = Fifo::with_capacity(2).unwrap();
        p.insert(1, None).unwrap();
        p.insert(2, None).unwrap();
        p.touched(1);
        assert_eq!(p.insert(3, None), Err(InsertError::Full));
        assert_eq!(p.insert(2, None), Err(InsertError::Resident));
        assert_eq!(p.victim().map(|v| v.0), Some(1));
        p.rotate(2);
        assert_eq!(p.candidate(), Some(2));
        assert!(p.remove(2));
        assert!(!p.remove(2));
        assert_eq!(p.victim(), None);
    }
}
