//! Memory system calls: mmap, munmap, mprotect, madvise, mremap, brk.

use vmcore::mlock::LockRefused;
use vmcore::range::user_len;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, RangeError, Sharing, UserRange, VmError, Vma, VmaKind};

use super::*;
use crate::mm::aspace::{AddressSpace, SharedAddressSpace};
use crate::mm::layout::{MMAP_TOP, USER_MIN};
use crate::mm::{commit, pagecache};
use crate::proc::fd;
use crate::proc::sched;

pub(super) fn current_aspace() -> SharedAddressSpace {
    sched::with_current(|p| p.aspace.clone()).expect("a user process has an address space")
}

pub(super) fn prot_from(bits: u64) -> Result<Prot, Errno> {
    if bits & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(Prot::from_bits_truncate(bits as u8))
}

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_LOCKED: u64 = 0x2000;
const MAP_NORESERVE: u64 = 0x4000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// A shared anonymous object for one `mmap`, given back (by [`Drop`]) once
/// the address space has taken its own hold, or if the call fails.
struct NewObject(u32);

impl Drop for NewObject {
    fn drop(&mut self) {
        pagecache::release(self.0);
    }
}

pub(super) fn mmap(
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd_num: u64,
    offset: u64,
) -> SysResult {
    let prot = prot_from(prot)?;
    if len == 0 || !vmcore::is_page_aligned(offset) {
        return Err(Errno::EINVAL);
    }
    // Past user space or overflowing: ENOMEM.
    let len = user_len(len)?;
    if offset.checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    let sharing = match flags & 3 {
        MAP_SHARED | MAP_SHARED_VALIDATE => Sharing::Shared,
        MAP_PRIVATE => Sharing::Private,
        _ => return Err(Errno::EINVAL),
    };
    let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
    // MAP_LOCKED needs the right to lock at all (Linux's can_do_mlock).
    if flags & MAP_LOCKED != 0 {
        may_lock(&current_aspace().lock(), 0, 0).map_err(|_| Errno::EPERM)?;
    }
    // Checked before anything is created.
    let placement = if fixed {
        Some(UserRange::placement(addr, len, USER_MIN)?)
    } else {
        None
    };
    let writable = prot.contains(Prot::WRITE);
    // Overcommit (see mm::commit): MAP_NORESERVE is honoured except in
    // mode 2 (strict).
    let noreserve = flags & MAP_NORESERVE != 0 && commit::honours_noreserve();
    let mut object = None;
    let mut no_write = false;
    let kind = if flags & MAP_ANONYMOUS != 0 {
        match sharing {
            Sharing::Private => VmaKind::Anonymous,
            Sharing::Shared => {
                // A shared anonymous object is charged once for its whole
                // size, readable or writable (Linux's shmem_acct_size).
                let charge = match noreserve {
                    true => commit::Charge::none(),
                    false => commit::charge(len / vmcore::PAGE_SIZE)?,
                };
                let id = pagecache::register_anonymous(charge).ok_or(Errno::ENOMEM)?;
                object = Some(NewObject(id));
                VmaKind::File {
                    file: id,
                    offset: 0,
                }
            }
        }
    } else {
        let file = fd::get(fd_num).ok_or(Errno::EBADF)?;
        // Linux: a file not open for reading cannot be mapped; a shared
        // writable mapping needs it open for writing too.
        if !file.readable() {
            return Err(Errno::EACCES);
        }
        let target = file.ops().mmap_object(&file)?;
        // (Linux's VM_MAYWRITE: mprotect may not add write later.)
        no_write = sharing == Sharing::Shared && !(file.writable() && target.shared_writable);
        if writable && no_write {
            return Err(Errno::EACCES);
        }
        let file = target.cache_id;
        VmaKind::File { file, offset }
    };
    let shared_aspace = current_aspace();
    let mut aspace = shared_aspace.lock();
    // A locked mapping (MAP_LOCKED, or any under MCL_FUTURE) must fit
    // RLIMIT_MEMLOCK (Linux's mlock_future_ok: EAGAIN).
    let lock = (flags & MAP_LOCKED != 0)
        .then_some(false)
        .or(aspace.lock_future());
    if lock.is_some() {
        may_lock(&aspace, aspace.locked_bytes(), len).map_err(|_| Errno::EAGAIN)?;
    }
    let start = match placement {
        Some(range) => range.start(),
        None => {
            // A hint below the minimum mmap address is ignored, as Linux
            // does (the search starts at the minimum instead).
            let hint = (addr >= USER_MIN).then_some(vmcore::page_down(addr));
            aspace
                .vmas()
                .find_free(len, hint, USER_MIN, MMAP_TOP)
                .ok_or(Errno::ENOMEM)?
        }
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
            // Private writable memory is charged when mapped (refused:
            // ENOMEM), by the address space.
            account: Vma::accountable(sharing, prot, noreserve),
            noreserve,
            no_write,
        },
    };
    let mapped = if flags & MAP_FIXED != 0 {
        aspace.map_fixed(vma)
    } else {
        aspace.map(vma)
    };
    mapped.map_err(|e| match e {
        VmError::Overlap { .. } if flags & MAP_FIXED_NOREPLACE != 0 => Errno::EEXIST,
        VmError::BadOffset { .. } => Errno::EOVERFLOW,
        e => Errno::from(e),
    })?;
    drop(object);
    if flags & MAP_LOCKED != 0 {
        // (Under MCL_FUTURE the address space locked it already.) Room
        // for the range may be missing: then the pages are simply not
        // locked, as Linux ignores a failed populate here.
        let _ = aspace.mlock(start, start + len);
    }
    drop(aspace);
    if lock == Some(false) {
        // Linux populates a locked mapping and ignores a failure.
        let _ = populate(start, start + len, true);
    }
    Ok(start)
}

