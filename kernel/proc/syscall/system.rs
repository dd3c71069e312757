//! The calls a C library makes about the process and the machine rather
//! than memory or files: resource limits (`getrlimit`, `setrlimit`,
//! `prlimit64`), `getrandom`, `sysinfo`, the identity calls (one user:
//! root), `set_robust_list`/`get_robust_list`, `rseq`, CPU affinity and
//! `getcpu` (one CPU), `getpriority`/`setpriority`.
//!
//! Identity: Ferrite has a single user, root (uid and gid 0, no
//! supplementary groups). Setting an id to 0 (or leaving it, -1) works;
//! any other id is `EINVAL`, what Linux answers for an id that does not
//! exist in the caller's user namespace (a namespace mapping only root
//! behaves exactly like this).

use vmcore::rlimit::{Rlimit, RlimitError, RLIM_NLIMITS};

use super::mm::current_aspace;
use super::*;
use crate::mm::uaccess::{access_ok, copy_to_user, read_user, write_user};
use crate::mm::vmstat;
use crate::proc::sched;

/// Per-process state these calls keep (in [`sched::Process`]). A fork's
/// child starts with none of it but the nice value (Linux clears the
/// robust list on fork; see [`SysState::for_child`]); exec clears it all
/// but the nice value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysState {
    /// `set_robust_list`'s head (0: none).
    pub robust_list: u64,
    /// The registered `rseq` area: (address, length, signature).
    pub rseq: Option<(u64, u32, u32)>,
    /// The nice value (-20..=19): kept and reported, the scheduler does
    /// not weigh it.
    pub nice: i8,
    /// The name `prctl(PR_SET_NAME)` gave (Linux's `comm`, NUL-padded);
    /// `None`: the program's name.
    pub comm: Option<[u8; 16]>,
}

impl SysState {
    /// What a fork's child starts with.
    pub fn for_child(&self) -> SysState {
        SysState {
            nice: self.nice,
            // Linux keeps the rseq registration across fork (same memory,
            // same address) and drops the robust list.
            rseq: self.rseq,
            robust_list: 0,
            comm: self.comm,
        }
    }

    /// What survives `execve`: the nice value (the name becomes the new
    /// program's).
    pub fn for_exec(&self) -> SysState {
        SysState {
            nice: self.nice,
            ..SysState::default()
        }
    }
}

fn rlimit_error(e: RlimitError) -> Errno {
    match e {
        RlimitError::Invalid => Errno::EINVAL,
        RlimitError::NotPermitted => Errno::EPERM,
    }
}

/// The address space holding the limits of process `pid` (0: the caller),
/// or `ESRCH`.
fn aspace_of(pid: u64) -> Result<crate::mm::aspace::SharedAddressSpace, Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 || pid as u64 == sched::current_pid() as u64 {
        return Ok(current_aspace());
    }
    sched::with_process(pid as _, |p| p.aspace.clone())
        .flatten()
        .ok_or(Errno::ESRCH)
}

pub(super) fn getrlimit(resource: u64, rlim: u64) -> SysResult {
    // Unlike prlimit64's, this pointer is not optional: NULL is EFAULT.
    if rlim == 0 {
        return Err(Errno::EFAULT);
    }
    prlimit64(0, resource, 0, rlim)
}

pub(super) fn setrlimit(resource: u64, rlim: u64) -> SysResult {
    if rlim == 0 {
        return Err(Errno::EFAULT);
    }
    prlimit64(0, resource, rlim, 0)
}

pub(super) fn prlimit64(pid: u64, resource: u64, new: u64, old: u64) -> SysResult {
    let new = match new {
        0 => None,
        addr => Some(read_user::<[u64; 2]>(addr)?),
    };
    let resource = u32::try_from(resource)
        .ok()
        .filter(|&r| r < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)?;
    let aspace = aspace_of(pid)?;
    let previous = {
        let mut aspace = aspace.lock();
        let limits = aspace.rlimits_mut();
        match new {
            Some([cur, max]) => limits
                .set(resource, Rlimit { cur, max })
                .map_err(rlimit_error)?,
            None => limits.get(resource).ok_or(Errno::EINVAL)?,
        }
    };
    if old != 0 {
        write_user(old, &[previous.cur, previous.max])?;
    }
    Ok(0)
}

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;
/// The most one call returns: Linux's `getrandom` capped requests at
/// `INT_MAX >> 6` bytes before 5.18; a bound keeps one call short.
const GETRANDOM_MAX: u64 = (i32::MAX >> 6) as u64;

