//! `/proc` through its own API (`ferrite::procfs`: lookup, list, read,
//! write, readlink), checked against Linux 6.1's formats and against the
//! kernel's own figures: the shell's views print exactly the same text
//! (one generator), meminfo and vmstat agree with the memory snapshot,
//! a running program's maps match its regions, smaps sums to
//! smaps_rollup, status, statm and stat agree with each other and with
//! `ps`, pagemap entries give the frames the page-table walk finds, the
//! `/proc/sys/vm` tunables read and write like Linux's, and every file
//! refuses (ENOMEM) instead of panicking when allocations fail.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use ferrite::mm::commit;
use ferrite::mm::failslab::{self, Mode, Rule, Target};
use ferrite::proc::sched::{self, Pid};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::procfs::{self, task, Global, Kind, Node, PidFile, ProcError};
use ferrite::testing::{meminfo_field, sh};
use usercore::pagemap;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        tree_lookup_and_listing,
        meminfo_is_linux_format_and_adds_up,
        memory_files_are_the_shell_views,
        vmstat_matches_the_kernel_counters,
        process_files_agree_with_the_process,
        pagemap_gives_the_walked_frames,
        sys_vm_reads_and_writes_tunables,
        files_refuse_instead_of_panicking,
        mounted_at_proc_in_the_vfs,
        proctests_pass_from_user_space,
    ])
}

const PAGE: u64 = 4096;

/// The whole file, read in small pieces at increasing offsets (as `cat`
/// with a small buffer would).
fn read_all(node: Node) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 100];
    let mut f = procfs::ProcFile::open(node).expect("open");
    loop {
        let n = f.read(out.len() as u64, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).expect("text")
}

/// The node at `path` (no heap used: the parts go in an array).
fn node_at(path: &str) -> Node {
    let mut parts = [""; 4];
    let mut n = 0;
    for p in path.split('/') {
        parts[n] = p;
        n += 1;
    }
    procfs::lookup(&parts[..n]).unwrap_or_else(|| panic!("no /proc/{path}"))
}

fn file(path: &str) -> String {
    read_all(node_at(path))
}

