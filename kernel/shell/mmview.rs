//! `mmview`: physical memory as a picture, one cell per frame (or per
//! group of frames when there are more frames than fit), coloured by
//! owner — user pages by LRU list too (active or inactive, anonymous or
//! file) — with a legend and totals, redrawn every 200 ms while programs
//! run. Watching `run cow-demo &` or a `malloc-stress` fill memory green
//! and page tables appear is the point.
//!
//! The picture comes from the buddy allocator's metadata, block by block
//! (`BuddyAllocator::blocks`), in one pass under its lock. Without a
//! framebuffer (or with `-t`) a coarse text version is printed instead.

use alloc::vec::Vec;
use core::fmt::Write;

use mmcore::buddy::BlockState;
use mmcore::FrameKind;

use super::{Args, Result};
use crate::drivers::fbcon::{self, FbConsole};
use crate::mm::kalloc::{self, AllocError};
use crate::mm::layout::PAGE_SIZE;
use crate::mm::vmstat;

/// Refresh period.
const REFRESH_MS: u64 = 200;

/// A cell's colour: a [`FrameKind`] (as `u8`), or one of these for a user
/// page on an active LRU list (a user page on an inactive list, or on
/// none, has its kind's colour).
pub const ANON_ACTIVE: u8 = FrameKind::COUNT as u8;
/// A page-cache page on the active file list.
pub const FILE_ACTIVE: u8 = FrameKind::COUNT as u8 + 1;
/// Cell colours.
pub const CELL_KINDS: usize = FrameKind::COUNT + 2;

/// The frame kind a cell colour belongs to.
pub fn cell_kind(cell: u8) -> FrameKind {
    match cell {
        ANON_ACTIVE => FrameKind::UserAnon,
        FILE_ACTIVE => FrameKind::UserFile,
        c => FrameKind::from_u8(c),
    }
}

/// Cell colours in legend order, with colour (0xRRGGBB), name and text
/// symbol.
pub const KINDS: [(u8, u32, &str, char); CELL_KINDS] = [
    (FrameKind::Free as u8, 0x26_2b33, "free", '.'),
    (FrameKind::Reserved as u8, 0x6b_6b6b, "reserved", '#'),
    (FrameKind::Kernel as u8, 0x3d_6bff, "kernel", 'K'),
    (FrameKind::Slab as u8, 0xff_a01a, "slab", 'S'),
    (FrameKind::PageTable as u8, 0xe0_40e0, "page tables", 'P'),
    (FrameKind::ZeroPage as u8, 0xff_ffff, "zero page", 'Z'),
    (ANON_ACTIVE, 0x3c_d03c, "anon active", 'A'),
    (FrameKind::UserAnon as u8, 0x1e_6e1e, "anon inact.", 'a'),
    (FILE_ACTIVE, 0x20_d8d8, "file active", 'F'),
    (FrameKind::UserFile as u8, 0x10_7070, "file inact.", 'f'),
];

/// Which colour wins a tie for a cell: the rarer, more telling owners
/// first.
const TIE_ORDER: [u8; CELL_KINDS] = [
    FrameKind::ZeroPage as u8,
    FrameKind::PageTable as u8,
    ANON_ACTIVE,
    FrameKind::UserAnon as u8,
    FILE_ACTIVE,
    FrameKind::UserFile as u8,
    FrameKind::Slab as u8,
    FrameKind::Kernel as u8,
    FrameKind::Reserved as u8,
    FrameKind::Free as u8,
];

fn entry(cell: u8) -> &'static (u8, u32, &'static str, char) {
    &KINDS[KINDS.iter().position(|k| k.0 == cell).unwrap_or(0)]
}

