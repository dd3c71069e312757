//! x86_64 4-level page tables: entries, the tree, and a range walker.
//!
//! The tree lives in physical frames that only the kernel can reach (through
//! its direct map), so every access goes through the [`TableMemory`] trait;
//! the host tests implement it with boxed arrays. Entries are read and
//! written as atomics because the MMU (on any CPU) sets the accessed and
//! dirty bits behind our back, the way Linux uses `READ_ONCE` and
//! `ptep_get_and_clear`.
//!
//! Invariants this module maintains for the tables it builds:
//! - every present entry at levels 4..2 without the huge bit points to a
//!   live page table;
//! - a non-present entry is zero (there is no swap), so "table is all
//!   zero" means "table is empty";
//! - lower-half (user) tables belong to one address space and are freed as
//!   soon as they become empty; upper-half (kernel) tables are shared by all
//!   address spaces and are never freed here.

use alloc::vec::Vec;
use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign, Not};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::{is_canonical, is_page_aligned, USER_END};

/// Number of entries in one page table.
pub const ENTRIES: usize = 512;

/// Physical-address bits of an entry (bits 12..51).
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Flag bits of a page-table entry: everything outside [`ADDR_MASK`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PteFlags(u64);

impl PteFlags {
    /// No flags.
    pub const EMPTY: PteFlags = PteFlags(0);
    /// P: the entry is valid.
    pub const PRESENT: PteFlags = PteFlags(1 << 0);
    /// R/W: writes allowed (at every level on the way down).
    pub const WRITABLE: PteFlags = PteFlags(1 << 1);
    /// U/S: user mode may access (at every level on the way down).
    pub const USER: PteFlags = PteFlags(1 << 2);
    /// PWT: write-through caching.
    pub const WRITE_THROUGH: PteFlags = PteFlags(1 << 3);
    /// PCD: caching disabled (MMIO).
    pub const NO_CACHE: PteFlags = PteFlags(1 << 4);
    /// A: set by the MMU when the entry is used for a translation.
    pub const ACCESSED: PteFlags = PteFlags(1 << 5);
    /// D: set by the MMU on the first write through a leaf.
    pub const DIRTY: PteFlags = PteFlags(1 << 6);
    /// PS: at levels 3 and 2, this entry is a 1 GiB / 2 MiB leaf. (At level 1
    /// the same bit is PAT; this module never sets it there.)
    pub const HUGE: PteFlags = PteFlags(1 << 7);
    /// G: the translation survives CR3 reloads (kernel mappings).
    pub const GLOBAL: PteFlags = PteFlags(1 << 8);
    /// Software bit 9 (ignored by the MMU). **COW: this page is shared
    /// copy-on-write.** Set on leaves of private regions whose frame may be
    /// shared (after fork, the zero page, a page-cache page): a write must
    /// go through the fault handler, which copies or reuses the frame, and
    /// `mprotect` must not simply make such a leaf writable.
    pub const COW: PteFlags = PteFlags(1 << 9);
    /// XD: instruction fetches through this entry fault.
    pub const NO_EXECUTE: PteFlags = PteFlags(1 << 63);

    /// Bits the MMU sets by itself on a live entry.
    const HARDWARE_SET: PteFlags = PteFlags(Self::ACCESSED.0 | Self::DIRTY.0);

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Flags from raw bits; address bits are dropped.
    pub const fn from_bits_truncate(bits: u64) -> PteFlags {
        PteFlags(bits & !ADDR_MASK)
    }

    /// True if every flag in `other` is set.
    pub const fn contains(self, other: PteFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag in `other` is set.
    pub const fn intersects(self, other: PteFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` with `other` added.
    pub const fn with(self, other: PteFlags) -> PteFlags {
        PteFlags(self.0 | other.0)
    }

    /// `self` with `other` removed.
    pub const fn without(self, other: PteFlags) -> PteFlags {
        PteFlags(self.0 & !other.0)
    }
}

impl BitOr for PteFlags {
    type Output = PteFlags;
    fn bitor(self, rhs: PteFlags) -> PteFlags {
        PteFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for PteFlags {
    fn bitor_assign(&mut self, rhs: PteFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for PteFlags {
    type Output = PteFlags;
    fn bitand(self, rhs: PteFlags) -> PteFlags {
        PteFlags(self.0 & rhs.0)
    }
}

impl Not for PteFlags {
    type Output = PteFlags;
    fn not(self) -> PteFlags {
        PteFlags(!self.0 & !ADDR_MASK)
    }
}

impl fmt::Display for PteFlags {
    /// Space-separated short names, e.g. `P W U A D NX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(PteFlags, &str); 11] = [
            (PteFlags::PRESENT, "P"),
            (PteFlags::WRITABLE, "W"),
            (PteFlags::USER, "U"),
            (PteFlags::WRITE_THROUGH, "PWT"),
            (PteFlags::NO_CACHE, "PCD"),
            (PteFlags::ACCESSED, "A"),
            (PteFlags::DIRTY, "D"),
            (PteFlags::HUGE, "PS"),
            (PteFlags::GLOBAL, "G"),
            (PteFlags::COW, "COW"),
            (PteFlags::NO_EXECUTE, "NX"),
        ];
        let mut rest = *self;
        let mut first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(name)?;
                first = false;
                rest = rest.without(flag);
            }
        }
        if rest.0 != 0 {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{:#x}", rest.0)?;
        } else if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PteFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PteFlags({self})")
    }
}

