//! User address ranges, validated once.
//!
//! Every memory system call gets an address and a length from user space.
//! Adding them by hand is how kernels go wrong: `addr + len` wraps, a page
//! rounding overflows, `[0, 0)` reaches a walker as "to the top", a range
//! ends in the kernel half, or a mapping lands on page 0 where a null
//! pointer would find it. [`UserRange`] is the one place those checks live:
//! a value of it is page aligned, `start <= end <= USER_END`, and was built
//! with checked arithmetic. [`UserRange::placement`] adds what a *new*
//! mapping needs: not empty, and at or above the minimum mmap address
//! (Linux's `mmap_min_addr`).

use core::fmt;

use crate::{is_page_aligned, page_up, USER_END};

/// A page-aligned range `[start, end)` inside user space. Possibly empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserRange {
    start: u64,
    end: u64,
}

/// Why a user range was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RangeError {
    /// The address is not a multiple of the page size.
    Unaligned,
    /// Rounding the length up to pages, or adding it to the address,
    /// overflows 64 bits.
    Overflow,
    /// The range reaches past the user half of the address space.
    OutsideUser,
    /// The range is empty where a non-empty one is required.
    Empty,
    /// A new mapping would start below the minimum mmap address.
    BelowMinimum,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeError::Unaligned => "address not page aligned",
            RangeError::Overflow => "address + length overflows",
            RangeError::OutsideUser => "range reaches past user space",
            RangeError::Empty => "empty range",
            RangeError::BelowMinimum => "below the minimum mmap address",
        })
    }
}

impl UserRange {
    /// `[addr, addr + len)` with `len` rounded up to whole pages, as
    /// `munmap`, `mprotect` and `madvise` read their arguments. `addr` must
    /// be page aligned; the result may be empty (`len == 0`).
    pub const fn new(addr: u64, len: u64) -> Result<UserRange, RangeError> {
        if !is_page_aligned(addr) {
            return Err(RangeError::Unaligned);
        }
        let Some(len) = page_up(len) else {
            return Err(RangeError::Overflow);
        };
        let Some(end) = addr.checked_add(len) else {
            return Err(RangeError::Overflow);
        };
        if end > USER_END {
            return Err(RangeError::OutsideUser);
        }
        Ok(UserRange { start: addr, end })
    }

    /// Like [`UserRange::new`], for where a new mapping goes (`mmap` with
    /// `MAP_FIXED`, `mremap`'s target): also not empty, and starting at or
    /// above `min` (the minimum mmap address).
    pub const fn placement(addr: u64, len: u64, min: u64) -> Result<UserRange, RangeError> {
        let range = match UserRange::new(addr, len) {
            Ok(r) => r,
            Err(e) => return Err(e),
        };
        if range.is_empty() {
            return Err(RangeError::Empty);
        }
        if range.start < min {
            return Err(RangeError::BelowMinimum);
        }
        Ok(range)
    }

    /// First address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// One past the last address.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// Length in bytes (a multiple of the page size).
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the range holds no page.
    pub const fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// Rounds a user-supplied length up to whole pages, refusing overflow and
/// anything longer than user space (no range could hold it).
pub const fn user_len(len: u64) -> Result<u64, RangeError> {
    match page_up(len) {
        Some(l) if l <= USER_END => Ok(l),
        Some(_) => Err(RangeError::OutsideUser),
        None => Err(RangeError::Overflow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PAGE_SIZE;

    const MIN: u64 = 0x1_0000;

    #[test]
    fn rounds_and_checks() {
        let r = UserRange::new(0x1000, 1).unwrap();
        assert_eq!((r.start(), r.end(), r.len()), (0x1000, 0x2000, PAGE_SIZE));
        assert!(UserRange::new(0, 0).unwrap().is_empty());
        assert_eq!(UserRange::new(0x1001, 1), Err(RangeError::Unaligned));
        assert_eq!(UserRange::new(0x1000, u64::MAX), Err(RangeError::Overflow));
        assert_eq!(
            UserRange::new(0x1000, u64::MAX - 4095),
            Err(RangeError::Overflow)
        );
        assert_eq!(
            UserRange::new(u64::MAX - 4095, 4096),
            Err(RangeError::Overflow)
        );
        assert_eq!(
            UserRange::new(USER_END - PAGE_SIZE, 2 * PAGE_SIZE),
            Err(RangeError::OutsideUser)
        );
        assert_eq!(
            UserRange::new(USER_END, 0),
            Ok(UserRange {
                start: USER_END,
                end: USER_END
            })
        );
        assert_eq!(UserRange::new(USER_END, 1), Err(RangeError::OutsideUser));
        let top = UserRange::new(USER_END - PAGE_SIZE, 1).unwrap();
        assert_eq!(top.end(), USER_END);
    }

    #[test]
    fn placement_needs_room_above_the_minimum() {
        assert_eq!(
            UserRange::placement(0, 4096, MIN),
            Err(RangeError::BelowMinimum)
        );
        assert_eq!(
            UserRange::placement(0x1000, 4096, MIN),
            Err(RangeError::BelowMinimum)
        );
        assert_eq!(UserRange::placement(MIN, 0, MIN), Err(RangeError::Empty));
        assert!(UserRange::placement(MIN, 1, MIN).is_ok());
        assert_eq!(
            UserRange::placement(u64::MAX - 4095, 4096, MIN),
            Err(RangeError::Overflow)
        );
    }

    #[test]
    fn lengths() {
        assert_eq!(user_len(0), Ok(0));
        assert_eq!(user_len(1), Ok(PAGE_SIZE));
        assert_eq!(user_len(u64::MAX), Err(RangeError::Overflow));
        assert_eq!(user_len(USER_END + 1), Err(RangeError::OutsideUser));
    }

    /// Against plain 128-bit arithmetic: every accepted range is what the
    /// wide computation gives, and every refused one is out of range there.
    #[test]
    fn agrees_with_wide_arithmetic() {
        let interesting = [
            0u64,
            1,
            4095,
            4096,
            4097,
            MIN,
            USER_END - 4096,
            USER_END,
            USER_END + 4096,
            1 << 63,
            u64::MAX - 8191,
            u64::MAX - 4095,
            u64::MAX,
        ];
        for &addr in &interesting {
            for &len in &interesting {
                let wide_len = (len as u128).div_ceil(4096) * 4096;
                let wide_end = addr as u128 + wide_len;
                let ok = addr % 4096 == 0 && wide_end <= USER_END as u128;
                match UserRange::new(addr, len) {
                    Ok(r) => {
                        assert!(ok, "{addr:#x}+{len:#x} accepted");
                        assert_eq!(r.end() as u128, wide_end);
                    }
                    Err(_) => assert!(!ok, "{addr:#x}+{len:#x} refused"),
                }
            }
        }
    }
}
