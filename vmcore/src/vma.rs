//! Virtual memory areas: the per-process record of which address ranges are
//! valid, with what protection and backing.
//!
//! This is Ferrite's `vm_area_struct` + maple tree: a [`VmaSet`] keeps
//! non-overlapping, page-aligned [`Vma`]s ordered by start address in a
//! sorted array, so finding the region for a faulting address is a binary
//! search, O(log n), and every change can fail cleanly (see [`VmaSet`]).
//! The page tables are only a cache of what the regions allow; the fault
//! handler consults this set to decide what a missing page should be.
//!
//! Every operation leaves the set *fully merged*: no two adjacent regions
//! could be combined into one (same protection, sharing, flags and backing,
//! with contiguous file offsets). That keeps the set small after many
//! `mprotect`s that undo each other, and makes "equal sets" mean "equal
//! layouts", which the tests rely on.

use alloc::vec::Vec;
use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign, Not};

use crate::{is_page_aligned, page_down, page_up, PAGE_SIZE, USER_END};

/// Access permissions of a region (`PROT_READ | PROT_WRITE | PROT_EXEC`).
///
/// x86_64 cannot express write-only or execute-only pages: a present user
/// page is always readable. The fault logic still checks `READ` against the
/// region, so a read of a `WRITE`-only region that is not yet mapped fails.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Prot {
    /// No access (`PROT_NONE`): the range is reserved but any touch faults.
    pub const NONE: Prot = Prot(0);
    /// Readable.
    pub const READ: Prot = Prot(1);
    /// Writable.
    pub const WRITE: Prot = Prot(2);
    /// Executable.
    pub const EXEC: Prot = Prot(4);
    /// Read + write, the common data protection.
    pub const RW: Prot = Prot(3);
    /// Read + execute, the common text protection.
    pub const RX: Prot = Prot(5);

    /// The raw bits (READ = 1, WRITE = 2, EXEC = 4, as in Linux's `PROT_*`).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds a `Prot` from raw bits, dropping unknown ones.
    pub const fn from_bits_truncate(bits: u8) -> Prot {
        Prot(bits & 7)
    }

    /// True if every permission in `other` is in `self`.
    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no permission is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Prot {
    type Output = Prot;
    fn bitor(self, rhs: Prot) -> Prot {
        Prot(self.0 | rhs.0)
    }
}

impl BitOrAssign for Prot {
    fn bitor_assign(&mut self, rhs: Prot) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Prot {
    type Output = Prot;
    fn bitand(self, rhs: Prot) -> Prot {
        Prot(self.0 & rhs.0)
    }
}

impl Not for Prot {
    type Output = Prot;
    fn not(self) -> Prot {
        Prot(!self.0 & 7)
    }
}

impl fmt::Display for Prot {
    /// `rwx`-style, as in `/proc/PID/maps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |p: Prot, ch: char| if self.contains(p) { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(Prot::READ, 'r'),
            c(Prot::WRITE, 'w'),
            c(Prot::EXEC, 'x')
        )
    }
}

impl fmt::Debug for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Prot({self})")
    }
}

/// What backs a region's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmaKind {
    /// Demand-zero memory.
    Anonymous,
    /// Pages of a file (or of a shared-memory object the kernel names by an
    /// id; shared anonymous memory should be one of these so that all
    /// sharers find the same frames, as Linux does with shmem).
    File {
        /// Opaque file id chosen by the kernel.
        file: u32,
        /// Byte offset in the file of the region's first page.
        offset: u64,
    },
}

impl VmaKind {
    /// The same backing, `by` bytes further into the region.
    fn advanced(self, by: u64) -> VmaKind {
        match self {
            VmaKind::Anonymous => VmaKind::Anonymous,
            VmaKind::File { file, offset } => VmaKind::File {
                file,
                offset: offset + by,
            },
        }
    }
}

/// Whether writes are private to the process (copy-on-write) or shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sharing {
    /// `MAP_PRIVATE`: writes go to private copies; fork shares pages COW.
    Private,
    /// `MAP_SHARED`: writes are seen by every mapping of the same pages.
    Shared,
}

