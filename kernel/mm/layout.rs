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

pub const PAGE_SIZE: u64 = 4096;

/// End (exclusive) of the lower, user half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
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
