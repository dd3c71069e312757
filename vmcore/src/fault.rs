//! Page-fault and copy-on-write decisions, as pure functions.
//!
//! The kernel's #PF handler gathers the facts (the access, the region from
//! [`VmaSet::find_for_fault`](crate::vma::VmaSet::find_for_fault), the
//! current leaf and what its frame is) and [`decide`] says what to do, the
//! way Linux's `handle_mm_fault` → `do_anonymous_page` / `do_fault` /
//! `do_wp_page` chooses. The kernel then performs the action (allocate,
//! copy, read the file, map with [`leaf_flags`]) and returns to retry the
//! access. [`fork_pte`] and [`protect_pte`] are the matching rules for
//! `fork` and `mprotect`.
//!
//! The rule that ties them together: in a private region, a leaf *without*
//! [`PteFlags::COW`] maps a frame this address space owns exclusively; a
//! leaf *with* it maps a frame that may be shared (after fork, the zero
//! page, a page-cache page) and must be copied — or, for an anonymous frame
//! whose last other user went away, reused — before it is written.

use core::fmt;

use crate::paging::{Pte, PteFlags};
use crate::swap::SwapEntry;
use crate::vma::{Prot, Sharing, Vma, VmaKind};
use crate::{page_down, USER_END};

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAccess {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

impl FaultAccess {
    fn needs(self) -> Prot {
        match self {
            FaultAccess::Read => Prot::READ,
            FaultAccess::Write => Prot::WRITE,
            FaultAccess::Execute => Prot::EXEC,
        }
    }
}

/// Which privilege level made the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultMode {
    /// CPL 3.
    User,
    /// CPL 0, e.g. `copy_to_user`.
    Kernel,
}

/// The x86 #PF error code (`P W U R I PK SS` bits), decoded: the one place
/// that knows its layout, for the fault handler ([`access`](Self::access),
/// [`mode`](Self::mode)) and the oops report (its `Display`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PfErrorCode(pub u64);

impl PfErrorCode {
    /// P: the page was present (a protection violation), not missing.
    pub const PRESENT: u64 = 1 << 0;
    /// W/R: the access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// U/S: the access came from CPL 3.
    pub const USER: u64 = 1 << 2;
    /// RSVD: a reserved bit was set in a paging-structure entry.
    pub const RESERVED: u64 = 1 << 3;
    /// I/D: the access was an instruction fetch.
    pub const INSTRUCTION: u64 = 1 << 4;
    /// PK: a protection-key violation.
    pub const PROTECTION_KEY: u64 = 1 << 5;
    /// SS: a shadow-stack access.
    pub const SHADOW_STACK: u64 = 1 << 6;

    /// True if `bit` (one of the constants above) is set.
    pub const fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }

    /// True for a protection violation on a present page, false for a
    /// missing page.
    pub const fn present(self) -> bool {
        self.has(Self::PRESENT)
    }

    /// The kind of access: an instruction fetch, else a write, else a read.
    pub const fn access(self) -> FaultAccess {
        if self.has(Self::INSTRUCTION) {
            FaultAccess::Execute
        } else if self.has(Self::WRITE) {
            FaultAccess::Write
        } else {
            FaultAccess::Read
        }
    }

    /// Which privilege level made the access (the U/S bit).
    pub const fn mode(self) -> FaultMode {
        if self.has(Self::USER) {
            FaultMode::User
        } else {
            FaultMode::Kernel
        }
    }
}

/// `user write, protection violation[, reserved bit set ...]`.
impl fmt::Display for PfErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = if self.present() {
            "protection violation"
        } else {
            "page not present"
        };
        let access = match self.access() {
            FaultAccess::Execute => "instruction fetch",
            FaultAccess::Write => "write",
            FaultAccess::Read => "read",
        };
        let mode = match self.mode() {
            FaultMode::User => "user",
            FaultMode::Kernel => "kernel",
        };
        write!(f, "{mode} {access}, {cause}")?;
        if self.has(Self::RESERVED) {
            write!(f, ", reserved bit set in a page-table entry")?;
        }
        if self.has(Self::PROTECTION_KEY) {
            write!(f, ", protection key")?;
        }
        if self.has(Self::SHADOW_STACK) {
            write!(f, ", shadow stack")?;
        }
        Ok(())
    }
}

/// What the frame behind a present leaf is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameUse {
    /// The shared all-zero page (never written).
    ZeroPage,
    /// An anonymous frame mapped by `refs` leaves in all address spaces.
    Anon {
        /// Number of leaves referencing the frame.
        refs: u32,
    },
    /// A page-cache frame of a file: a private write always copies it.
    PageCache,
}

/// The present leaf at the faulting address, if there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentPage {
    /// The leaf entry.
    pub pte: Pte,
    /// What its frame is.
    pub frame: FrameUse,
}