/// What a region is for; only used for display (pmap, fault reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum VmaTag {
    /// The brk heap.
    Heap,
    /// A thread's stack.
    Stack,
    /// A segment of the program image.
    Image,
    /// An `mmap` region.
    Mmap,
    /// The vDSO's code (Linux's `[vdso]`).
    Vdso,
    /// The vDSO's data page (Linux's `[vvar]`).
    Vvar,
    /// Anything else.
    #[default]
    Other,
}

impl VmaTag {
    /// Short name as pmap prints it.
    pub const fn name(self) -> &'static str {
        match self {
            VmaTag::Heap => "[heap]",
            VmaTag::Stack => "[stack]",
            VmaTag::Image => "[image]",
            VmaTag::Mmap => "[mmap]",
            VmaTag::Vdso => "[vdso]",
            VmaTag::Vvar => "[vvar]",
            VmaTag::Other => "",
        }
    }
}

/// Region flags other than protection and backing.
///
/// `account` and `noreserve` are Linux's `VM_ACCOUNT` and `VM_NORESERVE`:
/// an accountable region's pages are charged to `Committed_AS` (the
/// overcommit accounting of [`crate::commit`]) for as long as the region
/// exists, whether or not they are ever touched. Regions with different
/// flags never merge, so a region is charged all or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VmaFlags {
    /// A stack that may grow downwards on a fault just below it
    /// ([`VmaSet::grow_down`]), like Linux's `VM_GROWSDOWN`.
    pub grows_down: bool,
    /// What the region is for.
    pub tag: VmaTag,
    /// Charged to the commit count (`VM_ACCOUNT`): see [`Vma::accountable`].
    pub account: bool,
    /// Mapped with `MAP_NORESERVE` honoured (`VM_NORESERVE`): never
    /// charged, not even when `mprotect` makes it writable.
    pub noreserve: bool,
    /// A shared mapping of a file not open for writing (Linux's
    /// `VM_MAYWRITE` clear): [`VmaSet::protect`] refuses to make it
    /// writable, since its writes would go to the file's pages, which
    /// every process mapping or running the file sees.
    pub no_write: bool,
}

/// One virtual memory area: the page-aligned range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    /// First byte (page aligned).
    pub start: u64,
    /// One past the last byte (page aligned, > `start`).
    pub end: u64,
    /// Access permissions.
    pub prot: Prot,
    /// Private (COW) or shared.
    pub sharing: Sharing,
    /// Backing store.
    pub kind: VmaKind,
    /// Stack growth and display tag.
    pub flags: VmaFlags,
}

impl Vma {
    /// A private anonymous region tagged [`VmaTag::Mmap`], charged to the
    /// commit count as `mmap` would charge it ([`Vma::accountable`]).
    pub const fn anonymous(start: u64, end: u64, prot: Prot) -> Vma {
        Vma {
            start,
            end,
            prot,
            sharing: Sharing::Private,
            kind: VmaKind::Anonymous,
            flags: VmaFlags {
                grows_down: false,
                tag: VmaTag::Mmap,
                account: Vma::accountable(Sharing::Private, prot, false),
                noreserve: false,
                no_write: false,
            },
        }
    }

    /// Linux's `accountable_mapping`: a new region is charged to the commit
    /// count if it is private and writable, unless `MAP_NORESERVE` is
    /// honoured for it. (Shared writable memory is charged elsewhere: a
    /// shared anonymous object once, when it is made, whoever maps it; a
    /// shared file mapping is backed by its file and never charged.)
    pub const fn accountable(sharing: Sharing, prot: Prot, noreserve: bool) -> bool {
        matches!(sharing, Sharing::Private) && prot.contains(Prot::WRITE) && !noreserve
    }

    /// Pages this region has charged to the commit count.
    pub const fn committed_pages(&self) -> u64 {
        if self.flags.account {
            self.pages()
        } else {
            0
        }
    }

    /// True if `mprotect` to `prot` starts charging this region: Linux's
    /// `mprotect_fixup` charges a region made writable that was neither
    /// charged, writable, shared nor `MAP_NORESERVE`. Nothing is given back
    /// when a region stops being writable (it stays charged until unmapped).
    pub const fn charged_by_protect(&self, prot: Prot) -> bool {
        prot.contains(Prot::WRITE)
            && !self.prot.contains(Prot::WRITE)
            && matches!(self.sharing, Sharing::Private)
            && !self.flags.account
            && !self.flags.noreserve
    }

    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true for a region in a [`VmaSet`]; here for API completeness.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Number of pages.
    pub const fn pages(&self) -> u64 {
        self.len() / PAGE_SIZE
    }

