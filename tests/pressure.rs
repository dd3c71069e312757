//! Memory pressure (`pressure`, Linux's `/proc/pressure/memory`), on a
//! 64 MiB machine: nothing stalls while memory suffices; while a program
//! thrashes on compressed swap the stall totals grow, avg10 rises above 0
//! and full stays within some; once it is gone the totals stop; and the
//! scheduler's reports leave the task counts equal to its run queue.
//! Asserts on totals and orderings, not on percentages (TCG's timing).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::mm::{frames, psi, swap, vmstat};
use ferrite::proc::sched::{self, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::testing::run_program;

use ferrite::testing::sh;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        no_stall_without_memory_shortage,
        thrashing_shows_as_pressure,
        a_task_that_can_run_beside_makes_it_some_not_full,
    ])
}

/// One line of `pressure`: (avg10, avg60, avg300 in hundredths of a
/// percent, total in µs), checking Linux's format on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    avg: [u64; 3],
    total: u64,
}

fn parse_line(line: &str, name: &str) -> Line {
    let mut words = line.split(' ');
    assert_eq!(words.next(), Some(name), "{line}");
    let mut avg = [0; 3];
    for (i, key) in ["avg10=", "avg60=", "avg300="].iter().enumerate() {
        let value = words
            .next()
            .and_then(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in `{line}`"));
        let (int, frac) = value.split_once('.').expect("two decimals");
        assert_eq!(frac.len(), 2, "{line}");
        avg[i] = int.parse::<u64>().unwrap() * 100 + frac.parse::<u64>().unwrap();
        assert!(avg[i] <= 10000, "{line}");
    }
    let total = words
        .next()
        .and_then(|w| w.strip_prefix("total="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no total in `{line}`"));
    assert_eq!(words.next(), None, "{line}");
    Line { avg, total }
}

/// `pressure` through the shell: exactly two lines, some then full.
fn pressure() -> (Line, Line) {
    let out = sh("pressure");
    let lines: alloc::vec::Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(out.ends_with('\n'), "{out}");
    (parse_line(lines[0], "some"), parse_line(lines[1], "full"))
}

/// The task counts the scheduler's reports produced equal what its table
/// says: processes running or runnable, nobody stalled, no report that
/// contradicted an earlier one.
fn counts_match_the_run_queue() {
    let queued = |p: &sched::Process| matches!(p.state, State::Runnable | State::Running);
    // with_next_process looks above its argument: pid 0 first, then the rest.
    let mut count = sched::with_process(0, |p| queued(p) as u32).unwrap_or(0);
    let mut after = 0;
    while let Some((pid, q)) = sched::with_next_process(after, |p| (p.pid, queued(p))) {
        count += q as u32;
        after = pid;
    }
    assert_eq!(psi::tasks(), ((count, 0, 0), 0));
}

fn no_stall_without_memory_shortage() {
    let (some, full) = pressure();
    assert_eq!((some.total, full.total), (0, 0), "stalls at boot");
    counts_match_the_run_queue();
    let (exit, out) = run_program("/bin/hello", &["hello"]);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    let (malloc_exit, out) = run_program("/bin/malloc-stress", &["malloc-stress"]);
    assert_eq!(malloc_exit, UserExit::Exited(0), "{out}");
    let (some, full) = pressure();
    assert_eq!(
        (some, full),
        (
            Line {
                avg: [0; 3],
                total: 0
            },
            Line {
                avg: [0; 3],
                total: 0
            }
        ),
        "a program that fits in memory stalled"
    );
    counts_match_the_run_queue();
}

fn thrashing_shows_as_pressure() {
    let ram_mib = frames::stats().managed_pages / 256;
    let mib = ram_mib * 3 / 2;
    sh(&format!("swapon zram {}M", 2 * mib));
    let before = vmstat::snapshot();
    let (some0, full0) = pressure();
    let pid =
        spawn_program("/bin/thrash", &["thrash", "loop", &format!("{mib}"), "1"]).expect("thrash");
    let zombie = || sched::with_process(pid, |p| p.state.name()) == Some("zombie");
    let mut max_avg10 = 0;
    let mut last = (some0, full0);
    let mut samples = 0;
    while !zombie() {
        sched::sleep_ticks(time_ticks_ms(500));
        let (some, full) = pressure();
        // Totals only grow; full never exceeds some.
        assert!(some.total >= last.0.total && full.total >= last.1.total);
        assert!(full.total <= some.total, "{some:?} {full:?}");
        max_avg10 = max_avg10.max(some.avg[0]);
        last = (some, full);
        samples += 1;
    }
    assert_eq!(wait_for(pid), UserExit::Exited(0));
    // The averages fold in each 2 s period as it ends: a run shorter than
    // that shows in avg10 only once its period has ended (it decays over
    // 10 s, so it is still there).
    sched::sleep_ticks(time_ticks_ms(2500));
    let d = vmstat::snapshot().since(&before);
    let (some, full) = pressure();
    max_avg10 = max_avg10.max(some.avg[0]);
    ferrite::kprintln!(
        "  thrash loop {mib} MiB on {ram_mib} MiB: some total {} us, full {} us, \
         max avg10 {}.{:02}% over {samples} samples; pswpin {} pswpout {} allocstall {}",
        some.total - some0.total,
        full.total - full0.total,
        max_avg10 / 100,
        max_avg10 % 100,
        d.pswpin,
        d.pswpout,
        d.allocstall
    );
    assert!(d.pswpin > 0 && d.allocstall > 0, "it did not thrash: {d:?}");
    assert!(some.total > some0.total, "no stall while thrashing");
    // The shell (this thread) slept most of the time: the program alone
    // waiting for memory is full.
    assert!(full.total > full0.total, "no full stall while thrashing");
    assert!(full.total - full0.total <= some.total - some0.total);
    assert!(max_avg10 > 0, "avg10 stayed 0.00 over {samples} samples");

    // Idle now: the totals stand still.
    sched::sleep_ticks(time_ticks_ms(1000));
    let (idle_some, idle_full) = pressure();
    sched::sleep_ticks(time_ticks_ms(1000));
    let (still_some, still_full) = pressure();
    assert_eq!(
        (still_some.total, still_full.total),
        (idle_some.total, idle_full.total),
        "stall time grew with nothing running"
    );
    counts_match_the_run_queue();
    sh("swapoff -a");
    assert_eq!(swap::usage(), (0, 0, 0));
}

/// `thrash` with `spin` beside it (always runnable, a few pages that stay
/// referenced) and `memhog hold` asleep: while spin can run, a stall is
/// some but not full, so full grows less than some. Killing the runnable
/// spin and the sleeping memhog leaves the counts equal to the run queue.
fn a_task_that_can_run_beside_makes_it_some_not_full() {
    let ram_mib = frames::stats().managed_pages / 256;
    let mib = ram_mib * 3 / 2;
    let hold = spawn_program("/bin/memhog", &["memhog", "hold", "1"]).expect("memhog");
    while sched::with_process(hold, |p| p.state.name()) != Some("sleep") {
        sched::sleep_ticks(1);
    }
    let spin = spawn_program("/bin/spin", &["spin"]).expect("spin");
    counts_match_the_run_queue();
    sh(&format!("swapon zram {}M", 2 * mib));
    let (some0, full0) = pressure();
    let (exit, out) = run_program("/bin/thrash", &["thrash", "loop", &format!("{mib}"), "1"]);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    let (some, full) = pressure();
    let (some, full) = (some.total - some0.total, full.total - full0.total);
    ferrite::kprintln!("  thrash beside spin: some total {some} us, full {full} us");
    assert!(some > 0, "no stall while thrashing");
    assert!(
        full < some,
        "full {full} us, some {some} us with spin runnable"
    );
    assert!(sched::kill(spin) && sched::kill(hold));
    assert_eq!(
        wait_for(spin),
        UserExit::Killed {
            signal: 9,
            fault: None
        }
    );
    assert_eq!(
        wait_for(hold),
        UserExit::Killed {
            signal: 9,
            fault: None
        }
    );
    counts_match_the_run_queue();
    sh("swapoff -a");
}

fn time_ticks_ms(ms: u64) -> u64 {
    ms * ferrite::time::TICK_HZ / 1000
}
