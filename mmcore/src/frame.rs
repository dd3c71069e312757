//! Page frames: numbers, per-frame metadata and access to frame bytes.

use core::fmt;
use core::mem::MaybeUninit;
use core::ops::{Add, Sub};

/// Size of one physical page frame.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Largest buddy order: blocks of 2^0 .. 2^10 frames (4 KiB .. 4 MiB).
pub const MAX_ORDER: usize = 10;
/// Number of buddy orders (`MAX_ORDER + 1`).
pub const NR_ORDERS: usize = MAX_ORDER + 1;

/// Page frame number: physical address / [`PAGE_SIZE`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pfn(pub u64);

impl Pfn {
    /// Physical address of the first byte of the frame.
    pub const fn addr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame containing physical address `addr` (rounds down).
    pub const fn from_addr(addr: u64) -> Pfn {
        Pfn(addr >> PAGE_SHIFT)
    }

    /// The first frame starting at or above `addr` (rounds up).
    pub const fn from_addr_up(addr: u64) -> Pfn {
        Pfn(addr.div_ceil(PAGE_SIZE as u64))
    }

    /// `self + frames`.
    pub const fn add(self, frames: u64) -> Pfn {
        Pfn(self.0 + frames)
    }

    /// True if this frame can head a buddy block of `order` (aligned in PFN space).
    pub const fn is_aligned(self, order: usize) -> bool {
        self.0 & ((1u64 << order) - 1) == 0
    }
}

impl Add<u64> for Pfn {
    type Output = Pfn;
    fn add(self, rhs: u64) -> Pfn {
        Pfn(self.0 + rhs)
    }
}

impl Sub<Pfn> for Pfn {
    type Output = u64;
    /// Number of frames between two PFNs.
    fn sub(self, rhs: Pfn) -> u64 {
        self.0 - rhs.0
    }
}

impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Access to the bytes of physical frames.
///
/// In the kernel this is the direct map (virt = phys + PAGE_OFFSET); on the
/// host it is a `host::Arena` (feature `host`).
///
/// # Safety
/// Implementors promise that for every frame the allocators are given
/// (i.e. every frame in a range passed to
/// [`BuddyAllocator::add_free_range`](crate::buddy::BuddyAllocator::add_free_range)),
/// `frame_ptr(pfn)` is valid for reads and writes of [`PAGE_SIZE`] bytes,
/// that consecutive frames are virtually contiguous
/// (`frame_ptr(pfn + 1) == frame_ptr(pfn) + PAGE_SIZE`, so a buddy block is
/// one contiguous byte range), that the returned pointer is [`PAGE_SIZE`]
/// aligned, and that `ptr_to_pfn` is the inverse of `frame_ptr` for any
/// pointer into such a frame. Nothing else may access those bytes while the
/// allocators own the frame.
pub unsafe trait PhysMem {
    /// Pointer to the first byte of frame `pfn`.
    fn frame_ptr(&self, pfn: Pfn) -> *mut u8;
    /// The frame containing `ptr`.
    fn ptr_to_pfn(&self, ptr: *const u8) -> Pfn;
}

/// Who owns a frame (or the block it heads). Used for statistics and the
/// kernel's memory picture.
#[repr(u8)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameKind {
    /// On a buddy free list.
    Free = 0,
    /// Never handed to the buddy allocator (firmware, kernel image, holes).
    Reserved = 1,
    /// Allocated for general kernel use (the default for `alloc`).
    Kernel = 2,
    /// Backing a slab cache.
    Slab = 3,
    /// A page-table page.
    PageTable = 4,
    /// Anonymous user memory.
    UserAnon = 5,
    /// File-backed user memory.
    UserFile = 6,
    /// The shared zero page.
    ZeroPage = 7,
}

impl FrameKind {
    /// Number of kinds.
    pub const COUNT: usize = 8;
    /// All kinds, indexed by their discriminant.
    pub const ALL: [FrameKind; FrameKind::COUNT] = [
        FrameKind::Free,
        FrameKind::Reserved,
        FrameKind::Kernel,
        FrameKind::Slab,
        FrameKind::PageTable,
        FrameKind::UserAnon,
        FrameKind::UserFile,
        FrameKind::ZeroPage,
    ];