/// `/proc/PATH` into `out` (room made beforehand: nothing but the file's
/// own text is allocated meanwhile).
fn file_into(path: &str, out: &mut String) {
    out.clear();
    let mut f = procfs::ProcFile::open(node_at(path)).expect("open");
    let mut buf = [0u8; 128];
    loop {
        let n = f.read(out.len() as u64, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        assert!(out.len() + n <= out.capacity(), "room for /proc/{path}");
        out.push_str(core::str::from_utf8(&buf[..n]).expect("text"));
    }
}

/// A shell view into `out` (room made beforehand).
fn sh_into(line: &str, out: &mut String) {
    out.clear();
    ferrite::shell::execute(line, out).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(out.capacity() <= 32 * 1024, "room for {line}");
}

/// Reads `/proc/PATH`, the shell's `view`, then `/proc/PATH` again until
/// both reads of the file are equal: then the view saw that same moment.
/// Every buffer is made first, so reading does not itself move the
/// figures (a slab growing for a new string would).
fn stable(path: &str, view: &str) -> (String, String) {
    let mut bufs = [0; 3].map(|_| String::with_capacity(32 * 1024));
    for _ in 0..20 {
        let [first, other, again] = &mut bufs;
        file_into(path, first);
        sh_into(view, other);
        file_into(path, again);
        if first == again {
            let [first, other, _] = bufs;
            return (first, other);
        }
    }
    let [first, _, again] = bufs;
    panic!("/proc/{path} never held still:\n{first}\n---\n{again}");
}

fn spin() -> Pid {
    let pid = spawn_program("/bin/spin", &["spin"]).expect("spin starts (make -C user)");
    // Let it start and print: until it has run 20 ms (up to 10 s), not
    // for a fixed 100 ms, which a loaded host can take all of before it
    // first runs (then it faults its pages in while the tests compare
    // its memory with what /proc shows).
    let start = ferrite::time::ticks();
    let ran = || sched::with_process(pid, |p| p.cpu_ns).unwrap_or(0) >= 20_000_000;
    while !ran() && ferrite::time::ticks() < start + 10 * ferrite::time::TICK_HZ {
        sched::sleep_ticks(1);
    }
    assert!(ran(), "spin did not run 20 ms in 10 s");
    pid
}

fn stop(pid: Pid) {
    assert!(sched::kill(pid));
    assert!(matches!(wait_for(pid), UserExit::Killed { signal: 9, .. }));
}

fn tree_lookup_and_listing() {
    assert_eq!(procfs::lookup(&[]), Some(Node::Root));
    assert_eq!(
        procfs::lookup(&["meminfo"]),
        Some(Node::Global(Global::Meminfo))
    );
    assert_eq!(
        procfs::lookup(&["pressure", "memory"]),
        Some(Node::Global(Global::PressureMemory))
    );
    assert_eq!(
        procfs::lookup(&["", ".", "sys", "vm", "..", "vm"]),
        Some(Node::SysVmDir)
    );
    assert_eq!(procfs::lookup(&["nonesuch"]), None);
    assert_eq!(procfs::lookup(&["0123"]), None, "leading zero is no pid");
    assert_eq!(procfs::lookup(&["99999"]), None, "no such process");
    let me = sched::current_pid();
    assert_eq!(
        procfs::lookup(&["self", "status"]),
        Some(Node::Pid(me, PidFile::Status))
    );
    assert_eq!(procfs::kind(Node::SelfLink), Kind::Symlink);
    assert_eq!(
        procfs::readlink(Node::SelfLink).unwrap(),
        alloc::format!("{me}").into_bytes()
    );
    // The root lists the fixed files and every process.
    let pid = spin();
    let names: Vec<String> = procfs::list(Node::Root)
        .unwrap()
        .iter()
        .map(|e| String::from(e.name.as_str()))
        .collect();
    for want in [
        "meminfo",
        "vmstat",
        "buddyinfo",
        "slabinfo",
        "zoneinfo",
        "swaps",
        "uptime",
        "loadavg",
        "stat",
        "cpuinfo",
        "version",
        "self",
        "pressure",
        "sys",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    for p in sched::try_list().unwrap() {
        assert!(
            names.contains(&alloc::format!("{}", p.pid)),
            "pid {} not listed",
            p.pid
        );
    }
    let dir = procfs::lookup(&[&alloc::format!("{pid}")]).unwrap();
    assert_eq!(dir, Node::PidDir(pid));
    let files: Vec<String> = procfs::list(dir)
        .unwrap()
        .iter()
        .map(|e| String::from(e.name.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            "cmdline",
            "comm",
            "exe",
            "maps",
            "pagemap",
            "smaps",
            "smaps_rollup",
            "stat",
            "statm",
            "status",
            "fd",
            "fdinfo"
        ]
    );
    assert_eq!(
        procfs::readlink(Node::Pid(pid, PidFile::Exe)).unwrap(),
        b"/bin/spin"
    );
    // Wrong operations are errors, not panics.
    let mut buf = [0u8; 8];
    assert_eq!(
        procfs::read(Node::Root, 0, &mut buf),
        Err(ProcError::Invalid)
    );
    assert_eq!(
        procfs::write(Node::Global(Global::Meminfo), b"1"),
        Err(ProcError::ReadOnly)
    );
    assert_eq!(procfs::readlink(Node::Root), Err(ProcError::Invalid));
    stop(pid);
    // A reaped process is gone from /proc.
    assert_eq!(procfs::lookup(&[&alloc::format!("{pid}")]), None);
    assert_eq!(
        procfs::read(Node::Pid(pid, PidFile::Status), 0, &mut buf),
        Err(ProcError::NotFound)
    );
}

/// Linux 6.1's /proc/meminfo names, in its order (x86_64, no CMA).
const MEMINFO_NAMES: [&str; 52] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SwapCached",
    "Active",
    "Inactive",
    "Active(anon)",
    "Inactive(anon)",
    "Active(file)",
    "Inactive(file)",
    "Unevictable",
    "Mlocked",
    "SwapTotal",
    "SwapFree",
    "Zswap",
    "Zswapped",
    "Dirty",
    "Writeback",
    "AnonPages",
    "Mapped",
    "Shmem",
    "KReclaimable",
    "Slab",
    "SReclaimable",
    "SUnreclaim",
    "KernelStack",
    "PageTables",
    "NFS_Unstable",
    "Bounce",
    "WritebackTmp",
    "CommitLimit",
    "Committed_AS",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "Percpu",
    "HardwareCorrupted",
    "AnonHugePages",
    "ShmemHugePages",
    "ShmemPmdMapped",
    "FileHugePages",
    "FilePmdMapped",
    "HugePages_Total",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "Hugepagesize",
    "Hugetlb",
    "",
    "",
];

fn meminfo_is_linux_format_and_adds_up() {
    let text = file("meminfo");
    let names: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    let want: Vec<&str> = MEMINFO_NAMES
        .iter()
        .copied()
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(names, want, "meminfo:\n{text}");
    for line in text.lines() {
        let (name, rest) = line.split_once(':').unwrap();
        if name.starts_with("HugePages_") {
            // "HugePages_Total:   %5lu"
            assert_eq!(line.len(), 24, "{line:?}");
            assert!(rest.trim().parse::<u64>().is_ok(), "{line:?}");
        } else if name == "HardwareCorrupted" {
            assert_eq!(line, "HardwareCorrupted:     0 kB");
        } else {
            // show_val_kb: name and colon padded to 16, value to (at
            // least) 8, " kB".
            assert_eq!(
                &line[..16],
                alloc::format!("{:<16}", alloc::format!("{name}:"))
            );
            assert!(line.len() >= 27, "{line:?}");
            assert!(line.ends_with(" kB"), "{line:?}");
            assert!(rest.trim().trim_end_matches(" kB").parse::<u64>().is_ok());
        }
    }
    // Every frame accounted for, with the shell's own lines (same snapshot).
    let m = ferrite::procfs::mem::meminfo_snapshot();
    assert_eq!(m.free + m.used(), m.total);
    let (proc, shell) = stable("meminfo", "meminfo");
    ferrite::testing::assert_meminfo_adds_up(&shell);
    assert_eq!(meminfo_field(&proc, "MemTotal"), m.total * 4);
    assert_eq!(
        meminfo_field(&proc, "CommitLimit"),
        commit::commit_limit_pages() * 4
    );
}

/// The shell's views are the /proc files (plus Ferrite's own lines after
/// them, for meminfo and zoneinfo).
fn memory_files_are_the_shell_views() {
    for (path, view) in [
        ("meminfo", "meminfo"),
        ("vmstat", "vmstat"),
        ("buddyinfo", "buddyinfo"),
        ("zoneinfo", "zoneinfo"),
        ("swaps", "swapon -s"),
        ("pressure/memory", "pressure"),
    ] {
        let (proc, shell) = stable(path, view);
        assert!(
            shell.starts_with(&proc),
            "{view} is not /proc/{path}:\n{shell}\n---\n{proc}"
        );
        assert!(proc.ends_with('\n'));
    }
    // buddyinfo: 11 orders summing to MemFree.
    let (buddy, _) = stable("buddyinfo", "buddyinfo");
    assert!(buddy.starts_with("Node 0, zone   Normal "), "{buddy}");
    let counts: Vec<u64> = buddy["Node 0, zone   Normal ".len()..]
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 11);
    let pages: u64 = counts.iter().enumerate().map(|(o, c)| c << o).sum();
    // MemFree also counts the per-CPU page lists (zoneinfo's pagesets).
    let (meminfo, _) = stable("meminfo", "buddyinfo");
    let (zone, _) = stable("zoneinfo", "meminfo");
    let (buddy2, _) = stable("buddyinfo", "meminfo");
    let (zone2, _) = stable("zoneinfo", "buddyinfo");
    if buddy2 == buddy && zone2 == zone {
        let pcp: u64 = zone
            .lines()
            .filter_map(|l| l.trim().strip_prefix("count:"))
            .map(|c| c.trim().parse::<u64>().unwrap())
            .sum();
        assert_eq!((pages + pcp) * 4, meminfo_field(&meminfo, "MemFree"));
    }
    // zoneinfo's watermarks are kswapd's.
    let zone = file("zoneinfo");
    let w = ferrite::mm::kswapd::watermarks();
    for (name, value) in [("min", w.min), ("low", w.low), ("high", w.high)] {
        let line = alloc::format!("\n        {name:<8} {value}\n");
        assert!(zone.contains(&line), "no {line:?} in:\n{zone}");
    }
    assert!(zone.starts_with("Node 0, zone   Normal\n  per-node stats\n"));
    // slabinfo: the objects counted depend on what the reader itself
    // holds at that moment (the shell's word list, the file's text); the
    // caches and their geometry are the same.
    let (slab, view) = stable("slabinfo", "slabinfo");
    assert!(slab.starts_with("slabinfo - version: 2.1\n# name "));
    let geometry = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .skip(2)
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(w.len(), 16, "{l:?}");
                (String::from(w[0]), w[3..6].join(" "))
            })
            .collect()
    };
    assert_eq!(geometry(&slab), geometry(&view));
    assert!(geometry(&slab).len() > 5);
    assert_eq!(
        file("swaps"),
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    );
    let psi = file("pressure/memory");
    assert!(psi.starts_with("some avg10=") && psi.contains("\nfull avg10="));
    // The system files parse as Linux's.
    let up = file("uptime");
    let fields: Vec<&str> = up.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 2, "{up:?}");
    for f in fields {
        let (s, c) = f.split_once('.').unwrap();
        assert!(s.parse::<u64>().is_ok() && c.len() == 2);
    }
    let load = file("loadavg");
    assert!(load.starts_with("0.00 0.00 0.00 "), "{load}");
    let stat = file("stat");
    assert!(
        stat.starts_with("cpu  ") && stat.contains("\ncpu0 "),
        "{stat}"
    );
    assert_eq!(
        stat.lines().next().unwrap().split_whitespace().count(),
        11,
        "{stat}"
    );
    let cpu = file("cpuinfo");
    assert!(cpu.starts_with("processor\t: 0\nvendor_id\t: "), "{cpu}");
    assert!(cpu.contains("\nflags\t\t: fpu "), "{cpu}");
    assert!(file("version").starts_with("Ferrite version "));
}

