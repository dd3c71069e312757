//! The shell, driven through `shell::execute` and scripts, checked against
//! what was done and against itself: meminfo accounts for every frame,
//! buddyinfo sums to MemFree, a process that touched N pages shows N x 4 kB
//! in `ps` and `pmap`, `walk` ends at the frame holding the data the
//! process wrote, a fork plus writes moves the COW counters by exactly the
//! expected amounts, mmview's picture counts every frame, and mistakes get
//! clear errors.
//!
//! The processes are small ring-3 programs assembled below: they touch
//! pages, then sleep in a `nanosleep` loop so the shell can inspect them
//! alive. They never use their stack, so every resident page is one the
//! test put there or asked them to touch.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrite::arch::usermode::user_frame;
use ferrite::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use ferrite::mm::layout::phys_to_virt;
use ferrite::mm::uaccess::copy_to_user;
use ferrite::mm::{frames, layout};
use ferrite::proc::sched::{self, Pid};
use ferrite::proc::user::{wait_for, UserExit};
use ferrite::shell::{self, editor::LineEditor, ShellError};
use mmcore::FrameKind;
use spin::Mutex;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Vma};

use ferrite::testing::{meminfo_field, sh};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        line_editor_edits_and_recalls_history,
        meminfo_accounts_for_every_frame,
        buddyinfo_sums_to_memfree,
        ps_and_pmap_show_the_pages_a_process_touched,
        walk_ends_at_the_frame_holding_the_data,
        fork_and_writes_move_cow_counters_exactly,
        run_and_jobs_report_how_programs_end,
        rc_script_runs_every_line,
        mmview_picture_counts_every_frame,
        mistakes_get_clear_errors,
    ])
}

const PAGE: u64 = 4096;
const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;
const STACK_TOP: u64 = 0x7000_0000;
/// Pages of the data region (only some get touched).
const DATA_PAGES: u64 = 64;

// Ring-3 programs. `toucher(base = rdi, pages = rsi)`: writes i + 1 to
// the first byte of page i, then sleeps forever. `forker(base = rdi,
// n = rsi, k = rdx)`: writes n pages, forks; the child writes the first k
// and exits; the parent waits for it, writes all n again, and sleeps.
// `crasher`: writes to address 0.
core::arch::global_asm!(
    ".pushsection .rodata.shell_user, \"a\"",
    ".global shell_user_start",
    "shell_user_start:",
    // toucher
    "xor ecx, ecx",
    "2:",
    "lea eax, [rcx + 1]",
    "mov byte ptr [rdi], al",
    "add rdi, 4096",
    "inc rcx",
    "cmp rcx, rsi",
    "jb 2b",
    "shell_sleep_forever:",
    "mov eax, 35",
    "lea rdi, [rip + shell_timespec]",
    "xor esi, esi",
    "syscall",
    "jmp shell_sleep_forever",
    // forker
    ".global shell_forker",
    "shell_forker:",
    "mov r12, rdi",
    "mov r13, rsi",
    "mov r14, rdx",
    "mov rdi, r12",
    "mov rcx, r13",
    "3:",
    "mov byte ptr [rdi], 1",
    "add rdi, 4096",
    "dec rcx",
    "jnz 3b",
    "mov eax, 57",
    "syscall",
    "test rax, rax",
    "jnz 5f",
    // child
    "mov rdi, r12",
    "mov rcx, r14",
    "4:",
    "mov byte ptr [rdi], 2",
    "add rdi, 4096",
    "dec rcx",
    "jnz 4b",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    // parent
    "5:",
    "mov edi, -1",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "mov eax, 61",
    "syscall",
    "mov rdi, r12",
    "mov rcx, r13",
    "6:",
    "mov byte ptr [rdi], 3",
    "add rdi, 4096",
    "dec rcx",
    "jnz 6b",
    "jmp shell_sleep_forever",
    // crasher
    ".global shell_crasher",
    "shell_crasher:",
    "xor eax, eax",
    "mov byte ptr [rax], 1",
    "ud2",
    // 20 ms
    "shell_timespec:",
    ".quad 0, 20000000",
    ".global shell_user_end",
    "shell_user_end:",
    ".popsection",
);

