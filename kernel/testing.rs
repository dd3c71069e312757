//! The in-kernel test harness.
//!
//! Each file in `tests/` is a kernel: it boots with [`crate::start`], runs a
//! list of test functions and ends QEMU with the success code; a panic prints
//! `test NAME ... FAILED` with the message and ends it with the failure code.
//! A test that expects a fatal exception registers a checker with
//! [`expect_fault`]; the exception then ends the run through that checker.
//! Likewise [`expect_panic`] for a panic (judged once its report is
//! printed), and [`expect_nested_failure`] for a failure provoked inside a
//! report, which must end the run through the guard in `panic`.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::exceptions::{set_fatal_hook, Fault};
use crate::arch::hook::{FnPointer, Hook};
use crate::power::{exit, ExitCode};

pub struct Test {
    pub name: &'static str,
    pub run: fn(),
}

/// `ferrite::tests![a, b]` -> a list of [`Test`] named after the functions.
#[macro_export]
macro_rules! tests {
    ($($f:path),* $(,)?) => {
        &[$($crate::testing::Test { name: stringify!($f), run: $f }),*]
    };
}

/// The tests `run` was given, and the index of the one running now
/// (`usize::MAX`: none).
static TESTS: spin::Once<&'static [Test]> = spin::Once::new();
static CURRENT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The test running now, for the panic handler.
pub fn current_test() -> Option<&'static str> {
    let i = CURRENT.load(Ordering::SeqCst);
    TESTS.get()?.get(i).map(|t| t.name)
}

/// Runs every test in order and exits QEMU with the verdict.
pub fn run(tests: &'static [Test]) -> ! {
    crate::kprintln!("running {} tests", tests.len());
    let tests = *TESTS.call_once(|| tests);
    for (i, test) in tests.iter().enumerate() {
        CURRENT.store(i, Ordering::SeqCst);
        crate::kprintln!("test {} ...", test.name);
        (test.run)();
        crate::kprintln!("test {} ... ok", test.name);
    }
    CURRENT.store(usize::MAX, Ordering::SeqCst);
    crate::kprintln!("test result: ok. {} passed", tests.len());
    exit(ExitCode::Success)
}

type FaultCheck = fn(&Fault) -> Result<(), String>;

static FAULT_CHECK: Hook<FaultCheck> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for FaultCheck {}

/// Declares that the current test ends in a fatal exception, and how to
/// judge it: `check` returns `Err(why)` if the fault is not the expected one.
pub fn expect_fault(check: FaultCheck) {
    FAULT_CHECK.set(check);
    set_fatal_hook(judge_fault);
}

fn judge_fault(fault: &Fault) -> ! {
    let name = current_test().unwrap_or("<no test>");
    let check = FAULT_CHECK
        .get()
        .expect("expect_fault installs this hook with a check");
    match check(fault) {
        Ok(()) => {
            crate::kprintln!("test {name} ... ok (expected fault: {})", fault.mnemonic());
            crate::kprintln!("test result: ok. 1 passed");
            exit(ExitCode::Success)
        }
        Err(why) => {
            crate::kprintln!("test {name} ... FAILED: wrong fault: {why}");
            exit(ExitCode::Failure)
        }
    }
}

/// Fails the test with `why` unless `cond` holds (for fault checkers).
pub fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

type PanicCheck = fn(&crate::panic::Report) -> Result<(), &'static str>;

static PANIC_CHECK: Hook<PanicCheck> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for PanicCheck {}

/// Declares that the current test ends in a panic, and how to judge the
/// printed report: `check` returns `Err(why)` if it is not the expected
/// one. The judging runs on the panic path, so it does not allocate.
pub fn expect_panic(check: PanicCheck) {
    PANIC_CHECK.set(check);
    crate::panic::set_panic_hook(judge_panic);
}

fn judge_panic(report: &crate::panic::Report) -> ! {
    let name = current_test().unwrap_or("<no test>");
    let check = PANIC_CHECK
        .get()
        .expect("expect_panic installs this hook with a check");
    match check(report) {
        Ok(()) => {
            crate::kprintln!("test {name} ... ok (expected panic, report complete)");
            crate::kprintln!("test result: ok. 1 passed");
            exit(ExitCode::Success)
        }
        Err(why) => {
            crate::kprintln!("test {name} ... FAILED: wrong panic report: {why}");
            exit(ExitCode::Failure)
        }
    }
}

