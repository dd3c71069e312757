//! A text console on the bootloader's framebuffer, for PCs with no serial
//! port. Glyphs come from the `noto-sans-mono-bitmap` font.
//!
//! The text lives in a shadow in RAM: a grid of character cells, its rows a
//! ring (scrolling moves the ring's first row, no copying). The framebuffer
//! is only ever written, never read (video memory is uncached on a real PC,
//! and mapped write-combining where the CPU has PAT: see [`map_write_combining`]): a
//! render compares the grid with what the screen shows (a second grid) and
//! draws only the cells that differ, each from a cache of pre-coloured
//! glyph rows. Renders are batched and paced by their own cost: after a
//! render that took `d` cycles the next waits until `RENDER_PACE * d` more
//! have passed (so drawing takes at most 1 / (1 + RENDER_PACE) of the CPU
//! while output streams, on a fast screen or a slow one); a write that
//! comes earlier only updates the grid, and the timer interrupt renders it
//! ([`tick`]). Output that scrolls a hundred lines meanwhile costs one
//! redraw, not a hundred screen copies. Before the timer runs and after a
//! fatal error every write renders at once.
//!
//! Bytes from programs ([`write_bytes`]) pass through a UTF-8 decoder that
//! keeps its state between writes: a character split between two writes is
//! one character, an ill-formed sequence one replacement glyph. Besides text
//! the console understands the few terminal controls the shell's line
//! editor sends (backspace, cursor left/right, erase to end of line, clear
//! screen), so editing looks the same on the framebuffer as on a serial
//! terminal. `mmview` draws pictures through [`draw`] after [`pause_text`],
//! which holds rendering back (text still goes into the grid) so log lines
//! do not scribble over the picture; [`resume_text`] redraws the text.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};
use usercore::utf8::Utf8Decoder;

use crate::arch::sync::{Fatal, IrqMutex};

const FONT_WEIGHT: FontWeight = FontWeight::Regular;
const FONT_HEIGHT: RasterHeight = RasterHeight::Size16;
const CHAR_WIDTH: usize = get_raster_width(FONT_WEIGHT, FONT_HEIGHT);
const LINE_HEIGHT: usize = FONT_HEIGHT.val() + 2;
const MARGIN: usize = 4;
/// Light grey, the text colour.
const TEXT_RGB: u32 = 0xd0d0d0;
/// The grid's largest size (a 4K screen shows part of it: the shadow stays
/// small enough for the boot heap).
const MAX_COLS: usize = 240;
const MAX_ROWS: usize = 100;
/// A render that took `d` cycles is followed by at least `RENDER_PACE * d`
/// cycles without one (see the module documentation).
pub const RENDER_PACE: u64 = 9;
/// Printable ASCII, the glyphs kept pre-rendered.
const CACHED: core::ops::RangeInclusive<char> = ' '..='~';
/// What an ill-formed byte sequence looks like.
const REPLACEMENT: char = usercore::utf8::REPLACEMENT;

/// Where the parser of terminal control sequences is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After `ESC [`, with the number read so far.
    Csi(usize),
}

/// The text: a grid of cells whose rows form a ring, and a cursor.
pub struct Grid {
    cols: usize,
    rows: usize,
    /// `rows * cols` cells; screen row `r` is ring row `(top + r) % rows`.
    cells: Vec<char>,
    top: usize,
    /// Cursor: column and screen row.
    col: usize,
    row: usize,
    escape: Escape,
    /// A character from a program that its last write left unfinished.
    utf8: Utf8Decoder,
}

impl Grid {
    fn new(cols: usize, rows: usize) -> Option<Grid> {
        let cols = cols.clamp(1, MAX_COLS);
        let rows = rows.clamp(1, MAX_ROWS);
        let mut cells = Vec::new();
        cells.try_reserve_exact(cols * rows).ok()?;
        cells.resize(cols * rows, ' ');
        Some(Grid {
            cols,
            rows,
            cells,
            top: 0,
            col: 0,
            row: 0,
            escape: Escape::None,
            utf8: Utf8Decoder::new(),
        })
    }

