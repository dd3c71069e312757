//! Swap space as pure logic: slots, their counts, and where pages go.
//!
//! - [`slots`]: a swap device's slot allocator with per-slot reference
//!   counts ([`SlotMap`], Linux's `swap_map`). Slots are handed out in
//!   clusters of [`CLUSTER_SLOTS`] so the neighbouring pages of a region
//!   land in neighbouring slots (Linux's per-CPU swap clusters), and a
//!   readahead window names the in-use neighbours of a slot.
//! - [`device`]: what the kernel asks of a swap backend ([`SwapDevice`]):
//!   write, read and discard one page per slot, write and read runs of
//!   neighbouring slots (a disk's one request), with typed errors.
//! - [`zram`]: compressed RAM ([`Zram`]), a [`SwapDevice`] that keeps each
//!   page LZ4-compressed in memory (raw when it does not compress, a single
//!   word when every word of it is the same), with Linux's `mm_stat` figures.
//!
//! How the kernel uses them, one device:
//!
//! ```
//! use swapcore::{ClusterCursor, SlotMap, SwapDevice, Zram, PAGE_SIZE};
//!
//! let mut dev = Zram::try_new("zram0", 1024).unwrap();
//! let mut slots = SlotMap::try_new(dev.pages()).unwrap();
//! let mut stream = ClusterCursor::new(); // e.g. one per CPU
//!
//! // Swap-out: a slot (count 1, for the one PTE), then the data.
//! let page = [7u8; PAGE_SIZE];
//! let slot = slots.alloc_in(&mut stream).expect("swap full");
//! dev.write_page(slot, &page).unwrap(); // on error: slots.put(slot), keep the page
//!
//! // Fork copies the swap PTE: one more reference.
//! assert!(slots.dup(slot)); // false: count ceiling, fork fails with ENOMEM
//!
//! // Swap-in: read the page (and maybe its in-use neighbours).
//! let mut back = [0u8; PAGE_SIZE];
//! dev.read_page(slot, &mut back).unwrap();
//! assert_eq!(back, page);
//! let _neighbours: Vec<u64> = slots.readahead_window(slot, 8).collect();
//!
//! // Each PTE that goes away drops its reference; the last frees the slot.
//! assert_eq!(slots.put(slot), 1);
//! if slots.put(slot) == 0 {
//!     dev.discard(slot);
//! }
//! assert_eq!((slots.used(), dev.mem_used()), (0, 0));
//! ```
//!
//! Every allocation is fallible (construction and page writes report
//! [`NoMemory`]); allocating, duplicating and releasing a slot never
//! allocates. The kernel supplies the locking: nothing here is shared.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod device;
pub mod slots;
pub mod zram;

#[cfg(test)]
mod model_tests;

pub use device::{SwapDevice, SwapIoError};
pub use slots::{ClusterCursor, SlotMap, CLUSTER_SLOTS, MAX_COUNT};
pub use zram::{Zram, ZramStats};

/// Bytes in a page (one swap slot holds one page).
pub const PAGE_SIZE: usize = mmcore::PAGE_SIZE;

/// One page of data, as a swap device reads and writes it.
pub type Page = [u8; PAGE_SIZE];

/// A fallible allocation failed (or the requested size cannot be
/// represented): the caller reports `ENOMEM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

impl core::fmt::Display for NoMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("out of memory")
    }
}
