//! Pipes and waiting for files: pipe, pipe2, poll, ppoll, select,
//! pselect6 (Linux's argument checks and results; the waiting itself is
//! `fs::poll::wait`, the pipe `fs::pipe`).
//!
//! Signal masks (`ppoll`, `pselect6`) replace the blocked mask for the
//! wait, as Linux's `set_user_sigmask`: the old one comes back when the
//! call returns, or, when a signal interrupted it (EINTR), after that
//! signal's handler ran (it is in the handler's frame), so a signal the
//! mask let through is delivered before the call returns.

use alloc::vec::Vec;

use super::*;
use crate::arch::uapi::Timespec;
use crate::fs::file::flags::O_CLOEXEC;
use crate::fs::file::PollEvents;
use crate::fs::pipe;
use crate::fs::poll::{self, Deadline};
use crate::mm::kalloc;
use crate::mm::uaccess::{copy_from_user, copy_to_user, read_user, read_user_slice, write_user};
use crate::proc::fd::{self, MAX_FDS};

const NS_PER_SEC: u64 = 1_000_000_000;

pub(super) fn pipe(fds: u64) -> SysResult {
    pipe2(fds, 0)
}

pub(super) fn pipe2(fds: u64, flags: u64) -> SysResult {
    // Linux also takes O_DIRECT (packet mode) and O_NOTIFICATION_PIPE;
    // neither exists here.
    if flags & !u64::from(pipe::PIPE2_FLAGS) != 0 {
        return Err(Errno::EINVAL);
    }
    let (read, write) = pipe::create(flags as u32)?;
    let cloexec = flags & u64::from(O_CLOEXEC) != 0;
    let rfd = fd::install(read, cloexec)?;
    let wfd = match fd::install(write, cloexec) {
        Ok(w) => w,
        Err(e) => {
            fd::close(rfd as u64);
            return Err(e.into());
        }
    };
    let pair = [rfd as i32, wfd as i32];
    if write_user(fds, &pair).is_err() {
        // Nothing is left open by a failed call.
        fd::close(rfd as u64);
        fd::close(wfd as u64);
        return Err(Errno::EFAULT);
    }
    Ok(0)
}

/// `POLLRDNORM`/`POLLWRNORM`: Linux reports them with `POLLIN`/`POLLOUT`.
const POLLRDNORM: u16 = 0x040;
const POLLWRNORM: u16 = 0x100;

/// What `poll` reports for descriptor `fd` (any file not made to wait is
/// always ready, Linux's `DEFAULT_POLLMASK`).
fn poll_fd(fd: i32) -> u16 {
    if fd < 0 {
        return 0;
    }
    match fd::get(fd as u64) {
        None => PollEvents::NVAL.0,
        Some(file) => {
            let mut mask = file.poll().0;
            if mask & PollEvents::IN.0 != 0 {
                mask |= POLLRDNORM;
            }
            if mask & PollEvents::OUT.0 != 0 {
                mask |= POLLWRNORM;
            }
            mask
        }
    }
}

