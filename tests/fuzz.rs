//! The system-call fuzzer (`/bin/fuzz`, user/fuzz.c) against the kernel: a
//! warm-up, then two passes with different seeds. Each must end with exit
//! status 0 (the program checks that every address mmap/mremap/brk returned
//! lies in user space, at or above the minimum mmap address), the kernel
//! must not panic, every unknown system call number must be logged at most
//! once, and once the children are gone the free pages (settled: idle page
//! cache and empty slabs given back) must be exactly what they were before
//! the pass.
//!
//! Two more, for `make test`'s short campaign only (no `FERRITE_FUZZ_CALLS`
//! given): on a machine with several CPUs, a third pass of
//! [`SMP_CALLS`] calls (the races between a batch and its parent, or an OOM
//! kill and a fault on the other CPU, need a longer run than the short
//! passes); and everywhere, replays of single batches that once found a
//! bug (`fuzz -s SEED -r BATCH`, see [`REPLAYS`]), each also ending with
//! every frame back.
//!
//! Compile-time settings (`make fuzz` sets them):
//! - `FERRITE_FUZZ_SEED`: the first pass's seed (default 1; the second
//!   pass uses another one, derived from it);
//! - `FERRITE_FUZZ_CALLS`: calls per pass (default 20000, a short campaign
//!   for `make test`);
//! - `FERRITE_FUZZ_TRACE=1`: the fuzzer prints each call before making it
//!   (`fuzz -t`), so after a kernel panic the last trace line is the call;
//! - `FERRITE_FUZZ_ARGS`: more options for the program, e.g. `-k`.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrite::klog::{capture_restart, capture_start, capture_take};
use ferrite::mm::{frames, pagecache};
use ferrite::proc::sched;
use ferrite::proc::user::{spawn_program, wait_for, UserExit};

use ferrite::testing::settled_free_pages;

ferrite::kernel_entry!(main);

const SEED: &str = match option_env!("FERRITE_FUZZ_SEED") {
    Some(s) => s,
    None => "1",
};
const CALLS: &str = match option_env!("FERRITE_FUZZ_CALLS") {
    Some(s) => s,
    None => "20000",
};

/// The third pass's calls, on several CPUs (22-25 s there on an idle
/// 2-core host).
const SMP_CALLS: &str = "200000";

/// Batches that found bugs on 2 CPUs, replayed alone: (seed, batch, what
/// it found).
const REPLAYS: &[(&str, &str, &str)] = &[
    // Grew a MAP_GROWSDOWN region at 0x10000 down to page 0 through
    // nanosleep(NULL, ..), then slept for ~2^63 s on what it read there.
    ("77", "3758", "nanosleep(NULL) read page 0"),
    // mmap of 4 GB with MAP_LOCKED: OOM-killed inside mlock's populate
    // loop (its memory was lost when the kill found it asleep there).
    ("2654436980", "3474", "OOM kill in MAP_LOCKED populate"),
    // mremap of a shared anonymous mapping to 4 GB: the batch ran out in
    // the populate's user copy and chose itself, which the killer did not
    // await, so the parent's next fault on the other CPU killed it too.
    ("2654442771", "3654", "OOM victim chosen by itself"),
];

fn explicit_calls() -> bool {
    option_env!("FERRITE_FUZZ_CALLS").is_some_and(|c| !c.is_empty())
}

fn trace() -> bool {
    option_env!("FERRITE_FUZZ_TRACE") == Some("1")
}

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![first_pass, second_pass, smp_pass, replays])
}

fn seed() -> u64 {
    SEED.parse().expect("FERRITE_FUZZ_SEED is a decimal number")
}

fn first_pass() {
    warm_up();
    fuzz_pass(seed(), CALLS, &[]);
}

/// A few batches before anything is counted: the first run of a program
/// leaves things that stay for good and are no leak (slab caches created
/// for their first object, each keeping a small reserve of empty slabs).
fn warm_up() {
    capture_start();
    let pid = spawn_program("/bin/fuzz", &["fuzz", "-q", "-s", "12345", "-n", "300"])
        .unwrap_or_else(|e| panic!("/bin/fuzz: {e}"));
    let exit = wait_for(pid);
    reap_orphans();
    let out = capture_take();
    let summary = out.lines().find(|l| l.starts_with("fuzz: done:"));
    ferrite::kprintln!("  warm-up: {exit:?}: {}", summary.unwrap_or("no summary"));
}

fn second_pass() {
    fuzz_pass(seed().wrapping_add(0x9e37_79b9), CALLS, &[]);
}

fn smp_pass() {
    let cpus = ferrite::arch::smp::cpus_online();
    if cpus < 2 || explicit_calls() {
        ferrite::kprintln!("  skipped ({cpus} CPU(s) online, or the calls were given)");
        return;
    }
    fuzz_pass(seed().wrapping_add(0x7f4a_7c15), SMP_CALLS, &[]);
}

fn replays() {
    for &(seed, batch, what) in REPLAYS {
        ferrite::kprintln!("  replay: seed {seed} batch {batch} ({what})");
        let seed: u64 = seed.parse().expect("a decimal seed");
        fuzz_pass(seed, "100", &["-r", batch]);
    }
}

/// Reaps every child the kernel thread inherited: a batch child killed
/// in the middle of its batch leaves its own children (which exit at once)
/// to the kernel.
fn reap_orphans() -> usize {
    let mut reaped = 0;
    while let Ok(Some(_)) = sched::wait(-1, false) {
        reaped += 1;
    }
    reaped
}

