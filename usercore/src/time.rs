//! Calendar time: the CMOS real-time clock's registers decoded (BCD or
//! binary, 12- or 24-hour) and a civil date turned into Unix time. Pure
//! functions: the kernel reads the registers, this turns them into seconds
//! since 1970-01-01 00:00:00 UTC.

/// A broken-down date and time (UTC), as the RTC keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year, e.g. 2026.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59 (60 is accepted: a leap second counts as the next one).
    pub second: u32,
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian;
/// negative before 1970). Howard Hinnant's `days_from_civil`.
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400; // [0, 399]
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (days since 1970-01-01): the inverse of
/// [`days_from_civil`].
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl DateTime {
    /// Seconds since the Unix epoch.
    pub const fn to_unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
    }

    /// The date and time of `secs` seconds since the Unix epoch.
    pub const fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// The day of the week, 0 = Monday .. 6 = Sunday (1970-01-01 was a
    /// Thursday).
    pub const fn weekday(&self) -> u32 {
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as u32
    }

    /// Whether every field is in range (the day within its month).
    pub const fn is_valid(&self) -> bool {
        if self.month < 1 || self.month > 12 || self.day < 1 {
            return false;
        }
        let leap = (self.year % 4 == 0 && self.year % 100 != 0) || self.year % 400 == 0;
        let days_in_month = match self.month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        self.day <= days_in_month && self.hour < 24 && self.minute < 60 && self.second <= 60
    }
}

/// The RTC registers the kernel reads (MC146818 layout): raw values, in
/// the mode status register B says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcRegisters {
    /// Register 0x00.
    pub second: u8,
    /// Register 0x02.
    pub minute: u8,
    /// Register 0x04 (bit 7: PM in 12-hour mode).
    pub hour: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09: the year in the century.
    pub year: u8,
    /// The century register (ACPI FADT's `century`, 0x32 on PCs), if the
    /// machine has one.
    pub century: Option<u8>,
    /// Status register B: bit 2 set = binary (clear = BCD), bit 1 set =
    /// 24-hour (clear = 12-hour).
    pub status_b: u8,
}

/// Status register B: values are binary, not BCD.
pub const RTC_B_BINARY: u8 = 0x04;
/// Status register B: the hour is in 24-hour mode.
pub const RTC_B_24H: u8 = 0x02;

const fn bcd(v: u8) -> u32 {
    ((v >> 4) as u32) * 10 + (v & 0x0f) as u32
}

