//! SMP: the `smptests` suite (threads reading and writing a page while
//! another thread munmaps or mprotects it, fork while threads write,
//! concurrent first touches of one page, a thread group exiting while its
//! threads fault), on one, two and four CPUs; then the frames: after
//! thread groups died mid-fault and mid-munmap, every frame (pages, page
//! tables, thread stacks, kernel stacks) is back, exactly.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program as run, run_suite, settled_free_pages};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        smptests_all_pass,
        smptests_hammer_more,
        exit_while_faulting_gives_every_frame_back,
        distinct_page_faults_give_every_frame_back,
        threaded_faults_survive_frame_injection,
    ])
}

fn cpus() -> usize {
    ferrite::arch::smp::cpus_online()
}

fn smptests_all_pass() {
    ferrite::kprintln!("  {} CPU(s)", cpus());
    run_suite("/bin/smptests", &["smptests"], 7);
    // No thread is left behind: every record is reaped but the kernel's.
    let left = sched::find_pid(|p| p.pid != 0 && !p.is_kernel_thread());
    assert_eq!(left, None, "a thread or process outlived the suite");
}

/// The hammers again, longer: a stale TLB entry is a race, more rounds
/// give it more chances.
fn smptests_hammer_more() {
    run_suite(
        "/bin/smptests",
        &[
            "smptests",
            "-r",
            "500",
            "munmap-hammer",
            "mprotect-hammer",
            "fork-while-writing",
        ],
        3,
    );
}

fn exit_while_faulting_gives_every_frame_back() {
    let argv = [
        "smptests",
        "-r",
        "100",
        "exit-while-faulting",
        "same-page-faults",
    ];
    // Once first: slab pages for thread records stay after it.
    let (exit, out) = run("/bin/smptests", &argv);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    drop(out);
    let before = settled_free_pages();
    for _ in 0..3 {
        let (exit, out) = run("/bin/smptests", &argv);
        assert_eq!(exit, UserExit::Exited(0), "{out}");
        assert!(out.contains("smptests: 2 passed, 0 failed"), "{out}");
    }
    let after = settled_free_pages();
    ferrite::kprintln!("  free pages: {before} before, {after} after 3 runs");
    assert_eq!(
        after, before,
        "thread groups that died faulting leaked frames"
    );
}

/// Threads first-touching different pages of one region (each fault clears
/// its frame with the address space unlocked) and the same page (where a
/// frame cleared unlocked may be refused: another thread filled the page
/// first), and private copies of file pages while the region is replaced
/// by another file (copies made ahead of the lock from the last fault's
/// region are refused): every page holds its writer's values or the file
/// mapped now, and every frame, refused ones included, is back.
fn distinct_page_faults_give_every_frame_back() {
    use core::sync::atomic::Ordering;
    let argv = [
        "smptests",
        "-r",
        "100",
        "distinct-page-faults",
        "same-page-faults",
        "file-remap-faults",
    ];
    let (exit, out) = run("/bin/smptests", &argv);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    drop(out);
    let before = settled_free_pages();
    let refused = ferrite::mm::fault::PREPARED_REFUSED.load(Ordering::Relaxed);
    let unused = ferrite::mm::fault::PREDICTED_UNUSED.load(Ordering::Relaxed);
    for _ in 0..3 {
        let (exit, out) = run("/bin/smptests", &argv);
        assert_eq!(exit, UserExit::Exited(0), "{out}");
        assert!(out.contains("smptests: 3 passed, 0 failed"), "{out}");
    }
    let after = settled_free_pages();
    let refused = ferrite::mm::fault::PREPARED_REFUSED.load(Ordering::Relaxed) - refused;
    let unused = ferrite::mm::fault::PREDICTED_UNUSED.load(Ordering::Relaxed) - unused;
    ferrite::kprintln!(
        "  free pages: {before} before, {after} after 3 runs; {refused} frames cleared unlocked were refused (another thread filled the page first), {unused} cleared ahead on a guess were not wanted"
    );
    assert_eq!(after, before, "threads faulting in parallel leaked frames");
    // Every space those guesses were about is gone, and with it every
    // guess: a root frame reused by a new space must not bring a dead
    // space's guess with it (a frame made for the dead one's reverse-map
    // family would be installed in the new one).
    let hinted: alloc::vec::Vec<u64> = ferrite::mm::fault::hinted_roots().collect();
    assert!(
        hinted.is_empty(),
        "fault hints still name the roots {hinted:x?} of torn-down spaces"
    );
}

/// Threads faulting on every CPU with user-page allocations failing at
/// random (`fail_page_alloc`, so also the frames they clear or copy with
/// the address space unlocked): the program may fail or be killed, the
/// kernel does not panic, and afterwards every frame is back, exactly.
fn threaded_faults_survive_frame_injection() {
    use ferrite::mm::failslab::{self, Mode, Rule, Target};
    use ferrite::proc::user::{spawn_program, wait_for};
    let n = alloc::format!("{}", cpus());
    let argv = [
        "scale",
        "-t",
        "0.3",
        "-m",
        "2",
        "-n",
        &n,
        "page_fault1-threads",
        "page_fault2-threads",
    ];
    // Once clean: what a first run leaves for good is there before.
    let (exit, out) = run("/bin/scale", &argv);
    assert_eq!(exit, UserExit::Exited(0), "{out}");
    drop(out);
    let before = settled_free_pages();
    let failed = failslab::status(Target::Page).1.failed;
    for seed in 1..=3 {
        ferrite::klog::capture_start();
        let pid = spawn_program("/bin/scale", &argv).expect("scale starts");
        failslab::configure(
            Target::Page,
            Rule {
                mode: Mode::Random { one_in: 200, seed },
                times: None,
            },
        );
        let exit = wait_for(pid);
        failslab::off();
        let _ = ferrite::klog::capture_take();
        ferrite::kprintln!("  injection seed {seed}: scale ended {exit:?}");
    }
    let failed = failslab::status(Target::Page).1.failed - failed;
    let after = settled_free_pages();
    ferrite::kprintln!(
        "  {failed} page allocations failed on purpose; free pages {before} before, {after} after"
    );
    assert!(failed > 0, "no allocation was failed");
    assert_eq!(after, before, "frames lost under injection");
}
