//! Shared by the panic/oops test kernels: breaking page tables on purpose,
//! so a fatal report meets memory whose translation is corrupt.

#![allow(dead_code)]

use ferrite::mm::layout::phys_to_virt;

/// A physical address no machine here has (bit 50 is reserved on CPUs with
/// fewer than 51 physical address bits, QEMU's default is 40) and the
/// direct map does not reach (`phys_to_virt` of it lies in the unused gap
/// below the vmalloc area): a table "at" this address faults both the MMU's
/// walk and a software walk through the direct map.
pub const BOGUS_PHYS: u64 = 0x0004_0000_0000_0000;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// The entry at `depth` (1 = PML4 ... 4 = PT) on the way to `addr` in the
/// live tables, if every table above it is present (and not a huge page).
pub fn entry_ptr(addr: u64, depth: usize) -> Option<*mut u64> {
    let cr3: u64;
    // SAFETY: reads a control register.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3) };
    let mut table = cr3 & ADDR;
    for level in 0..depth {
        let index = (addr >> (39 - 9 * level)) & 0x1ff;
        let entry = (phys_to_virt(table) + index * 8) as *mut u64;
        if level + 1 == depth {
            return Some(entry);
        }
        // SAFETY: a live, well-formed table in the direct map (nothing is
        // corrupt yet on this path).
        let value = unsafe { entry.read_volatile() };
        if value & PRESENT == 0 || (level > 0 && value & HUGE != 0) {
            return None;
        }
        table = value & ADDR;
    }
    None
}

/// Makes the entry at `depth` for `addr` point at [`BOGUS_PHYS`] (present,
/// writable); returns the old entry.
///
/// # Safety
/// Nothing may use the memory that entry maps, except to test how a fault
/// on it is reported.
pub unsafe fn corrupt_entry(addr: u64, depth: usize) -> u64 {
    let entry = entry_ptr(addr, depth).expect("tables down to the entry exist");
    // SAFETY: the caller gives up the memory the entry maps; the TLB entry
    // for `addr` is flushed next.
    let old = unsafe { entry.read_volatile() };
    // SAFETY: as above.
    unsafe { entry.write_volatile(BOGUS_PHYS | PRESENT | WRITABLE) };
    ferrite::arch::mmu::flush_page(addr);
    old
}

/// Puts back an entry [`corrupt_entry`] replaced.
///
/// # Safety
/// `old` must be what `corrupt_entry` returned for the same `addr`, `depth`.
pub unsafe fn restore_entry(addr: u64, depth: usize, old: u64) {
    let entry = entry_ptr(addr, depth).expect("tables down to the entry exist");
    // SAFETY: the caller's contract.
    unsafe { entry.write_volatile(old) };
    ferrite::arch::mmu::flush_page(addr);
}

/// A fresh kernel stack whose page just above the top has a corrupt
/// page-table entry: returns (stack top, that page). A frame pointer there
/// is within reach of the stack (a backtrace would try it) and reading it
/// faults with a translation the software walker cannot follow either.
pub fn stack_below_corrupt_page(pages: u64) -> (u64, u64) {
    let area = ferrite::mm::vmalloc::alloc(pages + 1).expect("a vmalloc stack");
    let top_page = area.end() - 4096;
    // SAFETY: the page is part of a stack only this test uses, and only
    // below it; its frame is leaked.
    unsafe { corrupt_entry(top_page, 4) };
    (top_page, top_page)
}
