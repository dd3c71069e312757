//! The direct map: all physical memory at [`PAGE_OFFSET`], and the one
//! module of `mm` that reads or writes physical memory through it.
//!
//! The bootloader maps every physical frame read-write at
//! `PAGE_OFFSET + address` with 2 MiB pages, so a frame's bytes are
//! contiguous and page aligned in the kernel's address space. Everything
//! that turns a physical address into a pointer and dereferences it belongs
//! here, behind safe functions (Asterinas keeps its `unsafe` in OSTD the
//! same way): the rest of the kernel names frames by [`Pfn`] and asks.
//!
//! The frame helpers ([`zero_frame`], [`fill_frame`], [`copy_frame`],
//! [`touch_frame`]) write whole frames the caller owns: a frame it
//! allocated and has not given back. They take a [`Pfn`] until the frame
//! handle type exists, then a handle; in debug builds they check that the
//! frame is allocated at all. [`read_byte`] only reads.

use core::mem::MaybeUninit;

use mmcore::memblock::MemBlock;
use mmcore::{FrameKind, PageMeta, Pfn, PhysMem};

use super::frames;
use super::layout::{phys_to_virt, PAGE_OFFSET, PAGE_SIZE};
use vmcore::paging::ENTRIES;
use vmcore::TableMemory;

/// "The bytes of physical frame N" in the kernel: the direct map.
#[derive(Clone, Copy)]
pub struct DirectMap;

// SAFETY: the bootloader maps all physical memory at PAGE_OFFSET with
// read-write 2 MiB pages, so every frame's bytes are at `PAGE_OFFSET + addr`,
// contiguous and page aligned, and `ptr_to_pfn` inverts that; frames given to
// the buddy allocator are usable RAM that nothing else references.
unsafe impl PhysMem for DirectMap {
    fn frame_ptr(&self, pfn: Pfn) -> *mut u8 {
        phys_to_virt(pfn.addr()) as *mut u8
    }

    fn ptr_to_pfn(&self, ptr: *const u8) -> Pfn {
        Pfn::from_addr(ptr as u64 - PAGE_OFFSET)
    }
}

const FRAME: usize = PAGE_SIZE as usize;

/// Debug builds: `pfn` must be an allocated frame (not free, not reserved).
fn debug_check_owned(pfn: Pfn) {
    if cfg!(debug_assertions) {
        // A counted reference says so without the frames lock: only an
        // allocated user frame has one.
        if super::frames::refcount(pfn) > 0 {
            return;
        }
        let kind = super::frames::kind(pfn);
        debug_assert!(
            kind != FrameKind::Free && kind != FrameKind::Reserved,
            "direct-map write to frame {:#x}, which is {kind:?}",
            pfn.0
        );
    }
}

/// Fills the frame `pfn` (which the caller owns) with zeros.
pub fn zero_frame(pfn: Pfn) {
    fill_frame(pfn, 0);
}

/// Fills the frame `pfn` (which the caller owns) with `byte`.
pub fn fill_frame(pfn: Pfn, byte: u8) {
    debug_check_owned(pfn);
    // SAFETY: the direct map covers the frame with FRAME writable bytes;
    // the caller owns it, so nothing else reads or writes it meanwhile.
    unsafe { core::ptr::write_bytes(DirectMap.frame_ptr(pfn), byte, FRAME) };
}

/// Copies frame `src` into frame `dst` (which the caller owns).
pub fn copy_frame(dst: Pfn, src: Pfn) {
    debug_check_owned(dst);
    assert_ne!(dst, src, "copy_frame onto itself");
    // SAFETY: both frames are covered by the direct map; they are distinct
    // (checked), so the ranges do not overlap; `dst` is the caller's, and
    // `src` is only read.
    unsafe {
        core::ptr::copy_nonoverlapping(DirectMap.frame_ptr(src), DirectMap.frame_ptr(dst), FRAME)
    };
}

/// Copies `bytes` (at most a frame's worth) to the start of frame `pfn`
/// (which the caller owns).
pub fn write_frame(pfn: Pfn, bytes: &[u8]) {
    debug_check_owned(pfn);
    assert!(bytes.len() <= FRAME, "write_frame of more than a frame");
    // SAFETY: the frame is in the direct map and the caller's; at most
    // FRAME bytes are written from a live slice that cannot overlap it
    // (the caller owns the frame, so nothing else references its bytes).
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), DirectMap.frame_ptr(pfn), bytes.len())
    };
}

