//! The PS/2 keyboard (IRQ 1), so the shell works on a PC's own screen and
//! keyboard. USB keyboards look like this too while the firmware's legacy
//! emulation is on.
//!
//! The i8042 controller translates whatever the keyboard sends into
//! scancode set 1, which this driver decodes (US layout) into the bytes a
//! terminal would send: ASCII, control characters for Ctrl+letter, and
//! ANSI escape sequences for the arrow keys, Home, End and Delete. The
//! bytes go into the same console input queue as the serial port's, so
//! the shell and user programs cannot tell the two apart.

use crate::arch::interrupts::{set_irq_handler, IRQ_KEYBOARD};
use crate::arch::port::{I8042_DATA as DATA, I8042_STATUS_COMMAND as STATUS_COMMAND};
use crate::arch::sync::{IrqMutex, IrqOff};

/// Status: a byte waits in the output buffer.
const STATUS_OUTPUT_FULL: u8 = 1 << 0;
/// Status: the controller has not taken the last command/data byte yet.
const STATUS_INPUT_FULL: u8 = 1 << 1;
/// Status: the waiting byte came from the mouse (second port).
const STATUS_FROM_MOUSE: u8 = 1 << 5;

const CMD_READ_CONFIG: u8 = 0x20;
const CMD_WRITE_CONFIG: u8 = 0x60;
const CMD_ENABLE_FIRST_PORT: u8 = 0xae;
/// Configuration byte: interrupt on first-port input.
const CONFIG_FIRST_IRQ: u8 = 1 << 0;
/// Configuration byte: first port clock disabled.
const CONFIG_FIRST_CLOCK_OFF: u8 = 1 << 4;
/// Configuration byte: translate to scancode set 1.
const CONFIG_TRANSLATE: u8 = 1 << 6;

/// Bounded waits on the controller: a PC without one reads 0xff forever.
const SPINS: usize = 100_000;

/// Modifier and prefix state between scancodes.
#[derive(Clone, Copy)]
pub struct Decoder {
    shift: bool,
    ctrl: bool,
    caps: bool,
    /// The previous byte was the 0xe0 prefix of an extended key.
    extended: bool,
}

/// US layout, set 1 make codes 0x00..0x3a: (plain, shifted).
const KEYMAP: [(u8, u8); 0x3a] = {
    let mut map = [(0u8, 0u8); 0x3a];
    let rows: [(usize, &[u8], &[u8]); 4] = [
        (0x02, b"1234567890-=", b"!@#$%^&*()_+"),
        (0x10, b"qwertyuiop[]", b"QWERTYUIOP{}"),
        (0x1e, b"asdfghjkl;'`", b"ASDFGHJKL:\"~"),
        (0x2b, b"\\zxcvbnm,./", b"|ZXCVBNM<>?"),
    ];
    let mut r = 0;
    while r < rows.len() {
        let (start, plain, shifted) = rows[r];
        let mut i = 0;
        while i < plain.len() {
            map[start + i] = (plain[i], shifted[i]);
            i += 1;
        }
        r += 1;
    }
    map[0x01] = (0x1b, 0x1b); // Escape
    map[0x0e] = (0x7f, 0x7f); // Backspace sends DEL, as terminals do
    map[0x0f] = (b'\t', b'\t');
    map[0x1c] = (b'\n', b'\n'); // Enter
    map[0x39] = (b' ', b' ');
    map
};

impl Decoder {
    pub const fn new() -> Decoder {
        Decoder {
            shift: false,
            ctrl: false,
            caps: false,
            extended: false,
        }
    }

    /// Feeds one scancode byte; calls `emit` for each resulting input byte.
    pub fn feed(&mut self, code: u8, emit: &mut dyn FnMut(u8)) {
        if code == 0xe0 {
            self.extended = true;
            return;
        }
        let extended = core::mem::replace(&mut self.extended, false);
        let released = code & 0x80 != 0;
        let key = code & 0x7f;
        match (extended, key) {
            // Shift keys (the extended 0x2a/0x36 are fake shifts some
            // keyboards send around cursor keys: ignore them).
            (false, 0x2a | 0x36) => self.shift = !released,
            (true, 0x2a | 0x36) => {}
            // Left Ctrl, and right Ctrl (extended).
            (_, 0x1d) => self.ctrl = !released,
            (false, 0x3a) if !released => self.caps = !self.caps,
            _ if released => {}
            (true, key) => {
                let seq: &[u8] = match key {
                    0x48 => b"\x1b[A",  // up
                    0x50 => b"\x1b[B",  // down
                    0x4d => b"\x1b[C",  // right
                    0x4b => b"\x1b[D",  // left
                    0x47 => b"\x1b[H",  // Home
                    0x4f => b"\x1b[F",  // End
                    0x53 => b"\x1b[3~", // Delete
                    0x1c => b"\n",      // keypad Enter
                    0x35 => b"/",       // keypad /
                    _ => b"",
                };
                seq.iter().for_each(|&b| emit(b));
            }
            (false, key) => {
                let Some(&(plain, shifted)) = KEYMAP.get(key as usize) else {
                    return;
                };
                if plain == 0 {
                    return;
                }
                let letter = plain.is_ascii_lowercase();
                let upper = self.shift ^ (self.caps && letter);
                let mut byte = if upper { shifted } else { plain };
                if self.ctrl && byte.is_ascii_alphabetic() {
                    byte &= 0x1f;
                }
                emit(byte);
            }
        }
    }
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

static DECODER: IrqMutex<Decoder> = IrqMutex::new(Decoder::new());

fn status() -> u8 {
    STATUS_COMMAND.read()
}

fn wait_input_empty() -> bool {
    (0..SPINS).any(|_| status() & STATUS_INPUT_FULL == 0)
}

fn wait_output_full() -> bool {
    (0..SPINS).any(|_| status() & STATUS_OUTPUT_FULL != 0)
}

fn command(cmd: u8) -> bool {
    if !wait_input_empty() {
        return false;
    }
    STATUS_COMMAND.write(cmd);
    true
}

fn read_data() -> u8 {
    DATA.read()
}

fn irq() {
    // One interrupt per byte; read while more wait, keyboard bytes only.
    for _ in 0..16 {
        let s = status();
        if s & STATUS_OUTPUT_FULL == 0 {
            break;
        }
        let code = read_data();
        if s & STATUS_FROM_MOUSE != 0 {
            continue;
        }
        let mut decoder = DECODER.lock();
        decoder.feed(code, &mut crate::proc::console::push);
    }
}

/// Makes sure the controller interrupts on key presses and translates to
/// set 1 (firmware that polls the keyboard may have turned that off), then
/// takes IRQ 1. Returns false, doing nothing, if no controller answers.
pub fn init() -> bool {
    // The controller is programmed step by step: no IRQ 1 in between.
    let _irq = IrqOff::new();
    {
        if status() == 0xff {
            return false;
        }
        // Drop bytes left over from the firmware.
        for _ in 0..32 {
            if status() & STATUS_OUTPUT_FULL == 0 {
                break;
            }
            read_data();
        }
        if !command(CMD_READ_CONFIG) || !wait_output_full() {
            return false;
        }
        let config = read_data();
        let wanted = (config | CONFIG_FIRST_IRQ | CONFIG_TRANSLATE) & !CONFIG_FIRST_CLOCK_OFF;
        if wanted != config && command(CMD_WRITE_CONFIG) && wait_input_empty() {
            // The data byte of the write-configuration command.
            DATA.write(wanted);
        }
        command(CMD_ENABLE_FIRST_PORT);
        set_irq_handler(IRQ_KEYBOARD, irq);
        true
    }
}
