//! Page tables in the kernel: vmcore's [`PageTables`] on real memory.
//!
//! Table frames come from the buddy allocator (labelled `PageTable` for the
//! statistics) and are reached through the direct map. The kernel's own tree
//! is the bootloader's, adopted at boot; every one of its 256 upper root
//! entries is populated then, so an address space created later that copies
//! them sees every future kernel mapping (vmalloc) without synchronisation.

use mmcore::{FrameKind, Pfn};
use spin::Mutex;
use vmcore::paging::ENTRIES;
use vmcore::{PageTables, TableMemory};
use x86_64::registers::control::Cr3;

use super::frames;
use super::layout::phys_to_virt;

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
        frames::alloc_zeroed(0, FrameKind::PageTable).map(|pfn| pfn.addr())
    }

    fn free_table(&mut self, phys: u64) {
        if let Err(e) = frames::free(Pfn::from_addr(phys), 0) {
            // vmcore only frees lower-half tables it created; anything else
            // is a bookkeeping bug worth stopping for.
            panic!("freeing page table {phys:#x}: {e}");
        }
    }
}

/// The kernel's tree (the bootloader's, adopted). Lock order: this lock,
/// then the frames lock (taken inside `FrameTables`), never the reverse.
pub static KERNEL_TABLES: Mutex<Option<PageTables>> = Mutex::new(None);

/// Adopts the boot page tables and populates the kernel half's root.
pub fn init() {
    let (frame, _) = Cr3::read();
    // SAFETY: CR3 holds the bootloader's PML4; all its tables are frames the
    // direct map reaches, and its lower half was emptied by paging::init.
    let tables = unsafe { PageTables::from_root(frame.start_address().as_u64()) };
    let mut mem = FrameTables;
    let root = mem.table(tables.root());
    let mut added = 0;
    for idx in ENTRIES / 2..ENTRIES {
        // SAFETY: `root` is the live PML4 in the direct map; entries 256..
        // are only written here, before any other address space exists.
        let entry = unsafe { &mut (*root)[idx] };
        if *entry & 1 == 0 {
            let table = mem.alloc_table().expect("memory for the kernel's PDPTs");
            // Present + writable; leaves decide the rest (no USER: kernel).
            *entry = table | 0b11;
            added += 1;
        }
    }
    log::info!("paging: kernel half has all 256 top-level entries ({added} PDPTs added)");
    x86_64::instructions::interrupts::without_interrupts(|| *KERNEL_TABLES.lock() = Some(tables));
}

/// Runs `f` on the kernel's page tables.
pub fn with_kernel<R>(f: impl FnOnce(&mut PageTables, &mut FrameTables) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = KERNEL_TABLES.lock();
        f(guard.as_mut().expect("pgtable::init ran"), &mut FrameTables)
    })
}