    /// True if `addr` is inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// For a file-backed region, the file and page-aligned byte offset that
    /// backs the page containing `addr`.
    pub fn file_page(&self, addr: u64) -> Option<(u32, u64)> {
        match self.kind {
            VmaKind::File { file, offset } if self.contains(addr) => {
                Some((file, offset + (page_down(addr) - self.start)))
            }
            _ => None,
        }
    }

    /// The part `[start, end)` of this region (which must lie inside it),
    /// with the file offset adjusted.
    fn slice(&self, start: u64, end: u64) -> Vma {
        debug_assert!(self.start <= start && start < end && end <= self.end);
        Vma {
            start,
            end,
            kind: self.kind.advanced(start - self.start),
            ..*self
        }
    }

    /// True if `next` starts where `self` ends and one region could describe
    /// both.
    fn can_merge_with(&self, next: &Vma) -> bool {
        let backing = match (self.kind, next.kind) {
            (VmaKind::Anonymous, VmaKind::Anonymous) => true,
            (
                VmaKind::File {
                    file: a,
                    offset: oa,
                },
                VmaKind::File {
                    file: b,
                    offset: ob,
                },
            ) => a == b && oa.checked_add(self.len()) == Some(ob),
            _ => false,
        };
        self.end == next.start
            && backing
            && self.prot == next.prot
            && self.sharing == next.sharing
            && self.flags == next.flags
    }
}

impl fmt::Display for Vma {
    /// One `/proc/PID/maps`-like line: `start-end rwxp offset backing tag`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = match self.sharing {
            Sharing::Private => 'p',
            Sharing::Shared => 's',
        };
        write!(
            f,
            "{:016x}-{:016x} {}{} ",
            self.start, self.end, self.prot, share
        )?;
        match self.kind {
            VmaKind::Anonymous => write!(f, "{:08x} anon", 0)?,
            VmaKind::File { file, offset } => write!(f, "{offset:08x} file#{file}")?,
        }
        if self.flags.grows_down {
            f.write_str(" growsdown")?;
        }
        let tag = self.flags.tag.name();
        if !tag.is_empty() {
            write!(f, " {tag}")?;
        }
        Ok(())
    }
}

