//! The shell's line editor: it turns the bytes a terminal (or the PS/2
//! keyboard driver) sends into lines, echoing as it goes.
//!
//! It is a state machine fed one byte at a time, so the same code serves
//! the serial console, the keyboard, and tests that feed it scripted
//! keystrokes. Editing keys: Backspace, Delete, Left/Right, Home/End,
//! Ctrl-A/Ctrl-E, Ctrl-U (erase to the start), Ctrl-K (erase to the end),
//! Ctrl-C (abandon the line), and Up/Down to browse the history. Echo uses
//! only the few ANSI controls every terminal and `fbcon` understand:
//! backspace, `ESC [ n D`/`C` (cursor left/right) and `ESC [ K` (erase to
//! the end of the line).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::mm::kalloc;

/// Lines kept for Up/Down.
pub const HISTORY_MAX: usize = 64;
/// Longest line accepted; further characters are refused with a bell.
pub const LINE_MAX: usize = 240;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After `ESC [` (or `ESC O`), with the numeric parameter so far.
    Csi(u32),
}

pub struct LineEditor {
    line: Vec<u8>,
    cursor: usize,
    history: Vec<String>,
    /// While browsing the history: the entry shown.
    browsing: Option<usize>,
    /// The line being typed before browsing started, restored by Down.
    draft: Vec<u8>,
    escape: Escape,
}

impl Default for LineEditor {
    fn default() -> Self {
        LineEditor::new()
    }
}

impl LineEditor {
    pub const fn new() -> LineEditor {
        LineEditor {
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browsing: None,
            draft: Vec::new(),
            escape: Escape::None,
        }
    }

    /// The line typed so far (for tests).
    pub fn current(&self) -> &str {
        core::str::from_utf8(&self.line).unwrap_or("")
    }

    /// Cursor position within the line (for tests).
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Feeds one input byte, echoing to `echo`; returns the finished line
    /// on Enter (an empty line after Ctrl-C).
    pub fn feed(&mut self, byte: u8, echo: &mut dyn Write) -> Option<String> {
        match self.escape {
            Escape::Esc => {
                self.escape = match byte {
                    b'[' | b'O' => Escape::Csi(0),
                    _ => Escape::None,
                };
                return None;
            }
            Escape::Csi(n) => {
                if byte.is_ascii_digit() {
                    self.escape = Escape::Csi((n * 10 + (byte - b'0') as u32).min(9999));
                } else {
                    self.escape = Escape::None;
                    self.control_sequence(n, byte, echo);
                }
                return None;
            }
            Escape::None => {}
        }
        match byte {
            0x1b => self.escape = Escape::Esc,
            b'\n' | b'\r' => return Some(self.finish(echo)),
            0x7f | 0x08 => self.backspace(echo),
            0x01 => self.move_to(0, echo),
            0x05 => self.move_to(self.line.len(), echo),
            0x03 => {
                let _ = echo.write_str("^C\n");
                self.line.clear();
                self.cursor = 0;
                self.browsing = None;
                return Some(String::new());
            }
            0x15 => {
                // Ctrl-U: erase from the start of the line to the cursor.
                // In place: nothing to allocate.
                self.line.drain(..self.cursor);
                let tail = core::mem::take(&mut self.line);
                self.replace(tail, 0, echo);
            }
            0x0b => {
                // Ctrl-K: erase from the cursor to the end.
                self.line.truncate(self.cursor);
                let _ = echo.write_str("\x1b[K");
            }
            b'\t' => self.insert(b' ', echo),
            0x20..=0x7e => self.insert(byte, echo),
            // Other control bytes and non-ASCII input are ignored.
            _ => {}
        }
        None
    }

