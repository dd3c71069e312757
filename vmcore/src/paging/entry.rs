//! Page-table entries: [`Pte`], its [`PteFlags`], and the tree's [`Level`]s.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign, Not};

/// Number of entries in one page table.
pub const ENTRIES: usize = 512;

/// Physical-address bits of an entry (bits 12..51).
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Flag bits of a page-table entry: everything outside [`ADDR_MASK`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PteFlags(pub(super) u64);

impl PteFlags {
    /// No flags.
    pub const EMPTY: PteFlags = PteFlags(0);
    /// P: the entry is valid.
    pub const PRESENT: PteFlags = PteFlags(1 << 0);
    /// R/W: writes allowed (at every level on the way down).
    pub const WRITABLE: PteFlags = PteFlags(1 << 1);
    /// U/S: user mode may access (at every level on the way down).
    pub const USER: PteFlags = PteFlags(1 << 2);
    /// PWT: write-through caching.
    pub const WRITE_THROUGH: PteFlags = PteFlags(1 << 3);
    /// PCD: caching disabled (MMIO).
    pub const NO_CACHE: PteFlags = PteFlags(1 << 4);
    /// A: set by the MMU when the entry is used for a translation.
    pub const ACCESSED: PteFlags = PteFlags(1 << 5);
    /// D: set by the MMU on the first write through a leaf.
    pub const DIRTY: PteFlags = PteFlags(1 << 6);
    /// PS: at levels 3 and 2, this entry is a 1 GiB / 2 MiB leaf. (At level 1
    /// the same bit is PAT; this module never sets it there.)
    pub const HUGE: PteFlags = PteFlags(1 << 7);
    /// G: the translation survives CR3 reloads (kernel mappings).
    pub const GLOBAL: PteFlags = PteFlags(1 << 8);
    /// Software bit 9 (ignored by the MMU). **COW: this page is shared
    /// copy-on-write.** Set on leaves of private regions whose frame may be
    /// shared (after fork, the zero page, a page-cache page): a write must
    /// go through the fault handler, which copies or reuses the frame, and
    /// `mprotect` must not simply make such a leaf writable.
    pub const COW: PteFlags = PteFlags(1 << 9);
    /// XD: instruction fetches through this entry fault.
    pub const NO_EXECUTE: PteFlags = PteFlags(1 << 63);

    /// Bits the MMU sets by itself on a live entry.
    pub(super) const HARDWARE_SET: PteFlags = PteFlags(Self::ACCESSED.0 | Self::DIRTY.0);

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Flags from raw bits; address bits are dropped.
    pub const fn from_bits_truncate(bits: u64) -> PteFlags {
        PteFlags(bits & !ADDR_MASK)
    }

    /// True if every flag in `other` is set.
    pub const fn contains(self, other: PteFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag in `other` is set.
    pub const fn intersects(self, other: PteFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` with `other` added.
    pub const fn with(self, other: PteFlags) -> PteFlags {
        PteFlags(self.0 | other.0)
    }

    /// `self` with `other` removed.
    pub const fn without(self, other: PteFlags) -> PteFlags {
        PteFlags(self.0 & !other.0)
    }
}

impl BitOr for PteFlags {
    type Output = PteFlags;
    fn bitor(self, rhs: PteFlags) -> PteFlags {
        PteFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for PteFlags {
    fn bitor_assign(&mut self, rhs: PteFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for PteFlags {
    type Output = PteFlags;
    fn bitand(self, rhs: PteFlags) -> PteFlags {
        PteFlags(self.0 & rhs.0)
    }
}

impl Not for PteFlags {
    type Output = PteFlags;
    fn not(self) -> PteFlags {
        PteFlags(!self.0 & !ADDR_MASK)
    }
}

impl fmt::Display for PteFlags {
    /// Space-separated short names, e.g. `P W U A D NX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(PteFlags, &str); 11] = [
            (PteFlags::PRESENT, "P"),
            (PteFlags::WRITABLE, "W"),
            (PteFlags::USER, "U"),
            (PteFlags::WRITE_THROUGH, "PWT"),
            (PteFlags::NO_CACHE, "PCD"),
            (PteFlags::ACCESSED, "A"),
            (PteFlags::DIRTY, "D"),
            (PteFlags::HUGE, "PS"),
            (PteFlags::GLOBAL, "G"),
            (PteFlags::COW, "COW"),
            (PteFlags::NO_EXECUTE, "NX"),
        ];
        let mut rest = *self;
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
                rest = rest.without(flag);
            }
        }
        if rest.0 != 0 {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{:#x}", rest.0)?;
        } else if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PteFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PteFlags({self})")
    }
}

