//! Processes: fork, clone, execve, wait4, exit's neighbours (the ids,
//! sched_yield).

use alloc::vec::Vec;
use vmcore::Prot;

use super::*;
use crate::arch::trap::TrapFrame;
use crate::mm::kalloc;
use crate::mm::uaccess::{read_user, write_user};
use crate::proc::{exec, sched};

pub(super) fn getppid() -> SysResult {
    // The group's parent (the leader's record holds it).
    Ok(sched::thread::with_current_group(|p| p.ppid) as u64)
}

pub(super) fn sched_yield() -> SysResult {
    sched::yield_now();
    Ok(0)
}

pub(super) fn fork(frame: &TrapFrame) -> SysResult {
    fork_onto(frame, None)
}

/// Fork; the child resumes at the same place with RAX = 0, on `stack` if
/// one is given (clone's new stack pointer).
pub(super) fn fork_onto(frame: &TrapFrame, stack: Option<u64>) -> SysResult {
    // Everything the child gets is copied fallibly: running out of memory
    // anywhere is ENOMEM for the parent, and what was made so far goes.
    let (aspace, fs_base) = sched::with_current(|p| (p.aspace.clone(), p.fs_base));
    // What the thread group shares is the leader's.
    let (name, brk, fds) = sched::thread::with_current_group(|p| {
        (kalloc::try_string(&p.name), p.brk, p.fds.try_clone())
    });
    let (name, fds) = (name?, fds?);
    let aspace = aspace.expect("fork from a user process");
    let child = aspace.lock().fork()?;
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if let Some(rsp) = stack {
        child_frame.rsp = rsp;
    }
    let child = kalloc::try_arc(spin::Mutex::new(child))?;
    // Handlers, mask and alternate stack are inherited; nothing pending.
    // Given before the child is queued: another CPU may run it at once.
    let sig = sched::with_current(|p| p.sig.fork_copy());
    let pid = sched::spawn_child(name, child, &child_frame, fs_base, brk, fds, sig)?;
    Ok(pid as u64)
}

const CLONE_VFORK: u64 = 0x4000;

