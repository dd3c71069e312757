//! Background reclaim: kswapd is a kernel thread (`[kswapd0]` in `ps`,
//! never killed, never the OOM killer's victim); the watermarks are
//! Linux's; an allocation that leaves free memory below low wakes it (from
//! any context, locks held or not) and it reclaims until free memory is
//! back at high, with no direct reclaim if memory never fell to min; with
//! nothing to reclaim it goes back to sleep and stays there instead of
//! spinning. Run on 64 MiB and 256 MiB machines.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::{frames, kswapd, swap, vmstat};
use ferrite::proc::oom;
use ferrite::proc::sched::{self, Block, Pid, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::shell;
use ferrite::testing::settled_free_pages;
use ferrite::time::TICK_HZ;
use mmcore::watermark::Watermarks;
use mmcore::{FrameKind, Pfn};

ferrite::kernel_entry!(main);

fn main() -> ! {
    warm_up();
    ferrite::testing::run(ferrite::tests![
        kswapd_is_a_kernel_thread,
        watermarks_are_linux_and_shown,
        a_wake_from_under_any_lock_runs_kswapd,
        between_low_and_min_kswapd_alone_reclaims_to_high,
        a_program_past_low_leaves_kswapd_reclaiming_above_low,
        with_nothing_to_reclaim_kswapd_does_not_spin,
        the_oom_killer_passes_kernel_threads_over,
        thrashing_with_and_without_kswapd,
    ])
}

fn warm_up() {
    let exit = wait_for(spawn(&["memhog", "fill", "1"]));
    assert_eq!(exit, UserExit::Exited(0));
}

fn spawn(argv: &[&str]) -> Pid {
    spawn_program("/bin/memhog", argv).unwrap_or_else(|e| panic!("memhog {argv:?}: {e}"))
}

/// A shell command's output, or its error message.
fn sh(line: &str) -> Result<String, String> {
    let mut out = String::new();
    shell::execute(line, &mut out).map_err(|e| format!("{e}"))?;
    Ok(out)
}

fn kswapd_pid() -> Pid {
    ferrite::proc::kswapd::pid().expect("kswapd started at boot")
}

fn kswapd_state() -> State {
    sched::with_process(kswapd_pid(), |p| p.state).expect("kswapd lives")
}

fn kswapd_ticks() -> u64 {
    sched::with_process(kswapd_pid(), |p| p.ticks).expect("kswapd lives")
}

/// Waits (up to `secs` seconds) until kswapd sleeps with no wake pending.
fn until_kswapd_sleeps(secs: u64) {
    let deadline = ferrite::time::ticks() + secs * TICK_HZ;
    while kswapd_state() != State::Blocked(Block::Kswapd) || kswapd::wanted() {
        assert!(
            ferrite::time::ticks() < deadline,
            "kswapd still busy after {secs} s: {:?}",
            kswapd_state()
        );
        sched::sleep_ticks(1);
    }
}

/// MiB user pages may still take (free frames above the min watermark).
fn available_mib() -> u64 {
    let pages = frames::free_pages().saturating_sub(frames::user_reserve());
    (pages * 4096) >> 20
}

/// Starts `memhog hold mib` and waits until it holds its memory and sleeps.
fn holder(mib: u64) -> Pid {
    let pid = spawn(&["memhog", "hold", &format!("{mib}")]);
    let deadline = ferrite::time::ticks() + 300 * TICK_HZ;
    loop {
        match sched::with_process(pid, |p| p.state).expect("the hog lives") {
            State::Blocked(Block::Sleep(_)) => return pid,
            State::Zombie(status) => panic!("the hog died before holding its memory: {status:#x}"),
            _ => {}
        }
        assert!(
            ferrite::time::ticks() < deadline,
            "the hog never held {mib} MiB"
        );
        sched::sleep_ticks(2);
    }
}

fn stop(pid: Pid) {
    assert!(sched::kill(pid));
    assert!(matches!(wait_for(pid), UserExit::Killed { signal: 9, .. }));
}

/// Takes user frames (not on the LRU: reclaim cannot take them back) until
/// free pages are below `below`, or allocation fails.
fn take_until_below(below: u64, taken: &mut Vec<Pfn>) {
    while frames::free_pages() >= below {
        match frames::alloc_user(FrameKind::UserAnon, false) {
            Some(pfn) => taken.push(pfn),
            None => break,
        }
    }
}

/// Frees the frames and the list's own heap pages.
fn give_back(taken: Vec<Pfn>) {
    for pfn in taken {
        frames::free(pfn, 0).expect("a frame we took");
    }
}

fn kswapd_is_a_kernel_thread() {
    let pid = kswapd_pid();
    let (name, adj, aspace, kthread, ppid) = sched::with_process(pid, |p| {
        (
            p.name.clone(),
            p.oom_score_adj,
            p.aspace.is_some(),
            p.is_kernel_thread(),
            p.ppid,
        )
    })
    .unwrap();
    assert_eq!(
        (name.as_str(), adj, aspace, kthread, ppid),
        ("kswapd0", -1000, false, true, 0)
    );
    until_kswapd_sleeps(5);
    let ps = sh("ps").expect("ps");
    let row = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("{pid}")))
        .unwrap_or_else(|| panic!("no kswapd row:\n{ps}"));
    assert!(row.ends_with(" [kswapd0]"), "ps:\n{ps}");
    assert!(row.contains(" sleep "), "ps:\n{ps}");
    // Never killed, never rescored, never reaped.
    assert!(!sched::kill(pid));
    assert_eq!(oom::set_score_adj(pid, 0), Err(oom::AdjError::Kernel));
    let err = sh(&format!("kill {pid}")).unwrap_err();
    assert!(err.contains("kernel thread"), "{err}");
    assert!(sched::reap(pid as i64).is_err(), "reaped a kernel thread");
    assert_eq!(kswapd_state(), State::Blocked(Block::Kswapd));
}

