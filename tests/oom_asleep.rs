//! The OOM killer's wait for its victim's memory (run on 1 and 2 CPUs).
//!
//! 1. A process killed while it sleeps inside the kernel, in that wait,
//!    must end itself and give every frame back.
//! 2. A victim whose memory goes back slowly, through someone else's last
//!    reference, is waited for until every frame is back: no second
//!    process is killed meanwhile.
//!
//! The bug this guards against (found by `make fuzz` on 2 CPUs, a batch
//! that `mmap`ed 4 GB with `MAP_LOCKED`): `mlock`'s populate loop holds a
//! reference to its own address space while each page is faulted in
//! through the user-copy path; out of memory, that fault sleeps a tick in
//! the OOM killer (another process is choosing, or the last victim's
//! memory is still on its way back). A SIGKILL then found the thread off
//! every CPU and turned it into a zombie from outside: the reference on
//! its kernel stack was never dropped, and its whole address space stayed
//! allocated for good.
//!
//! Here, deterministically: `memhog hold` takes 60% of the memory, and
//! this thread keeps a reference to its address space, so when the OOM
//! killer kills it its memory does not come back and the killer waits
//! (up to a second). `memhog lock` then `mlock`s another 60%: its fault in
//! the kernel's populate loop runs out and sleeps in the killer's wait,
//! tick after tick. This thread kills it there, lets the hog's memory go,
//! and every frame must be back.
//!
//! The second bug (found in review): the killer took "the victim's
//! address space has no strong reference left" for "its memory is back".
//! The count reaches 0 before the teardown starts; a fault on another CPU
//! in between saw memory still short and killed again. Here the
//! teardown is made slow on purpose ([`aspace::set_teardown_hook`]): this
//! thread drops the hog's last reference and sleeps inside the teardown
//! while the locker keeps faulting. The locker must wait, then lock all
//! it asked for and exit 0; only the hog is killed.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::{aspace, frames};
use ferrite::proc::oom;
use ferrite::proc::sched::{self, Block, Pid, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::testing::assert_round_balances;
use ferrite::time::TICK_HZ;

ferrite::kernel_entry!(main);

/// The killer's wait for a victim's memory here: 10 s, not 1 s. These
/// tests need it to outlast their own steps (a victim's teardown held up
/// on purpose, a debug kernel tearing down 140 MiB, a loaded host), not
/// to run out.
const WAIT_TICKS: u64 = 10 * TICK_HZ;

fn main() -> ! {
    oom::set_victim_wait_ticks(WAIT_TICKS);
    // One run first: what a first program leaves for good is there before
    // any frame is counted.
    assert_eq!(
        wait_for(spawn(&["memhog", "fill", "1"])),
        UserExit::Exited(0)
    );
    ferrite::testing::run(ferrite::tests![
        killed_asleep_in_the_oom_wait_of_a_user_copy_gives_every_frame_back,
        a_victim_torn_down_slowly_elsewhere_is_awaited_and_nothing_else_dies,
    ])
}

/// MiB user pages may still take (free frames above the kernel's reserve).
fn available_mib() -> u64 {
    let pages = frames::free_pages().saturating_sub(frames::user_reserve());
    (pages * 4096) >> 20
}

fn spawn(argv: &[&str]) -> Pid {
    spawn_program("/bin/memhog", argv).unwrap_or_else(|e| panic!("memhog {argv:?}: {e}"))
}

fn state(pid: Pid) -> Option<State> {
    sched::with_process(pid, |p| p.state)
}

/// Waits (a tick at a time, up to `secs` seconds) until `done` holds.
fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = ferrite::time::ticks() + secs * TICK_HZ;
    while !done() {
        assert!(ferrite::time::ticks() < deadline, "never: {what}");
        sched::sleep_ticks(1);
    }
}

