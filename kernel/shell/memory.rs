//! Memory views: `meminfo`, `free`, `vmstat`, `buddyinfo`, `slabinfo`,
//! `slabtop` and `memmap`, in Linux's formats and units.
//!
//! Numbers are gathered with interrupts off, so one view is one consistent
//! moment even while programs run (there is one CPU: nothing else runs
//! meanwhile). Nothing may allocate while the frame allocator's lock is
//! held (the heap takes that lock too), so buffers are made beforehand and
//! formatting happens afterwards.

use alloc::vec::Vec;
use core::fmt::Write;

use bootloader_api::info::MemoryRegionKind;

use mmcore::slab::CacheInfo;

use super::{Args, Result};
use crate::mm::kalloc;
use crate::mm::layout::PAGE_SIZE;

const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

pub use crate::procfs::mem::{caches, meminfo_snapshot, MemInfo};
use crate::procfs::{self, ProcError};

/// A `/proc` generator's result as the shell's: out of memory is the
/// command's `out of memory`.
fn shown(args: &Args, r: procfs::Result) -> Result {
    r.map_err(|e| match e {
        ProcError::NoMemory => args.oom(),
        e => args.failed_fmt(format_args!("{:?}", e)),
    })
}

/// `meminfo`: `/proc/meminfo`, then Ferrite's own lines (see `help
/// meminfo`) that account for every frame.
pub fn meminfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let m = meminfo_snapshot();
    shown(args, procfs::mem::meminfo_of(&m, out))?;
    shown(args, procfs::mem::meminfo_ferrite(&m, out))
}

pub fn free(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let m = meminfo_snapshot();
    let k = |pages: u64| pages * KB_PER_PAGE;
    let cache = k(m.cached);
    let used = k(m.total) - k(m.free) - cache;
    writeln!(
        out,
        "{:<4}{:>16}{:>12}{:>12}{:>12}{:>12}{:>12}",
        "", "total", "used", "free", "shared", "buff/cache", "available"
    )?;
    writeln!(
        out,
        "{:<4}{:>16}{:>12}{:>12}{:>12}{:>12}{:>12}",
        "Mem:",
        k(m.total),
        used,
        k(m.free),
        0,
        cache,
        k(m.available)
    )?;
    writeln!(
        out,
        "{:<4}{:>16}{:>12}{:>12}",
        "Swap:",
        k(m.swap_total),
        k(m.swap_used),
        k(m.swap_total - m.swap_used)
    )?;
    Ok(())
}

/// `vmstat`: `/proc/vmstat`.
pub fn vmstat(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    shown(args, procfs::mem::vmstat(out))
}

/// `buddyinfo`: `/proc/buddyinfo`.
pub fn buddyinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    shown(args, procfs::mem::buddyinfo(out))
}

/// `zoneinfo`: `/proc/zoneinfo`, then kswapd's state.
pub fn zoneinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    shown(args, procfs::mem::zoneinfo(out))?;
    let w = crate::mm::kswapd::watermarks();
    writeln!(out, "  min_free_kbytes {}", w.min * KB_PER_PAGE)?;
    let kswapd = crate::proc::kswapd::pid()
        .and_then(|pid| crate::proc::sched::with_process(pid, |p| (pid, p.state.name(), p.ticks)));
    match kswapd {
        Some((pid, state, ticks)) => writeln!(out, "  kswapd0 pid {pid} {state}, {ticks} ticks")?,
        None => writeln!(out, "  kswapd0 not running")?,
    }
    Ok(())
}

/// `slabinfo`: `/proc/slabinfo`.
pub fn slabinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    shown(args, procfs::mem::slabinfo(out))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Bytes of frames a cache holds.
fn cache_bytes(c: &CacheInfo) -> u64 {
    c.num_slabs * c.pagesperslab as u64 * PAGE_SIZE
}

