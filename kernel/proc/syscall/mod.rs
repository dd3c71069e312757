//! System calls with Linux x86_64 numbers and conventions: number in RAX,
//! arguments in RDI, RSI, RDX, R10, R8, R9, the result (or -errno) in RAX.
//! Every user pointer goes through `mm::uaccess`; a bad one is -EFAULT.
//! Unknown numbers return -ENOSYS and are logged once each.

//!
//! Each call returns a [`SysResult`]: the value, or an [`Errno`] that this
//! dispatcher alone turns into `-errno` (see `errno` for how the kernel's
//! errors convert).
//!
//! One file per family: `mm` (mmap, munmap, mprotect, madvise, mremap, brk),
//! `fs` (read/write and the file descriptors), `process` (fork, clone,
//! execve, wait4, the ids), `time` (the clocks and sleeps), `signal`
//! (rt_sigaction and the rest of the signal calls) and `misc` (uname,
//! arch_prctl).

use core::sync::atomic::{AtomicU64, Ordering};

use super::sched;
use crate::arch::trap::TrapFrame;

mod errno;
mod fs;
mod misc;
mod mm;
mod process;
mod signal;
mod time;

pub use errno::{Errno, SysResult};
use fs::*;
use misc::*;
use mm::*;
use process::*;
use signal::*;
use time::*;

const SYS_READ: u64 = 0;
const SYS_WRITE: u64 = 1;
const SYS_OPEN: u64 = 2;
const SYS_CLOSE: u64 = 3;
const SYS_LSEEK: u64 = 8;
const SYS_MMAP: u64 = 9;
const SYS_MPROTECT: u64 = 10;
const SYS_MUNMAP: u64 = 11;
const SYS_BRK: u64 = 12;
const SYS_RT_SIGACTION: u64 = 13;
const SYS_RT_SIGPROCMASK: u64 = 14;
const SYS_RT_SIGRETURN: u64 = 15;
const SYS_IOCTL: u64 = 16;
const SYS_READV: u64 = 19;
const SYS_WRITEV: u64 = 20;
const SYS_SCHED_YIELD: u64 = 24;
const SYS_MREMAP: u64 = 25;
const SYS_MADVISE: u64 = 28;
const SYS_PAUSE: u64 = 34;
const SYS_NANOSLEEP: u64 = 35;
const SYS_GETPID: u64 = 39;
const SYS_CLONE: u64 = 56;
const SYS_FORK: u64 = 57;
const SYS_VFORK: u64 = 58;
const SYS_EXECVE: u64 = 59;
const SYS_EXIT: u64 = 60;
const SYS_WAIT4: u64 = 61;
const SYS_KILL: u64 = 62;
const SYS_UNAME: u64 = 63;
const SYS_GETTIMEOFDAY: u64 = 96;
const SYS_GETPPID: u64 = 110;
const SYS_RT_SIGPENDING: u64 = 127;
const SYS_RT_SIGSUSPEND: u64 = 130;
const SYS_SIGALTSTACK: u64 = 131;
const SYS_ARCH_PRCTL: u64 = 158;
const SYS_GETTID: u64 = 186;
const SYS_TKILL: u64 = 200;
const SYS_TIME: u64 = 201;
const SYS_SET_TID_ADDRESS: u64 = 218;
const SYS_CLOCK_GETTIME: u64 = 228;
const SYS_CLOCK_GETRES: u64 = 229;
const SYS_CLOCK_NANOSLEEP: u64 = 230;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_TGKILL: u64 = 234;
const SYS_OPENAT: u64 = 257;

/// Numbers already reported as unimplemented (one bit each, 0..512).
static REPORTED: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
/// Numbers 512 and above already reported (0 = free slot); once full,
/// further ones are not logged at all, so a fuzzer's random numbers cannot
/// flood the console.
static REPORTED_HIGH: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];