pub(super) fn getrandom(buf: u64, len: u64, flags: u64) -> SysResult {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    // The generator is always seeded: GRND_NONBLOCK never has to say
    // EAGAIN, GRND_RANDOM never blocks (as on Linux since 5.6).
    let len = len.min(GETRANDOM_MAX);
    let mut chunk = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        crate::random::fill(&mut chunk[..n]);
        let at = buf.wrapping_add(done);
        if copy_to_user(at, &chunk[..n]).is_err() {
            // As Linux: the bytes before the bad address count (copied one
            // at a time up to it); none at all is EFAULT.
            let good = chunk[..n]
                .iter()
                .enumerate()
                .take_while(|&(i, b)| copy_to_user(at.wrapping_add(i as u64), &[*b]).is_ok())
                .count() as u64;
            chunk.fill(0);
            done += good;
            return if done > 0 {
                Ok(done)
            } else {
                Err(Errno::EFAULT)
            };
        }
        chunk.fill(0);
        done += n as u64;
    }
    Ok(done)
}

pub(super) fn sysinfo(info: u64) -> SysResult {
    let snap = vmstat::mem_snapshot();
    let page = vmcore::PAGE_SIZE;
    // `struct sysinfo` (112 bytes) as words: uptime, loads[3], totalram,
    // freeram, sharedram, bufferram, totalswap, freeswap, procs (u16 and
    // padding), totalhigh, freehigh, mem_unit (u32 and padding).
    let swap_total = snap.swap.0;
    // The load averages /proc/loadavg prints, in 16-bit fixed point.
    let loads = crate::proc::stats::load().sysinfo_loads();
    let words: [u64; 14] = [
        crate::time::uptime_ns() / 1_000_000_000,
        loads[0],
        loads[1],
        loads[2],
        snap.buddy.managed_pages * page,
        snap.buddy.free_pages * page,
        snap.shmem * page,
        0,
        swap_total * page,
        swap_total.saturating_sub(snap.swap.1) * page,
        sched::count().min(u16::MAX as usize) as u64,
        0,
        0,
        1,
    ];
    write_user(info, &words)?;
    Ok(0)
}

// --- identity: one user, root -------------------------------------------

pub(super) fn getid() -> SysResult {
    Ok(0)
}

