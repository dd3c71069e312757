//! The rest: signals (accepted, never delivered), uname, arch_prctl,
//! clock_gettime.

use super::*;
use crate::mm::layout::USER_END;
use crate::mm::uaccess::copy_to_user;
use crate::proc::sched;

pub(super) fn sigaction(oldact: u64) -> Result {
    // Signal handlers are accepted and never called: faults kill.
    if oldact != 0 {
        copy_to_user(oldact, &[0u8; 32])?;
    }
    Ok(0)
}

pub(super) fn sigprocmask(oldset: u64, size: u64) -> Result {
    if oldset != 0 {
        let zeros = [0u8; 128];
        copy_to_user(oldset, &zeros[..size.min(128) as usize])?;
    }
    Ok(0)
}

pub(super) fn uname(buf: u64) -> Result {
    let mut uts = [0u8; 65 * 6];
    let fields = [
        "Ferrite",
        "ferrite",
        crate::VERSION,
        "Ferrite teaching kernel",
        "x86_64",
        "(none)",
    ];
    for (i, field) in fields.iter().enumerate() {
        uts[i * 65..i * 65 + field.len()].copy_from_slice(field.as_bytes());
    }
    copy_to_user(buf, &uts)?;
    Ok(0)
}

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

pub(super) fn arch_prctl(code: u64, addr: u64) -> Result {
    match code {
        ARCH_SET_FS => {
            if addr >= USER_END {
                return Err(EPERM);
            }
            sched::with_current(|p| p.fs_base = addr);
            x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(addr));
            Ok(0)
        }
        ARCH_GET_FS => {
            let fs = sched::with_current(|p| p.fs_base);
            copy_to_user(addr, &fs.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

pub(super) fn clock_gettime(ts: u64) -> Result {
    let ns = crate::time::uptime_ns();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    out[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    copy_to_user(ts, &out)?;
    Ok(0)
}
