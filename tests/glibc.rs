//! Static glibc programs and the calls they make: Debian's
//! `busybox-static` (`make setup` fetches it; tests/machines.txt packs it
//! as /bin/busybox for this test only) starts cleanly and its applets that
//! need no files, pipes or signals give Linux's output; `systests` (the
//! rlimit, getrandom, identity, rseq, affinity, mincore and mlock cases,
//! also run natively on Linux) passes; a limit set before exec holds in the
//! new program; mlock'ed pages stay resident when memory runs out.
//!
//! The start-up calls glibc makes (set_tid_address, set_robust_list, rseq,
//! prlimit64, getrandom, ...) must not be logged as unimplemented (only
//! sendfile, which busybox does without, may be: [`OTHERS`]).
//!
//! Then busybox as a user would run it: `sh` runs a script with pipes,
//! redirection, command substitution and arithmetic over files in /tmp
//! (`sort`, `uniq`, `wc`, `md5sum`, `ls -l`, `cat`, `grep`, ...), its
//! output exactly what the same busybox prints on Linux; `free`, `top -b
//! -n1` and `ps` read /proc and print the kernel's own figures; a
//! process's maps and status read through busybox are the kernel's.

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
        busybox_sh_runs_a_script_on_tmpfs,
        busybox_free_top_and_ps_agree_with_the_kernel,
        busybox_reads_proc_like_the_kernel,
        systests_pass,
        locked_pages_stay_resident_under_pressure,
    ])
}

/// System calls busybox may make that Ferrite leaves out: sendfile (40;
/// busybox's `cat` falls back to read and write, as it does on Linux
/// when sendfile refuses).
const OTHERS: [u64; 1] = [40];

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

/// Runs busybox with `args` (argv), which must exit 0 having made no
/// system call Ferrite leaves out but [`OTHERS`]: what it ran, and its
/// output.
fn run_busybox(args: &[&str]) -> (String, String) {
    let what = format!("busybox {}", args[1..].join(" "));
    let (exit, out) = run_program("/bin/busybox", args);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "{what}: {exit:?}\n{out}"
    );
    only_others_unimplemented(&what, &out);
    (what, out)
}

fn busybox(args: &[&str], want: &str) {
    let (what, out) = run_busybox(args);
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
    let (what, out) = run_busybox(args);
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

/// The script `user/rootfs/share/bb-script.sh` (run natively on Linux by
/// user/run-host-tests.sh with the same busybox, which prints exactly
/// this).
fn busybox_sh_runs_a_script_on_tmpfs() {
    busybox(
        &["busybox", "sh", "/share/bb-script.sh"],
        "arith 42 2 5\n\
         lines 4\n\
         \x202 apple\n\
         apple\n\
         fig\n\
         pear\n\
         kiwi\n\
         dcf49729a7c42bf7d2484b6be627ce1d  -\n\
         bytes 20\n\
         -rw-r--r--\n\
         fruit\n\
         sorted\n\
         words 4\n\
         grep found fig\n\
         unique 3\n\
         cleaned up\n",
    );
}

/// A `/proc/meminfo` field in KiB, as the kernel generates it.
fn meminfo_kib(name: &str) -> u64 {
    let node = ferrite::procfs::lookup(&["meminfo"]).expect("/proc/meminfo");
    let text = ferrite::procfs::generate(node).expect("meminfo");
    let text = core::str::from_utf8(&text.bytes).expect("text");
    ferrite::testing::meminfo_field(text, name)
}

/// The numbers after `label` on the line that starts with it.
fn numbers_after(out: &str, label: &str) -> alloc::vec::Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{out}"));
    line[label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// `free` and `top` read /proc/meminfo: the total is the kernel's exactly,
/// the free memory within what the programs themselves use meanwhile;
/// `ps` lists a running program and the kernel thread by name.
fn busybox_free_top_and_ps_agree_with_the_kernel() {
    const SLACK_KIB: u64 = 2048;
    let (exit, out) = run_program("/bin/busybox", &["busybox", "free"]);
    assert!(matches!(exit, UserExit::Exited(0)), "free: {exit:?}\n{out}");
    let mem = numbers_after(&out, "Mem:");
    let (total, free) = (meminfo_kib("MemTotal"), meminfo_kib("MemFree"));
    assert_eq!(mem[0], total, "free's total vs MemTotal:\n{out}");
    assert!(
        mem[2].abs_diff(free) <= SLACK_KIB,
        "free's free {} vs MemFree {free}:\n{out}",
        mem[2]
    );
    let swap = numbers_after(&out, "Swap:");
    assert_eq!(
        swap[0],
        meminfo_kib("SwapTotal"),
        "free's swap vs SwapTotal:\n{out}"
    );
    ferrite::kprintln!(
        "busybox free: ok (total {} KiB, free {} KiB; kernel {free})",
        mem[0],
        mem[2]
    );

    let spin = ferrite::proc::user::spawn_program("/bin/spin", &["spin"]).expect("spin");
    let (exit, out) = run_program("/bin/busybox", &["busybox", "top", "-b", "-n1"]);
    assert!(matches!(exit, UserExit::Exited(0)), "top: {exit:?}\n{out}");
    let mem = numbers_after(&out, "Mem:");
    let free = meminfo_kib("MemFree");
    assert!(
        mem[1].abs_diff(free) <= SLACK_KIB,
        "top's free {} vs MemFree {free}:\n{out}",
        mem[1]
    );
    assert!(
        out.contains("CPU:") && out.contains("Load average:"),
        "top:\n{out}"
    );
    let spin_line = format!("{spin:>5} ");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&spin_line) && l.ends_with("spin")),
        "top does not list spin (pid {spin}):\n{out}"
    );
    ferrite::kprintln!("busybox top -b -n1: ok");

    let (exit, out) = run_program("/bin/busybox", &["busybox", "ps"]);
    assert!(matches!(exit, UserExit::Exited(0)), "ps: {exit:?}\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&spin_line) && l.ends_with("spin")),
        "ps does not list spin (pid {spin}):\n{out}"
    );
    assert!(out.contains("[kswapd0]"), "ps does not list kswapd:\n{out}");
    ferrite::kprintln!("busybox ps: ok");
    assert!(ferrite::proc::sched::kill(spin));
    ferrite::proc::user::wait_for(spin);
}