/// A page-table entry at any level.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    /// The all-zero (not present) entry.
    pub const EMPTY: Pte = Pte(0);

    /// An entry pointing at physical address `pa` (must be page aligned and
    /// below 2^52; other bits are masked off) with `flags`.
    pub const fn new(pa: u64, flags: PteFlags) -> Pte {
        Pte((pa & ADDR_MASK) | flags.0)
    }

    /// The physical address bits (a 4 KiB frame or the next table; for a
    /// huge leaf, also includes the PAT bit 12, see [`Pte::huge_addr`]).
    pub const fn addr(self) -> u64 {
        self.0 & ADDR_MASK
    }

    /// The physical base of a huge leaf at `level` (bit 12 is PAT there).
    pub const fn huge_addr(self, level: Level) -> u64 {
        self.0 & ADDR_MASK & !(level.entry_size() - 1)
    }

    /// The flag bits.
    pub const fn flags(self) -> PteFlags {
        PteFlags(self.0 & !ADDR_MASK)
    }

    /// True if `flags` are all set.
    pub const fn has(self, flags: PteFlags) -> bool {
        self.flags().contains(flags)
    }

    /// P bit.
    pub const fn is_present(self) -> bool {
        self.has(PteFlags::PRESENT)
    }

    /// PS bit: a huge leaf when found at level 3 or 2.
    pub const fn is_huge(self) -> bool {
        self.has(PteFlags::HUGE)
    }

    /// R/W bit.
    pub const fn is_writable(self) -> bool {
        self.has(PteFlags::WRITABLE)
    }

    /// The [`PteFlags::COW`] software bit.
    pub const fn is_cow(self) -> bool {
        self.has(PteFlags::COW)
    }

    /// `self` with `flags` added.
    pub const fn with(self, flags: PteFlags) -> Pte {
        Pte(self.0 | flags.0)
    }

    /// `self` with `flags` removed.
    pub const fn without(self, flags: PteFlags) -> Pte {
        Pte(self.0 & !flags.0)
    }
}

impl fmt::Display for Pte {
    /// `0x0000000000123000 P W U A D NX`, or `(none)` for an empty entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("(none)");
        }
        write!(f, "{:#018x} {}", self.addr(), self.flags())
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pte({self})")
    }
}

/// A level of the tree, numbered as the page-size it maps: level 1 entries
/// map 4 KiB, level 2 2 MiB, level 3 1 GiB, level 4 512 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table (PT): 4 KiB leaves.
    Pt = 1,
    /// Page directory (PD): tables or 2 MiB leaves.
    Pd = 2,
    /// Page-directory-pointer table (PDPT): tables or 1 GiB leaves.
    Pdpt = 3,
    /// The root (PML4).
    Pml4 = 4,
}

impl Level {
    /// Bit position of this level's index in a virtual address.
    pub const fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }

    /// Bytes of address space one entry at this level covers.
    pub const fn entry_size(self) -> u64 {
        1 << self.shift()
    }

    /// This level's table index for `va`.
    pub const fn index(self, va: u64) -> usize {
        ((va >> self.shift()) & 0x1ff) as usize
    }

    /// The level below, or `None` for [`Level::Pt`].
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pml4 => Some(Level::Pdpt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pd => Some(Level::Pt),
            Level::Pt => None,
        }
    }

    /// The Intel name of the table at this level.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Pml4 => "PML4",
            Level::Pdpt => "PDPT",
            Level::Pd => "PD",
            Level::Pt => "PT",
        }
    }

    /// True if an entry at this level with PS set is a leaf.
    const fn may_be_huge(self) -> bool {
        matches!(self, Level::Pdpt | Level::Pd)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Access to the frames that hold page tables.
///
/// The kernel implements it with its direct map and the buddy allocator:
/// `table(phys)` is `(PHYS_OFFSET + phys) as *mut [u64; 512]`,
/// `alloc_table` takes an order-0 frame and zeroes it, `free_table` returns
/// it. The host tests use a map from address to boxed array.
///
/// # Safety
/// Implementors promise that:
/// - `alloc_table` returns the physical address of a 4 KiB-aligned,
///   zero-filled frame below 2^52 that nothing else uses until it is passed
///   to `free_table`;
/// - for any `phys` returned by `alloc_table` and not yet freed (and for
///   any root adopted with [`PageTables::from_root`]), `table(phys)`
///   returns a pointer that is 8-byte aligned and valid for reads and
///   writes of 4 KiB for as long as the frame stays allocated, and that
///   anything else touching that memory meanwhile (other CPUs, the MMU)
///   does so atomically;
/// - `table` never returns a dangling pointer for an unknown `phys`: it
///   panics instead.
pub unsafe trait TableMemory {
    /// Pointer to the table in frame `phys`.
    fn table(&mut self, phys: u64) -> *mut [u64; ENTRIES];
    /// A fresh zeroed table frame, or `None` when out of memory.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Gives back a table frame that no entry points to any more.
    fn free_table(&mut self, phys: u64);
}

/// The entry `idx` of table `table` as an atomic.
///
/// The reference borrows `mem` mutably, so the table cannot be freed (which
/// needs `&mut mem`) while it is in use.
fn slot<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> &AtomicU64 {
    assert!(idx < ENTRIES);
    let entry = mem.table(table).cast::<u64>().wrapping_add(idx);
    // SAFETY: every `table` this module passes is the root (allocated by
    // `alloc_table` or adopted under `from_root`'s contract) or the address
    // in a present non-leaf entry, which this module only ever sets to live
    // tables from `alloc_table` and clears before freeing them. By the
    // `TableMemory` contract the pointer is then valid and 8-aligned for
    // 4 KiB, so `entry` (idx < 512) is in bounds, and all other accesses to
    // it are atomic. The returned lifetime is tied to the `&mut mem` borrow,
    // which prevents `free_table` while the reference lives.
    unsafe { AtomicU64::from_ptr(entry) }
}

fn load<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> Pte {
    Pte(slot(mem, table, idx).load(Ordering::Acquire))
}

fn store<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize, pte: Pte) {
    slot(mem, table, idx).store(pte.0, Ordering::Release);
}

