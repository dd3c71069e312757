//! `/proc/<pid>/`: `maps`, `smaps`, `smaps_rollup`, `status`, `stat`,
//! `statm`, `cmdline`, `comm`, `exe` and `pagemap`, in Linux 6.1's
//! formats (`fs/proc/task_mmu.c`, `array.c`, `base.c`).
//!
//! Everything about an address space is read under its lock, taken the
//! inspector's way ([`with_aspace`]: interrupts off, yielding while its
//! owner holds it), into a fallible buffer made before or while holding
//! it; the text is formatted afterwards with no lock held.
//!
//! What Linux counts and Ferrite does as well: resident pages come from
//! the page tables (a present leaf is one page; the shared zero page is
//! not a "normal page" in Linux and counts nowhere, as there), anonymous
//! versus file from the frame's owner, shared versus private from the
//! frame's map count (its reference count; a page-cache frame's own
//! reference excluded), swapped pages from swap entries in the leaves.

use alloc::vec::Vec;
use core::fmt::Write;

use mmcore::Pfn;
use vmcore::fault::FrameUse;
use vmcore::paging::{Level, PageWalker, Pte, PteFlags};
use vmcore::vma::VmaTag;
use vmcore::{Prot, Sharing, Vma, VmaKind};

use super::{ProcError, Result};
use crate::arch::sync::try_lock_irq_off;
use crate::mm::aspace::{AddressSpace, ImageInfo, SharedAddressSpace};
use crate::mm::frame_ref;
use crate::mm::kalloc;
use crate::mm::layout::PAGE_SIZE;
use crate::proc::sched::{self, Pid, State};
use usercore::pagemap;

const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;
/// Linux's fixed-point shift for proportional sizes.
const PSS_SHIFT: u32 = 12;

/// Runs `f` on the locked address space with interrupts off (the timer
/// must not switch to its process while the lock is held: its fault
/// handler would need it). If another holder has it, lets that one run
/// and tries again rather than spinning with interrupts off (see
/// "Locking" in `mm`).
pub fn with_aspace<R>(aspace: &SharedAddressSpace, f: impl FnOnce(&mut AddressSpace) -> R) -> R {
    let mut f = Some(f);
    loop {
        let done = try_lock_irq_off(aspace).map(|mut a| (f.take().expect("runs once"))(&mut a));
        if let Some(r) = done {
            return r;
        }
        sched::yield_now();
    }
}

/// The address space of `pid` (`None` for the kernel thread and zombies).
pub fn aspace_of(pid: Pid) -> Option<SharedAddressSpace> {
    if pid == 0 {
        // Pid 0 may be borrowing a test's address space; it owns none.
        return None;
    }
    sched::with_process(pid, |p| p.aspace.clone()).flatten()
}

/// What `/proc` needs of a process besides its memory.
#[derive(Clone, Copy, Debug)]
pub struct TaskInfo {
    pub pid: Pid,
    pub ppid: Pid,
    /// Process group and session.
    pub pgid: Pid,
    pub sid: Pid,
    pub state: State,
    pub ticks: u64,
    pub brk: (u64, u64),
    pub oom_score_adj: i16,
    pub kernel_thread: bool,
    /// The CPU it runs on or last ran on (stat field 39, `processor`).
    pub cpu: u32,
    /// `comm`: the name, cut to Linux's 15 bytes.
    pub comm: [u8; 16],
    pub comm_len: usize,
}

impl TaskInfo {
    pub fn comm(&self) -> &str {
        core::str::from_utf8(&self.comm[..self.comm_len]).unwrap_or("?")
    }

    /// Linux's state letter and word (`R (running)`).
    pub fn state_name(&self) -> (char, &'static str) {
        match self.state {
            State::Running | State::Runnable => ('R', "running"),
            State::Blocked(_) => ('S', "sleeping"),
            State::Zombie(_) => ('Z', "zombie"),
        }
    }
}

/// The process `pid`'s [`TaskInfo`], `NotFound` if there is none.
pub fn task(pid: Pid) -> Result<TaskInfo> {
    sched::with_process(pid, |p| {
        let mut comm = [0u8; 16];
        // Cut at a character boundary within 15 bytes.
        let mut len = p.name.len().min(15);
        while !p.name.is_char_boundary(len) {
            len -= 1;
        }
        comm[..len].copy_from_slice(&p.name.as_bytes()[..len]);
        TaskInfo {
            pid: p.pid,
            ppid: p.ppid,
            pgid: p.pgid,
            sid: p.sid,
            state: p.state,
            ticks: p.ticks,
            brk: p.brk,
            oom_score_adj: p.oom_score_adj,
            kernel_thread: p.is_kernel_thread() || p.pid == 0,
            cpu: p.cpu,
            comm,
            comm_len: len,
        }
    })
    .ok_or(ProcError::NotFound)
}

