//! Time since boot: timer ticks (scheduling, sleeps) and the calibrated
//! TSC (clocks, benchmarks, pressure accounting).

use core::sync::atomic::{AtomicU64, Ordering};

/// Timer interrupts per second (see `arch::interrupts`).
pub const TICK_HZ: u64 = 100;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Called from the timer interrupt.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    crate::klog::tick();
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn uptime_ms() -> u64 {
    ticks() * 1000 / TICK_HZ
}

/// The CPU's time-stamp counter, in cycles.
pub fn rdtsc() -> u64 {
    crate::arch::cpu::rdtsc()
}

static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Measures the TSC against the PIT: channel 2 counts down 10 ms with its
/// gate on and the speaker off, and the TSC is read on both ends. Runs before
/// interrupts are on, so it polls.
pub fn calibrate_tsc() {
    use crate::arch::port::{PIT_CHANNEL2 as channel2, PIT_COMMAND as command, PIT_GATE as gate};
    const PIT_HZ: u64 = 1_193_182;
    const MS: u64 = 10;
    let count = (PIT_HZ * MS / 1000) as u16;
    // The documented PIT channel 2 one-shot sequence: port 0x61 bit 0 gates
    // channel 2, bit 1 (speaker) stays off, bit 5 reads its output.
    let cycles = {
        let old = gate.read();
        gate.write((old & !0x02) | 0x01);
        command.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        let start = rdtsc();
        let mut spins = 0u64;
        while gate.read() & 0x20 == 0 && spins < 100_000_000 {
            spins += 1;
        }
        let cycles = rdtsc() - start;
        gate.write(old);
        cycles
    };
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    TSC_KHZ.store((cycles / MS).max(2), Ordering::Relaxed);
}

/// TSC cycles per millisecond (1 until calibrated).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed).max(1)
}

pub fn cycles_to_us(cycles: u64) -> u64 {
    (cycles as u128 * 1000 / tsc_khz() as u128) as u64
}

/// The TSC when it was calibrated (boot): time since boot starts there.
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds on the calibrated TSC since boot (0 until it is
/// calibrated: the clock only moves forward, so a reading on an
/// uncalibrated scale would stop it later). Resolution: one TSC cycle,
/// well under a nanosecond at GHz rates; `CLOCK_MONOTONIC`'s time.
pub fn uptime_ns() -> u64 {
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if khz <= 1 {
        return 0;
    }
    let cycles = rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed));
    (cycles as u128 * 1_000_000 / khz as u128) as u64
}
