//! Static ELF64 x86_64 executables: validation and load plans.
//!
//! [`parse`] checks everything the kernel relies on before it touches a page
//! table (the ideas follow Linux's `fs/binfmt_elf.c`): the header identifies
//! a little-endian x86_64 ELF64 executable, every `PT_LOAD` segment lies
//! inside the file, is page-congruent and does not overlap another, and the
//! entry point is in executable code. Programs that need a dynamic loader
//! (`PT_INTERP`) are refused; static-PIE (`ET_DYN` without `PT_INTERP`) is
//! accepted because it relocates itself.
//!
//! [`ElfImage::load_plan`] then turns the segments into page-granular
//! regions for a chosen load bias, checked against the user address range.

use alloc::vec::Vec;
use core::fmt;

use crate::{page_down, page_up, PAGE_SIZE};

/// `e_type`: a fixed-address executable.
pub const ET_EXEC: u16 = 2;
/// `e_type`: a position-independent object (here: static-PIE).
pub const ET_DYN: u16 = 3;
/// `e_machine` for x86_64.
pub const EM_X86_64: u16 = 62;
/// Segment type: loadable.
pub const PT_LOAD: u32 = 1;
/// Segment type: dynamic-linking information.
pub const PT_DYNAMIC: u32 = 2;
/// Segment type: path of the dynamic loader.
pub const PT_INTERP: u32 = 3;
/// Segment type: the program header table itself.
pub const PT_PHDR: u32 = 6;
/// Segment type: thread-local storage template.
pub const PT_TLS: u32 = 7;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
pub const PHDR_SIZE: usize = 56;
/// Largest program header table accepted (Linux uses the same limit), so a
/// hostile `e_phnum` cannot make the kernel walk megabytes of headers.
pub const MAX_PHDR_TABLE: usize = 65536;
/// Lowest address a segment may occupy: Linux's default `mmap_min_addr`,
/// which keeps NULL-pointer dereferences faulting.
pub const MIN_USER_ADDR: u64 = 0x10000;
/// A sensible static-PIE load bias (Linux's `ELF_ET_DYN_BASE` on x86_64).
pub const DEFAULT_PIE_BIAS: u64 = 0x5555_5555_4000;

