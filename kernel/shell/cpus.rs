//! `cpus`: the CPUs the ACPI MADT lists and which of them run.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::{Args, Result};
use crate::arch::{apic, percpu, smp};

pub fn cpus(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let online = smp::cpus_online();
    writeln!(
        out,
        "{} CPU(s) found, {} online; local APIC: {}",
        smp::cpus_found(),
        online,
        if !apic::is_ready() {
            "not in use"
        } else if apic::is_x2apic() {
            "x2APIC"
        } else {
            "xAPIC"
        }
    )?;
    writeln!(out, "CPU  APIC-ID  STATE   WAKEUPS  IDLE-WAKES")?;
    let me = percpu::cpu_index();
    for (i, cpu) in percpu::cpus().iter().enumerate() {
        if !cpu.online.load(Ordering::Acquire) {
            continue;
        }
        let state = if i == me { "running" } else { "idle" };
        writeln!(
            out,
            "{:<4} {:<8} {:<7} {:<8} {}",
            i,
            cpu.apic_id.load(Ordering::Relaxed),
            state,
            cpu.wakeups.load(Ordering::Relaxed),
            cpu.idle_wakes.load(Ordering::Relaxed)
        )?;
    }
    Ok(())
}