/// True the first time `nr` is seen (and the table has room for it).
fn first_report(nr: u64) -> bool {
    if nr < 512 {
        let bit = 1 << (nr % 64);
        return REPORTED[(nr / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0;
    }
    for slot in &REPORTED_HIGH {
        match slot.compare_exchange(0, nr, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(seen) if seen == nr => return false,
            Err(_) => {}
        }
    }
    false
}

fn report_unknown(nr: u64) {
    if first_report(nr) {
        sched::with_current(|p| {
            log::warn!(
                "[pid {} {}] system call {nr} is not implemented: ENOSYS",
                p.pid,
                p.name
            )
        });
    }
}

pub fn dispatch(frame: &mut TrapFrame) {
    let nr = frame.rax;
    let (a0, a1, a2, a3, a4, a5) = (
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    );
    let result: SysResult = match frame.rax {
        SYS_READ => read(a0, a1, a2),
        SYS_WRITE => write(a0, a1, a2),
        SYS_OPEN => open(a0, a1),
        SYS_OPENAT => open(a1, a2),
        SYS_CLOSE => close(a0),
        SYS_LSEEK => lseek(a0, a1 as i64, a2),
        SYS_READV => readv(a0, a1, a2),
        SYS_WRITEV => writev(a0, a1, a2),
        SYS_MMAP => mmap(a0, a1, a2, a3, a4, a5),
        SYS_MPROTECT => mprotect(a0, a1, a2),
        SYS_MUNMAP => munmap(a0, a1),
        SYS_MREMAP => mremap(a0, a1, a2, a3, a4),
        SYS_MADVISE => madvise(a0, a1, a2),
        SYS_BRK => brk(a0),
        SYS_RT_SIGACTION => rt_sigaction(a0, a1, a2, a3),
        SYS_RT_SIGPROCMASK => rt_sigprocmask(a0, a1, a2, a3),
        SYS_RT_SIGRETURN => rt_sigreturn(frame),
        SYS_RT_SIGPENDING => rt_sigpending(a0, a1),
        SYS_RT_SIGSUSPEND => rt_sigsuspend(a0, a1),
        SYS_PAUSE => pause(),
        SYS_SIGALTSTACK => sigaltstack(frame, a0, a1),
        SYS_KILL => kill(a0 as i32 as i64, a1),
        SYS_TKILL => tkill(a0 as i32 as i64, a1),
        SYS_TGKILL => tgkill(a0 as i32 as i64, a1 as i32 as i64, a2),
        SYS_IOCTL => ioctl(a0, a1, a2),
        SYS_SCHED_YIELD => sched_yield(),
        SYS_NANOSLEEP => nanosleep(a0, a1),
        SYS_GETPID | SYS_GETTID => getpid(),
        SYS_GETPPID => getppid(),
        SYS_SET_TID_ADDRESS => getpid(),
        SYS_FORK | SYS_VFORK => fork(frame),
        SYS_CLONE => clone(frame, a0, a1),
        SYS_EXECVE => execve(frame, a0, a1, a2),
        SYS_EXIT | SYS_EXIT_GROUP => sched::exit_current(sched::exit_status(a0 as i32)),
        SYS_WAIT4 => wait4(a0 as i32 as i64, a1, a2),
        SYS_UNAME => uname(a0),
        SYS_ARCH_PRCTL => arch_prctl(a0, a1),
        SYS_CLOCK_GETTIME => clock_gettime(a0, a1),
        SYS_CLOCK_GETRES => clock_getres(a0, a1),
        SYS_CLOCK_NANOSLEEP => clock_nanosleep(a0, a1, a2, a3),
        SYS_GETTIMEOFDAY => gettimeofday(a0, a1),
        SYS_TIME => time(a0),
        nr => {
            report_unknown(nr);
            Err(Errno::ENOSYS)
        }
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.to_return(),
    };
    // The OOM killer may have chosen this process during the call.
    sched::deliver_pending_kill();
    // Signals, and the restart of a call one interrupted (not of
    // rt_sigreturn, whose RAX is the restored context's).
    let restartable = (nr != SYS_RT_SIGRETURN).then_some(nr);
    crate::proc::signal::deliver(frame, restartable);
}