/// Why an ELF file cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The file is smaller than an ELF header.
    TooShort,
    /// The file does not start with `\x7fELF`.
    BadMagic,
    /// Not ELFCLASS64.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not `EV_CURRENT`.
    BadVersion,
    /// `e_machine` is not x86_64; holds the value found.
    WrongMachine(u16),
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`; holds the value found.
    NotExecutable(u16),
    /// The file has a `PT_INTERP`: it needs a dynamic loader.
    Dynamic,
    /// `e_phentsize` is not 56.
    BadPhentsize(u16),
    /// The program header table is empty or outside the file.
    BadPhdrTable,
    /// More program headers than fit in [`MAX_PHDR_TABLE`] bytes (Linux's
    /// `binfmt_elf` limit: `ENOEXEC`).
    TooManyPhdrs {
        /// `e_phnum`.
        phnum: u16,
    },
    /// No memory for the segment list (the kernel returns `ENOMEM`).
    OutOfMemory,
    /// There is no `PT_LOAD` segment.
    NoLoadSegments,
    /// Program header `index` has `p_filesz > p_memsz`.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
    },
    /// Program header `index` extends past the end of the file.
    SegmentOutsideFile {
        /// Program header index.
        index: usize,
    },
    /// Program header `index` has `p_vaddr % 4096 != p_offset % 4096`, so it
    /// cannot be mapped page by page.
    Misaligned {
        /// Program header index.
        index: usize,
    },
    /// Program header `index` has a `p_align` that is not a power of two.
    BadAlign {
        /// Program header index.
        index: usize,
    },
    /// Program header `index` is a `PT_LOAD` with `p_memsz == 0`.
    EmptySegment {
        /// Program header index.
        index: usize,
    },
    /// An address computation for program header `index` overflows.
    Overflow {
        /// Program header index.
        index: usize,
    },
    /// `PT_LOAD` segments `first` and `second` overlap in memory.
    Overlap {
        /// Program header index of one segment.
        first: usize,
        /// Program header index of the other.
        second: usize,
    },
    /// `PT_LOAD` segments `first` and `second` share a page, which a
    /// page-granular loader cannot give two sets of contents or permissions.
    /// Link with page-aligned segments (`-z separate-code`, or
    /// `. = ALIGN(4096)` between segments in a linker script).
    SharedPage {
        /// Program header index of one segment.
        first: usize,
        /// Program header index of the other.
        second: usize,
    },
    /// The entry point is not inside the file-backed part of an executable
    /// `PT_LOAD` segment.
    BadEntry(u64),
    /// `PT_PHDR` does not lie inside a `PT_LOAD` segment.
    PhdrNotLoaded,
    /// A load bias was given for an `ET_EXEC` file (it must be 0).
    BiasNotAllowed,
    /// The load bias is not page aligned.
    MisalignedBias(u64),
    /// After relocation, program header `index` lies below
    /// [`MIN_USER_ADDR`] or at/above the end of user space.
    OutsideUserSpace {
        /// Program header index.
        index: usize,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort => write!(f, "ELF: file is smaller than an ELF header"),
            Self::BadMagic => write!(f, "ELF: not an ELF file (bad magic)"),
            Self::NotElf64 => write!(f, "ELF: not a 64-bit ELF file"),
            Self::NotLittleEndian => write!(f, "ELF: not a little-endian ELF file"),
            Self::BadVersion => write!(f, "ELF: unknown ELF version"),
            Self::WrongMachine(m) => write!(f, "ELF: machine {m} is not x86_64 (62)"),
            Self::NotExecutable(t) => {
                write!(f, "ELF: type {t} is not an executable (ET_EXEC or ET_DYN)")
            }
            Self::Dynamic => write!(f, "ELF: dynamically linked programs are not supported"),
            Self::BadPhentsize(s) => write!(f, "ELF: program header size is {s}, expected 56"),
            Self::BadPhdrTable => write!(
                f,
                "ELF: program header table is empty or outside the file"
            ),
            Self::TooManyPhdrs { phnum } => write!(
                f,
                "ELF: too many program headers ({phnum}, at most {} in {} KiB)",
                MAX_PHDR_TABLE / PHDR_SIZE,
                MAX_PHDR_TABLE / 1024
            ),
            Self::OutOfMemory => write!(f, "ELF: out of memory for the segment list"),
            Self::NoLoadSegments => write!(f, "ELF: no loadable segments"),
            Self::FileSizeExceedsMemSize { index } => {
                write!(f, "ELF: segment {index} has a file size larger than its memory size")
            }
            Self::SegmentOutsideFile { index } => {
                write!(f, "ELF: segment {index} extends past the end of the file")
            }
            Self::Misaligned { index } => write!(
                f,
                "ELF: segment {index} address and file offset are not congruent modulo the page size"
            ),
            Self::BadAlign { index } => {
                write!(f, "ELF: segment {index} alignment is not a power of two")
            }
            Self::EmptySegment { index } => write!(f, "ELF: segment {index} is empty"),
            Self::Overflow { index } => {
                write!(f, "ELF: segment {index} address arithmetic overflows")
            }
            Self::Overlap { first, second } => {
                write!(f, "ELF: segments {first} and {second} overlap in memory")
            }
            Self::SharedPage { first, second } => write!(
                f,
                "ELF: segments {first} and {second} share a page (link with page-aligned segments)"
            ),
            Self::BadEntry(e) => write!(
                f,
                "ELF: entry point {e:#x} is not inside an executable segment"
            ),
            Self::PhdrNotLoaded => {
                write!(f, "ELF: PT_PHDR is not inside a loadable segment")
            }
            Self::BiasNotAllowed => {
                write!(f, "ELF: a fixed-address (ET_EXEC) program cannot be relocated")
            }
            Self::MisalignedBias(b) => write!(f, "ELF: load bias {b:#x} is not page aligned"),
            Self::OutsideUserSpace { index } => {
                write!(f, "ELF: segment {index} lies outside user space")
            }
        }
    }
}

impl core::error::Error for ElfError {}

/// What kind of executable this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: linked at fixed addresses; load bias must be 0.
    Exec,
    /// `ET_DYN` without `PT_INTERP`: relocates itself; the kernel picks a
    /// page-aligned load bias.
    StaticPie,
}

/// Page permissions for a segment, from its `p_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub exec: bool,
}

impl Prot {
    fn from_flags(flags: u32) -> Self {
        Self {
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            exec: flags & PF_X != 0,
        }
    }
}

/// A validated `PT_LOAD` segment, in link-time addresses (before the bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    /// Index of the program header this came from (used in error messages).
    pub index: usize,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_memsz`: bytes of memory, `> 0`.
    pub memsz: u64,
    /// `p_filesz`: leading bytes that come from the file, `<= memsz`.
    pub filesz: u64,
    /// `p_offset`: where those bytes start in the file.
    pub offset: u64,
    /// Permissions.
    pub prot: Prot,
}

/// The `PT_TLS` template, for a runtime that sets up thread-local storage.
/// Informational: the kernel does not need it (the C runtime reads it via
/// `AT_PHDR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsInfo {
    /// Link-time address of the initialisation image.
    pub vaddr: u64,
    /// Bytes of initialised TLS data.
    pub filesz: u64,
    /// Total TLS block size (the rest is zeroed).
    pub memsz: u64,
    /// Required alignment.
    pub align: u64,
}

