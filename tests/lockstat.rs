//! Lock statistics (`/proc/lock_stat`): every acquisition of an `IrqMutex`
//! is counted, a failed `try_lock` is not, and a `lock` that had to wait
//! for another CPU counts one contention and the cycles it waited. The
//! file lists the kernel's main locks with numbers that only grow.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use ferrite::arch::smp;
use ferrite::arch::sync::{self, rank, IrqMutex, LockStat};
use ferrite::proc::cpus::Affinity;
use ferrite::proc::sched;
use ferrite::proc::user::UserExit;
use ferrite::procfs::{self, system, Node};
use ferrite::testing::run_program;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        acquisitions_are_counted_exactly,
        a_wait_for_another_cpu_is_a_contention,
        proc_lock_stat_lists_the_locks,
        programs_keep_the_lock_order,
        a_lock_against_the_order_is_counted,
    ])
}

static LOCAL: IrqMutex<u64> = IrqMutex::new(0);

fn acquisitions_are_counted_exactly() {
    let before = LOCAL.stat();
    for _ in 0..100 {
        *LOCAL.lock() += 1;
    }
    for _ in 0..7 {
        let g = LOCAL.try_lock().expect("free");
        // Held: another try fails and is not an acquisition.
        assert!(LOCAL.try_lock().is_none());
        drop(g);
    }
    let d = LOCAL.stat().since(&before);
    assert_eq!(
        d,
        LockStat {
            acquisitions: 107,
            contentions: 0,
            wait_cycles: 0
        }
    );
}

static SHARED: IrqMutex<u64> = IrqMutex::new(0);
static HELD: AtomicBool = AtomicBool::new(false);
static RELEASE: AtomicBool = AtomicBool::new(false);
static DONE: AtomicBool = AtomicBool::new(false);

/// On CPU 1: takes the lock, says so, holds it until told, then exits.
fn holder() -> ! {
    {
        let mut g = SHARED.lock();
        HELD.store(true, Ordering::SeqCst);
        while !RELEASE.load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
        // Hold on once asked, so the waiter surely spins: for 200 ms (a
        // vCPU of a loaded host can be descheduled for tens of ms between
        // the waiter's release and its lock; 2 000 000 cycles, ~1 ms,
        // was not always enough).
        let until = ferrite::time::uptime_ns() + 200_000_000;
        while ferrite::time::uptime_ns() < until {
            core::hint::spin_loop();
        }
        *g += 1;
    }
    DONE.store(true, Ordering::SeqCst);
    sched::kthread_exit()
}

fn a_wait_for_another_cpu_is_a_contention() {
    if smp::cpus_online() < 2 {
        ferrite::kprintln!("lockstat: one CPU, no contention to make");
        return;
    }
    let before = SHARED.stat();
    sched::spawn_kthread_on("holder", holder, Affinity::Cpu(1)).expect("a thread on CPU 1");
    while !HELD.load(Ordering::SeqCst) {
        sched::sleep_ticks(1);
    }
    RELEASE.store(true, Ordering::SeqCst);
    // CPU 1 holds it for 200 ms more: this lock waits.
    let value = *SHARED.lock();
    assert_eq!(value, 1, "the holder's change is seen after the wait");
    let d = SHARED.stat().since(&before);
    assert_eq!(d.acquisitions, 2, "{d:?}");
    assert_eq!(d.contentions, 1, "{d:?}");
    assert!(d.wait_cycles > 0, "{d:?}");
    while !DONE.load(Ordering::SeqCst) {
        sched::sleep_ticks(1);
    }
    ferrite::testing::reap_adopted_for_a_while();
}

fn read_lock_stat() -> String {
    let node = procfs::lookup(&["lock_stat"]).expect("/proc/lock_stat exists");
    assert_eq!(node, Node::Global(procfs::Global::LockStat));
    let text = procfs::generate(node).expect("readable");
    String::from_utf8(text.bytes).expect("text")
}

/// `name: contentions waittime-total acquisitions` for every listed lock.
fn parse(text: &str) -> alloc::vec::Vec<(String, [u64; 3])> {
    text.lines()
        .skip(2)
        .map(|line| {
            let (name, rest) = line.split_once(':').expect("name: numbers");
            let n: alloc::vec::Vec<u64> = rest
                .split_whitespace()
                .map(|w| w.parse().expect("a number"))
                .collect();
            assert_eq!(n.len(), 3, "{line}");
            (String::from(name.trim()), [n[0], n[1], n[2]])
        })
        .collect()
}

fn proc_lock_stat_lists_the_locks() {
    let first = parse(&read_lock_stat());
    let names: alloc::vec::Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    let want: alloc::vec::Vec<&str> = system::LOCKS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want);
    // The frames lock is taken at boot and by the reading itself.
    let frames = first.iter().find(|(n, _)| n == "frames").unwrap().1;
    assert!(frames[2] > 0, "{first:?}");
    // Allocating takes it again; nothing goes down.
    let f = ferrite::mm::frames::alloc(0, mmcore::FrameKind::Kernel).expect("a frame");
    ferrite::mm::frames::free(f, 0).expect("free");
    let second = parse(&read_lock_stat());
    for ((n1, a), (n2, b)) in first.iter().zip(&second) {
        assert_eq!(n1, n2);
        for i in 0..3 {
            assert!(b[i] >= a[i], "{n1} went down: {a:?} -> {b:?}");
        }
    }
    let frames2 = second.iter().find(|(n, _)| n == "frames").unwrap().1;
    assert!(frames2[2] > frames[2], "{frames:?} -> {frames2:?}");
}

fn programs_keep_the_lock_order() {
    let n = alloc::format!("{}", smp::cpus_online());
    for (path, argv) in [
        ("/bin/smptests", &["smptests"][..]),
        ("/bin/pipetests", &["pipetests"][..]),
        (
            "/bin/scale",
            &["scale", "-t", "0.1", "-m", "2", "-n", &n][..],
        ),
        ("/bin/filetests", &["/bin/filetests"][..]),
        ("/bin/usertests", &["usertests"][..]),
    ] {
        let (exit, out) = run_program(path, argv);
        assert_eq!(exit, UserExit::Exited(0), "{path}: {out}");
    }
    let (count, first) = sync::order_violations();
    assert_eq!(
        count, 0,
        "locks taken against the order; the first: (rank taken, highest held) = {first:?}"
    );
}

static OUTER: IrqMutex<()> = IrqMutex::ranked((), rank::AREA);
static INNER: IrqMutex<()> = IrqMutex::ranked((), rank::KERNEL_TABLES);

fn a_lock_against_the_order_is_counted() {
    let (before, _) = sync::order_violations();
    {
        // In order: nothing counted.
        let _a = INNER.lock();
        let _b = OUTER.lock();
    }
    assert_eq!(sync::order_violations().0, before);
    {
        // Against it (only these test locks: no one else takes them).
        let _b = OUTER.lock();
        let _a = INNER.lock();
    }
    let (after, first) = sync::order_violations();
    if cfg!(debug_assertions) {
        assert_eq!(after, before + 1);
        if before == 0 {
            assert_eq!(first, Some((rank::KERNEL_TABLES, rank::AREA)));
        }
    } else {
        assert_eq!(after, 0, "release builds do not check");
    }
}