fn killed_asleep_in_the_oom_wait_of_a_user_copy_gives_every_frame_back() {
    let mut asleep_when_killed = false;
    assert_round_balances("the kill in the OOM wait", || {
        capture_start();
        let avail = available_mib();
        let mib = avail * 6 / 10;
        ferrite::kprintln!("  {avail} MiB available: the hog holds {mib}, the locker locks {mib}");
        let hog = spawn(&["memhog", "hold", &format!("{mib}")]);
        wait_until(120, "the hog holds its memory", || {
            matches!(state(hog), Some(State::Blocked(Block::Sleep(_))))
        });
        // Kept here, the hog's memory stays after it is killed: the killer
        // waits for it, and the locker's fault sleeps in that wait.
        let pinned = sched::with_process(hog, |p| p.aspace.clone())
            .flatten()
            .expect("the hog has an address space");
        let locker = spawn(&["memhog", "lock", &format!("{mib}")]);
        wait_until(120, "the hog is killed and its memory awaited", || {
            oom::victim_exiting_now() == Some(hog)
        });
        // The locker faults again every tick and sleeps in between; kill
        // it asleep. It is most of the time, but on 2 CPUs it may still be
        // printing the OOM report that named the hog, so look for up to a
        // second (a count of looks was not enough: with nothing else to
        // run, 50 yields pass in microseconds, and CI once saw the locker
        // running at every one).
        let look_until = ferrite::time::ticks() + TICK_HZ;
        while ferrite::time::ticks() < look_until {
            asleep_when_killed = matches!(state(locker), Some(State::Blocked(Block::Sleep(_))));
            if asleep_when_killed {
                break;
            }
            sched::yield_now();
        }
        assert_eq!(
            oom::victim_exiting_now(),
            Some(hog),
            "the killer stopped waiting for the hog too soon"
        );
        assert!(sched::kill(locker), "the locker is alive");
        drop(pinned);
        let hog_exit = wait_for(hog);
        let locker_exit = wait_for(locker);
        wait_until(10, "the hog's memory is back", || {
            oom::victim_exiting_now().is_none()
        });
        let out = capture_take();
        assert!(
            matches!(hog_exit, UserExit::Killed { signal: 9, .. }),
            "the hog: {hog_exit:?}\n{out}"
        );
        assert!(
            matches!(locker_exit, UserExit::Killed { signal: 9, .. }),
            "the locker: {locker_exit:?}\n{out}"
        );
        assert!(
            out.contains(&format!("Out of memory: Killed process {hog} ")),
            "{out}"
        );
        assert!(!out.contains("memhog: locked"), "{out}");
    });
    assert!(
        asleep_when_killed,
        "the locker was never seen asleep in the OOM wait"
    );
    ferrite::kprintln!("  killed asleep in the OOM wait: every frame back");
}

/// The address space whose teardown [`slow_teardown`] holds up (0: none).
static SLOW_SPACE: AtomicU64 = AtomicU64::new(0);
/// Set once [`slow_teardown`] held it up.
static SLOWED: AtomicBool = AtomicBool::new(false);
/// How long it is held up: half a second (the locker faults again about
/// every tick meanwhile), well short of the killer giving up.
const SLOW_TICKS: u64 = TICK_HZ / 2;

/// The teardown hook: sleeps at the start of [`SLOW_SPACE`]'s teardown,
/// after its last reference went and before any frame is back.
fn slow_teardown(id: u64) {
    if id != 0 && SLOW_SPACE.load(Ordering::SeqCst) == id {
        SLOWED.store(true, Ordering::SeqCst);
        sched::sleep_ticks(SLOW_TICKS);
    }
}

fn a_victim_torn_down_slowly_elsewhere_is_awaited_and_nothing_else_dies() {
    aspace::set_teardown_hook(slow_teardown);
    assert_round_balances("the slow teardown", || {
        capture_start();
        let mib = available_mib() * 6 / 10;
        let hog = spawn(&["memhog", "hold", &format!("{mib}")]);
        wait_until(120, "the hog holds its memory", || {
            matches!(state(hog), Some(State::Blocked(Block::Sleep(_))))
        });
        let pinned = sched::with_process(hog, |p| p.aspace.clone())
            .flatten()
            .expect("the hog has an address space");
        SLOW_SPACE.store(pinned.lock().id(), Ordering::SeqCst);
        let locker = spawn(&["memhog", "lock", &format!("{mib}")]);
        wait_until(120, "the hog is killed and its memory awaited", || {
            oom::victim_exiting_now() == Some(hog)
        });
        // The hog lets go as it ends, the killer right after its kill.
        wait_until(10, "this is the last reference", || {
            alloc::sync::Arc::strong_count(&pinned) == 1
        });
        // The last reference: the teardown runs here, held up by the hook
        // with the strong count at 0 and every frame still out.
        drop(pinned);
        assert!(
            SLOWED.load(Ordering::SeqCst),
            "the hook held up the teardown"
        );
        let hog_exit = wait_for(hog);
        let locker_exit = wait_for(locker);
        SLOW_SPACE.store(0, Ordering::SeqCst);
        let out = capture_take();
        assert!(
            matches!(hog_exit, UserExit::Killed { signal: 9, .. }),
            "the hog: {hog_exit:?}\n{out}"
        );
        assert_eq!(locker_exit, UserExit::Exited(0), "the locker\n{out}");
        assert!(out.contains(&format!("memhog: locked {mib} MiB")), "{out}");
        assert_eq!(
            out.matches("Out of memory: Killed process").count(),
            1,
            "one victim only\n{out}"
        );
        assert!(
            out.contains(&format!("Out of memory: Killed process {hog} ")),
            "{out}"
        );
    });
    ferrite::kprintln!("  a slow teardown was awaited: one kill, every frame back");
}
