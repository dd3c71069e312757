//! Memory files: `/proc/meminfo`, `vmstat`, `buddyinfo`, `slabinfo`,
//! `zoneinfo`, `swaps` and `pressure/memory`, in Linux 6.1's formats. The
//! shell's views of the same names print through these functions.
//!
//! Numbers are gathered with interrupts off ([`vmstat::mem_snapshot`]), so
//! one file is one consistent moment. Nothing allocates under the frames
//! lock: buffers are made first, formatting happens afterwards.

use alloc::vec::Vec;
use core::fmt::Write;

use mmcore::slab::{CacheInfo, MAX_CACHES};
use mmcore::FrameKind;

use super::Result;
use crate::mm::kalloc::{self, AllocError};
use crate::mm::layout::{PAGE_SIZE, VMALLOC_END, VMALLOC_START};
use crate::mm::{commit, frames, swap, vmstat};

pub const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

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
    /// `CommitLimit` and `Committed_AS`, pages.
    pub commit_limit: u64,
    pub committed: u64,
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
        commit_limit: commit::commit_limit_pages(),
        committed: commit::committed_pages(),
    }
}

/// One `/proc/meminfo` line: Linux's `show_val_kb`, the name and colon
/// padded to 16, the value to 8, then ` kB`.
fn kb_line(out: &mut dyn Write, name: &str, kb: u64) -> Result {
    let pad = 15usize.saturating_sub(name.len());
    writeln!(out, "{name}:{:pad$}{kb:>8} kB", "")?;
    Ok(())
}

/// `/proc/meminfo` of Linux 6.1 (x86_64), the lines in its order; what
/// Ferrite does not have (huge pages, zswap, mlock, writeback, per-CPU
/// areas) is 0, as on a Linux without it in use.
pub fn meminfo_of(m: &MemInfo, out: &mut dyn Write) -> Result {
    let k = |pages: u64| pages * KB_PER_PAGE;
    // The LRU lists, as Linux. Shared anonymous memory (shmem) is cached
    // and on the anon lists (it goes to swap); Ferrite has no unevictable
    // list (mlocked pages stay on the active list).
    let [[active_anon, inactive_anon], [active_file, inactive_file]] = m.lru;
    let shmem = m.shmem;
    let lines: [(&str, u64); 44] = [
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
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", k(m.swap_total)),
        ("SwapFree", k(m.swap_total - m.swap_used)),
        ("Zswap", 0),
        ("Zswapped", 0),
        // Nothing waits to be written back: reclaim writes a page to swap
        // before its frame goes, and ramdisk files are never written.
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", k(m.anon)),
        ("Mapped", k(m.mapped)),
        ("Shmem", k(shmem)),
        ("KReclaimable", 0),
        ("Slab", k(m.slab)),
        ("SReclaimable", 0),
        ("SUnreclaim", k(m.slab)),
        ("KernelStack", k(m.kernel_stack)),
        ("PageTables", k(m.page_tables)),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", k(m.commit_limit)),
        ("Committed_AS", k(m.committed)),
        ("VmallocTotal", (VMALLOC_END - VMALLOC_START) / 1024),
        ("VmallocUsed", k(m.vmalloc_used)),
        ("VmallocChunk", 0),
        ("Percpu", 0),
        // Linux: "HardwareCorrupted: %5lu kB".
        ("", 0),
        ("AnonHugePages", 0),
        ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FileHugePages", 0),
        ("FilePmdMapped", 0),
    ];
    for (name, kb) in lines {
        if name.is_empty() {
            writeln!(out, "HardwareCorrupted: {:>5} kB", 0)?;
        } else {
            kb_line(out, name, kb)?;
        }
    }
    // hugetlb_report_meminfo's own widths.
    writeln!(out, "HugePages_Total:   {:>5}", 0)?;
    writeln!(out, "HugePages_Free:    {:>5}", 0)?;
    writeln!(out, "HugePages_Rsvd:    {:>5}", 0)?;
    writeln!(out, "HugePages_Surp:    {:>5}", 0)?;
    kb_line(out, "Hugepagesize", 2048)?;
    kb_line(out, "Hugetlb", 0)?;
    Ok(())
}

/// Ferrite's own lines after Linux's (the shell's `meminfo` shows them):
/// with the lines above they account for every frame of MemTotal.
pub fn meminfo_ferrite(m: &MemInfo, out: &mut dyn Write) -> Result {
    let k = |pages: u64| pages * KB_PER_PAGE;
    kb_line(out, "ZeroPage", k(m.zero_page))?;
    kb_line(out, "KmallocLarge", k(m.kmalloc_large))?;
    kb_line(out, "KernelOther", k(m.kernel_other))?;
    kb_line(out, "Reserved", k(m.reserved))?;
    Ok(())
}

/// `/proc/meminfo`.
pub fn meminfo(out: &mut dyn Write) -> Result {
    meminfo_of(&meminfo_snapshot(), out)
}