/// A validated static executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    /// Fixed-address or static-PIE.
    pub kind: ElfKind,
    /// Link-time entry point.
    pub entry: u64,
    /// The `PT_LOAD` segments, sorted by address.
    pub segments: Vec<LoadSegment>,
    /// Link-time address of the program header table (for `AT_PHDR`): from
    /// `PT_PHDR`, or computed from the `PT_LOAD` segment whose file range
    /// contains it; `None` if the table is not loaded at all.
    pub phdr: Option<u64>,
    /// `e_phnum` (for `AT_PHNUM`).
    pub phnum: u16,
    /// `e_phentsize` (for `AT_PHENT`), always 56.
    pub phentsize: u16,
    /// The `PT_TLS` template, if any.
    pub tls: Option<TlsInfo>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// One raw program header.
#[derive(Clone, Copy)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Phdr {
    fn read(b: &[u8]) -> Self {
        Self {
            p_type: u32_at(b, 0),
            flags: u32_at(b, 4),
            offset: u64_at(b, 8),
            vaddr: u64_at(b, 16),
            filesz: u64_at(b, 32),
            memsz: u64_at(b, 40),
            align: u64_at(b, 48),
        }
    }

    /// Memory end, checked.
    fn mem_end(&self, index: usize) -> Result<u64, ElfError> {
        self.vaddr
            .checked_add(self.memsz)
            .ok_or(ElfError::Overflow { index })
    }
}

/// Validates `bytes` as a static x86_64 ELF64 executable.
pub fn parse(bytes: &[u8]) -> Result<ElfImage, ElfError> {
    parse_head(bytes, bytes.len() as u64)
}

/// How many bytes from the start of the file [`parse_head`] needs, read
/// from the ELF header in `ehdr` (the end of the program-header table, at
/// least the header): `None` if `ehdr` is too short or not ELF (then
/// [`parse_head`] of it says why).
pub fn head_len(ehdr: &[u8]) -> Option<u64> {
    let ehdr = ehdr.get(..EHDR_SIZE)?;
    if ehdr[..4] != *b"\x7fELF" {
        return None;
    }
    let phoff = u64_at(ehdr, 32);
    let table = u64::from(u16_at(ehdr, 56)) * PHDR_SIZE as u64;
    Some(phoff.saturating_add(table).max(EHDR_SIZE as u64))
}

