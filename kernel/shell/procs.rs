//! Process views and control: `ps`, `pmap`, `walk`, `run`, `jobs`, `kill`,
//! `oomadj`.
//!
//! Resident set sizes count every present user page-table leaf (the shared
//! zero page included, as `AddressSpace::resident_pages` does), so `ps`
//! and the total line of `pmap` always agree.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicI32, Ordering};

use crate::arch::sync::IrqMutex;
use mmcore::{FrameKind, Pfn};
use vmcore::paging::{Level, WalkStep};
use vmcore::vma::VmaTag;
use vmcore::{PteFlags, Sharing, Vma, VmaKind};

use super::{Args, Result};
use crate::mm::aspace::{AddressSpace, SharedAddressSpace};
use crate::mm::kalloc;
use crate::mm::layout::PAGE_SIZE;
use crate::mm::{pgtable, vmstat};
use crate::proc::oom;
use crate::proc::sched::{self, Pid, State};
use crate::proc::user::{self, UserExit};

const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

pub use crate::procfs::task::{aspace_of, with_aspace};

/// Pages of `[start, end)`: resident, dirty, and swapped out. One walk
/// per present leaf or swap entry, and a whole table's span skipped where
/// the walk stops early.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionUsage {
    pub rss: u64,
    pub dirty: u64,
    pub swap: u64,
}

/// [`RegionUsage`] of `[start, end)`.
pub fn region_usage(a: &mut AddressSpace, start: u64, end: u64) -> RegionUsage {
    let mut u = RegionUsage::default();
    let mut va = start;
    while va < end {
        let steps = a.walk(va);
        let Some(last) = steps.last() else {
            break;
        };
        let size = last.level.entry_size();
        let next = (va & !(size - 1)) + size;
        if last.entry.is_present() {
            let pages = (next.min(end) - va) / PAGE_SIZE;
            u.rss += pages;
            if last.entry.has(PteFlags::DIRTY) {
                u.dirty += pages;
            }
        } else if last.level == Level::Pt && last.entry.is_swap() {
            u.swap += 1;
        }
        va = next;
    }
    u
}

/// VSZ, RSS and swapped-out pages of a process.
pub fn sizes(aspace: &SharedAddressSpace) -> (u64, u64, u64) {
    with_aspace(aspace, |a| {
        let vsz: u64 = a.vmas().iter().map(|v| v.len() / PAGE_SIZE).sum();
        let (anon, file) = a.resident_pages();
        (vsz, anon + file, a.swap_pages())
    })
}

pub fn ps(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    writeln!(
        out,
        "{:>5} {:>5} {:<8} {:>8} {:>8} {:>8} {:>3} NAME",
        "PID", "PPID", "STATE", "VSZ", "RSS", "SWAP", "PSR"
    )?;
    // Refused, not a panic, when the heap is short (`ps` is what one
    // types when memory runs out).
    for p in sched::try_list().map_err(|_| args.oom())? {
        let (vsz, rss, swap) = match aspace_of(p.pid) {
            Some(a) => sizes(&a),
            None => (0, 0, 0),
        };
        // Kernel threads in brackets, as Linux's ps shows them.
        let (open, close) = if p.kernel_thread {
            ("[", "]")
        } else {
            ("", "")
        };
        writeln!(
            out,
            "{:>5} {:>5} {:<8} {:>8} {:>8} {:>8} {:>3} {open}{}{close}",
            p.pid,
            p.ppid,
            p.state,
            vsz * KB_PER_PAGE,
            rss * KB_PER_PAGE,
            swap * KB_PER_PAGE,
            // The CPU it runs on, or last ran on (Linux's PSR).
            p.cpu,
            p.name
        )?;
    }
    Ok(())
}

/// What `pmap` shows in the Mapping column.
struct MappingName<'a>(&'a Vma, &'a str);