    /// The kind with discriminant `v` (unknown values map to `Reserved`).
    pub const fn from_u8(v: u8) -> FrameKind {
        if (v as usize) < FrameKind::COUNT {
            FrameKind::ALL[v as usize]
        } else {
            FrameKind::Reserved
        }
    }

    /// Short lowercase name for statistics output.
    pub const fn name(self) -> &'static str {
        match self {
            FrameKind::Free => "free",
            FrameKind::Reserved => "reserved",
            FrameKind::Kernel => "kernel",
            FrameKind::Slab => "slab",
            FrameKind::PageTable => "pagetable",
            FrameKind::UserAnon => "anon",
            FrameKind::UserFile => "file",
            FrameKind::ZeroPage => "zeropage",
        }
    }
}

/// "No frame" in the 32-bit index links.
pub(crate) const NIL: u32 = u32::MAX;
/// "No object" in the 16-bit slab freelist links.
pub(crate) const NIL16: u16 = u16::MAX;
/// "No cache" in [`PageMeta::cache`].
pub(crate) const NO_CACHE: u8 = u8::MAX;

/// Bits of [`PageMeta::flags`].
pub(crate) mod flags {
    /// The frame was handed to the buddy allocator (never cleared).
    pub const MANAGED: u8 = 1 << 0;
    /// Head of a block on a buddy free list; `order` is valid.
    pub const FREE_HEAD: u8 = 1 << 1;
    /// Head of an allocated block; `order` is valid.
    pub const ALLOC_HEAD: u8 = 1 << 2;
    /// Head of a block used as a slab; `cache`, `count`, `freelist`, `prev`/`next` are slab state.
    pub const SLAB: u8 = 1 << 3;
    /// Tail frame of a slab; `next` holds the head frame's index.
    pub const TAIL: u8 = 1 << 4;
}

/// Per-frame metadata, the equivalent of Linux's `struct page`, 16 bytes.
///
/// Fields are reused depending on the frame's role (documented per field);
/// the flags say which role applies. Only the allocators change it; the rest
/// of the kernel reads it and manipulates the reference count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct PageMeta {
    /// `flags::*` bits.
    pub(crate) flags: u8,
    /// Block order for free and allocated block heads.
    pub(crate) order: u8,
    /// [`FrameKind`] discriminant of the block this frame heads.
    pub(crate) kind: u8,
    /// Slab heads: index of the owning cache in the slab heap.
    pub(crate) cache: u8,
    /// Allocated heads: reference count. Slab heads: objects in use.
    pub(crate) count: u16,
    /// Slab heads: index of the first free object ([`NIL16`] if full).
    pub(crate) freelist: u16,
    /// List link (buddy free list or slab list): previous frame index.
    pub(crate) prev: u32,
    /// List link: next frame index. Slab tails: index of the slab head.
    pub(crate) next: u32,
}

impl PageMeta {
    /// A frame that has not been handed to the buddy allocator.
    pub const RESERVED: PageMeta = PageMeta {
        flags: 0,
        order: 0,
        kind: FrameKind::Reserved as u8,
        cache: NO_CACHE,
        count: 0,
        freelist: NIL16,
        prev: NIL,
        next: NIL,
    };

    /// Metadata of a frame just handed to the buddy allocator (not yet a head).
    pub(crate) const MANAGED_FREE: PageMeta = PageMeta {
        flags: flags::MANAGED,
        kind: FrameKind::Free as u8,
        ..PageMeta::RESERVED
    };

    /// Owner kind of the block this frame heads.
    pub fn kind(&self) -> FrameKind {
        FrameKind::from_u8(self.kind)
    }

    /// Order of the block this frame heads (meaningful for block heads only).
    pub fn order(&self) -> usize {
        self.order as usize
    }

    /// Is this frame the head of an allocated block?
    pub fn is_allocated_head(&self) -> bool {
        self.flags & flags::ALLOC_HEAD != 0
    }

    /// Is this frame the head of a free buddy block?
    pub fn is_free_head(&self) -> bool {
        self.flags & flags::FREE_HEAD != 0
    }

    /// Was this frame ever handed to the buddy allocator?
    pub fn is_managed(&self) -> bool {
        self.flags & flags::MANAGED != 0
    }

    /// Does this frame head a slab?
    pub fn is_slab(&self) -> bool {
        self.flags & flags::SLAB != 0
    }

