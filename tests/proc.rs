//! User space end to end: the programs in the ramdisk (user/build, packed by
//! the boot tool) run as processes, print what they should and exit with the
//! right status; a spinning program does not stop the kernel; bad programs
//! are refused; and after everything exits every frame is back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::mm::frames;
use ferrite::proc::exec::ExecError;
use ferrite::proc::sched;
use ferrite::proc::user::{spawn_program, wait_for, UserExit};

use ferrite::testing::{assert_frames_back, assert_round_balances};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::count_free_frames();
    ferrite::testing::run(ferrite::tests![
        hello_runs_and_exits_0,
        static_pie_runs,
        malloc_stress_passes,
        cow_demo_passes,
        usertests_all_pass,
        spinning_program_does_not_freeze_the_kernel,
        non_elf_and_missing_programs_are_refused,
        orphans_are_reaped_by_the_kernel,
        every_frame_comes_back,
    ])
}

/// Runs a program to the end; returns how it ended and what it printed.
use ferrite::testing::run_program as run;

fn hello_runs_and_exits_0() {
    let (exit, out) = run("/bin/hello", &["hello", "a1", "b2"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(
        out.contains("hello from ferrite user space"),
        "output: {out}"
    );
    assert!(
        out.contains("a1") && out.contains("b2"),
        "argv not passed: {out}"
    );
}

fn static_pie_runs() {
    let (exit, out) = run("/bin/hello-pie", &["hello-pie"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(
        out.contains("hello from ferrite user space"),
        "output: {out}"
    );
}

fn malloc_stress_passes() {
    let (exit, out) = run("/bin/malloc-stress", &["malloc-stress"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(out.contains("malloc-stress: ok"), "output: {out}");
}

fn cow_demo_passes() {
    let before = ferrite::mm::vmstat::snapshot();
    let (exit, out) = run("/bin/cow-demo", &["cow-demo"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let delta = ferrite::mm::vmstat::snapshot().since(&before);
    assert!(
        delta.cow_copy > 0,
        "a COW demo without COW copies: {delta:?}"
    );
}

fn usertests_all_pass() {
    ferrite::testing::run_suite("/bin/usertests", &["usertests"], 48);
}

fn spinning_program_does_not_freeze_the_kernel() {
    let spinner = spawn_program("/bin/spin", &["spin"]).expect("spin exists");
    // The kernel thread still gets the CPU: time passes, other programs run.
    let start = ferrite::time::ticks();
    sched::sleep_ticks(20);
    assert!(ferrite::time::ticks() >= start + 20);
    let (exit, out) = run("/bin/hello", &["hello"]);
    assert_eq!(exit, UserExit::Exited(0), "hello next to a spinner: {out}");
    assert!(sched::kill(spinner), "spin was not running");
    assert_eq!(
        wait_for(spinner),
        UserExit::Killed {
            signal: 9,
            fault: None
        }
    );
}

fn non_elf_and_missing_programs_are_refused() {
    match spawn_program("/bin/does-not-exist", &["x"]) {
        Err(ExecError::NotFound) => {}
        other => panic!("missing program: {:?}", other.map(|_| ())),
    }
    match spawn_program("/etc/motd", &["motd"]) {
        Err(ExecError::Elf(e)) => ferrite::kprintln!("  /etc/motd refused: {e}"),
        other => panic!("text file ran: {:?}", other.map(|_| ())),
    }
}

/// A process whose parent died first passes to the kernel, which reaps it
/// itself once it exits (as init does on Linux): zombies nobody waits for
/// must not pile up, each holding a kernel stack. The fuzzer's batch
/// children often die (segfault, exit) before the children they forked.
fn orphans_are_reaped_by_the_kernel() {
    let processes = sched::count();
    let (exit, out) = run("/bin/fuzz", &["fuzz", "-q", "-s", "7", "-n", "3000"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    // An orphan may still be running (on 2 CPUs, one whose vCPU a loaded
    // host holds up): wait (up to 10 s) until every one has exited, so
    // that all of them are zombies for the sweep below to free.
    let live_user = || {
        sched::find_pid(|p| {
            p.pid != 0 && !p.is_kernel_thread() && !matches!(p.state, sched::State::Zombie(_))
        })
    };
    let start = ferrite::time::ticks();
    while live_user().is_some() && ferrite::time::ticks() < start + 10 * ferrite::time::TICK_HZ {
        sched::sleep_ticks(1);
    }
    assert_eq!(live_user(), None, "an orphan of the fuzzer never exited");
    // Making a process sweeps the adopted zombies first.
    let (exit, _) = run("/bin/hello", &["hello"]);
    assert_eq!(exit, UserExit::Exited(0));
    let mut orphans_left = 0;
    while let Ok(Some(_)) = sched::wait(-1, true) {
        orphans_left += 1;
    }
    assert_eq!(
        orphans_left, 0,
        "adopted zombies were left for the kernel to wait for"
    );
    assert_eq!(sched::count(), processes, "processes left behind");
}

fn every_frame_comes_back() {
    // The ramdisk's file table and slab pages for process bookkeeping may
    // stay; user memory may not.
    assert_frames_back(16);
    let by_kind = frames::stats().pages_by_kind;
    let user = by_kind[mmcore::FrameKind::UserAnon as usize]
        + by_kind[mmcore::FrameKind::UserFile as usize]
        + by_kind[mmcore::FrameKind::PageTable as usize];
    ferrite::kprintln!("  user+page-table frames in use: {user}");
    // A fresh run balances exactly.
    assert_round_balances("a process", || {
        let (exit, _) = run("/bin/cow-demo", &["cow-demo"]);
        assert_eq!(exit, UserExit::Exited(0));
    });
}