/// Page counts of one region (or all of them), Linux's `mem_size_stats`
/// in bytes, PSS fixed-point with [`PSS_SHIFT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStats {
    pub resident: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub swap: u64,
    pub pss: u64,
    pub pss_dirty: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub swap_pss: u64,
    /// PSS of the pages in locked ranges (`Locked`).
    pub pss_locked: u64,
    /// Resident pages by owner (`status`'s RssAnon, RssFile, RssShmem).
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    /// Leaves mapping the shared zero page (Ferrite's RSS counts them;
    /// Linux's counts nowhere).
    pub zero_pages: u64,
}

impl MemStats {
    fn add(&mut self, o: &MemStats) {
        self.resident += o.resident;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.referenced += o.referenced;
        self.anonymous += o.anonymous;
        self.swap += o.swap;
        self.pss += o.pss;
        self.pss_dirty += o.pss_dirty;
        self.pss_anon += o.pss_anon;
        self.pss_file += o.pss_file;
        self.pss_shmem += o.pss_shmem;
        self.swap_pss += o.swap_pss;
        self.pss_locked += o.pss_locked;
        self.rss_anon += o.rss_anon;
        self.rss_file += o.rss_file;
        self.rss_shmem += o.rss_shmem;
        self.zero_pages += o.zero_pages;
    }
}

/// How a present leaf's frame is used: `None` for the zero page (not a
/// normal page), else (anonymous, map count).
fn page_use(pte: Pte) -> Option<(bool, u64)> {
    match frame_ref::frame_use(Pfn::from_addr(pte.addr())) {
        FrameUse::ZeroPage => None,
        // The cache holds a reference of its own.
        FrameUse::PageCache => {
            let (_, refs) = crate::mm::vmstat::frame_info(Pfn::from_addr(pte.addr()));
            Some((false, (refs as u64).saturating_sub(1).max(1)))
        }
        FrameUse::Anon { refs } => Some((true, (refs as u64).max(1))),
    }
}

/// Counts a region's pages (Linux's `smaps_pte_entry`/`smaps_account`).
struct Smaps<'a> {
    stats: MemStats,
    /// Shared anonymous memory (shmem) rather than a file.
    shmem: bool,
    _vma: &'a Vma,
    /// The address space's locked ranges (`mlock`), sorted.
    locked: &'a [(u64, u64)],
}

impl PageWalker for Smaps<'_> {
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
        let pages = (size / PAGE_SIZE).max(1);
        let Some((anon, mapcount)) = page_use(pte) else {
            self.stats.zero_pages += pages;
            return;
        };
        let size = pages * PAGE_SIZE;
        let s = &mut self.stats;
        let dirty = pte.has(PteFlags::DIRTY);
        s.resident += size;
        if anon {
            s.anonymous += size;
            s.rss_anon += pages;
        } else if self.shmem {
            s.rss_shmem += pages;
        } else {
            s.rss_file += pages;
        }
        if pte.has(PteFlags::ACCESSED) {
            s.referenced += size;
        }
        let pss = (size << PSS_SHIFT) / mapcount;
        match (mapcount >= 2, dirty) {
            (true, true) => s.shared_dirty += size,
            (true, false) => s.shared_clean += size,
            (false, true) => s.private_dirty += size,
            (false, false) => s.private_clean += size,
        }
        s.pss += pss;
        let at = self.locked.partition_point(|&(_, e)| e <= va);
        if self.locked.get(at).is_some_and(|&(st, _)| st <= va) {
            s.pss_locked += pss;
        }
        if dirty {
            s.pss_dirty += pss;
        }
        if anon {
            s.pss_anon += pss;
        } else if self.shmem {
            s.pss_shmem += pss;
        } else {
            s.pss_file += pss;
        }
    }

    fn swapped(&mut self, _va: u64, _pte: Pte) {
        self.stats.swap += PAGE_SIZE;
        self.stats.swap_pss += PAGE_SIZE << PSS_SHIFT;
    }
}

