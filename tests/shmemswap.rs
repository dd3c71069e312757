//! Shared memory goes to swap, as Linux's shmem: tmpfs files and shared
//! anonymous memory (`MAP_SHARED|MAP_ANONYMOUS`) bigger than the machine's
//! RAM are written and read back right on compressed swap (user/shmtests.c:
//! read, pread, write, a shared file mapping, a region a forked child
//! writes and its parent checks); pages swapped out come back on truncate
//! and unlink with their slots (no slot left), `swapoff` brings every
//! swapped-out page of a tmpfs file back, meminfo counts resident shared
//! pages as `Shmem` (none unevictable), smaps shows a shared region's
//! swapped-out pages as `Swap`, and every frame comes back.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::fs::tmpfs;
use ferrite::mm::{frames, pagecache, reclaim, swap, swapoff, vmstat};
use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::testing::{meminfo_field, run_program as run, settled_free_pages, sh};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        a_tmpfs_file_bigger_than_ram,
        shared_anonymous_memory_bigger_than_ram,
        swapoff_brings_tmpfs_pages_back,
        shmem_is_counted_resident_and_evictable,
    ])
}

/// RAM in MiB as the allocator manages it.
fn ram_mib() -> u64 {
    frames::stats().managed_pages / 256
}

/// Runs `shmtests ARGS`; its output, after checking it exited 0 printing
/// `want`.
fn shmtests(args: &[&str], want: &str) -> alloc::string::String {
    let mut argv = alloc::vec!["shmtests"];
    argv.extend_from_slice(args);
    let (exit, out) = run("/bin/shmtests", &argv);
    assert_eq!(exit, UserExit::Exited(0), "shmtests {args:?}: {out}");
    assert!(out.contains(want), "shmtests {args:?}: {out}");
    out
}

/// A first run of each mode without swap: what stays for good (the
/// program's cached file, /tmp's directory at its size, one-time kernel
/// state) is not what the tests count.
fn warm_up() {
    tmpfs::set_limit_pages(1 << 20);
    shmtests(&["write", "/tmp/warm", "1", "1"], "write ok");
    shmtests(&["check", "/tmp/warm", "1", "1"], "check ok");
    shmtests(&["truncate", "/tmp/warm", "1", "1"], "truncate ok");
    shmtests(&["shared", "1"], "shared ok");
    sh("meminfo");
}

/// No slot, swap-cache page or swapped-out shared page is left, swap goes
/// off, and every frame is back.
fn all_back(free_before: u64) {
    assert_eq!(
        pagecache::swapped_pages(),
        0,
        "swapped-out shared pages left"
    );
    let (_, used, cached) = swap::usage();
    assert_eq!((used, cached), (0, 0), "slots or swap cache left");
    swap::swapoff().expect("nothing is swapped out");
    assert_eq!(settled_free_pages(), free_before, "frames lost");
}

fn a_tmpfs_file_bigger_than_ram() {
    warm_up();
    let free_before = settled_free_pages();
    let mib = ram_mib() * 3 / 2;
    swap::swapon_zram(mib * 256 * 4).expect("swapon");
    let before = vmstat::snapshot();
    let size = format!("{mib}");
    shmtests(&["write", "/tmp/big", &size, "3"], "write ok");
    // The file outlives the program: much of it is in swap now.
    let swapped = pagecache::swapped_pages();
    let (_, used, _) = swap::usage();
    assert!(
        swapped > mib * 256 / 4,
        "{swapped} of {} pages swapped out",
        mib * 256
    );
    assert!(used >= swapped, "{used} slots for {swapped} swapped pages");
    shmtests(&["check", "/tmp/big", &size, "3"], "check ok");
    // Cut to half while swapped out, then unlinked: every slot comes back.
    shmtests(&["truncate", "/tmp/big", &size, "3"], "truncate ok");
    let d = vmstat::snapshot().since(&before);
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping happened: {d:?}");
    ferrite::kprintln!(
        "  {mib} MiB tmpfs file on {} MiB of RAM: pswpout {} pswpin {} majfault {}",
        ram_mib(),
        d.pswpout,
        d.pswpin,
        d.pgmajfault
    );
    all_back(free_before);
}

