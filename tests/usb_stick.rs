//! Booted from a USB stick (machines.txt `-usbstick`: the image is a
//! usb-storage device on xHCI and the machine's only disk): the kernel's
//! own xHCI driver finds that stick, so the boot came through USB under
//! the firmware (SeaBIOS or OVMF) and the kernel then took the controller
//! over from it.

#![no_std]
#![no_main]

use ferrite::drivers::usb;
use ferrite::kprintln;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![the_boot_stick_is_on_xhci])
}

fn the_boot_stick_is_on_xhci() {
    let s = usb::summary();
    kprintln!(
        "usb: {} device(s), enumeration {} us",
        s.devices,
        ferrite::time::cycles_to_us(s.cycles)
    );
    assert_eq!(s.controllers_running, 1, "the xHCI controller runs");
    assert_eq!(s.mass_storage, 1, "the stick is there");
    assert_eq!(s.keyboards, 0);
    let mut devices = [None; 8];
    let n = usb::devices(&mut devices);
    let stick = devices[..n]
        .iter()
        .flatten()
        .find(|d| d.mass_storage)
        .expect("the stick is listed");
    // QEMU's usb-storage: vendor 0x46f4, product 0x0001.
    assert_eq!((stick.vendor, stick.product), (0x46f4, 0x0001));
}