    /// Columns and rows.
    pub fn size(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    /// The cursor's column and row.
    pub fn cursor(&self) -> (usize, usize) {
        (self.col, self.row)
    }

    /// The character in a cell (screen coordinates).
    pub fn cell(&self, col: usize, row: usize) -> char {
        let r = (self.top + row) % self.rows;
        self.cells[r * self.cols + col]
    }

    /// Screen row `row` as text, trailing blanks removed.
    pub fn line(&self, row: usize) -> alloc::string::String {
        let r = (self.top + row) % self.rows;
        let s: alloc::string::String = self.cells[r * self.cols..(r + 1) * self.cols]
            .iter()
            .collect();
        alloc::string::String::from(s.trim_end())
    }

    fn set(&mut self, col: usize, row: usize, c: char) {
        let r = (self.top + row) % self.rows;
        self.cells[r * self.cols + col] = c;
    }

    fn clear(&mut self) {
        self.cells.fill(' ');
        self.top = 0;
        self.col = 0;
        self.row = 0;
    }

    fn newline(&mut self) {
        self.col = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
            return;
        }
        // Scroll: the oldest row becomes the new, blank, last row.
        let r = self.top;
        self.cells[r * self.cols..(r + 1) * self.cols].fill(' ');
        self.top = (self.top + 1) % self.rows;
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
                    'D' => self.col = self.col.saturating_sub(n),
                    'C' => self.col = (self.col + n).min(self.cols - 1),
                    // Erase from the cursor to the end of the line.
                    'K' => {
                        for col in self.col..self.cols {
                            self.set(col, self.row, ' ');
                        }
                    }
                    // Clear the screen (`ESC [ 2 J`) and home (`ESC [ H`).
                    'J' => self.cells.fill(' '),
                    'H' => {
                        self.col = 0;
                        self.row = 0;
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
            '\r' => self.col = 0,
            '\x08' => self.col = self.col.saturating_sub(1),
            '\t' => {
                let next = (self.col / 8 + 1) * 8;
                self.col = next.min(self.cols - 1);
            }
            // Other control characters draw nothing.
            c if (c as u32) < 0x20 || c == '\x7f' => {}
            c => {
                if self.col >= self.cols {
                    self.newline();
                }
                self.set(self.col, self.row, c);
                self.col += 1;
            }
        }
    }

    /// Bytes from a program: decoded as UTF-8 with the state of the last
    /// write.
    fn put_bytes(&mut self, bytes: &[u8]) {
        let mut utf8 = self.utf8;
        utf8.push_all(bytes, |c| self.put_char(c));
        self.utf8 = utf8;
    }
}

/// The bytes of each cached glyph: `LINE_HEIGHT` rows of `CHAR_WIDTH`
/// pixels as the framebuffer stores them.
struct Glyphs {
    bytes: Vec<u8>,
    per_glyph: usize,
}

pub struct FbConsole {
    buffer: &'static mut [u8],
    info: FrameBufferInfo,
    grid: Grid,
    /// What the screen shows, cell by cell (screen coordinates).
    shown: Vec<char>,
    /// Where the cursor bar is drawn, if it is.
    shown_cursor: Option<(usize, usize)>,
    glyphs: Option<Glyphs>,
    /// The grid changed since the last render.
    dirty: bool,
    /// TSC before which the next render waits (see [`RENDER_PACE`]).
    next_render: u64,
    /// Rendering held back for a picture ([`pause_text`]).
    paused: bool,
}

static CONSOLE: IrqMutex<Option<FbConsole>> = IrqMutex::new(None);

/// Set for good by [`force_unlock`]: render every write at once.
static FATAL: AtomicBool = AtomicBool::new(false);

pub fn init(fb: &'static mut FrameBuffer) {
    let info = fb.info();
    let cols = info.width.saturating_sub(2 * MARGIN) / CHAR_WIDTH;
    let rows = info.height.saturating_sub(2 * MARGIN) / LINE_HEIGHT;
    let Some(grid) = Grid::new(cols, rows) else {
        return;
    };
    let mut shown = Vec::new();
    if shown.try_reserve_exact(grid.cells.len()).is_err() {
        return;
    }
    shown.resize(grid.cells.len(), ' ');
    let mut console = FbConsole {
        buffer: fb.buffer_mut(),
        info,
        grid,
        shown,
        shown_cursor: None,
        glyphs: None,
        dirty: true,
        next_render: 0,
        paused: false,
    };
    console.glyphs = console.make_glyphs();
    console.clear();
    *CONSOLE.lock() = Some(console);
}

/// The framebuffer's virtual address and length in bytes.
pub fn buffer_range() -> Option<(u64, u64)> {
    CONSOLE
        .lock()
        .as_ref()
        .map(|c| (c.buffer.as_ptr() as u64, c.buffer.len() as u64))
}

/// Maps the framebuffer write-combining where the CPU allows (once, at
/// boot, after memory management is up); true if it is.
pub fn map_write_combining() -> bool {
    // Not under the console lock: the page tables have their own, and the
    // mapping stays present throughout (only its memory type changes).
    buffer_range().is_some_and(|(va, len)| crate::mm::vmalloc::set_write_combining(va, len))
}

