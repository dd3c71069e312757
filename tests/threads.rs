//! Threads: the `pthreadtests` suite (musl's pthread_create/join, mutexes,
//! condition variables, exit vs exit_group, tgkill, fork and execve from a
//! thread, futexes private and shared), then the frames: after threaded
//! programs end, every frame (thread stacks, kernel stacks, page tables)
//! is back, exactly.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program as run, run_suite, settled_free_pages};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        pthreadtests_all_pass,
        threads_give_every_frame_back,
    ])
}

fn pthreadtests_all_pass() {
    run_suite("/bin/pthreadtests", &["pthreadtests"], 21);
    // No thread is left behind: every record is reaped but the kernel's.
    let left = sched::find_pid(|p| p.pid != 0 && !p.is_kernel_thread());
    assert_eq!(left, None, "a thread or process outlived the suite");
}

fn threads_give_every_frame_back() {
    // Once first: slab pages for thread records stay after it.
    let cases = [
        "create-join",
        "mutex-counter",
        "main-exits-first",
        "exec-from-thread",
        "munmap-other-thread",
    ];
    let mut argv = alloc::vec!["pthreadtests"];
    argv.extend_from_slice(&cases);
    let (exit, out) = run("/bin/pthreadtests", &argv);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    drop(out);
    let before = settled_free_pages();
    for _ in 0..2 {
        let (exit, out) = run("/bin/pthreadtests", &argv);
        assert_eq!(exit, UserExit::Exited(0), "{out}");
        assert!(out.contains("pthreadtests: 5 passed, 0 failed"), "{out}");
    }
    let after = settled_free_pages();
    ferrite::kprintln!("  free pages: {before} before, {after} after 2 runs");
    assert_eq!(after, before, "threads leaked frames");
}
