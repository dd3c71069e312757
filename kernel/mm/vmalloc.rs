//! The vmalloc area: virtually contiguous kernel memory from scattered
//! frames, each allocation followed by an unmapped guard gap. Kernel stacks
//! live here, so running off the bottom of one faults on its guard page
//! instead of corrupting its neighbour. Device memory (a PCI BAR) is mapped
//! here too, uncached ([`ioremap`], like Linux's): the direct map covers RAM.

use alloc::vec::Vec;
use mmcore::{FrameKind, Pfn};
use vmcore::PteFlags;

use super::layout::{PAGE_SIZE, VMALLOC_END, VMALLOC_START};
use super::{frames, pgtable};
use crate::arch::sync::IrqMutex;

/// Virtual ranges not in use, `(start, end)` sorted by start (first fit,
/// merged on free).
///
/// Taking a range only shrinks or removes an entry; giving one back adds
/// at most one. There are never more free ranges than areas in use plus
/// one, so keeping the capacity at `areas + 2` (grown fallibly when an
/// area is made) means freeing never allocates and never fails.
struct Area {
    free: Vec<(u64, u64)>,
    areas: usize,
    used_pages: u64,
}

static AREA: IrqMutex<Option<Area>> = IrqMutex::ranked(None, crate::arch::sync::rank::AREA);

/// Statistics of the vmalloc-area lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    AREA.stat()
}

/// Free-range entries reserved at boot: room for as many areas as the
/// scheduler reserves process slots for (one kernel stack each), so the
/// list does not grow, and keep its high-water size, when many processes
/// come and go at once (it still grows, fallibly, beyond that).
const BOOT_ROOM: usize = 1024 + 2;

pub fn init() {
    let mut free = Vec::with_capacity(BOOT_ROOM);
    free.push((VMALLOC_START, VMALLOC_END));
    *AREA.lock() = Some(Area {
        free,
        areas: 0,
        used_pages: 0,
    });
}

/// A mapping in the vmalloc area: `pages` mapped pages, with one unmapped
/// guard page below them.
#[derive(Debug)]
pub struct VmArea {
    /// The guard page (lowest address of the reservation).
    pub guard: u64,
    /// First mapped byte.
    pub start: u64,
    pub pages: u64,
}

impl VmArea {
    pub fn end(&self) -> u64 {
        self.start + self.pages * PAGE_SIZE
    }
}

#[derive(Debug)]
pub enum VmallocError {
    NoAddressSpace,
    OutOfMemory,
}

fn reserve(bytes: u64) -> Result<u64, VmallocError> {
    let mut guard = AREA.lock();
    let area = guard.as_mut().ok_or(VmallocError::NoAddressSpace)?;
    // Room for this area's own release later (see `Area`).
    let want = area.areas + 2;
    if area.free.capacity() < want {
        area.free
            .try_reserve(want - area.free.len())
            .map_err(|_| VmallocError::OutOfMemory)?;
    }
    let i = area
        .free
        .iter()
        .position(|&(s, e)| e - s >= bytes)
        .ok_or(VmallocError::NoAddressSpace)?;
    let (start, end) = area.free[i];
    if end - start > bytes {
        area.free[i].0 = start + bytes;
    } else {
        area.free.remove(i);
    }
    area.areas += 1;
    Ok(start)
}

fn release(start: u64, bytes: u64) {
    let mut guard = AREA.lock();
    let area = guard.as_mut().expect("vmalloc::init ran");
    let free = &mut area.free;
    let end = start + bytes;
    let i = free.partition_point(|&(s, _)| s < start);
    let joins_prev = i > 0 && free[i - 1].1 == start;
    let joins_next = i < free.len() && free[i].0 == end;
    match (joins_prev, joins_next) {
        (true, true) => {
            free[i - 1].1 = free[i].1;
            free.remove(i);
        }
        (true, false) => free[i - 1].1 = end,
        (false, true) => free[i].0 = start,
        // Capacity was kept for this (see `Area`): no allocation.
        (false, false) => free.insert(i, (start, end)),
    }
    area.areas -= 1;
}

/// Reserves room for `pages` pages and the guard page below them.
fn reserve_area(pages: u64) -> Result<VmArea, VmallocError> {
    let base = reserve((pages + 1) * PAGE_SIZE)?;
    Ok(VmArea {
        guard: base,
        start: base + PAGE_SIZE,
        pages,
    })
}

/// Gives back what [`reserve_area`] reserved for `area`.
fn release_area(area: &VmArea) {
    release(area.guard, (area.pages + 1) * PAGE_SIZE);
}

/// Maps `pages` fresh zeroed frames, read-write and non-executable, below
/// which the guard page stays unmapped.
pub fn alloc(pages: u64) -> Result<VmArea, VmallocError> {
    let area = reserve_area(pages)?;
    for i in 0..pages {
        let va = area.start + i * PAGE_SIZE;
        let mapped = frames::alloc_zeroed(0, FrameKind::Kernel).and_then(|pfn| {
            let flags = PteFlags::WRITABLE | PteFlags::NO_EXECUTE | PteFlags::GLOBAL;
            pgtable::with_kernel(|t, m| t.map(m, va, pfn.addr(), flags))
                .map_err(|_| frames::free_page(pfn, FrameKind::Kernel))
                .ok()
        });
        if mapped.is_none() {
            unmap_pages(area.start, i);
            release_area(&area);
            return Err(VmallocError::OutOfMemory);
        }
    }
    AREA.lock().as_mut().expect("init ran").used_pages += pages;
    Ok(area)
}

