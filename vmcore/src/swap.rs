//! Swap entries: where a page that is not in memory lives, kept in its
//! non-present page-table entry (Linux's `swp_entry_t`).
//!
//! A leaf with the present bit clear is ignored by the MMU, so its other
//! 63 bits are free for software. Ferrite's encoding:
//!
//! ```text
//!  63      52 51                    12 11   8 7      2 1 0
//! [ zero    | slot (40 bits)          | zero | device | 1 | 0 ]
//! ```
//!
//! Bit 1 is always set in a swap entry, so no swap entry is zero (the empty
//! entry) and, with bit 0 clear, none is present (a `PROT_NONE` mapping is
//! a present entry without the user bit): the three can never be confused.

use core::fmt;

use crate::paging::Pte;

/// Bit 1: this non-present entry is a swap entry.
const MARKER: u64 = 1 << 1;
const DEVICE_SHIFT: u32 = 2;
const DEVICE_BITS: u32 = 6;
const SLOT_SHIFT: u32 = 12;

/// Swap devices an entry can name (64).
pub const MAX_DEVICES: u8 = 1 << DEVICE_BITS;

/// Slots an entry can name per device (2^40 pages: 4 PiB).
pub const MAX_SLOTS: u64 = 1 << 40;

/// A page's place in swap: a device and a slot on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapEntry {
    /// Which swap device (index in the kernel's swap table).
    pub device: u8,
    /// Which page-sized slot on it.
    pub slot: u64,
}

impl SwapEntry {
    /// The entry for `slot` on `device`; `None` if either does not fit.
    pub const fn new(device: u8, slot: u64) -> Option<SwapEntry> {
        if device >= MAX_DEVICES || slot >= MAX_SLOTS {
            return None;
        }
        Some(SwapEntry { device, slot })
    }

    /// The non-present leaf that records this entry.
    pub const fn to_pte(self) -> Pte {
        Pte(MARKER | (self.device as u64) << DEVICE_SHIFT | self.slot << SLOT_SHIFT)
    }

    /// The swap entry a leaf records, if it is one.
    pub const fn from_pte(pte: Pte) -> Option<SwapEntry> {
        let raw = pte.0;
        if raw & 1 != 0 || raw & MARKER == 0 {
            return None;
        }
        Some(SwapEntry {
            device: ((raw >> DEVICE_SHIFT) & ((1 << DEVICE_BITS) - 1)) as u8,
            slot: (raw >> SLOT_SHIFT) & (MAX_SLOTS - 1),
        })
    }
}

impl fmt::Display for SwapEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "swap {}:{:#x}", self.device, self.slot)
    }
}

impl Pte {
    /// The swap entry this (non-present) leaf records, if any.
    pub const fn swap_entry(self) -> Option<SwapEntry> {
        SwapEntry::from_pte(self)
    }

    /// True for a non-present leaf recording a swap entry.
    pub const fn is_swap(self) -> bool {
        SwapEntry::from_pte(self).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::PteFlags;
    use proptest::prelude::*;

    #[test]
    fn never_empty_never_present() {
        let e = SwapEntry::new(0, 0).unwrap();
        assert_ne!(e.to_pte(), Pte::EMPTY);
        assert!(!e.to_pte().is_present());
        assert_eq!(Pte::EMPTY.swap_entry(), None);
        // PROT_NONE: present, not user.
        let prot_none = Pte::new(0x1000, PteFlags::PRESENT);
        assert_eq!(prot_none.swap_entry(), None);
        assert_eq!(SwapEntry::new(MAX_DEVICES, 0), None);
        assert_eq!(SwapEntry::new(0, MAX_SLOTS), None);
    }

    proptest! {
        #[test]
        fn round_trips(device in 0..MAX_DEVICES, slot in 0..MAX_SLOTS) {
            let e = SwapEntry::new(device, slot).unwrap();
            let pte = e.to_pte();
            prop_assert_eq!(pte.swap_entry(), Some(e));
            prop_assert!(!pte.is_present());
            prop_assert!(pte.0 != 0);
        }

        #[test]
        fn present_entries_are_never_swap(raw in any::<u64>()) {
            let pte = Pte(raw | 1);
            prop_assert_eq!(pte.swap_entry(), None);
        }
    }
}