/// Clears an entry, returning its final value (with any A/D bits the MMU
/// set up to that moment, like `ptep_get_and_clear`).
fn take<M: TableMemory + ?Sized>(mem: &mut M, table: u64, idx: usize) -> Pte {
    Pte(slot(mem, table, idx).swap(0, Ordering::AcqRel))
}

fn table_is_empty<M: TableMemory + ?Sized>(mem: &mut M, table: u64) -> bool {
    (0..ENTRIES).all(|i| load(mem, table, i).0 == 0)
}

/// Where a leaf lives, handed to the internal visitors.
#[derive(Clone, Copy)]
struct Slot {
    table: u64,
    idx: usize,
    level: Level,
}

impl Slot {
    fn take<M: TableMemory + ?Sized>(self, mem: &mut M) -> Pte {
        take(mem, self.table, self.idx)
    }

    /// Replaces the leaf that was seen as `seen` with `new`.
    ///
    /// A non-present `new` clears the entry (non-present entries are zero).
    /// A huge leaf stays huge, so it can never turn into a "table pointer"
    /// to arbitrary memory. A/D bits that the MMU set since `seen` are kept.
    /// Returns true if the entry was cleared.
    fn replace<M: TableMemory + ?Sized>(self, mem: &mut M, seen: Pte, new: Pte) -> bool {
        if !new.is_present() {
            self.take(mem);
            return true;
        }
        self.exchange(mem, seen, new);
        false
    }

    /// Replaces the present leaf seen as `seen` with the present `new`,
    /// carrying over A/D bits the MMU set since; returns the entry replaced.
    fn exchange<M: TableMemory + ?Sized>(self, mem: &mut M, seen: Pte, new: Pte) -> Pte {
        let new = if self.level.may_be_huge() {
            new.with(PteFlags::HUGE)
        } else {
            new
        };
        let atomic = slot(mem, self.table, self.idx);
        let mut cur = atomic.load(Ordering::Acquire);
        loop {
            let hw_new = cur & !seen.0 & PteFlags::HARDWARE_SET.0;
            match atomic.compare_exchange_weak(
                cur,
                new.0 | hw_new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Pte(cur),
                Err(now) => cur = now,
            }
        }
    }
}

/// The leaf entry for one page (see [`PageTables::leaf_entry`]): a 4 KiB
/// entry, present or empty, or a present huge leaf.
pub struct LeafEntry<'t> {
    tables: &'t mut PageTables,
    va: u64,
    /// Where the entry is; `None` while tables on the way are missing.
    slot: Option<Slot>,
    pte: Pte,
}

impl LeafEntry<'_> {
    /// The entry as the walk read it ([`Pte::EMPTY`] if there is none).
    pub fn pte(&self) -> Pte {
        self.pte
    }

    /// The level it sits at: [`Level::Pt`] unless it is a huge leaf.
    pub fn level(&self) -> Level {
        self.slot.map_or(Level::Pt, |s| s.level)
    }

    /// Writes `new`, which must be present (clearing goes through
    /// [`PageTables::unmap`], which also frees empty tables), creating
    /// missing tables. A/D bits the MMU set since the walk are kept. Returns
    /// the entry replaced, with those bits. On failure nothing changed.
    pub fn set<M: TableMemory + ?Sized>(self, mem: &mut M, new: Pte) -> Result<Pte, MapError> {
        if !new.is_present() {
            return Err(MapError::NotPresent);
        }
        match self.slot {
            Some(slot) if self.pte.is_present() => Ok(slot.exchange(mem, self.pte, new)),
            Some(slot) => {
                // An empty entry: the MMU never writes to one.
                store(mem, slot.table, slot.idx, new);
                Ok(Pte::EMPTY)
            }
            None => {
                self.tables.map_pte(mem, self.va, new)?;
                Ok(Pte::EMPTY)
            }
        }
    }
}

/// What a walker wants done with a present non-leaf entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkAction {
    /// Visit the table it points to.
    Descend,
    /// Do not look below this entry.
    Skip,
}

/// Read-only visitor for [`PageTables::walk`] (Linux's `mm_walk_ops`).
///
/// Addresses are canonical. An `end` of 0 means the top of the address
/// space (2^64 wrapped).
pub trait PageWalker {
    /// A present entry pointing to a table at `level - 1`, covering
    /// `[va, va + level.entry_size())`.
    fn entry(&mut self, level: Level, va: u64, pte: Pte) -> WalkAction {
        let _ = (level, va, pte);
        WalkAction::Descend
    }
    /// A present leaf mapping `[va, va + size)`: 4 KiB at level 1, or a
    /// huge leaf (2 MiB / 1 GiB) that may extend beyond the walked range.
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) {
        let _ = (va, size, pte);
    }
    /// `[start, end)` (clipped to the walked range) has nothing mapped: a
    /// non-present entry at `level`.
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        let _ = (start, end, level);
    }
}

/// What a mutating walker wants done with a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafUpdate {
    /// Leave it.
    Keep,
    /// Store this entry instead (a non-present one clears the leaf; a huge
    /// leaf stays huge).
    Set(Pte),
    /// Clear it. Lower-half tables left empty are freed.
    Clear,
}

