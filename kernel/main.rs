//! The Ferrite kernel binary: boot, then the shell on the kernel's own
//! thread (pid 0). The shell first starts the program named by `/etc/init`
//! (the boot tool writes it when `FERRITE_INIT` is set) and runs `/etc/rc`
//! if the ramdisk has them. A virtio disk found at boot (`make run
//! SWAP=512M`) becomes the swap area.

#![no_std]
#![no_main]

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::swap_on_boot_disk();
    ferrite::shell::main()
}
