//! `swapon` and `swapoff`: compressed RAM as swap, the devices listed as
//! Linux's `/proc/swaps` (`swapon -s`) or util-linux's `swapon --show`,
//! and `swapoff` bringing every page back into RAM first.
//!
//! Linux makes zram swap in three steps (`zramctl --size 256M
//! /dev/zram0`, `mkswap /dev/zram0`, `swapon /dev/zram0`); here
//! `swapon zram 256M` does all three.

use core::fmt::Write;

use super::{Args, Result};
use crate::mm::layout::PAGE_SIZE;
use crate::mm::swap::{self, SwapError};
use crate::mm::swapoff;

const KB_PER_PAGE: u64 = PAGE_SIZE / 1024;

/// The priority Linux gives the first area activated without one.
const PRIORITY: i32 = crate::procfs::mem::SWAP_PRIORITY;

/// The active swap device's path (`/dev/zram0`, `/dev/vda`); empty
/// without swap.
pub fn device_path() -> super::StackText<32> {
    swap::with_name(|name| match name {
        Some(name) => super::StackText::format(format_args!("/dev/{name}")),
        None => super::StackText::format(format_args!("")),
    })
}

/// `256M`, `1G`, `65536K`, `4096` (bytes), as `zramctl --size` takes
/// them (binary multiples; `KiB`/`MiB`/`GiB` too). In bytes.
pub fn parse_size(word: &str) -> Option<u64> {
    let lower_end = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[lower_end.len()..];
    let shift = match suffix {
        "" | "B" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        _ => return None,
    };
    let n = super::parse_number(lower_end)?;
    n.checked_mul(1u64 << shift)
}

/// util-linux's short sizes: `256M`, `1.5G`, `0B`.
fn human(bytes: u64) -> super::StackText<16> {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut unit = 0;
    let mut scale = 1u64;
    while bytes >= scale * 1024 && unit < UNITS.len() - 1 {
        scale *= 1024;
        unit += 1;
    }
    if bytes.is_multiple_of(scale) || unit == 0 {
        super::StackText::format(format_args!("{}{}", bytes / scale, UNITS[unit]))
    } else {
        super::StackText::format(format_args!(
            "{:.1}{}",
            bytes as f64 / scale as f64,
            UNITS[unit]
        ))
    }
}

/// `/proc/swaps` (`swapon -s`).
pub fn write_proc_swaps(out: &mut dyn Write) -> Result {
    crate::procfs::mem::swaps(out).map_err(|_| super::ShellError::Output)
}

/// `swapon --show`: NAME TYPE SIZE USED PRIO, sizes made short.
fn write_show(out: &mut dyn Write) -> Result {
    if !swap::enabled() {
        // util-linux prints nothing at all without swap.
        return Ok(());
    }
    let (total, used, _) = swap::usage();
    writeln!(out, "NAME       TYPE        SIZE   USED PRIO")?;
    let name = device_path();
    writeln!(
        out,
        "{:<10} {:<9} {:>6} {:>6} {:>4}",
        name.as_str(),
        "partition",
        human(total * PAGE_SIZE),
        human(used * PAGE_SIZE),
        PRIORITY
    )?;
    Ok(())
}

pub fn swapon(args: &Args, out: &mut dyn Write) -> Result {
    match args.get(0) {
        None | Some("--show") => {
            args.count(0, 1)?;
            write_show(out)
        }
        Some("-s") | Some("--summary") => {
            args.count(1, 1)?;
            write_proc_swaps(out)
        }
        Some("zram") => {
            args.count(2, 2)?;
            let word = args.get(1).unwrap_or("");
            let bytes = parse_size(word).ok_or_else(|| {
                args.usage_fmt(format_args!("`{word}` is not a size (e.g. 256M, 1G)"))
            })?;
            let pages = bytes / PAGE_SIZE;
            if pages == 0 {
                return Err(args.usage_fmt(format_args!(
                    "{word} is less than a page ({PAGE_SIZE} bytes)"
                )));
            }
            if pages > vmcore::swap::MAX_SLOTS {
                return Err(
                    args.usage_fmt(format_args!("{word} is more than a swap entry can address"))
                );
            }
            swap::swapon_zram(pages).map_err(|e| match e {
                SwapError::Busy => args.failed_fmt(format_args!(
                    "{} is already swap (swapoff first)",
                    device_path()
                )),
                e => args.failed_fmt(format_args!("{e}")),
            })?;
            writeln!(
                out,
                "swapon: {}: {} of compressed RAM, {} kB",
                device_path(),
                human(pages * PAGE_SIZE),
                pages * KB_PER_PAGE
            )?;
            Ok(())
        }
        Some(w) => Err(args.usage_fmt(format_args!("unknown device or option `{w}`"))),
    }
}

pub fn swapoff(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 1)?;
    if let Some(w) = args.get(0) {
        let path = device_path();
        let ours = w == "-a"
            || (!path.as_str().is_empty()
                && (w == path.as_str() || Some(w) == path.as_str().strip_prefix("/dev/")));
        if !ours {
            return Err(args.usage_fmt(format_args!("`{w}` is not a swap device")));
        }
    }
    let done = swapoff::swapoff_all(crate::proc::sched::yield_now)
        .map_err(|e| args.failed_fmt(format_args!("{e}")))?;
    writeln!(
        out,
        "swapoff: {} pages ({} kB) brought back into RAM from {} address spaces",
        done.pages_in,
        done.pages_in * KB_PER_PAGE,
        done.spaces
    )?;
    Ok(())
}
