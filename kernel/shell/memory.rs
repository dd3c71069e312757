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

use mmcore::slab::{CacheInfo, MAX_CACHES};
use mmcore::FrameKind;

use super::{Args, Result};
use crate::mm::kalloc::{self, AllocError};
use crate::mm::layout::{PAGE_SIZE, VMALLOC_END, VMALLOC_START};
use crate::mm::{commit, frames, vmstat};

const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

/// Where every frame of RAM is, in pages, at one moment.
///
/// The frames the buddy allocator manages (`total`) are exactly
/// `free + cached + anon + slab + page_tables + kernel_stack + zero_page +
/// kmalloc_large + kernel_other`: each allocated block carries its owner
/// (`FrameKind`), and the kernel's share is split by what it is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// Frames given to the buddy allocator (`MemTotal`).
    pub total: u64,
    /// On the buddy free lists (`MemFree`).
    pub free: u64,
    /// Free plus the clean page-cache pages no process maps (the cache
    /// drops those when memory is short; shared anonymous pages stay).
    pub available: u64,
    /// Page-cache frames: ramdisk file pages and shared anonymous memory
    /// (`Cached`).
    pub cached: u64,
    /// Page-cache frames some process maps (`Mapped`).
    pub mapped: u64,
    /// Private user frames (`AnonPages`), the zero page excluded.
    pub anon: u64,
    /// Frames in slabs (`Slab`, all unreclaimable).
    pub slab: u64,
    /// Page-table frames made after boot, user and kernel (`PageTables`).
    pub page_tables: u64,
    /// Kernel stacks: every vmalloc mapping is one (`KernelStack`).
    pub kernel_stack: u64,
    /// The shared zero page.
    pub zero_page: u64,
    /// Kernel heap allocations above the largest kmalloc class, each a
    /// whole buddy block.
    pub kmalloc_large: u64,
    /// Other kernel frames (e.g. taken by benchmarks or tests).
    pub kernel_other: u64,
    /// Frames in the allocator's range never given to it: firmware, holes,
    /// the kernel image, boot data, the frame metadata (not in MemTotal).
    pub reserved: u64,
    /// Frames the frame metadata array describes (lowest to highest
    /// usable frame).
    pub spanned: u64,
    pub vmalloc_used: u64,
    /// Pages on the LRU lists: `[anon, file]` × `[active, inactive]`.
    pub lru: [[u64; 2]; 2],
    /// Pages of shared anonymous memory (cached, on no LRU list).
    pub shmem: u64,
    /// Swap pages: the area's size, slots in use, and pages in the swap
    /// cache (`SwapTotal`, `SwapTotal - SwapFree`, `SwapCached`).
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_cached: u64,
    pub pgalloc: u64,
    pub pgfree: u64,
    pub alloc_failures: u64,
}

impl MemInfo {
    /// Everything allocated, by the breakdown above.
    pub fn used(&self) -> u64 {
        self.cached
            + self.anon
            + self.slab
            + self.page_tables
            + self.kernel_stack
            + self.zero_page
            + self.kmalloc_large
            + self.kernel_other
    }
}

/// A consistent snapshot of [`MemInfo`].
pub fn meminfo_snapshot() -> MemInfo {
    let snap = vmstat::mem_snapshot();
    let stats = &snap.buddy;
    let kind = |k: FrameKind| stats.pages_by_kind[k as usize];
    let kernel = kind(FrameKind::Kernel);
    let large = snap.kmalloc_large;
    MemInfo {
        total: stats.managed_pages,
        free: stats.free_pages,
        available: stats.free_pages + snap.reclaimable,
        cached: kind(FrameKind::UserFile),
        mapped: snap.file_mapped,
        anon: kind(FrameKind::UserAnon),
        slab: kind(FrameKind::Slab),
        page_tables: kind(FrameKind::PageTable),
        kernel_stack: snap.vmalloc_used,
        zero_page: kind(FrameKind::ZeroPage),
        kmalloc_large: large,
        kernel_other: kernel.saturating_sub(snap.vmalloc_used + large),
        reserved: kind(FrameKind::Reserved),
        spanned: stats.spanned_pages,
        vmalloc_used: snap.vmalloc_used,
        lru: snap.lru,
        shmem: snap.shmem,
        swap_total: snap.swap.0,
        swap_used: snap.swap.1,
        swap_cached: snap.swap.2,
        pgalloc: stats.pgalloc,
        pgfree: stats.pgfree,
        alloc_failures: stats.alloc_failures,
    }
}

