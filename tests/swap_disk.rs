//! Swap on a virtio disk in QEMU (the machine boots with one attached, as
//! `make run SWAP=...` does): a program touching 3x RAM finishes with
//! correct data, fork + COW pages survive swapping on both sides, and
//! every frame and slot comes back.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::mm::{frames, swap, vmstat};
use ferrite::proc::user::UserExit;
use ferrite::testing::settled_free_pages;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![three_times_ram_on_disk_swap])
}

use ferrite::testing::run_program as run;

/// RAM in MiB as the allocator manages it.
fn ram_mib() -> u64 {
    frames::stats().managed_pages / 256
}

fn three_times_ram_on_disk_swap() {
    // A first run of the program without swap sets up what stays (the
    // program's cached file pages, one-time kernel state).
    let (exit, out) = run("/bin/swapstress", &["swapstress", "1", "1"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    ferrite::swap_on_boot_disk();
    // (Measured with the disk in use: its queues are kernel frames that
    // swapoff gives back along with the device.)
    let free_before = settled_free_pages();
    let kinds_before = frames::stats().pages_by_kind;
    let mib = ram_mib() * 3;
    let (total, _, _) = swap::usage();
    assert!(
        total >= mib * 256,
        "the disk ({total} pages) is the swap area"
    );
    let before = vmstat::snapshot();
    let arg = alloc::format!("{mib}");
    let (exit, out) = run("/bin/swapstress", &["swapstress", &arg, "1"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(out.contains("swapstress: ok"), "output: {out}");
    let d = vmstat::snapshot().since(&before);
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping happened: {d:?}");
    assert!(d.pgmajfault > 0, "swap-ins are major faults: {d:?}");
    let (_, used, cached) = swap::usage();
    assert_eq!((used, cached), (0, 0), "slots or swap cache left");
    let free_after = settled_free_pages();
    assert_eq!(
        free_after,
        free_before,
        "frames lost: by kind before {kinds_before:?} after {:?}",
        frames::stats().pages_by_kind
    );
    swap::swapoff().expect("nothing is swapped out");
    assert_eq!(swap::usage(), (0, 0, 0));
    ferrite::kprintln!(
        "  {mib} MiB on {} MiB of RAM: pswpout {} pswpin {} majfault {} scanned {} stolen {}",
        ram_mib(),
        d.pswpout,
        d.pswpin,
        d.pgmajfault,
        d.pgscan_direct,
        d.pgsteal_direct
    );
}