impl core::fmt::Display for MappingName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let (vma, program) = (self.0, self.1);
        match (vma.flags.tag, vma.kind, vma.sharing) {
            (VmaTag::Image, _, _) => f.write_str(program),
            (VmaTag::Stack, _, _) => f.write_str("[ stack ]"),
            (VmaTag::Heap, _, _) => f.write_str("[ heap ]"),
            (VmaTag::Vdso, _, _) => f.write_str("[ vdso ]"),
            (VmaTag::Vvar, _, _) => f.write_str("[ vvar ]"),
            (_, VmaKind::File { file, .. }, Sharing::Shared) => {
                write!(f, "[ shared file {file} ]")
            }
            (_, VmaKind::File { file, .. }, Sharing::Private) => write!(f, "[ file {file} ]"),
            (_, VmaKind::Anonymous, _) => f.write_str("[ anon ]"),
        }
    }
}

pub fn pmap(args: &Args, out: &mut dyn Write) -> Result {
    args.count(1, 1)?;
    let pid = args.pid(0)?;
    let name = sched::with_process(pid, |p| kalloc::try_string(&p.name))
        .unwrap_or(Ok(String::new()))
        .map_err(|_| args.oom())?;
    let Some(aspace) = aspace_of(pid) else {
        return Err(if pid == 0 {
            args.failed_fmt(format_args!(
                "pid 0 is the kernel thread: it has no user address space"
            ))
        } else {
            args.failed_fmt(format_args!("pid {pid} has exited: its memory is gone"))
        });
    };
    let rows: Vec<(Vma, RegionUsage)> = with_aspace(&aspace, |a| {
        let mut rows = kalloc::try_with_capacity(a.vmas().len())?;
        let vmas: &mut Vec<(Vma, RegionUsage)> = &mut rows;
        vmas.extend(a.vmas().iter().map(|v| (*v, RegionUsage::default())));
        for (v, u) in vmas.iter_mut() {
            *u = region_usage(a, v.start, v.end);
        }
        Ok(rows)
    })
    .map_err(|_: kalloc::AllocError| args.oom())?;
    writeln!(out, "{pid}:   {name}")?;
    // `pmap -x`'s columns, with Swap from `pmap -X`.
    writeln!(
        out,
        "Address           Kbytes     RSS   Dirty    Swap Mode  Mapping"
    )?;
    let mut total = (0, RegionUsage::default());
    for (vma, u) in &rows {
        let shared = if vma.sharing == Sharing::Shared {
            's'
        } else {
            '-'
        };
        writeln!(
            out,
            "{:016x} {:>7} {:>7} {:>7} {:>7} {}{}- {}",
            vma.start,
            vma.len() / 1024,
            u.rss * KB_PER_PAGE,
            u.dirty * KB_PER_PAGE,
            u.swap * KB_PER_PAGE,
            vma.prot,
            shared,
            MappingName(vma, &name)
        )?;
        total.0 += vma.len() / 1024;
        total.1.rss += u.rss;
        total.1.dirty += u.dirty;
        total.1.swap += u.swap;
    }
    writeln!(out, "---------------- ------- ------- ------- -------")?;
    writeln!(
        out,
        "{:<16} {:>7} {:>7} {:>7} {:>7}",
        "total kB",
        total.0,
        total.1.rss * KB_PER_PAGE,
        total.1.dirty * KB_PER_PAGE,
        total.1.swap * KB_PER_PAGE
    )?;
    Ok(())
}

fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Free => "free",
        FrameKind::Reserved => "reserved",
        FrameKind::Kernel => "kernel",
        FrameKind::Slab => "slab",
        FrameKind::PageTable => "page table",
        FrameKind::UserAnon => "user anonymous",
        FrameKind::UserFile => "page cache",
        FrameKind::ZeroPage => "the zero page",
    }
}

fn is_canonical(addr: u64) -> bool {
    !(0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&addr)
}