pub(super) fn munmap(addr: u64, len: u64) -> SysResult {
    // Any bad range is EINVAL for munmap, and so is an empty one.
    let range = UserRange::new(addr, len).map_err(|_: RangeError| Errno::EINVAL)?;
    if range.is_empty() {
        return Err(Errno::EINVAL);
    }
    // The frames go back after the lock is dropped (the end of this
    // statement): other threads' faults do not wait for the frees.
    let unmapped = current_aspace()
        .lock()
        .unmap_deferred(range.start(), range.end())
        .map_err(|e| Errno::vm_or(e, Errno::EINVAL))?;
    drop(unmapped);
    Ok(0)
}

pub(super) fn mprotect(addr: u64, len: u64, prot: u64) -> SysResult {
    let prot = prot_from(prot)?;
    // Unaligned: EINVAL; past user space or overflowing: ENOMEM.
    let range = UserRange::new(addr, len)?;
    if range.is_empty() {
        return Ok(0);
    }
    current_aspace()
        .lock()
        .protect(range.start(), range.end(), prot)
        .map_err(|e| match e {
            // Linux: a shared mapping of a file not open for writing.
            VmError::WriteDenied { .. } => Errno::EACCES,
            e => Errno::from(e),
        })?;
    Ok(0)
}

const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;

/// Advice Linux knows: NORMAL..DONTNEED (0-4), FREE..POPULATE_WRITE
/// (8-23), COLLAPSE (25). The others are hints Ferrite may ignore.
fn advice_known(advice: u64) -> bool {
    matches!(advice, 0..=4 | 8..=23 | 25)
}