/// A user timespec as a relative deadline (`None` pointer: never);
/// `EINVAL` unless `0 <= tv_nsec < 1e9` and `tv_sec >= 0`.
fn timespec_deadline(ts: u64) -> Result<Deadline, Errno> {
    if ts == 0 {
        return Ok(Deadline::Never);
    }
    let t: Timespec = read_user(ts)?;
    if t.tv_sec < 0 || !(0..NS_PER_SEC as i64).contains(&t.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let ns = (t.tv_sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(t.tv_nsec as u64);
    Ok(Deadline::after_ns(ns))
}

/// Writes the time left back (Linux updates ppoll's, pselect's and
/// select's timeout; a failure to write it is ignored there too).
fn write_left(ptr: u64, deadline: Deadline, micro: bool) {
    if ptr == 0 {
        return;
    }
    let left = deadline.left_ns().unwrap_or(0);
    let sub = if micro {
        (left % NS_PER_SEC) / 1000
    } else {
        left % NS_PER_SEC
    };
    let _ = write_user(ptr, &[(left / NS_PER_SEC) as i64, sub as i64]);
}

/// Reads a user signal mask argument: size 8 (`EINVAL`) and readable;
/// `None` for no mask.
fn read_sigmask(mask: u64, size: u64) -> Result<Option<u64>, Errno> {
    if mask == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(read_user(mask)?))
}

/// Runs `wait` with `mask` (if any) blocked instead of the current mask
/// (see the module comment).
fn with_sigmask(mask: Option<u64>, wait: impl FnOnce() -> SysResult) -> SysResult {
    let Some(mask) = mask else {
        return wait();
    };
    sched::with_current(|p| p.sig.temp_mask(mask));
    let result = wait();
    let interrupted = result == Err(Errno::ERESTARTNOHAND);
    sched::with_current(|p| p.sig.end_temp_mask(interrupted));
    result
}

/// Bytes of one `struct pollfd` (`int fd; short events, revents`).
const POLLFD: usize = 8;

fn do_poll(ufds: u64, nfds: u64, deadline: Deadline) -> SysResult {
    // `unsigned int nfds`; more than RLIMIT_NOFILE is EINVAL.
    let nfds = nfds as u32 as usize;
    if nfds > MAX_FDS {
        return Err(Errno::EINVAL);
    }
    let mut fds: Vec<u8> = kalloc::try_zeroed(nfds * POLLFD)?;
    copy_from_user(&mut fds, ufds)?;
    let ready = poll::wait(deadline, || {
        let mut ready = 0;
        for entry in fds.as_chunks_mut::<POLLFD>().0.iter_mut() {
            let fd = i32::from_ne_bytes(entry[0..4].try_into().expect("4 bytes"));
            let events = u16::from_ne_bytes(entry[4..6].try_into().expect("2 bytes"));
            // POLLERR, POLLHUP and POLLNVAL are reported unasked.
            let filter = events | PollEvents::ERR.0 | PollEvents::HUP.0 | PollEvents::NVAL.0;
            let revents = poll_fd(fd) & filter;
            entry[6..8].copy_from_slice(&revents.to_ne_bytes());
            ready += usize::from(revents != 0);
        }
        Ok(ready)
    })?;
    copy_to_user(ufds, &fds)?;
    Ok(ready as u64)
}

pub(super) fn poll(ufds: u64, nfds: u64, timeout_ms: u64) -> SysResult {
    let timeout = timeout_ms as i32;
    let deadline = if timeout < 0 {
        Deadline::Never
    } else {
        Deadline::after_ns(timeout as u64 * 1_000_000)
    };
    do_poll(ufds, nfds, deadline)
}

pub(super) fn ppoll(ufds: u64, nfds: u64, tsp: u64, sigmask: u64, sigsetsize: u64) -> SysResult {
    let deadline = timespec_deadline(tsp)?;
    let mask = read_sigmask(sigmask, sigsetsize)?;
    let result = with_sigmask(mask, || do_poll(ufds, nfds, deadline));
    write_left(tsp, deadline, false);
    result
}

/// Linux's `POLLIN_SET`, `POLLOUT_SET`, `POLLEX_SET`: which poll bits make
/// a descriptor count as readable, writable, or exceptional for select.
const IN_SET: u16 = 0x001 | POLLRDNORM | 0x080 | 0x010 | 0x008;
const OUT_SET: u16 = 0x004 | POLLWRNORM | 0x200 | 0x008;
const EX_SET: u16 = 0x002;

/// Words of one descriptor set for `n` descriptors (at most MAX_FDS).
const SET_WORDS: usize = MAX_FDS / 64;

/// The size of the current process's descriptor table as Linux's
/// `max_fds` sees it: a multiple of 64 past the highest open descriptor.
/// `select` ignores bits above it.
fn table_size() -> usize {
    let highest = sched::thread::with_current_group(|p| p.fds.iter().map(|(fd, _)| fd).last());
    highest
        .map_or(64, |h| (h + 1).div_ceil(64) * 64)
        .min(MAX_FDS)
}

fn do_select(n: u64, sets: [u64; 3], deadline: Deadline) -> SysResult {
    let n = n as i32;
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (n as usize).min(table_size());
    let words = n.div_ceil(64);
    let mut want = [[0u64; SET_WORDS]; 3];
    for (set, &ptr) in want.iter_mut().zip(&sets) {
        if ptr != 0 && words > 0 {
            read_user_slice(&mut set[..words], ptr)?;
        }
    }
    // Bits at or past n do not count.
    if !n.is_multiple_of(64) {
        for set in want.iter_mut() {
            set[words - 1] &= (1u64 << (n % 64)) - 1;
        }
    }
    // Every descriptor named must be open (EBADF), as Linux checks first.
    for fd in 0..n {
        let (w, bit) = (fd / 64, 1u64 << (fd % 64));
        if want.iter().any(|s| s[w] & bit != 0) && fd::get(fd as u64).is_none() {
            return Err(Errno::EBADF);
        }
    }
    let mut got = [[0u64; SET_WORDS]; 3];
    let ready = poll::wait(deadline, || {
        got = [[0u64; SET_WORDS]; 3];
        let mut ready = 0;
        for fd in 0..n {
            let (w, bit) = (fd / 64, 1u64 << (fd % 64));
            if want.iter().all(|s| s[w] & bit == 0) {
                continue;
            }
            let mask = poll_fd(fd as i32);
            for (i, class) in [IN_SET, OUT_SET, EX_SET].into_iter().enumerate() {
                if want[i][w] & bit != 0 && mask & class != 0 {
                    got[i][w] |= bit;
                    ready += 1;
                }
            }
        }
        Ok(ready)
    })?;
    for (set, &ptr) in got.iter().zip(&sets) {
        if ptr != 0 && words > 0 {
            let mut bytes = [0u8; SET_WORDS * 8];
            for (chunk, w) in bytes.as_chunks_mut::<8>().0.iter_mut().zip(set.iter()) {
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            copy_to_user(ptr, &bytes[..words * 8])?;
        }
    }
    Ok(ready as u64)
}

pub(super) fn select(n: u64, inp: u64, outp: u64, exp: u64, tvp: u64) -> SysResult {
    let deadline = if tvp == 0 {
        Deadline::Never
    } else {
        let [sec, usec]: [i64; 2] = read_user(tvp)?;
        // Linux carries whole seconds out of tv_usec, then needs
        // 0 <= tv_nsec < 1e9 and tv_sec >= 0.
        let sec = sec.checked_add(usec / 1_000_000).ok_or(Errno::EINVAL)?;
        let nsec = (usec % 1_000_000) * 1000;
        if sec < 0 || nsec < 0 {
            return Err(Errno::EINVAL);
        }
        Deadline::after_ns(
            (sec as u64)
                .saturating_mul(NS_PER_SEC)
                .saturating_add(nsec as u64),
        )
    };
    let result = do_select(n, [inp, outp, exp], deadline);
    write_left(tvp, deadline, true);
    result
}

pub(super) fn pselect6(n: u64, inp: u64, outp: u64, exp: u64, tsp: u64, sig: u64) -> SysResult {
    let deadline = timespec_deadline(tsp)?;
    let mask = if sig != 0 {
        // `struct { const sigset_t *ss; size_t ss_len; }`
        let [mask, size]: [u64; 2] = read_user(sig)?;
        read_sigmask(mask, size)?
    } else {
        None
    };
    let result = with_sigmask(mask, || do_select(n, [inp, outp, exp], deadline));
    write_left(tsp, deadline, false);
    result
}
