//! System calls with Linux x86_64 numbers and conventions: number in RAX,
//! arguments in RDI, RSI, RDX, R10, R8, R9, the result (or -errno) in RAX.
//! Every user pointer goes through `mm::uaccess`; a bad one is -EFAULT.
//! Unknown numbers return -ENOSYS and are logged once each.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, Vma, VmaKind};

use super::exec;
use super::fd::{self, OpenFile};
use super::sched;
use crate::arch::trap::TrapFrame;
use crate::mm::aspace::SharedAddressSpace;
use crate::mm::layout::{MMAP_TOP, USER_END, USER_MIN};
use crate::mm::uaccess::{copy_from_user, copy_to_user, Efault};
use crate::mm::{frames, pagecache};

pub const EPERM: i64 = 1;
pub const ENOENT: i64 = 2;
pub const E2BIG: i64 = 7;
pub const ENOEXEC: i64 = 8;
pub const EBADF: i64 = 9;
pub const ECHILD: i64 = 10;
pub const EAGAIN: i64 = 11;
pub const ENOMEM: i64 = 12;
pub const EACCES: i64 = 13;
pub const EFAULT: i64 = 14;
pub const EINVAL: i64 = 22;
pub const ENOTTY: i64 = 25;
pub const ESPIPE: i64 = 29;
pub const ENAMETOOLONG: i64 = 36;
pub const ENOSYS: i64 = 38;

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
const SYS_IOCTL: u64 = 16;
const SYS_READV: u64 = 19;
const SYS_WRITEV: u64 = 20;
const SYS_SCHED_YIELD: u64 = 24;
const SYS_MREMAP: u64 = 25;
const SYS_MADVISE: u64 = 28;
const SYS_NANOSLEEP: u64 = 35;
const SYS_GETPID: u64 = 39;
const SYS_CLONE: u64 = 56;
const SYS_FORK: u64 = 57;
const SYS_VFORK: u64 = 58;
const SYS_EXECVE: u64 = 59;
const SYS_EXIT: u64 = 60;
const SYS_WAIT4: u64 = 61;
const SYS_UNAME: u64 = 63;
const SYS_GETPPID: u64 = 110;
const SYS_ARCH_PRCTL: u64 = 158;
const SYS_GETTID: u64 = 186;
const SYS_SET_TID_ADDRESS: u64 = 218;
const SYS_CLOCK_GETTIME: u64 = 228;
const SYS_EXIT_GROUP: u64 = 231;
const SYS_OPENAT: u64 = 257;