unsafe extern "C" {
    static shell_user_start: u8;
    static shell_forker: u8;
    static shell_crasher: u8;
    static shell_user_end: u8;
}

fn blob() -> &'static [u8] {
    let start = core::ptr::addr_of!(shell_user_start);
    let end = core::ptr::addr_of!(shell_user_end);
    // SAFETY: the two symbols delimit the blob above, in kernel rodata.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Entry points in the user copy of the blob.
fn entry(symbol: *const u8) -> u64 {
    CODE + (symbol as u64 - core::ptr::addr_of!(shell_user_start) as u64)
}

/// An address space with the blob at CODE (one page, r-x, resident), an
/// untouched data region and an untouched stack.
fn user_space() -> SharedAddressSpace {
    let a = Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")));
    aspace::switch_to(Some(a.clone()));
    let image = Vma {
        flags: VmaFlags {
            grows_down: false,
            tag: VmaTag::Image,
            ..VmaFlags::default()
        },
        ..Vma::anonymous(CODE, CODE + PAGE, Prot::RW)
    };
    let stack = Vma {
        flags: VmaFlags {
            grows_down: true,
            tag: VmaTag::Stack,
            ..VmaFlags::default()
        },
        ..Vma::anonymous(STACK_TOP - 4 * PAGE, STACK_TOP, Prot::RW)
    };
    {
        let mut s = a.lock();
        s.map(image).unwrap();
        s.map(Vma::anonymous(DATA, DATA + DATA_PAGES * PAGE, Prot::RW))
            .unwrap();
        s.map(stack).unwrap();
    }
    copy_to_user(CODE, blob()).expect("code page");
    a.lock().protect(CODE, CODE + PAGE, Prot::RX).unwrap();
    aspace::switch_to(None);
    a
}

fn spawn(name: &str, rip: u64, args: [u64; 3]) -> (Pid, SharedAddressSpace) {
    let a = user_space();
    let mut frame = user_frame(rip, STACK_TOP);
    frame.rdi = args[0];
    frame.rsi = args[1];
    frame.rdx = args[2];
    let pid = sched::spawn(name, a.clone(), &frame, 0, (0, 0)).expect("a process");
    (pid, a)
}

fn state(pid: Pid) -> Option<&'static str> {
    sched::with_process(pid, |p| p.state.name())
}

/// Lets processes run until `pid` sleeps in its nanosleep loop and `done`
/// holds.
fn wait_until_sleeping(pid: Pid, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if state(pid) == Some("sleep") && done() {
            return;
        }
        sched::sleep_ticks(1);
    }
    panic!("pid {pid} never settled (state {:?})", state(pid));
}

/// Kills and reaps `pid`; returns how it ended.
fn finish(pid: Pid) -> UserExit {
    assert!(sched::kill(pid), "kill {pid}");
    wait_for(pid)
}

/// `name value` -> value.
fn vmstat_field(vmstat: &str, name: &str) -> u64 {
    vmstat
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no {name} in vmstat:\n{vmstat}"))
}

/// The columns of `ps` for `pid`: (PPID, STATE, VSZ, RSS, NAME); SWAP is
/// [`ps_swap`] (PSR, the CPU, is between SWAP and NAME).
fn ps_row(ps: &str, pid: Pid) -> Option<(u32, String, u64, u64, String)> {
    ps.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols[0].parse::<Pid>().ok()? == pid).then(|| {
            (
                cols[1].parse().unwrap(),
                String::from(cols[2]),
                cols[3].parse().unwrap(),
                cols[4].parse().unwrap(),
                String::from(cols[7]),
            )
        })
    })
}

/// The SWAP column of `ps` for `pid` (kB).
fn ps_swap(ps: &str, pid: Pid) -> Option<u64> {
    ps.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols[0].parse::<Pid>().ok()? == pid).then(|| cols[5].parse().unwrap())
    })
}

/// pmap rows: (address, Kbytes, RSS, Dirty, mode, mapping, Swap), and the
/// total line's (Kbytes, RSS, Dirty, Swap).
type PmapRow = (u64, u64, u64, u64, String, String, u64);

