//! A text console on the bootloader's framebuffer, for PCs with no serial
//! port. Glyphs come from the `noto-sans-mono-bitmap` font.
//!
//! Besides text it understands the few terminal controls the shell's line
//! editor sends (backspace, cursor left/right, erase to end of line, clear
//! screen), so editing looks the same on the framebuffer as on a serial
//! terminal. `mmview` draws pictures through [`draw`] after [`pause_text`],
//! which holds text back (console output is kept and replayed afterwards)
//! so log lines do not scribble over the picture.

use alloc::string::String;
use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};

use crate::arch::sync::{Fatal, IrqMutex};

const FONT_WEIGHT: FontWeight = FontWeight::Regular;
const FONT_HEIGHT: RasterHeight = RasterHeight::Size16;
const CHAR_WIDTH: usize = get_raster_width(FONT_WEIGHT, FONT_HEIGHT);
const LINE_HEIGHT: usize = FONT_HEIGHT.val() + 2;
const MARGIN: usize = 4;
/// Light grey, the text colour.
const TEXT_RGB: u32 = 0xd0d0d0;
/// Text written while paused that is kept for replay; beyond this the
/// oldest is dropped (it went to the serial console anyway).
const HELD_TEXT_MAX: usize = 8192;

/// Where the parser of terminal control sequences is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After `ESC [`, with the number read so far.
    Csi(usize),
}

pub struct FbConsole {
    buffer: &'static mut [u8],
    info: FrameBufferInfo,
    x: usize,
    y: usize,
    escape: Escape,
    /// `Some` while text is paused: what was written meanwhile.
    held: Option<String>,
}

static CONSOLE: IrqMutex<Option<FbConsole>> = IrqMutex::new(None);

pub fn init(fb: &'static mut FrameBuffer) {
    let info = fb.info();
    let mut console = FbConsole {
        buffer: fb.buffer_mut(),
        info,
        x: MARGIN,
        y: MARGIN,
        escape: Escape::None,
        held: None,
    };
    console.clear();
    *CONSOLE.lock() = Some(console);
}

/// The framebuffer geometry, if there is one (for the boot banner).
pub fn info() -> Option<FrameBufferInfo> {
    CONSOLE.lock().as_ref().map(|c| c.info)
}

pub fn write_str(s: &str) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        if let Some(held) = console.held.as_mut() {
            if held.len() + s.len() <= HELD_TEXT_MAX {
                held.push_str(s);
            }
            return;
        }
        console.cursor(false);
        for c in s.chars() {
            console.put_char(c);
        }
        console.cursor(true);
    }
}

/// Holds text output back until [`resume_text`] (for full-screen pictures).
/// False if there is no framebuffer.
pub fn pause_text() -> bool {
    match CONSOLE.lock().as_mut() {
        Some(console) => {
            if console.held.is_none() {
                console.held = Some(String::new());
            }
            true
        }
        None => false,
    }
}

/// Clears the screen and prints the text held back since [`pause_text`].
pub fn resume_text() {
    if let Some(console) = CONSOLE.lock().as_mut() {
        if let Some(held) = console.held.take() {
            console.clear();
            for c in held.chars() {
                console.put_char(c);
            }
            console.cursor(true);
        }
    }
}

/// Runs `f` on the framebuffer to draw on it; `None` without one.
pub fn draw<R>(f: impl FnOnce(&mut FbConsole) -> R) -> Option<R> {
    CONSOLE.lock().as_mut().map(f)
}

/// After a fatal error the interrupted holder of the lock will never run again.
pub fn force_unlock(fatal: &Fatal) {
    CONSOLE.force_unlock(fatal);
    // A fatal report must be seen even over a picture.
    // The held text is leaked, not freed: the heap may be what broke.
    if let Some(console) = CONSOLE.lock().as_mut() {
        core::mem::forget(console.held.take());
    }
}

impl FbConsole {
    /// Width and height in pixels.
    pub fn size(&self) -> (usize, usize) {
        (self.info.width, self.info.height)
    }

    /// Width and height of one character cell in pixels.
    pub fn char_size(&self) -> (usize, usize) {
        (CHAR_WIDTH, LINE_HEIGHT)
    }