/// Visitor for [`PageTables::walk_mut`]: like [`PageWalker`] but may
/// rewrite or clear leaves.
pub trait PageWalkerMut {
    /// As [`PageWalker::entry`].
    fn entry(&mut self, level: Level, va: u64, pte: Pte) -> WalkAction {
        let _ = (level, va, pte);
        WalkAction::Descend
    }
    /// As [`PageWalker::leaf`], returning what to do with the leaf.
    fn leaf(&mut self, va: u64, size: u64, pte: Pte) -> LeafUpdate;
    /// As [`PageWalker::hole`].
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        let _ = (start, end, level);
    }
}

/// Why a page-table operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The virtual address is not canonical.
    NonCanonical(u64),
    /// An address that must be page aligned is not.
    Unaligned(u64),
    /// The physical address does not fit in 52 bits.
    BadPhysAddr(u64),
    /// Leaf flags may not contain [`PteFlags::HUGE`] (4 KiB pages only).
    HugeFlag,
    /// A walk range is empty-but-reversed or crosses its own end.
    BadRange {
        /// Requested start.
        start: u64,
        /// Requested end.
        end: u64,
    },
    /// A present leaf is already there.
    AlreadyMapped {
        /// The address.
        va: u64,
        /// What is mapped there.
        existing: Pte,
    },
    /// A huge leaf covers the address, so no 4 KiB page can be mapped there.
    HugePageInTheWay {
        /// The address.
        va: u64,
        /// The level of the huge leaf.
        level: Level,
    },
    /// No frame for a page table. Nothing was left half-built.
    OutOfMemory,
    /// A leaf may only be set to a present entry here.
    NotPresent,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MapError::NonCanonical(va) => write!(f, "virtual address {va:#x} is not canonical"),
            MapError::Unaligned(a) => write!(f, "address {a:#x} is not page aligned"),
            MapError::BadPhysAddr(pa) => write!(f, "physical address {pa:#x} is beyond 52 bits"),
            MapError::HugeFlag => f.write_str("leaf flags must not contain the huge (PS) bit"),
            MapError::BadRange { start, end } => {
                write!(f, "bad address range {start:#x}..{end:#x}")
            }
            MapError::AlreadyMapped { va, existing } => {
                write!(f, "{va:#x} is already mapped ({existing})")
            }
            MapError::HugePageInTheWay { va, level } => {
                write!(
                    f,
                    "{va:#x} is inside a huge page mapped at level {}",
                    level as u8
                )
            }
            MapError::OutOfMemory => f.write_str("out of memory for page tables"),
            MapError::NotPresent => f.write_str("a leaf can only be set to a present entry"),
        }
    }
}

/// One step of a translation, for a `walk PID ADDR` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The table's level.
    pub level: Level,
    /// Physical address of the table.
    pub table: u64,
    /// Index used in that table.
    pub index: usize,
    /// The entry found there.
    pub entry: Pte,
}

impl fmt::Display for WalkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} @ {:#x} [{:3}] = {}",
            self.level.name(),
            self.table,
            self.index,
            self.entry
        )
    }
}

/// The linear (48-bit, hole-free) form of the address space that walks
/// iterate over: lower half is `[0, 2^47)`, upper half `[2^47, 2^48)`.
const LINEAR_END: u64 = 1 << 48;
const LINEAR_USER_END: u64 = 1 << 47;

const fn to_linear(va: u64) -> u64 {
    va & (LINEAR_END - 1)
}

const fn to_canonical(lin: u64) -> u64 {
    if lin & LINEAR_USER_END != 0 {
        lin | !(LINEAR_END - 1)
    } else {
        lin
    }
}

/// Canonical form of an exclusive linear end: the lower half ends at
/// [`USER_END`], the whole space at 0 (2^64 wrapped).
const fn end_to_canonical(lin_end: u64) -> u64 {
    to_canonical(lin_end - 1).wrapping_add(1)
}

/// Converts a walk range to linear form: `start` canonical, `end` canonical
/// or [`USER_END`] or 0 (top of the address space).
fn linear_range(start: u64, end: u64) -> Result<(u64, u64), MapError> {
    if !is_canonical(start) {
        return Err(MapError::NonCanonical(start));
    }
    if end == start {
        // Empty, even at 0: `[0, 0)` must never read as "to the top".
        let lin = to_linear(start);
        return Ok((lin, lin));
    }
    let lin_end = match end {
        0 => LINEAR_END,
        USER_END => LINEAR_USER_END,
        e if is_canonical(e) => to_linear(e),
        e => return Err(MapError::NonCanonical(e)),
    };
    let lin_start = to_linear(start);
    if lin_end < lin_start {
        return Err(MapError::BadRange { start, end });
    }
    Ok((lin_start, lin_end))
}

/// The internal visitor all walks are built on: sees `mem` and the leaf's
/// slot, and can stop the walk early.
trait Visit<M: ?Sized> {
    fn entry(&mut self, _mem: &mut M, _level: Level, _va: u64, _pte: Pte) -> WalkAction {
        WalkAction::Descend
    }
    /// Returns true if it cleared the leaf.
    fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, pte: Pte) -> bool;
    fn hole(&mut self, _start: u64, _end: u64, _level: Level) {}
    fn stopped(&self) -> bool {
        false
    }
}

