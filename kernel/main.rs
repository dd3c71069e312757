//! The Ferrite kernel binary: boot, then idle (the shell comes later).

#![no_std]
#![no_main]

use bootloader_api::{entry_point, BootInfo};

entry_point!(kernel_main, config = &ferrite::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    ferrite::start(boot_info, main)
}

fn main() -> ! {
    log::info!("Ferrite is up; nothing more to do yet, idling");
    ferrite::idle()
}
