//! The file system end to end: `filetests` (user/filetests.c, the same
//! program run natively on Linux by user/run-host-tests.sh) passes on
//! Ferrite; a full tmpfs refuses writes with ENOSPC and keeps what was
//! written; files created, written and deleted give every frame back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::fs::tmpfs;
use ferrite::proc::user::UserExit;
use ferrite::testing::{assert_round_balances, run_program as run, run_suite};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        filetests_all_pass,
        full_tmpfs_gives_enospc_and_keeps_data,
        deleted_files_give_every_frame_back,
        mounted_trees_are_walked_into_and_out_of,
    ])
}

fn filetests_all_pass() {
    run_suite("/bin/filetests", &["/bin/filetests"], 22);
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
    let round = || {
        let (exit, out) = run(
            "/bin/filetests",
            &["/bin/filetests", "big-file", "mmap-shared", "unlink"],
        );
        assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    };
    round();
    assert_round_balances("files made and deleted", round);
}

fn mounted_trees_are_walked_into_and_out_of() {
    use ferrite::fs::vfs;
    use usercore::fsabi::FileType;
    // A tree mounted where no directory exists (how /proc plugs in).
    vfs::mount(b"/tmp/m", ferrite::fs::devfs::root().unwrap()).unwrap();
    let null = vfs::resolve(b"/", b"/tmp/m/null", true).unwrap();
    assert_eq!(null.inode.file_type(), FileType::CharDevice);
    assert_eq!(null.path, b"/tmp/m/null");
    // `..` leaves the mounted tree for the directory it is mounted in.
    let up = vfs::resolve(b"/tmp/m", b"../m/./..//", true).unwrap();
    assert_eq!(up.path, b"/tmp");
    assert_eq!(up.inode.stat().st_dev, vfs::DEV_TMPFS);
    let rel = vfs::resolve(b"/tmp/m", b"zero", true).unwrap();
    assert_eq!(rel.path, b"/tmp/m/zero");
    assert!(vfs::unmount(b"/tmp/m").is_some());
    assert!(vfs::resolve(b"/", b"/tmp/m/null", true).is_err());
    // The kernel's own reader sees what the ramdisk holds.
    let motd = vfs::read_file(b"/", b"/etc/motd", 1 << 20).unwrap();
    let want = ferrite::proc::ramdisk::open("/etc/motd").unwrap().data;
    assert_eq!(motd.as_slice(), want);
    assert_eq!(
        vfs::read_file(b"/", b"/nonexistent", 16).unwrap_err(),
        ferrite::proc::syscall::Errno::ENOENT
    );
}