/// A page-table entry at any level.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// The all-zero (not present) entry.
    pub const EMPTY: Pte = Pte(0);

    /// An entry pointing at physical address `pa` (must be page aligned and
    /// below 2^52; other bits are masked off) with `flags`.
    pub const fn new(pa: u64, flags: PteFlags) -> Pte {
        Pte((pa & ADDR_MASK) | flags.0)
    }

    /// The physical address bits (a 4 KiB frame or the next table; for a
    /// huge leaf, also includes the PAT bit 12, see [`Pte::huge_addr`]).
    pub const fn addr(self) -> u64 {
        self.0 & ADDR_MASK
    }

    /// The physical base of a huge leaf at `level` (bit 12 is PAT there).
    pub const fn huge_addr(self, level: Level) -> u64 {
        self.0 & ADDR_MASK & !(level.entry_size() - 1)
    }

    /// The flag bits.
    pub const fn flags(self) -> PteFlags {
        PteFlags(self.0 & !ADDR_MASK)
    }

    /// True if `flags` are all set.
    pub const fn has(self, flags: PteFlags) -> bool {
        self.flags().contains(flags)
    }

    /// P bit.
    pub const fn is_present(self) -> bool {
        self.has(PteFlags::PRESENT)
    }

    /// PS bit: a huge leaf when found at level 3 or 2.
    pub const fn is_huge(self) -> bool {
        self.has(PteFlags::HUGE)
    }

    /// R/W bit.
    pub const fn is_writable(self) -> bool {
        self.has(PteFlags::WRITABLE)
    }

    /// The [`PteFlags::COW`] software bit.
    pub const fn is_cow(self) -> bool {
        self.has(PteFlags::COW)
    }

    /// `self` with `flags` added.
    pub const fn with(self, flags: PteFlags) -> Pte {
        Pte(self.0 | flags.0)
    }

    /// `self` with `flags` removed.
    pub const fn without(self, flags: PteFlags) -> Pte {
        Pte(self.0 & !flags.0)
    }
}

impl fmt::Display for Pte {
    /// `0x0000000000123000 P W U A D NX`, or `(none)` for an empty entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("(none)");
        }
        write!(f, "{:#018x} {}", self.addr(), self.flags())
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({self})")
    }
}

/// A level of the tree, numbered as the page-size it maps: level 1 entries
/// map 4 KiB, level 2 2 MiB, level 3 1 GiB, level 4 512 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table (PT): 4 KiB leaves.
    Pt = 1,
    /// Page directory (PD): tables or 2 MiB leaves.
    Pd = 2,
    /// Page-directory-pointer table (PDPT): tables or 1 GiB leaves.
    Pdpt = 3,
    /// The root (PML4).
    Pml4 = 4,
}

impl Level {
    /// Bit position of this level's index in a virtual address.
    pub const fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }

    /// Bytes of address space one entry at this level covers.
    pub const fn entry_size(self) -> u64 {
        1 << self.shift()
    }

    /// This level's table index for `va`.
    pub const fn index(self, va: u64) -> usize {
        ((va >> self.shift()) & 0x1ff) as usize
    }

    /// The level below, or `None` for [`Level::Pt`].
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pml4 => Some(Level::Pdpt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pd => Some(Level::Pt),
            Level::Pt => None,
        }
    }

    /// The Intel name of the table at this level.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Pml4 => "PML4",
            Level::Pdpt => "PDPT",
            Level::Pd => "PD",
            Level::Pt => "PT",
        }
    }

    /// True if an entry at this level with PS set is a leaf.
    pub(super) const fn may_be_huge(self) -> bool {
        matches!(self, Level::Pdpt | Level::Pd)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