/// Copies the start of frame `pfn` into `out` (at most a frame's worth).
/// The frame is only read; its owner may be changing it (a user page),
/// which at worst gives a mixed copy, never undefined behaviour on our side
/// of the copy.
pub fn read_frame(pfn: Pfn, out: &mut [u8]) {
    assert!(out.len() <= FRAME, "read_frame of more than a frame");
    // SAFETY: the direct map covers the frame; the bytes are copied with a
    // raw copy into `out` (no reference to the frame's memory is made), and
    // `out` cannot overlap a frame of user memory.
    unsafe {
        core::ptr::copy_nonoverlapping(DirectMap.frame_ptr(pfn), out.as_mut_ptr(), out.len())
    };
}

/// Copies `bytes` into frame `pfn` at byte `offset` (the range must lie
/// inside the frame). The frame is a page-cache page the caller holds a
/// reference to; a process mapping it may be writing it at the same time,
/// which at worst mixes the bytes (as on Linux), never undefined behaviour
/// on the kernel's side: raw copies, no reference to the frame's memory.
pub fn write_frame_at(pfn: Pfn, offset: usize, bytes: &[u8]) {
    debug_check_owned(pfn);
    assert!(
        offset <= FRAME && bytes.len() <= FRAME - offset,
        "write_frame_at past the frame"
    );
    // SAFETY: the direct map covers the frame; `offset + len <= FRAME`
    // (asserted), and `bytes` is kernel memory that cannot overlap it.
    unsafe {
        core::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            DirectMap.frame_ptr(pfn).add(offset),
            bytes.len(),
        )
    };
}

/// Copies from frame `pfn` at byte `offset` into `out` (the range must lie
/// inside the frame); see [`read_frame`] for why a concurrent writer is
/// harmless.
pub fn read_frame_at(pfn: Pfn, offset: usize, out: &mut [u8]) {
    assert!(
        offset <= FRAME && out.len() <= FRAME - offset,
        "read_frame_at past the frame"
    );
    // SAFETY: the direct map covers the frame; `offset + len <= FRAME`
    // (asserted); raw copy into `out`, which cannot overlap the frame.
    unsafe {
        core::ptr::copy_nonoverlapping(
            DirectMap.frame_ptr(pfn).add(offset),
            out.as_mut_ptr(),
            out.len(),
        )
    };
}

/// Zeroes `len` bytes of frame `pfn` from byte `offset` (inside the frame).
pub fn zero_frame_at(pfn: Pfn, offset: usize, len: usize) {
    debug_check_owned(pfn);
    assert!(
        offset <= FRAME && len <= FRAME - offset,
        "zero_frame_at past the frame"
    );
    // SAFETY: the direct map covers the frame; `offset + len <= FRAME`.
    unsafe { core::ptr::write_bytes(DirectMap.frame_ptr(pfn).add(offset), 0, len) };
}

/// Writes a zero into the first byte of frame `pfn` (which the caller
/// owns), volatile: the access happens even though nothing reads it (makes
/// a hypervisor back the frame).
pub fn touch_frame(pfn: Pfn) {
    debug_check_owned(pfn);
    // SAFETY: the frame is in the direct map and the caller's.
    unsafe { DirectMap.frame_ptr(pfn).write_volatile(0) };
}

/// The byte at physical address `pa` (RAM the direct map covers).
pub fn read_byte(pa: u64) -> u8 {
    // SAFETY: the direct map covers every physical frame with readable
    // memory; a one-byte read of a `u8` has no alignment or validity
    // requirement, and the value is copied out (no reference is kept).
    unsafe { (phys_to_virt(pa) as *const u8).read_volatile() }
}

