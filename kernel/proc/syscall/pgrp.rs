//! Process groups and sessions: setpgid, getpgid, getpgrp, setsid,
//! getsid (Linux's rules, one thread per process). The ids are fields of
//! every process (`sched::Process::pgid`, `sid`), inherited over fork; a
//! process the kernel starts leads its own group and session. `kill(0)`,
//! `kill(-pgid)` (`signal`) and `wait4(0 / -pgid)` (`process`) use them.
//! Not modelled: controlling terminals (no `tcsetpgrp`), orphaned groups,
//! and setpgid's EACCES for a child that has called execve.

use super::*;
use crate::proc::sched::{self, Pid};

fn pid_arg(pid: u64) -> Result<Pid, Errno> {
    match pid as i32 {
        0 => Ok(sched::current_pid()),
        p if p > 0 => Ok(p as Pid),
        _ => Err(Errno::ESRCH),
    }
}

/// `(pgid, sid)` of a user process `pid` (a zombie included).
fn ids(pid: Pid) -> Result<(Pid, Pid), Errno> {
    sched::with_process(pid, |p| (p.pgid, p.sid)).ok_or(Errno::ESRCH)
}

pub(super) fn getpgid(pid: u64) -> SysResult {
    Ok(ids(pid_arg(pid)?)?.0 as u64)
}

pub(super) fn getpgrp() -> SysResult {
    getpgid(0)
}

pub(super) fn getsid(pid: u64) -> SysResult {
    Ok(ids(pid_arg(pid)?)?.1 as u64)
}

pub(super) fn setsid() -> SysResult {
    let me = sched::current_pid();
    // A group leader (or a process whose pid names a group) cannot start
    // a session: its group would be split.
    if sched::find_pid(|p| p.pgid == me).is_some() {
        return Err(Errno::EPERM);
    }
    sched::with_current(|p| {
        p.pgid = me;
        p.sid = me;
    });
    Ok(me as u64)
}

pub(super) fn setpgid(pid: u64, pgid: u64) -> SysResult {
    let me = sched::current_pid();
    let pid = match pid as i32 {
        0 => me,
        p if p > 0 => p as Pid,
        _ => return Err(Errno::ESRCH),
    };
    let pgid = match pgid as i32 {
        0 => pid,
        g if g > 0 => g as Pid,
        _ => return Err(Errno::EINVAL),
    };
    // The caller or a child of it (ESRCH).
    let (parent, sid, dying, kthread) =
        sched::with_process(pid, |p| (p.ppid, p.sid, p.dying(), p.is_kernel_thread()))
            .ok_or(Errno::ESRCH)?;
    if kthread || (pid != me && (parent != me || dying)) {
        return Err(Errno::ESRCH);
    }
    let my_sid = ids(me)?.1;
    // A child in another session, or a session leader.
    if sid != my_sid || sid == pid {
        return Err(Errno::EPERM);
    }
    // Joining a group: it must exist in the same session.
    if pgid != pid
        && sched::find_pid(|p| p.pgid == pgid && p.sid == my_sid && !p.is_kernel_thread()).is_none()
    {
        return Err(Errno::EPERM);
    }
    sched::with_process(pid, |p| p.pgid = pgid);
    Ok(0)
}