    /// Reference count of an allocated, non-slab block head (1 after `alloc`).
    #[inline]
    pub fn refcount(&self) -> u16 {
        if self.is_allocated_head() && !self.is_slab() {
            self.count
        } else {
            0
        }
    }

    /// Increments the reference count; `None` if this is not an allocated
    /// non-slab head or the count would overflow.
    #[inline]
    pub fn ref_inc(&mut self) -> Option<u16> {
        if !self.is_allocated_head() || self.is_slab() {
            return None;
        }
        self.count = self.count.checked_add(1)?;
        Some(self.count)
    }

    /// Decrements the reference count and returns the new value; `None` if
    /// this is not an allocated non-slab head or the count is already 0.
    /// The caller frees the block when this returns `Some(0)`.
    #[inline]
    pub fn ref_dec(&mut self) -> Option<u16> {
        if !self.is_allocated_head() || self.is_slab() {
            return None;
        }
        self.count = self.count.checked_sub(1)?;
        Some(self.count)
    }
}

/// Bytes of [`PageMeta`] needed to describe `frames` frames.
pub const fn meta_bytes_for(frames: u64) -> usize {
    frames as usize * core::mem::size_of::<PageMeta>()
}

/// Initialises raw memory as a metadata array with every frame Reserved.
///
/// The kernel calls this on memory taken from the boot allocator (cast to
/// `MaybeUninit<PageMeta>`) before building the buddy allocator on it.
pub fn init_meta_array(raw: &mut [MaybeUninit<PageMeta>]) -> &mut [PageMeta] {
    for m in raw.iter_mut() {
        m.write(PageMeta::RESERVED);
    }
    // SAFETY: every element was initialised just above, and
    // `MaybeUninit<PageMeta>` has the same layout as `PageMeta`.
    unsafe { &mut *(raw as *mut [MaybeUninit<PageMeta>] as *mut [PageMeta]) }
}

/// Host-side stand-ins for physical memory (tests, benches, tools).
#[cfg(any(test, feature = "host"))]
pub mod host {
    use super::{PageMeta, Pfn, PhysMem, MAX_ORDER, PAGE_SIZE};
    use core::ptr::NonNull;
    use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
    use std::vec::Vec;

    /// Alignment of an arena's memory: one maximal buddy block (4 MiB).
    ///
    /// Frame addresses are computed by offset from the arena's base PFN, so
    /// when the base PFN is a multiple of `2^MAX_ORDER` a block of order k is
    /// also aligned to `PAGE_SIZE << k` in host virtual memory, just like in
    /// the kernel's direct map. With an unaligned base PFN, buddy alignment
    /// still holds in PFN space but not in host addresses.
    pub const ARENA_ALIGN: usize = PAGE_SIZE << MAX_ORDER;

    /// A zeroed, heap-allocated run of frames pretending to be physical
    /// memory `[base_pfn, base_pfn + frames)`.
    pub struct Arena {
        mem: NonNull<u8>,
        layout: Layout,
        base_pfn: Pfn,
        frames: u64,
    }

    impl Arena {
        /// Allocates `frames` zeroed frames standing for `[base_pfn, base_pfn + frames)`.
        pub fn new(base_pfn: Pfn, frames: u64) -> Arena {
            assert!(frames > 0, "empty arena");
            let size = usize::try_from(frames).expect("arena too large") * PAGE_SIZE;
            let layout = Layout::from_size_align(size, ARENA_ALIGN).expect("arena layout");
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc_zeroed(layout) };
            let Some(mem) = NonNull::new(raw) else {
                handle_alloc_error(layout)
            };
            Arena {
                mem,
                layout,
                base_pfn,
                frames,
            }
        }

        /// First frame of the arena.
        pub fn base_pfn(&self) -> Pfn {
            self.base_pfn
        }

        /// One past the last frame of the arena.
        pub fn end_pfn(&self) -> Pfn {
            self.base_pfn + self.frames
        }

        /// Number of frames.
        pub fn frames(&self) -> u64 {
            self.frames
        }

        /// Does `ptr` point into the arena?
        pub fn contains(&self, ptr: *const u8) -> bool {
            let start = self.mem.as_ptr() as usize;
            let p = ptr as usize;
            p >= start && p < start + self.layout.size()
        }