/// Everything [`decide`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct Fault<'a> {
    /// The faulting address (CR2).
    pub addr: u64,
    /// The kind of access.
    pub access: FaultAccess,
    /// Who made it.
    pub mode: FaultMode,
    /// The region from `VmaSet::find_for_fault(addr)`: the one containing
    /// `addr`, or a grows-down stack just above it.
    pub vma: Option<&'a Vma>,
    /// The current leaf, if present.
    pub page: Option<PresentPage>,
    /// The swap entry the (non-present) leaf records, if the page was
    /// swapped out.
    pub swapped: Option<SwapEntry>,
}

/// Why an access is refused: the process gets SIGSEGV (or the kernel's
/// user-copy gets `EFAULT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegvReason {
    /// No region covers the address.
    NoRegion,
    /// Write to a region without `PROT_WRITE`.
    WriteToReadOnly,
    /// Instruction fetch from a region without `PROT_EXEC` (or, in kernel
    /// mode, from any user page: SMEP).
    ExecNonExec,
    /// Read of a region without `PROT_READ`.
    ReadNonReadable,
}

impl fmt::Display for SegvReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SegvReason::NoRegion => "no mapping",
            SegvReason::WriteToReadOnly => "write to read-only region",
            SegvReason::ExecNonExec => "execute of non-executable region",
            SegvReason::ReadNonReadable => "read of non-readable region",
        })
    }
}

/// What the fault handler should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAction {
    /// First read of a private anonymous page: map the shared zero page
    /// read-only (and COW).
    MapZeroPage,
    /// Allocate a zeroed frame and map it: first write of an anonymous page,
    /// a write to a zero-page mapping, or any first touch of a shared
    /// anonymous page.
    MapNewZeroed,
    /// First touch of a file page: find the page-cache frame for
    /// `(file, offset)`. If `private_copy` (a write to a private mapping),
    /// copy it into a new anonymous frame and map that writable; otherwise
    /// map the page-cache frame itself (read-only + COW when private).
    FillFromFile {
        /// The file id from the region.
        file: u32,
        /// Page-aligned byte offset in the file.
        offset: u64,
        /// Copy into a private frame instead of mapping the cache frame.
        private_copy: bool,
    },
    /// Write to a shared-COW frame: copy it into a new frame, map that
    /// writable, drop one reference to the old frame.
    CopyOnWrite,
    /// The page was swapped out: bring it back from `entry` (from the swap
    /// cache, or reading the device: a major fault) and map it, writable
    /// only if no one else shares it ([`swapin_flags`]).
    SwapIn {
        /// Where the page is.
        entry: SwapEntry,
    },
    /// Write to a COW (or stale read-only) leaf whose frame is no longer
    /// shared, or to a shared mapping: set WRITABLE in place.
    ReuseWritable,
    /// The address is just below a grows-down stack: call
    /// `VmaSet::grow_down` and retry.
    GrowStack,
    /// The leaf is less permissive than the region for a read or execute
    /// (a missed `mprotect` update): rewrite it with [`protect_pte`].
    RefreshPte,
    /// The leaf already allows the access (another CPU fixed it, or a
    /// stale TLB entry): flush the TLB entry and retry.
    Spurious,
    /// Refuse the access.
    Segv(SegvReason),
}

/// Decides what a page fault needs.
pub fn decide(fault: &Fault<'_>) -> FaultAction {
    let Some(vma) = fault.vma else {
        return FaultAction::Segv(SegvReason::NoRegion);
    };
    let addr = fault.addr;
    if addr >= USER_END || addr >= vma.end || (addr < vma.start && !vma.flags.grows_down) {
        return FaultAction::Segv(SegvReason::NoRegion);
    }
    if fault.access == FaultAccess::Execute && fault.mode == FaultMode::Kernel {
        return FaultAction::Segv(SegvReason::ExecNonExec);
    }
    if !vma.prot.contains(fault.access.needs()) {
        return FaultAction::Segv(match fault.access {
            FaultAccess::Read => SegvReason::ReadNonReadable,
            FaultAccess::Write => SegvReason::WriteToReadOnly,
            FaultAccess::Execute => SegvReason::ExecNonExec,
        });
    }
    if addr < vma.start {
        // Not into the pages below the minimum mmap address (Linux's
        // `expand_downwards` refuses them too): a grows-down region placed
        // at the minimum would otherwise map page 0 on a null pointer's
        // first touch, and a system call would read (or write) memory at
        // NULL instead of failing with EFAULT.
        if addr < crate::MMAP_MIN_ADDR {
            return FaultAction::Segv(SegvReason::NoRegion);
        }
        return FaultAction::GrowStack;
    }
    let write = fault.access == FaultAccess::Write;
    let page = match fault.page {
        Some(page) if page.pte.is_present() => page,
        _ => {
            if let Some(entry) = fault.swapped {
                return FaultAction::SwapIn { entry };
            }
            return first_touch(vma, addr, write);
        }
    };
    let pte = page.pte;
    let allowed = match fault.access {
        FaultAccess::Read => fault.mode == FaultMode::Kernel || pte.has(PteFlags::USER),
        FaultAccess::Write => {
            pte.is_writable() && (fault.mode == FaultMode::Kernel || pte.has(PteFlags::USER))
        }
        FaultAccess::Execute => !pte.has(PteFlags::NO_EXECUTE) && pte.has(PteFlags::USER),
    };
    if allowed {
        return FaultAction::Spurious;
    }
    if !write || !pte.has(PteFlags::USER) {
        return FaultAction::RefreshPte;
    }
    if vma.sharing == Sharing::Shared {
        return FaultAction::ReuseWritable;
    }
    match page.frame {
        FrameUse::ZeroPage => FaultAction::MapNewZeroed,
        FrameUse::PageCache => FaultAction::CopyOnWrite,
        FrameUse::Anon { refs } if refs > 1 => FaultAction::CopyOnWrite,
        FrameUse::Anon { .. } => FaultAction::ReuseWritable,
    }
}

