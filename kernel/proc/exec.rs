//! Loading a static ELF executable (from the ramdisk or any file with a
//! page-cache object: a tmpfs file) into a fresh address
//! space: every PT_LOAD segment becomes a private file-backed region with its
//! own permissions (demand-paged from the page cache), the rest of the bss an
//! anonymous region, and the stack gets argc, argv, envp and the auxiliary
//! vector. Nothing is read from the file until the program touches it.

use alloc::string::String;
use core::fmt;

use spin::Mutex;
use usercore::elf::{self, ElfError, ElfKind};
use usercore::stack;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, Vma, VmaKind};

use super::ramdisk::{self, RamFile};
use crate::arch::trap::TrapFrame;
use crate::arch::usermode::user_frame;
use crate::mm::aspace::{AddressSpace, ImageInfo, SharedAddressSpace};
use crate::mm::kalloc;
use crate::mm::layout::{PIE_BASE, USER_END, USER_STACK_TOP};
use crate::mm::uaccess;

#[derive(Debug)]
pub enum ExecError {
    NotFound,
    Elf(ElfError),
    TooBig,
    OutOfMemory,
    Region(vmcore::VmError),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ExecError::NotFound => write!(f, "no such file in the ramdisk"),
            ExecError::Elf(e) => write!(f, "not a runnable program: {e}"),
            ExecError::TooBig => write!(f, "arguments and environment too large"),
            ExecError::OutOfMemory => write!(f, "out of memory"),
            ExecError::Region(e) => write!(f, "bad memory layout: {e}"),
        }
    }
}

impl From<ElfError> for ExecError {
    fn from(e: ElfError) -> ExecError {
        match e {
            ElfError::OutOfMemory => ExecError::OutOfMemory,
            e => ExecError::Elf(e),
        }
    }
}

impl From<stack::StackError> for ExecError {
    fn from(e: stack::StackError) -> ExecError {
        match e {
            stack::StackError::OutOfMemory => ExecError::OutOfMemory,
            _ => ExecError::TooBig,
        }
    }
}

impl From<vmcore::VmError> for ExecError {
    fn from(e: vmcore::VmError) -> ExecError {
        match e {
            // Refused by the overcommit policy: ENOMEM, as in Linux.
            vmcore::VmError::Overcommit { .. } => ExecError::OutOfMemory,
            e => ExecError::Region(e),
        }
    }
}

impl From<kalloc::AllocError> for ExecError {
    fn from(_: kalloc::AllocError) -> ExecError {
        ExecError::OutOfMemory
    }
}

impl From<crate::mm::aspace::OutOfMemory> for ExecError {
    fn from(_: crate::mm::aspace::OutOfMemory) -> ExecError {
        ExecError::OutOfMemory
    }
}

/// A program ready to run.
pub struct Image {
    pub aspace: SharedAddressSpace,
    pub frame: TrapFrame,
    pub brk: (u64, u64),
    pub name: String,
}

fn prot(p: elf::Prot) -> Prot {
    let mut prot = Prot::NONE;
    if p.read {
        prot |= Prot::READ;
    }
    if p.write {
        prot |= Prot::WRITE;
    }
    if p.exec {
        prot |= Prot::EXEC;
    }
    prot
}

fn region(start: u64, end: u64, prot: Prot, kind: VmaKind, tag: VmaTag) -> Vma {
    Vma {
        start,
        end,
        prot,
        sharing: Sharing::Private,
        kind,
        flags: VmaFlags {
            grows_down: tag == VmaTag::Stack,
            tag,
            // Writable segments, the bss and the stack are charged to the
            // commit count, as Linux's ELF loader charges them.
            account: Vma::accountable(Sharing::Private, prot, false),
            noreserve: false,
            no_write: false,
        },
    }
}

/// Bytes of zeros to write the zeroed tails of file pages from (a tail is
/// less than a page).
static ZEROS: [u8; 4096] = [0; 4096];

/// Where the program's text, data and arguments went (Linux's ELF loader
/// sets the same `mm_struct` fields): the text is the executable file
/// segment, the data the writable one.
fn image_info(plan: &elf::LoadPlan, initial: &stack::StackImage, file: u32) -> ImageInfo {
    let mut info = ImageInfo {
        start_stack: initial.rsp,
        arg_start: initial.arg_start,
        arg_end: initial.arg_end,
        env_start: initial.arg_end,
        env_end: initial.env_end,
        exe: ramdisk::path_of(file),
        ..ImageInfo::default()
    };
    for r in plan.segments.iter().filter_map(|s| s.file.as_ref()) {
        if r.prot.exec && info.end_code == 0 {
            (info.start_code, info.end_code) = (r.start, r.end);
        } else if r.prot.write && info.end_data == 0 {
            (info.start_data, info.end_data) = (r.start, r.end);
        }
    }
    info
}