fn watermarks_are_linux_and_shown() {
    let managed = frames::stats().managed_pages;
    let w = kswapd::watermarks();
    assert_eq!(w, Watermarks::for_managed(managed));
    // Linux's min_free_kbytes for this memory (every test machine is
    // above 16 MiB, where Ferrite's floor does not apply).
    let kbytes = mmcore::watermark::linux_min_free_kbytes(managed * 4);
    assert_eq!(w.min, kbytes / 4);
    assert_eq!(frames::user_reserve(), w.min);
    assert!(w.min < w.low && w.low < w.high);
    let out = sh("zoneinfo").expect("zoneinfo");
    for (name, value) in [("min", w.min), ("low", w.low), ("high", w.high)] {
        let shown = out
            .lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(name)).then(|| words.next()?.parse::<u64>().ok())?
            })
            .unwrap_or_else(|| panic!("no {name} line:\n{out}"));
        assert_eq!(shown, value, "zoneinfo:\n{out}");
    }
    assert!(out.contains("kswapd0 pid"), "zoneinfo:\n{out}");
    let vm = sh("vmstat").expect("vmstat");
    for name in ["pgscan_kswapd ", "pgsteal_kswapd ", "pageoutrun "] {
        assert!(vm.contains(name), "vmstat:\n{vm}");
    }
    ferrite::kprintln!(
        "  {managed} pages managed: min {} low {} high {} (min_free_kbytes {kbytes})",
        w.min,
        w.low,
        w.high
    );
}

fn a_wake_from_under_any_lock_runs_kswapd() {
    until_kswapd_sleeps(5);
    // Under the frames lock: the scheduler lock is free, kswapd wakes now.
    let runs = vmstat::snapshot().pageoutrun;
    frames::with(|_| kswapd::wake());
    until_kswapd_sleeps(2);
    assert_eq!(vmstat::snapshot().pageoutrun, runs + 1);
    // Under the scheduler lock itself: left to the next tick.
    sched::with_process(0, |_| kswapd::wake());
    assert!(kswapd::wanted());
    until_kswapd_sleeps(2);
    assert_eq!(vmstat::snapshot().pageoutrun, runs + 2);
}