/// Declares that the current test provokes a second failure (a panic or an
/// exception) while a fatal report is at `stage`: the run must end there,
/// with the success exit only if it ends at that stage.
pub fn expect_nested_failure(stage: crate::panic::Stage) {
    crate::panic::expect_nested(stage);
}

/// Runs the program at `path` with `argv` to its end: how it ended, and
/// what it (and the kernel meanwhile) printed.
pub fn run_program(path: &str, argv: &[&str]) -> (crate::proc::user::UserExit, String) {
    crate::klog::capture_start();
    let pid =
        crate::proc::user::spawn_program(path, argv).unwrap_or_else(|e| panic!("{path}: {e}"));
    let exit = crate::proc::user::wait_for(pid);
    (exit, crate::klog::capture_take())
}

/// [`run_program`] with the output as bytes, exactly as written (programs
/// may write any bytes; the text version shows ill-formed UTF-8 as U+FFFD).
pub fn run_program_bytes(path: &str, argv: &[&str]) -> (crate::proc::user::UserExit, Vec<u8>) {
    crate::klog::capture_start();
    let pid =
        crate::proc::user::spawn_program(path, argv).unwrap_or_else(|e| panic!("{path}: {e}"));
    let exit = crate::proc::user::wait_for(pid);
    (exit, crate::klog::capture_take_bytes())
}

/// Free frames once the page cache dropped its clean pages no process maps
/// and the slab heap gave back its empty slabs: the count tests compare
/// before and after to prove every frame came back.
pub fn settled_free_pages() -> u64 {
    // A kswapd run under way holds address spaces (an exited process's
    // memory among them) until it ends.
    while crate::mm::reclaim::in_flight() > 0 {
        crate::proc::sched::sleep_ticks(1);
    }
    // Orphans (adopted by the kernel) end on their own time, on any CPU:
    // wait for them (a few seconds at most) and free their zombies.
    reap_adopted_for_a_while();
    crate::mm::pagecache::shrink_unmapped();
    // Objects and frames in the CPUs' caches go back (every CPU's). A
    // request waits a second; under a loaded host a virtual CPU may not
    // run for that long, so it is asked up to ten times.
    assert!(
        (0..10).any(|_| crate::mm::percpu::drain_all_sync()),
        "a CPU did not drain its allocator caches in 10 s"
    );
    crate::mm::frames::with(|m| {
        m.slab.shrink(&mut m.buddy);
        m.buddy.free_pages()
    })
}

/// Reaps the processes the kernel adopted (orphans, ended kernel
/// threads), waiting up to 500 ticks for those still running to end (on
/// any CPU); true if none is left.
pub fn reap_adopted_for_a_while() -> bool {
    for _ in 0..500 {
        crate::proc::sched::reap_adopted();
        if crate::proc::sched::adopted_count() == 0 {
            return true;
        }
        crate::proc::sched::sleep_ticks(1);
    }
    crate::proc::sched::adopted_count() == 0
}

/// Runs a shell command line and returns its output; panics (failing the
/// test) with the error and the output so far if the command fails.
pub fn sh(line: &str) -> String {
    let mut out = String::new();
    if let Err(e) = crate::shell::execute(line, &mut out) {
        panic!("`{line}` failed: {e}\noutput so far:\n{out}");
    }
    out
}

/// `Name:   123 kB` -> 123 (kB): one field of `meminfo`'s output; panics
/// if it is missing or not a kB value.
pub fn meminfo_field(meminfo: &str, name: &str) -> u64 {
    for line in meminfo.lines() {
        if let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            let value = rest.trim().strip_suffix("kB").expect("a kB value").trim();
            return value.parse().expect("a number");
        }
    }
    panic!("no {name} in meminfo:\n{meminfo}");
}

/// Asserts that `meminfo`'s output accounts for every frame: MemFree and
/// the kinds of use add up to MemTotal.
pub fn assert_meminfo_adds_up(meminfo: &str) {
    let f = |name| meminfo_field(meminfo, name);
    let used = f("Cached")
        + f("AnonPages")
        + f("Slab")
        + f("PageTables")
        + f("KernelStack")
        + f("ZeroPage")
        + f("KmallocLarge")
        + f("KernelOther");
    assert_eq!(f("MemFree") + used, f("MemTotal"), "meminfo:\n{meminfo}");
}

