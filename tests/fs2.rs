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
        busybox_copies_links_and_runs_from_tmpfs,
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
    // The programs' output is heap memory too: dropped before each count.
    let (exit, out) = run("/bin/fstests2", &cases);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    drop(out);
    let before = settled_free_pages();
    let (exit, out) = run("/bin/fstests2", &cases);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    drop(out);
    let after = settled_free_pages();
    assert_eq!(
        after,
        before,
        "{} frames not returned",
        before as i64 - after as i64
    );
    assert_eq!(tmpfs::used_pages(), 0);
}

fn busybox_copies_links_and_runs_from_tmpfs() {
    // busybox (this test's ramdisk has it: `bin=` in tests/machines.txt)
    // copies itself into tmpfs and runs the copy, through a symbolic and
    // a hard link; touch, chmod, stat and /proc/self/fd as a shell uses them.
    // (busybox picks the applet by its name: the copy is called busybox,
    // a link named echo is echo.)
    let script = "cd /tmp && mkdir bbfs && cd bbfs && cat /bin/busybox > busybox \
         && chmod 755 busybox && ./busybox echo copy-runs \
         && ln -s busybox echo && ./echo symlink-runs \
         && ln busybox busybox2 && ./busybox2 echo hardlink-runs \
         && echo links $(stat -c %h busybox) && echo target $(readlink echo) \
         && touch -d '2001-02-03 04:05:06' busybox && echo mtime $(stat -c %Y busybox2) \
         && chmod 640 busybox2 && echo mode $(stat -c %a busybox) \
         && echo fd0 $(readlink /proc/self/fd/0) \
         && echo fds $(ls /proc/self/fd) \
         && cd / && rm -r /tmp/bbfs && echo cleaned";
    let (exit, out) = run("/bin/busybox", &["busybox", "sh", "-c", script]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    for want in [
        "copy-runs",
        "symlink-runs",
        "hardlink-runs",
        "links 2",
        "target busybox",
        "mtime 981173106",
        "mode 640",
        "fd0 /dev/console",
        "fds 0 1 2 3",
        "cleaned",
    ] {
        assert!(out.contains(want), "no {want:?} in: {out}");
    }
    assert_eq!(tmpfs::used_pages(), 0, "tmpfs pages left: {out}");
}
