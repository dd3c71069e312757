//! Memory management: the address layout, physical frames (buddy), the
//! kernel heap (slab) and page tables.

pub mod aspace;
pub mod failslab;
pub mod fault;
pub mod frame_ref;
pub mod frames;
pub mod heap;
pub mod kalloc;
pub mod layout;
pub mod pagecache;
pub mod paging;
pub mod pgtable;
pub mod uaccess;
pub mod vmalloc;
pub mod vmstat;

pub fn init(_: &crate::boot::Boot) {
    paging::init();
    crate::time::calibrate_tsc();
    frames::init(crate::boot::facts().memory_regions);
    heap::switch_to_slab();
    pgtable::init();
    vmalloc::init();
    aspace::zero_page();
    fault::init();
}
