//! Signals, part two: the `sigtests2` suite (queued real-time signals and
//! their limit, rt_sigqueueinfo, rt_sigtimedwait, alarm and the interval
//! timers, process groups and sessions, the masks of ppoll and pselect6),
//! then a program that dies with hundreds of signals queued and its
//! timers armed: every frame comes back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program as run, settled_free_pages};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        sigtests2_all_pass,
        queued_signals_and_timers_are_freed_at_exit,
    ])
}

fn sigtests2_all_pass() {
    let (exit, out) = run("/bin/sigtests2", &["sigtests2"]);
    let summary = out
        .lines()
        .find(|l| l.contains("passed,"))
        .unwrap_or("no summary");
    ferrite::kprintln!("  {summary}");
    for line in out.lines().filter(|l| l.contains("FAILED")) {
        ferrite::kprintln!("  {line}");
    }
    assert_eq!(exit, UserExit::Exited(0), "sigtests2 failed: {summary}");
    // Every case ran (a case lost from the table would pass unnoticed).
    assert!(
        summary.contains("sigtests2: 12 passed, 0 failed"),
        "{summary}"
    );
}

fn queued_signals_and_timers_are_freed_at_exit() {
    // Once first: slab pages for the queue's size class stay after it.
    let (exit, out) = run("/bin/sigtests2", &["sigtests2", "rt-exit"]);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    drop(out);
    let before = settled_free_pages();
    for _ in 0..3 {
        let (exit, out) = run("/bin/sigtests2", &["sigtests2", "rt-exit"]);
        assert_eq!(exit, UserExit::Exited(0), "{out}");
        assert!(out.contains("rt-exit ... ok"), "{out}");
    }
    // No process is left with a timer (a zombie's would still fire).
    let armed = sched::find_pid(|p| p.sig.timers != Default::default());
    assert_eq!(armed, None, "a process kept its timers");
    let after = settled_free_pages();
    ferrite::kprintln!("  free pages: {before} before, {after} after 3 runs");
    assert_eq!(after, before, "queued signals or timers leaked frames");
}