    fn control_sequence(&mut self, n: u32, byte: u8, echo: &mut dyn Write) {
        match byte {
            b'A' => self.history_up(echo),
            b'B' => self.history_down(echo),
            b'C' => self.move_to((self.cursor + 1).min(self.line.len()), echo),
            b'D' => self.move_to(self.cursor.saturating_sub(1), echo),
            b'H' => self.move_to(0, echo),
            b'F' => self.move_to(self.line.len(), echo),
            b'~' => match n {
                1 | 7 => self.move_to(0, echo),
                4 | 8 => self.move_to(self.line.len(), echo),
                3 => self.delete(echo),
                _ => {}
            },
            _ => {}
        }
    }

    fn finish(&mut self, echo: &mut dyn Write) -> String {
        let _ = echo.write_str("\n");
        let line = String::from_utf8(core::mem::take(&mut self.line)).unwrap_or_default();
        self.cursor = 0;
        self.browsing = None;
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.history.last().map(String::as_str) != Some(trimmed) {
            if self.history.len() == HISTORY_MAX {
                self.history.remove(0);
            }
            // Without memory for it, the line is just not remembered.
            if let Ok(entry) = kalloc::try_string(trimmed) {
                let _ = kalloc::try_push(&mut self.history, entry);
            }
        }
        line
    }

    fn insert(&mut self, byte: u8, echo: &mut dyn Write) {
        // Full, or no memory for one more byte: ring the bell.
        if self.line.len() >= LINE_MAX || kalloc::try_reserve(&mut self.line, 1).is_err() {
            let _ = echo.write_str("\x07");
            return;
        }
        self.line.insert(self.cursor, byte);
        self.cursor += 1;
        let _ = echo.write_char(byte as char);
        self.redraw_tail(false, echo);
    }

    fn backspace(&mut self, echo: &mut dyn Write) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.line.remove(self.cursor);
        let _ = echo.write_str("\x08");
        self.redraw_tail(true, echo);
    }

    fn delete(&mut self, echo: &mut dyn Write) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw_tail(true, echo);
        }
    }

    /// Rewrites the line from the cursor on, erases what is left of the
    /// old text if it was longer (`erase`), and puts the cursor back.
    fn redraw_tail(&self, erase: bool, echo: &mut dyn Write) {
        let tail = &self.line[self.cursor..];
        for &b in tail {
            let _ = echo.write_char(b as char);
        }
        if erase {
            let _ = echo.write_str("\x1b[K");
        }
        left(tail.len(), echo);
    }

    fn move_to(&mut self, pos: usize, echo: &mut dyn Write) {
        if pos < self.cursor {
            left(self.cursor - pos, echo);
        } else if pos > self.cursor {
            let _ = write!(echo, "\x1b[{}C", pos - self.cursor);
        }
        self.cursor = pos;
    }

    /// Shows `line` instead of the current one, cursor at `cursor`.
    fn replace(&mut self, line: Vec<u8>, cursor: usize, echo: &mut dyn Write) {
        left(self.cursor, echo);
        self.line = line;
        self.cursor = 0;
        self.redraw_tail(true, echo);
        self.move_to(cursor, echo);
    }

    fn history_up(&mut self, echo: &mut dyn Write) {
        let index = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                let Ok(draft) = kalloc::try_to_vec(&self.line) else {
                    let _ = echo.write_str("\x07");
                    return;
                };
                self.draft = draft;
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        let Ok(line) = kalloc::try_to_vec(self.history[index].as_bytes()) else {
            let _ = echo.write_str("\x07");
            return;
        };
        self.browsing = Some(index);
        let end = line.len();
        self.replace(line, end, echo);
    }

    fn history_down(&mut self, echo: &mut dyn Write) {
        let Some(i) = self.browsing else {
            return;
        };
        let line = if i + 1 < self.history.len() {
            let Ok(line) = kalloc::try_to_vec(self.history[i + 1].as_bytes()) else {
                let _ = echo.write_str("\x07");
                return;
            };
            self.browsing = Some(i + 1);
            line
        } else {
            self.browsing = None;
            core::mem::take(&mut self.draft)
        };
        let end = line.len();
        self.replace(line, end, echo);
    }
}

fn left(n: usize, echo: &mut dyn Write) {
    if n > 0 {
        let _ = write!(echo, "\x1b[{n}D");
    }
}