/// What the console showed during a pass, read line by line as it comes
/// (a long campaign prints more than one buffer should hold).
#[derive(Default)]
struct Scan {
    partial: String,
    /// "system call N is not implemented" lines, counted by N.
    unknown: BTreeMap<u64, usize>,
    segfaults: usize,
    /// The program's "fuzz: done: ..." line.
    done: Option<String>,
    /// Its failure lines (the first few).
    failures: Vec<String>,
}

impl Scan {
    /// Takes what was printed since the last call (the capture restarts
    /// at once, under the capture's lock, so no line falls between).
    fn drain(&mut self) {
        let text = capture_restart();
        self.partial.push_str(&text);
        drop(text);
        let Some(last_newline) = self.partial.rfind('\n') else {
            return;
        };
        let rest = String::from(&self.partial[last_newline + 1..]);
        let complete = core::mem::replace(&mut self.partial, rest);
        for line in complete[..last_newline].lines() {
            self.line(line);
        }
    }

    fn line(&mut self, line: &str) {
        if let Some(rest) = line.split("system call ").nth(1) {
            if rest.contains(" is not implemented") {
                let number = rest.split(' ').next().unwrap_or("");
                if let Ok(n) = number.parse::<u64>() {
                    *self.unknown.entry(n).or_insert(0) += 1;
                }
            }
        }
        if line.contains("] segfault at") {
            self.segfaults += 1;
        }
        if line.starts_with("fuzz: done:") {
            self.done = Some(String::from(line));
        }
        let failure = line.contains("INVARIANT VIOLATED")
            || line.contains("reproduce with")
            || line.contains("FAILED");
        if failure && self.failures.len() < 20 {
            self.failures.push(String::from(line));
        }
    }
}

/// One run of the program, `calls` calls with `seed`, and `extra`
/// options (`-r BATCH`: that batch only).
fn fuzz_pass(seed: u64, calls: &str, extra: &[&str]) {
    let before = settled_free_pages();
    let kinds_before = frames::stats().pages_by_kind;
    let (objects_before, _) = pagecache::anonymous_objects();
    let seed_arg = format!("{seed}");
    let mut argv = alloc::vec!["fuzz", "-q", "-s", seed_arg.as_str(), "-n", calls];
    if trace() {
        argv.push("-t");
    }
    argv.extend_from_slice(extra);
    argv.extend(
        option_env!("FERRITE_FUZZ_ARGS")
            .unwrap_or("")
            .split_whitespace(),
    );
    let started = ferrite::time::uptime_ms();
    let mut scan = Scan::default();
    capture_start();
    let pid = spawn_program("/bin/fuzz", &argv).unwrap_or_else(|e| panic!("/bin/fuzz: {e}"));
    loop {
        let running = sched::with_process(pid, |p| !matches!(p.state, sched::State::Zombie(_)))
            .unwrap_or(false);
        scan.drain();
        if !running {
            break;
        }
        sched::sleep_ticks(10);
    }
    let exit = wait_for(pid);
    let orphans = reap_orphans();
    scan.drain();
    drop(capture_take());
    let ms = (ferrite::time::uptime_ms() - started).max(1);

    // The calls made, from the summary line ("fuzz: done: N calls, ...").
    let calls: u64 = scan
        .done
        .as_deref()
        .and_then(|l| l.strip_prefix("fuzz: done: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ferrite::kprintln!(
        "  seed {seed}: {calls} calls done in {}.{:03} s ({} calls/s by the kernel's clock); \
         {orphans} orphans reaped; {} segfault lines; {} unknown numbers reported {} times",
        ms / 1000,
        ms % 1000,
        calls * 1000 / ms,
        scan.segfaults,
        scan.unknown.len(),
        scan.unknown.values().sum::<usize>(),
    );
    if let Some(line) = &scan.done {
        ferrite::kprintln!("  {line}");
    }
    for line in &scan.failures {
        ferrite::kprintln!("  failure: {line}");
    }
    let repeated = scan.unknown.values().filter(|&&n| n > 1).count();
    let (worst_nr, worst) = scan
        .unknown
        .iter()
        .max_by_key(|(_, &n)| n)
        .map_or((0, 0), |(&nr, &n)| (nr, n));
    let summary = scan.done.is_some();
    // Nothing of ours may hold heap memory while the pages are counted;
    // the verdicts below use only what is left on the stack.
    drop((scan, argv));
    drop(seed_arg);
    let after = settled_free_pages();
    ferrite::kprintln!(
        "  free pages (settled): {before} before the pass, {after} after ({} lost)",
        before as i64 - after as i64
    );
    // Where any difference went, by owner.
    let kinds_after = frames::stats().pages_by_kind;
    for kind in mmcore::FrameKind::ALL {
        let (b, a) = (kinds_before[kind as usize], kinds_after[kind as usize]);
        if a != b {
            ferrite::kprintln!("    {kind:?}: {b} -> {a} pages");
        }
    }
    let (objects_after, _) = pagecache::anonymous_objects();
    if objects_after != objects_before {
        ferrite::kprintln!("    shared anonymous objects: {objects_before} -> {objects_after}");
    }

    assert_eq!(
        exit,
        UserExit::Exited(0),
        "fuzz (seed {seed}) failed (its failure lines are above)"
    );
    assert!(summary, "fuzz (seed {seed}) printed no summary");
    assert_eq!(
        repeated, 0,
        "{repeated} unknown system call numbers were logged more than once \
         (e.g. {worst_nr}: {worst} times)"
    );
    assert_eq!(
        after,
        before,
        "seed {seed}: {} pages lost over the pass",
        before as i64 - after as i64
    );
}