fn describe_step(step: &WalkStep, out: &mut dyn Write) -> Result {
    write!(
        out,
        "  {:<4} table {:#012x} [{:>3}] = {}",
        step.level.name(),
        step.table,
        step.index,
        step.entry
    )?;
    let leaf = step.level == Level::Pt || step.entry.is_huge();
    if !step.entry.is_present() {
        writeln!(out, "  -> not present: the walk stops here")?;
    } else if !leaf {
        writeln!(out, "  -> next table {:#x}", step.entry.addr())?;
    } else if step.level == Level::Pt {
        let pfn = Pfn::from_addr(step.entry.addr());
        let (kind, refs) = vmstat::frame_info(pfn);
        write!(
            out,
            "  -> frame {:#x} ({}",
            step.entry.addr(),
            kind_name(kind)
        )?;
        if refs > 0 && kind != FrameKind::ZeroPage {
            write!(
                out,
                ", {refs} reference{}",
                if refs == 1 { "" } else { "s" }
            )?;
        }
        writeln!(out, ")")?;
    } else {
        let base = step.entry.huge_addr(step.level);
        let size = super::memory::human_size(step.level.entry_size());
        writeln!(out, "  -> {size} page at {base:#x}")?;
    }
    Ok(())
}

pub fn walk(args: &Args, out: &mut dyn Write) -> Result {
    args.count(2, 2)?;
    let pid = args.pid(0)?;
    let addr = args.number(1, "an address")?;
    if !is_canonical(addr) {
        return Err(args.usage_fmt(format_args!(
            "{addr:#x} is not a canonical address (bits 63..47 must all equal bit 47)"
        )));
    }
    let (steps, root, region) = if pid == 0 {
        let (steps, root) =
            pgtable::with_kernel(|t, m| (t.translate_walk(m, addr).unwrap_or_default(), t.root()));
        (steps, root, None)
    } else {
        let aspace = aspace_of(pid).ok_or_else(|| {
            args.failed_fmt(format_args!("pid {pid} has exited: nothing to walk"))
        })?;
        with_aspace(&aspace, |a| {
            (
                a.walk(addr),
                a.root(),
                a.vmas().find_for_fault(addr).copied(),
            )
        })
    };
    let owner = if pid == 0 {
        kalloc::try_string("the kernel's page tables")
    } else {
        let name = sched::with_process(pid, |p| kalloc::try_string(&p.name))
            .unwrap_or(Ok(String::new()))
            .map_err(|_| args.oom())?;
        kalloc::try_format(format_args!("pid {pid} ({name})"))
    }
    .map_err(|_| args.oom())?;
    writeln!(out, "walk of {addr:#x} in {owner}, root (CR3) {root:#x}:")?;
    if pid != 0 && addr < 0x0000_8000_0000_0000 {
        match &region {
            Some(v) if addr < v.start => {
                let gap = v.start - vmcore::page_down(addr);
                if gap <= crate::mm::aspace::STACK_GUARD_GAP {
                    writeln!(
                        out,
                        "  {gap:#x} below the stack region {:#x}-{:#x}: a user access grows the stack",
                        v.start, v.end
                    )?
                } else {
                    writeln!(
                        out,
                        "  no region contains it (the stack at {:#x} is too far above to grow): a user access is a segfault",
                        v.start
                    )?
                }
            }
            Some(v) => writeln!(
                out,
                "  region {:#x}-{:#x} {}{}",
                v.start,
                v.end,
                v.prot,
                if v.sharing == Sharing::Shared {
                    's'
                } else {
                    'p'
                }
            )?,
            None => writeln!(out, "  no region contains it: a user access is a segfault")?,
        }
    }
    for step in &steps {
        describe_step(step, out)?;
    }
    match steps.last() {
        Some(last) if last.entry.is_present() => {
            let size = last.level.entry_size();
            let base = if last.level == Level::Pt {
                last.entry.addr()
            } else {
                last.entry.huge_addr(last.level)
            };
            writeln!(
                out,
                "result: {addr:#x} -> {:#x}",
                base + (addr & (size - 1))
            )?;
        }
        Some(last) => {
            writeln!(
                out,
                "result: {addr:#x} not mapped (hole at the {} level)",
                last.level.name()
            )?;
        }
        None => writeln!(out, "result: {addr:#x} not mapped")?,
    }
    Ok(())
}