/// Runs the user test suite at `path` (a program built on user/testcase.h,
/// ending in "NAME: N passed, M failed", NAME the file's name) to its end,
/// prints its summary and any FAILED lines, and asserts that it exited 0
/// with exactly `passed` cases passed and none failed (so a case lost from
/// the table fails too). Returns what it printed.
pub fn run_suite(path: &str, argv: &[&str], passed: usize) -> String {
    let (exit, out) = run_program(path, argv);
    let name = path.rsplit('/').next().unwrap_or(path);
    let summary = out
        .lines()
        .find(|l| l.starts_with(name) && l.contains(" passed, "))
        .unwrap_or("no summary");
    crate::kprintln!("  {summary}");
    for line in out.lines().filter(|l| l.contains(" ... FAILED")) {
        crate::kprintln!("  {line}");
    }
    assert_eq!(
        exit,
        crate::proc::user::UserExit::Exited(0),
        "{name} failed: {summary}\noutput:\n{out}"
    );
    let want = alloc::format!("{name}: {passed} passed, 0 failed");
    assert_eq!(summary, want, "output:\n{out}");
    assert!(!out.contains(" ... FAILED"), "output:\n{out}");
    out
}

/// The settled free-frame count [`count_free_frames`] took.
static FREE_AT_START: spin::Once<u64> = spin::Once::new();

/// Takes the settled free-frame count [`assert_frames_back`] compares
/// with, once (a later call keeps the first count): from a test's `main`
/// before [`run`], or as a test of its own after a warm-up round.
pub fn count_free_frames() {
    FREE_AT_START.call_once(settled_free_pages);
}

/// Asserts that every frame free at [`count_free_frames`] is free again,
/// but for at most `slack` (what the kernel keeps at its high-water mark:
/// slab pages for process bookkeeping, the ramdisk's file table); prints
/// the balance (with no slack it must be exact). Call it with none of the test's own heap (captured output,
/// result vectors) still held.
pub fn assert_frames_back(slack: u64) {
    let start = *FREE_AT_START
        .get()
        .expect("count_free_frames ran before the tests");
    let now = settled_free_pages();
    crate::kprintln!("  free pages: {start} at start, {now} now");
    if slack == 0 {
        // Exact: more free frames than at the start is as wrong (a frame
        // counted out that was never in).
        assert_eq!(now, start, "free frames at start and now");
        return;
    }
    let missing = start.saturating_sub(now);
    assert!(
        missing <= slack,
        "{missing} frames not returned (at most {slack} may stay)"
    );
}

/// Runs `round` and asserts that it gave back every frame it took: the
/// settled free-frame count after it is exactly the count before. What
/// `round` allocates on the kernel heap (captured output, result vectors)
/// is dropped when it returns, before the count.
pub fn assert_round_balances(what: &str, round: impl FnOnce()) {
    let before = settled_free_pages();
    round();
    let after = settled_free_pages();
    assert!(
        after == before,
        "{what}: {} frames not returned ({before} free before, {after} after)",
        before as i64 - after as i64
    );
}

/// A shootdown's cost, in TSC cycles averaged over `rounds`: invalidating
/// one kernel page on this CPU, against the same request sent to CPU 1
/// and waited for (what a one-page `munmap` adds when its space is loaded
/// on one other CPU). Returns `(local, shootdown)`; needs 2 CPUs online.
pub fn shootdown_cost(rounds: u64) -> (u64, u64) {
    use crate::arch::{mmu, tlb};
    const PAGE: u64 = 0xffff_c900_0000_0000;
    let start = crate::time::rdtsc();
    for _ in 0..rounds {
        tlb::shoot(1 << 1, tlb::KERNEL, &[PAGE], false, false);
    }
    let shoot = (crate::time::rdtsc() - start) / rounds;
    let start = crate::time::rdtsc();
    for _ in 0..rounds {
        mmu::flush_page(PAGE);
    }
    let local = (crate::time::rdtsc() - start) / rounds;
    (local, shoot)
}