fn parse_pmap(pmap: &str) -> (Vec<PmapRow>, (u64, u64, u64, u64)) {
    let mut rows = Vec::new();
    let mut total = None;
    for line in pmap.lines().skip(2) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("total kB") {
            total = Some((
                cols[2].parse().unwrap(),
                cols[3].parse().unwrap(),
                cols[4].parse().unwrap(),
                cols[5].parse().unwrap(),
            ));
        } else if let Ok(addr) = u64::from_str_radix(cols[0], 16) {
            rows.push((
                addr,
                cols[1].parse().unwrap(),
                cols[2].parse().unwrap(),
                cols[3].parse().unwrap(),
                String::from(cols[5]),
                cols[6..].join(" "),
                cols[4].parse().unwrap(),
            ));
        }
    }
    (rows, total.expect("a total line"))
}

/// `result: 0xADDR -> 0xPHYS` -> Some(PHYS); `not mapped` -> None.
fn walk_result(walk: &str) -> Option<u64> {
    let last = walk.lines().last().expect("walk output");
    assert!(last.starts_with("result: "), "walk ends with: {last}");
    let phys = last.split(" -> ").nth(1)?;
    Some(u64::from_str_radix(phys.trim_start_matches("0x"), 16).unwrap())
}

fn line_editor_edits_and_recalls_history() {
    let mut ed = LineEditor::new();
    let mut echo = String::new();
    let mut feed = |ed: &mut LineEditor, bytes: &[u8]| -> Option<String> {
        let mut done = None;
        for &b in bytes {
            if let Some(line) = ed.feed(b, &mut echo) {
                done = Some(line);
            }
        }
        done
    };
    // Backspace (DEL and ^H), then Enter.
    assert_eq!(
        feed(&mut ed, b"mem\x7f\x7fxx\x08info\r").as_deref(),
        Some("mxinfo")
    );
    // Left twice, insert, Home, insert, End, insert.
    assert_eq!(
        feed(&mut ed, b"pmap 12\x1b[D\x1b[D3\x1b[HX\x1b[FY\n").as_deref(),
        Some("Xpmap 312Y")
    );
    // Ctrl-U erases up to the cursor; Delete removes under it.
    assert_eq!(
        feed(&mut ed, b"junk ps\x1b[D\x1b[D\x15\x1b[3~\n").as_deref(),
        Some("s")
    );
    // Up recalls older lines, Down comes back to the draft.
    assert_eq!(feed(&mut ed, b"\x1b[A\n").as_deref(), Some("s"));
    assert_eq!(
        feed(&mut ed, b"\x1b[A\x1b[A\n").as_deref(),
        Some("Xpmap 312Y")
    );
    assert!(feed(&mut ed, b"draft\x1b[A\x1b[A\x1b[B\x1b[B").is_none());
    assert_eq!(ed.current(), "draft");
    // Ctrl-C abandons the line.
    assert_eq!(feed(&mut ed, b"\x03").as_deref(), Some(""));
    assert_eq!(ed.current(), "");
    // History keeps lines newest last, without repeating the last one.
    assert_eq!(ed.history(), ["mxinfo", "Xpmap 312Y", "s", "Xpmap 312Y"]);
    // The echo used only the controls fbcon understands.
    for (i, _) in echo.match_indices('\x1b') {
        let rest = &echo[i + 1..];
        let body = rest.trim_start_matches(|c: char| c == '[' || c.is_ascii_digit());
        assert!(
            matches!(body.chars().next(), Some('C' | 'D' | 'K')),
            "unexpected escape in echo: {:?}",
            &rest[..rest.len().min(6)]
        );
    }
}

