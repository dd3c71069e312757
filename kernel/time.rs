//! Time: the calibrated TSC (clocks, sleeps, benchmarks, pressure
//! accounting), timer ticks (scheduling), the wall clock (the CMOS RTC read
//! at boot) and the timer interrupt's programming.
//!
//! The timer is the PIT's channel 0 in one-shot mode (mode 0), armed for
//! whichever comes first: the next 10 ms tick of the periodic grid
//! (`TICK_HZ`; time slices, CPU accounting, pressure) or the earliest
//! sleeper's deadline. So `nanosleep(1 ms)` wakes after about 1 ms, not at
//! the next tick, and an idle machine still takes only `TICK_HZ`
//! interrupts a second plus one per wake-up.

use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Timer interrupts per second (see `arch::interrupts`).
pub const TICK_HZ: u64 = 100;

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds between ticks.
pub const TICK_NS: u64 = 1_000_000_000 / TICK_HZ;

/// When the next tick of the grid is due (uptime ns).
static NEXT_TICK_NS: AtomicU64 = AtomicU64::new(0);
/// Ticks the last timer interrupt counted (0: it only woke sleepers).
static LAST_TICKS: AtomicU64 = AtomicU64::new(0);
/// The earliest sleeper's deadline (uptime ns; `u64::MAX`: none).
static NEXT_WAKE_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// When the timer is armed to fire (uptime ns).
static ARMED_NS: AtomicU64 = AtomicU64::new(0);
/// The one-shot timer is in use (after the first timer interrupt).
static ONESHOT: AtomicBool = AtomicBool::new(false);
/// Timer interrupts that counted no tick (they woke a sleeper early).
static WAKE_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// The shortest time the timer is armed for: an interrupt costs some
/// microseconds under emulation, so closer deadlines are met by this one.
const MIN_ARM_NS: u64 = 20_000;

/// Called from the timer interrupt: counts the ticks of the grid that have
/// passed (more than one if interrupts were off for long) and returns how
/// many. Before the one-shot timer starts each (periodic) interrupt is one
/// tick.
pub fn timer_interrupt() -> u64 {
    let now = uptime_ns();
    let ticks = if !ONESHOT.load(Ordering::Relaxed) {
        1
    } else {
        let next = NEXT_TICK_NS.load(Ordering::Relaxed);
        if now < next {
            0
        } else {
            let n = (now - next) / TICK_NS + 1;
            NEXT_TICK_NS.store(next + n * TICK_NS, Ordering::Relaxed);
            n
        }
    };
    if ticks == 0 {
        WAKE_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    } else {
        crate::klog::tick();
        // USB has no interrupt: its event rings are read every tick.
        crate::drivers::usb::poll();
    }
    TICKS.fetch_add(ticks, Ordering::Relaxed);
    LAST_TICKS.store(ticks, Ordering::Relaxed);
    ticks
}

/// Ticks the current timer interrupt counted (for the scheduler's hook).
pub fn last_interrupt_ticks() -> u64 {
    LAST_TICKS.load(Ordering::Relaxed)
}

/// Timer interrupts that only woke a sleeper (no tick was due).
pub fn wake_interrupts() -> u64 {
    WAKE_INTERRUPTS.load(Ordering::Relaxed)
}

/// The scheduler's earliest sleeper deadline after a scan (`u64::MAX`: no
/// sleeper); re-arms the timer for it. Interrupts are off.
pub fn set_next_wake(deadline_ns: u64) {
    NEXT_WAKE_NS.store(deadline_ns, Ordering::Relaxed);
    arm();
}

/// A process goes to sleep until `deadline_ns`: the timer is re-armed if
/// that comes before what it is armed for. Interrupts are off.
pub fn add_wake(deadline_ns: u64) {
    let prev = NEXT_WAKE_NS.fetch_min(deadline_ns, Ordering::Relaxed);
    if deadline_ns < prev && deadline_ns < ARMED_NS.load(Ordering::Relaxed) {
        arm();
    }
}

/// Programs the one-shot timer for the next tick or wake-up, whichever is
/// first. Interrupts are off (a timer interrupt in the middle would arm
/// the timer for an older deadline).
pub fn arm() {
    if !ONESHOT.load(Ordering::Relaxed) {
        return;
    }
    let now = uptime_ns();
    let next = NEXT_TICK_NS
        .load(Ordering::Relaxed)
        .min(NEXT_WAKE_NS.load(Ordering::Relaxed));
    let delta = next.saturating_sub(now).clamp(MIN_ARM_NS, TICK_NS);
    ARMED_NS.store(now + delta, Ordering::Relaxed);
    crate::arch::interrupts::pit_oneshot(delta);
}

/// Switches the timer from the boot's periodic mode to one-shot mode, on
/// the tick grid from now. Called from the first timer interrupt after the
/// TSC is calibrated.
pub fn start_oneshot() {
    if ONESHOT.load(Ordering::Relaxed) || TSC_KHZ.load(Ordering::Relaxed) <= 1 {
        return;
    }
    NEXT_TICK_NS.store(uptime_ns() + TICK_NS, Ordering::Relaxed);
    ONESHOT.store(true, Ordering::Relaxed);
    arm();
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
    read_wall_clock();
}

/// Unix time in nanoseconds at uptime 0 (boot); 0 if the RTC was unreadable.
static BOOT_WALL_NS: AtomicI64 = AtomicI64::new(0);

/// Reads the RTC and sets the boot wall time from it: the RTC's second
/// minus the time since boot when it was read (the RTC counts whole
/// seconds, so the wall clock may run up to 1 s behind).
fn read_wall_clock() {
    match crate::drivers::rtc::read_time() {
        Some(date) => {
            let wall = date.to_unix() as i128 * 1_000_000_000 - uptime_ns() as i128;
            BOOT_WALL_NS.store(wall as i64, Ordering::Relaxed);
            log::info!(
                "rtc: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC (Unix time {})",
                date.year,
                date.month,
                date.day,
                date.hour,
                date.minute,
                date.second,
                date.to_unix()
            );
        }
        None => log::warn!("rtc: the clock reads as garbage; wall time starts at 1970"),
    }
}

/// Unix time in nanoseconds at boot (uptime 0).
pub fn boot_wall_ns() -> i64 {
    BOOT_WALL_NS.load(Ordering::Relaxed)
}

/// `CLOCK_REALTIME`: nanoseconds since the Unix epoch.
pub fn realtime_ns() -> i64 {
    boot_wall_ns() + uptime_ns() as i64
}

/// The TSC value at uptime 0 (for the vDSO's data page).
pub fn boot_tsc() -> u64 {
    BOOT_TSC.load(Ordering::Relaxed)
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
