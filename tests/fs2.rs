//! The file-system gaps of issue 13, end to end: `fstests2`
//! (user/fstests2.c, the same program run natively on Linux by
//! user/run-host-tests.sh) passes on Ferrite: a program copied into tmpfs
//! runs, times, chmod, hard and symbolic links, /proc/self/fd, pages of a
//! shared mapping counted, one offset shared by two processes. A shared
//! mapping touched past tmpfs's size limit is SIGBUS, and every page and
//! frame comes back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::fs::tmpfs;
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program as run, settled_free_pages};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        fstests2_all_pass,
        shared_mapping_past_the_limit_is_sigbus,
        exec_from_tmpfs_gives_every_frame_back,
    ])
}

fn fstests2_all_pass() {
    let (exit, out) = run("/bin/fstests2", &["/bin/fstests2"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(
        out.contains("fstests2: 11 passed, 0 failed"),
        "output: {out}"
    );
    assert_eq!(tmpfs::used_pages(), 0, "tmpfs pages left: {out}");
}

fn shared_mapping_past_the_limit_is_sigbus() {
    // 1 MiB of tmpfs: the child touches a 512 MiB shared mapping of a
    // file until a fault is refused.
    tmpfs::set_limit_pages(256);
    let (exit, out) = run("/bin/fstests2", &["/bin/fstests2", "mapfill"]);
    tmpfs::set_limit_pages(0);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(out.contains("fstests2: mapfill ... ok"), "output: {out}");
    assert!(
        out.contains("mapfill: 1024 KiB touched before SIGBUS"),
        "output: {out}"
    );
    assert_eq!(tmpfs::used_pages(), 0);
}

fn exec_from_tmpfs_gives_every_frame_back() {
    // A warm-up run, then the count must balance over runs that copy the
    // program into tmpfs, run it (also after its name is gone) and
    // delete it.
    let cases = ["/bin/fstests2", "exec-copy", "exec-unlinked", "hard-links"];
    let (exit, out) = run("/bin/fstests2", &cases);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let before = settled_free_pages();
    let (exit, out) = run("/bin/fstests2", &cases);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let after = settled_free_pages();
    assert_eq!(
        after,
        before,
        "{} frames not returned",
        before as i64 - after as i64
    );
    assert_eq!(tmpfs::used_pages(), 0);
}