/// Physical memory, cell by cell.
pub struct Picture {
    /// First frame described.
    pub base_pfn: u64,
    /// Frames described (the allocator's span: lowest to highest RAM).
    pub frames: u64,
    pub frames_per_cell: u64,
    /// The colour of most of each cell's frames (`FrameKind as u8`, or
    /// [`ANON_ACTIVE`] / [`FILE_ACTIVE`]).
    pub cells: Vec<u8>,
    /// Frames per owner over the whole span (free and reserved included).
    pub totals: [u64; FrameKind::COUNT],
    /// Of the user pages, those on the active anon and file lists.
    pub active: [u64; 2],
    /// Frames on the CPUs' page lists: drawn (and in `totals`) as the kind
    /// the buddy allocator handed them out as, counted free by meminfo.
    pub percpu: u64,
}

impl Picture {
    /// Frames of one legend colour.
    pub fn total(&self, cell: u8) -> u64 {
        match cell {
            ANON_ACTIVE => self.active[0],
            FILE_ACTIVE => self.active[1],
            c if c == FrameKind::UserAnon as u8 => self.totals[c as usize] - self.active[0],
            c if c == FrameKind::UserFile as u8 => self.totals[c as usize] - self.active[1],
            c => self.totals[c as usize],
        }
    }
}

/// The frames the allocator describes: `(first pfn, count)`.
pub fn span() -> (u64, u64) {
    vmstat::frame_span()
}

fn majority(counts: &[u64; CELL_KINDS]) -> u8 {
    let mut best = FrameKind::Free as u8;
    let mut best_count = 0;
    for cell in TIE_ORDER {
        if counts[cell as usize] > best_count {
            best = cell;
            best_count = counts[cell as usize];
        }
    }
    best
}

/// Takes the picture with `frames_per_cell` frames in each cell.
pub fn picture(frames_per_cell: u64) -> Picture {
    try_picture(frames_per_cell).expect("memory for the picture")
}

/// [`picture`], failing when the heap has no room for the cells (mmview
/// is what one watches while memory runs out).
pub fn try_picture(frames_per_cell: u64) -> core::result::Result<Picture, AllocError> {
    let per = frames_per_cell.max(1);
    let (base, frames) = span();
    // Allocated before the allocator's lock is taken: the heap needs it.
    let mut cells = kalloc::try_zeroed(frames.div_ceil(per) as usize)?;
    cells.fill(FrameKind::Free as u8);
    let mut totals = [0u64; FrameKind::COUNT];
    let mut active = [0u64; 2];
    let percpu;
    {
        let mut counts = [0u64; CELL_KINDS];
        let mut current = 0u64;
        let finish = |cells: &mut [u8], counts: &mut [u64; CELL_KINDS], cell: u64| {
            if counts.iter().any(|&c| c > 0) {
                if let Some(slot) = cells.get_mut(cell as usize) {
                    *slot = majority(counts);
                }
                *counts = [0; CELL_KINDS];
            }
        };
        percpu = vmstat::visit_blocks_lru(|block, on_active| {
            let kind = match block.state {
                BlockState::Reserved => FrameKind::Reserved,
                BlockState::Free => FrameKind::Free,
                BlockState::Allocated(kind) => kind,
            };
            let mut pfn = block.pfn.0 - base;
            let mut left = (1u64 << block.order).min(frames.saturating_sub(pfn));
            totals[kind as usize] += left;
            let kind = match (kind, on_active) {
                (FrameKind::UserAnon, true) => {
                    active[0] += left;
                    ANON_ACTIVE
                }
                (FrameKind::UserFile, true) => {
                    active[1] += left;
                    FILE_ACTIVE
                }
                (kind, _) => kind as u8,
            };
            while left > 0 {
                let cell = pfn / per;
                if cell != current {
                    finish(&mut cells, &mut counts, current);
                    current = cell;
                }
                if pfn % per == 0 && left >= per {
                    // Whole cells of this one block: no counting needed.
                    let whole = left / per;
                    let end = ((cell + whole) as usize).min(cells.len());
                    cells[cell as usize..end].fill(kind);
                    pfn += whole * per;
                    left -= whole * per;
                    current = cell + whole;
                } else {
                    let take = (per - pfn % per).min(left);
                    counts[kind as usize] += take;
                    pfn += take;
                    left -= take;
                }
            }
        });
        finish(&mut cells, &mut counts, current);
    }
    Ok(Picture {
        base_pfn: base,
        frames,
        frames_per_cell: per,
        cells,
        totals,
        active,
        percpu,
    })
}

