//! Signals: rt_sigaction, rt_sigprocmask, rt_sigreturn, rt_sigpending,
//! rt_sigsuspend, pause, sigaltstack, kill (of a process, a group, or
//! all), tkill, tgkill. The state and
//! delivery are `proc::signal`'s; these calls copy the user's structures
//! in and out (outside the scheduler lock) and apply Linux's rules.

use usercore::signal::{self as abi, num::*, StackT};

use super::*;
use crate::arch::trap::TrapFrame;
use crate::arch::uapi::Sigaction;
use crate::mm::uaccess::{copy_from_user, copy_to_user, read_user, write_user};
use crate::proc::sched::{self, Block, Pid};
use crate::proc::signal::{self, Action, SendError};

/// The only `sigsetsize` the rt_ calls take: 64 signals, 8 bytes.
const SIGSET_SIZE: u64 = 8;

pub(super) fn rt_sigaction(sig: u64, act: u64, oldact: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE || !abi::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let sig = sig as u8;
    let new = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let a: Sigaction = read_user(act)?;
        Some(Action {
            handler: a.sa_handler,
            flags: a.sa_flags,
            restorer: a.sa_restorer,
            mask: a.sa_mask,
        })
    } else {
        None
    };
    // The old action is written after the new one is set (Linux order); a
    // bad `oldact` still fails the call with EFAULT.
    let old = sched::with_current(|p| match new {
        Some(new) => p.sig.set_action(sig, new),
        None => p.sig.action(sig),
    });
    // The thread group shares its actions (`sched::thread`).
    if let Some(new) = new {
        sched::thread::for_each_other_thread(|p| {
            p.sig.set_action(sig, new);
        });
    }
    if oldact != 0 {
        let out = Sigaction {
            sa_handler: old.handler,
            sa_flags: old.flags,
            sa_restorer: old.restorer,
            sa_mask: old.mask,
        };
        write_user(oldact, &out)?;
    }
    Ok(0)
}

pub(super) fn rt_sigprocmask(how: u64, set: u64, oldset: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new: Option<u64> = if set != 0 {
        Some(read_user(set)?)
    } else {
        None
    };
    let old = sched::with_current(|p| p.sig.blocked);
    if let Some(new) = new {
        let blocked = abi::apply_how(old, how, new).ok_or(Errno::EINVAL)?;
        sched::with_current(|p| p.sig.blocked = blocked);
    }
    if oldset != 0 {
        write_user(oldset, &old)?;
    }
    Ok(0)
}

pub(super) fn rt_sigpending(set: u64, size: u64) -> SysResult {
    if size > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = sched::with_current(|p| p.sig.pending() & p.sig.blocked);
    copy_to_user(set, &pending.to_le_bytes()[..size as usize])?;
    Ok(0)
}

/// Sleeps until a signal is to be taken (pause, rt_sigsuspend).
fn wait_for_signal() {
    while !signal::interrupted() {
        sched::block_unless(Block::Sleep(u64::MAX), signal::interrupted);
    }
}

pub(super) fn pause() -> SysResult {
    wait_for_signal();
    Err(Errno::ERESTARTNOHAND)
}

pub(super) fn rt_sigsuspend(mask: u64, size: u64) -> SysResult {
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = read_user(mask)?;
    sched::with_current(|p| p.sig.suspend_mask(mask));
    wait_for_signal();
    Err(Errno::ERESTARTNOHAND)
}

pub(super) fn sigaltstack(frame: &TrapFrame, ss: u64, old_ss: u64) -> SysResult {
    let new = if ss != 0 {
        let mut b = [0u8; abi::STACK_T_SIZE];
        copy_from_user(&mut b, ss)?;
        Some(StackT::from_bytes(&b))
    } else {
        None
    };
    let current = sched::with_current(|p| p.sig.altstack());
    if let Some(new) = new {
        if current.contains(frame.rsp) {
            return Err(Errno::EPERM);
        }
        let s = abi::new_altstack(&new).map_err(|e| {
            if e == 12 {
                Errno::ENOMEM
            } else {
                Errno::EINVAL
            }
        })?;
        sched::with_current(|p| p.sig.set_altstack(s));
    }
    if old_ss != 0 {
        let view = abi::altstack_view(&current, frame.rsp);
        copy_to_user(old_ss, &view.to_bytes())?;
    }
    Ok(0)
}

pub(super) fn rt_sigreturn(frame: &mut TrapFrame) -> SysResult {
    Ok(signal::sigreturn(frame))
}

fn send(pid: Pid, sig: u64, code: i32) -> SysResult {
    send_as(pid, sig, code, false)
}

