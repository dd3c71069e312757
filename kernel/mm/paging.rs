//! Page-table access through the direct map.

use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::Translate;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, Size4KiB,
};
use x86_64::VirtAddr;

use super::layout::{phys_to_virt, PAGE_OFFSET};

/// Empties the lower half of the boot address space.
///
/// The bootloader leaves an identity mapping in PML4 slot 0 (its GDT and the
/// code that jumped to the kernel). Ferrite runs on its own GDT by now, and the
/// lower half belongs to user space.
pub fn init() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off; nothing references lower-half memory
        // any more (our GDT, stacks and code are all in the upper half).
        let tables = unsafe { active_tables() };
        let pml4 = unsafe_level_4(tables);
        for entry in pml4.iter_mut().take(256) {
            entry.set_unused();
        }
        x86_64::instructions::tlb::flush_all();
    });
}

fn unsafe_level_4(mut tables: OffsetPageTable<'static>) -> &'static mut PageTable {
    let pml4: *mut PageTable = tables.level_4_table_mut();
    // SAFETY: the PML4 lives in the direct map for the kernel's lifetime; the
    // callers hold interrupts off while they use it.
    unsafe { &mut *pml4 }
}

/// How many of the 256 lower-half PML4 entries are in use.
pub fn lower_half_entries() -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off and this only reads.
        let pml4 = unsafe_level_4(unsafe { active_tables() });
        pml4.iter().take(256).filter(|e| !e.is_unused()).count()
    })
}

/// The leaf flags of the 4 KiB page mapping `addr`, if mapped.
pub fn leaf_flags(addr: u64) -> Option<PageTableFlags> {
    use x86_64::structures::paging::mapper::TranslateResult;
    let addr = VirtAddr::try_new(addr).ok()?;
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off and translation only reads the tables.
        let tables = unsafe { active_tables() };
        match tables.translate(addr) {
            TranslateResult::Mapped { flags, .. } => Some(flags),
            _ => None,
        }
    })
}

/// The page tables CR3 points at, seen through the direct map.
///
/// # Safety
/// The caller must not create a second live `OffsetPageTable` over the same
/// tables (single CPU, interrupts off, or a lock held by the caller).
unsafe fn active_tables() -> OffsetPageTable<'static> {
    let (pml4_frame, _) = Cr3::read();
    let pml4 = phys_to_virt(pml4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: CR3 holds a valid PML4 frame, mapped by the direct map; the
    // caller guarantees exclusive use.
    unsafe { OffsetPageTable::new(&mut *pml4, VirtAddr::new(PAGE_OFFSET)) }
}

/// The physical address `addr` maps to in the current address space.
pub fn translate(addr: u64) -> Option<u64> {
    let addr = VirtAddr::try_new(addr).ok()?;
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off and translation only reads the tables.
        let tables = unsafe { active_tables() };
        tables.translate_addr(addr).map(|p| p.as_u64())
    })
}

/// Unmaps one 4 KiB kernel page, making it a guard page: any access faults.
pub fn unmap_guard_page(addr: u64) -> Result<(), &'static str> {
    let page = Page::<Size4KiB>::from_start_address(VirtAddr::new(addr))
        .map_err(|_| "guard page address is not page aligned")?;
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off; no other page-table user runs.
        let mut tables = unsafe { active_tables() };
        match tables.unmap(page) {
            Ok((_, flush)) => {
                flush.flush();
                Ok(())
            }
            Err(_) => Err("guard page is not mapped with a 4 KiB page"),
        }
    })
}
