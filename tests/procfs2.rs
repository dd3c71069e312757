//! The load average, `/proc/stat`'s counters, the `VmPeak`/`VmHWM`
//! peaks and locked memory, from user space and against the kernel's own
//! figures:
//! - `proctests2` (also run natively on Linux by user/run-host-tests.sh)
//!   passes, its 11-second load-average case included;
//! - `/proc/loadavg` and `/proc/stat` print what `proc::stats` holds;
//! - procps' `pmap` (the real one, built static by tools/setup; packed as
//!   /bin/pmap for this test only by tests/machines.txt) run on a program
//!   holding 8 MiB and a locked region prints totals equal to the
//!   kernel's: `VmSize`, `smaps_rollup`'s Rss, Pss and Locked, `VmLck`.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrite::proc::sched::{self, Pid};
use ferrite::proc::stats;
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::procfs::{self, Global, Node, PidFile};
use ferrite::testing::run_program;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        proctests2_pass,
        load_average_rises_with_a_busy_program,
        loadavg_and_stat_are_the_kernels,
        pmap_totals_are_the_kernels,
    ])
}

/// The whole file, read in pieces.
fn read_all(node: Node) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = procfs::read(node, out.len() as u64, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).expect("text")
}

/// The number after `name` (`Name:  N kB`, `ctxt N`) at a line's start.
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn proctests2_pass() {
    let (exit, out) = run_program("/bin/proctests2", &["proctests2"]);
    assert_eq!(exit, UserExit::Exited(0), "output:\n{out}");
    assert!(
        out.contains("proctests2: 7 passed, 0 failed"),
        "output:\n{out}"
    );
    // Ferrite's single user is root with CAP_IPC_LOCK: RLIMIT_MEMLOCK
    // does not hold it, as on Linux.
    assert!(out.contains("CAP_IPC_LOCK held"), "output:\n{out}");
}

fn load_average_rises_with_a_busy_program() {
    let (exit, out) = run_program("/bin/proctests2", &["proctests2", "loadavg-rises"]);
    assert_eq!(exit, UserExit::Exited(0), "output:\n{out}");
    assert!(
        out.contains("proctests2: loadavg-rises ... ok"),
        "output:\n{out}"
    );
}

fn loadavg_and_stat_are_the_kernels() {
    // Read twice around the kernel's figures; a sample may land between
    // (every 5 s), so retry until both reads agree.
    for _ in 0..5 {
        let text = read_all(Node::Global(Global::Loadavg));
        let load = stats::load();
        let tasks = sched::task_counts();
        let again = read_all(Node::Global(Global::Loadavg));
        if text != again {
            continue;
        }
        let want_avg = format!("{}", load.display());
        assert!(text.starts_with(&want_avg), "{text:?} vs {want_avg:?}");
        let rest: Vec<&str> = text[want_avg.len()..].split_whitespace().collect();
        assert_eq!(rest.len(), 2, "{text:?}");
        let (running, total) = rest[0].split_once('/').expect("running/total");
        assert_eq!(total.parse::<u64>().unwrap(), tasks.total, "{text:?}");
        assert!(running.parse::<u64>().unwrap() <= tasks.total, "{text:?}");
        assert_eq!(
            rest[1].parse::<u32>().unwrap(),
            sched::last_pid(),
            "{text:?}"
        );
        assert!(text.ends_with('\n'));
        break;
    }
    let stat = read_all(Node::Global(Global::Stat));
    let (forks, switches) = (stats::forks(), stats::switches());
    assert_eq!(field(&stat, "processes"), forks, "{stat}");
    let ctxt = field(&stat, "ctxt");
    assert!(ctxt <= switches && ctxt > 0, "{ctxt} vs {switches}");
    assert_eq!(
        field(&stat, "btime") as i64,
        ferrite::time::boot_wall_ns() / 1_000_000_000,
        "{stat}"
    );
    // A program's fork and a few switches later, both have grown.
    let (exit, _) = run_program("/bin/hello", &["hello"]);
    assert_eq!(exit, UserExit::Exited(0));
    assert!(stats::forks() > forks);
    assert!(stats::switches() > switches);
}

/// The numbers of `pmap -x`'s "total kB" line: Kbytes, RSS, Dirty.
fn pmap_x_totals(out: &str) -> [u64; 3] {
    let line = out
        .lines()
        .find(|l| l.starts_with("total kB"))
        .unwrap_or_else(|| panic!("no total line:\n{out}"));
    let v: Vec<u64> = line[8..]
        .split_whitespace()
        .map(|n| n.parse().expect("number"))
        .collect();
    assert_eq!(v.len(), 3, "{line}");
    [v[0], v[1], v[2]]
}