/// No leaf yet: demand-zero or file fill.
fn first_touch(vma: &Vma, addr: u64, write: bool) -> FaultAction {
    match (vma.kind, vma.sharing) {
        (VmaKind::Anonymous, Sharing::Private) if !write => FaultAction::MapZeroPage,
        (VmaKind::Anonymous, _) => FaultAction::MapNewZeroed,
        (VmaKind::File { file, offset }, sharing) => FaultAction::FillFromFile {
            file,
            offset: offset + (page_down(addr) - vma.start),
            private_copy: write && sharing == Sharing::Private,
        },
    }
}

/// Leaf flags from a region's protection: present, user, NX unless
/// executable, writable if `writable` (PROT_NONE: not user-accessible).
fn base_flags(vma: &Vma, writable: bool) -> PteFlags {
    let mut flags = PteFlags::PRESENT;
    if !vma.prot.is_empty() {
        flags |= PteFlags::USER;
    }
    if !vma.prot.contains(Prot::EXEC) {
        flags |= PteFlags::NO_EXECUTE;
    }
    if writable && vma.prot.contains(Prot::WRITE) {
        flags |= PteFlags::WRITABLE;
    }
    flags
}

/// The flags for the leaf an action installs (with the new or reused
/// frame's address), or `None` for actions that install none.
pub fn leaf_flags(vma: &Vma, action: &FaultAction) -> Option<PteFlags> {
    let shared = vma.sharing == Sharing::Shared;
    Some(match action {
        FaultAction::MapZeroPage => base_flags(vma, false) | PteFlags::COW,
        FaultAction::MapNewZeroed
        | FaultAction::CopyOnWrite
        | FaultAction::ReuseWritable
        | FaultAction::FillFromFile {
            private_copy: true, ..
        } => base_flags(vma, true),
        FaultAction::FillFromFile {
            private_copy: false,
            ..
        } if shared => base_flags(vma, true),
        FaultAction::FillFromFile {
            private_copy: false,
            ..
        } => base_flags(vma, false) | PteFlags::COW,
        FaultAction::SwapIn { .. } => return Some(swapin_flags(vma, false)),
        FaultAction::GrowStack
        | FaultAction::RefreshPte
        | FaultAction::Spurious
        | FaultAction::Segv(_) => return None,
    })
}

/// How `fork` copies one present leaf: `(parent, child, shares_frame)`.
///
/// Shared regions keep the same (writable) leaf in both. Private regions
/// get a read-only COW leaf in both, whether or not the region is writable
/// now, so that a later `mprotect(PROT_WRITE)` cannot hand out write access
/// to the shared frame (see [`protect_pte`]). `shares_frame` says the child
/// now references the frame too (the caller increments its count, except
/// for the zero page). A non-present entry is not copied.
pub fn fork_pte(vma: &Vma, pte: Pte) -> (Pte, Pte, bool) {
    if pte.is_swap() {
        // Both now reference the slot: the caller takes a slot reference.
        return (pte, pte, true);
    }
    if !pte.is_present() {
        return (pte, Pte::EMPTY, false);
    }
    match vma.sharing {
        Sharing::Shared => (pte, pte, true),
        Sharing::Private => {
            let cow = pte.without(PteFlags::WRITABLE).with(PteFlags::COW);
            (cow, cow, true)
        }
    }
}

/// The flags for a page swapped back in: writable (and not COW) only if
/// `exclusive` — no other leaf and no swap cache shares the frame, so it
/// may be written in place — else read-only COW, like a page after fork.
pub fn swapin_flags(vma: &Vma, exclusive: bool) -> PteFlags {
    if exclusive {
        base_flags(vma, true)
    } else {
        base_flags(vma, false) | PteFlags::COW
    }
}

/// How `mprotect` rewrites a present leaf of `vma` (which already has its
/// new protection): NX and user access follow the region; WRITABLE is
/// granted only where no copy is needed first (shared regions, or private
/// leaves without the COW bit); the address, COW and A/D bits are kept.
pub fn protect_pte(vma: &Vma, pte: Pte) -> Pte {
    if !pte.is_present() {
        return pte;
    }
    let may_write = vma.sharing == Sharing::Shared || !pte.is_cow();
    let keep =
        pte.flags() & (PteFlags::COW | PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::GLOBAL);
    Pte::new(pte.addr(), base_flags(vma, may_write) | keep)
}

#[cfg(test)]
mod tests;