/// The per-frame metadata array for `frames` frames, in memory taken from
/// `memblock` for good: its frames are reserved there, so the buddy
/// allocator built from `memblock.free_ranges()` never hands them out, and
/// the array lives as long as the kernel.
pub fn alloc_meta_array(
    memblock: &mut MemBlock,
    frames: u64,
) -> Option<&'static mut [MaybeUninit<PageMeta>]> {
    let bytes = mmcore::frame::meta_bytes_for(frames) as u64;
    let phys = memblock.alloc(bytes, PAGE_SIZE)?;
    // SAFETY: memblock just reserved `bytes` at `phys` (page aligned) for
    // this caller alone, the direct map covers it, and a reservation is
    // never given to the buddy allocator, so the slice may be 'static and
    // unique. `MaybeUninit` needs no initialised contents.
    Some(unsafe {
        core::slice::from_raw_parts_mut(
            phys_to_virt(phys) as *mut MaybeUninit<PageMeta>,
            frames as usize,
        )
    })
}

/// A zero-filled array of `n` `T`s in memory taken from `memblock` for
/// good (like [`alloc_meta_array`]), for per-frame side data.
pub fn alloc_boot_array<T: Default + Copy>(
    memblock: &mut MemBlock,
    n: u64,
) -> Option<&'static mut [T]> {
    let bytes = (n as usize).checked_mul(core::mem::size_of::<T>())? as u64;
    let phys = memblock.alloc(bytes.max(1), PAGE_SIZE)?;
    let raw = phys_to_virt(phys) as *mut MaybeUninit<T>;
    // SAFETY: memblock just reserved `bytes` at `phys` (page aligned, so
    // aligned for `T`) for this caller alone; the direct map covers it and
    // the reservation never reaches the buddy allocator, so the slice may
    // be 'static and unique. Every element is written before the slice is
    // returned as initialised.
    let slice = unsafe { core::slice::from_raw_parts_mut(raw, n as usize) };
    for slot in slice.iter_mut() {
        slot.write(T::default());
    }
    // SAFETY: all `n` elements were initialised just above.
    Some(unsafe { core::slice::from_raw_parts_mut(raw.cast::<T>(), n as usize) })
}

/// The kernel's ELF file as the bootloader loaded it (for its symbols).
pub fn kernel_file() -> &'static [u8] {
    let (phys, len) = crate::boot::facts().kernel_file;
    // SAFETY: the bootloader loaded the kernel file at `phys..phys + len`
    // and those frames stay reserved (`frames::init` reserves them again,
    // so they never reach the frame allocator); the direct map covers them
    // and nothing writes to them.
    unsafe { core::slice::from_raw_parts(phys_to_virt(phys) as *const u8, len as usize) }
}

/// Table memory: the direct map and the frame allocator.
pub struct FrameTables;

// SAFETY: `alloc_table` returns order-0 frames that the buddy allocator
// zeroed and handed to us alone; `table` points into the direct map, which
// covers every physical frame with 8-byte aligned read-write memory; frames
// are given back only through `free_table`.
unsafe impl TableMemory for FrameTables {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        phys_to_virt(phys) as *mut [u64; ENTRIES]
    }

    fn alloc_table(&mut self) -> Option<u64> {
        if super::failslab::should_fail_page() {
            return None;
        }
        frames::alloc_zeroed(0, FrameKind::PageTable).map(|pfn| pfn.addr())
    }

    fn free_table(&mut self, phys: u64) {
        if let Err(e) = frames::free_page(Pfn::from_addr(phys), FrameKind::PageTable) {
            // vmcore only frees lower-half tables it created; anything else
            // is a bookkeeping bug worth stopping for.
            panic!("freeing page table {phys:#x}: {e}");
        }
    }
}

/// Table memory for code that already holds the frames lock (fork takes it
/// once for every table and reference count it touches).
pub struct LockedFrameTables<'a>(pub &'a mut frames::PhysicalMemory);

// SAFETY: as for `FrameTables`; the buddy allocator is reached through the
// lock guard the caller holds instead of taking the lock per call.
unsafe impl TableMemory for LockedFrameTables<'_> {
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES] {
        phys_to_virt(phys) as *mut [u64; ENTRIES]
    }

    fn alloc_table(&mut self) -> Option<u64> {
        if super::failslab::should_fail_page() {
            return None;
        }
        self.0
            .alloc_owned(0, FrameKind::PageTable, true)
            .map(|pfn| pfn.addr())
    }

    fn free_table(&mut self, phys: u64) {
        if let Err(e) = self.0.buddy.free(Pfn::from_addr(phys), 0) {
            panic!("freeing page table {phys:#x}: {e}");
        }
    }
}
