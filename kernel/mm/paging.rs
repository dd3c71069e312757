//! The page tables CR3 points at, read and adjusted without locks.
//!
//! Everything here goes through vmcore's [`PageTables`] on the direct map,
//! like the rest of the kernel, but on whatever tree is live right now and
//! without the kernel-tables lock: code here may run while that lock is
//! held (a fault report; fatal reports read memory only through
//! `arch::uaccess::read_kernel_u64`), and the guard pages of the exception
//! stacks are placed before the frame allocator exists. Only
//! kernel-half leaves are ever changed here, so no table is allocated or
//! freed.

use crate::arch::mmu;
use crate::arch::sync::IrqOff;
use vmcore::paging::ENTRIES;
use vmcore::{PageTables, PteFlags, TableMemory};

use super::layout::is_kernel_address;
use super::pgtable::FrameTables;

/// The live tree.
fn active() -> PageTables {
    let root = mmu::active_root();
    // SAFETY: CR3 holds a PML4 whose tables are all frames the direct map
    // reaches (the bootloader's, or ones vmcore built); this value only
    // translates, changes kernel-half leaves and clears lower-half root
    // entries (`init`), so it never frees a table another tree owns.
    unsafe { PageTables::from_root(root) }
}

/// Empties the lower half of the boot address space.
///
/// The bootloader leaves an identity mapping in PML4 slot 0 (its GDT and the
/// code that jumped to the kernel). Ferrite runs on its own GDT by now, and the
/// lower half belongs to user space.
pub fn init() {
    let _irq = IrqOff::new();
    let root = FrameTables.table(active().root());
    for idx in 0..ENTRIES / 2 {
        // SAFETY: `root` is the live PML4 in the direct map; nothing
        // references lower-half memory any more (our GDT, stacks and
        // code are all in the upper half), and the TLB is flushed next.
        unsafe { (*root)[idx] = 0 };
    }
    mmu::flush_all();
}

/// How many of the 256 lower-half PML4 entries are in use.
pub fn lower_half_entries() -> usize {
    let _irq = IrqOff::new();
    let root = FrameTables.table(active().root());
    (0..ENTRIES / 2)
        // SAFETY: the live PML4 in the direct map; each entry is read
        // by value (no reference to memory the MMU may update).
        .filter(|&idx| unsafe { (*root)[idx] } != 0)
        .count()
}

/// The physical address `addr` maps to in the current address space.
pub fn translate(addr: u64) -> Option<u64> {
    active()
        .translate(&mut FrameTables, addr)
        .map(|(pa, _, _)| pa)
}

/// The flags of the leaf (of any size) mapping `addr`, if mapped.
pub fn leaf_flags(addr: u64) -> Option<PteFlags> {
    active()
        .translate(&mut FrameTables, addr)
        .map(|(_, pte, _)| pte.flags())
}

/// Unmaps one 4 KiB kernel page, making it a guard page: any access faults.
pub fn unmap_guard_page(addr: u64) -> Result<(), &'static str> {
    if !is_kernel_address(addr) {
        return Err("guard pages are kernel pages");
    }
    let _irq = IrqOff::new();
    match active().unmap(&mut FrameTables, addr) {
        Some(_) => {
            mmu::flush_page(addr);
            Ok(())
        }
        None => Err("guard page is not a mapped, page-aligned 4 KiB page"),
    }
}
