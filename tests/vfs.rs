//! The file system end to end: `filetests` (user/filetests.c, the same
//! program run natively on Linux by user/run-host-tests.sh) passes on
//! Ferrite; a full tmpfs refuses writes with ENOSPC and keeps what was
//! written; files created, written and deleted give every frame back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::fs::tmpfs;
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program as run, settled_free_pages};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        filetests_all_pass,
        full_tmpfs_gives_enospc_and_keeps_data,
        deleted_files_give_every_frame_back,
    ])
}

fn filetests_all_pass() {
    let (exit, out) = run("/bin/filetests", &["/bin/filetests"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(
        out.contains("filetests: 22 passed, 0 failed"),
        "output: {out}"
    );
    assert_eq!(
        tmpfs::used_pages(),
        0,
        "tmpfs pages left after the files were removed"
    );
}

fn full_tmpfs_gives_enospc_and_keeps_data() {
    // 1 MiB of tmpfs: the "fill" case writes until it is refused, then
    // reads every byte back.
    tmpfs::set_limit_pages(256);
    let (exit, out) = run("/bin/filetests", &["/bin/filetests", "fill"]);
    tmpfs::set_limit_pages(0);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(out.contains("filetests: fill ... ok"), "output: {out}");
    assert!(
        out.contains("fill: 1024 KiB written before the file system was full"),
        "output: {out}"
    );
    assert_eq!(tmpfs::used_pages(), 0);
}

fn deleted_files_give_every_frame_back() {
    // One warm-up run (slab caches, the ramdisk's cached pages), then the
    // count must balance exactly over a run that makes, writes, maps,
    // truncates and deletes files.
    let (exit, out) = run(
        "/bin/filetests",
        &["/bin/filetests", "big-file", "mmap-shared", "unlink"],
    );
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let before = settled_free_pages();
    let (exit, out) = run(
        "/bin/filetests",
        &["/bin/filetests", "big-file", "mmap-shared", "unlink"],
    );
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let after = settled_free_pages();
    assert_eq!(
        after,
        before,
        "{} frames not returned",
        before as i64 - after as i64
    );
}