fn kb_line(out: &mut dyn Write, name: &str, kb: u64) -> Result {
    // /proc/meminfo: the name and colon padded to 16, the value to 8.
    let label = super::StackText::<32>::format(format_args!("{name}:"));
    writeln!(out, "{label:<16}{kb:>8} kB")?;
    Ok(())
}

pub fn meminfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let m = meminfo_snapshot();
    let k = |pages: u64| pages * KB_PER_PAGE;
    // The LRU lists, as Linux. Shared anonymous memory (shmem) is cached
    // but on no list: Ferrite cannot swap it, so it is Unevictable.
    let [[active_anon, inactive_anon], [active_file, inactive_file]] = m.lru;
    let shmem = m.shmem;
    let lines: [(&str, u64); 34] = [
        ("MemTotal", k(m.total)),
        ("MemFree", k(m.free)),
        ("MemAvailable", k(m.available)),
        ("Buffers", 0),
        ("Cached", k(m.cached)),
        // Swapped-in pages still holding their slot (they are in
        // AnonPages too, as in Linux).
        ("SwapCached", k(m.swap_cached)),
        ("Active", k(active_anon + active_file)),
        ("Inactive", k(inactive_anon + inactive_file)),
        ("Active(anon)", k(active_anon)),
        ("Inactive(anon)", k(inactive_anon)),
        ("Active(file)", k(active_file)),
        ("Inactive(file)", k(inactive_file)),
        ("Unevictable", k(shmem)),
        ("SwapTotal", k(m.swap_total)),
        ("SwapFree", k(m.swap_total - m.swap_used)),
        // Nothing waits to be written back: reclaim writes a page to swap
        // before its frame goes, and ramdisk files are never written.
        ("Dirty", 0),
        ("AnonPages", k(m.anon)),
        ("Mapped", k(m.mapped)),
        ("Shmem", k(shmem)),
        ("KReclaimable", 0),
        ("Slab", k(m.slab)),
        ("SReclaimable", 0),
        ("SUnreclaim", k(m.slab)),
        ("KernelStack", k(m.kernel_stack)),
        ("PageTables", k(m.page_tables)),
        ("CommitLimit", k(commit::commit_limit_pages())),
        ("Committed_AS", k(commit::committed_pages())),
        ("VmallocTotal", (VMALLOC_END - VMALLOC_START) / 1024),
        ("VmallocUsed", k(m.vmalloc_used)),
        ("VmallocChunk", 0),
        // Ferrite's own: with the lines above they account for every
        // frame of MemTotal (see `help meminfo`).
        ("ZeroPage", k(m.zero_page)),
        ("KmallocLarge", k(m.kmalloc_large)),
        ("KernelOther", k(m.kernel_other)),
        ("Reserved", k(m.reserved)),
    ];
    for (name, kb) in lines {
        kb_line(out, name, kb)?;
    }
    Ok(())
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