fn mib(frames: u64) -> f64 {
    (frames * PAGE_SIZE) as f64 / (1u64 << 20) as f64
}

/// Columns of the text picture.
const TEXT_COLUMNS: u64 = 64;
/// At most this many rows.
const TEXT_ROWS: u64 = 32;

/// The picture as text: one character per group of frames.
pub fn write_text(out: &mut dyn Write) -> Result {
    let (_, frames) = span();
    let per = frames
        .div_ceil(TEXT_COLUMNS * TEXT_ROWS)
        .next_power_of_two();
    let pic = try_picture(per).map_err(|_| super::ShellError::OutOfMemory { command: "mmview" })?;
    writeln!(
        out,
        "physical memory, frames {:#x}..{:#x}; one character = {} frame{} ({} KiB), by majority owner:",
        pic.base_pfn,
        pic.base_pfn + pic.frames,
        per,
        if per == 1 { "" } else { "s" },
        per * PAGE_SIZE / 1024
    )?;
    for (row, chunk) in pic.cells.chunks(TEXT_COLUMNS as usize).enumerate() {
        let addr = (pic.base_pfn + row as u64 * TEXT_COLUMNS * per) * PAGE_SIZE;
        write!(out, "{addr:#011x} ")?;
        for &cell in chunk {
            out.write_char(entry(cell).3)?;
        }
        writeln!(out)?;
    }
    write_totals(&pic, out)
}

fn write_totals(pic: &Picture, out: &mut dyn Write) -> Result {
    for (i, (cell, _, name, symbol)) in KINDS.iter().enumerate() {
        let sep = if i % 4 == 3 { "\n" } else { "  " };
        write!(
            out,
            "{symbol} {name:<11} {:>9.1} MiB{sep}",
            mib(pic.total(*cell))
        )?;
    }
    if !KINDS.len().is_multiple_of(4) {
        writeln!(out)?;
    }
    if pic.percpu > 0 {
        writeln!(
            out,
            "of which {:.1} MiB on per-CPU page lists (kernel/page-table colours; free in meminfo)",
            mib(pic.percpu)
        )?;
    }
    writeln!(out, "{}", Reclaim::now())?;
    let p = crate::mm::psi::snapshot();
    writeln!(
        out,
        "memory pressure avg10: some {} full {}",
        avg10(&p.some),
        avg10(&p.full)
    )?;
    Ok(())
}

/// `12.34%`: a pressure line's 10-second average.
fn avg10(line: &reclaimcore::psi::Line) -> super::StackText<16> {
    let (int, frac) = line.percent(0);
    super::StackText::format(format_args!("{int}.{frac:02}%"))
}

/// The LRU lists' lengths and swap use, as one line under the picture
/// (swap pages are not frames, so they are not cells).
struct Reclaim {
    /// `[anon, file]` × `[active, inactive]`.
    lru: [[u64; 2]; 2],
    swap: (u64, u64, u64),
}

impl Reclaim {
    fn now() -> Reclaim {
        let (lru, swap) = vmstat::lru_and_swap();
        Reclaim { lru, swap }
    }
}

impl core::fmt::Display for Reclaim {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let (total, used, cached) = self.swap;
        let [[aa, ai], [fa, fi]] = self.lru;
        write!(
            f,
            "LRU anon {:.1}+{:.1} MiB, file {:.1}+{:.1} MiB (active+inactive)  ",
            mib(aa),
            mib(ai),
            mib(fa),
            mib(fi)
        )?;
        if total == 0 {
            f.write_str("swap off")
        } else {
            write!(
                f,
                "swap {:.1} / {:.1} MiB used ({}), {} pages in the swap cache",
                mib(used),
                mib(total),
                super::swap::device_path(),
                cached
            )
        }
    }
}

