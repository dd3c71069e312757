//! Page-fault scalability (issue 14's benchmark): user/scale's
//! page_fault1, page_fault2 and malloc1, processes and threads variants,
//! at 1 .. N tasks on this machine's N CPUs, each line printed as
//! "bench_scale cpus=N: scale: TEST-VARIANT tasks K ops/s X speedup Y"
//! with the TLB shootdowns each test made; and the cost of a shootdown:
//! munmap of one page with the process alone against with threads
//! spinning on the other CPUs (scale's `shootdown`), and the kernel's own
//! request to one other CPU against a local invalidation.
//! `tools/bench-scale` (make bench) runs the release build on 1, 2 and 4
//! CPUs next to Linux; in a debug build (make test) the points are short.
//! Speed is not asserted (the host's load decides it); that every point
//! ran, every shootdown was acknowledged and no frame leaked is.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::ToString;

use ferrite::arch::sync::LockStat;
use ferrite::arch::{smp, tlb};
use ferrite::kprintln;
use ferrite::mm::{frames, pagecache, vmstat};
use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::testing::run_program;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        scale_every_test,
        shootdown_cost,
        every_frame_comes_back
    ])
}

const TESTS: [&str; 6] = [
    "page_fault1-processes",
    "page_fault1-threads",
    "page_fault2-processes",
    "page_fault2-threads",
    "malloc1-processes",
    "malloc1-threads",
];

/// Seconds per point and MiB per task: will-it-scale-like in release
/// builds, short in debug ones.
fn point() -> (&'static str, &'static str) {
    if cfg!(debug_assertions) {
        ("0.2", "4")
    } else {
        ("1", "16")
    }
}

fn scale(args: &[&str]) -> alloc::string::String {
    let (secs, mib) = point();
    let n = smp::cpus_online().to_string();
    let mut argv = alloc::vec!["scale", "-t", secs, "-m", mib, "-n", &n];
    argv.extend_from_slice(args);
    let (exit, out) = run_program("/bin/scale", &argv);
    assert_eq!(exit, UserExit::Exited(0), "scale {args:?}: {out}");
    assert!(out.contains("scale: done"), "{out}");
    for line in out
        .lines()
        .filter(|l| l.starts_with("scale: ") && !l.ends_with("done"))
    {
        if !line.contains("tasks at most") {
            kprintln!("bench_scale cpus={}: {line}", smp::cpus_online());
        }
    }
    out
}

/// Each test and variant at 1 .. N tasks, with the shootdowns it made:
/// rounds, IPIs (all acknowledged), TSC cycles the shooters spent, and
/// the lazy CPUs skipped.
fn scale_every_test() {
    let cpus = smp::cpus_online();
    for t in TESTS {
        let (rounds, ipis, acks) = tlb::counts();
        let (cycles, lazy) = tlb::costs();
        let locks: [LockStat; 4] = [
            frames::lock_stat(),
            sched::lock_stat(),
            pagecache::lock_stat(),
            pagecache::file_lock_stat(),
        ];
        let faults = vmstat::PGFAULT.get();
        let out = scale(&[t]);
        let faults = vmstat::PGFAULT.get() - faults;
        for k in 1..=cpus {
            let want = format!("scale: {t} tasks {k} ops/s ");
            assert!(out.contains(&want), "no {want}in {out}");
        }
        let (rounds2, ipis2, acks2) = tlb::counts();
        let (cycles2, lazy2) = tlb::costs();
        assert_eq!(ipis2 - ipis, acks2 - acks, "every IPI acknowledged");
        let shots = rounds2 - rounds;
        kprintln!(
            "bench_scale cpus={cpus}: tlb {t} shootdowns {shots} ipis {} cycles-each {} lazy-skipped {}",
            ipis2 - ipis,
            (cycles2 - cycles).checked_div(shots).unwrap_or(0),
            lazy2 - lazy
        );
        // The shared locks over the whole test (every task count), per
        // page fault: what the scaling contends on.
        let now = [
            frames::lock_stat(),
            sched::lock_stat(),
            pagecache::lock_stat(),
            pagecache::file_lock_stat(),
        ];
        // (pagecache_files: every file's own lock, summed; a contention
        // there is two tasks on one file.)
        for (name, (a, b)) in ["frames", "sched", "pagecache", "pagecache_files"]
            .iter()
            .zip(locks.iter().zip(&now))
        {
            let d = b.since(a);
            kprintln!(
                "bench_scale cpus={cpus}: lock {t} {name} per-1000-faults acquisitions {} contentions {} wait-cycles {}",
                (d.acquisitions * 1000).checked_div(faults).unwrap_or(0),
                (d.contentions * 1000).checked_div(faults).unwrap_or(0),
                (d.wait_cycles * 1000).checked_div(faults).unwrap_or(0)
            );
        }
    }
}

/// munmap of one page alone and with threads on the other CPUs (from user
/// space, as on Linux), then the kernel's request to one other CPU against
/// a local invalidation (tests/smpsched.rs's measurement).
fn shootdown_cost() {
    let out = scale(&["shootdown"]);
    assert!(
        out.contains("scale: shootdown threads 1 munmap-cycles "),
        "{out}"
    );
    let cpus = smp::cpus_online();
    if cpus < 2 {
        return;
    }
    let (local, shoot) = ferrite::testing::shootdown_cost(200);
    kprintln!(
        "bench_scale cpus={cpus}: kernel one-page flush {local} cycles here, {shoot} cycles with a shootdown to one other CPU"
    );
    assert!(shoot > 0);
}

/// A short round again once the high-water marks are set: every frame it
/// takes comes back.
fn every_frame_comes_back() {
    ferrite::testing::assert_round_balances("scale's tests", || {
        let n = smp::cpus_online().to_string();
        let (exit, out) = run_program(
            "/bin/scale",
            &[
                "scale",
                "-t",
                "0.1",
                "-m",
                "2",
                "-n",
                &n,
                "page_fault1",
                "malloc1",
            ],
        );
        assert_eq!(exit, UserExit::Exited(0), "{out}");
    });
}
