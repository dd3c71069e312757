//! The system-call fuzzer (`/bin/fuzz`, user/fuzz.c) against the kernel:
//! two passes with different seeds. Each must end with exit status 0 (the
//! program checks that every address mmap/mremap/brk returned lies in user
//! space, at or above the minimum mmap address), the kernel must not panic,
//! every unknown system call number must be logged at most once, and once
//! the children are gone the free pages (settled: idle page cache and empty
//! slabs given back) must be exactly what they were before the pass.
//!
//! `FERRITE_FUZZ_SEED` and `FERRITE_FUZZ_CALLS` (read at compile time) set
//! the first seed and the calls per pass; the defaults are a short campaign
//! for `make test`. `make fuzz` runs a long one.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::{frames, pagecache};
use ferrite::proc::sched;
use ferrite::proc::user::{spawn_program, wait_for, UserExit};

ferrite::kernel_entry!(main);

const SEED: &str = match option_env!("FERRITE_FUZZ_SEED") {
    Some(s) => s,
    None => "1",
};
const CALLS: &str = match option_env!("FERRITE_FUZZ_CALLS") {
    Some(s) => s,
    None => "20000",
};

/// `FERRITE_FUZZ_TRACE=1`: the fuzzer prints every call before making it
/// (`fuzz -t`), so after a kernel panic the last trace line is the call.
fn trace() -> bool {
    option_env!("FERRITE_FUZZ_TRACE") == Some("1")
}

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![first_pass, second_pass])
}

fn seed() -> u64 {
    SEED.parse().expect("FERRITE_FUZZ_SEED is a decimal number")
}

fn first_pass() {
    fuzz_pass(seed());
}

fn second_pass() {
    fuzz_pass(seed().wrapping_add(0x9e37_79b9));
}

fn settled_free_pages() -> u64 {
    pagecache::shrink();
    frames::with(|m| {
        m.slab.shrink(&mut m.buddy);
        m.buddy.free_pages()
    })
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

fn fuzz_pass(seed: u64) {
    let before = settled_free_pages();
    let seed_arg = format!("{seed}");
    let mut argv = alloc::vec!["fuzz", "-q", "-s", seed_arg.as_str(), "-n", CALLS];
    if trace() {
        argv.push("-t");
    }
    // FERRITE_FUZZ_ARGS: more options, e.g. "-k -b 50".
    argv.extend(
        option_env!("FERRITE_FUZZ_ARGS")
            .unwrap_or("")
            .split_whitespace(),
    );
    let started = ferrite::time::uptime_ms();
    capture_start();
    let pid = spawn_program("/bin/fuzz", &argv).unwrap_or_else(|e| panic!("/bin/fuzz: {e}"));
    let exit = wait_for(pid);
    let out = capture_take();
    let orphans = reap_orphans();
    let ms = (ferrite::time::uptime_ms() - started).max(1);

    let done = out
        .lines()
        .find(|l| l.starts_with("fuzz: done:"))
        .map(String::from);
    // The calls made, from the summary line ("fuzz: done: N calls, ...").
    let calls: u64 = done
        .as_deref()
        .and_then(|l| l.strip_prefix("fuzz: done: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let unknown = unknown_syscall_reports(&out);
    let segfault_lines = out.lines().filter(|l| l.contains("] segfault at")).count();
    ferrite::kprintln!(
        "  seed {seed}: {calls} calls done in {}.{:03} s ({} calls/s by the kernel's clock); \
         {orphans} orphans reaped; {segfault_lines} segfault lines; {} unknown numbers \
         reported {} times",
        ms / 1000,
        ms % 1000,
        calls * 1000 / ms,
        unknown.len(),
        unknown.values().sum::<usize>(),
    );
    if let Some(line) = &done {
        ferrite::kprintln!("  {line}");
    }
    for line in out.lines().filter(|l| {
        l.contains("INVARIANT VIOLATED") || l.contains("reproduce with") || l.contains("FAILED")
    }) {
        ferrite::kprintln!("  failure: {line}");
    }
    let repeated = unknown.values().filter(|&&n| n > 1).count();
    let (worst_nr, worst) = unknown
        .iter()
        .max_by_key(|(_, &n)| n)
        .map_or((0, 0), |(&nr, &n)| (nr, n));
    let summary = done.is_some();
    // Nothing of ours may hold heap memory while the pages are counted;
    // the verdicts below use only what is left on the stack.
    drop((out, done, unknown, argv));
    drop(seed_arg);
    let after = settled_free_pages();
    ferrite::kprintln!(
        "  free pages (settled): {before} before the pass, {after} after ({} lost)",
        before as i64 - after as i64
    );

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

/// "system call N is not implemented" lines, counted by N.
fn unknown_syscall_reports(out: &str) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for line in out.lines() {
        let Some(rest) = line.split("system call ").nth(1) else {
            continue;
        };
        if !rest.contains(" is not implemented") {
            continue;
        }
        let number = rest.split(' ').next().unwrap_or("");
        if let Ok(n) = number.parse::<u64>() {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}