/// How cells sit on the screen.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    pub x0: usize,
    pub y0: usize,
    pub cols: usize,
    pub rows: usize,
    /// Distance between cell origins.
    pub pitch: usize,
    /// Drawn size of a cell (pitch minus a gap when cells are big).
    pub cell: usize,
    pub frames_per_cell: u64,
}

/// Fits `frames` into a `width` x `height` area at `(x0, y0)`: the largest
/// cells that hold one frame each, or else 2x2 pixel cells holding the
/// smallest power of two of frames that fits.
pub fn grid(x0: usize, y0: usize, width: usize, height: usize, frames: u64) -> Grid {
    let fit = |pitch: usize| {
        let cols = (width / pitch).max(1);
        let rows = (height / pitch).max(1);
        (cols, rows, (cols * rows) as u64)
    };
    for pitch in [16, 12, 10, 8, 6, 5, 4, 3, 2] {
        let (cols, rows, capacity) = fit(pitch);
        if capacity >= frames {
            return Grid {
                x0,
                y0,
                cols,
                rows,
                pitch,
                cell: if pitch >= 6 { pitch - 1 } else { pitch },
                frames_per_cell: 1,
            };
        }
    }
    let pitch = 2;
    let (cols, rows, capacity) = fit(pitch);
    Grid {
        x0,
        y0,
        cols,
        rows,
        pitch,
        cell: pitch,
        frames_per_cell: frames.div_ceil(capacity).next_power_of_two(),
    }
}

const BACKGROUND: u32 = 0x00_0000;
const TEXT: u32 = 0xd0_d0d0;

/// Everything drawn but the cells: title, legend and totals.
fn draw_frame(fb: &mut FbConsole, g: &Grid, pic: &Picture, refreshes: u64) {
    let (width, height) = fb.size();
    let (cw, ch) = fb.char_size();
    fb.fill_rect(0, 0, width, g.y0, BACKGROUND);
    let title = super::StackText::<256>::format(format_args!(
        "Ferrite mmview: physical memory {:#x}-{:#x}, 1 cell = {} frame{} ({} KiB); refresh {} ms; a key stops",
        pic.base_pfn * PAGE_SIZE,
        (pic.base_pfn + pic.frames) * PAGE_SIZE,
        g.frames_per_cell,
        if g.frames_per_cell == 1 { "" } else { "s" },
        g.frames_per_cell * PAGE_SIZE / 1024,
        REFRESH_MS
    ));
    fb.text_at(g.x0, 4, title.as_str(), TEXT, BACKGROUND);
    // Right below the rows in use.
    let rows = pic.cells.len().div_ceil(g.cols).min(g.rows);
    let legend_y = g.y0 + rows * g.pitch + 8;
    fb.fill_rect(
        0,
        legend_y,
        width,
        height.saturating_sub(legend_y),
        BACKGROUND,
    );
    let column = (width - 2 * g.x0) / 4;
    for (i, (cell, colour, name, _)) in KINDS.iter().enumerate() {
        let x = g.x0 + (i % 4) * column;
        let y = legend_y + (i / 4) * ch;
        fb.fill_rect(x, y + 3, cw + 2, ch - 6, *colour);
        let label = super::StackText::<64>::format(format_args!(
            "{name:<11} {:>8.1} MiB",
            mib(pic.total(*cell))
        ));
        fb.text_at(x + 2 * cw, y, label.as_str(), TEXT, BACKGROUND);
    }
    let v = crate::mm::vmstat::snapshot();
    let procs = crate::proc::sched::count();
    let p = crate::mm::psi::snapshot();
    let status = super::StackText::<256>::format(format_args!(
        "processes {procs}  pgfault {}  pgmajfault {}  cow_copy {}  pswpin {}  pswpout {}  oom_kill {}  pressure some {} full {}  refresh #{refreshes}",
        v.pgfault, v.pgmajfault, v.cow_copy, v.pswpin, v.pswpout, v.oom_kill, avg10(&p.some), avg10(&p.full)
    ));
    fb.text_at(
        g.x0,
        legend_y + KINDS.len().div_ceil(4) * ch + 4,
        status.as_str(),
        TEXT,
        BACKGROUND,
    );
    let reclaim = super::StackText::<160>::format(format_args!("{}", Reclaim::now()));
    fb.text_at(
        g.x0,
        legend_y + (KINDS.len().div_ceil(4) + 1) * ch + 4,
        reclaim.as_str(),
        TEXT,
        BACKGROUND,
    );
}

