//! Memory management: the address layout, physical frames (buddy), the
//! kernel heap (slab) and page tables.

pub mod frames;
pub mod heap;
pub mod layout;
pub mod paging;
pub mod pgtable;
pub mod vmalloc;

pub fn init(_: &crate::boot::Boot) {
    paging::init();
    crate::time::calibrate_tsc();
    frames::init(crate::boot::facts().memory_regions);
    heap::switch_to_slab();
    pgtable::init();
    vmalloc::init();
}