/// `/proc/vmstat`: `name value` lines, Linux 6.1's names in its order for
/// what Ferrite counts (pages; `nr_kernel_stack` in kB, as Linux), then
/// Ferrite's own fault counters.
pub fn vmstat_of(m: &MemInfo, v: &vmstat::Snapshot, out: &mut dyn Write) -> Result {
    let [[active_anon, inactive_anon], [active_file, inactive_file]] = m.lru;
    let tlb = crate::arch::tlb::counts();
    let tlb_costs = crate::arch::tlb::costs();
    let lines: [(&str, u64); 58] = [
        ("nr_free_pages", m.free),
        ("nr_zone_inactive_anon", inactive_anon),
        ("nr_zone_active_anon", active_anon),
        ("nr_zone_inactive_file", inactive_file),
        ("nr_zone_active_file", active_file),
        ("nr_zone_unevictable", m.shmem),
        ("nr_zone_write_pending", 0),
        ("nr_mlock", 0),
        ("nr_bounce", 0),
        ("nr_zspages", 0),
        ("nr_free_cma", 0),
        ("nr_inactive_anon", inactive_anon),
        ("nr_active_anon", active_anon),
        ("nr_inactive_file", inactive_file),
        ("nr_active_file", active_file),
        ("nr_unevictable", m.shmem),
        ("nr_slab_reclaimable", 0),
        ("nr_slab_unreclaimable", m.slab),
        ("nr_isolated_anon", 0),
        ("nr_isolated_file", 0),
        ("workingset_refault_anon", v.workingset_refault_anon),
        ("workingset_refault_file", v.workingset_refault_file),
        ("workingset_activate_anon", v.workingset_activate_anon),
        ("workingset_activate_file", v.workingset_activate_file),
        ("nr_anon_pages", m.anon),
        ("nr_mapped", m.mapped),
        ("nr_file_pages", m.cached),
        ("nr_dirty", 0),
        ("nr_writeback", 0),
        ("nr_shmem", m.shmem),
        // Linux counts this one in kB.
        ("nr_kernel_stack", m.kernel_stack * KB_PER_PAGE),
        ("nr_page_table_pages", m.page_tables),
        ("nr_swapcached", m.swap_cached),
        ("pswpin", v.pswpin),
        ("pswpout", v.pswpout),
        ("pgalloc_normal", m.pgalloc),
        ("allocstall_normal", v.allocstall),
        ("pgfree", m.pgfree),
        ("pgactivate", v.pgactivate),
        ("pgfault", v.pgfault),
        ("pgmajfault", v.pgmajfault),
        ("pgsteal_kswapd", v.pgsteal_kswapd),
        ("pgsteal_direct", v.pgsteal_direct),
        ("pgscan_kswapd", v.pgscan_kswapd),
        ("pgscan_direct", v.pgscan_direct),
        ("pageoutrun", v.pageoutrun),
        ("oom_kill", v.oom_kill),
        // Linux's CONFIG_DEBUG_TLBFLUSH counters: shootdown rounds sent,
        // and requests CPUs received (IPIs acknowledged).
        ("nr_tlb_remote_flush", tlb.0),
        ("nr_tlb_remote_flush_received", tlb.2),
        // Ferrite's own, after Linux's.
        ("pgalloc_fail", m.alloc_failures),
        ("zero_page_maps", v.zero_page_maps),
        ("demand_zero", v.demand_zero),
        ("cow_copy", v.cow_copy),
        ("cow_reuse", v.cow_reuse),
        ("stack_grow", v.stack_grow),
        ("segv", v.segv),
        // TSC cycles spent sending shootdowns and waiting for them, and
        // the CPUs skipped because they held the space only lazily.
        ("tlb_shootdown_cycles", tlb_costs.0),
        ("tlb_lazy_skipped", tlb_costs.1),
    ];
    for (name, value) in lines {
        writeln!(out, "{name} {value}")?;
    }
    Ok(())
}

/// `/proc/vmstat`.
pub fn vmstat(out: &mut dyn Write) -> Result {
    let m = meminfo_snapshot();
    vmstat_of(&m, &vmstat::snapshot(), out)
}