/// [`parse`] from the first bytes of a file of `file_len` bytes: `head`
/// must hold the ELF header and the program-header table (a file not
/// held in memory whole, a tmpfs file, is read that far only); segments
/// are checked against `file_len`.
pub fn parse_head(bytes: &[u8], file_len: u64) -> Result<ElfImage, ElfError> {
    let ehdr = bytes.get(..EHDR_SIZE).ok_or(ElfError::TooShort)?;
    if ehdr[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if ehdr[4] != 2 {
        return Err(ElfError::NotElf64);
    }
    if ehdr[5] != 1 {
        return Err(ElfError::NotLittleEndian);
    }
    if ehdr[6] != 1 || u32_at(ehdr, 20) != 1 {
        return Err(ElfError::BadVersion);
    }
    let e_type = u16_at(ehdr, 16);
    let machine = u16_at(ehdr, 18);
    if machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(machine));
    }
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(ElfError::NotExecutable(e_type));
    }
    let entry = u64_at(ehdr, 24);
    let phoff = u64_at(ehdr, 32);
    let phentsize = u16_at(ehdr, 54);
    let phnum = u16_at(ehdr, 56);
    if usize::from(phentsize) != PHDR_SIZE {
        return Err(ElfError::BadPhentsize(phentsize));
    }
    let table_len = usize::from(phnum) * PHDR_SIZE;
    if phnum == 0 {
        return Err(ElfError::BadPhdrTable);
    }
    if table_len > MAX_PHDR_TABLE {
        return Err(ElfError::TooManyPhdrs { phnum });
    }
    let table = usize::try_from(phoff)
        .ok()
        .and_then(|start| bytes.get(start..start.checked_add(table_len)?))
        .ok_or(ElfError::BadPhdrTable)?;
    let phdrs = || {
        table
            .as_chunks::<PHDR_SIZE>()
            .0
            .iter()
            .map(|b| Phdr::read(b))
            .enumerate()
    };

    // Refuse dynamic programs first: that is the most useful message.
    if phdrs().any(|(_, p)| p.p_type == PT_INTERP) {
        return Err(ElfError::Dynamic);
    }
    let kind = if e_type == ET_EXEC {
        ElfKind::Exec
    } else {
        ElfKind::StaticPie
    };

    // Room for every PT_LOAD up front, fallibly (the kernel calls this on
    // behalf of execve: up to 1,170 segments is a 64 KiB allocation).
    let loads = phdrs().filter(|(_, p)| p.p_type == PT_LOAD).count();
    let mut segments = Vec::new();
    segments
        .try_reserve_exact(loads)
        .map_err(|_| ElfError::OutOfMemory)?;
    let mut phdr_vaddr = None;
    let mut tls = None;
    for (index, p) in phdrs() {
        if p.align > 1 && !p.align.is_power_of_two() {
            return Err(ElfError::BadAlign { index });
        }
        match p.p_type {
            PT_LOAD => {
                if p.memsz == 0 {
                    return Err(ElfError::EmptySegment { index });
                }
                if p.filesz > p.memsz {
                    return Err(ElfError::FileSizeExceedsMemSize { index });
                }
                let file_end = p
                    .offset
                    .checked_add(p.filesz)
                    .ok_or(ElfError::Overflow { index })?;
                if file_end > file_len {
                    return Err(ElfError::SegmentOutsideFile { index });
                }
                if p.vaddr % PAGE_SIZE != p.offset % PAGE_SIZE {
                    return Err(ElfError::Misaligned { index });
                }
                // Rounding the end up to a page must not overflow either.
                page_up(p.mem_end(index)?).ok_or(ElfError::Overflow { index })?;
                segments.push(LoadSegment {
                    index,
                    vaddr: p.vaddr,
                    memsz: p.memsz,
                    filesz: p.filesz,
                    offset: p.offset,
                    prot: Prot::from_flags(p.flags),
                });
            }
            PT_PHDR => phdr_vaddr = Some(p.vaddr),
            PT_TLS => {
                if p.filesz > p.memsz {
                    return Err(ElfError::FileSizeExceedsMemSize { index });
                }
                p.mem_end(index)?;
                tls = Some(TlsInfo {
                    vaddr: p.vaddr,
                    filesz: p.filesz,
                    memsz: p.memsz,
                    align: p.align,
                });
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(ElfError::NoLoadSegments);
    }

    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Both ends were checked for overflow above.
        let a_end = a.vaddr + a.memsz;
        let (first, second) = (a.index.min(b.index), a.index.max(b.index));
        if a_end > b.vaddr {
            return Err(ElfError::Overlap { first, second });
        }
        if page_up(a_end).unwrap_or(u64::MAX) > page_down(b.vaddr) {
            return Err(ElfError::SharedPage { first, second });
        }
    }

    let in_code = segments
        .iter()
        .any(|s| s.prot.exec && entry >= s.vaddr && entry - s.vaddr < s.filesz);
    if !in_code {
        return Err(ElfError::BadEntry(entry));
    }

    let table_len = table_len as u64;
    let phdr = match phdr_vaddr {
        Some(v) => {
            let end = v.checked_add(table_len).ok_or(ElfError::PhdrNotLoaded)?;
            let loaded = segments
                .iter()
                .any(|s| v >= s.vaddr && end <= s.vaddr + s.memsz);
            if !loaded {
                return Err(ElfError::PhdrNotLoaded);
            }
            Some(v)
        }
        // `phoff + table_len` fits: the table is inside the file.
        None => segments
            .iter()
            .find(|s| phoff >= s.offset && phoff + table_len <= s.offset + s.filesz)
            .map(|s| s.vaddr + (phoff - s.offset)),
    };

    Ok(ElfImage {
        kind,
        entry,
        segments,
        phdr,
        phnum,
        phentsize,
        tls,
    })
}

/// File-backed pages: map private copies of the file's bytes
/// `[file_offset, file_offset + (end - start))` at `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRegion {
    /// Page-aligned start address.
    pub start: u64,
    /// Page-aligned end address (exclusive).
    pub end: u64,
    /// Page-aligned file offset of `start`.
    pub file_offset: u64,
    /// Final permissions.
    pub prot: Prot,
}

/// Bytes inside the last file-backed page that belong to the bss and must
/// be zeroed after mapping (the file has other data there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroTail {
    /// First byte to zero.
    pub start: u64,
    /// End (exclusive); a page boundary.
    pub end: u64,
}