/// Numbers already reported as unimplemented (one bit each, 0..512).
static REPORTED: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn report_unknown(nr: u64) {
    let reported = nr < 512 && {
        let bit = 1 << (nr % 64);
        REPORTED[(nr / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit != 0
    };
    if !reported {
        let (pid, name) = sched::with_current(|p| (p.pid, p.name.clone()));
        log::warn!("[pid {pid} {name}] system call {nr} is not implemented: ENOSYS");
    }
}

type Result = core::result::Result<i64, i64>;

impl From<Efault> for i64 {
    fn from(_: Efault) -> i64 {
        EFAULT
    }
}

pub fn dispatch(frame: &mut TrapFrame) {
    let (a0, a1, a2, a3, a4, a5) = (
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    );
    let result = match frame.rax {
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
        SYS_RT_SIGACTION => sigaction(a2),
        SYS_RT_SIGPROCMASK => sigprocmask(a2, a3),
        SYS_IOCTL => ioctl(a0, a1, a2),
        SYS_SCHED_YIELD => {
            sched::yield_now();
            Ok(0)
        }
        SYS_NANOSLEEP => nanosleep(a0),
        SYS_GETPID | SYS_GETTID => Ok(sched::current_pid() as i64),
        SYS_GETPPID => Ok(sched::with_current(|p| p.ppid) as i64),
        SYS_SET_TID_ADDRESS => Ok(sched::current_pid() as i64),
        SYS_FORK | SYS_VFORK => fork(frame),
        SYS_CLONE => clone(frame, a0, a1),
        SYS_EXECVE => execve(frame, a0, a1, a2),
        SYS_EXIT | SYS_EXIT_GROUP => sched::exit_current(sched::exit_status(a0 as i32)),
        SYS_WAIT4 => wait4(a0 as i32 as i64, a1, a2),
        SYS_UNAME => uname(a0),
        SYS_ARCH_PRCTL => arch_prctl(a0, a1),
        SYS_CLOCK_GETTIME => clock_gettime(a1),
        nr => {
            report_unknown(nr);
            Err(ENOSYS)
        }
    };
    frame.rax = match result {
        Ok(v) => v as u64,
        Err(errno) => (-errno) as u64,
    };
}

// ---- memory ----------------------------------------------------------------

fn current_aspace() -> SharedAddressSpace {
    sched::with_current(|p| p.aspace.clone()).expect("a user process has an address space")
}

fn page_up(len: u64) -> core::result::Result<u64, i64> {
    vmcore::page_up(len).ok_or(ENOMEM)
}

fn prot_from(bits: u64) -> core::result::Result<Prot, i64> {
    if bits & !7 != 0 {
        return Err(EINVAL);
    }
    Ok(Prot::from_bits_truncate(bits as u8))
}

/// Linux's heuristic overcommit, roughly: one private writable mapping may
/// not exceed all of RAM, so absurd requests fail up front with ENOMEM.
fn too_big(len: u64) -> bool {
    len > frames::stats().managed_pages * 4096
}

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd_num: u64, offset: u64) -> Result {
    let prot = prot_from(prot)?;
    if len == 0 || !vmcore::is_page_aligned(offset) {
        return Err(EINVAL);
    }
    let len = page_up(len)?;
    let sharing = match flags & 3 {
        MAP_SHARED | 3 => Sharing::Shared,
        MAP_PRIVATE => Sharing::Private,
        _ => return Err(EINVAL),
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    if fixed && !vmcore::is_page_aligned(addr) {
        return Err(EINVAL);
    }
    let kind = if flags & MAP_ANONYMOUS != 0 {
        match sharing {
            Sharing::Private => VmaKind::Anonymous,
            Sharing::Shared => VmaKind::File {
                file: pagecache::register_anonymous(),
                offset: 0,
            },
        }
    } else {
        let file = fd::get(fd_num)
            .map(|f| match f {
                OpenFile::Ramdisk { file, .. } => Ok(file.id),
                OpenFile::Console => Err(EACCES),
            })
            .ok_or(EBADF)??;
        // The ramdisk is read-only: a shared writable mapping could never
        // reach the file.
        if sharing == Sharing::Shared && prot.contains(Prot::WRITE) {
            return Err(EACCES);
        }
        VmaKind::File { file, offset }
    };
    if sharing == Sharing::Private && prot.contains(Prot::WRITE) && too_big(len) {
        return Err(ENOMEM);
    }
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    let start = if fixed {
        if addr < USER_MIN || addr.checked_add(len).is_none_or(|e| e > USER_END) {
            return Err(if flags & MAP_FIXED_NOREPLACE != 0 {
                EINVAL
            } else {
                ENOMEM
            });
        }
        addr
    } else {
        let hint = (addr != 0).then_some(vmcore::page_down(addr));
        aspace
            .vmas()
            .find_free(len, hint, USER_MIN, MMAP_TOP)
            .ok_or(ENOMEM)?
    };
    let vma = Vma {
        start,
        end: start + len,
        prot,
        sharing,
        kind,
        flags: VmaFlags {
            grows_down: flags & MAP_GROWSDOWN != 0,
            tag: VmaTag::Mmap,
        },
    };
    let mapped = if flags & MAP_FIXED != 0 {
        aspace.map_fixed(vma)
    } else {
        aspace.map(vma)
    };
    mapped.map_err(|_| if fixed { EINVAL } else { ENOMEM })?;
    Ok(start as i64)
}

fn checked_range(addr: u64, len: u64) -> core::result::Result<(u64, u64), i64> {
    if !vmcore::is_page_aligned(addr) {
        return Err(EINVAL);
    }
    let len = page_up(len)?;
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if end > USER_END {
        return Err(EINVAL);
    }
    Ok((addr, end))
}

fn munmap(addr: u64, len: u64) -> Result {
    let (start, end) = checked_range(addr, len)?;
    if start == end {
        return Err(EINVAL);
    }
    current_aspace()
        .lock()
        .unmap(start, end)
        .map_err(|_| EINVAL)?;
    Ok(0)
}

fn mprotect(addr: u64, len: u64, prot: u64) -> Result {
    let prot = prot_from(prot)?;
    let (start, end) = checked_range(addr, len)?;
    if start == end {
        return Ok(0);
    }
    current_aspace()
        .lock()
        .protect(start, end, prot)
        .map_err(|_| ENOMEM)?;
    Ok(0)
}

const MADV_DONTNEED: u64 = 4;

fn madvise(addr: u64, len: u64, advice: u64) -> Result {
    let (start, end) = checked_range(addr, len)?;
    if advice == MADV_DONTNEED {
        current_aspace().lock().discard(start, end);
    }
    Ok(0)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

fn mremap(old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> Result {
    if !vmcore::is_page_aligned(old) || new_len == 0 || flags & !3 != 0 {
        return Err(EINVAL);
    }
    let old_len = page_up(old_len)?;
    let new_len = page_up(new_len)?;
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    let vma = *aspace.vmas().find(old).ok_or(EFAULT)?;
    if old + old_len > vma.end {
        return Err(EFAULT);
    }
    if new_len <= old_len {
        if new_len < old_len {
            aspace
                .unmap(old + new_len, old + old_len)
                .map_err(|_| EINVAL)?;
        }
        return Ok(old as i64);
    }
    if too_big(new_len) {
        return Err(ENOMEM);
    }
    let grow = Vma {
        start: old + old_len,
        end: old + new_len,
        kind: match vma.kind {
            VmaKind::File { file, offset } => VmaKind::File {
                file,
                offset: offset + (old + old_len - vma.start),
            },
            anon => anon,
        },
        ..vma
    };
    if flags & MREMAP_FIXED == 0 && aspace.vmas().is_free(grow.start, grow.end) {
        aspace.map(grow).map_err(|_| ENOMEM)?;
        return Ok(old as i64);
    }
    if flags & MREMAP_MAYMOVE == 0 {
        return Err(ENOMEM);
    }
    let target = if flags & MREMAP_FIXED != 0 {
        if !vmcore::is_page_aligned(new_addr) {
            return Err(EINVAL);
        }
        aspace
            .unmap(new_addr, new_addr + new_len)
            .map_err(|_| EINVAL)?;
        new_addr
    } else {
        aspace
            .vmas()
            .find_free(new_len, None, USER_MIN, MMAP_TOP)
            .ok_or(ENOMEM)?
    };
    aspace
        .move_region(old, old_len, target)
        .map_err(|_| ENOMEM)?;
    let rest = Vma {
        start: target + old_len,
        end: target + new_len,
        ..grow
    };
    aspace.map(rest).map_err(|_| ENOMEM)?;
    Ok(target as i64)
}

/// Largest heap: a quarter of the user half is plenty; the overcommit check
/// refuses what RAM cannot back first.
const BRK_MAX: u64 = 1 << 45;

fn brk(addr: u64) -> Result {
    let (start, current) = sched::with_current(|p| p.brk);
    if addr < start || addr - start > BRK_MAX || too_big(addr - start) {
        return Ok(current as i64);
    }
    let old_end = vmcore::page_up(current).ok_or(ENOMEM)?;
    let new_end = match vmcore::page_up(addr) {
        Some(e) => e,
        None => return Ok(current as i64),
    };
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    if new_end > old_end {
        let heap = Vma {
            start: old_end,
            end: new_end,
            prot: Prot::RW,
            sharing: Sharing::Private,
            kind: VmaKind::Anonymous,
            flags: VmaFlags {
                grows_down: false,
                tag: VmaTag::Heap,
            },
        };
        if aspace.map(heap).is_err() {
            return Ok(current as i64);
        }
    } else if new_end < old_end && aspace.unmap(new_end, old_end).is_err() {
        return Ok(current as i64);
    }
    drop(aspace);
    sched::with_current(|p| p.brk.1 = addr);
    Ok(addr as i64)
}

// ---- files and the console --------------------------------------------------

fn read(fd_num: u64, buf: u64, len: u64) -> Result {
    let len = len.min(1 << 20) as usize;
    let file = fd::get(fd_num).ok_or(EBADF)?;
    match file {
        OpenFile::Console => {
            if len == 0 {
                return Ok(0);
            }
            // Check the buffer before blocking for input.
            if !crate::mm::uaccess::access_ok(buf, len, Prot::WRITE) {
                return Err(EFAULT);
            }
            let mut kbuf = alloc::vec![0u8; len.min(4096)];
            let n = super::console::read_blocking(&mut kbuf);
            copy_to_user(buf, &kbuf[..n])?;
            Ok(n as i64)
        }
        OpenFile::Ramdisk { file, pos } => {
            let start = (pos as usize).min(file.data.len());
            let end = (start + len).min(file.data.len());
            copy_to_user(buf, &file.data[start..end])?;
            fd::set_pos(fd_num, end as u64);
            Ok((end - start) as i64)
        }
    }
}

fn write(fd_num: u64, buf: u64, len: u64) -> Result {
    match fd::get(fd_num).ok_or(EBADF)? {
        OpenFile::Ramdisk { .. } => Err(EBADF),
        OpenFile::Console => {
            let mut chunk = [0u8; 512];
            let mut done = 0u64;
            while done < len {
                let n = ((len - done) as usize).min(chunk.len());
                if copy_from_user(&mut chunk[..n], buf + done).is_err() {
                    return if done == 0 {
                        Err(EFAULT)
                    } else {
                        Ok(done as i64)
                    };
                }
                crate::kprint!("{}", String::from_utf8_lossy(&chunk[..n]));
                done += n as u64;
            }
            Ok(done as i64)
        }
    }
}

fn iovecs(iov: u64, count: u64) -> core::result::Result<Vec<(u64, u64)>, i64> {
    if count > 1024 {
        return Err(EINVAL);
    }
    let mut raw = alloc::vec![0u8; count as usize * 16];
    copy_from_user(&mut raw, iov)?;
    Ok(raw
        .as_chunks::<16>()
        .0
        .iter()
        .map(|c| {
            let base = u64::from_le_bytes(c[..8].try_into().unwrap());
            let len = u64::from_le_bytes(c[8..].try_into().unwrap());
            (base, len)
        })
        .collect())
}

fn writev(fd_num: u64, iov: u64, count: u64) -> Result {
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        match write(fd_num, base, len) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

fn readv(fd_num: u64, iov: u64, count: u64) -> Result {
    let mut total = 0;
    for (base, len) in iovecs(iov, count)? {
        let n = read(fd_num, base, len)?;
        total += n;
        if (n as u64) < len {
            break;
        }
    }
    Ok(total)
}

/// Copies a NUL-terminated string from user memory (at most `max` bytes).
fn user_string(addr: u64, max: usize) -> core::result::Result<Vec<u8>, i64> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        let mut chunk = [0u8; 64];
        // Never read across a page boundary in one go: the next page may
        // be unmapped although the string ends before it.
        let room = (4096 - (at % 4096)) as usize;
        let n = room.min(chunk.len());
        copy_from_user(&mut chunk[..n], at)?;
        if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        if out.len() > max {
            return Err(ENAMETOOLONG);
        }
        at += n as u64;
    }
}

fn open(path: u64, flags: u64) -> Result {
    let path = user_string(path, 4096)?;
    let path = core::str::from_utf8(&path).map_err(|_| ENOENT)?;
    const O_ACCMODE: u64 = 3;
    if flags & O_ACCMODE != 0 {
        // Read-only file system.
        return Err(EACCES);
    }
    let file = super::ramdisk::open(path).ok_or(ENOENT)?;
    fd::install(OpenFile::Ramdisk { file, pos: 0 }).ok_or(super::syscall::EAGAIN)
}

fn close(fd_num: u64) -> Result {
    fd::close(fd_num).ok_or(EBADF)?;
    Ok(0)
}

fn lseek(fd_num: u64, offset: i64, whence: u64) -> Result {
    match fd::get(fd_num).ok_or(EBADF)? {
        OpenFile::Console => Err(ESPIPE),
        OpenFile::Ramdisk { file, pos } => {
            let base = match whence {
                0 => 0,
                1 => pos as i64,
                2 => file.data.len() as i64,
                _ => return Err(EINVAL),
            };
            let new = base.checked_add(offset).filter(|&p| p >= 0).ok_or(EINVAL)?;
            fd::set_pos(fd_num, new as u64);
            Ok(new)
        }
    }
}

const TIOCGWINSZ: u64 = 0x5413;

fn ioctl(fd_num: u64, request: u64, arg: u64) -> Result {
    match (fd::get(fd_num).ok_or(EBADF)?, request) {
        (OpenFile::Console, TIOCGWINSZ) => {
            // 25 rows, 80 columns: the console is a terminal.
            let winsize: [u16; 4] = [25, 80, 0, 0];
            let bytes: Vec<u8> = winsize.iter().flat_map(|v| v.to_le_bytes()).collect();
            copy_to_user(arg, &bytes)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

// ---- processes ----------------------------------------------------------------

fn fork(frame: &TrapFrame) -> Result {
    fork_onto(frame, None)
}

/// Fork; the child resumes at the same place with RAX = 0, on `stack` if
/// one is given (clone's new stack pointer).
fn fork_onto(frame: &TrapFrame, stack: Option<u64>) -> Result {
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

fn clone(frame: &TrapFrame, flags: u64, stack: u64) -> Result {
    // Only the flavours that mean "fork": no threads, and no memory shared
    // on a separate stack unless it is a vfork (CLONE_VM|CLONE_VFORK, as
    // posix_spawn uses it), which is served as a plain fork.
    let shares_memory = flags & CLONE_VM != 0 && stack != 0 && flags & CLONE_VFORK == 0;
    if flags & CLONE_THREAD != 0 || shares_memory {
        return Err(ENOSYS);
    }
    fork_onto(frame, (stack != 0).then_some(stack))
}

fn string_array(addr: u64) -> core::result::Result<Vec<Vec<u8>>, i64> {
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

fn execve(frame: &mut TrapFrame, path: u64, argv: u64, envp: u64) -> Result {
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

fn wait4(pid: i64, status: u64, options: u64) -> Result {
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

fn nanosleep(req: u64) -> Result {
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

// ---- the rest ------------------------------------------------------------------

fn sigaction(oldact: u64) -> Result {
    // Signal handlers are accepted and never called: faults kill.
    if oldact != 0 {
        copy_to_user(oldact, &[0u8; 32])?;
    }
    Ok(0)
}

fn sigprocmask(oldset: u64, size: u64) -> Result {
    if oldset != 0 {
        let zeros = alloc::vec![0u8; size.min(128) as usize];
        copy_to_user(oldset, &zeros)?;
    }
    Ok(0)
}

fn uname(buf: u64) -> Result {
    let mut uts = [0u8; 65 * 6];
    let fields = [
        "Ferrite",
        "ferrite",
        crate::VERSION,
        "Ferrite teaching kernel",
        "x86_64",
        "(none)",
    ];
    for (i, field) in fields.iter().enumerate() {
        uts[i * 65..i * 65 + field.len()].copy_from_slice(field.as_bytes());
    }
    copy_to_user(buf, &uts)?;
    Ok(0)
}

const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;

fn arch_prctl(code: u64, addr: u64) -> Result {
    match code {
        ARCH_SET_FS => {
            if addr >= USER_END {
                return Err(EPERM);
            }
            sched::with_current(|p| p.fs_base = addr);
            x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(addr));
            Ok(0)
        }
        ARCH_GET_FS => {
            let fs = sched::with_current(|p| p.fs_base);
            copy_to_user(addr, &fs.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

fn clock_gettime(ts: u64) -> Result {
    let ns = crate::time::uptime_ns();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    out[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    copy_to_user(ts, &out)?;
    Ok(0)
}