    /// Fills a rectangle (clipped to the screen) with colour `0xRRGGBB`.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: u32) {
        let (width, height) = self.size();
        let x_end = (x + w).min(width);
        let y_end = (y + h).min(height);
        if x >= x_end || y >= y_end {
            return;
        }
        let bpp = self.info.bytes_per_pixel;
        let mut pixel = [0u8; 8];
        let bytes = self.encode(rgb, &mut pixel);
        for row in y..y_end {
            let start = (row * self.info.stride + x) * bpp;
            let end = (row * self.info.stride + x_end) * bpp;
            let Some(line) = self.buffer.get_mut(start..end) else {
                return;
            };
            for px in line.chunks_exact_mut(bpp) {
                px[..bytes].copy_from_slice(&pixel[..bytes]);
            }
        }
    }

    /// Draws `text` with its top-left corner at `(x, y)` in colour `fg` on
    /// `bg` (both `0xRRGGBB`), without moving the text cursor. Returns the
    /// x just past the text.
    pub fn text_at(&mut self, x: usize, y: usize, text: &str, fg: u32, bg: u32) -> usize {
        let mut x = x;
        for c in text.chars() {
            self.glyph(x, y, c, fg, bg);
            x += CHAR_WIDTH;
        }
        x
    }

    /// Blanks the screen and puts the text cursor at the top left.
    pub fn clear(&mut self) {
        self.buffer.fill(0);
        self.x = MARGIN;
        self.y = MARGIN;
    }

    /// Shows or hides the text cursor: a bar under the character cell,
    /// in the two pixel rows below every glyph, so it never covers text.
    fn cursor(&mut self, on: bool) {
        let (x, y) = (self.x, self.y + LINE_HEIGHT - 2);
        self.fill_rect(x, y, CHAR_WIDTH, 2, if on { TEXT_RGB } else { 0 });
    }

    /// Packs `0xRRGGBB` as the framebuffer stores a pixel; returns how many
    /// bytes of `out` to copy.
    fn encode(&self, rgb: u32, out: &mut [u8; 8]) -> usize {
        let (r, g, b) = ((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8);
        let bpp = self.info.bytes_per_pixel.min(8);
        match self.info.pixel_format {
            PixelFormat::Rgb => out[..3].copy_from_slice(&[r, g, b]),
            PixelFormat::Bgr => out[..3].copy_from_slice(&[b, g, r]),
            // Grey levels: the luma of the colour.
            _ => out[0] = ((r as u32 * 30 + g as u32 * 59 + b as u32 * 11) / 100) as u8,
        }
        match self.info.pixel_format {
            PixelFormat::Rgb | PixelFormat::Bgr => bpp.min(3),
            _ => 1,
        }
    }

    fn glyph(&mut self, x: usize, y: usize, c: char, fg: u32, bg: u32) {
        let raster = get_raster(c, FONT_WEIGHT, FONT_HEIGHT)
            .or_else(|| get_raster('?', FONT_WEIGHT, FONT_HEIGHT));
        let Some(raster) = raster else {
            return;
        };
        self.fill_rect(x, y, CHAR_WIDTH, LINE_HEIGHT, bg);
        for (dy, row) in raster.raster().iter().enumerate() {
            for (dx, &intensity) in row.iter().enumerate() {
                if intensity != 0 {
                    self.put_pixel(x + dx, y + dy, blend(bg, fg, intensity));
                }
            }
        }
    }

    fn newline(&mut self) {
        self.x = MARGIN;
        self.y += LINE_HEIGHT;
        if self.y + LINE_HEIGHT + MARGIN > self.info.height {
            self.scroll();
        }
    }

    /// Moves every text line up by one line height and blanks the last one.
    fn scroll(&mut self) {
        let row_bytes = self.info.stride * self.info.bytes_per_pixel;
        let shift = LINE_HEIGHT * row_bytes;
        let used = self.info.height * row_bytes;
        self.buffer.copy_within(shift..used, 0);
        self.buffer[used - shift..used].fill(0);
        self.y -= LINE_HEIGHT;
    }

    /// Follows a terminal control sequence one character at a time; true
    /// if `c` was part of one.
    fn escape(&mut self, c: char) -> bool {
        match (self.escape, c) {
            (Escape::None, '\x1b') => self.escape = Escape::Esc,
            (Escape::None, _) => return false,
            (Escape::Esc, '[') => self.escape = Escape::Csi(0),
            (Escape::Esc, _) => self.escape = Escape::None,
            (Escape::Csi(n), '0'..='9') => {
                let digit = c as usize - '0' as usize;
                self.escape = Escape::Csi((n * 10 + digit).min(10_000));
            }
            (Escape::Csi(n), c) => {
                self.escape = Escape::None;
                let n = n.max(1);
                match c {
                    // Cursor left / right by n columns (within the line).
                    'D' => self.x = self.x.saturating_sub(n * CHAR_WIDTH).max(MARGIN),
                    'C' => {
                        let last = self.info.width.saturating_sub(MARGIN + CHAR_WIDTH);
                        self.x = (self.x + n * CHAR_WIDTH).min(last.max(MARGIN));
                    }
                    // Erase from the cursor to the end of the line.
                    'K' => {
                        let (x, y) = (self.x, self.y);
                        self.fill_rect(x, y, self.info.width - x, LINE_HEIGHT, 0);
                    }
                    // Clear the screen (`ESC [ 2 J`) and home (`ESC [ H`).
                    'J' => self.buffer.fill(0),
                    'H' => {
                        self.x = MARGIN;
                        self.y = MARGIN;
                    }
                    ';' | '?' => self.escape = Escape::Csi(0),
                    // Colours and anything else: ignored.
                    _ => {}
                }
            }
        }
        true
    }

    fn put_char(&mut self, c: char) {
        if self.escape(c) {
            return;
        }
        match c {
            '\n' => self.newline(),
            '\r' => self.x = MARGIN,
            '\x08' => self.x = self.x.saturating_sub(CHAR_WIDTH).max(MARGIN),
            '\x07' => {}
            c => {
                if self.x + CHAR_WIDTH + MARGIN > self.info.width {
                    self.newline();
                }
                let (x, y) = (self.x, self.y);
                self.glyph(x, y, c, TEXT_RGB, 0);
                self.x += CHAR_WIDTH;
            }
        }
    }

    fn put_pixel(&mut self, x: usize, y: usize, rgb: u32) {
        let bpp = self.info.bytes_per_pixel;
        let offset = (y * self.info.stride + x) * bpp;
        let mut pixel = [0u8; 8];
        let bytes = self.encode(rgb, &mut pixel);
        if let Some(dst) = self.buffer.get_mut(offset..offset + bytes) {
            dst.copy_from_slice(&pixel[..bytes]);
        }
    }
}

/// `bg` mixed towards `fg` by `alpha` / 255 (the font's anti-aliasing).
fn blend(bg: u32, fg: u32, alpha: u8) -> u32 {
    let a = alpha as u32;
    let mix = |shift: u32| {
        let (b, f) = ((bg >> shift) & 0xff, (fg >> shift) & 0xff);
        ((b * (255 - a) + f * a) / 255) << shift
    };
    mix(16) | mix(8) | mix(0)
}
