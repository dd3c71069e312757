//! `date`: the wall clock (the CMOS RTC read at boot, carried on by the
//! TSC), in `date -u`'s format, and the time since boot.

use core::fmt::Write;

use super::{Args, Result};
use usercore::time::DateTime;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn date(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let secs = crate::time::realtime_ns().div_euclid(1_000_000_000);
    let d = DateTime::from_unix(secs);
    writeln!(
        out,
        "{} {} {:2} {:02}:{:02}:{:02} UTC {}",
        DAYS[d.weekday() as usize],
        MONTHS[(d.month - 1) as usize],
        d.day,
        d.hour,
        d.minute,
        d.second,
        d.year
    )?;
    let up = crate::time::uptime_ns() / 1_000_000;
    writeln!(out, "up {}.{:03} s", up / 1000, up % 1000)?;
    Ok(())
}