/// Through busybox (`cat`, `wc`, `grep`), a running program's
/// /proc/<pid>/maps has one line per region of its address space and its
/// status shows the kernel's RSS for it (busybox's pmap applet is not in
/// Debian's build).
fn busybox_reads_proc_like_the_kernel() {
    let spin = ferrite::proc::user::spawn_program("/bin/spin", &["spin"]).expect("spin");
    // Until it has started and printed (its pages are in): until it has
    // run 20 ms (up to 10 s). One tick of it was not enough (the tick
    // can come before its printf faults its pages in, and then its RSS
    // moves between busybox's read and the kernel's), nor 2 s at most
    // without a verdict on a loaded host.
    let start = ferrite::time::ticks();
    let ran = || ferrite::proc::sched::with_process(spin, |p| p.cpu_ns).unwrap_or(0) >= 20_000_000;
    while !ran() && ferrite::time::ticks() < start + 10 * ferrite::time::TICK_HZ {
        ferrite::proc::sched::sleep_ticks(1);
    }
    assert!(ran(), "spin did not run 20 ms in 10 s");
    let aspace = ferrite::proc::sched::with_process(spin, |p| p.aspace.clone())
        .flatten()
        .expect("spin's address space");
    let regions = aspace.lock().vmas().iter().count();
    drop(aspace);
    let script = format!("wc -l < /proc/{spin}/maps");
    let (exit, out) = run_program("/bin/busybox", &["busybox", "sh", "-c", &script]);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "{script}: {exit:?}\n{out}"
    );
    assert_eq!(
        program_lines(&out),
        format!("{regions}\n"),
        "{script}:\n{out}"
    );
    let script = format!("grep -E '^(Name|VmRSS)' /proc/{spin}/status");
    let (exit, out) = run_program("/bin/busybox", &["busybox", "sh", "-c", &script]);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "{script}: {exit:?}\n{out}"
    );
    let rss_kib = numbers_after(&out, "VmRSS:")[0];
    let node = ferrite::procfs::lookup(&[&format!("{spin}"), "status"]).expect("status");
    let status = ferrite::procfs::generate(node).expect("status");
    let status = core::str::from_utf8(&status.bytes).expect("text");
    assert_eq!(
        rss_kib,
        numbers_after(status, "VmRSS:")[0],
        "{out}\nkernel:\n{status}"
    );
    assert!(out.contains("Name:\tspin"), "{out}");
    let (exit, out) = run_program("/bin/busybox", &["busybox", "cat", "/proc/meminfo"]);
    assert!(
        matches!(exit, UserExit::Exited(0)),
        "cat /proc/meminfo: {exit:?}"
    );
    assert_eq!(numbers_after(&out, "MemTotal:")[0], meminfo_kib("MemTotal"));
    ferrite::kprintln!("busybox reads /proc: ok ({regions} regions, VmRSS {rss_kib} kB)");
    assert!(ferrite::proc::sched::kill(spin));
    ferrite::proc::user::wait_for(spin);
}

fn systests_pass() {
    let out = ferrite::testing::run_suite("/bin/systests", &["systests"], 16);
    ferrite::kprintln!("{out}");
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