        /// A metadata array covering exactly this arena, all frames Reserved.
        pub fn new_meta(&self) -> Vec<PageMeta> {
            std::vec![PageMeta::RESERVED; self.frames as usize]
        }
    }

    impl Drop for Arena {
        fn drop(&mut self) {
            // SAFETY: `mem` was allocated in `new` with exactly `layout`.
            unsafe { dealloc(self.mem.as_ptr(), self.layout) }
        }
    }

    // SAFETY: the arena owns `frames * PAGE_SIZE` contiguous bytes aligned to
    // ARENA_ALIGN; frame N lives at offset (N - base_pfn) * PAGE_SIZE, so
    // frames are contiguous, page aligned and `ptr_to_pfn` inverts `frame_ptr`.
    unsafe impl PhysMem for Arena {
        fn frame_ptr(&self, pfn: Pfn) -> *mut u8 {
            debug_assert!(
                pfn >= self.base_pfn && pfn < self.end_pfn(),
                "pfn {pfn} outside arena"
            );
            let offset = (pfn.0.wrapping_sub(self.base_pfn.0) as usize).wrapping_mul(PAGE_SIZE);
            // wrapping_add keeps the arena's provenance; in-range pfns stay inside it.
            self.mem.as_ptr().wrapping_add(offset)
        }

        fn ptr_to_pfn(&self, ptr: *const u8) -> Pfn {
            let offset = (ptr as usize).wrapping_sub(self.mem.as_ptr() as usize);
            Pfn(self.base_pfn.0.wrapping_add((offset / PAGE_SIZE) as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_meta_is_16_bytes() {
        assert_eq!(core::mem::size_of::<PageMeta>(), 16);
        assert_eq!(meta_bytes_for(1 << 18), 4 << 20);
    }

    #[test]
    fn pfn_helpers() {
        assert_eq!(Pfn(3).addr(), 0x3000);
        assert_eq!(Pfn::from_addr(0x3fff), Pfn(3));
        assert_eq!(Pfn::from_addr_up(0x3001), Pfn(4));
        assert_eq!(Pfn::from_addr_up(0x3000), Pfn(3));
        assert_eq!(Pfn(5) + 3, Pfn(8));
        assert_eq!(Pfn(8) - Pfn(5), 3);
        assert!(Pfn(1024).is_aligned(MAX_ORDER));
        assert!(!Pfn(1026).is_aligned(2));
        assert!(Pfn(1028).is_aligned(2));
        assert_eq!(std::format!("{}", Pfn(255)), "0xff");
    }

    #[test]
    fn frame_kind_round_trips() {
        for k in FrameKind::ALL {
            assert_eq!(FrameKind::from_u8(k as u8), k);
        }
        assert_eq!(FrameKind::from_u8(200), FrameKind::Reserved);
    }

    #[test]
    fn refcount_only_on_allocated_heads() {
        let mut m = PageMeta::RESERVED;
        assert_eq!(m.ref_inc(), None);
        m.flags = flags::MANAGED | flags::ALLOC_HEAD;
        m.count = 1;
        assert_eq!(m.ref_inc(), Some(2));
        assert_eq!(m.ref_dec(), Some(1));
        assert_eq!(m.ref_dec(), Some(0));
        assert_eq!(m.ref_dec(), None);
        m.flags |= flags::SLAB;
        assert_eq!(m.ref_inc(), None);
    }

    #[test]
    fn init_meta_array_marks_reserved() {
        let mut raw = [MaybeUninit::<PageMeta>::uninit(); 4];
        let meta = init_meta_array(&mut raw);
        assert!(meta.iter().all(|m| *m == PageMeta::RESERVED));
    }

    #[test]
    fn arena_maps_frames_contiguously() {
        let arena = host::Arena::new(Pfn(0x100_000), 4);
        let p0 = arena.frame_ptr(Pfn(0x100_000));
        let p3 = arena.frame_ptr(Pfn(0x100_003));
        assert_eq!(p0 as usize % host::ARENA_ALIGN, 0);
        assert_eq!(p3 as usize - p0 as usize, 3 * PAGE_SIZE);
        assert_eq!(arena.ptr_to_pfn(p3.wrapping_add(100)), Pfn(0x100_003));
        assert!(arena.contains(p3));
        assert!(!arena.contains(p0.wrapping_add(4 * PAGE_SIZE)));
        // SAFETY: p3 points at the last frame of the arena, which is zeroed and owned by it.
        unsafe {
            assert_eq!(*p3, 0);
            p3.write(7);
            assert_eq!(*p3, 7);
        }
    }
}