fn meminfo_accounts_for_every_frame() {
    let m = sh("meminfo");
    ferrite::testing::assert_meminfo_adds_up(&m);
    let f = |name| meminfo_field(&m, name);
    let stats = frames::stats();
    assert_eq!(f("MemTotal"), stats.managed_pages * 4);
    assert_eq!(f("SUnreclaim"), f("Slab"));
    assert_eq!(f("SReclaimable"), 0);
    assert_eq!(f("KernelStack"), f("VmallocUsed"));
    assert!(f("KernelStack") >= ferrite::KERNEL_STACK_PAGES * 4);
    assert_eq!(f("ZeroPage"), 4, "one zero page");
    assert!(f("PageTables") > 0 && f("MemFree") > f("MemTotal") / 2);
    assert_eq!(
        f("Reserved"),
        stats.pages_by_kind[FrameKind::Reserved as usize] * 4
    );
    assert!(f("MemAvailable") >= f("MemFree"));
    // The LRU lines split what is there: file pages on the file lists,
    // shared anonymous memory (Shmem) and anonymous pages on the anon
    // lists, nothing unevictable. No swap area in this test.
    assert_eq!(f("Active"), f("Active(anon)") + f("Active(file)"), "{m}");
    assert_eq!(
        f("Inactive"),
        f("Inactive(anon)") + f("Inactive(file)"),
        "{m}"
    );
    assert_eq!(
        f("Active(file)") + f("Inactive(file)") + f("Shmem"),
        f("Cached"),
        "{m}"
    );
    assert_eq!(f("Unevictable"), 0, "{m}");
    assert!(
        f("Active(anon)") + f("Inactive(anon)") <= f("AnonPages") + f("Shmem"),
        "{m}"
    );
    let swap = (f("SwapTotal"), f("SwapFree"), f("SwapCached"), f("Dirty"));
    assert_eq!(swap, (0, 0, 0, 0), "{m}");
    // Every line is Linux's `Name:` padded to 16, value to 8, ` kB`, but
    // for the ones Linux prints its own way (hugetlb counts, and
    // `HardwareCorrupted: %5lu kB`).
    for line in m.lines() {
        let name = line.split(':').next().unwrap();
        if name.starts_with("HugePages_") {
            continue;
        }
        assert!(
            line.ends_with(" kB") && (line.find(':').unwrap() < 16 || name == "HardwareCorrupted"),
            "{line:?}"
        );
    }
    // free -k agrees: total = used + free + buff/cache.
    let free = sh("free");
    let mem: Vec<u64> = free
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(mem[0], f("MemTotal"), "free:\n{free}");
    assert_eq!(mem[0], mem[1] + mem[2] + mem[4], "free:\n{free}");
    let swap = free.lines().nth(2).unwrap();
    assert_eq!(
        swap.split_whitespace().collect::<Vec<_>>(),
        ["Swap:", "0", "0", "0"],
        "free:\n{free}"
    );
    // memmap lists the bootloader's regions and their usable total.
    let memmap = sh("memmap");
    let facts = ferrite::boot::facts();
    let usable = ferrite::boot::memory_summary(facts.memory_regions).usable_bytes;
    assert!(
        memmap.contains(&alloc::format!("({usable} bytes)")),
        "memmap:\n{memmap}"
    );
    let listed: u64 = memmap
        .lines()
        .filter(|l| l.starts_with("0x") && l.ends_with("  usable"))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let hex = |c: &str| u64::from_str_radix(c.trim_start_matches("0x"), 16).unwrap();
            hex(cols[1]) - hex(cols[0])
        })
        .sum();
    assert_eq!(listed, usable, "memmap:\n{memmap}");
}

fn buddyinfo_sums_to_memfree() {
    // The shell's own allocations can take a page between two commands:
    // retry until meminfo reads the same on both sides of buddyinfo.
    // MemFree also counts the frames on the per-CPU page lists, which
    // buddyinfo leaves out and zoneinfo's pagesets list per CPU; the
    // commands themselves may move frames between the two, so this also
    // retries until two zoneinfo reads agree.
    for _ in 0..10 {
        let before = meminfo_field(&sh("meminfo"), "MemFree");
        let pcp_before = pageset_counts(&sh("zoneinfo"));
        let buddy = sh("buddyinfo");
        let pcp = pageset_counts(&sh("zoneinfo"));
        let after = meminfo_field(&sh("meminfo"), "MemFree");
        if before != after || pcp != pcp_before {
            continue;
        }
        let line = buddy.lines().next().unwrap();
        assert!(line.starts_with("Node 0, zone   Normal "), "{line:?}");
        let counts: Vec<u64> = line
            .split_whitespace()
            .skip(4)
            .map(|c| c.parse().unwrap())
            .collect();
        assert_eq!(counts.len(), 11, "orders 0..=10: {line}");
        let pages: u64 = counts.iter().enumerate().map(|(order, n)| n << order).sum();
        assert_eq!(
            (pages + pcp) * 4,
            before,
            "buddyinfo {line} + {pcp} pages on per-CPU lists vs MemFree {before} kB"
        );
        let vm = sh("vmstat");
        assert!(vmstat_field(&vm, "nr_free_pages").abs_diff(pages + pcp) <= 2);
        return;
    }
    panic!("memory never held still");
}

