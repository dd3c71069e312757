//! Memory system calls: mmap, munmap, mprotect, madvise, mremap, brk.

use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, Vma, VmaKind};

use super::*;
use crate::mm::aspace::SharedAddressSpace;
use crate::mm::layout::{MMAP_TOP, USER_END, USER_MIN};
use crate::mm::{frames, pagecache};
use crate::proc::fd::{self, OpenFile};
use crate::proc::sched;

pub(super) fn current_aspace() -> SharedAddressSpace {
    sched::with_current(|p| p.aspace.clone()).expect("a user process has an address space")
}

pub(super) fn page_up(len: u64) -> core::result::Result<u64, i64> {
    vmcore::page_up(len).ok_or(ENOMEM)
}

pub(super) fn prot_from(bits: u64) -> core::result::Result<Prot, i64> {
    if bits & !7 != 0 {
        return Err(EINVAL);
    }
    Ok(Prot::from_bits_truncate(bits as u8))
}

/// Linux's heuristic overcommit, roughly: one private writable mapping may
/// not exceed all of RAM, so absurd requests fail up front with ENOMEM.
pub(super) fn too_big(len: u64) -> bool {
    len > frames::stats().managed_pages * 4096
}

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

pub(super) fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd_num: u64, offset: u64) -> Result {
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

pub(super) fn checked_range(addr: u64, len: u64) -> core::result::Result<(u64, u64), i64> {
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

pub(super) fn munmap(addr: u64, len: u64) -> Result {
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

pub(super) fn mprotect(addr: u64, len: u64, prot: u64) -> Result {
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

pub(super) fn madvise(addr: u64, len: u64, advice: u64) -> Result {
    let (start, end) = checked_range(addr, len)?;
    if advice == MADV_DONTNEED {
        current_aspace().lock().discard(start, end);
    }
    Ok(0)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

pub(super) fn mremap(old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> Result {
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

pub(super) fn brk(addr: u64) -> Result {
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
