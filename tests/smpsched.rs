//! User processes on every CPU (issue 14): many programs run at once on
//! all CPUs and finish correctly; processes are seen on CPUs other than 0
//! (`ps`'s PSR column, /proc/PID/stat field 39); a process that ran on
//! another CPU makes TLB shootdowns when it unmaps (IPIs sent and
//! acknowledged); the local APIC timer ticks on every CPU; and after
//! everything exits every frame is back, exactly.
//!
//! Also a measurement: the cost of a one-page unmap with the address
//! space loaded on another CPU (a shootdown) against without, in cycles.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use ferrite::arch::{percpu, smp, tlb};
use ferrite::proc::sched::{self, Pid};
use ferrite::proc::user::{spawn_program, wait_for_all, UserExit};
use ferrite::testing::sh;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        warm_up,
        every_cpu_ticks,
        programs_run_concurrently_on_every_cpu,
        processes_are_seen_on_other_cpus,
        unmapping_shoots_down_other_cpus,
        shootdown_cost,
        user_work_can_be_kept_on_cpu_0,
        every_frame_comes_back,
    ])
}

fn cpus() -> usize {
    smp::cpus_online()
}

/// One round of each program first (the ramdisk's pages cached).
fn warm_up() {
    run_all(&[
        ("/bin/hello", &["hello"]),
        ("/bin/cow-demo", &["cow-demo"]),
        ("/bin/malloc-stress", &["malloc-stress"]),
    ]);
}

/// Starts every program at once, waits for all; each must exit 0.
fn run_all(programs: &[(&str, &[&str])]) {
    let mut pids: Vec<Pid> = Vec::new();
    for (path, argv) in programs {
        pids.push(spawn_program(path, argv).unwrap_or_else(|e| panic!("{path}: {e}")));
    }
    let mut exits = alloc::vec![None; pids.len()];
    wait_for_all(&pids, &mut exits);
    for ((path, _), exit) in programs.iter().zip(&exits) {
        assert_eq!(*exit, Some(UserExit::Exited(0)), "{path}");
    }
}

fn every_cpu_ticks() {
    let before: Vec<u64> = (0..cpus())
        .map(|i| percpu::cpus()[i].lapic_ticks.load(Ordering::Relaxed))
        .collect();
    // Each CPU's timer has ticked once it counted one more: looked for
    // up to 10 s (a fixed 100 ms was not enough for a CPU whose vCPU a
    // loaded host left descheduled that long).
    let start = ferrite::time::ticks();
    for (i, b) in before.iter().enumerate() {
        let ticked = || percpu::cpus()[i].lapic_ticks.load(Ordering::Relaxed) > *b;
        while !ticked() && ferrite::time::ticks() < start + 10 * ferrite::time::TICK_HZ {
            sched::sleep_ticks(1);
        }
        assert!(ticked(), "CPU {i}'s local APIC timer does not tick");
    }
}

fn programs_run_concurrently_on_every_cpu() {
    let switches: Vec<u64> = (0..cpus())
        .map(|i| percpu::cpus()[i].switches.load(Ordering::Relaxed))
        .collect();
    let mut programs: Vec<(&str, &[&str])> = Vec::new();
    for _ in 0..cpus() {
        programs.push(("/bin/malloc-stress", &["malloc-stress"]));
        programs.push(("/bin/cow-demo", &["cow-demo"]));
        // Without fork-oom: one copy driving memory to the OOM killer
        // would make the others' allocations fail or get them killed.
        programs.push(("/bin/usertests", &["usertests", "--skip", "fork-oom"]));
    }
    run_all(&programs);
    for (i, before) in switches.iter().enumerate() {
        let now = percpu::cpus()[i].switches.load(Ordering::Relaxed);
        ferrite::kprintln!("  CPU {i}: {} switches in", now - before);
        assert!(now > *before, "CPU {i} ran no process");
    }
}

