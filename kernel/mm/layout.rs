//! Ferrite's virtual address layout, modelled on Linux x86_64 (4-level paging).
//!
//! ```text
//! 0x0000_0000_0000_0000  user space (lower half; page 0 never mapped)
//! 0x0000_7fff_ffff_ffff  top of user space
//! 0xffff_8880_0000_0000  PAGE_OFFSET: direct map of all physical memory
//! 0xffff_c900_0000_0000  vmalloc area: kernel stacks with guard pages
//! 0xffff_f000_0000_0000  bootloader's dynamic range: boot info, framebuffer
//! 0xffff_ffff_8000_0000  kernel image
//! ```

/// The page size and the (exclusive) end of the lower, user half are
/// vmcore's, defined once.
pub use vmcore::{PAGE_SIZE, USER_END};
/// Start of the kernel half: PML4 entries 256..=511.
pub const KERNEL_HALF_START: u64 = 0xffff_8000_0000_0000;
/// The direct map: `virt = phys + PAGE_OFFSET`.
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
pub const VMALLOC_START: u64 = 0xffff_c900_0000_0000;
pub const VMALLOC_END: u64 = 0xffff_e900_0000_0000;
pub const BOOTLOADER_DYNAMIC_START: u64 = 0xffff_f000_0000_0000;
pub const BOOTLOADER_DYNAMIC_END: u64 = 0xffff_ff00_0000_0000;
/// Where the linker puts the kernel (`--image-base`).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;

/// Lowest address user mappings may use (Linux's `mmap_min_addr`): a null
/// pointer plus a small offset always faults.
pub const USER_MIN: u64 = vmcore::MMAP_MIN_ADDR;
/// Top of the initial user stack (one page below the end of the user half,
/// so the top is never directly adjacent to the non-canonical hole).
pub const USER_STACK_TOP: u64 = 0x7fff_ffff_f000;
/// How large a user stack may grow.
pub const USER_STACK_LIMIT: u64 = 8 << 20;
/// `mmap` without a fixed address searches downwards from here, below the
/// stack's growth room.
pub const MMAP_TOP: u64 = 0x7fff_0000_0000;
/// Where static-PIE executables are loaded (Linux's ELF_ET_DYN_BASE).
pub const PIE_BASE: u64 = 0x5555_5555_4000;

/// The direct-map address of a physical address.
pub const fn phys_to_virt(phys: u64) -> u64 {
    phys + PAGE_OFFSET
}

pub fn is_kernel_address(addr: u64) -> bool {
    addr >= KERNEL_HALF_START
}

pub fn is_user_address(addr: u64) -> bool {
    addr < USER_END
}