/// A region's file, for the name column: a ramdisk path, or `None` for
/// shared anonymous memory (Linux's `/dev/zero (deleted)`).
fn file_path(vma: &Vma) -> Option<Option<&'static str>> {
    match vma.kind {
        VmaKind::File { file, .. } => Some(crate::proc::ramdisk::path_of(file)),
        VmaKind::Anonymous => None,
    }
}

/// One region with its page counts.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub vma: Vma,
    pub stats: MemStats,
}

/// Everything `/proc/<pid>` shows about an address space, read at one
/// moment.
#[derive(Debug, Default)]
pub struct SpaceInfo {
    pub regions: Vec<Region>,
    pub image: ImageInfo,
    pub page_tables: u64,
    /// The sampled peaks (`VmPeak`, `VmHWM`).
    pub hiwater: vmcore::hiwater::Hiwater,
    /// Bytes locked (`VmLck`).
    pub locked: u64,
}

impl SpaceInfo {
    pub fn total(&self) -> MemStats {
        let mut t = MemStats::default();
        for r in &self.regions {
            t.add(&r.stats);
        }
        t
    }

    /// Pages of all regions (`VmSize`).
    pub fn vm_pages(&self) -> u64 {
        self.regions.iter().map(|r| r.vma.len() / PAGE_SIZE).sum()
    }

    /// Linux's `data_vm`: private writable regions that are not stacks.
    pub fn data_pages(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| {
                r.vma.prot.contains(Prot::WRITE)
                    && r.vma.sharing == Sharing::Private
                    && !r.vma.flags.grows_down
            })
            .map(|r| r.vma.len() / PAGE_SIZE)
            .sum()
    }

    /// Linux's `stack_vm`.
    pub fn stack_pages(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| r.vma.flags.grows_down)
            .map(|r| r.vma.len() / PAGE_SIZE)
            .sum()
    }

    /// Linux's `exec_vm`: executable private non-stack regions.
    pub fn exec_pages(&self) -> u64 {
        self.regions
            .iter()
            .filter(|r| {
                r.vma.prot.contains(Prot::EXEC)
                    && !r.vma.prot.contains(Prot::WRITE)
                    && !r.vma.flags.grows_down
            })
            .map(|r| r.vma.len() / PAGE_SIZE)
            .sum()
    }

    /// Text pages (`end_code - start_code`, page aligned).
    pub fn text_pages(&self) -> u64 {
        let i = &self.image;
        (vmcore::page_up(i.end_code).unwrap_or(i.end_code) - vmcore::page_down(i.start_code))
            / PAGE_SIZE
    }
}

/// Reads `pid`'s regions and their page counts (`counts`: walk the
/// tables, for smaps; else sizes only). `Ok(None)` for a process without
/// an address space (kernel threads, zombies).
pub fn space_info(pid: Pid, counts: bool) -> Result<Option<SpaceInfo>> {
    let Some(aspace) = aspace_of(pid) else {
        task(pid)?;
        return Ok(None);
    };
    with_aspace(&aspace, |a| {
        let mut info = SpaceInfo {
            regions: kalloc::try_with_capacity(a.vmas().len())?,
            image: a.image,
            page_tables: a.page_table_pages() as u64,
            hiwater: a.hiwater(),
            locked: a.locked_bytes(),
        };
        let vmas: &mut Vec<Region> = &mut info.regions;
        vmas.extend(a.vmas().iter().map(|v| Region {
            vma: *v,
            stats: MemStats::default(),
        }));
        if counts {
            let mut locked: Vec<(u64, u64)> = kalloc::try_with_capacity(a.locked_ranges().count())?;
            locked.extend(a.locked_ranges());
            for r in info.regions.iter_mut() {
                let vma = r.vma;
                let mut w = Smaps {
                    stats: MemStats::default(),
                    shmem: matches!(file_path(&vma), Some(None)),
                    _vma: &vma,
                    locked: &locked,
                };
                a.walk_pages(vma.start, vma.end, &mut w);
                r.stats = w.stats;
                // A shared mapping of shared memory: its object's pages in
                // the mapped range that are swapped out (Linux's
                // `shmem_swap_usage`; not in SwapPss, as Linux).
                if let (true, Sharing::Shared, VmaKind::File { file, offset }) =
                    (w.shmem, vma.sharing, vma.kind)
                {
                    let swapped = crate::mm::pagecache::swapped_in_range(
                        file,
                        offset / PAGE_SIZE,
                        vma.len() / PAGE_SIZE,
                    );
                    r.stats.swap += swapped * PAGE_SIZE;
                }
            }
        }
        Ok(Some(info))
    })
}