/// The frames on every CPU's page list: zoneinfo's pagesets `count:` lines.
fn pageset_counts(zoneinfo: &str) -> u64 {
    let counts: Vec<u64> = zoneinfo
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .map(|c| c.trim().parse().unwrap())
        .collect();
    assert_eq!(
        counts.len(),
        ferrite::arch::smp::cpus_online(),
        "{zoneinfo}"
    );
    counts.iter().sum()
}

const TOUCHED: u64 = 37;

fn ps_and_pmap_show_the_pages_a_process_touched() {
    let anon_before = meminfo_field(&sh("meminfo"), "AnonPages");
    let toucher = entry(core::ptr::addr_of!(shell_user_start));
    let (pid, a) = spawn("toucher", toucher, [DATA, TOUCHED, 0]);
    wait_until_sleeping(pid, || true);
    let ps = sh("ps");
    let (ppid, st, vsz, rss, name) = ps_row(&ps, pid).expect("toucher in ps");
    assert_eq!(
        (ppid, st.as_str(), name.as_str()),
        (0, "sleep", "toucher"),
        "ps:\n{ps}"
    );
    // Touched data pages plus the code page; the stack was never used.
    assert_eq!(rss, (TOUCHED + 1) * 4, "ps:\n{ps}");
    assert_eq!(vsz, (1 + DATA_PAGES + 4) * 4, "ps:\n{ps}");
    let (anon, file) = a.lock().resident_pages();
    assert_eq!((anon + file) * 4, rss);
    let pmap = sh(&alloc::format!("pmap {pid}"));
    assert!(
        pmap.starts_with(&alloc::format!("{pid}:   toucher\n")),
        "pmap:\n{pmap}"
    );
    let (rows, total) = parse_pmap(&pmap);
    let row = |addr| {
        rows.iter()
            .find(|r| r.0 == addr)
            .unwrap_or_else(|| panic!("no {addr:#x} in pmap:\n{pmap}"))
    };
    let code = row(CODE);
    assert_eq!(
        (code.1, code.2, code.4.as_str(), code.5.as_str()),
        (4, 4, "r-x--", "toucher")
    );
    let data = row(DATA);
    assert_eq!(
        (data.1, data.2, data.3),
        (DATA_PAGES * 4, TOUCHED * 4, TOUCHED * 4),
        "pmap:\n{pmap}"
    );
    assert_eq!((data.4.as_str(), data.5.as_str()), ("rw---", "[ anon ]"));
    let stack = row(STACK_TOP - 4 * PAGE);
    assert_eq!((stack.1, stack.2, stack.5.as_str()), (16, 0, "[ stack ]"));
    assert_eq!(total, (vsz, rss, total.2, 0), "pmap total vs ps");
    assert_eq!(ps_swap(&ps, pid), Some(0), "nothing swapped: ps:\n{ps}");
    assert!(total.2 >= TOUCHED * 4);
    // meminfo saw exactly those pages arrive.
    let anon_after = meminfo_field(&sh("meminfo"), "AnonPages");
    assert_eq!(anon_after - anon_before, (TOUCHED + 1) * 4);
    assert!(matches!(finish(pid), UserExit::Killed { signal: 9, .. }));
    // The test's own reference is the last one.
    drop(a);
    assert_eq!(
        meminfo_field(&sh("meminfo"), "AnonPages"),
        anon_before,
        "memory not back"
    );
    assert!(
        ps_row(&sh("ps"), pid).is_none(),
        "reaped process still listed"
    );
}