pub(super) fn clone(
    frame: &TrapFrame,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> SysResult {
    // Threads (`thread`); otherwise only the flavours that mean "fork": no
    // memory shared on a separate stack unless it is a vfork
    // (CLONE_VM|CLONE_VFORK, as posix_spawn uses it), which is served as
    // a plain fork.
    if flags & CLONE_THREAD != 0 {
        return clone_thread(frame, flags, stack, parent_tid, child_tid, tls);
    }
    let shares_memory = flags & CLONE_VM != 0 && stack != 0 && flags & CLONE_VFORK == 0;
    if shares_memory {
        return Err(Errno::ENOSYS);
    }
    fork_onto(frame, (stack != 0).then_some(stack))
}

/// Linux's `MAX_ARG_STRINGS` is far larger; this bounds the pointer walk.
const MAX_ARG_STRINGS: usize = 4096;
/// Bytes of argument and environment strings together (NULs included), like
/// Linux's `ARG_MAX` (the stack limit / 4): more is `E2BIG`.
pub const ARG_MAX: usize = 128 * 1024;

/// `execve`'s argument and environment strings, copied in: the bytes back
/// to back in one buffer (so a thousand strings are two allocations, not a
/// thousand), and where each string ends.
#[derive(Default)]
pub(super) struct Strings {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Strings {
    /// Bytes counted against `ARG_MAX` so far.
    fn size(&self) -> usize {
        self.bytes.len() + self.ends.len()
    }

    /// Copies in the NULL-terminated array of string pointers at `addr`
    /// (none if `addr` is 0); `E2BIG` past `ARG_MAX` bytes (counted
    /// together with `budget_used`) or `MAX_ARG_STRINGS` strings.
    fn copy_in(addr: u64, budget_used: usize) -> Result<Strings, Errno> {
        let mut out = Strings::default();
        if addr == 0 {
            return Ok(out);
        }
        for i in 0..MAX_ARG_STRINGS as u64 {
            let at = addr.checked_add(i * 8).ok_or(Errno::EFAULT)?;
            let ptr: u64 = read_user(at)?;
            if ptr == 0 {
                return Ok(out);
            }
            // Room left, keeping one byte for this string's NUL.
            let room = ARG_MAX
                .checked_sub(budget_used + out.size() + 1)
                .ok_or(Errno::E2BIG)?;
            match append_user_string(&mut out.bytes, ptr, room) {
                Ok(_) => {}
                Err(Errno::ENAMETOOLONG) => return Err(Errno::E2BIG),
                Err(e) => return Err(e),
            }
            kalloc::try_push(&mut out.ends, out.bytes.len())?;
        }
        Err(Errno::E2BIG)
    }

    /// The strings as slices, for `exec::load`.
    fn slices(&self) -> Result<Vec<&[u8]>, Errno> {
        let mut out = kalloc::try_with_capacity(self.ends.len())?;
        let mut start = 0;
        for &end in &self.ends {
            out.push(&self.bytes[start..end]);
            start = end;
        }
        Ok(out)
    }
}

pub(super) fn execve(frame: &mut TrapFrame, path: u64, argv: u64, envp: u64) -> SysResult {
    let path = user_string(path, 4096)?;
    // Found through the file system (relative to the working directory,
    // symbolic links followed: busybox runs its applets as
    // /proc/self/exe), loaded from the ramdisk or a tmpfs file.
    let cwd = crate::proc::fd::cwd()?;
    let found = crate::fs::vfs::resolve(&cwd, &path, true)?;
    drop(cwd);
    // No file has a name that is not UTF-8.
    let path = core::str::from_utf8(&found.path).map_err(|_| Errno::ENOENT)?;
    let argv = Strings::copy_in(argv, 0)?;
    let envp = Strings::copy_in(envp, argv.size())?;
    let (argv_refs, envp_refs) = (argv.slices()?, envp.slices()?);
    let exe = crate::proc::fd::exe_path(path)?;
    let mut image = exec::load_node(&found.inode, path, &argv_refs, &envp_refs)?;
    // The resource limits survive exec, as in Linux.
    let limits = *current_aspace().lock().rlimits();
    *image.aspace.lock().rlimits_mut() = limits;
    // The point of no return: the other threads end, this one becomes
    // the group's leader (`sched::thread::de_thread`).
    sched::thread::de_thread();
    let old = sched::replace_image(&mut image);
    drop(old);
    sched::with_current(|p| p.sig.on_exec());
    sched::with_current(|p| p.sys = p.sys.for_exec());
    crate::proc::fd::close_on_exec();
    crate::proc::fd::set_exe(sched::current_pid(), exe);
    *frame = image.frame;
    // The new program starts with RAX = 0, like every other register.
    Ok(0)
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WCONTINUED: u64 = 8;

pub(super) fn wait4(pid: i64, status: u64, options: u64) -> SysResult {
    // 0: the caller's group, as -pgid (see `sched::wait_selects`).
    let pid = if pid == 0 {
        -(sched::with_current(|p| p.pgid) as i64)
    } else {
        pid
    };
    // Checked before waiting: a bad pointer must not cost the child.
    if status != 0 && !crate::mm::uaccess::access_ok(status, 4, Prot::WRITE) {
        return Err(Errno::EFAULT);
    }
    let (stopped, continued) = (options & WUNTRACED != 0, options & WCONTINUED != 0);
    let report = || {
        (stopped || continued)
            .then(|| crate::proc::signal::take_wait_report(pid, stopped, continued))
            .flatten()
    };
    loop {
        if let Some((child, code)) = report() {
            if status != 0 {
                write_user::<i32>(status, &code)?;
            }
            return Ok(child as u64);
        }
        match sched::wait(pid, true)? {
            None if options & WNOHANG != 0 => return Ok(0),
            None => {}
            Some((child, code)) => {
                if status != 0 {
                    write_user::<i32>(status, &code)?;
                }
                return Ok(child as u64);
            }
        }
        // A signal ends the wait (restarted unless a handler without
        // SA_RESTART runs).
        if crate::proc::signal::interrupted() {
            return Err(Errno::ERESTARTSYS);
        }
        sched::block_unless(sched::Block::Child, || {
            sched::zombie_child(pid)
                || crate::proc::signal::interrupted()
                || ((stopped || continued)
                    && crate::proc::signal::wait_report_child(pid, stopped, continued).is_some())
        });
    }
}
