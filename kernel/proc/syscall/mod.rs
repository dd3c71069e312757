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
//! `fs` (read/write on open files), `fd` (dup, fcntl), `path` (calls
//! that name files by path, the stat family, getdents64), `process`
//! (fork, clone, execve, wait4, the ids), `time` (the clocks and
//! sleeps), `signal` (rt_sigaction and the rest of the signal calls),
//! `system` (rlimits, getrandom, sysinfo, identity, robust lists, rseq,
//! affinity, priority) and `misc` (uname, arch_prctl).

use core::sync::atomic::{AtomicU64, Ordering};

use super::sched;
use crate::arch::trap::TrapFrame;

mod errno;
mod fd;
mod fs;
mod fsmeta;
mod futex;
mod itimer;
mod misc;
mod mm;
mod path;
mod pgrp;
mod poll;
mod process;
mod signal;
mod sigqueue;
mod system;
mod thread;
mod time;

pub use errno::{Errno, SysResult};
use fd::*;
use fs::*;
use fsmeta::*;
use futex::*;
use itimer::*;
use misc::*;
use mm::*;
use path::*;
use pgrp::*;
use poll::*;
use process::*;
use signal::*;
use sigqueue::*;
pub use system::SysState;
use system::*;
use thread::*;
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
const SYS_MSYNC: u64 = 26;
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
const SYS_FUTEX: u64 = 202;
const SYS_TIME: u64 = 201;
const SYS_SET_TID_ADDRESS: u64 = 218;
const SYS_CLOCK_GETTIME: u64 = 228;
const SYS_CLOCK_GETRES: u64 = 229;
const SYS_CLOCK_NANOSLEEP: u64 = 230;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_TGKILL: u64 = 234;
const SYS_OPENAT: u64 = 257;
const SYS_POLL: u64 = 7;
const SYS_PIPE: u64 = 22;
const SYS_SELECT: u64 = 23;
const SYS_PSELECT6: u64 = 270;
const SYS_PPOLL: u64 = 271;
const SYS_PIPE2: u64 = 293;
// Process and machine (system.rs) and memory (mm.rs) calls for C
// libraries (issue 13).
const SYS_MINCORE: u64 = 27;
const SYS_GETRLIMIT: u64 = 97;
const SYS_SYSINFO: u64 = 99;
const SYS_GETUID: u64 = 102;
const SYS_GETGID: u64 = 104;
const SYS_SETUID: u64 = 105;
const SYS_SETGID: u64 = 106;
const SYS_GETEUID: u64 = 107;
const SYS_GETEGID: u64 = 108;
const SYS_SETREUID: u64 = 113;
const SYS_SETREGID: u64 = 114;
const SYS_GETGROUPS: u64 = 115;
const SYS_SETGROUPS: u64 = 116;
const SYS_SETRESUID: u64 = 117;
const SYS_GETRESUID: u64 = 118;
const SYS_SETRESGID: u64 = 119;
const SYS_GETRESGID: u64 = 120;
const SYS_SETFSUID: u64 = 122;
const SYS_SETFSGID: u64 = 123;
const SYS_GETPRIORITY: u64 = 140;
const SYS_SETPRIORITY: u64 = 141;
const SYS_PRCTL: u64 = 157;
const SYS_MLOCK: u64 = 149;
const SYS_MUNLOCK: u64 = 150;
const SYS_MLOCKALL: u64 = 151;
const SYS_MUNLOCKALL: u64 = 152;
const SYS_SETRLIMIT: u64 = 160;
const SYS_SCHED_SETAFFINITY: u64 = 203;
const SYS_SCHED_GETAFFINITY: u64 = 204;
const SYS_SET_ROBUST_LIST: u64 = 273;
const SYS_GET_ROBUST_LIST: u64 = 274;
const SYS_PRLIMIT64: u64 = 302;
const SYS_GETCPU: u64 = 309;
const SYS_GETRANDOM: u64 = 318;
const SYS_MLOCK2: u64 = 325;
const SYS_RSEQ: u64 = 334;
const SYS_STAT: u64 = 4;
const SYS_FSTAT: u64 = 5;
const SYS_LSTAT: u64 = 6;
const SYS_PREAD64: u64 = 17;
const SYS_PWRITE64: u64 = 18;
const SYS_ACCESS: u64 = 21;
const SYS_DUP: u64 = 32;
const SYS_DUP2: u64 = 33;
const SYS_FCNTL: u64 = 72;
const SYS_FSYNC: u64 = 74;
const SYS_FDATASYNC: u64 = 75;
const SYS_TRUNCATE: u64 = 76;
const SYS_FTRUNCATE: u64 = 77;
const SYS_GETCWD: u64 = 79;
const SYS_CHDIR: u64 = 80;
const SYS_FCHDIR: u64 = 81;
const SYS_RENAME: u64 = 82;
const SYS_MKDIR: u64 = 83;
const SYS_RMDIR: u64 = 84;
const SYS_CREAT: u64 = 85;
const SYS_UNLINK: u64 = 87;
const SYS_READLINK: u64 = 89;
const SYS_LINK: u64 = 86;
const SYS_SYMLINK: u64 = 88;
const SYS_CHMOD: u64 = 90;
const SYS_FCHMOD: u64 = 91;
const SYS_UTIMES: u64 = 235;
const SYS_LINKAT: u64 = 265;
const SYS_SYMLINKAT: u64 = 266;
const SYS_FCHMODAT: u64 = 268;
const SYS_UTIMENSAT: u64 = 280;
const SYS_FCHMODAT2: u64 = 452;
const SYS_UMASK: u64 = 95;
const SYS_GETDENTS64: u64 = 217;
const SYS_MKDIRAT: u64 = 258;
const SYS_NEWFSTATAT: u64 = 262;
const SYS_UNLINKAT: u64 = 263;
const SYS_RENAMEAT: u64 = 264;
const SYS_READLINKAT: u64 = 267;
const SYS_FACCESSAT: u64 = 269;
const SYS_DUP3: u64 = 292;
const SYS_RENAMEAT2: u64 = 316;
const SYS_STATX: u64 = 332;
const SYS_FACCESSAT2: u64 = 439;
const SYS_GETITIMER: u64 = 36;
const SYS_ALARM: u64 = 37;
const SYS_SETITIMER: u64 = 38;
const SYS_SETPGID: u64 = 109;
const SYS_GETPGRP: u64 = 111;
const SYS_SETSID: u64 = 112;
const SYS_GETPGID: u64 = 121;
const SYS_GETSID: u64 = 124;
const SYS_RT_SIGTIMEDWAIT: u64 = 128;
const SYS_RT_SIGQUEUEINFO: u64 = 129;
const SYS_RT_TGSIGQUEUEINFO: u64 = 297;

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
        SYS_OPEN => open(a0, a1, a2),
        SYS_OPENAT => openat(a0, a1, a2, a3),
        SYS_CREAT => creat(a0, a1),
        SYS_STAT => stat(a0, a1),
        SYS_FSTAT => fstat(a0, a1),
        SYS_LSTAT => lstat(a0, a1),
        SYS_NEWFSTATAT => newfstatat(a0, a1, a2, a3),
        SYS_STATX => statx(a0, a1, a2, a3, a4),
        SYS_PREAD64 => pread64(a0, a1, a2, a3 as i64),
        SYS_PWRITE64 => pwrite64(a0, a1, a2, a3 as i64),
        SYS_ACCESS => access(a0, a1),
        SYS_FACCESSAT => faccessat(a0, a1, a2),
        SYS_FACCESSAT2 => faccessat2(a0, a1, a2, a3),
        SYS_DUP => dup(a0),
        SYS_DUP2 => dup2(a0, a1),
        SYS_DUP3 => dup3(a0, a1, a2),
        SYS_FCNTL => fcntl(a0, a1, a2),
        SYS_FSYNC | SYS_FDATASYNC => fsync(a0),
        SYS_TRUNCATE => truncate(a0, a1),
        SYS_FTRUNCATE => ftruncate(a0, a1),
        SYS_GETCWD => getcwd(a0, a1),
        SYS_CHDIR => chdir(a0),
        SYS_FCHDIR => fchdir(a0),
        SYS_RENAME => rename(a0, a1),
        SYS_RENAMEAT => renameat(a0, a1, a2, a3),
        SYS_RENAMEAT2 => renameat2(a0, a1, a2, a3, a4),
        SYS_MKDIR => mkdir(a0, a1),
        SYS_MKDIRAT => mkdirat(a0, a1, a2),
        SYS_RMDIR => rmdir(a0),
        SYS_UNLINK => unlink(a0),
        SYS_UNLINKAT => unlinkat(a0, a1, a2),
        SYS_READLINK => readlink(a0, a1, a2),
        SYS_READLINKAT => readlinkat(a0, a1, a2, a3),
        SYS_LINK => link(a0, a1),
        SYS_LINKAT => linkat(a0, a1, a2, a3, a4),
        SYS_SYMLINK => symlink(a0, a1),
        SYS_SYMLINKAT => symlinkat(a0, a1, a2),
        SYS_CHMOD => chmod(a0, a1),
        SYS_FCHMOD => fchmod(a0, a1),
        SYS_FCHMODAT => fchmodat(a0, a1, a2),
        SYS_FCHMODAT2 => fchmodat2(a0, a1, a2, a3),
        SYS_UTIMENSAT => utimensat(a0, a1, a2, a3),
        SYS_UTIMES => utimes(a0, a1),
        SYS_UMASK => umask_call(a0),
        SYS_GETDENTS64 => getdents64(a0, a1, a2),
        SYS_CLOSE => close(a0),
        SYS_PIPE => pipe(a0),
        SYS_PIPE2 => pipe2(a0, a1),
        SYS_POLL => poll(a0, a1, a2),
        SYS_PPOLL => ppoll(a0, a1, a2, a3, a4),
        SYS_SELECT => select(a0, a1, a2, a3, a4),
        SYS_PSELECT6 => pselect6(a0, a1, a2, a3, a4, a5),
        SYS_LSEEK => lseek(a0, a1 as i64, a2),
        SYS_READV => readv(a0, a1, a2),
        SYS_WRITEV => writev(a0, a1, a2),
        SYS_MMAP => mmap(a0, a1, a2, a3, a4, a5),
        SYS_MPROTECT => mprotect(a0, a1, a2),
        SYS_MUNMAP => munmap(a0, a1),
        SYS_MREMAP => mremap(a0, a1, a2, a3, a4),
        SYS_MSYNC => msync(a0, a1, a2),
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
        SYS_RT_SIGQUEUEINFO => rt_sigqueueinfo(a0 as i32 as i64, a1, a2),
        SYS_RT_TGSIGQUEUEINFO => rt_tgsigqueueinfo(a0 as i32 as i64, a1 as i32 as i64, a2, a3),
        SYS_RT_SIGTIMEDWAIT => rt_sigtimedwait(a0, a1, a2, a3),
        SYS_ALARM => alarm(a0),
        SYS_SETITIMER => setitimer(a0, a1, a2),
        SYS_GETITIMER => getitimer(a0, a1),
        SYS_SETPGID => setpgid(a0, a1),
        SYS_GETPGID => getpgid(a0),
        SYS_GETPGRP => getpgrp(),
        SYS_SETSID => setsid(),
        SYS_GETSID => getsid(a0),
        SYS_IOCTL => ioctl(a0, a1, a2),
        SYS_SCHED_YIELD => sched_yield(),
        SYS_NANOSLEEP => nanosleep(a0, a1),
        SYS_GETPID => getpid(),
        SYS_GETTID => gettid(),
        SYS_GETPPID => getppid(),
        SYS_SET_TID_ADDRESS => set_tid_address(a0),
        SYS_FUTEX => futex(a0, a1, a2, a3, a4, a5),
        SYS_FORK | SYS_VFORK => fork(frame),
        SYS_CLONE => clone(frame, a0, a1, a2, a3, a4),
        SYS_EXECVE => execve(frame, a0, a1, a2),
        SYS_EXIT => exit_thread(a0),
        SYS_EXIT_GROUP => sched::exit_current(sched::exit_status(a0 as i32)),
        SYS_WAIT4 => wait4(a0 as i32 as i64, a1, a2),
        SYS_UNAME => uname(a0),
        SYS_ARCH_PRCTL => arch_prctl(a0, a1),
        SYS_CLOCK_GETTIME => clock_gettime(a0, a1),
        SYS_CLOCK_GETRES => clock_getres(a0, a1),
        SYS_CLOCK_NANOSLEEP => clock_nanosleep(a0, a1, a2, a3),
        SYS_GETTIMEOFDAY => gettimeofday(a0, a1),
        SYS_TIME => time(a0),
        SYS_MINCORE => mincore(a0, a1, a2),
        SYS_MLOCK => mlock2(a0, a1, 0),
        SYS_MLOCK2 => mlock2(a0, a1, a2),
        SYS_MUNLOCK => munlock(a0, a1),
        SYS_MLOCKALL => mlockall(a0),
        SYS_MUNLOCKALL => munlockall(),
        SYS_GETRLIMIT => getrlimit(a0, a1),
        SYS_SETRLIMIT => setrlimit(a0, a1),
        SYS_PRLIMIT64 => prlimit64(a0, a1, a2, a3),
        SYS_GETRANDOM => getrandom(a0, a1, a2),
        SYS_SYSINFO => sysinfo(a0),
        SYS_GETUID | SYS_GETGID | SYS_GETEUID | SYS_GETEGID => getid(),
        SYS_SETUID | SYS_SETGID => setid(a0),
        SYS_SETREUID | SYS_SETREGID => setids(&[a0, a1]),
        SYS_SETRESUID | SYS_SETRESGID => setids(&[a0, a1, a2]),
        SYS_GETRESUID | SYS_GETRESGID => getresid(a0, a1, a2),
        SYS_SETFSUID | SYS_SETFSGID => setfsid(a0),
        SYS_GETGROUPS => getgroups(a0, a1),
        SYS_SETGROUPS => setgroups(a0, a1),
        SYS_SET_ROBUST_LIST => set_robust_list(a0, a1),
        SYS_GET_ROBUST_LIST => get_robust_list(a0, a1, a2),
        SYS_RSEQ => rseq(a0, a1, a2, a3),
        SYS_SCHED_GETAFFINITY => sched_getaffinity(a0, a1, a2),
        SYS_SCHED_SETAFFINITY => sched_setaffinity(a0, a1, a2),
        SYS_GETCPU => getcpu(a0, a1),
        SYS_GETPRIORITY => getpriority(a0, a1),
        SYS_SETPRIORITY => setpriority(a0, a1, a2),
        SYS_PRCTL => prctl(a0, a1),
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
