//! Processes: fork, clone, execve, wait4, nanosleep.

use alloc::string::String;
use alloc::vec::Vec;
use vmcore::Prot;

use super::*;
use crate::arch::trap::TrapFrame;
use crate::mm::uaccess::{copy_from_user, copy_to_user};
use crate::proc::{exec, sched};

pub(super) fn fork(frame: &TrapFrame) -> Result {
    fork_onto(frame, None)
}

/// Fork; the child resumes at the same place with RAX = 0, on `stack` if
/// one is given (clone's new stack pointer).
pub(super) fn fork_onto(frame: &TrapFrame, stack: Option<u64>) -> Result {
    let (aspace, name, fs_base, brk, fds) = sched::with_current(|p| {
        (
            p.aspace.clone(),
            p.name.clone(),
            p.fs_base,
            p.brk,
            p.fds.clone(),
        )
    });
    let aspace = aspace.expect("fork from a user process");
    let child = aspace.lock().fork().map_err(|_| ENOMEM)?;
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if let Some(rsp) = stack {
        child_frame.rsp = rsp;
    }
    let child = alloc::sync::Arc::new(spin::Mutex::new(child));
    let pid = sched::spawn(&name, child, &child_frame, fs_base, brk).map_err(|_| ENOMEM)?;
    sched::with_process(pid, |p| p.fds = fds);
    Ok(pid as i64)
}

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x1_0000;

pub(super) fn clone(frame: &TrapFrame, flags: u64, stack: u64) -> Result {
    // Only the flavours that mean "fork": no threads, and no memory shared
    // on a separate stack unless it is a vfork (CLONE_VM|CLONE_VFORK, as
    // posix_spawn uses it), which is served as a plain fork.
    let shares_memory = flags & CLONE_VM != 0 && stack != 0 && flags & CLONE_VFORK == 0;
    if flags & CLONE_THREAD != 0 || shares_memory {
        return Err(ENOSYS);
    }
    fork_onto(frame, (stack != 0).then_some(stack))
}

pub(super) fn string_array(addr: u64) -> core::result::Result<Vec<Vec<u8>>, i64> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0;
    for i in 0..4096u64 {
        let mut ptr = [0u8; 8];
        copy_from_user(&mut ptr, addr + i * 8)?;
        let ptr = u64::from_le_bytes(ptr);
        if ptr == 0 {
            return Ok(out);
        }
        let s = user_string(ptr, 128 * 1024)?;
        total += s.len() + 1;
        if total > 128 * 1024 {
            return Err(E2BIG);
        }
        out.push(s);
    }
    Err(E2BIG)
}

pub(super) fn execve(frame: &mut TrapFrame, path: u64, argv: u64, envp: u64) -> Result {
    let path = user_string(path, 4096)?;
    let path = String::from_utf8(path).map_err(|_| ENOENT)?;
    let argv = string_array(argv)?;
    let envp = string_array(envp)?;
    let argv_refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    let envp_refs: Vec<&[u8]> = envp.iter().map(|a| a.as_slice()).collect();
    let image = exec::load(&path, &argv_refs, &envp_refs).map_err(|e| e.errno())?;
    let old = sched::replace_image(&image);
    drop(old);
    *frame = image.frame;
    // The new program starts with RAX = 0, like every other register.
    Ok(0)
}

const WNOHANG: u64 = 1;

pub(super) fn wait4(pid: i64, status: u64, options: u64) -> Result {
    let pid = if pid <= 0 { -1 } else { pid };
    if status != 0 && !crate::mm::uaccess::access_ok(status, 4, Prot::WRITE) {
        return Err(EFAULT);
    }
    match sched::wait(pid, options & WNOHANG != 0) {
        Err(sched::NoChild) => Err(ECHILD),
        Ok(None) => Ok(0),
        Ok(Some((child, code))) => {
            if status != 0 {
                copy_to_user(status, &code.to_le_bytes())?;
            }
            Ok(child as i64)
        }
    }
}

pub(super) fn nanosleep(req: u64) -> Result {
    let mut ts = [0u8; 16];
    copy_from_user(&mut ts, req)?;
    let secs = u64::from_le_bytes(ts[..8].try_into().unwrap());
    let nanos = u64::from_le_bytes(ts[8..].try_into().unwrap());
    if nanos >= 1_000_000_000 || secs > 1 << 32 {
        return Err(EINVAL);
    }
    let ticks = (secs * 1_000_000_000 + nanos).div_ceil(1_000_000_000 / crate::time::TICK_HZ);
    if ticks > 0 {
        sched::sleep_ticks(ticks);
    }
    Ok(0)
}
