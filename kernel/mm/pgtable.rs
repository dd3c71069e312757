//! Page tables in the kernel: vmcore's [`PageTables`] on real memory.
//!
//! Table frames come from the buddy allocator (labelled `PageTable` for the
//! statistics) and are reached through the direct map. The kernel's own tree
//! is the bootloader's, adopted at boot; every one of its 256 upper root
//! entries is populated then, so an address space created later that copies
//! them sees every future kernel mapping (vmalloc) without synchronisation.

use vmcore::paging::ENTRIES;
use vmcore::{PageTables, TableMemory};

use crate::arch::sync::IrqMutex;

pub use super::direct::{FrameTables, LockedFrameTables};

/// The kernel's tree (the bootloader's, adopted). Lock order: this lock,
/// then the frames lock (taken inside `FrameTables`), never the reverse.
static KERNEL_TABLES: IrqMutex<Option<PageTables>> =
    IrqMutex::ranked(None, crate::arch::sync::rank::KERNEL_TABLES);

/// Statistics of the kernel page-table lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    KERNEL_TABLES.stat()
}

/// Adopts the boot page tables and populates the kernel half's root.
pub fn init() {
    // SAFETY: CR3 holds the bootloader's PML4; all its tables are frames the
    // direct map reaches, and its lower half was emptied by paging::init.
    let tables = unsafe { PageTables::from_root(crate::arch::mmu::active_root()) };
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
    *KERNEL_TABLES.lock() = Some(tables);
}

/// Runs `f` on the kernel's page tables.
pub fn with_kernel<R>(f: impl FnOnce(&mut PageTables, &mut FrameTables) -> R) -> R {
    KERNEL_TABLES.with(|t| f(t.as_mut().expect("pgtable::init ran"), &mut FrameTables))
}

/// A writable and executable kernel mapping found by [`kernel_wx_pages`].
#[derive(Clone, Copy, Debug)]
pub struct WxMapping {
    pub va: u64,
    pub size: u64,
    pub pte: vmcore::Pte,
}

/// Walks the whole kernel half and returns every leaf that is both
/// writable and executable once the parent entries are taken into account
/// (a leaf is writable only if every level above allows writes, and
/// executable only if no level sets NX), plus the number of leaves seen.
pub fn kernel_wx_pages() -> (alloc::vec::Vec<WxMapping>, u64) {
    use vmcore::paging::{PageWalker, WalkAction};
    use vmcore::{Level, Pte, PteFlags};

    struct Wx {
        /// The entry followed at each level on the way down (index = level).
        path: [Pte; 5],
        found: alloc::vec::Vec<WxMapping>,
        leaves: u64,
    }
    impl PageWalker for Wx {
        fn entry(&mut self, level: Level, _: u64, pte: Pte) -> WalkAction {
            self.path[level as usize] = pte;
            WalkAction::Descend
        }
        fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
            self.leaves += 1;
            let level = match size {
                0x1000 => 1,
                0x20_0000 => 2,
                _ => 3,
            };
            let parents = &self.path[level + 1..=4];
            let writable =
                pte.has(PteFlags::WRITABLE) && parents.iter().all(|p| p.has(PteFlags::WRITABLE));
            let executable = !pte.has(PteFlags::NO_EXECUTE)
                && parents.iter().all(|p| !p.has(PteFlags::NO_EXECUTE));
            if writable && executable {
                self.found.push(WxMapping { va, size, pte });
            }
        }
    }
    let mut wx = Wx {
        path: [Pte::EMPTY; 5],
        found: alloc::vec::Vec::new(),
        leaves: 0,
    };
    with_kernel(|tables, mem| {
        tables
            .walk(mem, super::layout::KERNEL_HALF_START, u64::MAX, &mut wx)
            .expect("the kernel half is a valid range")
    });
    (wx.found, wx.leaves)
}
