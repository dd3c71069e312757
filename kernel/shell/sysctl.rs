//! `sysctl`: read and set kernel tunables by their Linux names
//! (`/proc/sys/vm/...`), with Linux's output (`vm.overcommit_memory = 0`).
//!
//! ```text
//! sysctl -a                         every tunable Ferrite has
//! sysctl vm.overcommit_ratio        one
//! sysctl vm.overcommit_memory=2     set one (also: sysctl -w KEY=VALUE)
//! ```

use core::fmt::Write;

use super::{parse_number, Args, Result};
use crate::mm::commit;

/// Why a value was not set.
enum SetError {
    /// Out of the tunable's range (Linux: `EINVAL`).
    Invalid,
    /// Fixed in Ferrite.
    ReadOnly,
}

/// One tunable: its name and how to read and set it.
struct Sysctl {
    name: &'static str,
    get: fn() -> u64,
    set: fn(u64) -> core::result::Result<(), SetError>,
}

fn read_only(_: u64) -> core::result::Result<(), SetError> {
    Err(SetError::ReadOnly)
}

/// Every tunable, sorted by name (as `sysctl -a` lists them).
static SYSCTLS: &[Sysctl] = &[
    Sysctl {
        name: "vm.max_map_count",
        get: || vmcore::vma::MAX_MAP_COUNT as u64,
        set: read_only,
    },
    Sysctl {
        // The min watermark in KiB, computed at boot (read-only here).
        name: "vm.min_free_kbytes",
        get: || crate::mm::kswapd::watermarks().min * 4,
        set: read_only,
    },
    Sysctl {
        name: "vm.overcommit_kbytes",
        get: || commit::policy().kbytes,
        set: |v| {
            commit::set_kbytes(v);
            Ok(())
        },
    },
    Sysctl {
        name: "vm.overcommit_memory",
        get: || commit::policy().mode.value(),
        set: |v| commit::set_mode(v).ok_or(SetError::Invalid),
    },
    Sysctl {
        name: "vm.overcommit_ratio",
        get: || commit::policy().ratio,
        set: |v| commit::set_ratio(v).ok_or(SetError::Invalid),
    },
    Sysctl {
        name: "vm.swappiness",
        get: || crate::mm::reclaim::swappiness() as u64,
        set: |v| match u32::try_from(v) {
            Ok(v) if v <= 200 => {
                crate::mm::reclaim::set_swappiness(v);
                Ok(())
            }
            _ => Err(SetError::Invalid),
        },
    },
    Sysctl {
        name: "vm.watermark_scale_factor",
        get: || 10,
        set: read_only,
    },
];

fn find(name: &str) -> Option<&'static Sysctl> {
    // `vm/overcommit_memory` (the /proc/sys path) works too, as in Linux.
    SYSCTLS.iter().find(|s| {
        s.name.len() == name.len()
            && s.name
                .bytes()
                .zip(name.bytes())
                .all(|(a, b)| a == b || (a == b'.' && b == b'/'))
    })
}

fn show(out: &mut dyn Write, s: &Sysctl) -> Result {
    writeln!(out, "{} = {}", s.name, (s.get)())?;
    Ok(())
}

pub fn command(args: &Args, out: &mut dyn Write) -> Result {
    if args.is_empty() {
        return Err(args.usage_fmt(format_args!("missing argument")));
    }
    if args.get(0) == Some("-a") {
        args.count(1, 1)?;
        for s in SYSCTLS {
            show(out, s)?;
        }
        return Ok(());
    }
    // `-w` only says that what follows are assignments.
    let words = match args.get(0) {
        Some("-w") => &args.words[1..],
        _ => args.words,
    };
    for word in words {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (*word, None),
        };
        let s = find(name).ok_or_else(|| {
            args.failed_fmt(format_args!("unknown key `{name}` (sysctl -a lists them)"))
        })?;
        if let Some(value) = value {
            let v = parse_number(value).ok_or_else(|| {
                args.failed_fmt(format_args!("setting key \"{}\": Invalid argument", s.name))
            })?;
            (s.set)(v).map_err(|e| match e {
                SetError::Invalid => {
                    args.failed_fmt(format_args!("setting key \"{}\": Invalid argument", s.name))
                }
                SetError::ReadOnly => {
                    args.failed_fmt(format_args!("setting key \"{}\": fixed in Ferrite", s.name))
                }
            })?;
        }
        show(out, s)?;
    }
    Ok(())
}
