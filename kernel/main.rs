//! The Ferrite kernel binary: boot, then the shell on the kernel's own
//! thread (pid 0). The shell first starts the program named by `/etc/init`
//! (the boot tool writes it when `FERRITE_INIT` is set) and runs `/etc/rc`
//! if the ramdisk has them.

#![no_std]
#![no_main]

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::shell::main()
}