/// Builds the address space and initial registers for `path`.
pub fn load(path: &str, argv: &[&[u8]], envp: &[&[u8]]) -> Result<Image, ExecError> {
    let file = ramdisk::open(path).ok_or(ExecError::NotFound)?;
    load_file(file, path, argv, envp)
}

/// [`load`] for a file already at hand (`path` names the program).
pub fn load_file(
    file: RamFile,
    path: &str,
    argv: &[&[u8]],
    envp: &[&[u8]],
) -> Result<Image, ExecError> {
    let program = Program {
        head: file.data,
        len: file.data.len() as u64,
        id: file.id,
    };
    load_program(&program, path, argv, envp)
}

/// A program file as the loader needs it: its first bytes (at least the
/// ELF header and the program-header table), its length, and the
/// page-cache object its segments are mapped from (privately: a write
/// goes to a copy, as for a ramdisk file).
pub struct Program<'a> {
    pub head: &'a [u8],
    pub len: u64,
    pub id: u32,
}

/// The most bytes read from the start of a file that is not in memory
/// whole for its headers (the header and a program-header table of at
/// most 64 KiB, which may lie a little way in).
const MAX_HEAD: u64 = 128 * 1024;

/// The first bytes of regular file `inode` of `len` bytes: the ELF
/// header, then as far as its program-header table reaches (`None` if
/// that lies past [`MAX_HEAD`]: not a program this loader runs).
pub fn read_head(
    inode: &crate::fs::vfs::InodeRef,
    len: u64,
) -> Result<Option<alloc::vec::Vec<u8>>, crate::proc::syscall::Errno> {
    let mut head = kalloc::try_zeroed(len.min(elf::EHDR_SIZE as u64) as usize)?;
    let n = inode.read_kernel(0, &mut head)?;
    head.truncate(n);
    let Some(want) = elf::head_len(&head) else {
        // Too short or not ELF: the parser says which.
        return Ok(Some(head));
    };
    let want = want.min(len);
    if want > MAX_HEAD {
        return Ok(None);
    }
    if want as usize > head.len() {
        let more = want as usize - head.len();
        kalloc::try_reserve(&mut head, more)?;
        let at = head.len();
        head.resize(want as usize, 0);
        let n = inode.read_kernel(at as u64, &mut head[at..])?;
        head.truncate(at + n);
    }
    Ok(Some(head))
}

/// [`load`] for the node a path walk found (`path` names the program):
/// a ramdisk file, or any regular file with a page-cache object (a tmpfs
/// file). `EACCES` if it is not a regular file or has no execute bit (one
/// user, root: Linux's root still needs one x bit), `ENOEXEC` if it is
/// not a program this loader runs.
pub fn load_node(
    inode: &crate::fs::vfs::InodeRef,
    path: &str,
    argv: &[&[u8]],
    envp: &[&[u8]],
) -> Result<Image, crate::proc::syscall::Errno> {
    use crate::proc::syscall::Errno;
    let st = inode.stat();
    if inode.file_type() != usercore::fsabi::FileType::Regular || st.st_mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    let id = inode.mmap_object().map_err(|_| Errno::EACCES)?.cache_id;
    // A ramdisk file is in memory whole.
    if let Some(file) = ramdisk::path_of(id).and_then(ramdisk::open) {
        return Ok(load_file(file, path, argv, envp)?);
    }
    let len = st.st_size as u64;
    let head = read_head(inode, len)?.ok_or(Errno::ENOEXEC)?;
    let program = Program {
        head: &head,
        len,
        id,
    };
    Ok(load_program(&program, path, argv, envp)?)
}