/// Visits the part `[start, end)` (linear, non-empty) of the table `table`
/// at `level`. Returns true if an entry of this table was cleared.
fn walk_table<M, V>(mem: &mut M, table: u64, level: Level, start: u64, end: u64, v: &mut V) -> bool
where
    M: TableMemory + ?Sized,
    V: Visit<M> + ?Sized,
{
    let size = level.entry_size();
    let table_base = start & !(size * ENTRIES as u64 - 1);
    let mut cleared = false;
    for idx in level.index(start)..=level.index(end - 1) {
        if v.stopped() {
            break;
        }
        let entry_lin = table_base + idx as u64 * size;
        let (lo, hi) = (start.max(entry_lin), end.min(entry_lin + size));
        let va = to_canonical(entry_lin);
        let pte = load(mem, table, idx);
        if !pte.is_present() {
            v.hole(to_canonical(lo), end_to_canonical(hi), level);
            continue;
        }
        let Some(lower) = level
            .lower()
            .filter(|_| !(level.may_be_huge() && pte.is_huge()))
        else {
            cleared |= v.leaf(mem, Slot { table, idx, level }, va, size, pte);
            continue;
        };
        if v.entry(mem, level, va, pte) == WalkAction::Skip {
            continue;
        }
        let child = pte.addr();
        if walk_table(mem, child, lower, lo, hi, v)
            && entry_lin < LINEAR_USER_END
            && table_is_empty(mem, child)
        {
            store(mem, table, idx, Pte::EMPTY);
            mem.free_table(child);
            cleared = true;
        }
    }
    cleared
}

/// Flags of an entry linking to a lower table for `va`: they allow
/// everything (user + writable in the lower half, writable in the upper
/// half), so the leaf alone decides.
const fn link_flags(va: u64) -> PteFlags {
    if va < USER_END {
        PteFlags(PteFlags::PRESENT.0 | PteFlags::WRITABLE.0 | PteFlags::USER.0)
    } else {
        PteFlags(PteFlags::PRESENT.0 | PteFlags::WRITABLE.0)
    }
}

/// The body of [`PageTables::clone_user_for_fork`]: copies the user entries
/// of the parent table `table` at `level` (covering linear addresses from
/// `base`) into the child table `ctable`. Returns whether it stored
/// anything in `ctable`.
fn fork_table<M, F>(
    mem: &mut M,
    table: u64,
    ctable: u64,
    level: Level,
    base: u64,
    f: &mut F,
    count: &mut usize,
) -> Result<bool, MapError>
where
    M: TableMemory + ?Sized,
    F: FnMut(u64, Pte) -> Option<(Pte, Pte)>,
{
    // The root's upper half is the shared kernel half.
    let entries = if level == Level::Pml4 {
        ENTRIES / 2
    } else {
        ENTRIES
    };
    let mut stored = false;
    let Some(lower) = level.lower() else {
        for idx in 0..entries {
            let pte = load(mem, table, idx);
            if !pte.is_present() {
                continue;
            }
            let va = base + idx as u64 * Level::Pt.entry_size();
            let existing = load(mem, ctable, idx);
            if existing.is_present() {
                return Err(MapError::AlreadyMapped { va, existing });
            }
            let Some((parent, child)) = f(va, pte) else {
                continue;
            };
            if child.is_present() {
                store(mem, ctable, idx, child);
                *count += 1;
                stored = true;
            }
            if parent != pte {
                Slot {
                    table,
                    idx,
                    level: Level::Pt,
                }
                .replace(mem, pte, parent);
            }
        }
        return Ok(stored);
    };
    for idx in 0..entries {
        let pte = load(mem, table, idx);
        if !pte.is_present() {
            continue;
        }
        let lin = base + idx as u64 * level.entry_size();
        if level.may_be_huge() && pte.is_huge() {
            return Err(MapError::HugePageInTheWay { va: lin, level });
        }
        let centry = load(mem, ctable, idx);
        let (child_table, fresh) = if centry.is_present() {
            (centry.addr(), false)
        } else {
            let phys = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            store(mem, ctable, idx, Pte::new(phys, link_flags(lin)));
            (phys, true)
        };
        let result = fork_table(mem, pte.addr(), child_table, lower, lin, f, count);
        if fresh && !matches!(result, Ok(true)) && table_is_empty(mem, child_table) {
            // A fresh table that got nothing: do not keep it.
            store(mem, ctable, idx, Pte::EMPTY);
            mem.free_table(child_table);
        } else {
            stored = true;
        }
        result?;
    }
    Ok(stored)
}

struct ReadOnly<'a, W: ?Sized>(&'a mut W);

impl<M: TableMemory + ?Sized, W: PageWalker + ?Sized> Visit<M> for ReadOnly<'_, W> {
    fn entry(&mut self, _: &mut M, level: Level, va: u64, pte: Pte) -> WalkAction {
        self.0.entry(level, va, pte)
    }
    fn leaf(&mut self, _: &mut M, _: Slot, va: u64, size: u64, pte: Pte) -> bool {
        self.0.leaf(va, size, pte);
        false
    }
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        self.0.hole(start, end, level);
    }
}

struct Mutating<'a, W: ?Sized>(&'a mut W);

impl<M: TableMemory + ?Sized, W: PageWalkerMut + ?Sized> Visit<M> for Mutating<'_, W> {
    fn entry(&mut self, _: &mut M, level: Level, va: u64, pte: Pte) -> WalkAction {
        self.0.entry(level, va, pte)
    }
    fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, pte: Pte) -> bool {
        match self.0.leaf(va, size, pte) {
            LeafUpdate::Keep => false,
            LeafUpdate::Set(new) => slot.replace(mem, pte, new),
            LeafUpdate::Clear => {
                slot.take(mem);
                true
            }
        }
    }
    fn hole(&mut self, start: u64, end: u64, level: Level) {
        self.0.hole(start, end, level);
    }
}

/// Counts the tables below the entries it descends through.
struct TableCounter(usize);

impl PageWalker for TableCounter {
    fn entry(&mut self, _: Level, _: u64, _: Pte) -> WalkAction {
        self.0 += 1;
        WalkAction::Descend
    }
}

