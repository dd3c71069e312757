//! Memory management: the address layout, the kernel heap and page tables.

pub mod heap;
pub mod layout;
pub mod paging;

pub fn init(_: &crate::boot::Boot) {
    paging::init();
}