/// The framebuffer geometry, if there is one (for the boot banner).
pub fn info() -> Option<FrameBufferInfo> {
    CONSOLE.lock().as_ref().map(|c| c.info)
}

/// Kernel text (the log, the shell): drawn as it is, without touching a
/// program's unfinished character.
pub fn write_str(s: &str) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        for c in s.chars() {
            console.grid.put_char(c);
        }
        console.changed();
    }
}

/// Bytes a program wrote: UTF-8, decoded across writes.
pub fn write_bytes(bytes: &[u8]) {
    if let Some(console) = CONSOLE.lock().as_mut() {
        console.grid.put_bytes(bytes);
        console.changed();
    }
}

/// The timer's share: renders text that waited for it.
pub fn tick() {
    if let Some(mut guard) = CONSOLE.try_lock() {
        if let Some(console) = guard.as_mut() {
            if console.dirty && !console.paused && crate::time::rdtsc() >= console.next_render {
                console.render();
            }
        }
    }
}

/// Renders whatever waits, now (before the machine stops).
pub fn flush() {
    if let Some(console) = CONSOLE.lock().as_mut() {
        if console.dirty && !console.paused {
            console.render();
        }
    }
}

/// Runs `f` on the text grid (tests: what the screen shows); `None`
/// without a framebuffer.
pub fn with_grid<R>(f: impl FnOnce(&Grid) -> R) -> Option<R> {
    CONSOLE.lock().as_ref().map(|c| f(&c.grid))
}

/// Tests: renders what waits, then reads the framebuffer back and checks
/// that every cell holding printable ASCII shows exactly its glyph (the
/// cursor's two pixel rows aside), and that the screen's record agrees
/// with the grid. Returns the cells checked; `Err` names the first cell
/// that differs. (Only tests read video memory.)
pub fn check_screen() -> Result<usize, alloc::string::String> {
    let mut guard = CONSOLE.lock();
    let Some(console) = guard.as_mut() else {
        return Ok(0);
    };
    if console.paused {
        return Err("text is paused".into());
    }
    console.render();
    let Some(glyphs) = console.glyphs.as_ref() else {
        return Err("no glyph cache".into());
    };
    let (cols, rows) = console.grid.size();
    let bpp = console.info.bytes_per_pixel;
    let row_bytes = CHAR_WIDTH * bpp;
    let cursor = console.shown_cursor;
    let mut checked = 0;
    for row in 0..rows {
        for col in 0..cols {
            let c = console.grid.cell(col, row);
            if console.shown[row * cols + col] != c {
                return Err(alloc::format!(
                    "cell ({col}, {row}): screen record differs from the grid"
                ));
            }
            if !CACHED.contains(&c) {
                continue;
            }
            let first = (c as usize - *CACHED.start() as usize) * glyphs.per_glyph;
            let glyph = &glyphs.bytes[first..first + glyphs.per_glyph];
            let (x, y) = cell_origin(col, row);
            let lines = if cursor == Some((col, row)) {
                LINE_HEIGHT - 2
            } else {
                LINE_HEIGHT
            };
            for (dy, want) in glyph.chunks_exact(row_bytes).take(lines).enumerate() {
                let start = ((y + dy) * console.info.stride + x) * bpp;
                if console.buffer.get(start..start + row_bytes) != Some(want) {
                    return Err(alloc::format!(
                        "cell ({col}, {row}) should show {c:?}: pixel row {dy} differs"
                    ));
                }
            }
            checked += 1;
        }
    }
    Ok(checked)
}

/// Holds text output back until [`resume_text`] (for full-screen pictures).
/// False if there is no framebuffer.
pub fn pause_text() -> bool {
    match CONSOLE.lock().as_mut() {
        Some(console) => {
            console.paused = true;
            true
        }
        None => false,
    }
}

/// Clears the screen and draws the text, including what came while paused.
pub fn resume_text() {
    if let Some(console) = CONSOLE.lock().as_mut() {
        if console.paused {
            console.paused = false;
            console.blank_screen();
            console.render();
        }
    }
}

/// Runs `f` on the framebuffer to draw on it; `None` without one.
pub fn draw<R>(f: impl FnOnce(&mut FbConsole) -> R) -> Option<R> {
    CONSOLE.lock().as_mut().map(f)
}

