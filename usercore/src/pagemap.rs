//! `/proc/PID/pagemap` entries: one 64-bit little-endian word per virtual
//! page, at file offset `page number * 8` (Linux's
//! `Documentation/admin-guide/mm/pagemap.rst`):
//!
//! ```text
//! bits 0-54   page frame number if present; if swapped: bits 0-4 the
//!             swap type, bits 5-54 the swap offset
//! bit  55     pte is soft-dirty
//! bit  56     page exclusively mapped (mapped once)
//! bit  57     pte is uffd-write-protected (never here)
//! bits 58-60  zero
//! bit  61     page is file-page or shared-anon
//! bit  62     page swapped
//! bit  63     page present
//! ```

/// Bits 0-54: the frame number (or swap type and offset).
pub const PFRAME_MASK: u64 = (1 << 55) - 1;
/// Bit 55: soft-dirty (written since the last `clear_refs`, or a new region).
pub const SOFT_DIRTY: u64 = 1 << 55;
/// Bit 56: the page is mapped exactly once.
pub const MMAP_EXCLUSIVE: u64 = 1 << 56;
/// Bit 61: a file page or shared anonymous memory.
pub const FILE: u64 = 1 << 61;
/// Bit 62: the page is in swap.
pub const SWAP: u64 = 1 << 62;
/// Bit 63: the page is in memory.
pub const PRESENT: u64 = 1 << 63;
/// Bits of the swap type below the offset (Linux's `MAX_SWAPFILES_SHIFT`).
pub const SWAP_TYPE_BITS: u32 = 5;
/// Bytes per entry.
pub const ENTRY_BYTES: u64 = 8;

/// What one page is, as the entry describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Nothing mapped; `soft_dirty` if inside a region (Linux marks every
    /// page of a new region soft-dirty).
    None {
        /// Bit 55.
        soft_dirty: bool,
    },
    /// In memory at frame `pfn` (0 when the reader may not see frame
    /// numbers: Linux shows them to `CAP_SYS_ADMIN` only).
    Present {
        /// Bits 0-54.
        pfn: u64,
        /// Bit 55.
        soft_dirty: bool,
        /// Mapped exactly once (`page_mapcount == 1`).
        exclusive: bool,
        /// A file page or shared anonymous memory (not `PageAnon`).
        file: bool,
    },
    /// In swap: `ty` (0..32) and `offset` (both 0 for a reader who may
    /// not see them, as Linux).
    Swapped {
        /// Bits 0-4: the swap area.
        ty: u64,
        /// Bits 5-54: the slot in it.
        offset: u64,
        /// Bit 55.
        soft_dirty: bool,
    },
}

/// The entry for `page`.
pub const fn encode(page: Page) -> u64 {
    match page {
        Page::None { soft_dirty } => {
            if soft_dirty {
                SOFT_DIRTY
            } else {
                0
            }
        }
        Page::Present {
            pfn,
            soft_dirty,
            exclusive,
            file,
        } => {
            (pfn & PFRAME_MASK)
                | PRESENT
                | if soft_dirty { SOFT_DIRTY } else { 0 }
                | if exclusive { MMAP_EXCLUSIVE } else { 0 }
                | if file { FILE } else { 0 }
        }
        Page::Swapped {
            ty,
            offset,
            soft_dirty,
        } => {
            ((ty | offset << SWAP_TYPE_BITS) & PFRAME_MASK)
                | SWAP
                | if soft_dirty { SOFT_DIRTY } else { 0 }
        }
    }
}

/// The page an entry describes (bits Linux leaves zero are ignored).
pub const fn decode(entry: u64) -> Page {
    let soft_dirty = entry & SOFT_DIRTY != 0;
    if entry & PRESENT != 0 {
        Page::Present {
            pfn: entry & PFRAME_MASK,
            soft_dirty,
            exclusive: entry & MMAP_EXCLUSIVE != 0,
            file: entry & FILE != 0,
        }
    } else if entry & SWAP != 0 {
        let frame = entry & PFRAME_MASK;
        Page::Swapped {
            ty: frame & ((1 << SWAP_TYPE_BITS) - 1),
            offset: frame >> SWAP_TYPE_BITS,
            soft_dirty,
        }
    } else {
        Page::None { soft_dirty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_bit_positions() {
        // A present, exclusive anonymous page at frame 0x1234 (soft-dirty
        // as every page of a fresh region): what Linux gives root.
        let e = encode(Page::Present {
            pfn: 0x1234,
            soft_dirty: true,
            exclusive: true,
            file: false,
        });
        assert_eq!(e, 0x8180_0000_0000_1234);
        // A file page mapped twice.
        let e = encode(Page::Present {
            pfn: 7,
            soft_dirty: false,
            exclusive: false,
            file: true,
        });
        assert_eq!(e, (1 << 63) | (1 << 61) | 7);
        // Swap type 1, offset 0x10: offset above the 5 type bits.
        let e = encode(Page::Swapped {
            ty: 1,
            offset: 0x10,
            soft_dirty: true,
        });
        assert_eq!(e, (1 << 62) | (1 << 55) | (0x10 << 5) | 1);
        assert_eq!(encode(Page::None { soft_dirty: false }), 0);
        assert_eq!(encode(Page::None { soft_dirty: true }), 1 << 55);
    }

    #[test]
    fn round_trip() {
        for page in [
            Page::None { soft_dirty: true },
            Page::Present {
                pfn: PFRAME_MASK,
                soft_dirty: false,
                exclusive: true,
                file: true,
            },
            Page::Swapped {
                ty: 31,
                offset: (1 << 50) - 1,
                soft_dirty: false,
            },
        ] {
            assert_eq!(decode(encode(page)), page);
        }
    }

    #[test]
    fn frame_numbers_are_cut_to_55_bits() {
        let e = encode(Page::Present {
            pfn: u64::MAX,
            soft_dirty: false,
            exclusive: false,
            file: false,
        });
        assert_eq!(e, PRESENT | PFRAME_MASK);
    }
}