/// `maps`' header of a region: Linux's `show_map_vma`.
fn map_line(out: &mut dyn Write, vma: &Vma, brk: (u64, u64)) -> Result {
    let shared = if vma.sharing == Sharing::Shared {
        's'
    } else {
        'p'
    };
    let (pgoff, dev, ino) = match vma.kind {
        // The kernel's own pages, no file (as Linux shows them).
        _ if matches!(vma.flags.tag, VmaTag::Vdso | VmaTag::Vvar) => (0, (0, 0), 0),
        VmaKind::File { file, offset } => match crate::proc::ramdisk::path_of(file) {
            // The ramdisk is the root file system, device 00:02 here;
            // a file's inode number is its page-cache id.
            Some(_) => (offset, (0, 2), file as u64 + 1),
            // Shared anonymous memory is a deleted file on Linux's
            // internal shmem mount (00:01).
            None => (offset, (0, 1), file as u64 + 1),
        },
        VmaKind::Anonymous => (0, (0, 0), 0),
    };
    let mut head = super::Text::default();
    write!(
        head,
        "{:08x}-{:08x} {}{shared} {pgoff:08x} {:02x}:{:02x} {ino} ",
        vma.start, vma.end, vma.prot, dev.0, dev.1
    )?;
    // Ramdisk paths are kept without their leading `/`.
    let mut root = "";
    let name: Option<&str> = match (file_path(vma), vma.flags.tag) {
        (_, tag @ (VmaTag::Vdso | VmaTag::Vvar)) => Some(tag.name()),
        (Some(Some(path)), _) => {
            root = if path.starts_with('/') { "" } else { "/" };
            Some(path)
        }
        (Some(None), _) => Some("/dev/zero (deleted)"),
        (None, VmaTag::Heap) => Some("[heap]"),
        (None, _) if vma.flags.tag == VmaTag::Stack || vma.flags.grows_down => Some("[stack]"),
        // A region overlapping the break is the heap, as Linux decides.
        (None, _) if brk.1 > brk.0 && vma.start <= brk.1 && vma.end >= brk.0 => Some("[heap]"),
        (None, _) => None,
    };
    out.write_str(core::str::from_utf8(&head.bytes).unwrap_or(""))?;
    if let Some(name) = name {
        // seq_pad: to column 72 (25 + 6 * sizeof(void *) - 1), then a space.
        let pad = 72usize.saturating_sub(head.bytes.len());
        write!(out, "{:pad$} {root}{name}", "")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `/proc/<pid>/maps`.
pub fn maps(pid: Pid, out: &mut dyn Write) -> Result {
    let t = task(pid)?;
    let Some(info) = space_info(pid, false)? else {
        return Ok(());
    };
    for r in &info.regions {
        map_line(out, &r.vma, t.brk)?;
    }
    Ok(())
}

/// One `Name:   N kB` line of smaps (`SEQ_PUT_DEC`: the label padded to
/// 16, the value to 8).
fn kb(out: &mut dyn Write, name: &str, bytes: u64) -> Result {
    let pad = 15usize.saturating_sub(name.len());
    writeln!(out, "{name}:{:pad$}{:>8} kB", "", bytes >> 10)?;
    Ok(())
}

/// Linux's `__show_smap`.
fn show_smap(out: &mut dyn Write, s: &MemStats, rollup: bool) -> Result {
    kb(out, "Rss", s.resident)?;
    kb(out, "Pss", s.pss >> PSS_SHIFT)?;
    kb(out, "Pss_Dirty", s.pss_dirty >> PSS_SHIFT)?;
    if rollup {
        kb(out, "Pss_Anon", s.pss_anon >> PSS_SHIFT)?;
        kb(out, "Pss_File", s.pss_file >> PSS_SHIFT)?;
        kb(out, "Pss_Shmem", s.pss_shmem >> PSS_SHIFT)?;
    }
    kb(out, "Shared_Clean", s.shared_clean)?;
    kb(out, "Shared_Dirty", s.shared_dirty)?;
    kb(out, "Private_Clean", s.private_clean)?;
    kb(out, "Private_Dirty", s.private_dirty)?;
    kb(out, "Referenced", s.referenced)?;
    kb(out, "Anonymous", s.anonymous)?;
    kb(out, "LazyFree", 0)?;
    kb(out, "AnonHugePages", 0)?;
    kb(out, "ShmemPmdMapped", 0)?;
    kb(out, "FilePmdMapped", 0)?;
    kb(out, "Shared_Hugetlb", 0)?;
    kb(out, "Private_Hugetlb", 0)?;
    kb(out, "Swap", s.swap)?;
    kb(out, "SwapPss", s.swap_pss >> PSS_SHIFT)?;
    kb(out, "Locked", s.pss_locked >> PSS_SHIFT)?;
    Ok(())
}

/// `VmFlags:` mnemonics in Linux's bit order.
fn vm_flags(out: &mut dyn Write, vma: &Vma) -> Result {
    let p = vma.prot;
    let shared = vma.sharing == Sharing::Shared;
    let flags = [
        (p.contains(Prot::READ), "rd"),
        (p.contains(Prot::WRITE), "wr"),
        (p.contains(Prot::EXEC), "ex"),
        (shared && p.contains(Prot::WRITE), "sh"),
        (true, "mr"),
        (true, "mw"),
        (true, "me"),
        (shared, "ms"),
        (vma.flags.grows_down, "gd"),
        (vma.flags.account, "ac"),
        (vma.flags.noreserve, "nr"),
        // VM_SOFTDIRTY: every new region (CONFIG_MEM_SOFT_DIRTY).
        (true, "sd"),
    ];
    write!(out, "VmFlags:")?;
    for (on, name) in flags {
        if on {
            write!(out, " {name}")?;
        }
    }
    writeln!(out, " ")?;
    Ok(())
}

/// `/proc/<pid>/smaps`.
pub fn smaps(pid: Pid, out: &mut dyn Write) -> Result {
    let t = task(pid)?;
    let Some(info) = space_info(pid, true)? else {
        return Ok(());
    };
    for r in &info.regions {
        map_line(out, &r.vma, t.brk)?;
        kb(out, "Size", r.vma.len())?;
        kb(out, "KernelPageSize", PAGE_SIZE)?;
        kb(out, "MMUPageSize", PAGE_SIZE)?;
        show_smap(out, &r.stats, false)?;
        writeln!(out, "THPeligible:    0")?;
        vm_flags(out, &r.vma)?;
    }
    Ok(())
}

/// `/proc/<pid>/smaps_rollup`: every region's counts summed, under a
/// header spanning them.
pub fn smaps_rollup(pid: Pid, out: &mut dyn Write) -> Result {
    task(pid)?;
    let Some(info) = space_info(pid, true)? else {
        return Ok(());
    };
    let (start, end) = match (info.regions.first(), info.regions.last()) {
        (Some(a), Some(b)) => (a.vma.start, b.vma.end),
        _ => (0, 0),
    };
    let head = super::Text::default();
    let mut head = head;
    write!(head, "{start:08x}-{end:08x} ---p 00000000 00:00 0 ")?;
    let pad = 72usize.saturating_sub(head.bytes.len());
    out.write_str(core::str::from_utf8(&head.bytes).unwrap_or(""))?;
    writeln!(out, "{:pad$} [rollup]", "")?;
    show_smap(out, &info.total(), true)?;
    Ok(())
}

/// `/proc/<pid>/status`.
pub fn status(pid: Pid, out: &mut dyn Write) -> Result {
    let t = task(pid)?;
    let info = space_info(pid, true)?;
    let (letter, word) = t.state_name();
    write!(out, "Name:\t")?;
    // Linux escapes the name (`\n` as `\\n`, ...): names here have no
    // control characters but a user's argv[0] might.
    for c in t.comm().chars() {
        match c {
            '\n' => write!(out, "\\n")?,
            '\\' => write!(out, "\\\\")?,
            c => write!(out, "{c}")?,
        }
    }
    writeln!(out)?;
    writeln!(out, "Umask:\t0022")?;
    writeln!(out, "State:\t{letter} ({word})")?;
    writeln!(out, "Tgid:\t{pid}")?;
    writeln!(out, "Ngid:\t0")?;
    writeln!(out, "Pid:\t{pid}")?;
    writeln!(out, "PPid:\t{}", t.ppid)?;
    writeln!(out, "TracerPid:\t0")?;
    writeln!(out, "Uid:\t0\t0\t0\t0")?;
    writeln!(out, "Gid:\t0\t0\t0\t0")?;
    writeln!(out, "FDSize:\t64")?;
    writeln!(out, "Groups:\t ")?;
    writeln!(out, "NStgid:\t{pid}")?;
    writeln!(out, "NSpid:\t{pid}")?;
    writeln!(out, "NSpgid:\t{pid}")?;
    writeln!(out, "NSsid:\t{pid}")?;
    if let Some(info) = &info {
        let s = info.total();
        let k = |pages: u64| pages * KB_PER_PAGE;
        let vm = info.vm_pages();
        let rss = s.rss_anon + s.rss_file + s.rss_shmem;
        let text = info.text_pages() * KB_PER_PAGE;
        let lib = (info.exec_pages() * KB_PER_PAGE).saturating_sub(text);
        let lines: [(&str, u64); 16] = [
            ("VmPeak", k(info.hiwater.peak_vm(vm))),
            ("VmSize", k(vm)),
            ("VmLck", info.locked >> 10),
            ("VmPin", 0),
            ("VmHWM", k(info.hiwater.peak_rss(rss))),
            ("VmRSS", k(rss)),
            ("RssAnon", k(s.rss_anon)),
            ("RssFile", k(s.rss_file)),
            ("RssShmem", k(s.rss_shmem)),
            ("VmData", k(info.data_pages())),
            ("VmStk", k(info.stack_pages())),
            ("VmExe", text),
            ("VmLib", lib),
            ("VmPTE", k(info.page_tables)),
            ("VmSwap", s.swap >> 10),
            ("HugetlbPages", 0),
        ];
        for (name, kb) in lines {
            writeln!(out, "{name}:\t{kb:>8} kB")?;
        }
        writeln!(out, "CoreDumping:\t0")?;
        writeln!(out, "THP_enabled:\t1")?;
    }
    writeln!(out, "Threads:\t1")?;
    writeln!(out, "SigQ:\t0/0")?;
    for name in ["SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh"] {
        writeln!(out, "{name}:\t0000000000000000")?;
    }
    for name in ["CapPrm", "CapEff", "CapBnd"] {
        writeln!(out, "{name}:\t000001ffffffffff")?;
    }
    writeln!(out, "CapAmb:\t0000000000000000")?;
    writeln!(out, "NoNewPrivs:\t0")?;
    writeln!(out, "Seccomp:\t0")?;
    writeln!(out, "Seccomp_filters:\t0")?;
    writeln!(out, "Speculation_Store_Bypass:\tvulnerable")?;
    writeln!(out, "SpeculationIndirectBranch:\talways enabled")?;
    writeln!(out, "Cpus_allowed:\t1")?;
    writeln!(out, "Cpus_allowed_list:\t0")?;
    writeln!(out, "Mems_allowed:\t1")?;
    writeln!(out, "Mems_allowed_list:\t0")?;
    writeln!(out, "voluntary_ctxt_switches:\t0")?;
    writeln!(out, "nonvoluntary_ctxt_switches:\t0")?;
    Ok(())
}

/// `statm`'s seven numbers (pages): size, resident, shared, text, lib
/// (0), data (data + stack), dt (0), from Linux's `task_statm`.
pub fn statm_values(info: &SpaceInfo) -> [u64; 7] {
    let s = info.total();
    let shared = s.rss_file + s.rss_shmem;
    [
        info.vm_pages(),
        shared + s.rss_anon,
        shared,
        info.text_pages(),
        0,
        info.data_pages() + info.stack_pages(),
        0,
    ]
}

/// `/proc/<pid>/statm`.
pub fn statm(pid: Pid, out: &mut dyn Write) -> Result {
    task(pid)?;
    let v = match space_info(pid, true)? {
        Some(info) => statm_values(&info),
        None => [0; 7],
    };
    writeln!(
        out,
        "{} {} {} {} {} {} {}",
        v[0], v[1], v[2], v[3], v[4], v[5], v[6]
    )?;
    Ok(())
}

/// `/proc/<pid>/stat`: Linux's `do_task_stat`, 52 fields.
pub fn stat(pid: Pid, out: &mut dyn Write) -> Result {
    let t = task(pid)?;
    let info = space_info(pid, true)?;
    let (letter, _) = t.state_name();
    // PF_KTHREAD for kernel threads; a user process's PF_RANDOMIZE-free
    // flags as Linux shows them (PF_FORKNOEXEC is cleared by exec).
    let flags: u32 = if t.kernel_thread {
        0x0020_8040
    } else {
        0x0040_0000
    };
    let (vsize, rss) = match &info {
        Some(i) => {
            let s = i.total();
            (
                i.vm_pages() * PAGE_SIZE,
                s.rss_anon + s.rss_file + s.rss_shmem,
            )
        }
        None => (0, 0),
    };
    let image = info.as_ref().map(|i| i.image).unwrap_or_default();
    let (start_brk, brk) = if info.is_some() { t.brk } else { (0, 0) };
    let exit_code = match t.state {
        State::Zombie(status) => status,
        _ => 0,
    };
    // pid (comm) state ppid pgrp session tty_nr tpgid flags
    write!(
        out,
        "{pid} ({}) {letter} {} {} {} 0 -1 {flags}",
        t.comm(),
        t.ppid,
        t.pgid,
        t.sid
    )?;
    // minflt cminflt majflt cmajflt utime stime cutime cstime
    let (utime, stime) = if t.kernel_thread {
        (0, t.ticks)
    } else {
        (t.ticks, 0)
    };
    write!(out, " 0 0 0 0 {utime} {stime} 0 0")?;
    // priority nice num_threads itrealvalue starttime vsize rss rsslim
    write!(out, " 20 0 1 0 0 {vsize} {rss} {}", u64::MAX)?;
    // startcode endcode startstack kstkesp kstkeip
    write!(
        out,
        " {} {} {} 0 0",
        image.start_code, image.end_code, image.start_stack
    )?;
    // signal blocked sigignore sigcatch wchan nswap cnswap exit_signal
    // processor rt_priority policy delayacct_blkio_ticks guest_time
    // cguest_time
    write!(out, " 0 0 0 0 0 0 0 17 {} 0 0 0 0 0", t.cpu)?;
    // start_data end_data start_brk arg_start arg_end env_start env_end
    // exit_code
    writeln!(
        out,
        " {} {} {start_brk} {} {} {} {} {exit_code}",
        image.start_data,
        image.end_data,
        image.arg_start,
        image.arg_end,
        image.env_start,
        image.env_end
    )?;
    let _ = brk;
    Ok(())
}

/// `/proc/<pid>/comm`: the name and a newline.
pub fn comm(pid: Pid, out: &mut dyn Write) -> Result {
    let t = task(pid)?;
    writeln!(out, "{}", t.comm())?;
    Ok(())
}

/// Most bytes `cmdline` reads (Linux reads what the reader asks for; the
/// arguments are at most `usercore::stack::MAX_STRINGS`).
const CMDLINE_MAX: u64 = 128 * 1024;

/// `/proc/<pid>/cmdline`: the argument strings, each with its NUL, read
/// from the process's own stack (as Linux reads `arg_start..arg_end`).
/// Empty for kernel threads and zombies; cut where a page is not in
/// memory (Ferrite does not fault pages in for another process's reader).
pub fn cmdline(pid: Pid, out: &mut Vec<u8>) -> Result {
    task(pid)?;
    let Some(aspace) = aspace_of(pid) else {
        return Ok(());
    };
    let (start, end) = with_aspace(&aspace, |a| (a.image.arg_start, a.image.arg_end));
    let end = end.min(start.saturating_add(CMDLINE_MAX));
    if start >= end {
        return Ok(());
    }
    kalloc::try_reserve(out, (end - start) as usize)?;
    // Page by page: the lock is held for one page's bytes at a time.
    let mut va = start;
    while va < end {
        let chunk_end = (vmcore::page_down(va) + PAGE_SIZE).min(end);
        let done = with_aspace(&aspace, |a| {
            for at in va..chunk_end {
                match a.peek(at) {
                    Some(b) => out.push(b),
                    None => return false,
                }
            }
            true
        });
        if !done {
            break;
        }
        va = chunk_end;
    }
    Ok(())
}

/// `/proc/<pid>/exe`'s target: the program's path (the one exec
/// recorded in the descriptor table; else the ramdisk file's).
pub fn exe(pid: Pid) -> Result<Vec<u8>> {
    task(pid)?;
    let recorded = sched::with_process(pid, |p| {
        (!p.fds.exe.is_empty()).then(|| kalloc::try_to_vec(&p.fds.exe))
    })
    .flatten();
    if let Some(path) = recorded {
        return Ok(path?);
    }
    let aspace = aspace_of(pid).ok_or(ProcError::NotFound)?;
    let path = with_aspace(&aspace, |a| a.image.exe).ok_or(ProcError::NotFound)?;
    let mut link = kalloc::try_with_capacity(path.len() + 1)?;
    if !path.starts_with('/') {
        link.push(b'/');
    }
    link.extend_from_slice(path.as_bytes());
    Ok(link)
}

/// Pages one `pagemap` step covers under the lock.
const PAGEMAP_BATCH: usize = 256;

/// The top of user space in pages (Linux's `TASK_SIZE >> PAGE_SHIFT`).
const USER_PAGES: u64 = vmcore::USER_END / PAGE_SIZE;

/// Fills `entries` for the pages from `first` (Linux's `pagemap_pmd_range`
/// and `pagemap_pte_hole`).
fn pagemap_batch(a: &mut AddressSpace, first: u64, entries: &mut [u64]) {
    let start = first * PAGE_SIZE;
    let end = start + entries.len() as u64 * PAGE_SIZE;
    // Holes: soft-dirty inside a region (every region is VM_SOFTDIRTY
    // from its creation), zero outside.
    for v in a.vmas().iter() {
        if v.end <= start || v.start >= end {
            continue;
        }
        let lo = (v.start.max(start) - start) / PAGE_SIZE;
        let hi = (v.end.min(end) - start) / PAGE_SIZE;
        for e in &mut entries[lo as usize..hi as usize] {
            *e = pagemap::encode(pagemap::Page::None { soft_dirty: true });
        }
    }
    struct Fill<'a> {
        start: u64,
        entries: &'a mut [u64],
    }
    impl PageWalker for Fill<'_> {
        fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
            let pages = (size / PAGE_SIZE).max(1);
            let base = Pfn::from_addr(pte.addr()).0;
            let (file, exclusive) = match page_use(pte) {
                None => (false, false),
                Some((anon, mapcount)) => (!anon, mapcount == 1),
            };
            for i in 0..pages {
                let at = va + i * PAGE_SIZE;
                if at < self.start {
                    continue;
                }
                let idx = ((at - self.start) / PAGE_SIZE) as usize;
                if idx >= self.entries.len() {
                    break;
                }
                self.entries[idx] = pagemap::encode(pagemap::Page::Present {
                    pfn: base + i,
                    soft_dirty: true,
                    exclusive,
                    file,
                });
            }
        }

        fn swapped(&mut self, va: u64, pte: Pte) {
            let Some(entry) = pte.swap_entry() else {
                return;
            };
            if va < self.start {
                return;
            }
            let idx = ((va - self.start) / PAGE_SIZE) as usize;
            if let Some(e) = self.entries.get_mut(idx) {
                *e = pagemap::encode(pagemap::Page::Swapped {
                    ty: entry.device as u64,
                    offset: entry.slot,
                    soft_dirty: true,
                });
            }
        }
    }
    let _ = Level::Pt;
    a.walk_pages(start, end, &mut Fill { start, entries });
}