/// A program started with `run ... &`.
struct Job {
    pid: Pid,
    name: String,
}

static JOBS: IrqMutex<Vec<Job>> = IrqMutex::new(Vec::new());
/// Status of the last foreground program, as a shell's `$?`: the exit
/// code, or 128 + the signal that killed it.
pub(super) static LAST_STATUS: AtomicI32 = AtomicI32::new(0);

pub fn last_status() -> i32 {
    LAST_STATUS.load(Ordering::Relaxed)
}

pub fn signal_name(signal: u8) -> &'static str {
    match signal {
        4 => "SIGILL",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => "unknown signal",
    }
}

/// "exited with 0", "killed by signal 11 (SIGSEGV)".
pub fn describe_exit(exit: &UserExit) -> String {
    alloc::format!("{}", ExitText(exit))
}

/// [`describe_exit`] without allocating.
pub struct ExitText<'a>(pub &'a UserExit);

impl core::fmt::Display for ExitText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self.0 {
            UserExit::Exited(code) => write!(f, "exited with {code}"),
            UserExit::Killed { signal, .. } => {
                write!(f, "killed by signal {signal} ({})", signal_name(*signal))
            }
        }
    }
}

pub(super) fn status_of(exit: &UserExit) -> i32 {
    match exit {
        UserExit::Exited(code) => *code,
        UserExit::Killed { signal, .. } => 128 + *signal as i32,
    }
}

/// `hello` -> `/bin/hello`; paths are kept.
pub fn program_path(name: &str) -> String {
    if name.contains('/') {
        String::from(name)
    } else {
        alloc::format!("/bin/{name}")
    }
}

/// [`program_path`], failing instead of aborting when the heap is out of
/// memory.
pub fn try_program_path(name: &str) -> core::result::Result<String, kalloc::AllocError> {
    if name.contains('/') {
        kalloc::try_string(name)
    } else {
        kalloc::try_format(format_args!("/bin/{name}"))
    }
}

/// Remembers a background program for `jobs`; false if there was no room
/// (it runs on, and is reaped as an orphan would be).
pub(super) fn add_job(pid: Pid, name: &str) -> bool {
    let Ok(name) = kalloc::try_string(name) else {
        return false;
    };
    kalloc::try_push(&mut JOBS.lock(), Job { pid, name }).is_ok()
}

fn is_zombie(pid: Pid) -> bool {
    sched::with_process(pid, |p| matches!(p.state, State::Zombie(_))).unwrap_or(false)
}

/// `run` reached through its [`Args`] (its words already split): the
/// shell itself parses `run` lines with their quoting, redirections and
/// pipes, and hands them to [`super::pipeline::run`].
pub fn run(args: &Args, out: &mut dyn Write) -> Result {
    let mut line = String::new();
    for (i, word) in args.words.iter().enumerate() {
        let sep = if i == 0 { "run " } else { " " };
        kalloc::try_push_str(&mut line, sep).map_err(|_| args.oom())?;
        kalloc::try_push_str(&mut line, word).map_err(|_| args.oom())?;
    }
    super::execute(if line.is_empty() { "run" } else { &line }, out)
}

/// Reaps background programs that ended and says how they did.
pub fn report_finished_jobs(out: &mut dyn Write) {
    // One finished job at a time, moved out of the list: nothing to
    // allocate (this runs after every command, memory short or not).
    loop {
        let finished = JOBS.with(|jobs| {
            let at = jobs.iter().position(|j| {
                // A pid that vanished (reaped elsewhere) is done too.
                is_zombie(j.pid) || sched::with_process(j.pid, |_| ()).is_none()
            })?;
            Some(jobs.remove(at))
        });
        let Some(job) = finished else {
            return;
        };
        if is_zombie(job.pid) {
            let exit = user::wait_for(job.pid);
            let _ = writeln!(out, "[{}] {}: {}", job.pid, job.name, ExitText(&exit));
        } else {
            let _ = writeln!(out, "[{}] {}: done", job.pid, job.name);
        }
    }
}