/// Decodes the RTC's registers into a date: BCD or binary, 12- or 24-hour
/// (12 AM is hour 0, 12 PM hour 12), the century from its register when
/// there is one, else 20xx for years below 70 and 19xx above (the common
/// convention, Linux's `mc146818_get_time` too). `None` for a date out of
/// range (a dead clock battery reads garbage).
pub fn decode_rtc(r: &RtcRegisters) -> Option<DateTime> {
    let binary = r.status_b & RTC_B_BINARY != 0;
    let conv = |v: u8| if binary { v as u32 } else { bcd(v) };
    let pm = r.hour & 0x80 != 0;
    let mut hour = conv(r.hour & 0x7f);
    if r.status_b & RTC_B_24H == 0 {
        // 12-hour: 12 AM is midnight, 12 PM noon.
        if hour == 12 {
            hour = 0;
        }
        if pm {
            hour += 12;
        }
    }
    let year_in_century = conv(r.year) as i64;
    let year = match r.century {
        Some(c) if conv(c) >= 19 && conv(c) <= 99 => conv(c) as i64 * 100 + year_in_century,
        _ if year_in_century < 70 => 2000 + year_in_century,
        _ => 1900 + year_in_century,
    };
    let dt = DateTime {
        year,
        month: conv(r.month),
        day: conv(r.day),
        hour,
        minute: conv(r.minute),
        second: conv(r.second),
    };
    if year_in_century > 99 || !dt.is_valid() {
        return None;
    }
    Some(dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dt(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn known_dates() {
        // Values from `date -u -d ... +%s`.
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).to_unix(), 0);
        assert_eq!(dt(2000, 1, 1, 0, 0, 0).to_unix(), 946_684_800);
        assert_eq!(dt(2000, 2, 29, 12, 0, 0).to_unix(), 951_825_600);
        assert_eq!(dt(2000, 3, 1, 0, 0, 0).to_unix(), 951_868_800);
        assert_eq!(dt(2001, 9, 9, 1, 46, 40).to_unix(), 1_000_000_000);
        assert_eq!(dt(2038, 1, 19, 3, 14, 8).to_unix(), 1 << 31);
        assert_eq!(dt(2026, 11, 30, 17, 18, 5).to_unix(), 1_796_059_085);
        assert_eq!(dt(2100, 3, 1, 0, 0, 0).to_unix(), 4_107_542_400);
        assert_eq!(dt(1969, 12, 31, 23, 59, 59).to_unix(), -1);
        assert_eq!(dt(1900, 3, 1, 0, 0, 0).to_unix(), -2_203_891_200);
    }

    #[test]
    fn weekdays() {
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).weekday(), 3); // Thursday
        assert_eq!(dt(2026, 11, 30, 0, 0, 0).weekday(), 0); // Monday
        assert_eq!(dt(2000, 2, 29, 0, 0, 0).weekday(), 1); // Tuesday
        assert_eq!(dt(1969, 12, 28, 0, 0, 0).weekday(), 6); // Sunday
    }

    #[test]
    fn validity() {
        assert!(dt(2024, 2, 29, 0, 0, 0).is_valid());
        assert!(!dt(2023, 2, 29, 0, 0, 0).is_valid());
        assert!(!dt(2100, 2, 29, 0, 0, 0).is_valid());
        assert!(dt(2000, 2, 29, 0, 0, 0).is_valid());
        assert!(!dt(2024, 4, 31, 0, 0, 0).is_valid());
        assert!(!dt(2024, 13, 1, 0, 0, 0).is_valid());
        assert!(!dt(2024, 1, 0, 0, 0, 0).is_valid());
        assert!(!dt(2024, 1, 1, 24, 0, 0).is_valid());
    }

    fn regs(second: u8, minute: u8, hour: u8, day: u8, month: u8, year: u8) -> RtcRegisters {
        RtcRegisters {
            second,
            minute,
            hour,
            day,
            month,
            year,
            century: None,
            status_b: RTC_B_24H,
        }
    }

    #[test]
    fn rtc_bcd_24h() {
        let r = regs(0x05, 0x18, 0x17, 0x30, 0x11, 0x26);
        assert_eq!(decode_rtc(&r), Some(dt(2026, 11, 30, 17, 18, 5)));
    }

    #[test]
    fn rtc_binary_and_century() {
        let mut r = regs(5, 18, 17, 30, 11, 26);
        r.status_b = RTC_B_24H | RTC_B_BINARY;
        r.century = Some(20);
        assert_eq!(decode_rtc(&r), Some(dt(2026, 11, 30, 17, 18, 5)));
        r.century = Some(21);
        assert_eq!(decode_rtc(&r).unwrap().year, 2126);
        // BCD century register.
        let mut r = regs(0, 0, 0, 1, 1, 0x99);
        r.century = Some(0x19);
        assert_eq!(decode_rtc(&r).unwrap().year, 1999);
        // No century: the 70 pivot.
        assert_eq!(decode_rtc(&regs(0, 0, 0, 1, 1, 0x70)).unwrap().year, 1970);
        assert_eq!(decode_rtc(&regs(0, 0, 0, 1, 1, 0x69)).unwrap().year, 2069);
        // A century register holding garbage is ignored.
        let mut r = regs(0, 0, 0, 1, 1, 0x26);
        r.century = Some(0);
        assert_eq!(decode_rtc(&r).unwrap().year, 2026);
    }

    #[test]
    fn rtc_12_hour() {
        let mut r = regs(0, 0, 0x12, 1, 1, 0x26);
        r.status_b = 0; // BCD, 12-hour
        assert_eq!(decode_rtc(&r).unwrap().hour, 0); // 12 AM
        r.hour = 0x80 | 0x12;
        assert_eq!(decode_rtc(&r).unwrap().hour, 12); // 12 PM
        r.hour = 0x80 | 0x05;
        assert_eq!(decode_rtc(&r).unwrap().hour, 17); // 5 PM
        r.hour = 0x11;
        assert_eq!(decode_rtc(&r).unwrap().hour, 11); // 11 AM
        r.status_b = RTC_B_BINARY;
        r.hour = 0x80 | 11;
        assert_eq!(decode_rtc(&r).unwrap().hour, 23); // 11 PM, binary
    }

    #[test]
    fn rtc_garbage_refused() {
        assert_eq!(decode_rtc(&regs(0, 0, 0, 0x32, 1, 0x26)), None);
        assert_eq!(decode_rtc(&regs(0, 0, 0, 1, 0x13, 0x26)), None);
        assert_eq!(decode_rtc(&regs(0x60 + 1, 0, 0, 1, 1, 0x26)), None);
        assert_eq!(decode_rtc(&regs(0, 0, 0x25, 1, 1, 0x26)), None);
        assert_eq!(decode_rtc(&regs(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), None);
    }

    proptest! {
        #![proptest_config(crate::proptest_config(2000))]
        #[test]
        fn unix_round_trips(secs in -100_000_000_000i64..100_000_000_000) {
            let d = DateTime::from_unix(secs);
            prop_assert!(d.is_valid());
            prop_assert_eq!(d.to_unix(), secs);
        }

        #[test]
        fn days_are_consecutive(day in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(day);
            let (y2, m2, d2) = civil_from_days(day + 1);
            prop_assert_eq!(days_from_civil(y, m, d), day);
            // The next day is d+1 in the same month, or the 1st of the next.
            prop_assert!((y2, m2, d2) == (y, m, d + 1)
                || (d2 == 1 && ((m2 == m + 1 && y2 == y) || (m == 12 && m2 == 1 && y2 == y + 1))));
        }
    }
}