fn between_low_and_min_kswapd_alone_reclaims_to_high() {
    let free_before = settled_free_pages();
    let w = kswapd::watermarks();
    swap::swapon_zram(16 * 256).expect("swapon");
    // Memory a few MiB short of the low watermark, held by a process
    // whose pages reclaim may swap out...
    let hog = holder(available_mib().saturating_sub(3));
    until_kswapd_sleeps(10);
    let before = vmstat::snapshot();
    // ...then the kernel takes frames until an allocation leaves free
    // memory below low (but above min): kswapd wakes.
    let mut taken = Vec::new();
    take_until_below(w.low, &mut taken);
    let free_low = frames::free_pages();
    assert!(
        free_low < w.low && free_low > w.min,
        "free {free_low}, {w:?}"
    );
    until_kswapd_sleeps(20);
    let free = frames::free_pages();
    let d = vmstat::snapshot().since(&before);
    ferrite::kprintln!(
        "  took {} frames to {free_low} free (low {}): kswapd freed to {free} (high {}), \
         pgscan_kswapd {} pgsteal_kswapd {} pswpout {} allocstall {}",
        taken.len(),
        w.low,
        w.high,
        d.pgscan_kswapd,
        d.pgsteal_kswapd,
        d.pswpout,
        d.allocstall
    );
    assert!(d.pgsteal_kswapd > 0 && d.pageoutrun > 0, "{d:?}");
    assert!(d.pgscan_kswapd >= d.pgsteal_kswapd, "{d:?}");
    assert!(free >= w.high, "kswapd slept at {free} free, {w:?}");
    // Memory never fell to min: nobody reclaimed directly.
    assert_eq!(
        (d.allocstall, d.pgscan_direct, d.pgsteal_direct),
        (0, 0, 0),
        "{d:?}"
    );
    give_back(taken);
    stop(hog);
    swap::swapoff().expect("swapoff");
    assert_eq!(
        settled_free_pages(),
        free_before,
        "frames did not all come back"
    );
}

fn a_program_past_low_leaves_kswapd_reclaiming_above_low() {
    let free_before = settled_free_pages();
    let w = kswapd::watermarks();
    let mib = available_mib() + 8;
    swap::swapon_zram(4 * mib * 256).expect("swapon");
    let before = vmstat::snapshot();
    let hog = holder(mib);
    until_kswapd_sleeps(20);
    let free = frames::free_pages();
    let d = vmstat::snapshot().since(&before);
    ferrite::kprintln!(
        "  {mib} MiB held: {free} free after kswapd (low {}), pgsteal_kswapd {} \
         pgsteal_direct {} pswpout {} allocstall {}",
        w.low,
        d.pgsteal_kswapd,
        d.pgsteal_direct,
        d.pswpout,
        d.allocstall
    );
    assert!(d.pgsteal_kswapd > 0, "{d:?}");
    assert!(free >= w.low, "kswapd slept at {free} free, {w:?}");
    stop(hog);
    swap::swapoff().expect("swapoff");
    assert_eq!(
        settled_free_pages(),
        free_before,
        "frames did not all come back"
    );
}

fn with_nothing_to_reclaim_kswapd_does_not_spin() {
    assert_eq!(swap::usage().0, 0, "no swap");
    let free_before = settled_free_pages();
    let w = kswapd::watermarks();
    until_kswapd_sleeps(5);
    let hog = holder(available_mib().saturating_sub(2));
    let before = vmstat::snapshot();
    let ticks = kswapd_ticks();
    // Free memory to min, and keep allocating there for two seconds:
    // every allocation asks for kswapd.
    let mut taken = Vec::new();
    let end = ferrite::time::ticks() + 2 * TICK_HZ;
    while ferrite::time::ticks() < end {
        take_until_below(w.min + 1, &mut taken);
        if let Some(pfn) = taken.pop() {
            frames::free(pfn, 0).unwrap();
        }
        sched::sleep_ticks(1);
    }
    let spent = kswapd_ticks() - ticks;
    let d = vmstat::snapshot().since(&before);
    ferrite::kprintln!(
        "  2 s at min with nothing to reclaim: kswapd ran {} times, {spent} ticks, freed {}",
        d.pageoutrun,
        d.pgsteal_kswapd
    );
    // One run when free memory first fell below low, then one per
    // back-off second at most.
    assert!(d.pageoutrun >= 1 && d.pageoutrun <= 4, "{d:?}");
    assert!(spent <= 5, "kswapd spent {spent} ticks");
    // The last allocation may have woken it as a back-off second ended:
    // it must go back to sleep after at most one short run.
    until_kswapd_sleeps(2);
    give_back(taken);
    stop(hog);
    assert_eq!(
        settled_free_pages(),
        free_before,
        "frames did not all come back"
    );
}