/// Why a region operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// An address or length is not a multiple of the page size.
    Unaligned {
        /// Requested start.
        start: u64,
        /// Requested end.
        end: u64,
    },
    /// `end <= start`.
    EmptyRange {
        /// Requested start.
        start: u64,
        /// Requested end.
        end: u64,
    },
    /// The range reaches past the user half of the address space.
    OutOfRange {
        /// Requested end.
        end: u64,
    },
    /// The range overlaps an existing region (plain [`VmaSet::map`]).
    Overlap {
        /// The existing region's start.
        start: u64,
        /// The existing region's end.
        end: u64,
    },
    /// Part of the range has no region (`mprotect` returns `ENOMEM`).
    NotMapped {
        /// First unmapped address.
        addr: u64,
    },
    /// A file offset is unaligned or would overflow.
    BadOffset {
        /// The offending offset.
        offset: u64,
    },
    /// [`VmaSet::grow_down`]: the region above the address is not a stack.
    NotGrowable {
        /// The faulting address.
        addr: u64,
    },
    /// No kernel memory for the region bookkeeping (`ENOMEM`).
    NoMemory,
    /// The change would need more than [`MAX_MAP_COUNT`] regions (`ENOMEM`,
    /// like Linux's `vm.max_map_count`).
    TooManyRegions,
    /// The overcommit policy refused to charge the pages (`ENOMEM`, like
    /// Linux's `__vm_enough_memory`).
    Overcommit {
        /// Pages that could not be charged.
        pages: u64,
    },
    /// A resource limit (`RLIMIT_AS` or `RLIMIT_DATA`) refused the new
    /// region (`ENOMEM`, like Linux's `may_expand_vm`).
    Rlimit {
        /// The resource (`crate::rlimit::RLIMIT_AS` or `RLIMIT_DATA`).
        resource: u32,
    },
    /// [`VmaSet::protect`]: write permission asked for a shared mapping
    /// of a file not open for writing ([`VmaFlags::no_write`]; `EACCES`).
    WriteDenied {
        /// The start of that region.
        start: u64,
    },
    /// [`VmaSet::grow_down`]: growing would pass the caller's limit.
    StackLimit {
        /// The faulting address.
        addr: u64,
        /// The lowest address the stack may reach.
        limit: u64,
    },
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmError::Unaligned { start, end } => {
                write!(f, "range {start:#x}..{end:#x} is not page aligned")
            }
            VmError::EmptyRange { start, end } => write!(f, "range {start:#x}..{end:#x} is empty"),
            VmError::OutOfRange { end } => {
                write!(
                    f,
                    "range end {end:#x} is beyond the user address space ({USER_END:#x})"
                )
            }
            VmError::Overlap { start, end } => {
                write!(f, "range overlaps the existing region {start:#x}..{end:#x}")
            }
            VmError::NotMapped { addr } => write!(f, "address {addr:#x} is not mapped"),
            VmError::BadOffset { offset } => {
                write!(f, "file offset {offset:#x} is unaligned or overflows")
            }
            VmError::NotGrowable { addr } => {
                write!(f, "no growable stack region just above {addr:#x}")
            }
            VmError::WriteDenied { start } => write!(
                f,
                "the region at {start:#x} maps a file not open for writing, shared"
            ),
            VmError::NoMemory => write!(f, "no kernel memory for the region list"),
            VmError::TooManyRegions => {
                write!(f, "more than {MAX_MAP_COUNT} regions (vm.max_map_count)")
            }
            VmError::Overcommit { pages } => {
                write!(
                    f,
                    "not enough memory to commit {pages} pages (vm.overcommit_memory)"
                )
            }
            VmError::Rlimit { resource } => {
                write!(
                    f,
                    "resource limit {resource} (RLIMIT_AS/RLIMIT_DATA) reached"
                )
            }
            VmError::StackLimit { addr, limit } => {
                write!(f, "stack growth to {addr:#x} passes the limit {limit:#x}")
            }
        }
    }
}

/// The ranges [`VmaSet::protect`] changed, in address order. Up to two
/// are kept inline; more are reserved on the heap up front (the call fails
/// cleanly if that allocation does), so filling it never allocates.
#[derive(Clone, Default)]
pub struct Changed {
    inline: [(u64, u64); 2],
    len: usize,
    spill: Vec<(u64, u64)>,
}

impl Changed {
    fn with_room(n: usize) -> Result<Changed, VmError> {
        let mut c = Changed::default();
        if n > c.inline.len() {
            c.spill
                .try_reserve_exact(n)
                .map_err(|_| VmError::NoMemory)?;
        }
        Ok(c)
    }

    /// Adds a range; the room was reserved by [`Changed::with_room`].
    fn push(&mut self, range: (u64, u64)) {
        if self.spill.capacity() > 0 {
            self.spill.push(range);
        } else {
            self.inline[self.len] = range;
            self.len += 1;
        }
    }

    /// The ranges, in address order.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        if self.spill.capacity() > 0 {
            &self.spill
        } else {
            &self.inline[..self.len]
        }
    }
}

impl core::ops::Deref for Changed {
    type Target = [(u64, u64)];
    fn deref(&self) -> &[(u64, u64)] {
        self.as_slice()
    }
}