/// Unmaps and frees `pages` pages from `start`: in batches, each
/// invalidated on this CPU and then on every other (one IPI, `arch::tlb`)
/// before its frames go back.
fn unmap_pages(start: u64, pages: u64) {
    const BATCH: usize = crate::arch::tlb::MAX_PAGES;
    let mut i = 0;
    while i < pages {
        let mut vas = [0u64; BATCH];
        let mut frames_out = [0u64; BATCH];
        let mut n = 0;
        while i < pages && n < BATCH {
            let va = start + i * PAGE_SIZE;
            if let Some(pte) = pgtable::with_kernel(|t, m| t.unmap(m, va)) {
                crate::arch::mmu::flush_page(va);
                vas[n] = va;
                frames_out[n] = pte.addr();
                n += 1;
            }
            i += 1;
        }
        crate::arch::tlb::shoot_kernel(&vas[..n]);
        for &pa in &frames_out[..n] {
            frames::free_page(Pfn::from_addr(pa), FrameKind::Kernel).expect("vmalloc frame");
        }
    }
}

/// Unmaps and frees an area (and makes its addresses reusable).
pub fn free(area: VmArea) {
    unmap_pages(area.start, area.pages);
    AREA.lock().as_mut().expect("init ran").used_pages -= area.pages;
    release_area(&area);
}

/// Pages mapped in the vmalloc area (`VmallocUsed`).
pub fn used_pages() -> u64 {
    AREA.lock().as_ref().map_or(0, |a| a.used_pages)
}

/// Device memory mapped by [`ioremap`]: `pages` pages at `area.start`, the
/// first of which maps the page holding physical address `phys`.
#[derive(Debug)]
pub struct IoMapping {
    area: VmArea,
    phys: u64,
}

impl IoMapping {
    /// The virtual address of physical address `phys` (the one mapped).
    pub fn virt(&self) -> u64 {
        self.area.start + self.phys % PAGE_SIZE
    }

    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The virtual address of `pa` if this mapping covers `pa..pa + len`.
    pub fn translate(&self, pa: u64, len: u64) -> Option<u64> {
        let first = self.phys - self.phys % PAGE_SIZE;
        let end = first + self.area.pages * PAGE_SIZE;
        let last = pa.checked_add(len)?;
        (pa >= first && last <= end).then(|| self.area.start + (pa - first))
    }
}

/// Maps the physical range `phys..phys + len` (device registers, never RAM)
/// read-write, non-executable and uncached (PCD + PWT: every access reaches
/// the device, in order) into the vmalloc area, below a guard page. No
/// frame is allocated for it and none is freed by [`iounmap`].
pub fn ioremap(phys: u64, len: u64) -> Result<IoMapping, VmallocError> {
    let first = phys - phys % PAGE_SIZE;
    let end = phys
        .checked_add(len.max(1))
        .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
        .ok_or(VmallocError::NoAddressSpace)?;
    let pages = (end - first) / PAGE_SIZE;
    let area = reserve_area(pages)?;
    let flags = PteFlags::WRITABLE
        | PteFlags::NO_EXECUTE
        | PteFlags::GLOBAL
        | PteFlags::NO_CACHE
        | PteFlags::WRITE_THROUGH;
    for i in 0..pages {
        let va = area.start + i * PAGE_SIZE;
        let mapped = pgtable::with_kernel(|t, m| t.map(m, va, first + i * PAGE_SIZE, flags));
        if mapped.is_err() {
            unmap_io_pages(area.start, i);
            release_area(&area);
            return Err(VmallocError::OutOfMemory);
        }
    }
    Ok(IoMapping { area, phys })
}

fn unmap_io_pages(start: u64, pages: u64) {
    for i in 0..pages {
        let va = start + i * PAGE_SIZE;
        if pgtable::with_kernel(|t, m| t.unmap(m, va)).is_some() {
            crate::arch::mmu::flush_page(va);
            crate::arch::tlb::shoot_kernel(&[va]);
        }
    }
}

/// Unmaps device memory mapped by [`ioremap`] (the device's registers stay
/// where they are; only the kernel's window goes).
pub fn iounmap(mapping: IoMapping) {
    let area = mapping.area;
    unmap_io_pages(area.start, area.pages);
    release_area(&area);
}

/// Makes the kernel's existing mapping of `va..va + len` (device memory
/// the kernel only writes: the framebuffer) write-combining, in place: PWT
/// alone, which the page attribute table makes WC (see
/// `arch::cpu::enable_pat_write_combining`). Writes then leave the CPU in
/// bursts instead of one uncached bus cycle each. False (nothing changed)
/// if the CPU has no PAT or the range is not wholly mapped by 4 KiB pages.
pub fn set_write_combining(va: u64, len: u64) -> bool {
    if !crate::arch::cpu::pat_write_combining() || len == 0 {
        return false;
    }
    let first = va - va % PAGE_SIZE;
    let Some(end) = va
        .checked_add(len)
        .and_then(|e| e.checked_next_multiple_of(PAGE_SIZE))
    else {
        return false;
    };
    // Only 4 KiB leaves: a huge one could reach past the range into other
    // device memory, which must stay uncached.
    let small_pages = (first..end).step_by(PAGE_SIZE as usize).all(|page| {
        pgtable::with_kernel(|t, m| t.translate(m, page))
            .is_some_and(|(_, _, level)| level == vmcore::paging::Level::Pt)
    });
    if !small_pages {
        return false;
    }
    for page in (first..end).step_by(PAGE_SIZE as usize) {
        pgtable::with_kernel(|t, m| {
            t.update(m, page, |old| {
                old.without(PteFlags::NO_CACHE)
                    .with(PteFlags::WRITE_THROUGH)
            })
        });
        crate::arch::mmu::flush_page(page);
    }
    crate::arch::cpu::wbinvd();
    true
}