/// `pmap -X`'s totals by column name (the header line names them; the
/// totals line follows the `====` line and ends with "KB").
fn pmap_big_x_totals(out: &str) -> Vec<(String, u64)> {
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("Address"))
        .unwrap_or_else(|| panic!("no header:\n{out}"));
    let names: Vec<&str> = header.split_whitespace().collect();
    // Address Perm Offset Device Inode, then the counted columns, then
    // Mapping.
    let counted = &names[5..names.len() - 1];
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("===="))
        .unwrap_or_else(|| panic!("no ==== line:\n{out}"));
    let totals: Vec<u64> = lines[at + 1]
        .split_whitespace()
        .filter(|w| *w != "KB")
        .map(|n| n.parse().expect("number"))
        .collect();
    assert_eq!(totals.len(), counted.len(), "{header}\n{}", lines[at + 1]);
    counted
        .iter()
        .map(|n| String::from(*n))
        .zip(totals)
        .collect()
}

fn pmap_totals_are_the_kernels() {
    let pid: Pid = spawn_program("/bin/proctests2", &["proctests2", "hold", "8"])
        .expect("proctests2 starts (make -C user)");
    // Until its 8 MiB are in (and its locked region).
    let status = |pid: Pid| read_all(Node::Pid(pid, PidFile::Status));
    let mut ready = false;
    for _ in 0..500 {
        let s = status(pid);
        if field(&s, "VmRSS") >= 8 * 1024 && field(&s, "VmLck") == 16 {
            ready = true;
            break;
        }
        sched::sleep_ticks(2);
    }
    assert!(ready, "hold never got ready:\n{}", status(pid));
    let ps = format!("{pid}");

    let (exit, out) = run_program("/bin/pmap", &["pmap", "-x", &ps]);
    assert_eq!(exit, UserExit::Exited(0), "pmap -x:\n{out}");
    let rollup = read_all(Node::Pid(pid, PidFile::SmapsRollup));
    let st = status(pid);
    let [kbytes, rss, dirty] = pmap_x_totals(&out);
    assert_eq!(
        kbytes,
        field(&st, "VmSize"),
        "pmap -x:\n{out}\nstatus:\n{st}"
    );
    assert_eq!(
        rss,
        field(&rollup, "Rss"),
        "pmap -x:\n{out}\nrollup:\n{rollup}"
    );
    assert_eq!(rss, field(&st, "VmRSS"), "pmap -x:\n{out}\nstatus:\n{st}");
    let dirty_rollup = field(&rollup, "Private_Dirty") + field(&rollup, "Shared_Dirty");
    assert_eq!(dirty, dirty_rollup, "pmap -x:\n{out}\nrollup:\n{rollup}");
    assert!(rss >= 8 * 1024);
    ferrite::kprintln!("pmap -x {pid}: total {kbytes} kB, RSS {rss} kB, dirty {dirty} kB");

    let (exit, out) = run_program("/bin/pmap", &["pmap", "-X", &ps]);
    assert_eq!(exit, UserExit::Exited(0), "pmap -X:\n{out}");
    let totals = pmap_big_x_totals(&out);
    let total = |name: &str| {
        totals
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("no {name} column:\n{out}"))
    };
    let rollup = read_all(Node::Pid(pid, PidFile::SmapsRollup));
    let st = status(pid);
    assert_eq!(total("Size"), field(&st, "VmSize"), "pmap -X:\n{out}");
    for name in ["Rss", "Pss", "Anonymous", "Swap", "Locked"] {
        assert_eq!(
            total(name),
            field(&rollup, name),
            "{name}: pmap -X:\n{out}\n{rollup}"
        );
    }
    // The locked region: 16 kB, the kernel's VmLck.
    assert_eq!(
        total("Locked"),
        field(&st, "VmLck"),
        "pmap -X:\n{out}\n{st}"
    );
    assert_eq!(total("Locked"), 16);
    ferrite::kprintln!(
        "pmap -X {pid}: Size {} Rss {} Pss {} Locked {} kB",
        total("Size"),
        total("Rss"),
        total("Pss"),
        total("Locked")
    );

    assert!(sched::kill(pid));
    assert!(matches!(wait_for(pid), UserExit::Killed { signal: 9, .. }));
}