pub fn vmstat(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let m = meminfo_snapshot();
    let v = vmstat::snapshot();
    let lines: [(&str, u64); 32] = [
        ("nr_free_pages", m.free),
        ("nr_anon_pages", m.anon),
        ("nr_file_pages", m.cached),
        ("nr_mapped", m.mapped),
        ("nr_slab_unreclaimable", m.slab),
        ("nr_page_table_pages", m.page_tables),
        // Linux counts this one in kB.
        ("nr_kernel_stack", m.kernel_stack * KB_PER_PAGE),
        ("pgalloc", m.pgalloc),
        ("pgfree", m.pgfree),
        ("pgfault", v.pgfault),
        ("pgmajfault", v.pgmajfault),
        ("pgalloc_fail", m.alloc_failures),
        ("zero_page_maps", v.zero_page_maps),
        ("demand_zero", v.demand_zero),
        ("cow_copy", v.cow_copy),
        ("cow_reuse", v.cow_reuse),
        ("pswpin", v.pswpin),
        ("pswpout", v.pswpout),
        ("pgscan_direct", v.pgscan_direct),
        ("pgsteal_direct", v.pgsteal_direct),
        ("pgscan_kswapd", v.pgscan_kswapd),
        ("pgsteal_kswapd", v.pgsteal_kswapd),
        ("pgactivate", v.pgactivate),
        ("workingset_refault_anon", v.workingset_refault_anon),
        ("workingset_activate_anon", v.workingset_activate_anon),
        ("workingset_refault_file", v.workingset_refault_file),
        ("workingset_activate_file", v.workingset_activate_file),
        ("pageoutrun", v.pageoutrun),
        ("allocstall", v.allocstall),
        ("stack_grow", v.stack_grow),
        ("segv", v.segv),
        ("oom_kill", v.oom_kill),
    ];
    for (name, value) in lines {
        writeln!(out, "{name} {value}")?;
    }
    Ok(())
}

pub fn buddyinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let blocks = frames::stats().free_blocks;
    // Linux: "Node %d, zone %8s " then "%6lu " per order.
    write!(out, "Node 0, zone {:>8} ", "Normal")?;
    for count in blocks {
        write!(out, "{count:>6} ")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `zoneinfo`: the one zone's free pages and watermarks, like the start
/// of a zone in Linux's `/proc/zoneinfo` (pages), and kswapd's state.
pub fn zoneinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let w = crate::mm::kswapd::watermarks();
    let (free, managed) = frames::with(|m| (m.buddy.free_pages(), m.buddy.managed_pages()));
    writeln!(out, "Node 0, zone {:>8}", "Normal")?;
    writeln!(out, "  pages free     {free}")?;
    writeln!(out, "        min      {}", w.min)?;
    writeln!(out, "        low      {}", w.low)?;
    writeln!(out, "        high     {}", w.high)?;
    writeln!(out, "        managed  {managed}")?;
    writeln!(out, "  min_free_kbytes {}", w.min * KB_PER_PAGE)?;
    let kswapd = crate::proc::kswapd::pid()
        .and_then(|pid| crate::proc::sched::with_process(pid, |p| (pid, p.state.name(), p.ticks)));
    match kswapd {
        Some((pid, state, ticks)) => writeln!(out, "  kswapd0 pid {pid} {state}, {ticks} ticks")?,
        None => writeln!(out, "  kswapd0 not running")?,
    }
    Ok(())
}

/// Every slab cache's statistics.
pub fn caches() -> core::result::Result<Vec<CacheInfo>, AllocError> {
    // Made before taking the lock: allocating under it would deadlock.
    let mut list = kalloc::try_with_capacity(MAX_CACHES)?;
    vmstat::slab_caches(&mut list);
    Ok(list)
}

pub fn slabinfo(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    writeln!(out, "slabinfo - version: 2.1")?;
    writeln!(
        out,
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
    )?;
    for c in caches().map_err(|_| args.oom())? {
        writeln!(
            out,
            "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
            c.name,
            c.active_objs,
            c.num_objs,
            c.objsize,
            c.objperslab,
            c.pagesperslab,
            0,
            0,
            0,
            c.active_slabs,
            c.num_slabs,
            0
        )?;
    }
    Ok(())
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
/// reads), exactly as Linux's `/proc/pressure/memory` prints it.
pub fn pressure(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    write!(out, "{}", crate::mm::psi::snapshot())?;
    Ok(())
}