fn shared_anonymous_memory_bigger_than_ram() {
    warm_up();
    let free_before = settled_free_pages();
    let mib = ram_mib() * 3 / 2;
    swap::swapon_zram(mib * 256 * 4).expect("swapon");
    let before = vmstat::snapshot();
    let out = shmtests(&["shared", &format!("{mib}")], "shared ok");
    // smaps shows the region's swapped-out pages (the writer child is
    // gone, half the region at least cannot be resident).
    let swap_kb: u64 = out
        .split("smaps Swap ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or_else(|| panic!("no smaps Swap line: {out}"));
    assert!(
        swap_kb >= (mib - ram_mib()) * 1024,
        "smaps Swap {swap_kb} kB of a {mib} MiB region: {out}"
    );
    drop(out);
    let d = vmstat::snapshot().since(&before);
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping happened: {d:?}");
    assert!(d.pgmajfault > 0, "swap-ins are major faults: {d:?}");
    ferrite::kprintln!(
        "  {mib} MiB MAP_SHARED|MAP_ANONYMOUS on {} MiB of RAM: pswpout {} pswpin {} majfault {}",
        ram_mib(),
        d.pswpout,
        d.pswpin,
        d.pgmajfault
    );
    all_back(free_before);
}

/// Pushes shared pages out until at least `want` are swapped out.
fn swap_out(want: u64) -> u64 {
    let mut swapped = 0;
    for _ in 0..8 {
        reclaim::reclaim(2 * want);
        swapped = pagecache::swapped_pages();
        if swapped >= want {
            break;
        }
    }
    assert!(swapped >= want, "reclaim swapped out {swapped} of {want}");
    swapped
}

fn swapoff_brings_tmpfs_pages_back() {
    warm_up();
    let free_before = settled_free_pages();
    let mib = (ram_mib() / 8).max(1);
    let pages = mib * 256;
    swap::swapon_zram(4 * pages).expect("swapon");
    let size = format!("{mib}");
    shmtests(&["write", "/tmp/off", &size, "5"], "write ok");
    let swapped = swap_out(pages / 2);
    assert!(swap::usage().1 >= swapped, "a slot per swapped-out page");
    let done = swapoff::swapoff_all(sched::yield_now).expect("swapoff");
    assert_eq!(done.pages_in, swapped, "{done:?}");
    assert_eq!(pagecache::swapped_pages(), 0);
    assert!(!swap::enabled());
    // Every page is there, with its data, without swap.
    shmtests(&["check", "/tmp/off", &size, "5"], "check ok");
    // And again with pages swapped out when a truncate and unlink come.
    swap::swapon_zram(4 * pages).expect("swapon");
    swap_out(pages / 2);
    shmtests(&["truncate", "/tmp/off", &size, "5"], "truncate ok");
    all_back(free_before);
}

fn shmem_is_counted_resident_and_evictable() {
    warm_up();
    let free_before = settled_free_pages();
    let mib = (ram_mib() / 8).max(1);
    let pages = mib * 256;
    swap::swapon_zram(4 * pages).expect("swapon");
    let size = format!("{mib}");
    shmtests(&["write", "/tmp/count", &size, "9"], "write ok");
    // (The meminfo texts are dropped before the frames are counted.)
    {
        let m = sh("meminfo");
        let f = |name| meminfo_field(&m, name);
        assert_eq!(f("Unevictable"), 0, "{m}");
        assert!(f("Shmem") >= pages * 4, "{m}");
        // On the anon lists (as Linux counts shmem), not in AnonPages.
        assert!(f("Active(anon)") + f("Inactive(anon)") >= pages * 4, "{m}");
    }
    let swapped = swap_out(pages / 2);
    {
        let m = sh("meminfo");
        let f = |name| meminfo_field(&m, name);
        let (_, resident) = pagecache::anonymous_objects();
        assert_eq!(f("Shmem"), resident * 4, "resident pages only: {m}");
        assert!(
            resident <= pages - swapped,
            "{resident} resident, {swapped} out"
        );
        assert!(
            f("SwapTotal") - f("SwapFree") >= swapped * 4,
            "swapped-out shared pages use swap: {m}"
        );
        assert_eq!(f("Unevictable"), 0, "{m}");
    }
    shmtests(&["truncate", "/tmp/count", &size, "9"], "truncate ok");
    all_back(free_before);
}