/// One address space's page-table tree, named by its root (the PML4 frame,
/// what CR3 holds).
///
/// It does not free anything on drop (it cannot reach the memory): call
/// [`PageTables::destroy`].
#[derive(Debug, PartialEq, Eq)]
pub struct PageTables {
    root: u64,
}

impl PageTables {
    /// An empty tree: a fresh zeroed root.
    pub fn new<M: TableMemory + ?Sized>(mem: &mut M) -> Option<PageTables> {
        Some(PageTables {
            root: mem.alloc_table()?,
        })
    }

    /// A new user address space: an empty lower half and the kernel half
    /// (root entries 256..512) shared with `kernel`, as Linux's `pgd_alloc`
    /// copies the kernel PGD entries. For later kernel mappings to show up
    /// everywhere, the kernel should populate all 256 upper root entries
    /// before creating processes.
    pub fn new_user<M: TableMemory + ?Sized>(
        mem: &mut M,
        kernel: &PageTables,
    ) -> Option<PageTables> {
        let tables = PageTables::new(mem)?;
        for idx in ENTRIES / 2..ENTRIES {
            let entry = load(mem, kernel.root, idx);
            store(mem, tables.root, idx, entry);
        }
        Some(tables)
    }

    /// Adopts an existing tree, e.g. the one the bootloader built.
    ///
    /// # Safety
    /// `root` must be a page-table frame that the `TableMemory` used with
    /// this value accepts, and every present non-leaf entry reachable from
    /// it must point to such a frame, recursively (the bootloader's tables
    /// satisfy this). Lower-half tables reachable from it must not be shared
    /// with another `PageTables`, since they will be freed when empty.
    pub const unsafe fn from_root(root: u64) -> PageTables {
        PageTables { root }
    }

    /// Physical address of the root, for CR3.
    pub const fn root(&self) -> u64 {
        self.root
    }