/// `/proc/buddyinfo`: free blocks per order of the one zone.
pub fn buddyinfo(out: &mut dyn Write) -> Result {
    let blocks = frames::stats().free_blocks;
    // Linux: "Node %d, zone %8s " then "%6lu " per order.
    write!(out, "Node 0, zone {:>8} ", "Normal")?;
    for count in blocks {
        write!(out, "{count:>6} ")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `/proc/zoneinfo` for the one zone (Normal), Linux 6.1's layout: the
/// per-node stats, the watermarks, the zone's stats, its pageset, and the
/// tail.
pub fn zoneinfo(out: &mut dyn Write) -> Result {
    let w = crate::mm::kswapd::watermarks();
    let m = meminfo_snapshot();
    let (base, spanned) = vmstat::frame_span();
    let [[active_anon, inactive_anon], [active_file, inactive_file]] = m.lru;
    write!(out, "Node 0, zone {:>8}", "Normal")?;
    write!(out, "\n  per-node stats")?;
    let node: [(&str, u64); 14] = [
        ("nr_inactive_anon", inactive_anon),
        ("nr_active_anon", active_anon),
        ("nr_inactive_file", inactive_file),
        ("nr_active_file", active_file),
        ("nr_unevictable", m.shmem),
        ("nr_slab_reclaimable", 0),
        ("nr_slab_unreclaimable", m.slab),
        ("nr_anon_pages", m.anon),
        ("nr_mapped", m.mapped),
        ("nr_file_pages", m.cached),
        ("nr_dirty", 0),
        ("nr_shmem", m.shmem),
        ("nr_kernel_stack", m.kernel_stack * KB_PER_PAGE),
        ("nr_page_table_pages", m.page_tables),
    ];
    for (name, v) in node {
        write!(out, "\n      {name:<12} {v}")?;
    }
    write!(
        out,
        "\n  pages free     {}\n        boost    0\n        min      {}\n        low      {}\n        high     {}\n        spanned  {spanned}\n        present  {}\n        managed  {}\n        cma      0",
        m.free,
        w.min,
        w.low,
        w.high,
        m.total + m.reserved,
        m.total
    )?;
    write!(out, "\n        protection: (0, 0, 0, 0, 0)")?;
    let zone: [(&str, u64); 8] = [
        ("nr_free_pages", m.free),
        ("nr_zone_inactive_anon", inactive_anon),
        ("nr_zone_active_anon", active_anon),
        ("nr_zone_inactive_file", inactive_file),
        ("nr_zone_active_file", active_file),
        ("nr_zone_unevictable", m.shmem),
        ("nr_zone_write_pending", 0),
        ("nr_mlock", 0),
    ];
    for (name, v) in zone {
        write!(out, "\n      {name:<12} {v}")?;
    }
    // Per-CPU page lists (Linux's per_cpu_pages): their frames count in
    // `pages free` and MemFree, but not in buddyinfo.
    write!(out, "\n  pagesets")?;
    let policy = mmcore::percpu::PCP_POLICY;
    for cpu in 0..crate::arch::smp::cpus_online() {
        write!(
            out,
            "\n    cpu: {cpu}\n              count: {}\n              high:  {}\n              batch: {}\n  vm stats threshold: 0",
            crate::mm::percpu::pages_held_on(cpu),
            policy.high as usize * crate::mm::percpu::PAGE_KINDS.len(),
            policy.batch,
        )?;
    }
    writeln!(
        out,
        "\n  node_unreclaimable:  0\n  start_pfn:           {base}"
    )?;
    Ok(())
}

/// Every slab cache's statistics.
pub fn caches() -> core::result::Result<Vec<CacheInfo>, AllocError> {
    // Made before taking the lock: allocating under it would deadlock.
    let mut list = kalloc::try_with_capacity(MAX_CACHES)?;
    vmstat::slab_caches(&mut list);
    Ok(list)
}

/// `/proc/slabinfo`, version 2.1 (the SLUB layout: no tunables).
pub fn slabinfo(out: &mut dyn Write) -> Result {
    let list = caches()?;
    writeln!(out, "slabinfo - version: 2.1")?;
    writeln!(
        out,
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
    )?;
    for c in list {
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

/// The priority Linux gives the first area activated without one.
pub const SWAP_PRIORITY: i32 = -2;

/// The active swap device's path (`/dev/zram0`, `/dev/vda`), if any,
/// written to `out`; whether there is one.
pub fn swap_device_path(out: &mut dyn Write) -> core::result::Result<bool, core::fmt::Error> {
    swap::with_name(|name| match name {
        Some(name) => write!(out, "/dev/{name}").map(|()| true),
        None => Ok(false),
    })
}

/// `/proc/swaps`: the header, then one line per area (sizes in kB).
pub fn swaps(out: &mut dyn Write) -> Result {
    writeln!(out, "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority")?;
    let (total, used, _) = swap::usage();
    if swap::enabled() {
        // Linux: the path padded to 40, then tab-separated columns.
        let mut name = super::Text::default();
        swap_device_path(&mut name)?;
        let name = core::str::from_utf8(&name.bytes).unwrap_or("");
        let (size, used) = (total * KB_PER_PAGE, used * KB_PER_PAGE);
        writeln!(
            out,
            "{:<40}partition\t{size}\t{}{used}\t{}{SWAP_PRIORITY}",
            name,
            if size < 10_000_000 { "\t" } else { "" },
            if used < 10_000_000 { "\t" } else { "" },
        )?;
    }
    Ok(())
}

/// `/proc/pressure/memory`: the share of time tasks waited for memory
/// (reclaim, swap-in reads), exactly as Linux prints it.
pub fn pressure(out: &mut dyn Write) -> Result {
    write!(out, "{}", crate::mm::psi::snapshot())?;
    Ok(())
}