fn walk_ends_at_the_frame_holding_the_data() {
    let toucher = entry(core::ptr::addr_of!(shell_user_start));
    let (pid, a) = spawn("toucher", toucher, [DATA, TOUCHED, 0]);
    wait_until_sleeping(pid, || true);
    for page in [0, 5, TOUCHED - 1] {
        let addr = DATA + page * PAGE + 0x123;
        let walk = sh(&alloc::format!("walk {pid} {addr:#x}"));
        let phys = walk_result(&walk).unwrap_or_else(|| panic!("not mapped:\n{walk}"));
        let (expected, _) = a.lock().translate(addr).expect("mapped");
        assert_eq!(phys, expected, "walk:\n{walk}");
        assert_eq!(phys & 0xfff, 0x123);
        // SAFETY: a present user frame, read through the direct map.
        let byte = unsafe { *(phys_to_virt(phys & !0xfff) as *const u8) };
        assert_eq!(
            byte as u64,
            page + 1,
            "the frame walk found holds other data"
        );
        let lines: Vec<&str> = walk.lines().collect();
        for (level, line) in ["PML4", "PDPT", "PD", "PT"].iter().zip(&lines[2..6]) {
            assert!(line.trim_start().starts_with(level), "{line}");
        }
        assert!(
            lines[5].contains(&alloc::format!(
                "-> frame {:#x} (user anonymous, 1 reference)",
                phys & !0xfff
            )),
            "walk:\n{walk}"
        );
        assert!(lines[5].contains(" P W U "), "leaf flags: {}", lines[5]);
    }
    // Inside the region but never touched: the walk stops at a hole.
    let untouched = sh(&alloc::format!(
        "walk {pid} {:#x}",
        DATA + (DATA_PAGES - 1) * PAGE
    ));
    assert_eq!(walk_result(&untouched), None, "{untouched}");
    assert!(
        untouched.contains("region 0x10000000-0x10040000 rw-p"),
        "{untouched}"
    );
    let outside = sh(&alloc::format!("walk {pid} 0x5000"));
    assert!(outside.contains("no region contains it"), "{outside}");
    // The kernel's direct map: PAGE_OFFSET + x ends at x.
    let kernel = sh(&alloc::format!(
        "walk 0 {:#x}",
        layout::PAGE_OFFSET + 0x123_4567
    ));
    assert_eq!(walk_result(&kernel), Some(0x123_4567), "{kernel}");
    finish(pid);
}

const FORK_PAGES: u64 = 24;
const CHILD_WRITES: u64 = 9;

fn fork_and_writes_move_cow_counters_exactly() {
    let before = sh("vmstat");
    let forker = entry(core::ptr::addr_of!(shell_forker));
    let (pid, _a) = spawn("forker", forker, [DATA, FORK_PAGES, CHILD_WRITES]);
    // Settled: the parent sleeps and has reaped its child.
    wait_until_sleeping(pid, || {
        sched::list().iter().filter(|p| !p.kernel_thread).count() == 2
    });
    let after = sh("vmstat");
    let delta = |name| vmstat_field(&after, name) - vmstat_field(&before, name);
    // The child's writes copy shared pages; once it is gone the parent's
    // writes find every page its own again and just reuse them.
    assert_eq!(delta("cow_copy"), CHILD_WRITES, "vmstat after:\n{after}");
    assert_eq!(delta("cow_reuse"), FORK_PAGES, "vmstat after:\n{after}");
    // The parent's first writes, and the test loading the code page.
    assert_eq!(delta("demand_zero"), FORK_PAGES + 1);
    assert!(delta("pgfault") >= FORK_PAGES + CHILD_WRITES + FORK_PAGES);
    let ps = sh("ps");
    let (_, _, _, rss, _) = ps_row(&ps, pid).expect("forker in ps");
    assert_eq!(rss, (FORK_PAGES + 1) * 4, "ps:\n{ps}");
    // `kill` through the shell; the test (its parent) reaps it.
    let killed = sh(&alloc::format!("kill {pid}"));
    assert!(killed.contains("killed pid"), "{killed}");
    assert_eq!(state(pid), Some("zombie"));
    let exit = wait_for(pid);
    assert_eq!(
        shell::procs::describe_exit(&exit),
        "killed by signal 9 (SIGKILL)"
    );
}