/// Reads `pagemap` at byte `offset` (page number * 8) into `buf`: whole
/// entries only (`EINVAL` otherwise, as Linux), nothing past the top of
/// user space. Each batch of pages is read under the lock into a stack
/// buffer, then copied out with the lock dropped.
pub fn pagemap_read(pid: Pid, offset: u64, buf: &mut [u8]) -> Result<usize> {
    if !offset.is_multiple_of(pagemap::ENTRY_BYTES)
        || !(buf.len() as u64).is_multiple_of(pagemap::ENTRY_BYTES)
    {
        return Err(ProcError::Invalid);
    }
    task(pid)?;
    // A kernel thread or zombie has no memory: Linux's read finds no mm
    // and returns 0.
    let Some(aspace) = aspace_of(pid) else {
        return Ok(0);
    };
    let first = offset / pagemap::ENTRY_BYTES;
    let want = (buf.len() as u64 / pagemap::ENTRY_BYTES).min(USER_PAGES.saturating_sub(first));
    let mut done = 0u64;
    let mut entries = [0u64; PAGEMAP_BATCH];
    while done < want {
        let n = (want - done).min(PAGEMAP_BATCH as u64) as usize;
        let batch = &mut entries[..n];
        batch.fill(0);
        with_aspace(&aspace, |a| pagemap_batch(a, first + done, batch));
        for (i, e) in batch.iter().enumerate() {
            let at = (done as usize + i) * 8;
            buf[at..at + 8].copy_from_slice(&e.to_le_bytes());
        }
        done += n as u64;
    }
    Ok((done * pagemap::ENTRY_BYTES) as usize)
}