pub(super) fn madvise(addr: u64, len: u64, advice: u64) -> SysResult {
    if !advice_known(advice) {
        return Err(Errno::EINVAL);
    }
    // Any bad range is EINVAL for madvise.
    let range = UserRange::new(addr, len).map_err(|_: RangeError| Errno::EINVAL)?;
    if range.is_empty() {
        return Ok(0);
    }
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    // Like Linux: the mapped parts get the advice; a hole anywhere in the
    // range makes the call fail with ENOMEM.
    let hole = aspace.vmas().first_hole(range.start(), range.end());
    if matches!(advice, MADV_DONTNEED | MADV_FREE) {
        aspace.discard(range.start(), range.end());
    }
    if hole.is_some() {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

pub(super) fn mremap(old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    if !vmcore::is_page_aligned(old)
        || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0
        || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
    {
        return Err(Errno::EINVAL);
    }
    // Every bad length or range is EINVAL for mremap, except a target
    // below the minimum mmap address (EPERM).
    let new_len = user_len(new_len).map_err(|_: RangeError| Errno::EINVAL)?;
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let old_len = vmcore::page_up(old_len).ok_or(Errno::EINVAL)?;
    if old_len == 0 {
        // Duplicating a shared mapping (old_len 0) is not supported.
        return Err(Errno::EINVAL);
    }
    let target = if flags & MREMAP_FIXED != 0 {
        let range = UserRange::placement(new_addr, new_len, USER_MIN).map_err(|e| match e {
            RangeError::BelowMinimum => Errno::EPERM,
            _ => Errno::EINVAL,
        })?;
        // The old and new ranges may not overlap.
        if range.start() < old.saturating_add(old_len) && old < range.end() {
            return Err(Errno::EINVAL);
        }
        Some(range)
    } else {
        None
    };
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    // There must be a region at `old` (Linux 6.1 looks first, too).
    let vma = *aspace.vmas().find(old).ok_or(Errno::EFAULT)?;
    if let Some(range) = target {
        aspace
            .unmap(range.start(), range.end())
            .map_err(|e| Errno::vm_or(e, Errno::EINVAL))?;
    }
    // Shrinking is always allowed, and is a munmap of the tail (with
    // munmap's checks: EINVAL for a range outside user space), as in Linux.
    if old_len > new_len {
        let tail = old
            .checked_add(new_len)
            .and_then(|start| UserRange::new(start, old_len - new_len).ok())
            .ok_or(Errno::EINVAL)?;
        aspace
            .unmap(tail.start(), tail.end())
            .map_err(|e| Errno::vm_or(e, Errno::EINVAL))?;
        if target.is_none() {
            return Ok(old);
        }
    } else if old_len == new_len && target.is_none() {
        return Ok(old);
    }
    let keep = old_len.min(new_len);
    if keep > vma.end - old {
        return Err(Errno::EFAULT);
    }
    // The part past the old end, as a region like the old one (charged
    // if the old one is, when it is mapped: growth may fail with ENOMEM).
    let extension = |start: u64, len: u64| Vma {
        start,
        end: start + len,
        kind: match vma.kind {
            VmaKind::File { file, offset } => VmaKind::File {
                file,
                offset: offset + (old + keep - vma.start),
            },
            anon => anon,
        },
        ..vma
    };
    // A locked region stays locked (the lock moves with it) and its new
    // part is locked and populated too, within RLIMIT_MEMLOCK (Linux's
    // VM_LOCKED check in mremap: EAGAIN).
    let locked = aspace.is_locked(old);
    let grown = new_len - keep;
    if (locked || aspace.lock_future().is_some()) && grown > 0 {
        may_lock(&aspace, aspace.locked_bytes(), grown).map_err(|_| Errno::EAGAIN)?;
    }
    let populate_new = |aspace: spin::MutexGuard<'_, AddressSpace>, start: u64| {
        let onfault = aspace.lock_future() == Some(true);
        let locked_now = aspace.is_locked(start);
        drop(aspace);
        if grown > 0 && locked_now && !onfault {
            let _ = populate(start, start + grown, true);
        }
    };
    if target.is_none() {
        // Grow in place if the space above is free.
        if let Ok(above) = UserRange::new(old + old_len, new_len - old_len) {
            if aspace.vmas().is_free(above.start(), above.end()) {
                aspace.map(extension(above.start(), above.len()))?;
                if locked {
                    let _ = aspace.mlock(above.start(), above.end());
                }
                populate_new(aspace, above.start());
                return Ok(old);
            }
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
    }
    let to = match target {
        Some(range) => range.start(),
        None => aspace
            .vmas()
            .find_free(new_len, None, USER_MIN, MMAP_TOP)
            .ok_or(Errno::ENOMEM)?,
    };
    // The extension first: if it is refused (overcommit), nothing moved.
    if new_len > keep {
        aspace.map(extension(to + keep, new_len - keep))?;
    }
    if let Err(e) = aspace.move_region(old, keep, to) {
        if new_len > keep {
            let _ = aspace.unmap(to + keep, to + new_len);
        }
        return Err(e.into());
    }
    if locked && grown > 0 {
        let _ = aspace.mlock(to + keep, to + new_len);
    }
    populate_new(aspace, to + keep);
    Ok(to)
}

/// Largest heap: a quarter of the user half is plenty; the overcommit check
/// (the heap is charged as it grows) usually refuses first.
const BRK_MAX: u64 = 1 << 45;

pub(super) fn brk(addr: u64) -> SysResult {
    let (start, current) = sched::thread::with_current_group(|p| p.brk);
    if addr < start || addr - start > BRK_MAX {
        return Ok(current);
    }
    let old_end = vmcore::page_up(current).ok_or(Errno::ENOMEM)?;
    let new_end = match vmcore::page_up(addr) {
        Some(e) => e,
        None => return Ok(current),
    };
    let shared_aspace = current_aspace();
    let mut aspace = shared_aspace.lock();
    let mut populate_heap = false;
    if new_end > old_end {
        // Under MCL_FUTURE the new heap is locked: within RLIMIT_MEMLOCK
        // (else brk fails), and populated (Linux's brk does both).
        if let Some(onfault) = aspace.lock_future() {
            if may_lock(&aspace, aspace.locked_bytes(), new_end - old_end).is_err() {
                return Ok(current);
            }
            populate_heap = !onfault;
        }
        let heap = Vma {
            start: old_end,
            end: new_end,
            prot: Prot::RW,
            sharing: Sharing::Private,
            kind: VmaKind::Anonymous,
            flags: VmaFlags {
                grows_down: false,
                tag: VmaTag::Heap,
                account: true,
                noreserve: false,
                no_write: false,
            },
        };
        if aspace.map(heap).is_err() {
            return Ok(current);
        }
    } else if new_end < old_end && aspace.unmap(new_end, old_end).is_err() {
        return Ok(current);
    }
    drop(aspace);
    sched::thread::with_current_group(|p| p.brk.1 = addr);
    if populate_heap {
        let _ = populate(old_end, new_end, true);
    }
    Ok(addr)
}

/// `mincore`: one byte per page of `[addr, addr + len)`, 1 if the page is
/// resident (mapped in this address space's tables). The range must be
/// mapped throughout (a hole is `ENOMEM`, as is a range past user space);
/// the vector is written a chunk at a time, outside the address-space
/// lock.
pub(super) fn mincore(addr: u64, len: u64, vec: u64) -> SysResult {
    if !vmcore::is_page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    let len = vmcore::page_up(len).ok_or(Errno::ENOMEM)?;
    let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
    if end > vmcore::USER_END {
        return Err(Errno::ENOMEM);
    }
    let aspace = current_aspace();
    if aspace.lock().vmas().first_hole(addr, end).is_some() {
        return Err(Errno::ENOMEM);
    }
    let mut chunk = [0u8; 256];
    let mut at = addr;
    let mut out = vec;
    while at < end {
        let n = ((end - at) / vmcore::PAGE_SIZE).min(chunk.len() as u64) as usize;
        {
            let mut aspace = aspace.lock();
            for (i, byte) in chunk[..n].iter_mut().enumerate() {
                let page = at + i as u64 * vmcore::PAGE_SIZE;
                *byte = aspace.translate(page).is_some().into();
            }
        }
        crate::mm::uaccess::copy_to_user(out, &chunk[..n])?;
        at += n as u64 * vmcore::PAGE_SIZE;
        out += n as u64;
    }
    Ok(0)
}

/// The page-aligned range `mlock`/`munlock` act on: `addr` rounded down,
/// the length grown to match and rounded up. `None` if it overflows or
/// leaves user space (`ENOMEM`).
fn lock_range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    let start = vmcore::page_down(addr);
    let len = len.checked_add(addr - start).ok_or(Errno::EINVAL)?;
    let len = vmcore::page_up(len).ok_or(Errno::EINVAL)?;
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if end > vmcore::USER_END {
        return Err(Errno::ENOMEM);
    }
    Ok((start, end))
}

/// Faults in every page of `[start, end)` as `mlock` does (Linux's
/// `__mm_populate`): private writable pages for writing (their own copy),
/// other readable ones for reading. A region that cannot be read
/// (`PROT_NONE`) fails the call (`ENOMEM`) unless `skip_inaccessible`
/// (`mlockall`). Each page is touched through the user-copy path, so a
/// fault here reclaims (and may OOM-kill) like any other.
fn populate(start: u64, end: u64, skip_inaccessible: bool) -> Result<(), Errno> {
    let aspace = current_aspace();
    let mut at = start;
    while at < end {
        let vma = aspace.lock().vmas().find(at).copied();
        let Some(vma) = vma else {
            return Err(Errno::ENOMEM);
        };
        let stop = vma.end.min(end);
        if !vma.prot.contains(Prot::READ) && !skip_inaccessible {
            return Err(Errno::ENOMEM);
        }
        if vma.prot.contains(Prot::READ) {
            let write = vma.prot.contains(Prot::WRITE) && vma.sharing == Sharing::Private;
            while at < stop {
                // Killed (the OOM killer chose it, maybe for this very
                // loop): stop, it dies on its way out (Linux's
                // `fatal_signal_pending` in `__mm_populate`).
                if crate::proc::sched::kill_pending() {
                    return Err(Errno::EINTR);
                }
                let byte: u8 = crate::mm::uaccess::read_user(at).map_err(|_| Errno::ENOMEM)?;
                if write {
                    // The same byte back: only the fault matters (this
                    // process runs nothing else meanwhile).
                    crate::mm::uaccess::write_user(at, &byte).map_err(|_| Errno::ENOMEM)?;
                }
                at += vmcore::PAGE_SIZE;
            }
        }
        at = stop;
    }
    Ok(())
}

const MLOCK_ONFAULT: u64 = 1;

/// Whether the caller holds `CAP_IPC_LOCK`. Ferrite's single user is root
/// with every capability, and a process cannot drop it: so, as for root on
/// Linux, `RLIMIT_MEMLOCK` is checked (the rule is vmcore's `may_lock`)
/// but never refuses.
fn cap_ipc_lock() -> bool {
    true
}

/// [`vmcore::mlock::may_lock`] for the caller, whose address space (with
/// the limits) is `a`: `locked` bytes locked now and `more` to lock.
fn may_lock(a: &AddressSpace, locked: u64, more: u64) -> Result<(), LockRefused> {
    let limit = a.rlimits().cur(vmcore::rlimit::RLIMIT_MEMLOCK);
    vmcore::mlock::may_lock(locked, more, limit, cap_ipc_lock())
}

/// `mlock`'s and `mlockall`'s errors for a refusal.
fn lock_errno(e: LockRefused) -> Errno {
    match e {
        LockRefused::NotPermitted => Errno::EPERM,
        LockRefused::OverLimit => Errno::ENOMEM,
    }
}

/// `mlock`/`mlock2`: the range must be mapped throughout (`ENOMEM`); it is
/// locked (reclaim passes its pages over: `AddressSpace::is_locked`) and
/// its pages are faulted in now unless `MLOCK_ONFAULT` (then each on its
/// first touch, and kept from then on).
pub(super) fn mlock2(addr: u64, len: u64, flags: u64) -> SysResult {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = lock_range(addr, len)?;
    if start == end {
        return Ok(0);
    }
    {
        let aspace = current_aspace();
        let mut aspace = aspace.lock();
        if aspace.vmas().first_hole(start, end).is_some() {
            return Err(Errno::ENOMEM);
        }
        // RLIMIT_MEMLOCK, counting what is locked already once (Linux's
        // do_mlock).
        let more = (end - start) - aspace.locked_bytes_in(start, end);
        may_lock(&aspace, aspace.locked_bytes(), more).map_err(lock_errno)?;
        // Locked before the pages come in, so none goes meanwhile (Linux
        // sets VM_LOCKED first too; a failed populate leaves it set).
        aspace.mlock(start, end).map_err(|_| Errno::ENOMEM)?;
    }
    if flags & MLOCK_ONFAULT == 0 {
        populate(start, end, false)?;
    }
    Ok(0)
}

pub(super) fn munlock(addr: u64, len: u64) -> SysResult {
    let (start, end) = lock_range(addr, len)?;
    if start == end {
        return Ok(0);
    }
    let aspace = current_aspace();
    let mut aspace = aspace.lock();
    if aspace.vmas().first_hole(start, end).is_some() {
        return Err(Errno::ENOMEM);
    }
    aspace.munlock(start, end).map_err(|_| Errno::ENOMEM)?;
    Ok(0)
}

const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

pub(super) fn mlockall(flags: u64) -> SysResult {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    // Linux's mlockall: the right to lock at all, then (MCL_CURRENT) the
    // whole address space within RLIMIT_MEMLOCK; MCL_FUTURE makes every
    // later region locked (populated unless MCL_ONFAULT), and its absence
    // ends an earlier MCL_FUTURE.
    {
        let aspace = current_aspace();
        let mut aspace = aspace.lock();
        may_lock(&aspace, 0, 0).map_err(lock_errno)?;
        if flags & MCL_CURRENT != 0 {
            may_lock(&aspace, 0, aspace.vmas().total_bytes()).map_err(lock_errno)?;
        }
        let future = (flags & MCL_FUTURE != 0).then_some(flags & MCL_ONFAULT != 0);
        aspace.set_lock_future(future);
    }
    if flags & MCL_CURRENT != 0 {
        // Every region is locked.
        let aspace = current_aspace();
        let mut aspace = aspace.lock();
        let mut at = 0;
        loop {
            // The first region ending above `at`, in O(log n).
            let next = aspace
                .vmas()
                .overlapping(at, vmcore::USER_END)
                .next()
                .map(|v| (v.start, v.end));
            let Some((start, end)) = next else { break };
            aspace.mlock(start, end).map_err(|_| Errno::ENOMEM)?;
            at = end;
        }
    }
    if flags & MCL_CURRENT != 0 && flags & MCL_ONFAULT == 0 {
        // Every region now, one at a time (the list may change as pages
        // fault in: a stack grows).
        let mut at = 0;
        loop {
            let next = current_aspace()
                .lock()
                .vmas()
                .overlapping(at, vmcore::USER_END)
                .next()
                .map(|v| (v.start.max(at), v.end));
            let Some((start, end)) = next else { break };
            populate(start, end, true)?;
            at = end;
        }
    }
    Ok(0)
}

pub(super) fn munlockall() -> SysResult {
    current_aspace().lock().munlock_all();
    Ok(0)
}
const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// `msync`: shared file mappings write straight into the page cache (the
/// tmpfs file is the cache), so there is nothing to write back; the
/// arguments are checked as Linux checks them.
pub(super) fn msync(addr: u64, len: u64, flags: u64) -> SysResult {
    if !vmcore::is_page_aligned(addr)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let range = UserRange::new(addr, len).map_err(|_: RangeError| Errno::ENOMEM)?;
    if range.is_empty() {
        return Ok(0);
    }
    let aspace = current_aspace();
    let aspace = aspace.lock();
    if aspace
        .vmas()
        .first_hole(range.start(), range.end())
        .is_some()
    {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}
