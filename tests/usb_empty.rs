//! No USB device: a machine without an xHCI controller boots as before,
//! and one with an empty controller (machines.txt `-xhci`) starts it and
//! finds nothing; neither panics, and the timer-tick polling of an empty
//! controller is harmless.

#![no_std]
#![no_main]

use ferrite::drivers::usb;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        nothing_is_found,
        polling_an_empty_controller_is_harmless,
        a_second_init_does_nothing,
    ])
}

fn nothing_is_found() {
    let s = usb::summary();
    assert!(s.controllers_found <= 1);
    assert_eq!(
        s.controllers_running, s.controllers_found,
        "a found controller runs"
    );
    assert_eq!((s.devices, s.keyboards, s.mass_storage), (0, 0, 0));
    let mut devices = [None; 4];
    assert_eq!(usb::devices(&mut devices), 0);
}

fn polling_an_empty_controller_is_harmless() {
    let start = ferrite::time::ticks();
    while ferrite::time::ticks() < start + 10 {
        ferrite::arch::cpu::wait_for_interrupt();
    }
    for _ in 0..1000 {
        usb::poll();
    }
    assert_eq!(usb::keyboard_bytes(), 0);
    let mut buf = [0u8; 8];
    assert_eq!(ferrite::proc::console::try_read(&mut buf), 0);
}

fn a_second_init_does_nothing() {
    let before = usb::summary();
    let again = usb::init();
    assert_eq!(again.controllers_running, before.controllers_running);
    assert_eq!(again.cycles, before.cycles);
}