/// `id` as a new uid or gid: 0 and "unchanged" (-1) are fine, anything
/// else does not exist (`EINVAL`).
fn root_or_unchanged(id: u64, allow_unchanged: bool) -> Result<(), Errno> {
    match id as u32 {
        0 => Ok(()),
        u32::MAX if allow_unchanged => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// `setuid`, `setgid`, `setfsuid`... with one id.
pub(super) fn setid(id: u64) -> SysResult {
    root_or_unchanged(id, false)?;
    Ok(0)
}

/// `setreuid`/`setregid` (two ids) and `setresuid`/`setresgid` (three).
pub(super) fn setids(ids: &[u64]) -> SysResult {
    for &id in ids {
        root_or_unchanged(id, true)?;
    }
    Ok(0)
}

/// `setfsuid`/`setfsgid`: always the old id (0); a new id other than 0 is
/// ignored, as Linux ignores one it cannot set.
pub(super) fn setfsid(_id: u64) -> SysResult {
    Ok(0)
}

/// `getresuid`/`getresgid`: three zeros.
pub(super) fn getresid(a: u64, b: u64, c: u64) -> SysResult {
    for addr in [a, b, c] {
        write_user::<u32>(addr, &0)?;
    }
    Ok(0)
}

/// `NGROUPS_MAX`.
const NGROUPS_MAX: u64 = 65536;

/// `getgroups`: root has no supplementary groups here.
pub(super) fn getgroups(size: u64, _list: u64) -> SysResult {
    if size as i32 as i64 > NGROUPS_MAX as i64 || (size as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// `setgroups`: only root's group (0) exists.
pub(super) fn setgroups(size: u64, list: u64) -> SysResult {
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    for i in 0..size {
        let gid: u32 = read_user(list.wrapping_add(i * 4))?;
        if gid != 0 {
            return Err(Errno::EINVAL);
        }
    }
    Ok(0)
}

// --- futex robust lists and restartable sequences ---------------------------

/// `sizeof(struct robust_list_head)`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

pub(super) fn set_robust_list(head: u64, len: u64) -> SysResult {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    // Only recorded: Ferrite has no threads, so no futex owner can die
    // while another thread waits on it.
    sched::with_current(|p| p.sys.robust_list = head);
    Ok(0)
}

pub(super) fn get_robust_list(pid: u64, head_ptr: u64, len_ptr: u64) -> SysResult {
    let pid = pid as i32;
    let head = if pid == 0 {
        sched::with_current(|p| p.sys.robust_list)
    } else if pid < 0 {
        return Err(Errno::ESRCH);
    } else {
        sched::with_process(pid as _, |p| p.sys.robust_list).ok_or(Errno::ESRCH)?
    };
    write_user(head_ptr, &head)?;
    write_user(len_ptr, &ROBUST_LIST_HEAD_SIZE)?;
    Ok(0)
}

const RSEQ_FLAG_UNREGISTER: u64 = 1;
/// `sizeof(struct rseq)` in its first version (and its alignment).
const RSEQ_ORIG_SIZE: u64 = 32;
/// `RSEQ_CPU_ID_UNINITIALIZED`.
const RSEQ_CPU_ID_UNINITIALIZED: u32 = u32::MAX;

/// Writes `cpu_id_start` and `cpu_id` of a registered area (and, if it is
/// long enough, `node_id` and `mm_cid`).
fn rseq_write_ids(addr: u64, len: u64, cpu: u32) -> Result<(), Errno> {
    write_user(
        addr,
        &[
            if cpu == RSEQ_CPU_ID_UNINITIALIZED {
                0
            } else {
                cpu
            },
            cpu,
        ],
    )?;
    if len >= 28 && cpu != RSEQ_CPU_ID_UNINITIALIZED {
        // node_id (offset 20) and mm_cid (offset 24).
        write_user(addr + 20, &[0u32, 0u32])?;
    }
    Ok(())
}

/// `rseq`: the registration is checked and kept as Linux does; the area's
/// CPU number is written once (there is one CPU, 0). With one CPU and no
/// threads, a critical section can only be interrupted by its own
/// process's signal handler: the abort on signal delivery is not done.
pub(super) fn rseq(addr: u64, len: u64, flags: u64, sig: u64) -> SysResult {
    let (len, sig) = (len as u32, sig as u32);
    let current = sched::with_current(|p| p.sys.rseq);
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags & !RSEQ_FLAG_UNREGISTER != 0 {
            return Err(Errno::EINVAL);
        }
        let Some((at, at_len, at_sig)) = current else {
            return Err(Errno::EINVAL);
        };
        if at != addr || at_len != len {
            return Err(Errno::EINVAL);
        }
        if at_sig != sig {
            return Err(Errno::EPERM);
        }
        rseq_write_ids(addr, len as u64, RSEQ_CPU_ID_UNINITIALIZED)?;
        sched::with_current(|p| p.sys.rseq = None);
        return Ok(0);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((at, at_len, at_sig)) = current {
        if at != addr || at_len != len {
            return Err(Errno::EINVAL);
        }
        if at_sig != sig {
            return Err(Errno::EPERM);
        }
        return Err(Errno::EBUSY);
    }
    if (len as u64) < RSEQ_ORIG_SIZE || !addr.is_multiple_of(RSEQ_ORIG_SIZE) {
        return Err(Errno::EINVAL);
    }
    if !access_ok(addr, len as usize, vmcore::Prot::WRITE) {
        return Err(Errno::EFAULT);
    }
    rseq_write_ids(addr, len as u64, 0)?;
    sched::with_current(|p| p.sys.rseq = Some((addr, len, sig)));
    Ok(0)
}

// --- prctl ------------------------------------------------------------------

const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;
/// `TASK_COMM_LEN`: a name is at most 15 bytes and a NUL.
const TASK_COMM_LEN: usize = 16;

/// The program name as a `comm` field: at most 15 bytes and NUL padding.
fn comm_of(name: &str) -> [u8; TASK_COMM_LEN] {
    let mut comm = [0u8; TASK_COMM_LEN];
    let n = name.len().min(TASK_COMM_LEN - 1);
    comm[..n].copy_from_slice(&name.as_bytes()[..n]);
    comm
}

/// `prctl`: the thread name (`PR_SET_NAME`/`PR_GET_NAME`: Linux's `comm`,
/// kept in [`SysState::comm`] without allocating; the process table's
/// name stays the program's) and the dumpable flag (always 1: no core
/// dumps to protect); every other option is `EINVAL`, as Linux says for
/// one it does not know.
pub(super) fn prctl(option: u64, arg2: u64) -> SysResult {
    match option {
        PR_SET_NAME => {
            let mut name = [0u8; TASK_COMM_LEN];
            // Up to 15 bytes, stopping at the NUL (a page the name does
            // not reach into is never read).
            for (i, byte) in name.iter_mut().enumerate().take(TASK_COMM_LEN - 1) {
                *byte = read_user(arg2.wrapping_add(i as u64))?;
                if *byte == 0 {
                    break;
                }
            }
            sched::with_current(|p| p.sys.comm = Some(name));
            Ok(0)
        }
        PR_GET_NAME => {
            let name = sched::with_current(|p| p.sys.comm.unwrap_or_else(|| comm_of(&p.name)));
            write_user(arg2, &name)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(1),
        PR_SET_DUMPABLE if arg2 <= 1 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

// --- CPUs and priority --------------------------------------------------------

/// Whether `pid` (0: the caller) names a live process.
fn process_exists(pid: u64) -> Result<(), Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    if pid == 0 || sched::with_process(pid as _, |_| ()).is_some() {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// Bytes of a CPU mask (Linux's `cpumask_size()` for up to 64 CPUs).
const CPUMASK_BYTES: u64 = 8;

pub(super) fn sched_getaffinity(pid: u64, len: u64, mask: u64) -> SysResult {
    if len < CPUMASK_BYTES || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    process_exists(pid)?;
    // Every online CPU (the scheduler runs any process anywhere).
    write_user(mask, &online_cpus())?;
    Ok(CPUMASK_BYTES)
}

/// The online CPUs, a bit per CPU index (what `sched_getaffinity` gives:
/// musl's `sysconf(_SC_NPROCESSORS_ONLN)` counts them).
fn online_cpus() -> u64 {
    let mut bits = 0u64;
    for (i, c) in crate::arch::percpu::cpus().iter().enumerate().take(64) {
        if c.online.load(core::sync::atomic::Ordering::Acquire) {
            bits |= 1 << i;
        }
    }
    // Before SMP bring-up (or without it) the boot CPU alone.
    bits.max(1)
}

pub(super) fn sched_setaffinity(pid: u64, len: u64, mask: u64) -> SysResult {
    // A shorter mask is zero-extended, a longer one read up to what exists.
    let mut bytes = [0u8; 8];
    let n = len.min(CPUMASK_BYTES) as usize;
    crate::mm::uaccess::copy_from_user(&mut bytes[..n], mask)?;
    process_exists(pid)?;
    // It must include an online CPU.
    if u64::from_le_bytes(bytes) & online_cpus() == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub(super) fn getcpu(cpu: u64, node: u64) -> SysResult {
    if cpu != 0 {
        // Where this runs now (it may move on at once, as on Linux).
        write_user(cpu, &(crate::arch::percpu::cpu_index() as u32))?;
    }
    if node != 0 {
        write_user(node, &0u32)?;
    }
    Ok(0)
}

const PRIO_PROCESS: u64 = 0;
const PRIO_USER: u64 = 2;

/// The processes `which`/`who` names that exist: the caller alone for
/// `PRIO_PROCESS 0`, any process for a pid, and for a process group or a
/// user (everyone is root, in one group) every process.
fn priority_target(which: u64, who: u64) -> Result<Option<sched::Pid>, Errno> {
    if which > PRIO_USER {
        return Err(Errno::EINVAL);
    }
    let who = who as u32;
    match (which, who) {
        (_, 0) => Ok(Some(sched::current_pid())),
        (PRIO_PROCESS, pid) => {
            process_exists(pid as u64)?;
            Ok(Some(pid as sched::Pid))
        }
        // Process group `who` or user `who`: only uid 0 exists; process
        // groups are not kept (every process is in group 1).
        (PRIO_USER, _) => Err(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

pub(super) fn getpriority(which: u64, who: u64) -> SysResult {
    let pid = priority_target(which, who)?.ok_or(Errno::ESRCH)?;
    let nice = sched::with_process(pid, |p| p.sys.nice).ok_or(Errno::ESRCH)?;
    // The system call returns 20 - nice (1..=40), never negative.
    Ok((20 - nice as i64) as u64)
}

pub(super) fn setpriority(which: u64, who: u64, prio: u64) -> SysResult {
    let pid = priority_target(which, who)?.ok_or(Errno::ESRCH)?;
    let nice = (prio as i32).clamp(-20, 19) as i8;
    sched::with_process(pid, |p| p.sys.nice = nice).ok_or(Errno::ESRCH)?;
    Ok(0)
}