impl PartialEq for Changed {
    fn eq(&self, other: &Changed) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Changed {}

impl PartialEq<Vec<(u64, u64)>> for Changed {
    fn eq(&self, other: &Vec<(u64, u64)>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// By value: `for (start, end) in set.protect(..)?`.
impl IntoIterator for Changed {
    type Item = (u64, u64);
    type IntoIter = ChangedIter;
    fn into_iter(self) -> ChangedIter {
        ChangedIter {
            changed: self,
            next: 0,
        }
    }
}

/// Iterator over a [`Changed`], by value.
pub struct ChangedIter {
    changed: Changed,
    next: usize,
}

impl Iterator for ChangedIter {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let r = self.changed.as_slice().get(self.next).copied();
        self.next += 1;
        r
    }
}

/// Checks a `[start, end)` range that an operation is about to apply to.
fn check_range(start: u64, end: u64) -> Result<(), VmError> {
    if !is_page_aligned(start) || !is_page_aligned(end) {
        return Err(VmError::Unaligned { start, end });
    }
    if end <= start {
        return Err(VmError::EmptyRange { start, end });
    }
    if end > USER_END {
        return Err(VmError::OutOfRange { end });
    }
    Ok(())
}

fn check_vma(vma: &Vma) -> Result<(), VmError> {
    check_range(vma.start, vma.end)?;
    if let VmaKind::File { offset, .. } = vma.kind {
        if !is_page_aligned(offset) || offset.checked_add(vma.len()).is_none() {
            return Err(VmError::BadOffset { offset });
        }
    }
    Ok(())
}

/// Linux's default `vm.max_map_count`: more regions than this and `mmap`,
/// `mprotect` and `munmap` that would split one fail with `ENOMEM`.
pub const MAX_MAP_COUNT: usize = 65_530;

/// The regions of one address space, ordered by start address.
///
/// A sorted array: a lookup is a binary search (O(log n)); a change moves
/// the regions after it (O(n) memmove, fine for the few hundred regions a
/// process has, and tolerable at [`MAX_MAP_COUNT`]). What the array buys is
/// that every change can fail cleanly: each one first reserves room for the
/// regions it may add (at most two, when a range splits one region into
/// three), so running out of kernel memory is [`VmError::NoMemory`] before
/// anything changed, never a half-done update or an abort. Linux's maple
/// tree does the same with `mas_preallocate` before it takes its locks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VmaSet {
    /// Sorted by `start`, non-overlapping, fully merged.
    regions: Vec<Vma>,
}

impl VmaSet {
    /// An empty address space.
    pub const fn new() -> VmaSet {
        VmaSet {
            regions: Vec::new(),
        }
    }

    /// A copy for `fork`; fails cleanly if there is no memory for it.
    pub fn try_clone(&self) -> Result<VmaSet, VmError> {
        let mut regions = Vec::new();
        regions
            .try_reserve_exact(self.regions.len())
            .map_err(|_| VmError::NoMemory)?;
        regions.extend_from_slice(&self.regions);
        Ok(VmaSet { regions })
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// True if no region is mapped.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// All regions in address order.
    pub fn iter(&self) -> core::slice::Iter<'_, Vma> {
        self.regions.iter()
    }

    /// Total mapped bytes (Linux's `total_vm`, in bytes).
    pub fn total_bytes(&self) -> u64 {
        self.iter().map(Vma::len).sum()
    }

    /// Index of the first region ending above `addr` (the one containing
    /// it, or the next one up).
    fn first_ending_above(&self, addr: u64) -> usize {
        self.regions.partition_point(|v| v.end <= addr)
    }

    /// The region containing `addr`, in O(log n).
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.regions
            .get(self.first_ending_above(addr))
            .filter(|v| v.contains(addr))
    }

    /// The region the fault handler should look at for `addr`: the one
    /// containing it, else the first region above it if that is a stack
    /// that may grow down to it (the fault logic then answers `GrowStack`).
    pub fn find_for_fault(&self, addr: u64) -> Option<&Vma> {
        let v = self.regions.get(self.first_ending_above(addr))?;
        (v.contains(addr) || v.flags.grows_down).then_some(v)
    }

    /// Index range of the regions overlapping `[start, end)`.
    fn overlap_span(&self, start: u64, end: u64) -> core::ops::Range<usize> {
        let from = self.first_ending_above(start);
        let to = from + self.regions[from..].partition_point(|v| v.start < end);
        from..to.max(from)
    }