fn run_and_jobs_report_how_programs_end() {
    // A ring-3 crash, as `run` would describe it.
    let (pid, _a) = spawn("crasher", entry(core::ptr::addr_of!(shell_crasher)), [0; 3]);
    let exit = wait_for(pid);
    assert_eq!(
        shell::procs::describe_exit(&exit),
        "killed by signal 11 (SIGSEGV)"
    );
    if ferrite::proc::ramdisk::open("/bin/hello").is_none() {
        ferrite::kprintln!("no /bin/hello in the ramdisk: run not exercised");
        return;
    }
    let out = sh("run hello a b");
    assert!(out.contains("] hello: exited with 0"), "{out}");
    assert_eq!(shell::procs::last_status(), 0);
    let out = sh("run /bin/hello &");
    let bg: Pid = out
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{out}"));
    assert!(out.contains("running in the background"), "{out}");
    for _ in 0..500 {
        if state(bg) == Some("zombie") {
            break;
        }
        sched::sleep_ticks(1);
    }
    let jobs = sh("jobs");
    assert!(
        jobs.contains(&alloc::format!("[{bg}] /bin/hello: exited with 0")),
        "{jobs}"
    );
    assert!(sh("jobs").contains("no background programs"));
}

fn rc_script_runs_every_line() {
    let script = "# a comment\necho hello   rc\n\nbogus command\nfree\npmap\n";
    let mut out = String::new();
    let failed = shell::run_script(script, &mut out);
    assert_eq!(failed, 2, "{out}");
    assert!(
        out.starts_with("ferrite$ echo hello   rc\nhello rc\n"),
        "{out}"
    );
    assert!(
        out.contains("ferrite$ bogus command\nbogus: unknown command"),
        "{out}"
    );
    assert!(out.contains("Mem:"), "{out}");
    assert!(
        out.contains("pmap: missing argument\nusage: pmap PID"),
        "{out}"
    );
    assert!(!out.contains("a comment"));
}

fn mmview_picture_counts_every_frame() {
    // One cell per frame: the cells are the buddy allocator's own
    // accounting, in which frames on the CPUs' page lists are allocated
    // blocks of their list's kind; meminfo counts those free.
    let (pic, stats, meminfo_stats) = {
        // Nothing else runs between the reads.
        let _irq = ferrite::arch::sync::IrqOff::new();
        (
            shell::mmview::picture(1),
            frames::buddy_stats(),
            frames::stats(),
        )
    };
    let moved: u64 = (0..FrameKind::COUNT)
        .filter(|&k| k != FrameKind::Free as usize)
        .map(|k| stats.pages_by_kind[k] - meminfo_stats.pages_by_kind[k])
        .sum();
    assert_eq!(moved, pic.percpu, "frames on per-CPU lists");
    assert_eq!(
        meminfo_stats.pages_by_kind[FrameKind::Free as usize],
        stats.pages_by_kind[FrameKind::Free as usize] + pic.percpu
    );
    assert_eq!(pic.frames, stats.spanned_pages);
    let mut counts = [0u64; FrameKind::COUNT];
    let mut active = [0u64; 2];
    for &c in &pic.cells {
        counts[shell::mmview::cell_kind(c) as usize] += 1;
        match c {
            shell::mmview::ANON_ACTIVE => active[0] += 1,
            shell::mmview::FILE_ACTIVE => active[1] += 1,
            _ => {}
        }
    }
    assert_eq!(counts, stats.pages_by_kind, "cells by owner");
    assert_eq!(active, pic.active, "cells on active lists");
    assert_eq!(pic.totals, stats.pages_by_kind, "totals by owner");
    // Grouped, the totals stay exact and the cells cover the span.
    let grouped = shell::mmview::picture(16);
    assert_eq!(grouped.cells.len() as u64, pic.frames.div_ceil(16));
    assert_eq!(grouped.totals.iter().sum::<u64>(), pic.frames);
    // A grid always fits the frames it is given.
    let g = shell::mmview::grid(8, 30, 1264, 600, 2_000_000);
    assert!((g.cols * g.rows) as u64 * g.frames_per_cell >= 2_000_000);
    let text = sh("mmview -t");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("0x")).collect();
    assert!(!rows.is_empty() && rows.len() <= 32, "{text}");
    assert!(rows
        .iter()
        .all(|r| r.split(' ').nth(1).unwrap().len() <= 64));
    assert!(
        text.contains(". free") && text.contains("Z zero page"),
        "{text}"
    );
    // On the framebuffer: one picture, then the text console is back.
    let drawn = sh("mmview 0");
    assert!(drawn.contains("stopped after 1 pictures"), "{drawn}");
}

