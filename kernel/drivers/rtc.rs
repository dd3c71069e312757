//! The CMOS real-time clock (MC146818): read once at boot for the wall
//! clock (`CLOCK_REALTIME` is that reading plus the TSC's time since).
//!
//! The registers are copied while no update is in progress (status A bit
//! 7) and read again until two copies agree, so a read that straddles the
//! once-a-second update is never used. `usercore::time` decodes them (BCD
//! or binary, 12- or 24-hour) and turns the date into Unix time.

use crate::arch::port::{CMOS_DATA, CMOS_INDEX};
use usercore::time::{decode_rtc, DateTime, RtcRegisters};

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
/// The century, where PC firmware keeps it (ACPI's FADT names the index;
/// 0x32 is the IBM PC/AT convention QEMU and most chipsets follow).
const REG_CENTURY: u8 = 0x32;
/// Status A: an update is in progress (the registers may be torn).
const UIP: u8 = 0x80;

fn read(reg: u8) -> u8 {
    CMOS_INDEX.write(reg);
    CMOS_DATA.read()
}

fn update_in_progress() -> bool {
    read(REG_STATUS_A) & UIP != 0
}

fn snapshot() -> RtcRegisters {
    // An update takes under 2 ms after UIP rises; poll a bounded while.
    let mut spins = 0u32;
    while update_in_progress() && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    let century = read(REG_CENTURY);
    RtcRegisters {
        second: read(REG_SECONDS),
        minute: read(REG_MINUTES),
        hour: read(REG_HOURS),
        day: read(REG_DAY),
        month: read(REG_MONTH),
        year: read(REG_YEAR),
        // A plausible century (19..=21 in BCD or binary) is taken as the
        // century register; anything else means the machine has none there.
        century: matches!(century, 0x19..=0x21 | 19..=21).then_some(century),
        status_b: read(REG_STATUS_B),
    }
}

/// The RTC's date and time (UTC, as PCs running Linux keep it), or `None`
/// if it reads as garbage.
pub fn read_time() -> Option<DateTime> {
    let mut last = snapshot();
    for _ in 0..10 {
        let next = snapshot();
        if next == last {
            return decode_rtc(&next);
        }
        last = next;
    }
    decode_rtc(&last)
}
