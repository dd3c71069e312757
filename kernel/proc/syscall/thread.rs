//! Thread calls: `clone` with `CLONE_THREAD`, `set_tid_address`, `gettid`,
//! `getpid` (the thread group's id), `exit` (one thread); the thread
//! group itself is `sched::thread`.

use super::*;
use crate::mm::uaccess::write_user;
use crate::proc::sched::thread;

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_THREAD: u64 = 0x1_0000;
pub const CLONE_SYSVSEM: u64 = 0x4_0000;
pub const CLONE_SETTLS: u64 = 0x8_0000;
pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
pub const CLONE_DETACHED: u64 = 0x40_0000;
pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;

/// What a thread must share (Linux requires SIGHAND for THREAD and VM for
/// SIGHAND); descriptors and the file-system context are shared by every
/// thread here, so a thread that asks for its own is refused.
const THREAD_NEEDS: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
/// The flags a thread may add.
const THREAD_MAY: u64 = CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID;

pub(super) fn getpid() -> SysResult {
    Ok(sched::with_current(|p| p.tgid()) as u64)
}

pub(super) fn gettid() -> SysResult {
    Ok(sched::current_pid() as u64)
}

pub(super) fn set_tid_address(addr: u64) -> SysResult {
    sched::with_current(|p| p.thread.clear_child_tid = addr);
    gettid()
}

/// `exit`: this thread alone (`exit_group` ends them all).
pub(super) fn exit_thread(code: u64) -> SysResult {
    thread::exit_thread_current(sched::exit_status(code as i32))
}

/// `clone(flags, stack, parent_tid, child_tid, tls)` for a new thread
/// (`flags` has `CLONE_THREAD`); the child starts at the same place with
/// RAX = 0 on `stack`.
pub(super) fn clone_thread(
    frame: &TrapFrame,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult {
    // The low byte is the exit signal, which a thread ignores (Linux).
    let flags_hi = flags & !0xff;
    if flags_hi & THREAD_NEEDS != THREAD_NEEDS || flags_hi & !(THREAD_NEEDS | THREAD_MAY) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SETTLS != 0 && tls >= crate::mm::layout::USER_END {
        return Err(Errno::EPERM);
    }
    let mut child = frame.clone();
    child.rax = 0;
    if stack != 0 {
        child.rsp = stack;
    }
    let fs_base = if flags & CLONE_SETTLS != 0 {
        tls
    } else {
        sched::with_current(|p| p.fs_base)
    };
    let clear = if flags & CLONE_CHILD_CLEARTID != 0 {
        child_tid
    } else {
        0
    };
    // Written before the thread can run, as Linux does; a bad pointer
    // ignored.
    let tid = thread::spawn_thread(&child, fs_base, clear, |tid| {
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = write_user::<u32>(parent_tid, &tid);
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = write_user::<u32>(child_tid, &tid);
        }
    })?;
    Ok(tid as u64)
}