pub fn slabtop(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let mut list = caches().map_err(|_| args.oom())?;
    let active_objs: u64 = list.iter().map(|c| c.active_objs).sum();
    let objs: u64 = list.iter().map(|c| c.num_objs).sum();
    let active_slabs: u64 = list.iter().map(|c| c.active_slabs).sum();
    let slabs: u64 = list.iter().map(|c| c.num_slabs).sum();
    let active_caches = list.iter().filter(|c| c.active_objs > 0).count() as u64;
    let active_size: u64 = list.iter().map(|c| c.active_objs * c.objsize as u64).sum();
    let size: u64 = list.iter().map(|c| c.num_objs * c.objsize as u64).sum();
    let kib = |b: u64| b as f64 / 1024.0;
    let sizes = list
        .iter()
        .filter(|c| c.num_objs > 0)
        .map(|c| c.objsize as u64);
    let (min, max) = (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0));
    writeln!(
        out,
        " Active / Total Objects (% used)    : {active_objs} / {objs} ({:.1}%)",
        percent(active_objs, objs)
    )?;
    writeln!(
        out,
        " Active / Total Slabs (% used)      : {active_slabs} / {slabs} ({:.1}%)",
        percent(active_slabs, slabs)
    )?;
    writeln!(
        out,
        " Active / Total Caches (% used)     : {active_caches} / {} ({:.1}%)",
        list.len(),
        percent(active_caches, list.len() as u64)
    )?;
    writeln!(
        out,
        " Active / Total Size (% used)       : {:.2}K / {:.2}K ({:.1}%)",
        kib(active_size),
        kib(size),
        percent(active_size, size)
    )?;
    writeln!(
        out,
        " Minimum / Average / Maximum Object : {:.2}K / {:.2}K / {:.2}K",
        kib(min),
        kib(size.checked_div(objs).unwrap_or(0)),
        kib(max)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME"
    )?;
    list.sort_by(|a, b| cache_bytes(b).cmp(&cache_bytes(a)).then(a.name.cmp(b.name)));
    for c in &list {
        writeln!(
            out,
            "{:>6} {:>6} {:>3}% {:>7.2}K {:>6} {:>8} {:>9}K {}",
            c.num_objs,
            c.active_objs,
            percent(c.active_objs, c.num_objs) as u64,
            kib(c.objsize as u64),
            c.num_slabs,
            c.objperslab,
            cache_bytes(c) / 1024,
            c.name
        )?;
    }
    Ok(())
}

/// A region kind as the firmware calls it.
pub fn region_kind_name(kind: MemoryRegionKind) -> super::StackText<48> {
    let name = match kind {
        MemoryRegionKind::Usable => "usable",
        MemoryRegionKind::Bootloader => "bootloader (kernel, page tables, boot info)",
        MemoryRegionKind::UnknownBios(t) => match t {
            2 => "reserved (BIOS)",
            3 => "ACPI reclaimable (BIOS)",
            4 => "ACPI NVS (BIOS)",
            5 => "bad memory (BIOS)",
            t => return super::StackText::format(format_args!("BIOS type {t}")),
        },
        MemoryRegionKind::UnknownUefi(t) => match t {
            0 => "reserved (UEFI)",
            1 | 2 => "UEFI loader code/data",
            3 | 4 => "UEFI boot services code/data",
            5 | 6 => "UEFI runtime services code/data",
            7 => "conventional (UEFI)",
            8 => "unusable (UEFI)",
            9 => "ACPI reclaimable (UEFI)",
            10 => "ACPI NVS (UEFI)",
            11 | 12 => "MMIO (UEFI)",
            13 => "PAL code (UEFI)",
            14 => "persistent memory (UEFI)",
            t => return super::StackText::format(format_args!("UEFI type {t}")),
        },
        _ => "unknown",
    };
    super::StackText::format(format_args!("{name}"))
}

/// `4 KiB`, `1.5 MiB`, `2 GiB`.
pub fn human_size(bytes: u64) -> super::StackText<24> {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while bytes >= scale * 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    if bytes.is_multiple_of(scale) {
        super::StackText::format(format_args!("{} {}", bytes / scale, UNITS[unit]))
    } else {
        super::StackText::format(format_args!(
            "{:.1} {}",
            bytes as f64 / scale as f64,
            UNITS[unit]
        ))
    }
}

pub fn memmap(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let regions = crate::boot::facts().memory_regions;
    // Adjacent regions of one kind are shown as one (UEFI maps come in
    // ~130 pieces, mostly neighbours of the same type).
    let mut merged: Vec<(u64, u64, MemoryRegionKind)> =
        kalloc::try_with_capacity(regions.len()).map_err(|_| args.oom())?;
    for r in regions {
        let same = |last: MemoryRegionKind| {
            region_kind_name(last).as_str() == region_kind_name(r.kind).as_str()
        };
        match merged.last_mut() {
            Some((_, end, last)) if *end == r.start && same(*last) => *end = r.end,
            _ => merged.push((r.start, r.end, r.kind)),
        }
    }
    writeln!(
        out,
        "physical memory map from the {} firmware, via the bootloader ({} regions, {} after merging neighbours):",
        crate::boot::facts().firmware.name(),
        regions.len(),
        merged.len()
    )?;
    writeln!(out, "{:<18} {:<18} {:>10}  kind", "start", "end", "size")?;
    for (start, end, kind) in &merged {
        writeln!(
            out,
            "{start:#018x} {end:#018x} {:>10}  {}",
            human_size(end - start),
            region_kind_name(*kind)
        )?;
    }
    let usable: u64 = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| r.end - r.start)
        .sum();
    writeln!(out, "usable: {} ({} bytes)", human_size(usable), usable)?;
    Ok(())
}

/// `pressure`: the share of time tasks waited for memory (reclaim, swap-in
/// reads): `/proc/pressure/memory`.
pub fn pressure(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    shown(args, procfs::mem::pressure(out))
}