    /// Maps the 4 KiB page at `va` to frame `pa` with `flags` (PRESENT is
    /// implied). Missing tables are created; their entries allow everything
    /// (user + writable in the lower half, writable in the upper half) so
    /// the leaf alone decides. On failure nothing is changed.
    pub fn map<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        pa: u64,
        flags: PteFlags,
    ) -> Result<(), MapError> {
        if !is_page_aligned(pa) {
            return Err(MapError::Unaligned(pa));
        }
        if pa & !ADDR_MASK != 0 {
            return Err(MapError::BadPhysAddr(pa));
        }
        if flags.contains(PteFlags::HUGE) {
            return Err(MapError::HugeFlag);
        }
        self.map_pte(mem, va, Pte::new(pa, flags.with(PteFlags::PRESENT)))
    }

    fn map_pte<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        pte: Pte,
    ) -> Result<(), MapError> {
        let slot = self.leaf_slot(mem, va)?;
        let existing = load(mem, slot.table, slot.idx);
        if existing.is_present() {
            return Err(MapError::AlreadyMapped { va, existing });
        }
        store(mem, slot.table, slot.idx, pte);
        Ok(())
    }

    /// The level-1 slot for `va`, creating missing tables. All tables are
    /// allocated before any is linked in, so running out of memory leaves
    /// the tree as it was.
    fn leaf_slot<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
    ) -> Result<Slot, MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical(va));
        }
        if !is_page_aligned(va) {
            return Err(MapError::Unaligned(va));
        }
        let mut table = self.root;
        let mut level = Level::Pml4;
        while let Some(lower) = level.lower() {
            let entry = load(mem, table, level.index(va));
            if !entry.is_present() {
                break;
            }
            if level.may_be_huge() && entry.is_huge() {
                return Err(MapError::HugePageInTheWay { va, level });
            }
            table = entry.addr();
            level = lower;
        }
        let missing = level as usize - 1;
        let mut fresh = [0u64; 3];
        for i in 0..missing {
            match mem.alloc_table() {
                Some(phys) => fresh[i] = phys,
                None => {
                    for &phys in &fresh[..i] {
                        mem.free_table(phys);
                    }
                    return Err(MapError::OutOfMemory);
                }
            }
        }
        let link = link_flags(va);
        for &phys in &fresh[..missing] {
            debug_assert!(is_page_aligned(phys) && phys & !ADDR_MASK == 0);
            store(mem, table, level.index(va), Pte::new(phys, link));
            table = phys;
            level = level.lower().unwrap_or(Level::Pt);
        }
        Ok(Slot {
            table,
            idx: Level::Pt.index(va),
            level: Level::Pt,
        })
    }

    /// The path from the root to the leaf (or hole) for `va`: the table and
    /// index at each level, and the level and entry where it stopped.
    fn path<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> ([(u64, usize); 4], Level, Pte) {
        let mut path = [(0, 0); 4];
        let mut table = self.root;
        let mut level = Level::Pml4;
        loop {
            let idx = level.index(va);
            path[Level::Pml4 as usize - level as usize] = (table, idx);
            let entry = load(mem, table, idx);
            match level.lower() {
                Some(lower) if entry.is_present() && !(level.may_be_huge() && entry.is_huge()) => {
                    table = entry.addr();
                    level = lower;
                }
                _ => return (path, level, entry),
            }
        }
    }

    /// The entry that maps `va` (or would map it), found by one walk, for a
    /// fault handler to read, decide on and rewrite in place, as Linux does
    /// through `vmf->pte`. The entry borrows the tree, so no table can be
    /// freed while it is held. `None` for a non-canonical or unaligned `va`.
    pub fn leaf_entry<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
    ) -> Option<LeafEntry<'_>> {
        if !is_canonical(va) || !is_page_aligned(va) {
            return None;
        }
        let (path, level, pte) = self.path(mem, va);
        // A walk that stops at a missing table above the last level has no
        // slot yet: `set` creates the tables.
        let slot = (pte.is_present() || level == Level::Pt).then(|| {
            let (table, idx) = path[Level::Pml4 as usize - level as usize];
            Slot { table, idx, level }
        });
        Some(LeafEntry {
            tables: self,
            va,
            slot,
            pte: if slot.is_some() { pte } else { Pte::EMPTY },
        })
    }

    /// Removes the leaf mapping `va` and returns it (with its final A/D
    /// bits). Lower-half tables left empty are freed, up to but not
    /// including the root. A huge leaf is removed only if `va` is its first
    /// address; otherwise, and for bad addresses, returns `None`.
    pub fn unmap<M: TableMemory + ?Sized>(&mut self, mem: &mut M, va: u64) -> Option<Pte> {
        if !is_canonical(va) || !is_page_aligned(va) {
            return None;
        }
        let (path, level, entry) = self.path(mem, va);
        if !entry.is_present() || va & (level.entry_size() - 1) != 0 {
            return None;
        }
        let depth = Level::Pml4 as usize - level as usize;
        let (table, idx) = path[depth];
        let old = take(mem, table, idx);
        if va < USER_END {
            // Free tables bottom-up while they are empty; path[0] is the root.
            for d in (1..=depth).rev() {
                let (table, _) = path[d];
                if !table_is_empty(mem, table) {
                    break;
                }
                let (parent, pidx) = path[d - 1];
                store(mem, parent, pidx, Pte::EMPTY);
                mem.free_table(table);
            }
        }
        Some(old)
    }

    /// Rewrites the leaf mapping `va` (any size) with `f`; returns the new
    /// entry, or `None` if nothing is mapped. See [`LeafUpdate::Set`] for
    /// how the result is sanitised.
    pub fn update<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        f: impl FnOnce(Pte) -> Pte,
    ) -> Option<Pte> {
        if !is_canonical(va) {
            return None;
        }
        let (path, level, entry) = self.path(mem, va);
        if !entry.is_present() {
            return None;
        }
        let (table, idx) = path[Level::Pml4 as usize - level as usize];
        let new = f(entry);
        if (Slot { table, idx, level }).replace(mem, entry, new) {
            // Cleared through `update`: free tables as unmap would.
            if va < USER_END {
                self.free_empty_path(mem, va);
            }
            return Some(Pte::EMPTY);
        }
        Some(load(mem, table, idx))
    }

    fn free_empty_path<M: TableMemory + ?Sized>(&mut self, mem: &mut M, va: u64) {
        let (path, level, _) = self.path(mem, va);
        let depth = Level::Pml4 as usize - level as usize;
        for d in (1..=depth).rev() {
            let (table, _) = path[d];
            if !table_is_empty(mem, table) {
                break;
            }
            let (parent, pidx) = path[d - 1];
            store(mem, parent, pidx, Pte::EMPTY);
            mem.free_table(table);
        }
    }

    /// Replaces the flags of the leaf mapping `va`, keeping its address, its
    /// huge bit and the MMU's A/D bits. Returns the new entry.
    pub fn protect<M: TableMemory + ?Sized>(
        &mut self,
        mem: &mut M,
        va: u64,
        flags: PteFlags,
    ) -> Option<Pte> {
        self.update(mem, va, |old| {
            let keep = old.flags() & (PteFlags::HUGE | PteFlags::HARDWARE_SET);
            Pte(old.0 & ADDR_MASK).with(flags | keep | PteFlags::PRESENT)
        })
    }

    /// Translates `va`: the physical address, the leaf entry, and the level
    /// it was found at (1: 4 KiB, 2: 2 MiB, 3: 1 GiB page).
    pub fn translate<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> Option<(u64, Pte, Level)> {
        if !is_canonical(va) {
            return None;
        }
        let (_, level, entry) = self.path(mem, va);
        if !entry.is_present() || level == Level::Pml4 {
            return None;
        }
        let offset = va & (level.entry_size() - 1);
        let base = if level == Level::Pt {
            entry.addr()
        } else {
            entry.huge_addr(level)
        };
        Some((base | offset, entry, level))
    }

    /// Every step of translating `va`, root first, ending at the leaf or at
    /// the first non-present entry.
    pub fn translate_walk<M: TableMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
    ) -> Result<Vec<WalkStep>, MapError> {
        if !is_canonical(va) {
            return Err(MapError::NonCanonical(va));
        }
        let (path, last, _) = self.path(mem, va);
        let depth = Level::Pml4 as usize - last as usize;
        let mut steps = Vec::with_capacity(depth + 1);
        let mut level = Level::Pml4;
        for &(table, index) in &path[..=depth] {
            let entry = load(mem, table, index);
            steps.push(WalkStep {
                level,
                table,
                index,
                entry,
            });
            level = level.lower().unwrap_or(Level::Pt);
        }
        Ok(steps)
    }

    /// Visits `[start, end)` level by level (see [`PageWalker`]). `end` may
    /// be [`USER_END`] or 0 for "to the top" (unless `start` is 0 too:
    /// `[0, 0)` is empty).
    pub fn walk<M: TableMemory + ?Sized, W: PageWalker + ?Sized>(
        &self,
        mem: &mut M,
        start: u64,
        end: u64,
        walker: &mut W,
    ) -> Result<(), MapError> {
        let (lo, hi) = linear_range(start, end)?;
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut ReadOnly(walker));
        }
        Ok(())
    }

    /// [`PageTables::walk`] over the whole address space, both halves.
    pub fn walk_all<M: TableMemory + ?Sized, W: PageWalker + ?Sized>(
        &self,
        mem: &mut M,
        walker: &mut W,
    ) {
        walk_table(
            mem,
            self.root,
            Level::Pml4,
            0,
            LINEAR_END,
            &mut ReadOnly(walker),
        );
    }

    /// Like [`PageTables::walk`], but the walker may rewrite or clear
    /// leaves; lower-half tables that become empty are freed.
    pub fn walk_mut<M: TableMemory + ?Sized, W: PageWalkerMut + ?Sized>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        walker: &mut W,
    ) -> Result<(), MapError> {
        let (lo, hi) = linear_range(start, end)?;
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut Mutating(walker));
        }
        Ok(())
    }

    /// [`PageTables::walk_mut`] with a closure `f(va, size, pte)`, e.g. for
    /// `mprotect`: `|_, _, pte| LeafUpdate::Set(fault::protect_pte(&vma, pte))`.
    pub fn update_leaves<M, F>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        f: &mut F,
    ) -> Result<(), MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, u64, Pte) -> LeafUpdate,
    {
        struct Closure<'a, F>(&'a mut F);
        impl<F: FnMut(u64, u64, Pte) -> LeafUpdate> PageWalkerMut for Closure<'_, F> {
            fn leaf(&mut self, va: u64, size: u64, pte: Pte) -> LeafUpdate {
                (self.0)(va, size, pte)
            }
        }
        self.walk_mut(mem, start, end, &mut Closure(f))
    }

    /// Clears every leaf lying entirely inside `[start, end)` (`munmap`),
    /// calling `f(va, size, final_pte)` for each so the caller can drop its
    /// frame reference, and frees lower-half tables left empty. A huge leaf
    /// only partly inside is left alone. Returns the number of leaves
    /// cleared.
    pub fn unmap_range<M, F>(
        &mut self,
        mem: &mut M,
        start: u64,
        end: u64,
        f: &mut F,
    ) -> Result<usize, MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, u64, Pte),
    {
        struct Unmapper<'a, F> {
            f: &'a mut F,
            start: u64,
            end: u64,
            count: usize,
        }
        impl<M: TableMemory + ?Sized, F: FnMut(u64, u64, Pte)> Visit<M> for Unmapper<'_, F> {
            fn leaf(&mut self, mem: &mut M, slot: Slot, va: u64, size: u64, _: Pte) -> bool {
                let (lin, lin_start) = (to_linear(va), to_linear(self.start));
                if lin < lin_start || lin + size > self.end {
                    return false;
                }
                let old = slot.take(mem);
                (self.f)(va, size, old);
                self.count += 1;
                true
            }
        }
        let (lo, hi) = linear_range(start, end)?;
        let mut v = Unmapper {
            f,
            start,
            end: hi,
            count: 0,
        };
        if lo < hi {
            walk_table(mem, self.root, Level::Pml4, lo, hi, &mut v);
        }
        Ok(v.count)
    }

    /// Exit / exec: clears every user (lower-half) leaf, calling `f(va,
    /// final_pte)` for each, and frees every lower-half table. Afterwards
    /// only the root (and the shared kernel half) remain.
    pub fn teardown_user<M, F>(&mut self, mem: &mut M, f: &mut F)
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, Pte),
    {
        let mut each = |va: u64, _: u64, pte: Pte| f(va, pte);
        // The whole lower half is a valid range, so this cannot fail.
        let _ = self.unmap_range(mem, 0, USER_END, &mut each);
    }

    /// [`PageTables::teardown_user`], then frees the root. The kernel-half
    /// tables are shared and stay.
    pub fn destroy<M, F>(mut self, mem: &mut M, f: &mut F)
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, Pte),
    {
        self.teardown_user(mem, f);
        mem.free_table(self.root);
    }

    /// Fork: for every user 4 KiB leaf of `self`, calls `f(va, pte)`; if it
    /// returns `Some((parent, child))`, stores `parent` here and maps
    /// `child` at the same address in `child` (which should have an empty
    /// lower half; a present `child` entry already there is an error). `f`
    /// is only called once the child's tables for that page exist, so on
    /// `OutOfMemory` every `child` entry `f` produced is in place and the
    /// caller can simply `destroy` the child. Returns the number of leaves
    /// copied. A huge leaf in the user half is an error.
    ///
    /// Like Linux's `copy_page_range`, it goes table by table: each child
    /// table is found or made once, then a page table's 512 entries are
    /// copied in one tight loop.
    ///
    /// Pair it with [`crate::fault::fork_pte`] and a frame reference
    /// increment when the frame is shared.
    pub fn clone_user_for_fork<M, F>(
        &mut self,
        child: &mut PageTables,
        mem: &mut M,
        f: &mut F,
    ) -> Result<usize, MapError>
    where
        M: TableMemory + ?Sized,
        F: FnMut(u64, Pte) -> Option<(Pte, Pte)>,
    {
        let mut count = 0;
        fork_table(mem, self.root, child.root, Level::Pml4, 0, f, &mut count)?;
        Ok(count)
    }

    /// Number of page-table pages reachable from the root, including the
    /// root and the (shared) kernel half.
    pub fn table_count<M: TableMemory + ?Sized>(&self, mem: &mut M) -> usize {
        let mut counter = TableCounter(1);
        self.walk_all(mem, &mut counter);
        counter.0
    }

    /// Page-table pages this address space owns: the root plus every
    /// lower-half table (for meminfo's `PageTables` and per-process stats).
    pub fn user_table_count<M: TableMemory + ?Sized>(&self, mem: &mut M) -> usize {
        let mut counter = TableCounter(1);
        let _ = self.walk(mem, 0, USER_END, &mut counter);
        counter.0
    }
}

#[cfg(test)]
mod tests;