/// Reaps zombies left to the kernel thread by parents that exited first
/// (orphans are re-parented to pid 0; no one else will wait for them).
pub fn reap_orphans() {
    let is_job = |pid: Pid| JOBS.lock().iter().any(|j| j.pid == pid);
    while let Some(pid) = sched::find_pid(|p| {
        p.pid != 0 && p.ppid == 0 && matches!(p.state, State::Zombie(_)) && !is_job(p.pid)
    }) {
        let _ = sched::reap(pid as i64);
    }
}

pub fn jobs(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    report_finished_jobs(out);
    // By index, copying one job at a time: no list to allocate.
    let mut i = 0;
    loop {
        let job = JOBS.with(|jobs| {
            let job = jobs.get(i)?;
            Some(kalloc::try_string(&job.name).map(|name| (job.pid, name)))
        });
        let Some(job) = job else {
            break;
        };
        let (pid, name) = job.map_err(|_| args.oom())?;
        let state = sched::with_process(pid, |p| p.state.name()).unwrap_or("gone");
        writeln!(out, "[{pid}] {state:<8} {name}")?;
        i += 1;
    }
    if i == 0 {
        writeln!(out, "no background programs")?;
    }
    Ok(())
}

pub fn kill(args: &Args, out: &mut dyn Write) -> Result {
    args.count(1, 1)?;
    let pid = args.pid(0)?;
    if pid == 0 {
        return Err(args.failed_fmt(format_args!(
            "pid 0 is the kernel (this shell): it cannot be killed"
        )));
    }
    if sched::with_process(pid, |p| p.is_kernel_thread()) == Some(true) {
        return Err(args.failed_fmt(format_args!(
            "pid {pid} is a kernel thread: it cannot be killed"
        )));
    }
    if !sched::kill(pid) {
        return Err(args.failed_fmt(format_args!("pid {pid} has already exited")));
    }
    writeln!(out, "killed pid {pid} (SIGKILL)")?;
    Ok(())
}

/// `oomadj`: every process's OOM score; `oomadj PID`: one; `oomadj PID N`:
/// set its `oom_score_adj` (Linux's `/proc/PID/oom_score_adj`).
pub fn oomadj(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 2)?;
    if args.len() == 2 {
        let pid = args.pid(0)?;
        let word = args.get(1).unwrap_or_default();
        let value = match word.strip_prefix('-') {
            Some(digits) => super::parse_number(digits).map(|n| -(n.min(1 << 40) as i64)),
            None => super::parse_number(word).map(|n| n.min(1 << 40) as i64),
        }
        .ok_or_else(|| args.usage_fmt(format_args!("`{word}` is not a number")))?;
        let old = oom::set_score_adj(pid, value)
            .map_err(|e| args.failed_fmt(format_args!("pid {pid}: {e}")))?;
        writeln!(out, "pid {pid}: oom_score_adj {old} -> {value}")?;
        return Ok(());
    }
    let only = match args.len() {
        1 => Some(args.pid(0)?),
        _ => None,
    };
    writeln!(
        out,
        "{:>5} {:>9} {:>7} {:>8} {:>8} NAME",
        "PID", "OOM_SCORE", "OOM_ADJ", "BADNESS", "RSS"
    )?;
    for p in sched::try_list().map_err(|_| args.oom())? {
        if p.pid == 0 || only.is_some_and(|pid| pid != p.pid) {
            continue;
        }
        let Some((points, score, usage)) = oom::score(p.pid) else {
            continue;
        };
        let adj = oom::score_adj(p.pid).unwrap_or(0);
        write!(out, "{:>5} {score:>9} {adj:>7} ", p.pid)?;
        match points {
            Some(points) => write!(out, "{points:>8}")?,
            None => write!(out, "{:>8}", "never")?,
        }
        writeln!(out, " {:>8} {}", usage.rss() * KB_PER_PAGE, p.name)?;
    }
    Ok(())
}
