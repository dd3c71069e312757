//! The OOM killer: when memory runs out it kills the process with the most
//! badness, not the one that happened to fault; `oom_score_adj` moves the
//! choice (-1000: never, +1000: first); the report names the victim; the
//! faulting process finishes with its data intact; and every frame of the
//! victim comes back (run on 64 MiB and 256 MiB machines).
//!
//! The programs are `/bin/memhog` (user/memhog.c): `hold N` touches N MiB
//! and sleeps forever, `fill N` writes N MiB, checks it and exits 0. The
//! sizes are fractions of the memory user pages may take at the start of
//! each test, so the same test runs out of memory on any machine.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use ferrite::klog::{capture_restart, capture_start, capture_take};
use ferrite::mm::fault::UserFault;
use ferrite::mm::{frames, vmstat};
use ferrite::proc::oom;
use ferrite::proc::sched::{self, Block, Pid, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::time::TICK_HZ;

use ferrite::testing::assert_round_balances;

ferrite::kernel_entry!(main);

fn main() -> ! {
    warm_up();
    ferrite::testing::run(ferrite::tests![
        the_largest_process_dies_not_the_faulting_one,
        oom_score_adj_minus_1000_protects_the_largest,
        oom_score_adj_plus_1000_is_chosen_first,
        with_nothing_killable_the_faulting_process_dies,
        oomadj_shell_command_sets_and_shows,
    ])
}

/// MiB user pages may still take (free frames above the kernel's reserve).
fn available_mib() -> u64 {
    let pages = frames::free_pages().saturating_sub(frames::user_reserve());
    (pages * 4096) >> 20
}

fn spawn(argv: &[&str]) -> Pid {
    spawn_program("/bin/memhog", argv).unwrap_or_else(|e| panic!("memhog {argv:?}: {e}"))
}

/// Starts `memhog hold mib` (with `adj` set before it runs) and waits until
/// it holds its memory and sleeps.
fn holder(mib: u64, adj: i64) -> Pid {
    let pid = spawn(&["memhog", "hold", &format!("{mib}")]);
    oom::set_score_adj(pid, adj).expect("a new process");
    let deadline = ferrite::time::ticks() + 120 * TICK_HZ;
    loop {
        let state = sched::with_process(pid, |p| p.state).expect("the hog lives");
        match state {
            State::Blocked(Block::Sleep(_)) => return pid,
            State::Zombie(status) => panic!("the hog died before holding its memory: {status:#x}"),
            _ => {}
        }
        assert!(
            ferrite::time::ticks() < deadline,
            "the hog never held {mib} MiB"
        );
        sched::sleep_ticks(2);
    }
}

fn sigkill(exit: UserExit) -> bool {
    matches!(exit, UserExit::Killed { signal: 9, .. })
}

fn oom_fault(exit: UserExit) -> Option<UserFault> {
    match exit {
        UserExit::Killed { signal: 9, fault } => fault,
        _ => None,
    }
}

/// The pid in the first `Out of memory: Killed process PID (` line.
fn first_victim(out: &str) -> Option<Pid> {
    let rest = out.split("Out of memory: Killed process ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// Runs `f` (which returns what it took of the capture, if anything),
/// hands everything printed to `check`, then checks that the OOM killer
/// killed `kills` processes and every frame came back.
fn balanced(kills: u64, f: impl FnOnce() -> String, check: impl FnOnce(&str)) {
    // The captured text's own heap pages go back too (dropped in the round).
    assert_round_balances("the OOM kill", || {
        let counters = vmstat::snapshot();
        capture_start();
        let mut out = f();
        out += &capture_take();
        let delta = vmstat::snapshot().since(&counters);
        assert_eq!(delta.oom_kill, kills, "oom_kill; output:\n{out}");
        assert_eq!(
            oom::victim_exiting_now(),
            None,
            "a victim's memory is still held"
        );
        check(&out);
    });
    ferrite::kprintln!("  {} oom kill(s), every frame back", kills);
}

/// One run first: whatever a first program leaves for good (the process
/// table's and run queue's room, the page cache's tree nodes) is there
/// before any test counts frames.
fn warm_up() {
    let exit = wait_for(spawn(&["memhog", "fill", "1"]));
    assert_eq!(exit, UserExit::Exited(0));
}

fn the_largest_process_dies_not_the_faulting_one() {
    balanced(
        1,
        || {
            let avail = available_mib();
            let (big, small) = (avail * 6 / 10, avail * 6 / 10);
            ferrite::kprintln!("  {avail} MiB available: hog holds {big}, filler writes {small}");
            let hog = holder(big, 0);
            let filler = spawn(&["memhog", "fill", &format!("{small}")]);
            let filler_exit = wait_for(filler);
            let hog_exit = wait_for(hog);
            let out = capture_restart();
            assert_eq!(filler_exit, UserExit::Exited(0), "the filler: {out}");
            assert!(
                out.contains(&format!("memhog: filled {small} MiB, checked")),
                "{out}"
            );
            assert_eq!(
                hog_exit,
                UserExit::Killed {
                    signal: 9,
                    fault: None
                },
                "the hog: {out}"
            );
            assert_eq!(first_victim(&out), Some(hog), "{out}");
            out
        },
        |out| {
            assert!(
                out.contains(
                    "[  pid  ]   total_vm      rss pgtables_bytes swapents oom_score_adj name"
                ),
                "{out}"
            );
            assert!(out.contains("memhog invoked oom-killer"), "{out}");
            assert!(
                out.contains("anon-rss:") && out.contains("oom_score_adj:0"),
                "{out}"
            );
        },
    );
}

fn oom_score_adj_minus_1000_protects_the_largest() {
    balanced(
        1,
        || {
            let avail = available_mib();
            let (big, small) = (avail * 6 / 10, avail * 6 / 10);
            let hog = holder(big, -1000);
            let filler = spawn(&["memhog", "fill", &format!("{small}")]);
            let filler_exit = wait_for(filler);
            let out = capture_restart();
            assert!(sigkill(filler_exit), "the filler: {filler_exit:?}\n{out}");
            assert!(
                oom_fault(filler_exit).is_some(),
                "killed in its fault: {out}"
            );
            assert_eq!(first_victim(&out), Some(filler), "{out}");
            // The protected hog still sleeps on its memory.
            assert_eq!(
                sched::with_process(hog, |p| p.state.name()),
                Some("sleep"),
                "{out}"
            );
            assert!(sched::kill(hog));
            assert!(sigkill(wait_for(hog)));
            out
        },
        |_| {},
    );
}

fn oom_score_adj_plus_1000_is_chosen_first() {
    balanced(
        2,
        || {
            let avail = available_mib();
            // The hog is the largest, the pet small but at +1000. The filler
            // outgrows what the pet's death frees, so the hog dies second.
            let (big, pet, fill) = (avail * 6 / 10, avail / 10, avail * 6 / 10);
            let hog = holder(big, 0);
            let pet = holder(pet, 1000);
            let filler = spawn(&["memhog", "fill", &format!("{fill}")]);
            let filler_exit = wait_for(filler);
            let out = capture_restart();
            assert_eq!(filler_exit, UserExit::Exited(0), "the filler: {out}");
            assert_eq!(first_victim(&out), Some(pet), "{out}");
            assert!(sigkill(wait_for(pet)));
            assert!(sigkill(wait_for(hog)), "{out}");
            out
        },
        |out| assert!(out.contains("oom_score_adj:1000"), "{out}"),
    );
}

fn with_nothing_killable_the_faulting_process_dies() {
    balanced(
        1,
        || {
            let avail = available_mib();
            let hog = holder(avail * 6 / 10, -1000);
            let filler = spawn(&["memhog", "fill", &format!("{}", avail * 6 / 10)]);
            oom::set_score_adj(filler, -1000).expect("a new process");
            let exit = wait_for(filler);
            assert!(oom_fault(exit).is_some(), "{exit:?}");
            assert!(sched::kill(hog));
            assert!(sigkill(wait_for(hog)));
            String::new()
        },
        |out| {
            assert!(
                out.contains("Out of memory and no killable processes"),
                "{out}"
            )
        },
    );
}

fn oomadj_shell_command_sets_and_shows() {
    let pid = holder(1, 0);
    let mut out = String::new();
    ferrite::shell::execute(&format!("oomadj {pid} -500"), &mut out).expect("oomadj set");
    assert!(
        out.contains(&format!("pid {pid}: oom_score_adj 0 -> -500")),
        "{out}"
    );
    assert_eq!(oom::score_adj(pid), Some(-500));
    out.clear();
    ferrite::shell::execute(&format!("oomadj {pid}"), &mut out).expect("oomadj show");
    let row = out.lines().nth(1).unwrap_or_default();
    let cols: alloc::vec::Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.first(), Some(&&*format!("{pid}")), "{out}");
    assert_eq!(cols.get(2), Some(&"-500"), "{out}");
    assert_eq!(cols.last(), Some(&"memhog"), "{out}");
    out.clear();
    assert!(ferrite::shell::execute(&format!("oomadj {pid} 1001"), &mut out).is_err());
    assert!(ferrite::shell::execute("oomadj 0 5", &mut out).is_err());
    ferrite::shell::execute(&format!("oomadj {pid} -1000"), &mut out).expect("oomadj set");
    out.clear();
    ferrite::shell::execute(&format!("oomadj {pid}"), &mut out).expect("oomadj show");
    assert!(out.contains("never"), "{out}");
    assert!(sched::kill(pid));
    assert!(sigkill(wait_for(pid)));
}