/// After a fatal error the interrupted holder of the lock will never run
/// again; from now on every write renders at once, even over a picture.
pub fn force_unlock(fatal: &Fatal) {
    FATAL.store(true, Ordering::SeqCst);
    CONSOLE.force_unlock(fatal);
    if let Some(console) = CONSOLE.lock().as_mut() {
        if console.paused {
            console.paused = false;
            console.blank_screen();
        }
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
            if rgb == 0 {
                line.fill(0);
                continue;
            }
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

    /// Blanks the screen and the text and puts the cursor at the top left.
    pub fn clear(&mut self) {
        self.grid.clear();
        self.blank_screen();
        self.changed();
    }

    /// Blanks the framebuffer (the text stays in the grid).
    fn blank_screen(&mut self) {
        self.buffer.fill(0);
        self.shown.fill(' ');
        self.shown_cursor = None;
        self.dirty = true;
    }

    /// After a change to the grid: render now, or leave it to the timer.
    fn changed(&mut self) {
        self.dirty = true;
        if self.paused {
            return;
        }
        // Before the timer runs (boot) and after a fatal error nothing
        // else would render it.
        if crate::time::ticks() == 0
            || FATAL.load(Ordering::Relaxed)
            || crate::time::rdtsc() >= self.next_render
        {
            self.render();
        }
    }

    /// Draws every cell whose character differs from what the screen
    /// shows, then the cursor.
    fn render(&mut self) {
        let start = crate::time::rdtsc();
        let (cols, rows) = self.grid.size();
        if let Some((col, row)) = self.shown_cursor.take() {
            let (x, y) = cell_origin(col, row);
            self.fill_rect(x, y + LINE_HEIGHT - 2, CHAR_WIDTH, 2, 0);
        }
        for row in 0..rows {
            let r = (self.grid.top + row) % rows;
            for col in 0..cols {
                let want = self.grid.cells[r * cols + col];
                let at = row * cols + col;
                if self.shown[at] != want {
                    self.shown[at] = want;
                    let (x, y) = cell_origin(col, row);
                    self.text_glyph(x, y, want);
                }
            }
        }
        let (col, row) = self.grid.cursor();
        let col = col.min(cols - 1);
        let (x, y) = cell_origin(col, row);
        self.fill_rect(x, y + LINE_HEIGHT - 2, CHAR_WIDTH, 2, TEXT_RGB);
        self.shown_cursor = Some((col, row));
        self.dirty = false;
        let end = crate::time::rdtsc();
        self.next_render = end + RENDER_PACE * end.saturating_sub(start);
    }

    /// A text cell: from the glyph cache if it holds `c`.
    fn text_glyph(&mut self, x: usize, y: usize, c: char) {
        let Some(glyphs) = self.glyphs.as_ref() else {
            return self.glyph(x, y, c, TEXT_RGB, 0);
        };
        if !CACHED.contains(&c) {
            return self.glyph(x, y, c, TEXT_RGB, 0);
        }
        let bpp = self.info.bytes_per_pixel;
        let row_bytes = CHAR_WIDTH * bpp;
        let first = (c as usize - *CACHED.start() as usize) * glyphs.per_glyph;
        let glyph = &glyphs.bytes[first..first + glyphs.per_glyph];
        for (dy, src) in glyph.chunks_exact(row_bytes).enumerate() {
            let start = ((y + dy) * self.info.stride + x) * bpp;
            if let Some(dst) = self.buffer.get_mut(start..start + row_bytes) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Pre-renders the printable ASCII glyphs in the text colour (`None`
    /// if there is no memory for them: then every glyph is drawn from the
    /// font).
    fn make_glyphs(&self) -> Option<Glyphs> {
        let bpp = self.info.bytes_per_pixel;
        let per_glyph = CHAR_WIDTH * bpp * LINE_HEIGHT;
        let count = CACHED.count();
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(per_glyph * count).ok()?;
        bytes.resize(per_glyph * count, 0);
        let mut pixel = [0u8; 8];
        for (i, c) in CACHED.enumerate() {
            let raster = get_raster(c, FONT_WEIGHT, FONT_HEIGHT)?;
            for (dy, row) in raster.raster().iter().enumerate() {
                for (dx, &intensity) in row.iter().enumerate().take(CHAR_WIDTH) {
                    let n = self.encode(blend(0, TEXT_RGB, intensity), &mut pixel);
                    let at = i * per_glyph + (dy * CHAR_WIDTH + dx) * bpp;
                    bytes[at..at + n].copy_from_slice(&pixel[..n]);
                }
            }
        }
        Some(Glyphs { bytes, per_glyph })
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
            .or_else(|| get_raster(REPLACEMENT, FONT_WEIGHT, FONT_HEIGHT))
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

/// The pixel position of a cell's top-left corner.
fn cell_origin(col: usize, row: usize) -> (usize, usize) {
    (MARGIN + col * CHAR_WIDTH, MARGIN + row * LINE_HEIGHT)
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
