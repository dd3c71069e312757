//! Static glibc programs and the calls they make: Debian's
//! `busybox-static` (`make setup` fetches it; tests/machines.txt packs it
//! as /bin/busybox for this test only) starts cleanly and its applets that
//! need no files, pipes or signals give Linux's output; `systests` (the
//! rlimit, getrandom, identity, rseq, affinity, mincore and mlock cases,
//! also run natively on Linux) passes; a limit set before exec holds in the
//! new program; mlock'ed pages stay resident when memory runs out.
//!
//! The start-up calls glibc makes (set_tid_address, set_robust_list, rseq,
//! prlimit64, getrandom, ...) must not be logged as unimplemented; only
//! the calls other parts of issue 13 bring (readlink, newfstatat, getcwd,
//! pipe2, ...: [`OTHERS`]) may be.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use ferrite::proc::user::UserExit;
use ferrite::testing::run_program;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        busybox_applets_run,
        busybox_more_applets,
        systests_pass,
        locked_pages_stay_resident_under_pressure,
    ])
}

/// System calls busybox makes that belong to other parts of issue 13: the
/// VFS (access 21, dup2 33, sendfile 40, fcntl 72, getcwd 79, readlink 89,
/// newfstatat 262), pipes (pipe2 293) and time (time 201,
/// clock_nanosleep 230). Once they exist nothing is logged at all.
const OTHERS: [u64; 10] = [21, 33, 40, 72, 79, 89, 201, 230, 262, 293];

/// Panics if the kernel logged an unimplemented call outside [`OTHERS`].
fn only_others_unimplemented(what: &str, out: &str) {
    for line in out.lines() {
        let Some(rest) = line.split("system call ").nth(1) else {
            continue;
        };
        let Some(nr) = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        assert!(
            OTHERS.contains(&nr) || !rest.contains("not implemented"),
            "{what}: system call {nr} is not implemented:\n{out}"
        );
    }
}

/// The lines a program printed, without the kernel's log lines.
fn program_lines(out: &str) -> String {
    let mut kept = String::new();
    for line in out.lines() {
        let logged = line.starts_with('[') && line.contains("] ") && line[1..].starts_with(' ');
        if !logged {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

fn busybox(args: &[&str], want: &str) {
    let what = format!("busybox {}", args[1..].join(" "));
    let (exit, out) = run_program("/bin/busybox", args);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "{what}: {exit:?}\n{out}"
    );
    only_others_unimplemented(&what, &out);
    let got = program_lines(&out);
    assert_eq!(got, want, "{what} printed:\n{out}");
    ferrite::kprintln!("{what}: ok");
}

fn busybox_applets_run() {
    busybox(&["busybox", "echo", "hello", "glibc"], "hello glibc\n");
    busybox(&["busybox", "true"], "");
    let uname = format!(
        "Ferrite ferrite {} Ferrite teaching kernel x86_64 GNU/Linux\n",
        ferrite::VERSION
    );
    busybox(&["busybox", "uname", "-a"], &uname);
    busybox(&["busybox", "seq", "3"], "1\n2\n3\n");
    busybox(&["busybox", "expr", "6", "*", "7"], "42\n");
    busybox(&["busybox", "sh", "-c", "echo $((1+2))"], "3\n");
    // getrlimit through the shell's ulimit, and a lowered limit that an
    // exec'd program (a second busybox) inherits.
    busybox(&["busybox", "sh", "-c", "ulimit -s"], "8192\n");
    busybox(
        &[
            "busybox",
            "sh",
            "-c",
            "ulimit -v 65536; exec busybox sh -c 'ulimit -v'",
        ],
        "65536\n",
    );
    // sched_getaffinity: one CPU.
    busybox(&["busybox", "nproc"], "1\n");
    // getuid and friends: root.
    busybox(&["busybox", "id", "-u"], "0\n");
    busybox(&["busybox", "id", "-g"], "0\n");
}

/// Applets whose output varies (a clock, a checksum of a file that may
/// change): their shape.
fn busybox_contains(args: &[&str], wants: &[&str]) {
    let what = format!("busybox {}", args[1..].join(" "));
    let (exit, out) = run_program("/bin/busybox", args);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "{what}: {exit:?}\n{out}"
    );
    only_others_unimplemented(&what, &out);
    for want in wants {
        assert!(out.contains(want), "{what}: no `{want}` in:\n{out}");
    }
    ferrite::kprintln!("{what}: ok");
}

/// More applets: sysinfo (`uptime`), the affinity mask (`taskset`),
/// setpriority (`renice`), every limit (`ulimit -a`), and reading a
/// ramdisk file (`cat`, `wc`, `md5sum`).
fn busybox_more_applets() {
    busybox_contains(&["busybox", "uptime"], &[" up ", "load average: 0.00"]);
    busybox_contains(
        &["busybox", "sh", "-c", "taskset -p $$"],
        &["current affinity mask: 1\n"],
    );
    busybox(
        &["busybox", "sh", "-c", "renice -n 5 -p $$ && echo reniced"],
        "reniced\n",
    );
    busybox(&["busybox", "id"], "uid=0 gid=0\n");
    busybox(&["busybox", "factor", "84"], "84: 2 2 3 7\n");
    busybox_contains(
        &["busybox", "sh", "-c", "ulimit -a"],
        &[
            "core file size (blocks)         (-c) 0\n",
            "data seg size (kb)              (-d) unlimited\n",
            "stack size (kb)                 (-s) 8192\n",
            "virtual memory (kb)             (-v) unlimited\n",
        ],
    );
    let motd = ferrite::proc::ramdisk::open("/etc/motd").expect("/etc/motd in the ramdisk");
    let text = core::str::from_utf8(motd.data).expect("motd is text");
    busybox(&["busybox", "cat", "/etc/motd"], text);
    busybox(
        &["busybox", "wc", "-c", "/etc/motd"],
        &format!("{} /etc/motd\n", motd.data.len()),
    );
    let (exit, out) = run_program("/bin/busybox", &["busybox", "md5sum", "/etc/motd"]);
    let line = program_lines(&out);
    let ok = matches!(exit, UserExit::Exited(0))
        && line.len() == 32 + 2 + "/etc/motd\n".len()
        && line[..32].bytes().all(|b| b.is_ascii_hexdigit())
        && line[32..] == *"  /etc/motd\n";
    assert!(ok, "busybox md5sum /etc/motd: {exit:?}\n{out}");
}

fn systests_pass() {
    let (exit, out) = run_program("/bin/systests", &["systests"]);
    ferrite::kprintln!("{out}");
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "systests: {exit:?}\n{out}"
    );
    assert!(out.contains("systests: 16 passed, 0 failed"), "{out}");
    only_others_unimplemented("systests", &out);
}

/// `mlock`: on this 64 MiB machine with compressed swap, a program locks
/// 2 MiB, writes 2 MiB more unlocked, then touches 96 MiB: every locked
/// page is still resident afterwards (mincore), some unlocked ones went to
/// swap (so there was pressure), and all hold what was written.
fn locked_pages_stay_resident_under_pressure() {
    ferrite::testing::sh("swapon zram 128M");
    let (exit, out) = run_program("/bin/systests", &["systests", "mlock-pressure", "96"]);
    ferrite::kprintln!("{}", program_lines(&out));
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "systests mlock-pressure: {exit:?}\n{out}"
    );
    assert!(out.contains("systests: mlock-pressure ... ok"), "{out}");
}
