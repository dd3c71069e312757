//! A USB keyboard on xHCI (QEMU's `usb-kbd`, machines.txt `-usbkbd`):
//! boot enumerates it, configures its boot protocol, and keys typed on it
//! (by the runner, through QMP, aimed at the USB keyboard only) reach the
//! console input queue the shell reads, through the timer-tick polling.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use ferrite::drivers::usb;
use ferrite::kprintln;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        boot_found_one_keyboard,
        typed_keys_reach_the_console,
        a_typed_line_runs_in_the_shell,
    ])
}

fn boot_found_one_keyboard() {
    let s = usb::summary();
    kprintln!(
        "usb: {} controller(s), {} device(s), enumeration {} us",
        s.controllers_running,
        s.devices,
        ferrite::time::cycles_to_us(s.cycles)
    );
    assert_eq!(s.controllers_found, 1, "one xHCI controller");
    assert_eq!(s.controllers_running, 1, "the controller runs");
    assert_eq!(s.keyboards, 1, "the usb-kbd is a boot keyboard");
    let mut devices = [None; 8];
    let n = usb::devices(&mut devices);
    let kbd = devices[..n]
        .iter()
        .flatten()
        .find(|d| d.keyboard)
        .expect("the keyboard is listed");
    // QEMU's usb-kbd: vendor 0x0627, product 0x0001, on a USB 2 port
    // (reset by the driver) at high speed.
    assert_eq!((kbd.vendor, kbd.product, kbd.speed), (0x0627, 0x0001, 3));
}

/// Takes console input until `want` bytes came or `ms` passed.
fn read_console(want: usize, ms: u64) -> Vec<u8> {
    let start = ferrite::time::uptime_ms();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < want && ferrite::time::uptime_ms() - start < ms {
        let n = ferrite::proc::console::try_read(&mut buf);
        got.extend_from_slice(&buf[..n]);
        if n == 0 {
            ferrite::arch::cpu::wait_for_interrupt();
        }
    }
    got
}

fn typed_keys_reach_the_console() {
    // Nothing typed yet: no input, none from the keyboard.
    assert_eq!(read_console(1, 200), b"");
    let before = usb::keyboard_bytes();
    let text = b"Hello, USB 42!\n";
    // The runner types this line's text on the USB keyboard.
    kprintln!("ferrite-qemu: type Hello, USB 42!\\n");
    let got = read_console(text.len(), 30_000);
    assert_eq!(
        core::str::from_utf8(&got).unwrap_or("<not UTF-8>"),
        core::str::from_utf8(text).unwrap(),
        "what the USB keyboard typed"
    );
    assert_eq!(
        usb::keyboard_bytes() - before,
        text.len() as u64,
        "every byte came from the USB keyboard"
    );
    // And nothing more (each key went down and up once).
    assert_eq!(read_console(1, 300), b"");
}

/// A shell command typed on the USB keyboard (Shift, punctuation, Enter)
/// runs as the interactive shell would run it.
fn a_typed_line_runs_in_the_shell() {
    kprintln!("ferrite-qemu: type echo \"typed on USB: A-Z_09\"\\n");
    let want = "echo \"typed on USB: A-Z_09\"\n";
    let line = read_console(want.len(), 30_000);
    let line = core::str::from_utf8(&line).expect("ASCII");
    assert_eq!(line, want);
    let out = ferrite::testing::sh(line.trim_end());
    assert_eq!(out, "typed on USB: A-Z_09\n");
}
