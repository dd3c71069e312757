//! Signals end to end: the `sigtests` suite (handlers, masks, sigaltstack,
//! SIGSEGV handlers that fix protections or map pages on demand, SIGCHLD,
//! kill, default actions, garbage rt_sigreturn frames, EINTR), Ctrl-C on
//! the console as SIGINT (caught by a handler that sees its blocking read
//! fail with EINTR, or ending a program that has none), and afterwards
//! every frame back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::proc::sched::{self, Block, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::proc::{console, signal};
use ferrite::testing::{assert_frames_back, assert_round_balances, run_program as run};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::count_free_frames();
    ferrite::testing::run(ferrite::tests![
        sigtests_all_pass,
        ctrl_c_interrupts_a_read_with_sigint,
        ctrl_c_ends_a_program_without_a_handler,
        default_actions_give_linux_wait_statuses,
        kernel_threads_take_no_signals,
        signal_round_trip_cost,
        every_frame_comes_back,
    ])
}

fn sigtests_all_pass() {
    ferrite::testing::run_suite("/bin/sigtests", &["sigtests"], 26);
}

/// Waits (up to 10 s) until `pid` blocks in a console read.
fn wait_until_reading(pid: sched::Pid) {
    for _ in 0..1000 {
        let state = sched::with_process(pid, |p| p.state);
        if state == Some(State::Blocked(Block::Console)) {
            return;
        }
        sched::sleep_ticks(1);
    }
    panic!("pid {pid} never blocked reading the console");
}

fn ctrl_c_interrupts_a_read_with_sigint() {
    ferrite::klog::capture_start();
    let pid = spawn_program("/bin/sigtests", &["sigtests", "--sigint-read"]).expect("sigtests");
    wait_until_reading(pid);
    console::set_foreground(pid);
    console::push(0x03);
    let exit = wait_for(pid);
    let out = ferrite::klog::capture_take();
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    assert!(out.contains("sigtests: read interrupted"), "{out}");
}

/// Ctrl-C on the console for `pid`, which must end it with SIGINT.
fn ctrl_c_kills(pid: sched::Pid) {
    console::set_foreground(pid);
    console::push(0x03);
    assert_eq!(
        wait_for(pid),
        UserExit::Killed {
            signal: signal::num::SIGINT,
            fault: None
        }
    );
}

fn ctrl_c_ends_a_program_without_a_handler() {
    let pid = spawn_program("/bin/spin", &["spin"]).expect("spin");
    sched::sleep_ticks(5);
    ctrl_c_kills(pid);
    // A stopped program: Ctrl-C continues it to take SIGINT (else the
    // shell would wait for ever).
    let pid = spawn_program("/bin/sigtests", &["sigtests", "--raise", "19"]).expect("sigtests");
    while !signal::is_stopped(pid) {
        sched::sleep_ticks(1);
    }
    assert_eq!(
        sched::with_process(pid, |p| p.state),
        Some(State::Blocked(Block::Stopped))
    );
    ctrl_c_kills(pid);
    // A signal the kernel sends: SIGTERM's default action ends it.
    let pid = spawn_program("/bin/spin", &["spin"]).expect("spin");
    assert_eq!(signal::send(pid, signal::num::SIGTERM), Ok(()));
    assert_eq!(
        wait_for(pid),
        UserExit::Killed {
            signal: signal::num::SIGTERM,
            fault: None
        }
    );
}

/// The raw wait status of `sigtests --raise SIG` (read from the zombie
/// before it is reaped).
fn raise_status(sig: u8) -> i32 {
    let arg = alloc::format!("{sig}");
    let pid = spawn_program("/bin/sigtests", &["sigtests", "--raise", &arg]).expect("sigtests");
    let status = loop {
        match sched::with_process(pid, |p| p.state) {
            Some(State::Zombie(status)) => break status,
            Some(_) => sched::sleep_ticks(1),
            None => panic!("pid {pid} vanished"),
        }
    };
    wait_for(pid);
    status
}

fn default_actions_give_linux_wait_statuses() {
    use signal::num::*;
    // Terminate; terminate with the core bit (0x80); ignore (exit 0).
    assert_eq!(raise_status(SIGTERM), 15);
    assert_eq!(raise_status(SIGUSR1), 10);
    assert_eq!(raise_status(SIGQUIT), 0x80 | 3);
    assert_eq!(raise_status(SIGABRT), 0x80 | 6);
    assert_eq!(raise_status(SIGCHLD), 0);
    assert_eq!(raise_status(SIGWINCH), 0);
    assert_eq!(raise_status(SIGKILL), 9);
}

fn kernel_threads_take_no_signals() {
    assert_eq!(
        signal::send(0, signal::num::SIGTERM),
        Err(signal::SendError::NotPermitted)
    );
    let kswapd = sched::find_pid(|p| p.is_kernel_thread()).expect("kswapd runs");
    assert_eq!(
        signal::send(kswapd, signal::num::SIGKILL),
        Err(signal::SendError::NotPermitted)
    );
    assert_eq!(
        signal::send(999_999, signal::num::SIGTERM),
        Err(signal::SendError::NoProcess)
    );
}

/// A signal round trip (kill to self, handler, rt_sigreturn) 2 000 times:
/// every handler runs; the cost is printed next to a bare getpid's.
fn signal_round_trip_cost() {
    let (exit, out) = run("/bin/sigtests", &["sigtests", "--bench", "2000"]);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("sigtests: bench:"))
        .expect("a bench line");
    ferrite::kprintln!("  {line}");
}

fn every_frame_comes_back() {
    assert_frames_back(16);
    assert_round_balances("a process", || {
        let (exit, out) = run(
            "/bin/sigtests",
            &["sigtests", "demand-paging", "segv-mprotect"],
        );
        assert_eq!(exit, UserExit::Exited(0), "{out}");
    });
}