/// [`load_file`] for any program file.
pub fn load_program(
    file: &Program,
    path: &str,
    argv: &[&[u8]],
    envp: &[&[u8]],
) -> Result<Image, ExecError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = kalloc::try_string(name)?;
    let image = elf::parse_head(file.head, file.len)?;
    let bias = match image.kind {
        ElfKind::Exec => 0,
        ElfKind::StaticPie => PIE_BASE,
    };
    let plan = image.load_plan(bias, USER_END)?;
    let mut aspace = AddressSpace::new()?;
    // Linux's defaults (execve hands the old program's limits on: see
    // `syscall::process::execve`).
    *aspace.rlimits_mut() = vmcore::rlimit::Rlimits::new(super::fd::MAX_FDS as u64);
    for segment in &plan.segments {
        if let Some(r) = &segment.file {
            let kind = VmaKind::File {
                file: file.id,
                offset: r.file_offset,
            };
            // A zeroed tail is written through the user mapping: writable
            // until then (`protect` below gives the segment its own
            // permissions back). Without this, the tail of a read-only
            // segment could not be written and exec failed.
            let mut p = prot(r.prot);
            if segment.zero_tail.is_some() {
                p |= Prot::WRITE;
            }
            let mut vma = region(r.start, r.end, p, kind, VmaTag::Image);
            // Charged by its own permissions: writable just for the tail,
            // a read-only segment is not.
            vma.flags.account = Vma::accountable(Sharing::Private, prot(r.prot), false);
            aspace.map(vma)?;
        }
        if let Some(r) = &segment.anon {
            aspace.map(region(
                r.start,
                r.end,
                prot(r.prot),
                VmaKind::Anonymous,
                VmaTag::Image,
            ))?;
        }
    }
    // The stack: its first pages now (the arguments go there), the rest on
    // demand as it grows down.
    let stack_start = USER_STACK_TOP - 16 * 4096;
    aspace.map(region(
        stack_start,
        USER_STACK_TOP,
        Prot::RW,
        VmaKind::Anonymous,
        VmaTag::Stack,
    ))?;
    // The vDSO (clocks without a system call), announced in the auxv.
    let vdso = super::vdso::map_into(&mut aspace)?;
    let aspace = kalloc::try_arc(Mutex::new(aspace))?;

    // Fill in what needs writing through the new address space: the zeroed
    // tails of file pages and the initial stack.
    // AT_RANDOM: 16 bytes for the C library's stack protector and
    // pointer guard.
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    // AT_PHDR first when the program headers are loaded (a fixed array:
    // nothing to allocate).
    let auxv_all = [
        (stack::AT_PHDR, plan.phdr_addr.unwrap_or(0)),
        (stack::AT_PHENT, image.phentsize as u64),
        (stack::AT_PHNUM, image.phnum as u64),
        (stack::AT_PAGESZ, 4096),
        (stack::AT_BASE, 0),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, plan.entry),
        (stack::AT_UID, 0),
        (stack::AT_EUID, 0),
        (stack::AT_GID, 0),
        (stack::AT_EGID, 0),
        (stack::AT_SECURE, 0),
        (stack::AT_CLKTCK, crate::time::TICK_HZ),
        (stack::AT_HWCAP, 0),
        (stack::AT_SYSINFO_EHDR, vdso),
    ];
    let auxv = &auxv_all[usize::from(plan.phdr_addr.is_none())..];
    let initial = stack::build(USER_STACK_TOP, argv, envp, auxv, random, "x86_64")?;
    if initial.start < stack_start {
        return Err(ExecError::TooBig);
    }
    aspace.lock().image = image_info(&plan, &initial, file.id);
    let previous = crate::mm::aspace::current();
    crate::mm::aspace::switch_to(Some(aspace.clone()));
    // The regions were checked writable above, so a failed copy means the
    // fault handler found no memory.
    let written = (|| {
        for segment in &plan.segments {
            let (Some(tail), Some(file)) = (&segment.zero_tail, &segment.file) else {
                continue;
            };
            let zeros = &ZEROS[..(tail.end - tail.start) as usize];
            uaccess::copy_to_user(tail.start, zeros).map_err(|_| ExecError::OutOfMemory)?;
            if !file.prot.write {
                aspace
                    .lock()
                    .protect(file.start, file.end, prot(file.prot))?;
            }
        }
        uaccess::copy_to_user(initial.start, &initial.bytes).map_err(|_| ExecError::OutOfMemory)
    })();
    crate::mm::aspace::switch_to(previous);
    written?;
    Ok(Image {
        aspace,
        frame: user_frame(plan.entry, initial.rsp),
        brk: (plan.brk_start, plan.brk_start),
        name,
    })
}
