//! Pipes, poll and select on Ferrite: `pipetests` (the same cases
//! `user/run-host-tests.sh` runs on Linux) passes; a process blocked on a
//! pipe (in read or in poll) dies by Ctrl-C (SIGINT) or kill without hanging the
//! kernel; the shell's quoting, redirections and pipelines work end to
//! end with files in /tmp; and a second round of all that gives back
//! every frame it takes.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};

use ferrite::proc::sched::{self, Block, Pid, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::testing::{run_program, sh};

ferrite::kernel_entry!(main);

/// The pid the Ctrl-C thread presses Ctrl-C for (0: none).
static CTRL_C_FOR: AtomicU32 = AtomicU32::new(0);

/// Presses Ctrl-C for `CTRL_C_FOR` once the kernel thread waits for it
/// (inside `wait_for`, which forgets a Ctrl-C pressed before it starts),
/// as a user at the keyboard would. Made before the frames are counted:
/// kernel threads never exit.
fn ctrl_c_thread() -> ! {
    loop {
        let pid = CTRL_C_FOR.load(Ordering::SeqCst);
        let waiting = sched::with_process(0, |p| p.state == State::Blocked(Block::Child));
        if pid != 0 && waiting == Some(true) {
            CTRL_C_FOR.store(0, Ordering::SeqCst);
            ferrite::proc::console::push(0x03);
        }
        sched::sleep_ticks(1);
    }
}

fn main() -> ! {
    sched::spawn_kthread("ctrl-c", ctrl_c_thread).expect("the Ctrl-C thread");

    ferrite::testing::run(ferrite::tests![
        ctrl_c_ends_a_blocked_pipe_read,
        kill_ends_a_blocked_poll,
        pipetests_pass,
        shell_quoting,
        shell_pipeline,
        shell_redirection_to_tmp,
        shell_redirection_errors,
        pipes_under_failslab,
        second_round_gives_every_frame_back,
    ])
}

fn pipetests_pass() {
    ferrite::testing::run_suite("/bin/pipetests", &["pipetests"], 21);
}

/// Starts `pipetests block [poll]` and waits until it is blocked as `want`
/// says (at most ~5 s).
fn start_blocked(poll: bool) -> Pid {
    let argv: &[&str] = if poll {
        &["pipetests", "block", "poll"]
    } else {
        &["pipetests", "block"]
    };
    let pid = spawn_program("/bin/pipetests", argv).expect("spawn pipetests block");
    for _ in 0..500 {
        let state = sched::with_process(pid, |p| p.state).expect("it runs");
        let blocked = match state {
            State::Blocked(Block::Pipe(_)) => !poll,
            State::Blocked(Block::Poll(u64::MAX)) => poll,
            _ => false,
        };
        if blocked {
            return pid;
        }
        sched::sleep_ticks(1);
    }
    panic!("pipetests block (poll: {poll}) never blocked on its pipe");
}

fn ctrl_c_ends_a_blocked_pipe_read() {
    ferrite::klog::capture_start();
    let pid = start_blocked(false);
    assert_eq!(
        sched::with_process(pid, |p| p.state.name()),
        Some("pipe"),
        "ps shows the wait"
    );
    // The shell waits in the foreground; the keypress makes it kill.
    CTRL_C_FOR.store(pid, Ordering::SeqCst);
    let exit = wait_for(pid);
    let out = ferrite::klog::capture_take();
    assert_eq!(
        exit,
        UserExit::Killed {
            signal: 2, // SIGINT
            fault: None
        },
        "output:\n{out}"
    );
    assert!(!out.contains("read returned"), "the read returned:\n{out}");
}

fn kill_ends_a_blocked_poll() {
    ferrite::klog::capture_start();
    let pid = start_blocked(true);
    assert!(sched::kill(pid), "kill");
    let exit = wait_for(pid);
    let out = ferrite::klog::capture_take();
    assert!(
        matches!(exit, UserExit::Killed { signal: 9, .. }),
        "{exit:?}\n{out}"
    );
    // The kernel goes on: a pipeline still runs.
    let (exit, out) = run_program("/bin/pipetests", &["pipetests", "basic", "poll-timeout"]);
    assert_eq!(exit, UserExit::Exited(0), "output:\n{out}");
}

/// Runs a shell line, returning what the shell said and what its programs
/// printed on the console.
fn sh_with_console(line: &str) -> (String, String) {
    ferrite::klog::capture_start();
    let mut out = String::new();
    let result = ferrite::shell::execute(line, &mut out);
    let console = ferrite::klog::capture_take();
    if let Err(e) = result {
        panic!("`{line}` failed: {e}\nshell:\n{out}\nconsole:\n{console}");
    }
    (out, console)
}

fn shell_quoting() {
    assert_eq!(sh("echo 'a  b'   \"c \\\" d\" e\\ f"), "a  b c \" d e f\n");
    let (out, console) = sh_with_console("run hello 'two words' \"three  spaced  words\"");
    assert!(out.contains("hello: exited with 0"), "{out}");
    assert!(
        console.contains("argv[1] = \"two words\"")
            && console.contains("argv[2] = \"three  spaced  words\""),
        "{console}"
    );
}

fn shell_pipeline() {
    let (out, console) = sh_with_console("run pipetests gen 100000 | run cat | pipetests count");
    assert!(
        console.contains("count: 100000 bytes, 2564 lines, hash f4f54fc2eb5996b3"),
        "console:\n{console}\nshell:\n{out}"
    );
    for name in ["pipetests", "cat"] {
        assert!(out.contains(&format!("] {name}: exited with 0")), "{out}");
    }
    assert_eq!(out.matches("exited with 0").count(), 3, "{out}");
    // `$?` is the last program's status.
    let (out, _) = sh_with_console("run hello | run pipetests no-such-case");
    assert!(out.contains("pipetests: exited with 2"), "{out}");
    assert_eq!(ferrite::shell::procs::last_status(), 2);
    // Nothing is left behind: every program of the pipelines was reaped.
    assert_eq!(
        sched::find_pid(|p| p.pid != 0 && !p.is_kernel_thread()),
        None,
        "a process is left"
    );
}

fn shell_redirection_to_tmp() {
    sh_with_console("run hello first > /tmp/out");
    let (_, console) = sh_with_console("run cat /tmp/out");
    assert!(
        console.contains("hello from ferrite user space") && console.contains("first"),
        "{console}"
    );
    // `>>` appends, `>` truncates.
    sh_with_console("run hello second >> /tmp/out");
    let (_, console) = sh_with_console("run cat /tmp/out");
    assert!(
        console.contains("first") && console.contains("second"),
        "{console}"
    );
    sh_with_console("run hello third>/tmp/out");
    let (_, console) = sh_with_console("run cat /tmp/out");
    assert!(
        console.contains("third") && !console.contains("first"),
        "{console}"
    );
    // `<`, a pipeline into a file, then read back through a pipe.
    sh_with_console("run pipetests gen 5000 | run cat > /tmp/gen");
    let (_, console) = sh_with_console("run pipetests count < /tmp/gen");
    assert!(
        console.contains("count: 5000 bytes, 128 lines"),
        "{console}"
    );
    let (_, console) = sh_with_console("run cat < /tmp/gen | run pipetests count");
    assert!(
        console.contains("count: 5000 bytes, 128 lines"),
        "{console}"
    );
    // 2> and 2>&1: cat's complaint goes to the file.
    sh_with_console("run cat /nonexistent 2> /tmp/err");
    let (_, console) = sh_with_console("run cat /tmp/err");
    assert!(
        console.contains("cat: /nonexistent: No such file or directory"),
        "{console}"
    );
    sh_with_console("run cat /nonexistent > /tmp/both 2>&1");
    let (_, console) = sh_with_console("run pipetests count < /tmp/both");
    assert!(console.contains("count: 45 bytes, 1 lines"), "{console}");
    for name in ["out", "gen", "err", "both"] {
        unlink_tmp(name);
    }
}

/// Removes `/tmp/NAME` (the shell has no `rm`).
fn unlink_tmp(name: &str) {
    let path = format!("/tmp/{name}");
    let (dir, leaf) = ferrite::fs::vfs::resolve_parent(b"/", path.as_bytes()).expect("parent");
    dir.inode.unlink(leaf, false).expect("unlink");
}

fn shell_redirection_errors() {
    let mut out = String::new();
    let mut fails = |line: &str| -> String {
        out.clear();
        let e = ferrite::shell::execute(line, &mut out).expect_err(line);
        format!("{e}")
    };
    assert!(fails("echo 'open").contains("unterminated ' quote"));
    assert!(fails("run hello >").contains("needs a file name"));
    assert!(fails("run hello | | run cat").contains("needs a command on each side"));
    assert!(fails("meminfo > /tmp/m").contains("work with `run` only"));
    assert!(fails("run hello > /no/such/dir/x").contains("No such file or directory"));
    assert!(fails("run cat < /tmp/missing").contains("No such file or directory"));
    assert!(fails("run hello 3>&7").contains("descriptor 7 is not open"));
    // A program that cannot start: those already started are killed and
    // reaped; nothing is left.
    let e = fails("run pipetests block | run no-such-program");
    assert!(e.contains("/bin/no-such-program"), "{e}");
    assert_eq!(
        sched::find_pid(|p| p.pid != 0 && !p.is_kernel_thread() && !p.dying()),
        None,
        "a process is left"
    );
    ferrite::shell::procs::reap_orphans();
}

/// Pipes, poll and select with heap allocations failing at random (the
/// pipe, its files, descriptors, buffer growth): cases may fail, the
/// kernel must not, and (in the second round) nothing may leak.
fn pipes_under_failslab() {
    for seed in [3, 11] {
        sh(&format!("failinject slab random 6 seed {seed} times 300"));
        ferrite::klog::capture_start();
        let started = spawn_program(
            "/bin/pipetests",
            &[
                "pipetests",
                "basic",
                "eof",
                "epipe",
                "large-write",
                "nonblock",
                "poll-pipe",
                "select",
            ],
        );
        if let Ok(pid) = started {
            let exit = wait_for(pid);
            assert!(
                matches!(exit, UserExit::Exited(0 | 1)),
                "{exit:?}\n{}",
                ferrite::klog::capture_take()
            );
        }
        let _ = ferrite::klog::capture_take();
        let (_, stats) = ferrite::mm::failslab::status(ferrite::mm::failslab::Target::Slab);
        assert!(stats.failed > 0, "seed {seed}: no allocation was failed");
        sh("failinject off");
    }
    let (exit, out) = run_program("/bin/pipetests", &["pipetests", "basic", "large-write"]);
    assert_eq!(exit, UserExit::Exited(0), "after the failures:\n{out}");
}

/// One round of everything above again, counted. The first round leaves
/// a page or two in things that keep their high-water mark (a slab page of
/// the first File, tmpfs's directory table, the log capture's buffer); a
/// second round must then give back every frame it takes.
fn second_round_gives_every_frame_back() {
    ferrite::testing::assert_round_balances("the second round", || {
        pipetests_pass();
        kill_ends_a_blocked_poll();
        shell_quoting();
        shell_pipeline();
        shell_redirection_to_tmp();
        shell_redirection_errors();
        pipes_under_failslab();
    });
}
