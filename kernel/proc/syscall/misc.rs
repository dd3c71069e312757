//! The rest: uname, arch_prctl.

use super::*;
use crate::arch::uapi::{Utsname, UTS_FIELD};
use crate::mm::layout::USER_END;
use crate::mm::uaccess::write_user;
use crate::proc::sched;

/// `s` NUL-padded to a `utsname` field.
fn uts_field(s: &str) -> [u8; UTS_FIELD] {
    let mut field = [0u8; UTS_FIELD];
    field[..s.len()].copy_from_slice(s.as_bytes());
    field
}

pub(super) fn uname(buf: u64) -> SysResult {
    let uts = Utsname {
        sysname: uts_field("Ferrite"),
        nodename: uts_field("ferrite"),
        release: uts_field(crate::VERSION),
        version: uts_field("Ferrite teaching kernel"),
        machine: uts_field("x86_64"),
        domainname: uts_field("(none)"),
    };
    write_user(buf, &uts)?;
    Ok(0)
}

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

pub(super) fn arch_prctl(code: u64, addr: u64) -> SysResult {
    match code {
        ARCH_SET_FS => {
            if addr >= USER_END {
                return Err(Errno::EPERM);
            }
            sched::with_current(|p| p.fs_base = addr);
            x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(addr));
            Ok(0)
        }
        ARCH_GET_FS => {
            let fs: u64 = sched::with_current(|p| p.fs_base);
            write_user(addr, &fs)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
