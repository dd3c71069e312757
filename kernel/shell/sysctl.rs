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
use crate::procfs::sysvm::{SetError, Tunable, TUNABLES};

fn find(name: &str) -> Option<&'static Tunable> {
    // `vm.overcommit_memory`, or `vm/overcommit_memory` (the /proc/sys
    // path) as in Linux.
    let rest = name
        .strip_prefix("vm.")
        .or_else(|| name.strip_prefix("vm/"))?;
    TUNABLES.iter().find(|t| t.name == rest)
}

fn show(out: &mut dyn Write, t: &Tunable) -> Result {
    writeln!(out, "vm.{} = {}", t.name, (t.get)())?;
    Ok(())
}

pub fn command(args: &Args, out: &mut dyn Write) -> Result {
    if args.is_empty() {
        return Err(args.usage_fmt(format_args!("missing argument")));
    }
    if args.get(0) == Some("-a") {
        args.count(1, 1)?;
        for t in TUNABLES {
            show(out, t)?;
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
                args.failed_fmt(format_args!(
                    "setting key \"vm.{}\": Invalid argument",
                    s.name
                ))
            })?;
            s.set(v).map_err(|e| match e {
                SetError::Invalid => args.failed_fmt(format_args!(
                    "setting key \"vm.{}\": Invalid argument",
                    s.name
                )),
                SetError::ReadOnly => args.failed_fmt(format_args!(
                    "setting key \"vm.{}\": fixed in Ferrite",
                    s.name
                )),
            })?;
        }
        show(out, s)?;
    }
    Ok(())
}
