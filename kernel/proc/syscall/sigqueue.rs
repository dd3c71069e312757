//! Queued signals and waiting for them: rt_sigqueueinfo,
//! rt_tgsigqueueinfo (a signal with the caller's own `siginfo`, queued if
//! it is real-time: EAGAIN when the target's queue is full) and
//! rt_sigtimedwait (musl's `sigwaitinfo`/`sigtimedwait`: take a pending
//! signal of a set, waiting for one until a timeout: EAGAIN, or another
//! signal's handler: EINTR). The queue itself is `proc::signal`'s.

use usercore::signal::{self as abi, code};

use super::*;
use crate::arch::uapi::Timespec;
use crate::mm::uaccess::{copy_from_user, copy_to_user, read_user};
use crate::proc::sched::{self, Pid};
use crate::proc::signal::{self, SendError};

const NS_PER_SEC: u64 = 1_000_000_000;

/// Reads a user `siginfo_t` for signal `sig`.
fn read_info(sig: u64, uinfo: u64) -> Result<abi::SigInfo, Errno> {
    let mut b = [0u8; abi::SIGINFO_SIZE];
    copy_from_user(&mut b, uinfo)?;
    Ok(abi::info_from_user(sig as u8, &b))
}

fn queue(pid: Pid, sig: u64, info: abi::SigInfo) -> SysResult {
    let exists = sched::with_process(pid, |p| p.pid == 0 || p.is_kernel_thread());
    match exists {
        None => return Err(Errno::ESRCH),
        Some(true) => return Err(Errno::EPERM),
        Some(false) => {}
    }
    if sig == 0 {
        return Ok(0);
    }
    if !abi::valid(sig) {
        return Err(Errno::EINVAL);
    }
    match signal::send_info(pid, sig as u8, info) {
        Ok(()) => Ok(0),
        Err(SendError::NoProcess) => Err(Errno::ESRCH),
        Err(SendError::NotPermitted) => Err(Errno::EPERM),
        Err(SendError::QueueFull) => Err(Errno::EAGAIN),
    }
}

/// Only the kernel may claim `SI_USER`-like codes (>= 0) or `SI_TKILL`
/// for another process (Linux: EPERM).
fn check_code(info: &abi::SigInfo, target: i64) -> Result<(), Errno> {
    let me = sched::current_pid() as i64;
    if (info.code >= 0 || info.code == code::SI_TKILL) && target != me {
        return Err(Errno::EPERM);
    }
    Ok(())
}

pub(super) fn rt_sigqueueinfo(tgid: i64, sig: u64, uinfo: u64) -> SysResult {
    let info = read_info(sig, uinfo)?;
    check_code(&info, tgid)?;
    if tgid <= 0 || tgid > u32::MAX as i64 {
        return Err(Errno::ESRCH);
    }
    queue(tgid as Pid, sig, info)
}

pub(super) fn rt_tgsigqueueinfo(tgid: i64, tid: i64, sig: u64, uinfo: u64) -> SysResult {
    let info = read_info(sig, uinfo)?;
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    check_code(&info, tid)?;
    if tid > u32::MAX as i64
        || tgid > u32::MAX as i64
        || !sched::thread::thread_in_group(tid as Pid, tgid as Pid)
    {
        return Err(Errno::ESRCH);
    }
    queue(tid as Pid, sig, info)
}

fn interrupted() -> bool {
    signal::interrupted() || sched::kill_pending()
}

pub(super) fn rt_sigtimedwait(uset: u64, uinfo: u64, uts: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let set: u64 = read_user(uset)?;
    let set = set & !abi::UNBLOCKABLE;
    let timeout = if uts == 0 {
        None
    } else {
        let t: Timespec = read_user(uts)?;
        if t.tv_sec < 0 || !(0..NS_PER_SEC as i64).contains(&t.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(
            (t.tv_sec as u64)
                .saturating_mul(NS_PER_SEC)
                .saturating_add(t.tv_nsec as u64),
        )
    };
    let deadline = timeout.map_or(u64::MAX, |ns| crate::time::uptime_ns().saturating_add(ns));
    loop {
        if let Some((sig, info)) = sched::with_current(|p| p.sig.take_from(set)) {
            if uinfo != 0 {
                // Taken even if the copy fails, as on Linux.
                copy_to_user(uinfo, &info.to_bytes())?;
            }
            return Ok(sig as u64);
        }
        if crate::time::uptime_ns() >= deadline {
            return Err(Errno::EAGAIN);
        }
        if interrupted() {
            return Err(Errno::EINTR);
        }
        // The set's signals are unblocked while it waits, so they end the
        // sleep as any deliverable one does; taken above, not delivered.
        sched::with_current(|p| p.sig.begin_wait(set));
        sched::sleep_until_ns_unless(deadline, interrupted);
        sched::with_current(|p| p.sig.end_wait());
    }
}