/// [`send`] to process `pid` (one of its threads takes it), or to thread
/// `pid` alone (`to_thread`: tgkill, tkill).
fn send_as(pid: Pid, sig: u64, code: i32, to_thread: bool) -> SysResult {
    let me = sched::with_current(|p| p.tgid());
    let result = if sig == 0 {
        // Only "does it exist".
        match sched::with_process(pid, |p| p.pid == 0 || p.is_kernel_thread()) {
            None => Err(SendError::NoProcess),
            Some(true) => Err(SendError::NotPermitted),
            Some(false) => Ok(()),
        }
    } else if to_thread {
        signal::send_info_thread(pid, sig as u8, signal::user_info(sig as u8, me, code))
    } else {
        signal::send_info(pid, sig as u8, signal::user_info(sig as u8, me, code))
    };
    match result {
        Ok(()) => Ok(0),
        Err(SendError::NoProcess) => Err(Errno::ESRCH),
        Err(SendError::NotPermitted) => Err(Errno::EPERM),
        Err(SendError::QueueFull) => Err(Errno::EAGAIN),
    }
}

/// `kill(0)`, `kill(-pgid)`: every user process in group `pgid` (zombies
/// take it and drop it), the caller last (a SIGKILL to itself does not
/// return). ESRCH if the group is empty; else the first error if none
/// took it (Linux's `__kill_pgrp_info`).
fn kill_group(pgid: Pid, sig: u64) -> SysResult {
    let me = sched::with_current(|p| p.tgid());
    let mut after = 0;
    let (mut found, mut ok, mut err) = (false, false, None);
    let mut include_me = false;
    while let Some((pid, member)) = sched::with_next_process(after, |p| {
        // Processes: their threads are not members of their own.
        (
            p.pid,
            p.pid != 0 && !p.is_kernel_thread() && p.pgid == pgid && p.is_group_leader(),
        )
    }) {
        after = pid;
        if !member {
            continue;
        }
        found = true;
        if pid == me {
            include_me = true;
            continue;
        }
        match send(pid, sig, abi::code::SI_USER) {
            Ok(_) => ok = true,
            Err(e) => err = err.or(Some(e)),
        }
    }
    if include_me {
        match send(me, sig, abi::code::SI_USER) {
            Ok(_) => ok = true,
            Err(e) => err = err.or(Some(e)),
        }
    }
    match (found, ok, err) {
        (false, _, _) => Err(Errno::ESRCH),
        (true, true, _) | (true, false, None) => Ok(0),
        (true, false, Some(e)) => Err(e),
    }
}

pub(super) fn kill(pid: i64, sig: u64) -> SysResult {
    if sig != 0 && !abi::valid(sig) {
        return Err(Errno::EINVAL);
    }
    let me = sched::with_current(|p| p.tgid());
    match pid {
        0 => kill_group(sched::with_current(|p| p.pgid), sig),
        p if p > 0 && p <= u32::MAX as i64 => send(p as Pid, sig, abi::code::SI_USER),
        p if p < -1 && -p <= u32::MAX as i64 => kill_group((-p) as Pid, sig),
        -1 => {
            // Every process but the caller and the kernel's (Linux: but
            // init and the caller).
            let mut after = 0;
            let mut any = false;
            while let Some((pid, user)) = sched::with_next_process(after, |p| {
                (
                    p.pid,
                    p.pid != 0 && !p.is_kernel_thread() && !p.dying() && p.is_group_leader(),
                )
            }) {
                after = pid;
                if user && pid != me {
                    any = true;
                    let _ = send(pid, sig, abi::code::SI_USER);
                }
            }
            if any {
                Ok(0)
            } else {
                Err(Errno::ESRCH)
            }
        }
        _ => Err(Errno::ESRCH),
    }
}

pub(super) fn tkill(tid: i64, sig: u64) -> SysResult {
    if tid <= 0 || (sig != 0 && !abi::valid(sig)) {
        return Err(Errno::EINVAL);
    }
    if tid > u32::MAX as i64 {
        return Err(Errno::ESRCH);
    }
    tgkill_checked(0, tid as Pid, sig)
}

pub(super) fn tgkill(tgid: i64, tid: i64, sig: u64) -> SysResult {
    if tgid <= 0 || tid <= 0 || (sig != 0 && !abi::valid(sig)) {
        return Err(Errno::EINVAL);
    }
    if tid > u32::MAX as i64 || tgid > u32::MAX as i64 {
        return Err(Errno::ESRCH);
    }
    tgkill_checked(tgid as Pid, tid as Pid, sig)
}

/// Thread `tid` of group `tgid` (0: of any group) takes `sig`.
fn tgkill_checked(tgid: Pid, tid: Pid, sig: u64) -> SysResult {
    if !sched::thread::thread_in_group(tid, tgid) {
        return Err(Errno::ESRCH);
    }
    send_as(tid, sig, abi::code::SI_TKILL, true)
}