fn expect_err(line: &str) -> (ShellError, String) {
    let mut out = String::new();
    match shell::execute(line, &mut out) {
        Ok(()) => panic!("`{line}` succeeded:\n{out}"),
        Err(e) => {
            let text = alloc::format!("{e}");
            (e, text)
        }
    }
}

fn mistakes_get_clear_errors() {
    let (e, text) = expect_err("frobnicate 3");
    assert_eq!(e, ShellError::UnknownCommand("frobnicate".into()));
    assert_eq!(
        text,
        "frobnicate: unknown command (type `help` for the list)"
    );
    let (_, text) = expect_err("pmap");
    assert_eq!(text, "pmap: missing argument\nusage: pmap PID");
    let (_, text) = expect_err("pmap 12x");
    assert_eq!(text, "pmap: `12x` is not a process id\nusage: pmap PID");
    let (e, _) = expect_err("pmap 4000");
    assert_eq!(
        e,
        ShellError::NoSuchProcess {
            command: "pmap",
            pid: 4000
        }
    );
    let (_, text) = expect_err("pmap 0");
    assert!(text.contains("kernel thread"), "{text}");
    let (_, text) = expect_err("walk 0");
    assert!(text.contains("usage: walk PID ADDR"), "{text}");
    let (_, text) = expect_err("walk 0 0x0000900000000000");
    assert!(text.contains("not a canonical address"), "{text}");
    let (_, text) = expect_err("walk 0 zz");
    assert!(text.contains("`zz` is not an address"), "{text}");
    let (_, text) = expect_err("meminfo now");
    assert_eq!(text, "meminfo: unexpected argument `now`\nusage: meminfo");
    let (_, text) = expect_err("kill 0");
    assert!(text.contains("cannot be killed"), "{text}");
    let (_, text) = expect_err("run /bin/no-such-program");
    assert_eq!(
        text,
        "run: /bin/no-such-program: no such file in the ramdisk"
    );
    let (_, text) = expect_err("run &");
    assert!(text.contains("missing program name"), "{text}");
    let (_, text) = expect_err("sleep forever");
    assert!(text.contains("not a number of seconds"), "{text}");
    let (_, text) = expect_err("poweroff 500");
    assert!(text.contains("too big"), "{text}");
    let (_, text) = expect_err("swapon zram");
    assert_eq!(
        text,
        "swapon: missing argument\nusage: swapon [zram SIZE | -s | --show]"
    );
    let (_, text) = expect_err("swapon zram 100");
    assert!(text.contains("less than a page"), "{text}");
    let (_, text) = expect_err("swapon /dev/sda2");
    assert!(
        text.contains("unknown device or option `/dev/sda2`"),
        "{text}"
    );
    let (_, text) = expect_err("swapoff /dev/sda2");
    assert!(text.contains("not a swap device"), "{text}");
    let (_, text) = expect_err("swapoff");
    assert_eq!(text, "swapoff: no swap area is active");
    let (_, text) = expect_err("help frobnicate");
    assert!(text.contains("no command `frobnicate`"), "{text}");
    // And the good paths of the same commands still work.
    assert!(sh("help walk").contains("usage: walk PID ADDR"));
    assert!(sh("help").lines().count() > 20);
    assert_eq!(sh("  # just a comment"), "");
    assert_eq!(shell::system::poweroff_value(0), 0x10);
    assert_eq!(shell::system::poweroff_value(1), 0x11);
}