/// Draws the cells that changed since `previous` (all if it is empty).
fn draw_cells(g: &Grid, cells: &[u8], previous: &[u8]) {
    // A row at a time, so interrupts are never off for long.
    for (row, chunk) in cells.chunks(g.cols).enumerate() {
        let start = row * g.cols;
        let old = previous.get(start..start + chunk.len());
        if old == Some(chunk) {
            continue;
        }
        fbcon::draw(|fb| {
            for (col, &cell) in chunk.iter().enumerate() {
                if old.is_some_and(|o| o[col] == cell) {
                    continue;
                }
                let colour = entry(cell).1;
                fb.fill_rect(
                    g.x0 + col * g.pitch,
                    g.y0 + row * g.pitch,
                    g.cell,
                    g.cell,
                    colour,
                );
            }
        });
    }
}

/// Works out the grid for this screen.
fn screen_grid() -> Option<Grid> {
    let (width, height, ch) = fbcon::draw(|fb| {
        let (w, h) = fb.size();
        (w, h, fb.char_size().1)
    })?;
    let (_, frames) = span();
    let top = ch + 10;
    let bottom = (KINDS.len().div_ceil(4) + 2) * ch + 16;
    Some(grid(
        8,
        top,
        width.saturating_sub(16),
        height.saturating_sub(top + bottom),
        frames,
    ))
}

fn key_pressed() -> bool {
    let mut buf = [0u8; 16];
    crate::proc::console::try_read(&mut buf) > 0
}

/// Draws and redraws until a key arrives or `seconds` pass; returns the
/// number of pictures drawn.
fn live(g: &Grid, seconds: Option<u64>) -> u64 {
    let start = crate::time::uptime_ms();
    let mut previous: Vec<u8> = Vec::new();
    let mut refreshes = 0;
    loop {
        // No memory for a new picture: keep the last one on screen and
        // try again at the next refresh.
        let Ok(pic) = try_picture(g.frames_per_cell) else {
            if key_pressed() {
                return refreshes;
            }
            crate::proc::sched::sleep_ticks(REFRESH_MS * crate::time::TICK_HZ / 1000);
            continue;
        };
        if previous.is_empty() {
            fbcon::draw(|fb| {
                let (w, h) = fb.size();
                fb.fill_rect(0, 0, w, h, BACKGROUND);
            });
        }
        draw_cells(g, &pic.cells, &previous);
        fbcon::draw(|fb| draw_frame(fb, g, &pic, refreshes));
        previous = pic.cells;
        refreshes += 1;
        let elapsed = crate::time::uptime_ms() - start;
        if seconds.is_some_and(|s| elapsed >= s * 1000) || key_pressed() {
            return refreshes;
        }
        crate::proc::sched::sleep_ticks(REFRESH_MS * crate::time::TICK_HZ / 1000);
        if key_pressed() {
            return refreshes;
        }
    }
}

pub fn command(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 1)?;
    let mut seconds = None;
    let mut text = false;
    match args.get(0) {
        None => {}
        Some("-t") => text = true,
        Some(_) => seconds = Some(args.number(0, "a number of seconds")?),
    }
    let grid = if text { None } else { screen_grid() };
    let Some(grid) = grid else {
        return write_text(out);
    };
    writeln!(
        out,
        "mmview: drawing on the framebuffer ({}); press a key to stop",
        match seconds {
            Some(s) => alloc::format!("for {s} s"),
            None => alloc::string::String::from("until a key"),
        }
    )?;
    fbcon::pause_text();
    let refreshes = live(&grid, seconds);
    fbcon::resume_text();
    writeln!(out, "mmview: stopped after {refreshes} pictures")?;
    Ok(())
}