fn vmstat_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// The sum of every `name: N kB` line in `text` (one a region in smaps).
fn kb_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|r| {
            r.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

fn vmstat_matches_the_kernel_counters() {
    let (vm, _) = stable("vmstat", "vmstat");
    for line in vm.lines() {
        let (name, value) = line.split_once(' ').expect("name value");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{line:?}"
        );
        assert!(value.parse::<u64>().is_ok(), "{line:?}");
    }
    let before = ferrite::mm::vmstat::snapshot();
    let vm = file("vmstat");
    let after = ferrite::mm::vmstat::snapshot();
    let between = |name, a: u64, b: u64| {
        let v = vmstat_field(&vm, name);
        assert!(a <= v && v <= b, "{name} {v} not in {a}..={b}");
    };
    between("pgfault", before.pgfault, after.pgfault);
    between("pgmajfault", before.pgmajfault, after.pgmajfault);
    between("pswpout", before.pswpout, after.pswpout);
    between("cow_copy", before.cow_copy, after.cow_copy);
    between("oom_kill", before.oom_kill, after.oom_kill);
    let (vm, meminfo2) = stable("vmstat", "meminfo");
    assert_eq!(
        vmstat_field(&vm, "nr_free_pages").abs_diff(meminfo_field(&meminfo2, "MemFree") / 4),
        0
    );
    assert_eq!(
        vmstat_field(&vm, "nr_anon_pages") * 4,
        meminfo_field(&meminfo2, "AnonPages")
    );
    assert_eq!(
        vmstat_field(&vm, "nr_kernel_stack"),
        meminfo_field(&meminfo2, "KernelStack")
    );
}

