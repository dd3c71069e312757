//! The working set under swap (run on a 64 MiB machine): a one-time scan
//! of twice RAM does not push out a hot set that is touched between its
//! chunks, and while a program thrashes (a loop of 1.5 x RAM) the shell
//! still answers. Both drive `/bin/thrash` (user/thrash.c), which checks
//! every page it touches.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::mm::{frames, swap, vmstat};
use ferrite::proc::sched::{self, Pid};
use ferrite::testing::settled_free_pages;
use ferrite::time;

use ferrite::testing::{meminfo_field, sh};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        the_shell_answers_while_a_program_thrashes,
        a_scan_does_not_evict_the_hot_set,
    ])
}

/// RAM in MiB as the allocator manages it.
fn ram_mib() -> u64 {
    frames::stats().managed_pages / 256
}

/// Runs `line` (a background `run ... &`) and returns the job's pid.
fn background(line: &str) -> Pid {
    let out = sh(line);
    out.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

fn is_zombie(pid: Pid) -> bool {
    sched::with_process(pid, |p| p.state.name()) == Some("zombie")
}

/// Checks every slot and cached page is gone, turns swap off, and checks
/// every frame is back (compared with `free_before`).
fn all_back(free_before: u64, kinds_before: impl core::fmt::Debug) {
    let (_, used, cached) = swap::usage();
    assert_eq!((used, cached), (0, 0), "slots or swap cache left");
    swap::swapoff().expect("nothing is swapped out");
    assert_eq!(
        settled_free_pages(),
        free_before,
        "frames lost: by kind before {kinds_before:?} after {:?}",
        frames::stats().pages_by_kind
    );
}

/// `thrash loop` of 1.5 x RAM in the background through the shell's `run
/// ... &`; while it swaps, `meminfo` and `free` (which allocate their
/// output) complete with sane figures, again and again, and the program
/// still finishes with every page right.
fn the_shell_answers_while_a_program_thrashes() {
    // A first run sets up what stays (the program's file pages, the
    // shell's job list).
    let pid = background("run thrash loop 1 1 &");
    while !is_zombie(pid) {
        sched::sleep_ticks(1);
    }
    assert!(sh("jobs").contains(&format!("[{pid}] thrash: exited with 0")));
    let free_before = settled_free_pages();
    let kinds_before = frames::stats().pages_by_kind;

    let mib = ram_mib() * 3 / 2;
    sh(&format!("swapon zram {}M", 2 * mib));
    let before = vmstat::snapshot();
    let pid = background(&format!("run thrash loop {mib} 1 &"));
    let (mut answered, mut slowest) = (0u64, 0u64);
    let hz = time::TICK_HZ;
    let start = time::ticks();
    while !is_zombie(pid) {
        // Only while the program is swapping pages in: thrashing.
        if vmstat::snapshot().since(&before).pswpin > 0 {
            let t0 = time::ticks();
            let m = sh("meminfo");
            let f = sh("free");
            let took = time::ticks() - t0;
            // Counted only if the program was still running at the end.
            if !is_zombie(pid) {
                let total = meminfo_field(&m, "MemTotal");
                assert!(meminfo_field(&m, "MemFree") <= total, "{m}");
                assert!(
                    meminfo_field(&m, "SwapFree") < meminfo_field(&m, "SwapTotal"),
                    "{m}"
                );
                assert!(f.contains("Swap:"), "{f}");
                answered += 1;
                slowest = slowest.max(took);
            }
        }
        sched::sleep_ticks(hz / 10);
    }
    let took = time::ticks() - start;
    let d = vmstat::snapshot().since(&before);
    let jobs = sh("jobs");
    assert!(
        jobs.contains(&format!("[{pid}] thrash: exited with 0")),
        "{jobs}"
    );
    ferrite::kprintln!(
        "  thrash loop {mib} MiB on {} MiB: {answered} meminfo+free answered while it swapped \
         (slowest {} ms) over {} ms; pswpin {} pswpout {} majfault {}",
        ram_mib(),
        slowest * 1000 / hz,
        took * 1000 / hz,
        d.pswpin,
        d.pswpout,
        d.pgmajfault
    );
    assert!(
        answered >= 3,
        "the shell answered only {answered} times while the program swapped ({d:?})"
    );
    all_back(free_before, kinds_before);
}

/// `thrash scan`: a hot set of a quarter of RAM, touched after every 1 MiB
/// chunk of a one-time scan of twice RAM. The scan's pages are never read
/// again, so every page read back from swap is the hot set's (or the
/// program's own): the active/inactive lists must keep the hot set in
/// memory (fewer than a tenth of its pages read back), where a CLOCK
/// reread all of it (3 351 pages of a 13 MiB hot set, measured before).
fn a_scan_does_not_evict_the_hot_set() {
    let (exit, _) = ferrite::testing::run_program("/bin/thrash", &["thrash", "loop", "1", "1"]);
    assert_eq!(exit, ferrite::proc::user::UserExit::Exited(0));
    let free_before = settled_free_pages();
    let kinds_before = frames::stats().pages_by_kind;
    let (hot, scan) = (ram_mib() / 4, 2 * ram_mib());
    sh(&format!("swapon zram {}M", 3 * ram_mib()));
    let before = vmstat::snapshot();
    let (exit, out) = ferrite::testing::run_program(
        "/bin/thrash",
        &["thrash", "scan", &format!("{hot}"), &format!("{scan}")],
    );
    let d = vmstat::snapshot().since(&before);
    assert_eq!(exit, ferrite::proc::user::UserExit::Exited(0), "{out}");
    let hot_pages = hot * 256;
    ferrite::kprintln!(
        "  thrash scan: hot {hot} MiB ({hot_pages} pages) + scan {scan} MiB on {} MiB: \
         pswpin {} pswpout {} pgactivate {} workingset refault {} activate {}",
        ram_mib(),
        d.pswpin,
        d.pswpout,
        d.pgactivate,
        d.workingset_refault_anon,
        d.workingset_activate_anon
    );
    assert!(
        d.pswpout > scan * 256 / 2,
        "the scan did not push pages out ({d:?})"
    );
    assert!(
        d.pswpin < hot_pages / 10,
        "{} pages read back: the scan evicted the hot set ({d:?})",
        d.pswpin
    );
    drop(out);
    all_back(free_before, kinds_before);
}
