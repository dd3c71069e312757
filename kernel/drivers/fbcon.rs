//! A text console on the bootloader's framebuffer, for PCs with no serial
//! port. Glyphs come from the `noto-sans-mono-bitmap` font.

use bootloader_api::info::{FrameBuffer, FrameBufferInfo, PixelFormat};
use noto_sans_mono_bitmap::{get_raster, get_raster_width, FontWeight, RasterHeight};
use spin::Mutex;

const FONT_WEIGHT: FontWeight = FontWeight::Regular;
const FONT_HEIGHT: RasterHeight = RasterHeight::Size16;
const CHAR_WIDTH: usize = get_raster_width(FONT_WEIGHT, FONT_HEIGHT);
const LINE_HEIGHT: usize = FONT_HEIGHT.val() + 2;
const MARGIN: usize = 4;

pub struct FbConsole {
    buffer: &'static mut [u8],
    info: FrameBufferInfo,
    x: usize,
    y: usize,
}

static CONSOLE: Mutex<Option<FbConsole>> = Mutex::new(None);

pub fn init(fb: &'static mut FrameBuffer) {
    let info = fb.info();
    let mut console = FbConsole {
        buffer: fb.buffer_mut(),
        info,
        x: MARGIN,
        y: MARGIN,
    };
    console.clear();
    *CONSOLE.lock() = Some(console);
}

/// The framebuffer geometry, if there is one (for the boot banner).
pub fn info() -> Option<FrameBufferInfo> {
    x86_64::instructions::interrupts::without_interrupts(|| CONSOLE.lock().as_ref().map(|c| c.info))
}

pub fn write_str(s: &str) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(console) = CONSOLE.lock().as_mut() {
            for c in s.chars() {
                console.put_char(c);
            }
        }
    });
}

/// # Safety
/// Only for the fatal-error path, with interrupts off, when nothing else runs.
pub unsafe fn force_unlock() {
    // SAFETY: the caller guarantees the previous holder will never resume.
    unsafe { CONSOLE.force_unlock() };
}

impl FbConsole {
    fn clear(&mut self) {
        self.buffer.fill(0);
        self.x = MARGIN;
        self.y = MARGIN;
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

    fn put_char(&mut self, c: char) {
        match c {
            '\n' => self.newline(),
            '\r' => self.x = MARGIN,
            c => {
                if self.x + CHAR_WIDTH + MARGIN > self.info.width {
                    self.newline();
                }
                let raster = get_raster(c, FONT_WEIGHT, FONT_HEIGHT)
                    .or_else(|| get_raster('?', FONT_WEIGHT, FONT_HEIGHT));
                if let Some(raster) = raster {
                    for (dy, row) in raster.raster().iter().enumerate() {
                        for (dx, &intensity) in row.iter().enumerate() {
                            self.put_pixel(self.x + dx, self.y + dy, intensity);
                        }
                    }
                }
                self.x += CHAR_WIDTH;
            }
        }
    }

    fn put_pixel(&mut self, x: usize, y: usize, intensity: u8) {
        let bpp = self.info.bytes_per_pixel;
        let offset = (y * self.info.stride + x) * bpp;
        let Some(pixel) = self.buffer.get_mut(offset..offset + bpp) else {
            return;
        };
        // Light grey text on black.
        let v = (intensity as u16 * 0xd0 / 0xff) as u8;
        match self.info.pixel_format {
            PixelFormat::Rgb | PixelFormat::Bgr => {
                pixel[..3].copy_from_slice(&[v, v, v]);
            }
            PixelFormat::U8 => pixel[0] = v,
            _ => pixel[0] = v,
        }
    }
}