/// `Name:  N kB` (smaps, status).
fn kb_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            Some(rest.trim().trim_end_matches("kB").trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn process_files_agree_with_the_process() {
    let pid = spin();
    let node = |f| read_all(Node::Pid(pid, f));
    let aspace = task::aspace_of(pid).expect("spin's memory");
    let vmas: Vec<vmcore::Vma> = task::with_aspace(&aspace, |a| a.vmas().iter().copied().collect());

    // maps: one line per region, Linux's layout.
    let maps = node(PidFile::Maps);
    let lines: Vec<&str> = maps.lines().collect();
    assert_eq!(lines.len(), vmas.len(), "maps:\n{maps}");
    for (line, v) in lines.iter().zip(&vmas) {
        let head = alloc::format!("{:08x}-{:08x} {}", v.start, v.end, v.prot);
        assert!(line.starts_with(&head), "{line:?} vs {head}");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() == 5 || fields.len() == 6, "{line:?}");
        assert_eq!(fields[2].len(), 8, "offset: {line:?}");
        if fields.len() == 6 {
            // The name starts at column 73 (seq_pad to 72, then a space).
            assert_eq!(line.find(fields[5]), Some(73), "{line:?}");
        } else {
            assert!(line.ends_with(' '), "anonymous: {line:?}");
        }
    }
    assert!(maps.contains(" /bin/spin\n"), "maps:\n{maps}");
    assert!(maps.contains(" [stack]\n"), "maps:\n{maps}");

    // smaps: each region's counts sum to smaps_rollup.
    let smaps = node(PidFile::Smaps);
    let rollup = node(PidFile::SmapsRollup);
    assert!(
        rollup.lines().next().unwrap().ends_with(" [rollup]"),
        "{rollup}"
    );
    let names = [
        "Rss",
        "Pss",
        "Pss_Dirty",
        "Shared_Clean",
        "Shared_Dirty",
        "Private_Clean",
        "Private_Dirty",
        "Referenced",
        "Anonymous",
        "Swap",
    ];
    for name in names {
        let sum = kb_sum(&smaps, name);
        let total = kb_field(&rollup, name);
        // Pss is summed in fixed point before rounding, as Linux.
        assert!(
            total >= sum && total - sum <= vmas.len() as u64,
            "{name}: regions {sum} kB, rollup {total} kB\n{smaps}\n{rollup}"
        );
        if !name.starts_with("Pss") {
            assert_eq!(total, sum, "{name}");
        }
    }
    let sizes = kb_sum(&smaps, "Size");
    assert!(smaps.contains("\nVmFlags: rd "), "{smaps}");
    assert_eq!(
        smaps.lines().filter(|l| l.starts_with("VmFlags:")).count(),
        vmas.len()
    );

    // status, statm and stat agree with each other and with smaps.
    let status = node(PidFile::Status);
    assert!(
        status.starts_with("Name:\tspin\nUmask:\t0022\nState:\t"),
        "{status}"
    );
    assert!(status.contains(&alloc::format!("\nPid:\t{pid}\nPPid:\t0\n")));
    let rss = kb_field(&status, "VmRSS");
    assert_eq!(rss, kb_field(&rollup, "Rss"));
    assert_eq!(
        rss,
        kb_field(&status, "RssAnon") + kb_field(&status, "RssFile") + kb_field(&status, "RssShmem")
    );
    assert_eq!(kb_field(&status, "VmSize"), sizes);
    assert_eq!(kb_field(&status, "RssAnon"), kb_field(&rollup, "Anonymous"));
    let statm: Vec<u64> = node(PidFile::Statm)
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(statm.len(), 7);
    assert_eq!(statm[0] * 4, sizes, "statm size");
    assert_eq!(statm[1] * 4, rss, "statm resident");
    assert_eq!(
        statm[2] * 4,
        kb_field(&status, "RssFile") + kb_field(&status, "RssShmem")
    );
    assert_eq!(statm[3] * 4, kb_field(&status, "VmExe"), "statm text");
    assert_eq!(
        statm[5] * 4,
        kb_field(&status, "VmData") + kb_field(&status, "VmStk")
    );
    let stat = node(PidFile::Stat);
    let (head, tail) = stat.split_once(") ").unwrap();
    assert_eq!(head, alloc::format!("{pid} (spin"));
    let f: Vec<&str> = tail.split_whitespace().collect();
    // Fields 3.. of 52.
    assert_eq!(f.len(), 50, "{stat}");
    assert!(matches!(f[0], "R" | "S"), "{stat}");
    assert_eq!(f[1], "0", "ppid");
    assert_eq!(f[20].parse::<u64>().unwrap(), sizes * 1024, "vsize");
    assert_eq!(f[21].parse::<u64>().unwrap(), statm[1], "rss");
    let image = task::with_aspace(&aspace, |a| a.image);
    assert_eq!(f[45].parse::<u64>().unwrap(), image.arg_start);
    assert!(image.start_code > 0 && image.end_code > image.start_code);

    // ps counts the zero page too (Linux's counters do not).
    let zero = task::space_info(pid, true)
        .unwrap()
        .unwrap()
        .total()
        .zero_pages;
    let (vsz, ps_rss, _) = ferrite::shell::procs::sizes(&aspace);
    assert_eq!(vsz * 4, sizes);
    assert_eq!(ps_rss * 4, rss + zero * 4);

    // cmdline (argv from the process's stack), comm, exe.
    assert_eq!(node(PidFile::Cmdline), "spin\0");
    assert_eq!(node(PidFile::Comm), "spin\n");
    drop(aspace);
    stop(pid);
}