/// Spinning programs, one per CPU and one more: `ps` and
/// /proc/PID/stat show some of them on CPUs other than 0.
fn processes_are_seen_on_other_cpus() {
    if cpus() < 2 {
        return;
    }
    let mut pids = Vec::new();
    for _ in 0..=cpus() {
        pids.push(spawn_program("/bin/spin", &["spin", "2"]).expect("spin"));
    }
    let mut seen_ps = false;
    let mut seen_stat = false;
    for _ in 0..100 {
        sched::sleep_ticks(2);
        let ps = sh("ps");
        for l in ps.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() >= 8 && cols[7] == "spin" && cols[6] != "0" {
                seen_ps = true;
            }
        }
        for &pid in &pids {
            let mut stat = String::new();
            if ferrite::procfs::task::stat(pid, &mut stat).is_ok() {
                let after = stat.rsplit(')').next().unwrap_or("");
                // Field 39 is the 37th after "pid (comm)".
                let cpu = after.split_whitespace().nth(36).unwrap_or("0");
                seen_stat |= cpu != "0";
            }
        }
        if seen_ps && seen_stat {
            break;
        }
    }
    let mut exits = alloc::vec![None; pids.len()];
    wait_for_all(&pids, &mut exits);
    for e in exits {
        assert_eq!(e, Some(UserExit::Exited(0)));
    }
    assert!(seen_ps, "ps never showed a process on a CPU other than 0");
    assert!(seen_stat, "/proc/PID/stat never showed a CPU other than 0");
}

/// Programs that map and unmap a lot (cow-demo, malloc-stress) on all
/// CPUs: their spaces are loaded on other CPUs (running there, or lazily
/// in an idle context), so unmaps send shootdowns; every IPI is
/// acknowledged, and every CPU but the sender handled some.
fn unmapping_shoots_down_other_cpus() {
    if cpus() < 2 {
        return;
    }
    let (shots, ipis, acks) = tlb::counts();
    let handled: Vec<u64> = (0..cpus())
        .map(|i| percpu::cpus()[i].tlb_handled.load(Ordering::Relaxed))
        .collect();
    run_all(&shootdown_round());
    let (shots2, ipis2, acks2) = tlb::counts();
    ferrite::kprintln!(
        "  shootdowns: {} ({} IPIs, {} acknowledged)",
        shots2 - shots,
        ipis2 - ipis,
        acks2 - acks
    );
    assert!(shots2 > shots, "no shootdown");
    assert!(ipis2 > ipis, "no shootdown IPI");
    assert_eq!(ipis2 - ipis, acks2 - acks, "every IPI acknowledged");
    let other: u64 = (1..cpus())
        .map(|i| percpu::cpus()[i].tlb_handled.load(Ordering::Relaxed) - handled[i])
        .sum();
    assert!(other > 0, "no CPU but 0 handled a shootdown");
}

/// Two cow-demo and two malloc-stress per CPU, at once.
fn shootdown_round() -> Vec<(&'static str, &'static [&'static str])> {
    let mut programs: Vec<(&str, &[&str])> = Vec::new();
    for _ in 0..2 * cpus() {
        programs.push(("/bin/cow-demo", &["cow-demo"]));
        programs.push(("/bin/malloc-stress", &["malloc-stress"]));
    }
    programs
}

/// The shootdown's cost: invalidating one page on this CPU against the
/// same plus a shootdown request to one other CPU, waited for (what a
/// one-page `munmap` adds when its space is loaded on one other CPU), in
/// TSC cycles, averaged over 200 rounds.
fn shootdown_cost() {
    if cpus() < 2 {
        return;
    }
    // Direct measurement of the machinery: a shoot at one other CPU.
    let (local, shoot) = ferrite::testing::shootdown_cost(200);
    ferrite::kprintln!(
        "  one-page flush: {local} cycles on this CPU; with a shootdown to one other CPU: {shoot} cycles"
    );
    assert!(shoot > 0);
}

/// The switch `cpus::set_user_on_aps(false)` keeps user processes on
/// CPU 0 (the fallback) and they still run.
fn user_work_can_be_kept_on_cpu_0() {
    ferrite::proc::cpus::set_user_on_aps(false);
    let switches: Vec<u64> = (0..cpus())
        .map(|i| percpu::cpus()[i].switches.load(Ordering::Relaxed))
        .collect();
    run_all(&[
        ("/bin/cow-demo", &["cow-demo"]),
        ("/bin/malloc-stress", &["malloc-stress"]),
    ]);
    ferrite::proc::cpus::set_user_on_aps(true);
    for (i, before) in switches.iter().enumerate().skip(1) {
        let now = percpu::cpus()[i].switches.load(Ordering::Relaxed);
        assert_eq!(now, *before, "CPU {i} ran a process with the switch off");
    }
}

/// The round of [`unmapping_shoots_down_other_cpus`] again: with the
/// kernel's high-water marks set by the first (kernel page tables of the
/// vmalloc area for that many kernel stacks at once, slab pages), every
/// frame the second round takes comes back, exactly.
fn every_frame_comes_back() {
    ferrite::testing::assert_round_balances("every program at once on every CPU", || {
        run_all(&shootdown_round())
    });
}
