//! The Ferrite kernel binary: boot, then the shell on the kernel's own
//! thread (pid 0). The shell first starts the program named by `/etc/init`
//! (the boot tool writes it when `FERRITE_INIT` is set) and runs `/etc/rc`
//! if the ramdisk has them.

#![no_std]
#![no_main]

use bootloader_api::{entry_point, BootInfo};

entry_point!(kernel_main, config = &ferrite::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    ferrite::start(boot_info, main)
}

fn main() -> ! {
    ferrite::shell::main()
}
