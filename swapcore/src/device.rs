//! What the kernel asks of a swap backend.
//!
//! A swap device is an array of page-sized slots. The kernel decides which
//! slot a page goes to (with a [`SlotMap`](crate::SlotMap) of the device's
//! size) and then writes, reads and finally discards it; the device only
//! stores. Compressed RAM ([`Zram`](crate::Zram)) and a disk are the two
//! backends.

use core::fmt;

use crate::Page;

/// Why a swap device could not read or write a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapIoError {
    /// The device needs memory it could not get (compressed RAM storing a
    /// page, or over its memory limit). The page stays where it was: the
    /// kernel keeps it resident and may try another device.
    NoMemory,
    /// The device failed: a disk error, or stored data that no longer
    /// decodes. The slot's contents are not to be trusted.
    Io,
    /// The slot is not below [`SwapDevice::pages`]: a kernel bug, refused
    /// rather than acted on.
    OutOfRange,
}

impl fmt::Display for SwapIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SwapIoError::NoMemory => "out of memory",
            SwapIoError::Io => "I/O error",
            SwapIoError::OutOfRange => "slot out of range",
        })
    }
}

/// A swap backend: `pages()` slots of one page each.
///
/// Slots are independent: writing one never disturbs another. A slot that
/// was never written (or was discarded) reads as zeros on compressed RAM; on
/// a disk it reads whatever is there, so the kernel only reads slots it
/// wrote. The trait is object-safe so the kernel can hold devices of both
/// kinds in one table (`Box<dyn SwapDevice>`).
pub trait SwapDevice {
    /// The device's name, as `swapon -s` lists it (e.g. `zram0`, `vda`).
    fn name(&self) -> &str;

    /// Number of page slots; valid slots are `0..pages()`.
    fn pages(&self) -> u64;

    /// Stores `page` in `slot`, replacing what the slot held. On an error
    /// the slot holds what it held before (compressed RAM) or is undefined
    /// (a disk that failed mid-write); either way the kernel must not count
    /// the page as written.
    fn write_page(&mut self, slot: u64, page: &Page) -> Result<(), SwapIoError>;

    /// Reads `slot` into `page`. On an error `page`'s contents are
    /// unspecified.
    fn read_page(&mut self, slot: u64, page: &mut Page) -> Result<(), SwapIoError>;

    /// Stores `pages` in the run of slots from `first` on (page `i` in
    /// slot `first + i`): what a disk does in one request, so swapping out a
    /// batch costs one request instead of one per page. A run that does not
    /// lie wholly below [`pages`](SwapDevice::pages) is refused with
    /// [`SwapIoError::OutOfRange`] before any slot is touched. On any other
    /// error, each slot of the run holds either what it held before or its
    /// new page, and the kernel must count none of the run as written.
    ///
    /// The default writes page by page (what compressed RAM does anyway).
    fn write_run(&mut self, first: u64, pages: &[Page]) -> Result<(), SwapIoError> {
        run_in_range(first, pages.len(), self.pages())?;
        for (slot, page) in (first..).zip(pages) {
            self.write_page(slot, page)?;
        }
        Ok(())
    }

    /// Reads the run of slots from `first` on into `pages` (slot
    /// `first + i` into page `i`): swap-in readahead's one request. Out of
    /// range as for [`write_run`](SwapDevice::write_run); on any other
    /// error the contents of `pages` are unspecified.
    ///
    /// The default reads page by page.
    fn read_run(&mut self, first: u64, pages: &mut [Page]) -> Result<(), SwapIoError> {
        run_in_range(first, pages.len(), self.pages())?;
        for (slot, page) in (first..).zip(pages) {
            self.read_page(slot, page)?;
        }
        Ok(())
    }

    /// The slot is no longer used (its last reference went away): the
    /// device may forget its contents. Compressed RAM frees the page's
    /// memory; a disk may do nothing (or TRIM). Out-of-range slots are
    /// ignored.
    fn discard(&mut self, slot: u64);

    /// Bytes of RAM the device holds for stored pages (compressed RAM's
    /// `mem_used_total`); 0 for a disk. Memory the kernel should count as
    /// used by swap itself.
    fn mem_used(&self) -> u64 {
        0
    }
}

/// Whether the run of `len` slots from `first` lies inside a device of
/// `pages` slots.
pub fn run_in_range(first: u64, len: usize, pages: u64) -> Result<(), SwapIoError> {
    match first.checked_add(len as u64) {
        Some(end) if end <= pages => Ok(()),
        _ => Err(SwapIoError::OutOfRange),
    }
}