fn the_oom_killer_passes_kernel_threads_over() {
    // kswapd is woken all through (memory stays at min) and has no swap.
    assert_eq!(swap::usage().0, 0, "no swap");
    let free_before = settled_free_pages();
    let avail = available_mib();
    let big = holder(avail * 6 / 10);
    capture_start();
    let filler = spawn(&["memhog", "fill", &format!("{}", avail * 6 / 10)]);
    let exit = wait_for(filler);
    let out = capture_take();
    assert_eq!(
        exit,
        UserExit::Exited(0),
        "the filler finishes; output:\n{out}"
    );
    assert!(
        out.contains(&format!("Killed process {big} ")),
        "output:\n{out}"
    );
    assert!(!out.contains("kswapd0"), "kswapd in the task table:\n{out}");
    let (points, _, _) = oom::score(kswapd_pid()).expect("kswapd lives");
    assert_eq!(points, None, "kswapd has OOM points");
    assert!(!matches!(kswapd_state(), State::Zombie(_)));
    assert!(matches!(wait_for(big), UserExit::Killed { signal: 9, .. }));
    // The captured report is the test's own heap memory.
    drop(out);
    assert_eq!(
        settled_free_pages(),
        free_before,
        "frames did not all come back"
    );
}

/// Not a check but a measurement (printed; the only assertion is that
/// the program's data is right): `thrash loop` of 1.5 x RAM, one pass,
/// on zram, with kswapd off then on, in this one boot.
fn thrashing_with_and_without_kswapd() {
    let ram_mib = frames::stats().managed_pages / 256;
    let mib = ram_mib * 3 / 2;
    swap::swapon_zram(4 * mib * 256).expect("swapon");
    let arg = format!("{mib}");
    let mut rows = Vec::new();
    for on in [false, true] {
        kswapd::set_enabled(on);
        until_kswapd_sleeps(10);
        let before = vmstat::snapshot();
        let start = ferrite::time::rdtsc();
        let (exit, out) =
            ferrite::testing::run_program("/bin/thrash", &["thrash", "loop", &arg, "1"]);
        let cycles = ferrite::time::rdtsc() - start;
        assert_eq!(exit, UserExit::Exited(0), "output: {out}");
        assert!(out.contains("thrash: ok"), "output: {out}");
        let d = vmstat::snapshot().since(&before);
        ferrite::kprintln!(
            "  thrash loop {mib} 1, kswapd {}: {:.2} G cycles, pgmajfault {}, pswpin {}, pswpout {}, \
             allocstall {}, pgsteal_direct {}, pgsteal_kswapd {}",
            if on { "on " } else { "off" },
            cycles as f64 / 1e9,
            d.pgmajfault,
            d.pswpin,
            d.pswpout,
            d.allocstall,
            d.pgsteal_direct,
            d.pgsteal_kswapd
        );
        rows.push((cycles, d));
    }
    kswapd::set_enabled(true);
    let ((off_c, off), (on_c, on)) = (rows[0], rows[1]);
    ferrite::kprintln!(
        "  kswapd on / off: run time {:.2}, allocstall {:.2}, pgmajfault {:.2}",
        on_c as f64 / off_c as f64,
        on.allocstall as f64 / off.allocstall.max(1) as f64,
        on.pgmajfault as f64 / off.pgmajfault.max(1) as f64
    );
    swap::swapoff().expect("swapoff");
}
