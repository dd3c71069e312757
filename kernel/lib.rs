//! Ferrite: a bare-metal x86_64 kernel built to show virtual memory working.
//!
//! The kernel is a library so that `kernel/main.rs` and every integration test
//! in `tests/` (each one a kernel of its own) share the same boot path.
//! Data flows one way: `arch` -> `mm` -> the rest.

#![no_std]
#![feature(allocator_ext)]
// Unsafe belongs in `arch/` and `mm::direct`; modules that must not use it
// say `#![deny(unsafe_code)]`. Every unsafe operation is in an `unsafe`
// block of its own, with a `// SAFETY:` comment saying why it is sound.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod arch;
pub mod bench;
pub mod boot;
pub mod drivers;
pub mod fs;
pub mod klog;
pub mod mm;
pub mod panic;
pub mod power;
pub mod proc;
pub mod procfs;
pub mod random;
pub mod shell;
pub mod symbols;
pub mod testing;
pub mod time;

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::BootInfo;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every Ferrite kernel (the real one and each test) boots with this.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    // All physical memory at Linux's PAGE_OFFSET.
    config.mappings.physical_memory = Some(Mapping::FixedAddress(mm::layout::PAGE_OFFSET));
    // Boot info, framebuffer and the bootloader's stack go in the upper half,
    // leaving the lower half to user space.
    config.mappings.dynamic_range_start = Some(mm::layout::BOOTLOADER_DYNAMIC_START);
    config.mappings.dynamic_range_end = Some(mm::layout::BOOTLOADER_DYNAMIC_END);
    config.kernel_stack_size = 64 * 1024;
    config
};

/// Brings the machine up: consoles and logging first (so everything after can
/// report), then the CPU tables, memory, and interrupts.
pub fn init(boot_info: &'static mut BootInfo) {
    mm::heap::init_boot_heap();
    drivers::serial::init();
    let boot = boot::take(boot_info);
    if let Some(fb) = boot.framebuffer.take() {
        drivers::fbcon::init(fb);
    }
    klog::init();
    symbols::init(boot);
    boot::print_banner(boot);
    arch::init();
    mm::init(boot);
    if drivers::fbcon::map_write_combining() {
        log::info!("framebuffer: write-combining");
    }
    drivers::virtio_blk::init();
    // USB keyboards (and what else is on xHCI): enumerated now, polled
    // from the timer tick once interrupts are on.
    drivers::usb::init();
    arch::smp::init();
    arch::interrupts::enable();
}

/// Makes the virtio disk found at boot, if any, the swap area (the
/// kernel binary does this before the shell; test kernels choose).
pub fn swap_on_boot_disk() {
    if let Some(disk) = drivers::virtio_blk::take() {
        match mm::swap::swapon(alloc::boxed::Box::new(disk)) {
            Ok(()) => {}
            Err(e) => log::warn!("swap: the boot disk was not used: {e}"),
        }
    }
}

static MAIN: spin::Once<fn() -> !> = spin::Once::new();
static KERNEL_STACK: spin::Once<mm::vmalloc::VmArea> = spin::Once::new();

/// Pages of the kernel stack `main` runs on.
pub const KERNEL_STACK_PAGES: u64 = 16;

/// Boots the machine, moves onto a kernel stack in the vmalloc area (with an
/// unmapped guard page below it) and runs `main` there.
pub fn start(boot_info: &'static mut BootInfo, main: fn() -> !) -> ! {
    init(boot_info);
    MAIN.call_once(|| main);
    let stack = KERNEL_STACK
        .call_once(|| mm::vmalloc::alloc(KERNEL_STACK_PAGES).expect("memory for the kernel stack"));
    arch::stack::run_on_stack(stack.end(), main_on_kernel_stack)
}

/// The stack `main` runs on (after [`start`]).
pub fn kernel_stack() -> &'static mm::vmalloc::VmArea {
    KERNEL_STACK.get().expect("running after start")
}

extern "C" fn main_on_kernel_stack() -> ! {
    proc::init();
    let main = MAIN.get().expect("set by start");
    main()
}

/// Declares a kernel's entry point (the bootloader's `_start`): boots with
/// [`start`] and runs `$main` on the kernel stack. Used by `main.rs` and by
/// every test kernel in `tests/`.
#[macro_export]
macro_rules! kernel_entry {
    ($main:path) => {
        bootloader_api::entry_point!(__ferrite_entry, config = &$crate::BOOTLOADER_CONFIG);

        fn __ferrite_entry(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
            $crate::start(boot_info, $main)
        }
    };
}

/// Idles the CPU until the next interrupt, forever.
pub fn idle() -> ! {
    loop {
        arch::cpu::wait_for_interrupt();
    }
}