/// Zero-filled pages: the rest of the bss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonRegion {
    /// Page-aligned start address.
    pub start: u64,
    /// Page-aligned end address (exclusive).
    pub end: u64,
    /// Final permissions.
    pub prot: Prot,
}

/// How to map one segment: map `file`, zero `zero_tail` (the kernel writes
/// through its own mapping, so this works even for read-only segments),
/// then map `anon`. At least one of `file` and `anon` is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPlan {
    /// File-backed part, if the segment has file bytes.
    pub file: Option<FileRegion>,
    /// Tail of the last file page to zero, if the bss starts mid-page.
    pub zero_tail: Option<ZeroTail>,
    /// Zero-filled pages, if the bss extends past the last file page.
    pub anon: Option<AnonRegion>,
}

/// Everything the kernel needs to map a program and start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// One plan per `PT_LOAD` segment, in address order; page ranges of
    /// different segments never overlap.
    pub segments: Vec<SegmentPlan>,
    /// Run-time entry point.
    pub entry: u64,
    /// Run-time address of the program headers (`AT_PHDR`), if loaded.
    pub phdr_addr: Option<u64>,
    /// First page after the highest segment: where the heap (`brk`) starts.
    pub brk_start: u64,
    /// The bias that was applied (`AT_BASE` stays 0: there is no loader).
    pub bias: u64,
}

impl ElfImage {
    /// Plans the mapping of every segment at link-time address + `bias`,
    /// all inside `[MIN_USER_ADDR, user_end)`. Segments are re-checked
    /// (non-empty, `filesz <= memsz`, no overflow) since the fields are
    /// public.
    ///
    /// `bias` must be 0 for [`ElfKind::Exec`] and page aligned for
    /// [`ElfKind::StaticPie`] (e.g. [`DEFAULT_PIE_BIAS`]).
    pub fn load_plan(&self, bias: u64, user_end: u64) -> Result<LoadPlan, ElfError> {
        if self.kind == ElfKind::Exec && bias != 0 {
            return Err(ElfError::BiasNotAllowed);
        }
        if !bias.is_multiple_of(PAGE_SIZE) {
            return Err(ElfError::MisalignedBias(bias));
        }
        let mut segments = Vec::new();
        segments
            .try_reserve_exact(self.segments.len())
            .map_err(|_| ElfError::OutOfMemory)?;
        let mut brk_start = 0;
        for s in &self.segments {
            let index = s.index;
            let overflow = ElfError::Overflow { index };
            if s.memsz == 0 {
                return Err(ElfError::EmptySegment { index });
            }
            if s.filesz > s.memsz {
                return Err(ElfError::FileSizeExceedsMemSize { index });
            }
            let vaddr = s.vaddr.checked_add(bias).ok_or(overflow)?;
            let file_end = vaddr.checked_add(s.filesz).ok_or(overflow)?;
            let mem_end = vaddr.checked_add(s.memsz).ok_or(overflow)?;
            let start = page_down(vaddr);
            let file_page_end = page_up(file_end).ok_or(overflow)?;
            let mem_page_end = page_up(mem_end).ok_or(overflow)?;
            if start < MIN_USER_ADDR || mem_page_end > user_end {
                return Err(ElfError::OutsideUserSpace { index });
            }

            let file = (s.filesz > 0).then(|| FileRegion {
                start,
                end: file_page_end,
                file_offset: page_down(s.offset),
                prot: s.prot,
            });
            let zero_tail = (s.filesz > 0 && s.memsz > s.filesz && file_end != file_page_end)
                .then_some(ZeroTail {
                    start: file_end,
                    end: file_page_end,
                });
            let anon_start = if s.filesz > 0 { file_page_end } else { start };
            let anon = (mem_page_end > anon_start).then_some(AnonRegion {
                start: anon_start,
                end: mem_page_end,
                prot: s.prot,
            });
            segments.push(SegmentPlan {
                file,
                zero_tail,
                anon,
            });
            brk_start = brk_start.max(mem_page_end);
        }
        // `parse` checked that the entry and PT_PHDR lie inside segments,
        // whose biased addresses were just checked; the fields are public,
        // though, so stay checked.
        let entry = self
            .entry
            .checked_add(bias)
            .ok_or(ElfError::BadEntry(self.entry))?;
        let phdr_addr = match self.phdr {
            Some(p) => Some(p.checked_add(bias).ok_or(ElfError::PhdrNotLoaded)?),
            None => None,
        };
        Ok(LoadPlan {
            segments,
            entry,
            phdr_addr,
            brk_start,
            bias,
        })
    }
}

#[cfg(test)]
mod tests;
