//! Ferrite's physical-memory core: the parts of the memory manager that are
//! pure bookkeeping and can therefore be tested on the host.
//!
//! - [`frame`]: page frame numbers, per-frame metadata ([`frame::PageMeta`]) and
//!   the [`frame::PhysMem`] abstraction ("give me the bytes of frame N").
//! - [`memblock`]: the early boot allocator that runs before the buddy
//!   allocator exists and hands its leftover memory over to it.
//! - [`buddy`]: the binary buddy frame allocator (orders 0..=[`frame::MAX_ORDER`]).
//! - [`pageref`]: atomic reference counts of user frames (get/put without a lock).
//! - [`watermark`]: the zone watermarks (min, low, high) as Linux computes them.
//! - [`percpu`]: per-CPU object magazines and order-0 page lists in front
//!   of the slab heap and the buddy allocator.
//! - [`slab`]: a SLUB-like object allocator on top of the buddy allocator,
//!   with kmalloc size classes; the kernel's `GlobalAlloc` backend.
//!
//! Nothing here needs `alloc`; the kernel provides the metadata array and the
//! direct map, the host tests provide a `frame::host::Arena` (feature `host`).
//!
//! # Putting it together
//!
//! The boot allocator sizes and places the metadata array, the buddy
//! allocator takes over the remaining memory, and the slab heap borrows the
//! buddy allocator and the frame mapping on every call, so both can live
//! behind one lock:
//!
//! ```
//! use core::alloc::Layout;
//! use mmcore::frame::{host::Arena, meta_bytes_for, Pfn, PAGE_SIZE};
//! use mmcore::memblock::MemBlock;
//! use mmcore::{BuddyAllocator, SlabHeap};
//!
//! // Stand-in for RAM [4 MiB, 8 MiB) (the kernel uses its direct map).
//! let mem = Arena::new(Pfn(1024), 1024);
//! let mut boot = MemBlock::new();
//! boot.add_usable(mem.base_pfn().addr(), mem.end_pfn().addr()).unwrap();
//! let (lo, hi) = boot.pfn_span().unwrap();
//! let meta_phys = boot.alloc(meta_bytes_for(hi - lo) as u64, PAGE_SIZE as u64).unwrap();
//! # let _ = meta_phys; // the kernel turns this into `&'static mut [PageMeta]`
//! let mut meta = mem.new_meta(); // ...via frame::init_meta_array
//!
//! let mut buddy = BuddyAllocator::new(&mut meta, lo);
//! for (start, end) in boot.free_frames() {
//!     buddy.add_free_range(start, end);
//! }
//! let mut heap = SlabHeap::new();
//!
//! let layout = Layout::from_size_align(100, 8).unwrap();
//! let p = heap.alloc(layout, &mut buddy, &mem).unwrap();
//! heap.dealloc(p, layout, &mut buddy, &mem).unwrap();
//! // A second free is reported, not silently accepted.
//! let err = heap.dealloc(p, layout, &mut buddy, &mem).unwrap_err();
//! assert!(err.to_string().contains("double free"));
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "host"))]
extern crate std;

pub mod buddy;
pub mod frame;
mod list;
pub mod lruadd;
pub mod memblock;
pub mod pageref;
pub mod percpu;
pub mod slab;
pub mod watermark;

pub use buddy::{BuddyAllocator, BuddyStats, FreeError};
pub use frame::{FrameKind, PageMeta, Pfn, PhysMem, MAX_ORDER, PAGE_SIZE};
pub use slab::{CacheId, CacheInfo, SlabError, SlabHeap};
