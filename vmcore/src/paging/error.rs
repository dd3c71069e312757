//! Why a page-table operation was refused.

use core::fmt;

use super::{Level, Pte};

/// Why a page-table operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The virtual address is not canonical.
    NonCanonical(u64),
    /// An address that must be page aligned is not.
    Unaligned(u64),
    /// The physical address does not fit in 52 bits.
    BadPhysAddr(u64),
    /// Leaf flags may not contain [`PteFlags::HUGE`](super::PteFlags::HUGE) (4 KiB pages only).
    HugeFlag,
    /// A walk range is empty-but-reversed or crosses its own end.
    BadRange {
        /// Requested start.
        start: u64,
        /// Requested end.
        end: u64,
    },
    /// A present leaf is already there.
    AlreadyMapped {
        /// The address.
        va: u64,
        /// What is mapped there.
        existing: Pte,
    },
    /// A huge leaf covers the address, so no 4 KiB page can be mapped there.
    HugePageInTheWay {
        /// The address.
        va: u64,
        /// The level of the huge leaf.
        level: Level,
    },
    /// No frame for a page table. Nothing was left half-built.
    OutOfMemory,
    /// A leaf may only be set to a present entry here.
    NotPresent,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MapError::NonCanonical(va) => write!(f, "virtual address {va:#x} is not canonical"),
            MapError::Unaligned(a) => write!(f, "address {a:#x} is not page aligned"),
            MapError::BadPhysAddr(pa) => write!(f, "physical address {pa:#x} is beyond 52 bits"),
            MapError::HugeFlag => f.write_str("leaf flags must not contain the huge (PS) bit"),
            MapError::BadRange { start, end } => {
                write!(f, "bad address range {start:#x}..{end:#x}")
            }
            MapError::AlreadyMapped { va, existing } => {
                write!(f, "{va:#x} is already mapped ({existing})")
            }
            MapError::HugePageInTheWay { va, level } => {
                write!(
                    f,
                    "{va:#x} is inside a huge page mapped at level {}",
                    level as u8
                )
            }
            MapError::OutOfMemory => f.write_str("out of memory for page tables"),
            MapError::NotPresent => f.write_str("a leaf can only be set to a present entry"),
        }
    }
}