    /// Regions that overlap `[start, end)`, in address order.
    pub fn overlapping(&self, start: u64, end: u64) -> core::slice::Iter<'_, Vma> {
        self.regions[self.overlap_span(start, end)].iter()
    }

    /// The first address in `[start, end)` that no region covers, if any
    /// (`mprotect` and `madvise` fail with `ENOMEM` on a hole).
    pub fn first_hole(&self, start: u64, end: u64) -> Option<u64> {
        let mut cursor = start;
        for vma in self.overlapping(start, end) {
            if vma.start > cursor {
                return Some(cursor);
            }
            cursor = vma.end;
        }
        (cursor < end).then_some(cursor)
    }

    /// True if nothing is mapped anywhere in `[start, end)`.
    pub fn is_free(&self, start: u64, end: u64) -> bool {
        self.overlap_span(start, end).is_empty()
    }

    /// Makes room for `room` more regions, so that the next changes adding
    /// at most that many (a multi-step update such as moving a region)
    /// cannot fail half-way for lack of memory or of map count.
    pub fn try_reserve(&mut self, room: usize) -> Result<(), VmError> {
        self.reserve(room, room as isize)
    }

    /// The pieces left outside `[start, end)` when it is cut out of the
    /// regions overlapping it: (left piece?, right piece?, regions touched).
    fn cut(&self, start: u64, end: u64) -> (usize, usize, usize) {
        let span = self.overlap_span(start, end);
        if span.is_empty() {
            return (0, 0, 0);
        }
        let left = (self.regions[span.start].start < start) as usize;
        let right = (self.regions[span.end - 1].end > end) as usize;
        (left, right, span.len())
    }

    /// Makes room for `room` more regions up front, so the change that
    /// follows cannot fail half-way; `growth` is how many regions the change
    /// adds in the end (refused past [`MAX_MAP_COUNT`]).
    fn reserve(&mut self, room: usize, growth: isize) -> Result<(), VmError> {
        if growth > 0 && self.regions.len() + growth as usize > MAX_MAP_COUNT {
            return Err(VmError::TooManyRegions);
        }
        self.regions
            .try_reserve(room)
            .map_err(|_| VmError::NoMemory)
    }

    /// Adds a region where nothing is mapped yet (merging it with compatible
    /// neighbours). Fails on overlap or a malformed range.
    pub fn map(&mut self, vma: Vma) -> Result<(), VmError> {
        check_vma(&vma)?;
        let span = self.overlap_span(vma.start, vma.end);
        if let Some(old) = self.regions.get(span.start).filter(|_| !span.is_empty()) {
            return Err(VmError::Overlap {
                start: old.start,
                end: old.end,
            });
        }
        self.reserve(1, 1)?;
        self.regions.insert(span.start, vma);
        self.merge_around(vma.start, vma.end);
        Ok(())
    }

    /// Adds a region, first removing whatever overlapped it (`MAP_FIXED`).
    /// Returns the removed ranges so the caller can unmap their pages.
    pub fn map_fixed(&mut self, vma: Vma) -> Result<Vec<(u64, u64)>, VmError> {
        check_vma(&vma)?;
        // Removing may split one region in two, then the new one goes in.
        let (left, right, touched) = self.cut(vma.start, vma.end);
        self.reserve(2, (left + right + 1) as isize - touched as isize)?;
        let removed = self.remove_range(vma.start, vma.end)?;
        let at = self.first_ending_above(vma.start);
        self.regions.insert(at, vma);
        self.merge_around(vma.start, vma.end);
        Ok(removed)
    }

    /// Removes `[start, end)` (`munmap`), splitting regions that are only
    /// partly covered. Returns the ranges that were actually mapped, in
    /// order; unmapping a hole is not an error.
    pub fn unmap(&mut self, start: u64, end: u64) -> Result<Vec<(u64, u64)>, VmError> {
        check_range(start, end)?;
        let (left, right, touched) = self.cut(start, end);
        self.reserve(1, (left + right) as isize - touched as isize)?;
        self.remove_range(start, end)
    }

    /// Pages of `[start, end)` charged to the commit count (Linux's
    /// `VM_ACCOUNT` pages; an unmap of the range gives them back).
    pub fn committed_pages(&self, start: u64, end: u64) -> u64 {
        self.overlapping(start, end)
            .filter(|v| v.flags.account)
            .map(|v| (v.end.min(end) - v.start.max(start)) / PAGE_SIZE)
            .sum()
    }

    /// Pages that [`VmaSet::protect`] of `[start, end)` to `prot` would
    /// start charging ([`Vma::charged_by_protect`]): the caller charges
    /// them before the change.
    pub fn protect_charge(&self, start: u64, end: u64, prot: Prot) -> u64 {
        self.overlapping(start, end)
            .filter(|v| v.charged_by_protect(prot))
            .map(|v| (v.end.min(end) - v.start.max(start)) / PAGE_SIZE)
            .sum()
    }

    /// Pages a fault at `addr` would charge by growing a charged stack
    /// down to it ([`VmaSet::grow_down`]); 0 if `addr` is mapped or no
    /// charged grows-down region lies just above it. (Linux charges the
    /// growth in `acct_stack_growth`.)
    pub fn stack_growth_charge(&self, addr: u64) -> u64 {
        match self.find_for_fault(addr) {
            Some(v) if !v.contains(addr) && v.flags.account => {
                (v.start - page_down(addr)) / PAGE_SIZE
            }
            _ => 0,
        }
    }

    /// Changes the protection of `[start, end)` (`mprotect`), splitting at
    /// the edges and re-merging. The whole range must be mapped (Linux
    /// returns `ENOMEM` otherwise) and nothing changes if it is not.
    /// Returns the ranges whose protection changed, in order (one per
    /// original region piece), so the caller can rewrite their page-table
    /// entries. Like Linux's `mprotect_fixup`, a region that already has
    /// `prot` is left alone: not split, not returned (its entries already
    /// say `prot`). Up to two pieces (one page inside one region, the
    /// common call) need no allocation. A piece made writable may become
    /// charged ([`Vma::charged_by_protect`]).
    pub fn protect(&mut self, start: u64, end: u64, prot: Prot) -> Result<Changed, VmError> {
        check_range(start, end)?;
        if let Some(addr) = self.first_hole(start, end) {
            return Err(VmError::NotMapped { addr });
        }
        if prot.contains(Prot::WRITE) {
            if let Some(v) = self.overlapping(start, end).find(|v| v.flags.no_write) {
                return Err(VmError::WriteDenied { start: v.start });
            }
        }
        let span = self.overlap_span(start, end);
        let regions = &self.regions[span.clone()];
        let to_change = regions.iter().filter(|v| v.prot != prot).count();
        if to_change == 0 {
            return Ok(Changed::default());
        }
        let mut changed = Changed::with_room(to_change)?;
        // At most the first and the last region split off an outside piece,
        // and only if their protection changes.
        let (first, last) = (regions[0], regions[regions.len() - 1]);
        let left = (first.start < start && first.prot != prot) as usize;
        let right = (last.end > end && last.prot != prot) as usize;
        self.reserve(left + right, (left + right) as isize)?;
        let mut i = span.start;
        while i < self.regions.len() && self.regions[i].start < end {
            let vma = self.regions[i];
            if vma.prot == prot {
                i += 1;
                continue;
            }
            let (lo, hi) = (vma.start.max(start), vma.end.min(end));
            let mut pieces = 0;
            if vma.start < lo {
                self.regions.insert(i, vma.slice(vma.start, lo));
                pieces += 1;
            }
            let mut flags = vma.flags;
            flags.account |= vma.charged_by_protect(prot);
            self.regions[i + pieces] = Vma {
                prot,
                flags,
                ..vma.slice(lo, hi)
            };
            if hi < vma.end {
                self.regions.insert(i + pieces + 1, vma.slice(hi, vma.end));
            }
            changed.push((lo, hi));
            i += pieces + 1;
        }
        self.merge_around(start, end);
        Ok(changed)
    }

    /// Finds a free, page-aligned range of `len` bytes inside `[lo, hi)`.
    ///
    /// `hint` is used if that range is free (like `mmap` without
    /// `MAP_FIXED`); otherwise the highest fitting gap is chosen, as Linux's
    /// top-down mmap layout does, so mappings pack below the stack and leave
    /// the space above the heap for `brk`.
    pub fn find_free(&self, len: u64, hint: Option<u64>, lo: u64, hi: u64) -> Option<u64> {
        let len = page_up(len)?;
        let lo = page_up(lo)?;
        let hi = page_down(hi.min(USER_END));
        if len == 0 || hi < lo || hi - lo < len {
            return None;
        }
        if let Some(h) = hint {
            if is_page_aligned(h) && h >= lo && h <= hi - len && self.is_free(h, h + len) {
                return Some(h);
            }
        }
        let below = self.regions.partition_point(|v| v.start < hi);
        let mut gap_end = hi;
        for vma in self.regions[..below].iter().rev() {
            let gap_start = vma.end.max(lo);
            if gap_end > gap_start && gap_end - gap_start >= len {
                return Some(gap_end - len);
            }
            gap_end = gap_end.min(vma.start);
            if gap_end <= lo {
                return None;
            }
        }
        (gap_end - lo >= len).then(|| gap_end - len)
    }

    /// Extends the stack region just above `addr` down to cover it.
    ///
    /// `limit` is the lowest address the stack may start at; the caller
    /// derives it from the stack size limit and any guard gap it wants.
    /// Returns the newly covered range (empty if `addr` is already mapped).
    pub fn grow_down(&mut self, addr: u64, limit: u64) -> Result<(u64, u64), VmError> {
        let new_start = page_down(addr);
        if self.find(addr).is_some() {
            return Ok((new_start, new_start));
        }
        let i = self.first_ending_above(addr);
        let stack = *self.regions.get(i).ok_or(VmError::NotGrowable { addr })?;
        if !stack.flags.grows_down {
            return Err(VmError::NotGrowable { addr });
        }
        if new_start < limit {
            return Err(VmError::StackLimit { addr, limit });
        }
        if let Some(below) = i.checked_sub(1).map(|b| &self.regions[b]) {
            if below.end > new_start {
                return Err(VmError::Overlap {
                    start: below.start,
                    end: below.end,
                });
            }
        }
        let delta = stack.start - new_start;
        let kind = match stack.kind {
            VmaKind::Anonymous => VmaKind::Anonymous,
            VmaKind::File { file, offset } => VmaKind::File {
                file,
                offset: offset
                    .checked_sub(delta)
                    .ok_or(VmError::BadOffset { offset })?,
            },
        };
        // The order is unchanged: nothing lies between the region below
        // and the new start.
        self.regions[i] = Vma {
            start: new_start,
            kind,
            ..stack
        };
        self.merge_around(new_start, new_start);
        Ok((new_start, stack.start))
    }

    /// Removes `[start, end)` without validation; returns what was mapped.
    /// The caller has reserved room for one more region (a split).
    fn remove_range(&mut self, start: u64, end: u64) -> Result<Vec<(u64, u64)>, VmError> {
        let span = self.overlap_span(start, end);
        let mut removed = Vec::new();
        removed
            .try_reserve_exact(span.len())
            .map_err(|_| VmError::NoMemory)?;
        let mut i = span.start;
        for _ in span {
            let vma = self.regions[i];
            let (lo, hi) = (vma.start.max(start), vma.end.min(end));
            removed.push((lo, hi));
            match (vma.start < lo, hi < vma.end) {
                (true, true) => {
                    self.regions[i] = vma.slice(vma.start, lo);
                    self.regions.insert(i + 1, vma.slice(hi, vma.end));
                    i += 2;
                }
                (true, false) => {
                    self.regions[i] = vma.slice(vma.start, lo);
                    i += 1;
                }
                (false, true) => {
                    self.regions[i] = vma.slice(hi, vma.end);
                    i += 1;
                }
                (false, false) => {
                    self.regions.remove(i);
                }
            }
        }
        // Pieces keep their neighbours, which did not merge with the whole
        // region before, so the set is still fully merged.
        Ok(removed)
    }

    /// Merges every mergeable pair whose shared boundary lies in `[start, end]`.
    fn merge_around(&mut self, start: u64, end: u64) {
        // The region ending at or below `start` may merge with the next.
        let mut i = self.first_ending_above(start).saturating_sub(1);
        while i + 1 < self.regions.len() && self.regions[i + 1].start <= end {
            if self.regions[i].can_merge_with(&self.regions[i + 1]) {
                self.regions[i].end = self.regions[i + 1].end;
                self.regions.remove(i + 1);
            } else {
                i += 1;
            }
        }
    }
}

impl<'a> IntoIterator for &'a VmaSet {
    type Item = &'a Vma;
    type IntoIter = core::slice::Iter<'a, Vma>;
    fn into_iter(self) -> Self::IntoIter {
        self.regions.iter()
    }
}

#[cfg(test)]
mod tests;