fn entry_at(pid: Pid, va: u64) -> u64 {
    let mut buf = [0u8; 8];
    let n = procfs::read(Node::Pid(pid, PidFile::Pagemap), va / PAGE * 8, &mut buf).unwrap();
    assert_eq!(n, 8);
    u64::from_le_bytes(buf)
}

fn pagemap_gives_the_walked_frames() {
    let pid = spin();
    let aspace = task::aspace_of(pid).unwrap();
    let vmas: Vec<vmcore::Vma> = task::with_aspace(&aspace, |a| a.vmas().iter().copied().collect());
    let mut present = 0;
    let mut absent = 0;
    for v in &vmas {
        for va in (v.start..v.end).step_by(PAGE as usize) {
            let walked = task::with_aspace(&aspace, |a| a.translate(va));
            let e = entry_at(pid, va);
            match walked {
                Some((pa, _)) => {
                    present += 1;
                    let pagemap::Page::Present {
                        pfn, soft_dirty, ..
                    } = pagemap::decode(e)
                    else {
                        panic!("{va:#x}: entry {e:#x} not present, walk found {pa:#x}");
                    };
                    assert_eq!(pfn, pa / PAGE, "{va:#x}");
                    assert!(soft_dirty);
                    // The shell's `walk` ends at the same frame.
                    let walk = sh(&alloc::format!("walk {pid} {va:#x}"));
                    assert!(
                        walk.contains(&alloc::format!("result: {va:#x} -> {pa:#x}")),
                        "{walk}"
                    );
                }
                None => {
                    absent += 1;
                    assert_eq!(e, pagemap::SOFT_DIRTY, "{va:#x}: hole in a region");
                }
            }
        }
    }
    assert!(
        present > 0 && absent > 0,
        "{present} present, {absent} absent"
    );
    // An anonymous page the program wrote (its stack) is exclusive and
    // not a file page; a page of its program file is a file page.
    let stack = vmas.iter().find(|v| v.flags.grows_down).unwrap();
    let top = entry_at(pid, stack.end - PAGE);
    assert_eq!(top & (pagemap::PRESENT | pagemap::FILE), pagemap::PRESENT);
    assert_ne!(top & pagemap::MMAP_EXCLUSIVE, 0, "{top:#x}");
    let text = vmas
        .iter()
        .find(|v| v.prot.contains(vmcore::Prot::EXEC))
        .unwrap();
    let code = entry_at(pid, text.start);
    assert_ne!(code & pagemap::FILE, 0, "{code:#x}");
    // Outside every region: 0. Whole entries only.
    assert_eq!(entry_at(pid, 0x1000), 0);
    let mut buf = [0u8; 16];
    let node = Node::Pid(pid, PidFile::Pagemap);
    assert_eq!(procfs::read(node, 4, &mut buf), Err(ProcError::Invalid));
    assert_eq!(
        procfs::read(node, 0, &mut buf[..5]),
        Err(ProcError::Invalid)
    );
    // A long read: many batches, the same entries.
    let first = stack.start / PAGE;
    let n = ((stack.end - stack.start) / PAGE) as usize;
    let mut many = alloc::vec![0u8; n * 8];
    assert_eq!(procfs::read(node, first * 8, &mut many), Ok(n * 8));
    for i in 0..n {
        let e = u64::from_le_bytes(many[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(e, entry_at(pid, (first + i as u64) * PAGE));
    }
    // Past the top of user space: end of file.
    assert_eq!(
        procfs::read(node, (vmcore::USER_END / PAGE) * 8, &mut buf),
        Ok(0)
    );
    drop(aspace);
    stop(pid);
}

fn sys_vm_reads_and_writes_tunables() {
    let ratio = procfs::lookup(&["sys", "vm", "overcommit_ratio"]).unwrap();
    assert_eq!(read_all(ratio), "50\n");
    assert_eq!(procfs::write(ratio, b"60\n"), Ok(3));
    assert_eq!(commit::policy().ratio, 60);
    assert_eq!(
        sh("sysctl vm.overcommit_ratio"),
        "vm.overcommit_ratio = 60\n"
    );
    assert_eq!(procfs::write(ratio, b" 50 "), Ok(4));
    assert_eq!(commit::policy().ratio, 50);
    assert_eq!(procfs::write(ratio, b"fifty"), Err(ProcError::Invalid));
    assert_eq!(procfs::write(ratio, b""), Err(ProcError::Invalid));
    let swappiness = procfs::lookup(&["sys", "vm", "swappiness"]).unwrap();
    assert_eq!(procfs::write(swappiness, b"201"), Err(ProcError::Invalid));
    assert_eq!(read_all(swappiness), "60\n");
    let mode = procfs::lookup(&["sys", "vm", "overcommit_memory"]).unwrap();
    assert_eq!(procfs::write(mode, b"3"), Err(ProcError::Invalid));
    assert_eq!(read_all(mode), "0\n");
    let min = procfs::lookup(&["sys", "vm", "min_free_kbytes"]).unwrap();
    assert_eq!(procfs::mode(min), 0o444);
    assert_eq!(procfs::write(min, b"1024"), Err(ProcError::ReadOnly));
    assert_eq!(
        read_all(min),
        alloc::format!("{}\n", ferrite::mm::kswapd::watermarks().min * 4)
    );
    // drop_caches drops the page cache no process maps.
    let drop_caches = procfs::lookup(&["sys", "vm", "drop_caches"]).unwrap();
    let (exit, _) = ferrite::testing::run_program("/bin/hello", &["hello"]);
    assert!(matches!(exit, UserExit::Exited(0)), "{exit:?}");
    let cached = meminfo_field(&file("meminfo"), "Cached");
    assert!(cached > 0, "a program ran: its file is cached");
    assert_eq!(procfs::write(drop_caches, b"3\n"), Ok(2));
    assert_eq!(read_all(drop_caches), "3\n");
    assert!(meminfo_field(&file("meminfo"), "Cached") < cached);
    let names: Vec<String> = procfs::list(Node::SysVmDir)
        .unwrap()
        .iter()
        .map(|e| String::from(e.name.as_str()))
        .collect();
    assert!(names.iter().any(|n| n == "overcommit_memory"));
    assert_eq!(names.len(), procfs::sysvm::TUNABLES.len());
}

/// Every file under allocation failure: the Nth fallible allocation fails
/// for each N until a read needs fewer; each read gives its text or
/// ENOMEM, never a panic, and the text it gives is whole.
fn files_refuse_instead_of_panicking() {
    let pid = spin();
    let mut nodes: Vec<Node> = Vec::new();
    for e in procfs::list(Node::Root).unwrap() {
        if procfs::kind(e.node) == Kind::File {
            nodes.push(e.node);
        }
    }
    for e in procfs::list(Node::PidDir(pid)).unwrap() {
        if procfs::kind(e.node) == Kind::File {
            nodes.push(e.node);
        }
    }
    let mut refused = 0;
    for node in nodes {
        let mut buf = alloc::vec![0u8; 4096];
        for n in 1..=6 {
            failslab::configure(
                Target::Slab,
                Rule {
                    mode: Mode::Every(n),
                    times: Some(1),
                },
            );
            let r = procfs::read(node, 0, &mut buf);
            failslab::off();
            match r {
                Ok(len) => {
                    assert!(
                        len > 0 || node == Node::Pid(pid, PidFile::Pagemap),
                        "{node:?} empty"
                    );
                    break;
                }
                Err(ProcError::NoMemory) => refused += 1,
                Err(e) => panic!("{node:?} with allocation {n} failing: {e:?}"),
            }
        }
    }
    assert!(refused > 10, "only {refused} refusals");
    stop(pid);
}

/// `/proc` is mounted: the VFS's path walk reaches the same files, `self`
/// follows to the reader, a directory lists like `list`.
fn mounted_at_proc_in_the_vfs() {
    use ferrite::fs::vfs;
    let text = vfs::read_file(b"/", b"/proc/version", 4096).expect("/proc/version");
    assert_eq!(text, file("version").into_bytes());
    let found = vfs::resolve(b"/", b"/proc/self", false).expect("/proc/self");
    assert_eq!(
        found.inode.readlink().unwrap(),
        alloc::format!("{}", sched::current_pid()).into_bytes()
    );
    let vm = vfs::resolve(b"/", b"/proc/sys/vm/swappiness", true).expect("swappiness");
    let mut buf = [0u8; 16];
    let n = vm.inode.read_kernel(0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"60\n");
    assert!(vfs::is_mount_point(b"/proc"));
}

/// user/proctests (what also passes natively on Linux) on Ferrite: /proc
/// read by a program through open/read/pread/readlink.
fn proctests_pass_from_user_space() {
    ferrite::testing::run_suite("/bin/proctests", &["proctests"], 10);
}
