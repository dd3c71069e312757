//! SLUB-like slab heap: object caches carved from buddy blocks, kmalloc size
//! classes, and the kernel's `GlobalAlloc` backend.
//!
//! A slab is one buddy block of `2^order` frames cut into equal slots. Its
//! state lives in the head frame's [`PageMeta`]: owning cache, objects in use,
//! index of the first free object, and the links that put it on one of its
//! cache's full / partial / empty lists. Tail frames point at the head, so
//! `free` finds the slab from any object pointer via `ptr_to_pfn`. Free
//! objects form a singly linked list of 16-bit object indices stored inside
//! the free objects (or, with `slab-debug`, in a trailer after the red zone so
//! the whole object can be poisoned).
//!
//! With `slab-debug` a slot is `[object][red zone][link][state]`. Free objects
//! are poisoned with [`POISON_FREE`]; a live object's red zone runs from the
//! size the caller asked for (not the class's object size) to the end of the
//! fixed [`RED_ZONE_BYTES`] after the object, so overruns into the rounding
//! slack of a kmalloc object are caught on free as well.
//!
//! The heap owns no memory itself: every call takes the buddy allocator and
//! the [`PhysMem`] mapping, so the kernel can keep `BuddyAllocator` and
//! `SlabHeap` behind one lock and tests can use a host arena.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

use crate::buddy::{BuddyAllocator, FreeError};
use crate::frame::{flags, FrameKind, PageMeta, PhysMem, MAX_ORDER, NIL, NIL16, PAGE_SIZE};
use crate::list::MetaList;

/// Capacity of the cache table: the [`KMALLOC_SIZES`] classes first, then
/// up to 22 named caches from [`SlabHeap::create_cache`] (the kernel makes a
/// few; the intermediate kmalloc classes must not crowd them out).
pub const MAX_CACHES: usize = 40;
/// kmalloc size classes, ascending: the powers of two 8..=8192 plus `3 * 2^k`
/// classes between those from 64 up (96, 192, 384, ..., 6144). With powers of
/// two alone a request just above `2^k` wastes nearly half its object, and
/// uniformly spread sizes hold 4/3 of their bytes; the intermediate classes
/// cut that to 7/6. A `3 * 2^k` class is only `2^k`-aligned (objects sit at
/// multiples of the stride from a page-aligned slab), which
/// [`kmalloc_align`] records so stricter requests skip to the next class.
pub const KMALLOC_SIZES: [usize; 18] = [
    8, 16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192,
];
/// `/proc/slabinfo` names of the kmalloc classes, Linux style (`k` = 1024).
const KMALLOC_NAMES: [&str; 18] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-384",
    "kmalloc-512",
    "kmalloc-768",
    "kmalloc-1k",
    "kmalloc-1.5k",
    "kmalloc-2k",
    "kmalloc-3k",
    "kmalloc-4k",
    "kmalloc-6k",
    "kmalloc-8k",
];
const NR_KMALLOC: usize = KMALLOC_SIZES.len();
/// Largest request served from a slab; larger ones get whole buddy blocks.
pub const KMALLOC_MAX_SIZE: usize = 8192;
/// Largest slab order; caches whose slots do not fit are refused.
pub const MAX_SLAB_ORDER: usize = 3;
/// A slab order is good enough when the tail left over after the last whole
/// slot is at most `1 / SLAB_WASTE_DIVISOR` of the slab. A `3 * 2^k` class
/// always leaves one or two `2^k` at the end, 1/16 of a slab with 5 or 10
/// objects; 1/32 moves kmalloc-384/768/1.5k to 21 objects per slab (1/64
/// left over), which on a mixed-size heap saves more than the slightly larger
/// partly used slabs cost.
pub const SLAB_WASTE_DIVISOR: usize = 32;
/// Empty slabs a cache keeps instead of returning them to the buddy allocator.
pub const EMPTY_SLABS_KEPT: u32 = 1;

/// Byte written over free objects in debug mode (Linux's POISON_FREE).
pub const POISON_FREE: u8 = 0x6b;
/// Byte filling the red zone in debug mode: the slack between the requested
/// size and the object size, and the [`RED_ZONE_BYTES`] after the object.
pub const RED_ZONE: u8 = 0xbb;
/// Length of the fixed red zone after each object in debug mode.
pub const RED_ZONE_BYTES: usize = 8;
const STATE_FREE: u8 = 0xf3;
const STATE_ALLOC: u8 = 0xa1;
/// A debug slot's state while the object sits in a per-CPU magazine: the
/// slab counts it as allocated, but it is poisoned like a free object.
const STATE_CACHED: u8 = 0xc5;
/// Debug trailer after the red zone: 2-byte free link + 1-byte state (+pad).
const TRAILER_BYTES: usize = 4;

/// Is the heap built with debug checks (`slab-debug` feature)?
pub const DEBUG: bool = cfg!(feature = "slab-debug");

/// Index of a cache in the heap's table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheId(u8);

impl CacheId {
    /// Table index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Everything the slab heap can report. Displayed messages name the cache,
/// the address and what went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// The buddy allocator has no block for a new slab or large allocation.
    OutOfMemory {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// The layout cannot be served (alignment the mapping cannot provide,
    /// or larger than the biggest buddy block).
    UnsupportedLayout {
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// `create_cache` with a zero size, a non-power-of-two alignment or an
    /// object too large for a slab.
    BadCacheParams {
        /// Cache name.
        name: &'static str,
        /// Object size.
        size: usize,
        /// Object alignment.
        align: usize,
    },
    /// The cache table is full.
    TooManyCaches {
        /// Name of the cache that could not be created.
        name: &'static str,
    },
    /// A `CacheId` that names no cache.
    NoSuchCache {
        /// The id.
        id: u8,
    },
    /// The pointer is not inside memory the heap handed out.
    NotHeapObject {
        /// The pointer.
        addr: usize,
    },
    /// The object belongs to a different cache than the one it is freed to.
    WrongCache {
        /// Cache it was freed to (from the layout or id).
        cache: &'static str,
        /// Cache that owns it.
        owner: &'static str,
        /// The pointer.
        addr: usize,
    },
    /// The pointer is inside a slab but not at the start of an object.
    NotObjectStart {
        /// Owning cache.
        cache: &'static str,
        /// The pointer.
        addr: usize,
    },
    /// The object is already free.
    DoubleFree {
        /// Owning cache.
        cache: &'static str,
        /// The object.
        addr: usize,
    },
    /// A free object's poison was overwritten (write after free).
    UseAfterFree {
        /// Owning cache.
        cache: &'static str,
        /// The object.
        addr: usize,
        /// First modified byte offset.
        offset: usize,
        /// Value found there.
        found: u8,
    },
    /// The red zone was overwritten (write past the end): a byte between the
    /// requested size and the end of the red zone after the object.
    RedZone {
        /// Owning cache.
        cache: &'static str,
        /// The object.
        addr: usize,
        /// First modified byte, as offset from the object start.
        offset: usize,
        /// Value found there.
        found: u8,
    },
    /// A free-list link or per-object state is corrupt.
    FreelistCorrupted {
        /// Owning cache.
        cache: &'static str,
        /// Address of the slot whose link or state is bad.
        addr: usize,
    },
    /// The buddy allocator refused to free a large allocation.
    LargeFree(FreeError),
}

impl fmt::Display for SlabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlabError::OutOfMemory { size, align } => {
                write!(
                    f,
                    "slab: out of memory allocating {size} bytes (align {align})"
                )
            }
            SlabError::UnsupportedLayout { size, align } => {
                write!(
                    f,
                    "slab: cannot allocate {size} bytes with alignment {align}"
                )
            }
            SlabError::BadCacheParams { name, size, align } => write!(
                f,
                "slab: cannot create cache {name}: size {size}, align {align} unsupported"
            ),
            SlabError::TooManyCaches { name } => {
                write!(
                    f,
                    "slab: cannot create cache {name}: all {MAX_CACHES} cache slots used"
                )
            }
            SlabError::NoSuchCache { id } => write!(f, "slab: no cache with id {id}"),
            SlabError::NotHeapObject { addr } => {
                write!(
                    f,
                    "slab: free of {addr:#x}, which the heap never handed out"
                )
            }
            SlabError::WrongCache { cache, owner, addr } => write!(
                f,
                "slab: object {addr:#x} freed to cache {cache} but belongs to {owner}"
            ),
            SlabError::NotObjectStart { cache, addr } => {
                write!(
                    f,
                    "slab: {cache}: free of {addr:#x}, which is not the start of an object"
                )
            }
            SlabError::DoubleFree { cache, addr } => {
                write!(f, "slab: {cache}: double free of object {addr:#x}")
            }
            SlabError::UseAfterFree {
                cache,
                addr,
                offset,
                found,
            } => write!(
                f,
                "slab: {cache}: use after free: object {addr:#x} was written at offset {offset} \
                 (found {found:#04x}, poison is {POISON_FREE:#04x})"
            ),
            SlabError::RedZone {
                cache,
                addr,
                offset,
                found,
            } => write!(
                f,
                "slab: {cache}: write past the end of object {addr:#x}: red zone byte at \
                 offset {offset} is {found:#04x} (expected {RED_ZONE:#04x})"
            ),
            SlabError::FreelistCorrupted { cache, addr } => {
                write!(f, "slab: {cache}: free list corrupted at object {addr:#x}")
            }
            SlabError::LargeFree(e) => write!(f, "slab: large allocation free failed: {e}"),
        }
    }
}

/// Per-cache statistics with `/proc/slabinfo` meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// Cache id.
    pub id: CacheId,
    /// Cache name.
    pub name: &'static str,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects in all slabs (in use or free).
    pub num_objs: u64,
    /// Usable object size in bytes.
    pub objsize: usize,
    /// Bytes per object slot (object + padding + debug data).
    pub slot_size: usize,
    /// Guaranteed object alignment.
    pub align: usize,
    /// Objects per slab.
    pub objperslab: usize,
    /// Frames per slab.
    pub pagesperslab: usize,
    /// Slabs not on the empty list: full, partial and the cache's current
    /// slab (which may momentarily be empty).
    pub active_slabs: u64,
    /// All slabs (full + partial + empty).
    pub num_slabs: u64,
}

/// One object cache.
#[derive(Clone, Copy, Debug)]
struct SlabCache {
    name: &'static str,
    /// Usable bytes per object.
    object_size: u32,
    /// Guaranteed alignment of every object.
    align: u32,
    /// Distance between object starts.
    stride: u32,
    /// Offset of the free link inside a slot.
    link_offset: u32,
    order: u8,
    objs_per_slab: u16,
    /// `ceil(2^32 / stride)`: object index = `offset * recip >> 32`, exact for
    /// offsets within a slab (avoids a division on every free).
    recip: u64,
    /// The slab allocations come from (SLUB's cpu slab): on no list, so
    /// alloc/free pairs on it never move slabs between lists.
    current: u32,
    full: MetaList,
    partial: MetaList,
    empty: MetaList,
    active_objs: u64,
}

const fn round_up(x: usize, align: usize) -> usize {
    (x + align - 1) & !(align - 1)
}

impl SlabCache {
    const UNUSED: SlabCache = SlabCache {
        name: "",
        object_size: 0,
        align: 1,
        stride: 0,
        link_offset: 0,
        order: 0,
        objs_per_slab: 0,
        recip: 0,
        current: NIL,
        full: MetaList::new(),
        partial: MetaList::new(),
        empty: MetaList::new(),
        active_objs: 0,
    };

    /// Computes the slot layout and slab order, or `None` if unsupported.
    const fn new(name: &'static str, size: usize, align: usize) -> Option<SlabCache> {
        if size == 0 || !align.is_power_of_two() || align > PAGE_SIZE {
            return None;
        }
        // Objects are stored at multiples of `stride` from a page-aligned
        // slab start, so they are `align`-aligned when stride is a multiple.
        let object_size = round_up(size, align);
        let (slot, link_offset) = if DEBUG {
            (
                object_size + RED_ZONE_BYTES + TRAILER_BYTES,
                object_size + RED_ZONE_BYTES,
            )
        } else {
            // The free link (2 bytes) lives in the first bytes of a free object.
            (if object_size < 2 { 2 } else { object_size }, 0)
        };
        let stride = round_up(slot, align);
        // Smallest order wasting at most 1/SLAB_WASTE_DIVISOR of the slab,
        // else the least wasteful (the smallest such order on ties).
        let mut order = 0;
        let mut best: Option<(usize, usize)> = None; // (order, waste per 1024)
        while order <= MAX_SLAB_ORDER {
            let bytes = PAGE_SIZE << order;
            let n = bytes / stride;
            if n > 0 && n < NIL16 as usize {
                let waste = (bytes - n * stride) * 1024 / bytes;
                if waste <= 1024 / SLAB_WASTE_DIVISOR {
                    best = Some((order, waste));
                    break;
                }
                match best {
                    Some((_, w)) if w <= waste => {}
                    _ => best = Some((order, waste)),
                }
            }
            order += 1;
        }
        let Some((order, _)) = best else {
            return None;
        };
        Some(SlabCache {
            name,
            object_size: object_size as u32,
            align: align as u32,
            stride: stride as u32,
            link_offset: link_offset as u32,
            order: order as u8,
            objs_per_slab: ((PAGE_SIZE << order) / stride) as u16,
            recip: (1u64 << 32) / stride as u64 + 1,
            ..SlabCache::UNUSED
        })
    }

    fn num_slabs(&self) -> u64 {
        u64::from(self.full.len() + self.partial.len() + self.empty.len())
            + u64::from(self.current != NIL)
    }

    fn info(&self, id: u8) -> CacheInfo {
        let num_slabs = self.num_slabs();
        CacheInfo {
            id: CacheId(id),
            name: self.name,
            active_objs: self.active_objs,
            num_objs: num_slabs * u64::from(self.objs_per_slab),
            objsize: self.object_size as usize,
            slot_size: self.stride as usize,
            align: self.align as usize,
            objperslab: self.objs_per_slab as usize,
            pagesperslab: 1 << self.order,
            active_slabs: num_slabs - u64::from(self.empty.len()),
            num_slabs,
        }
    }
}

/// Alignment of each kmalloc class: power-of-two classes are naturally
/// aligned (capped at a page); a `3 * 2^k` class only to `2^k`, because its
/// objects start at multiples of `3 * 2^k` from a page boundary.
const fn kmalloc_align(size: usize) -> usize {
    let a = 1 << size.trailing_zeros();
    if a > PAGE_SIZE {
        PAGE_SIZE
    } else {
        a
    }
}

/// [`kmalloc_align`] of each class, precomputed for the allocation fast path.
const KMALLOC_ALIGNS: [usize; NR_KMALLOC] = {
    let mut t = [0; NR_KMALLOC];
    let mut i = 0;
    while i < NR_KMALLOC {
        t[i] = kmalloc_align(KMALLOC_SIZES[i]);
        i += 1;
    }
    t
};

/// Largest size looked up in [`SMALL_CLASS`]; above it [`upper_class`] computes
/// the class from the bit length.
const SMALL_MAX: usize = 192;

/// Class index for sizes 1..=[`SMALL_MAX`], by `(size - 1) / 8`.
const SMALL_CLASS: [u8; SMALL_MAX / 8] = {
    let mut t = [0u8; SMALL_MAX / 8];
    let mut i = 0;
    while i < t.len() {
        let size = i * 8 + 8;
        let mut c = 0;
        while KMALLOC_SIZES[c] < size {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
};

/// Class index for `size` in `SMALL_MAX + 1..=KMALLOC_MAX_SIZE`, without a
/// table or a loop. With `2^(n-1) < size <= 2^n`, the range holds two classes,
/// `3 * 2^(n-2)` and `2^n`; bit `n - 2` of `size - 1` says whether `size` is
/// above the first. Two classes per doubling from 2^7 = 128 (index 5) on puts
/// `2^n` at index `2n - 9`. The const block below checks this against
/// [`KMALLOC_SIZES`], so editing the table without the formula fails to build.
#[inline(always)]
const fn upper_class(size: usize) -> usize {
    let n = (usize::BITS - (size - 1).leading_zeros()) as usize;
    let above_three_quarters = ((size - 1) >> (n - 2)) & 1;
    2 * n - 10 + above_three_quarters
}

const _: () = {
    let mut c = 0;
    while KMALLOC_SIZES[c] <= SMALL_MAX {
        c += 1;
    }
    assert!(
        KMALLOC_SIZES[c - 1] == SMALL_MAX,
        "SMALL_MAX must be a class"
    );
    while c < NR_KMALLOC {
        // The class's smallest and largest sizes both map to it.
        assert!(upper_class(KMALLOC_SIZES[c - 1] + 1) == c);
        assert!(upper_class(KMALLOC_SIZES[c]) == c);
        c += 1;
    }
    assert!(KMALLOC_SIZES[NR_KMALLOC - 1] == KMALLOC_MAX_SIZE);
    // The alignment walk in `kmalloc_class` ends at the last class at the latest.
    assert!(KMALLOC_ALIGNS[NR_KMALLOC - 1] == PAGE_SIZE);
    // Room for the kernel's named caches next to the kmalloc classes, and
    // every cache index fits the u8 in `CacheId` and `PageMeta::cache`.
    assert!(MAX_CACHES >= NR_KMALLOC + 16);
    assert!(MAX_CACHES <= u8::MAX as usize + 1);
};

/// The kmalloc class serving `size`/`align`, or `None` for large requests:
/// the smallest class at least `size` bytes big whose objects are aligned to
/// at least `align`.
#[inline]
pub(crate) fn kmalloc_class(size: usize, align: usize) -> Option<usize> {
    if size > KMALLOC_MAX_SIZE || align > PAGE_SIZE {
        return None;
    }
    let mut c = if size <= SMALL_MAX {
        SMALL_CLASS[size.saturating_sub(1) / 8] as usize
    } else {
        upper_class(size)
    };
    // Rare: alignment beyond the class's (over-aligned types, page-aligned
    // buffers), e.g. 300 bytes at 256 skips kmalloc-384 (128-aligned) for
    // kmalloc-512. The last class is page-aligned, so this ends in bounds.
    while KMALLOC_ALIGNS[c] < align {
        c += 1;
    }
    Some(c)
}

/// Order of the buddy block for a large request.
fn large_order(size: usize, align: usize) -> Option<usize> {
    let bytes = size.max(align).max(1).checked_next_power_of_two()?;
    let order = (bytes.max(PAGE_SIZE) / PAGE_SIZE).trailing_zeros() as usize;
    (order <= MAX_ORDER).then_some(order)
}

/// The slab heap: a fixed table of [`MAX_CACHES`] caches, the first
/// `KMALLOC_SIZES.len()` being the kmalloc classes, the rest named caches.
pub struct SlabHeap {
    caches: [SlabCache; MAX_CACHES],
    nr_caches: usize,
    /// Frames held by large (non-slab) allocations.
    large_pages: u64,
    /// Live large allocations.
    large_allocs: u64,
}

impl Default for SlabHeap {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a pointer being freed lives.
struct ObjectLoc {
    head: u32,
    obj: u16,
    slot: *mut u8,
}

/// The kmalloc caches' geometry (no slabs): what the debug checks of the
/// per-CPU magazines need to find an object's red zone and state without
/// the heap (which is behind the frames lock).
const KMALLOC_CACHES: [SlabCache; NR_KMALLOC] = {
    let mut caches = [SlabCache::UNUSED; NR_KMALLOC];
    let mut i = 0;
    while i < NR_KMALLOC {
        let size = KMALLOC_SIZES[i];
        caches[i] = match SlabCache::new(KMALLOC_NAMES[i], size, kmalloc_align(size)) {
            Some(c) => c,
            None => panic!("kmalloc cache layout"),
        };
        i += 1;
    }
    caches
};

impl SlabHeap {
    /// A heap with the kmalloc caches set up and no slabs yet. `const` so the
    /// kernel can build it in a static.
    pub const fn new() -> SlabHeap {
        let mut caches = [SlabCache::UNUSED; MAX_CACHES];
        let mut i = 0;
        while i < NR_KMALLOC {
            caches[i] = KMALLOC_CACHES[i];
            i += 1;
        }
        SlabHeap {
            caches,
            nr_caches: NR_KMALLOC,
            large_pages: 0,
            large_allocs: 0,
        }
    }

    /// Creates a named cache of `size`-byte objects aligned to `align`.
    pub fn create_cache(
        &mut self,
        name: &'static str,
        size: usize,
        align: usize,
    ) -> Result<CacheId, SlabError> {
        let cache = SlabCache::new(name, size, align).ok_or(SlabError::BadCacheParams {
            name,
            size,
            align,
        })?;
        if self.nr_caches == MAX_CACHES {
            return Err(SlabError::TooManyCaches { name });
        }
        let id = self.nr_caches;
        self.caches[id] = cache;
        self.nr_caches += 1;
        Ok(CacheId(id as u8))
    }

    /// The kmalloc cache a layout is served from (`None`: large allocation).
    pub fn kmalloc_cache_for(&self, layout: Layout) -> Option<CacheId> {
        kmalloc_class(layout.size(), layout.align()).map(|c| CacheId(c as u8))
    }

    /// Statistics for every cache, for a slabinfo listing.
    pub fn caches(&self) -> impl Iterator<Item = CacheInfo> + '_ {
        self.caches[..self.nr_caches]
            .iter()
            .enumerate()
            .map(|(i, c)| c.info(i as u8))
    }

    /// Statistics for one cache.
    pub fn cache_info(&self, id: CacheId) -> Option<CacheInfo> {
        self.caches[..self.nr_caches]
            .get(id.index())
            .map(|c| c.info(id.0))
    }

    /// Frames held by the heap: all slabs plus large allocations.
    pub fn pages_held(&self) -> u64 {
        let slab_pages: u64 = self.caches[..self.nr_caches]
            .iter()
            .map(|c| c.num_slabs() << c.order)
            .sum();
        slab_pages + self.large_pages
    }

    /// Live large (whole-block) allocations and the frames they hold.
    pub fn large_stats(&self) -> (u64, u64) {
        (self.large_allocs, self.large_pages)
    }

    /// Allocates memory for `layout`: from a kmalloc cache, or as a whole
    /// buddy block (kind [`FrameKind::Kernel`]) above [`KMALLOC_MAX_SIZE`].
    ///
    /// With `slab-debug`, the red zone starts at `layout.size()`, not at the
    /// end of the (larger) class object: a 40-byte request in `kmalloc-64`
    /// has 32 red-zone bytes, so writing its byte 40 is an overrun that
    /// [`dealloc`](Self::dealloc) reports. Both calls get the layout, so no
    /// per-object size needs storing.
    #[inline]
    pub fn alloc<M: PhysMem + ?Sized>(
        &mut self,
        layout: Layout,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        match kmalloc_class(layout.size(), layout.align()) {
            Some(c) => self
                .alloc_from(c, layout.size(), buddy, mem)
                .map_err(|e| match e {
                    SlabError::OutOfMemory { .. } => SlabError::OutOfMemory {
                        size: layout.size(),
                        align: layout.align(),
                    },
                    other => other,
                }),
            None => self.alloc_large(layout, buddy, mem),
        }
    }

    /// Frees memory obtained from [`alloc`](Self::alloc) with the same layout.
    /// With `slab-debug`, every byte from `layout.size()` to the end of the
    /// red zone must still hold [`RED_ZONE`], else [`SlabError::RedZone`]
    /// (and the object stays allocated).
    #[inline]
    pub fn dealloc<M: PhysMem + ?Sized>(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        match kmalloc_class(layout.size(), layout.align()) {
            Some(c) => self.free_to(c, layout.size(), ptr.as_ptr(), buddy, mem),
            None => self.dealloc_large(ptr.as_ptr(), layout, buddy, mem),
        }
    }

    /// Allocates one object from cache `id`. With `slab-debug` the red zone
    /// starts at the cache's object size: the cache has no smaller request size.
    pub fn cache_alloc<M: PhysMem + ?Sized>(
        &mut self,
        id: CacheId,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        self.check_id(id)?;
        let size = self.caches[id.index()].object_size as usize;
        self.alloc_from(id.index(), size, buddy, mem)
    }

    /// Returns an object to cache `id`.
    pub fn cache_free<M: PhysMem + ?Sized>(
        &mut self,
        id: CacheId,
        ptr: NonNull<u8>,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        self.check_id(id)?;
        let size = self.caches[id.index()].object_size as usize;
        self.free_to(id.index(), size, ptr.as_ptr(), buddy, mem)
    }

    /// Returns every empty slab to the buddy allocator; returns frames freed.
    pub fn shrink(&mut self, buddy: &mut BuddyAllocator<'_>) -> u64 {
        let mut freed = 0;
        for ci in 0..self.nr_caches {
            let cur = self.caches[ci].current;
            if cur != NIL && buddy.meta_at(cur).count == 0 {
                self.caches[ci].current = NIL;
                freed += 1u64 << self.caches[ci].order;
                release_slab(&self.caches[ci], cur, buddy);
            }
            while let Some(head) = self.caches[ci].empty.first() {
                self.caches[ci].empty.remove(buddy.meta_slice_mut(), head);
                freed += 1u64 << self.caches[ci].order;
                release_slab(&self.caches[ci], head, buddy);
            }
        }
        freed
    }

    fn check_id(&self, id: CacheId) -> Result<(), SlabError> {
        if id.index() < self.nr_caches {
            Ok(())
        } else {
            Err(SlabError::NoSuchCache { id: id.0 })
        }
    }

    fn alloc_large<M: PhysMem + ?Sized>(
        &mut self,
        layout: Layout,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        let (size, align) = (layout.size(), layout.align());
        let order = large_order(size, align).ok_or(SlabError::UnsupportedLayout { size, align })?;
        let pfn = buddy
            .alloc(order)
            .ok_or(SlabError::OutOfMemory { size, align })?;
        let ptr = mem.frame_ptr(pfn);
        if !(ptr as usize).is_multiple_of(align) {
            // The mapping does not preserve this much physical alignment.
            buddy
                .free(pfn, order)
                .expect("freeing a block just allocated");
            return Err(SlabError::UnsupportedLayout { size, align });
        }
        self.large_pages += 1 << order;
        self.large_allocs += 1;
        NonNull::new(ptr).ok_or(SlabError::UnsupportedLayout { size, align })
    }

    fn dealloc_large<M: PhysMem + ?Sized>(
        &mut self,
        ptr: *mut u8,
        layout: Layout,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        let addr = ptr as usize;
        let order =
            large_order(layout.size(), layout.align()).ok_or(SlabError::NotHeapObject { addr })?;
        let pfn = mem.ptr_to_pfn(ptr);
        let head = buddy.meta(pfn).ok_or(SlabError::NotHeapObject { addr })?;
        if mem.frame_ptr(pfn) != ptr
            || (head.is_allocated_head() && head.kind() != FrameKind::Kernel)
        {
            return Err(SlabError::NotHeapObject { addr });
        }
        buddy.free(pfn, order).map_err(SlabError::LargeFree)?;
        self.large_pages -= 1 << order;
        self.large_allocs -= 1;
        Ok(())
    }

    /// Takes a fresh block from the buddy allocator and formats it as an empty slab.
    #[cold]
    fn grow<M: PhysMem + ?Sized>(
        &mut self,
        ci: usize,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<u32, SlabError> {
        let cache = &self.caches[ci];
        let order = cache.order as usize;
        let pfn = buddy.alloc(order).ok_or(SlabError::OutOfMemory {
            size: cache.object_size as usize,
            align: cache.align as usize,
        })?;
        buddy
            .set_kind(pfn, FrameKind::Slab)
            .expect("block just allocated");
        let head = buddy.index_of(pfn).expect("allocated pfn is described");
        let meta = buddy.meta_slice_mut();
        let h = &mut meta[head as usize];
        h.flags |= flags::SLAB;
        h.cache = ci as u8;
        h.count = 0;
        h.freelist = 0;
        for t in &mut meta[head as usize + 1..head as usize + (1 << order)] {
            t.flags |= flags::TAIL;
            t.next = head;
        }
        let base = mem.frame_ptr(pfn);
        let n = cache.objs_per_slab;
        for i in 0..n {
            let slot = slot_ptr(base, cache, i);
            let next = if i + 1 == n { NIL16 } else { i + 1 };
            // SAFETY: slot i < objs_per_slab lies within the 2^order frames of
            // the block just allocated to this slab (PhysMem contract).
            unsafe {
                write_link(slot, cache, next);
                if DEBUG {
                    debug_fill_free(slot, cache);
                }
            }
        }
        Ok(head)
    }

    /// Makes a slab with a free object current: the first partial slab,
    /// else an empty one, else a new one. A full current slab goes to `full`.
    #[cold]
    #[inline(never)]
    fn refill<M: PhysMem + ?Sized>(
        &mut self,
        ci: usize,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<u32, SlabError> {
        let meta = buddy.meta_slice_mut();
        let cache = &mut self.caches[ci];
        let next = match cache.partial.pop_front(meta) {
            Some(h) => h,
            None => match cache.empty.pop_front(meta) {
                Some(h) => h,
                None => self.grow(ci, buddy, mem)?,
            },
        };
        let cache = &mut self.caches[ci];
        let old = cache.current;
        if old != NIL {
            // Only refilled when the current slab has no free object.
            cache.full.push_front(buddy.meta_slice_mut(), old);
        }
        cache.current = next;
        Ok(next)
    }

    /// Pops an object from the cache's current slab (refilling it if full).
    /// `size` (at most the object size) is the requested size: with
    /// `slab-debug` the red zone is armed from there.
    #[inline]
    pub(crate) fn alloc_from<M: PhysMem + ?Sized>(
        &mut self,
        ci: usize,
        size: usize,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<NonNull<u8>, SlabError> {
        let mut head = self.caches[ci].current;
        if head == NIL || buddy.meta_at(head).freelist == NIL16 {
            head = self.refill(ci, buddy, mem)?;
        }
        let cache = &mut self.caches[ci];
        let base = mem.frame_ptr(buddy.pfn_of(head));
        let h = &mut buddy.meta_slice_mut()[head as usize];
        let obj = h.freelist;
        if obj >= cache.objs_per_slab {
            return Err(SlabError::FreelistCorrupted {
                cache: cache.name,
                addr: base as usize,
            });
        }
        let slot = slot_ptr(base, cache, obj);
        // SAFETY: obj < objs_per_slab, so the slot lies within this slab's
        // frames, which the slab owns; the object is free, so nobody else uses it.
        let next = unsafe { read_link(slot, cache) };
        if next != NIL16 && next >= cache.objs_per_slab {
            return Err(SlabError::FreelistCorrupted {
                cache: cache.name,
                addr: slot as usize,
            });
        }
        if DEBUG {
            // SAFETY: as above; the checks only read the slot.
            unsafe { debug_check_free(slot, cache)? };
            // SAFETY: as above; the object is being handed out, and the
            // slack and the state are the slab's bookkeeping.
            unsafe {
                debug_arm_red_zone(slot, cache, size);
                set_state(slot, cache, STATE_ALLOC);
            }
        }
        h.freelist = next;
        h.count += 1;
        cache.active_objs += 1;
        // SAFETY: `slot` is derived from a frame pointer, which is never null.
        Ok(unsafe { NonNull::new_unchecked(slot) })
    }

    /// Finds and validates the slab object `ptr` for a free to cache `ci`.
    #[inline]
    fn locate<M: PhysMem + ?Sized>(
        &self,
        ci: usize,
        ptr: *mut u8,
        buddy: &BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<ObjectLoc, SlabError> {
        let addr = ptr as usize;
        let mut head = buddy
            .index_of(mem.ptr_to_pfn(ptr))
            .ok_or(SlabError::NotHeapObject { addr })?;
        let m = buddy.meta_at(head);
        if m.flags & flags::TAIL != 0 {
            head = m.next;
        }
        let h = buddy.meta_at(head);
        if h.flags & flags::SLAB == 0 {
            return Err(SlabError::NotHeapObject { addr });
        }
        let cache = &self.caches[ci];
        if h.cache as usize != ci {
            let owner = self.caches.get(h.cache as usize).map_or("?", |c| c.name);
            return Err(SlabError::WrongCache {
                cache: cache.name,
                owner,
                addr,
            });
        }
        let base = mem.frame_ptr(buddy.pfn_of(head));
        let offset = addr.wrapping_sub(base as usize);
        let slab_bytes = PAGE_SIZE << cache.order;
        if offset >= slab_bytes {
            return Err(SlabError::NotObjectStart {
                cache: cache.name,
                addr,
            });
        }
        let obj = ((offset as u64 * cache.recip) >> 32) as usize;
        if obj * cache.stride as usize != offset || obj >= cache.objs_per_slab as usize {
            return Err(SlabError::NotObjectStart {
                cache: cache.name,
                addr,
            });
        }
        let obj = obj as u16;
        // Cheap double-free checks that need no per-object state.
        if h.count == 0 || h.freelist == obj {
            return Err(SlabError::DoubleFree {
                cache: cache.name,
                addr,
            });
        }
        Ok(ObjectLoc {
            head,
            obj,
            slot: slot_ptr(base, cache, obj),
        })
    }

    /// Pushes `ptr` back onto its slab's freelist and moves the slab between
    /// lists. `size` is the size it was allocated with (see `alloc_from`).
    #[inline]
    pub(crate) fn free_to<M: PhysMem + ?Sized>(
        &mut self,
        ci: usize,
        size: usize,
        ptr: *mut u8,
        buddy: &mut BuddyAllocator<'_>,
        mem: &M,
    ) -> Result<(), SlabError> {
        let ObjectLoc { head, obj, slot } = self.locate(ci, ptr, buddy, mem)?;
        let cache = &mut self.caches[ci];
        if DEBUG {
            // SAFETY: `locate` proved `slot` is an object slot of a live slab of
            // this cache; the checks read it and then poison it.
            unsafe { debug_check_and_poison(slot, cache, size)? };
        }
        let meta = buddy.meta_slice_mut();
        let h = &mut meta[head as usize];
        let was_full = h.freelist == NIL16;
        // SAFETY: as above; the object is being freed, so the slab owns it again.
        unsafe { write_link(slot, cache, h.freelist) };
        h.freelist = obj;
        h.count -= 1;
        let now_empty = h.count == 0;
        cache.active_objs -= 1;
        // The current slab stays current, even when empty; others may move.
        if head != cache.current && (was_full || now_empty) {
            relist_after_free(cache, head, was_full, now_empty, buddy);
        }
        Ok(())
    }

    /// Walks every cache's lists checking slab states; for tests and debugging.
    pub fn check_invariants(&self, buddy: &BuddyAllocator<'_>) -> Result<(), &'static str> {
        let meta: &[PageMeta] = buddy.meta_all();
        for (ci, c) in self.caches[..self.nr_caches].iter().enumerate() {
            let mut active = 0u64;
            let lists = [(&c.full, 0u8), (&c.partial, 1), (&c.empty, 2)];
            for (list, which) in lists {
                list.check(meta, |idx| {
                    let h = &meta[idx as usize];
                    if h.flags & (flags::SLAB | flags::ALLOC_HEAD)
                        != flags::SLAB | flags::ALLOC_HEAD
                    {
                        return Err("slab list entry is not an allocated slab head");
                    }
                    if h.cache as usize != ci || h.order != c.order {
                        return Err("slab on the wrong cache's list");
                    }
                    let ok = match which {
                        0 => h.count == c.objs_per_slab && h.freelist == NIL16,
                        1 => h.count > 0 && h.count < c.objs_per_slab && h.freelist != NIL16,
                        _ => h.count == 0 && h.freelist != NIL16,
                    };
                    if !ok {
                        return Err("slab in-use count does not match its list");
                    }
                    let tails = &meta[idx as usize + 1..idx as usize + (1 << c.order)];
                    if tails
                        .iter()
                        .any(|t| t.flags & flags::TAIL == 0 || t.next != idx)
                    {
                        return Err("slab tail frame does not point at its head");
                    }
                    active += u64::from(h.count);
                    Ok(())
                })?;
            }
            if c.current != NIL {
                let h = meta
                    .get(c.current as usize)
                    .ok_or("current slab out of range")?;
                if h.flags & flags::SLAB == 0 || h.cache as usize != ci {
                    return Err("current slab is not a slab of this cache");
                }
                if h.prev != NIL || h.next != NIL {
                    return Err("current slab is linked into a list");
                }
                if [&c.full, &c.partial, &c.empty]
                    .iter()
                    .any(|l| l.first() == Some(c.current))
                {
                    return Err("current slab is also on a list");
                }
                active += u64::from(h.count);
            }
            if active != c.active_objs {
                return Err("cache active object count disagrees with its slabs");
            }
            if c.empty.len() > EMPTY_SLABS_KEPT {
                return Err("cache keeps too many empty slabs");
            }
        }
        Ok(())
    }
}

/// Moves a non-current slab whose state changed on free: full -> partial,
/// or partial/full -> empty (kept, or released beyond [`EMPTY_SLABS_KEPT`]).
#[cold]
fn relist_after_free(
    cache: &mut SlabCache,
    head: u32,
    was_full: bool,
    now_empty: bool,
    buddy: &mut BuddyAllocator<'_>,
) {
    let meta = buddy.meta_slice_mut();
    if was_full {
        cache.full.remove(meta, head);
    } else {
        cache.partial.remove(meta, head);
    }
    if !now_empty {
        cache.partial.push_front(meta, head);
    } else if cache.empty.len() >= EMPTY_SLABS_KEPT {
        release_slab(cache, head, buddy);
    } else {
        cache.empty.push_front(meta, head);
    }
}

/// Clears a slab's state and returns its block to the buddy allocator.
/// The slab must already be off all lists.
fn release_slab(cache: &SlabCache, head: u32, buddy: &mut BuddyAllocator<'_>) {
    let order = cache.order as usize;
    let meta = buddy.meta_slice_mut();
    for t in &mut meta[head as usize + 1..head as usize + (1 << order)] {
        t.flags &= !flags::TAIL;
        t.next = crate::frame::NIL;
    }
    let h = &mut meta[head as usize];
    h.flags &= !flags::SLAB;
    h.freelist = NIL16;
    buddy.free_slab_block(head, order);
}

/// Address of object slot `obj` in the slab starting at `base`.
#[inline]
fn slot_ptr(base: *mut u8, cache: &SlabCache, obj: u16) -> *mut u8 {
    base.wrapping_add(obj as usize * cache.stride as usize)
}

/// Reads the free link of a free slot.
///
/// # Safety
/// `slot` must be an object slot of a live slab of `cache`.
#[inline]
unsafe fn read_link(slot: *mut u8, cache: &SlabCache) -> u16 {
    // SAFETY: the link lies within the slot (offset + 2 <= stride by
    // construction); the caller guarantees the slot is valid slab memory.
    unsafe {
        slot.add(cache.link_offset as usize)
            .cast::<u16>()
            .read_unaligned()
    }
}

/// Writes the free link of a slot.
///
/// # Safety
/// As [`read_link`], and the slot must be free (owned by the slab).
#[inline]
unsafe fn write_link(slot: *mut u8, cache: &SlabCache, next: u16) {
    // SAFETY: see `read_link`.
    unsafe {
        slot.add(cache.link_offset as usize)
            .cast::<u16>()
            .write_unaligned(next)
    }
}

/// Debug layout: [object][red zone][link u16][state u8][pad].
fn state_offset(cache: &SlabCache) -> usize {
    cache.link_offset as usize + 2
}

/// # Safety
/// `slot` must be an object slot of a live slab of `cache` (debug layout).
unsafe fn set_state(slot: *mut u8, cache: &SlabCache, state: u8) {
    // SAFETY: the state byte lies within the slot's debug trailer.
    unsafe { slot.add(state_offset(cache)).write(state) }
}

/// Poisons a free object and fills its red zone and state.
///
/// # Safety
/// `slot` must be a free object slot of a live slab of `cache` (debug layout).
unsafe fn debug_fill_free(slot: *mut u8, cache: &SlabCache) {
    let size = cache.object_size as usize;
    // SAFETY: object and red zone lie within the slot.
    unsafe {
        slot.write_bytes(POISON_FREE, size);
        slot.add(size).write_bytes(RED_ZONE, RED_ZONE_BYTES);
        set_state(slot, cache, STATE_FREE);
    }
}

/// Extends the red zone down to the requested `size`: the object's slack
/// `[size, object_size)` gets the red-zone pattern (the fixed red zone after
/// the object already has it), so an overrun into the slack is caught too.
///
/// # Safety
/// `slot` must be an object slot of a live slab of `cache` (debug layout)
/// that is being handed out.
#[inline]
unsafe fn debug_arm_red_zone(slot: *mut u8, cache: &SlabCache, size: usize) {
    let end = cache.object_size as usize;
    let start = size.min(end);
    // SAFETY: `start <= end = object_size`, so the bytes lie within the object.
    unsafe { slot.add(start).write_bytes(RED_ZONE, end - start) };
}

/// Checks the red zone from `from` (the requested size, at most the object
/// size) to the end of the fixed red zone after the object.
///
/// # Safety
/// `slot` must be an object slot of a live slab of `cache` (debug layout).
unsafe fn debug_check_red_zone(
    slot: *mut u8,
    cache: &SlabCache,
    from: usize,
) -> Result<(), SlabError> {
    let end = cache.object_size as usize + RED_ZONE_BYTES;
    let from = from.min(cache.object_size as usize);
    // SAFETY: `[from, end)` lies within the object and its red zone, inside the slot.
    let rz = unsafe { core::slice::from_raw_parts(slot.add(from), end - from) };
    if let Some(i) = rz.iter().position(|&b| b != RED_ZONE) {
        return Err(SlabError::RedZone {
            cache: cache.name,
            addr: slot as usize,
            offset: from + i,
            found: rz[i],
        });
    }
    Ok(())
}

/// Before handing out a free object: its state, poison and red zone must be intact.
///
/// # Safety
/// `slot` must be a free object slot of a live slab of `cache` (debug layout).
unsafe fn debug_check_free(slot: *mut u8, cache: &SlabCache) -> Result<(), SlabError> {
    // SAFETY: forwarded from the caller.
    unsafe { debug_check_poisoned(slot, cache, STATE_FREE) }
}

/// A poisoned slot (free, or in a magazine): its state must be `state`,
/// its poison and red zone intact.
///
/// # Safety
/// `slot` must be an object slot of a live slab of `cache` (debug layout).
unsafe fn debug_check_poisoned(
    slot: *mut u8,
    cache: &SlabCache,
    state: u8,
) -> Result<(), SlabError> {
    let addr = slot as usize;
    // SAFETY: the state byte lies within the slot.
    if unsafe { slot.add(state_offset(cache)).read() } != state {
        return Err(SlabError::FreelistCorrupted {
            cache: cache.name,
            addr,
        });
    }
    // SAFETY: the object bytes lie within the slot.
    let obj = unsafe { core::slice::from_raw_parts(slot, cache.object_size as usize) };
    if let Some(i) = obj.iter().position(|&b| b != POISON_FREE) {
        return Err(SlabError::UseAfterFree {
            cache: cache.name,
            addr,
            offset: i,
            found: obj[i],
        });
    }
    // SAFETY: forwarded from the caller; a free object's red zone starts
    // after the whole (poisoned) object.
    unsafe { debug_check_red_zone(slot, cache, cache.object_size as usize) }
}

/// On free: the object must be allocated and its red zone, from the
/// requested `size` on, intact; then poison it.
///
/// # Safety
/// `slot` must be an object slot of a live slab of `cache` (debug layout).
unsafe fn debug_check_and_poison(
    slot: *mut u8,
    cache: &SlabCache,
    size: usize,
) -> Result<(), SlabError> {
    let addr = slot as usize;
    // SAFETY: the state byte lies within the slot.
    match unsafe { slot.add(state_offset(cache)).read() } {
        STATE_ALLOC => {}
        STATE_FREE | STATE_CACHED => {
            return Err(SlabError::DoubleFree {
                cache: cache.name,
                addr,
            })
        }
        _ => {
            return Err(SlabError::FreelistCorrupted {
                cache: cache.name,
                addr,
            })
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { debug_check_red_zone(slot, cache, size)? };
    // SAFETY: the object is being freed; the slab owns the slot again.
    unsafe { debug_fill_free(slot, cache) };
    Ok(())
}

/// With `slab-debug`: an allocated object of kmalloc class `c`, allocated
/// with `size` bytes, goes into a per-CPU magazine. As on a free to the
/// slab: it must be allocated (else a double free: it is free, or in a
/// magazine already) and its red zone from `size` on intact; then it is
/// poisoned and marked as cached (still allocated for the slab). Nothing
/// is checked or written if it is not allocated.
///
/// # Safety
/// `ptr` must be an object of kmalloc class `c` that the slab heap handed
/// out (alive, or freed since: that is what the state check finds); a
/// pointer into no slab is caught only when the magazine gives it back.
pub(crate) unsafe fn debug_into_magazine(
    c: usize,
    ptr: NonNull<u8>,
    size: usize,
) -> Result<(), SlabError> {
    let cache = &KMALLOC_CACHES[c];
    let slot = ptr.as_ptr();
    // SAFETY: the caller's contract: a slot of class `c` (debug layout).
    unsafe {
        debug_check_and_poison(slot, cache, size).map_err(|e| match e {
            SlabError::DoubleFree { addr, .. }
                if slot.add(state_offset(cache)).read() == STATE_CACHED =>
            {
                SlabError::DoubleFree {
                    cache: "kmalloc (in a per-CPU magazine)",
                    addr,
                }
            }
            e => e,
        })?;
        set_state(slot, cache, STATE_CACHED);
    }
    Ok(())
}

/// With `slab-debug`: an object of kmalloc class `c` leaves a per-CPU
/// magazine, to be handed out with `size` bytes (or, with the class's
/// object size, to go back to the slab). It must be marked cached, its
/// poison and red zone intact (else a write after free while it sat in
/// the magazine); then its red zone is armed from `size` and it is
/// allocated again.
///
/// # Safety
/// `ptr` must be an object of kmalloc class `c` that a magazine holds
/// (put there by [`debug_into_magazine`]).
pub(crate) unsafe fn debug_out_of_magazine(
    c: usize,
    ptr: NonNull<u8>,
    size: usize,
) -> Result<(), SlabError> {
    let cache = &KMALLOC_CACHES[c];
    let slot = ptr.as_ptr();
    // SAFETY: the caller's contract: a cached slot of class `c`.
    unsafe {
        debug_check_poisoned(slot, cache, STATE_CACHED)?;
        debug_arm_red_zone(slot, cache, size);
        set_state(slot, cache, STATE_ALLOC);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::host::Arena;
    use crate::frame::Pfn;
    use std::string::ToString;
    use std::vec::Vec;

    /// Runs `f` with a heap over a fresh arena of `frames` frames at a
    /// 4 MiB-aligned base PFN.
    fn with_heap(frames: u64, f: impl FnOnce(&mut SlabHeap, &mut BuddyAllocator<'_>, &Arena)) {
        let arena = Arena::new(Pfn(0x4_0000), frames);
        let mut meta = arena.new_meta();
        let mut buddy = BuddyAllocator::new(&mut meta, arena.base_pfn());
        buddy.add_free_range(arena.base_pfn(), arena.end_pfn());
        let mut heap = SlabHeap::new();
        f(&mut heap, &mut buddy, &arena);
        heap.check_invariants(&buddy).unwrap();
        buddy.check_invariants().unwrap();
    }

    fn lay(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn kmalloc_routing() {
        let name = |s, a| kmalloc_class(s, a).map(|c| KMALLOC_NAMES[c]);
        assert_eq!(name(0, 1), Some("kmalloc-8"));
        assert_eq!(name(1, 1), Some("kmalloc-8"));
        assert_eq!(name(8, 8), Some("kmalloc-8"));
        assert_eq!(name(9, 1), Some("kmalloc-16"));
        assert_eq!(name(65, 8), Some("kmalloc-96"));
        assert_eq!(name(65, 32), Some("kmalloc-96"));
        assert_eq!(name(65, 64), Some("kmalloc-128"));
        assert_eq!(name(129, 64), Some("kmalloc-192"));
        assert_eq!(name(129, 128), Some("kmalloc-256"));
        assert_eq!(name(193, 1), Some("kmalloc-256"));
        assert_eq!(name(257, 1), Some("kmalloc-384"));
        assert_eq!(name(384, 128), Some("kmalloc-384"));
        assert_eq!(name(257, 256), Some("kmalloc-512"));
        assert_eq!(name(385, 1), Some("kmalloc-512"));
        assert_eq!(name(513, 8), Some("kmalloc-768"));
        assert_eq!(name(769, 8), Some("kmalloc-1k"));
        assert_eq!(name(1024, 1), Some("kmalloc-1k"));
        assert_eq!(name(1025, 1), Some("kmalloc-1.5k"));
        assert_eq!(name(1025, 1024), Some("kmalloc-2k"));
        assert_eq!(name(1537, 1), Some("kmalloc-2k"));
        assert_eq!(name(2049, 1), Some("kmalloc-3k"));
        assert_eq!(name(3073, 1), Some("kmalloc-4k"));
        assert_eq!(name(8, 4096), Some("kmalloc-4k"));
        assert_eq!(name(4097, 1), Some("kmalloc-6k"));
        assert_eq!(name(4097, 2048), Some("kmalloc-6k"));
        assert_eq!(name(4097, 4096), Some("kmalloc-8k"));
        assert_eq!(name(6145, 1), Some("kmalloc-8k"));
        assert_eq!(name(8192, 4096), Some("kmalloc-8k"));
        assert_eq!(name(8193, 1), None);
        assert_eq!(name(8, 8192), None);
        // Every class satisfies the size and alignment it is chosen for.
        let step = if cfg!(miri) { 37 } else { 1 };
        for size in (1..=KMALLOC_MAX_SIZE).step_by(step) {
            for shift in 0..=12 {
                let align = 1 << shift;
                let c = kmalloc_class(size, align).unwrap();
                assert!(KMALLOC_SIZES[c] >= size && kmalloc_align(KMALLOC_SIZES[c]) >= align);
                // No smaller class would do.
                for (&prev, &prev_align) in KMALLOC_SIZES[..c].iter().zip(&KMALLOC_ALIGNS) {
                    assert!(
                        prev < size || prev_align < align,
                        "{size} {align}: not the smallest"
                    );
                }
            }
        }
    }

    #[test]
    fn reciprocal_object_index_is_exact() {
        let step = if cfg!(miri) { 997 } else { 1 };
        let max_slab = PAGE_SIZE << MAX_SLAB_ORDER;
        for stride in (2..=max_slab).step_by(step) {
            let recip = (1u64 << 32) / stride as u64 + 1;
            let idx = |off: usize| ((off as u64 * recip) >> 32) as usize;
            for k in 0..max_slab / stride {
                let off = k * stride;
                assert_eq!(idx(off), k, "stride {stride} offset {off}");
                assert_eq!(
                    idx(off + stride - 1),
                    k,
                    "stride {stride} offset {}",
                    off + stride - 1
                );
            }
        }
    }

    #[test]
    fn kmalloc_names_match_sizes() {
        for (&size, &name) in KMALLOC_SIZES.iter().zip(&KMALLOC_NAMES) {
            let n = name.strip_prefix("kmalloc-").unwrap();
            let parsed = match n.strip_suffix('k') {
                Some(k) => (k.parse::<f64>().unwrap() * 1024.0) as usize,
                None => n.parse().unwrap(),
            };
            assert_eq!(parsed, size, "{name}");
        }
    }

    #[test]
    fn cache_geometry() {
        let heap = SlabHeap::new();
        let infos: Vec<CacheInfo> = heap.caches().collect();
        assert_eq!(infos.len(), KMALLOC_SIZES.len());
        for (info, &size) in infos.iter().zip(KMALLOC_SIZES.iter()) {
            assert_eq!(info.objsize, size);
            assert_eq!(info.slot_size % info.align, 0);
            assert!(info.objperslab >= 1);
            let slab = PAGE_SIZE * info.pagesperslab;
            assert!(info.objperslab * info.slot_size <= slab);
            if !DEBUG {
                assert_eq!(info.slot_size, size);
                // At most 1/16 of each slab wasted.
                assert!(
                    (slab - info.objperslab * info.slot_size) * 16 <= slab,
                    "{}",
                    info.name
                );
            }
        }
        let by_name = |n: &str| *infos.iter().find(|i| i.name == n).unwrap();
        for (name, align) in [
            ("kmalloc-96", 32),
            ("kmalloc-192", 64),
            ("kmalloc-384", 128),
            ("kmalloc-768", 256),
            ("kmalloc-1.5k", 512),
            ("kmalloc-3k", 1024),
            ("kmalloc-6k", 2048),
            ("kmalloc-4k", 4096),
            ("kmalloc-8k", 4096),
        ] {
            assert_eq!(by_name(name).align, align, "{name}");
        }
        if !DEBUG {
            // (objects per slab, frames per slab). A 3 * 2^k class leaves a
            // tail of 2^k or 2 * 2^k: 1/64 of the slab with 21 objects; 3k
            // and 6k cannot get below 1/16 within MAX_SLAB_ORDER.
            for (name, geometry) in [
                ("kmalloc-8", (512, 1)),
                ("kmalloc-96", (42, 1)),
                ("kmalloc-192", (21, 1)),
                ("kmalloc-384", (21, 2)),
                ("kmalloc-768", (21, 4)),
                ("kmalloc-1.5k", (21, 8)),
                ("kmalloc-2k", (2, 1)),
                ("kmalloc-3k", (5, 4)),
                ("kmalloc-6k", (5, 8)),
                ("kmalloc-8k", (1, 2)),
            ] {
                let info = by_name(name);
                assert_eq!((info.objperslab, info.pagesperslab), geometry, "{name}");
            }
        }
    }

    #[test]
    fn alloc_free_and_stats() {
        with_heap(64, |heap, buddy, mem| {
            let free0 = buddy.free_pages();
            let l = lay(64, 8);
            let id = heap.kmalloc_cache_for(l).unwrap();
            let per_slab = heap.cache_info(id).unwrap().objperslab;
            let mut ptrs = Vec::new();
            for _ in 0..per_slab + 1 {
                let p = heap.alloc(l, buddy, mem).unwrap();
                assert_eq!(p.as_ptr() as usize % 64, 0);
                ptrs.push(p);
            }
            let mut sorted: Vec<usize> = ptrs.iter().map(|p| p.as_ptr() as usize).collect();
            sorted.sort();
            assert!(
                sorted.windows(2).all(|w| w[1] - w[0] >= 64),
                "objects overlap"
            );
            let info = heap.cache_info(id).unwrap();
            assert_eq!(info.active_objs, per_slab as u64 + 1);
            assert_eq!(info.num_slabs, 2);
            assert_eq!(info.active_slabs, 2);
            assert_eq!(info.num_objs, 2 * per_slab as u64);
            let pps = info.pagesperslab as u64;
            assert_eq!(buddy.free_pages(), free0 - 2 * pps);
            assert_eq!(
                buddy.stats().pages_by_kind[FrameKind::Slab as usize],
                2 * pps
            );
            heap.check_invariants(buddy).unwrap();
            for p in ptrs {
                heap.dealloc(p, l, buddy, mem).unwrap();
            }
            let info = heap.cache_info(id).unwrap();
            assert_eq!(info.active_objs, 0);
            // The first (full) slab emptied onto the empty list; the second
            // stays current. Both are kept.
            assert_eq!((info.num_slabs, info.active_slabs), (2, 1));
            assert_eq!(buddy.free_pages(), free0 - 2 * pps);
            // Two slabs' worth plus one: a third slab is needed, and when all
            // is freed again only one empty slab besides the current one stays.
            let more: Vec<_> = (0..2 * per_slab)
                .map(|_| heap.alloc(l, buddy, mem).unwrap())
                .collect();
            assert_eq!(heap.cache_info(id).unwrap().num_slabs, 2);
            let extra = heap.alloc(l, buddy, mem).unwrap();
            assert_eq!(heap.cache_info(id).unwrap().num_slabs, 3);
            heap.check_invariants(buddy).unwrap();
            for p in more.into_iter().chain([extra]) {
                heap.dealloc(p, l, buddy, mem).unwrap();
            }
            heap.check_invariants(buddy).unwrap();
            assert_eq!(heap.cache_info(id).unwrap().num_slabs, 2);
            assert_eq!(buddy.free_pages(), free0 - 2 * pps);
            assert_eq!(heap.shrink(buddy), 2 * pps);
            assert_eq!(buddy.free_pages(), free0);
            assert_eq!(heap.pages_held(), 0);
            assert_eq!(heap.cache_info(id).unwrap().num_slabs, 0);
        });
    }

    #[test]
    fn freed_object_is_reused_first() {
        with_heap(16, |heap, buddy, mem| {
            let l = lay(32, 32);
            let a = heap.alloc(l, buddy, mem).unwrap();
            let _b = heap.alloc(l, buddy, mem).unwrap();
            heap.dealloc(a, l, buddy, mem).unwrap();
            assert_eq!(heap.alloc(l, buddy, mem).unwrap(), a);
        });
    }

    #[test]
    fn multi_frame_slabs_find_their_head() {
        with_heap(64, |heap, buddy, mem| {
            let id = heap.create_cache("task_struct", 3000, 8).unwrap();
            let info = heap.cache_info(id).unwrap();
            assert!(info.pagesperslab > 1 && info.objperslab > 1, "{info:?}");
            let ptrs: Vec<_> = (0..info.objperslab)
                .map(|_| heap.cache_alloc(id, buddy, mem).unwrap())
                .collect();
            let head = mem.ptr_to_pfn(ptrs[0].as_ptr());
            assert!(
                ptrs.iter().any(|p| mem.ptr_to_pfn(p.as_ptr()) != head),
                "objects in tail frames"
            );
            for p in ptrs.into_iter().rev() {
                heap.cache_free(id, p, buddy, mem).unwrap();
            }
            assert_eq!(heap.cache_info(id).unwrap().active_objs, 0);
        });
    }

    #[test]
    fn large_allocations_use_whole_blocks() {
        with_heap(64, |heap, buddy, mem| {
            let free0 = buddy.free_pages();
            let l = lay(16384, 8);
            let p = heap.alloc(l, buddy, mem).unwrap();
            assert_eq!(buddy.free_pages(), free0 - 4);
            let pfn = mem.ptr_to_pfn(p.as_ptr());
            assert_eq!(buddy.kind(pfn), FrameKind::Kernel);
            assert_eq!(buddy.meta(pfn).unwrap().order(), 2);
            let aligned = lay(100, 16384);
            let q = heap.alloc(aligned, buddy, mem).unwrap();
            assert_eq!(q.as_ptr() as usize % 16384, 0);
            assert_eq!(heap.large_stats(), (2, 8));
            assert_eq!(heap.pages_held(), 8);
            // Wrong layout: order mismatch is reported, nothing changes.
            let e = heap.dealloc(p, lay(40000, 8), buddy, mem).unwrap_err();
            assert!(
                matches!(e, SlabError::LargeFree(FreeError::WrongOrder { .. })),
                "{e}"
            );
            heap.dealloc(p, l, buddy, mem).unwrap();
            heap.dealloc(q, aligned, buddy, mem).unwrap();
            assert_eq!(buddy.free_pages(), free0);
            assert_eq!(heap.large_stats(), (0, 0));
            let e = heap.dealloc(p, l, buddy, mem).unwrap_err();
            assert!(
                matches!(e, SlabError::LargeFree(FreeError::DoubleFree { .. })),
                "{e}"
            );
            assert!(matches!(
                heap.alloc(lay(8 << 20, 8), buddy, mem),
                Err(SlabError::UnsupportedLayout { .. })
            ));
            assert!(matches!(
                heap.alloc(lay(1 << 20, 8), buddy, mem),
                Err(SlabError::OutOfMemory { .. })
            ));
        });
    }

    #[test]
    fn out_of_memory_is_reported() {
        let heap = SlabHeap::new();
        let id = heap.kmalloc_cache_for(lay(4096, 4096)).unwrap();
        let pages = heap.cache_info(id).unwrap().pagesperslab as u64;
        with_heap(2 * pages, |heap, buddy, mem| {
            let l = lay(4096, 4096);
            let a = heap.alloc(l, buddy, mem).unwrap();
            let b = heap.alloc(l, buddy, mem).unwrap();
            let e = heap.alloc(l, buddy, mem).unwrap_err();
            assert_eq!(
                e,
                SlabError::OutOfMemory {
                    size: 4096,
                    align: 4096
                }
            );
            heap.dealloc(a, l, buddy, mem).unwrap();
            heap.dealloc(b, l, buddy, mem).unwrap();
        });
    }

    #[test]
    fn bad_frees_are_reported() {
        with_heap(64, |heap, buddy, mem| {
            let l8 = lay(8, 8);
            let a = heap.alloc(l8, buddy, mem).unwrap();
            let b = heap.alloc(l8, buddy, mem).unwrap();
            // Interior pointer.
            let inner = NonNull::new(a.as_ptr().wrapping_add(1)).unwrap();
            let e = heap.dealloc(inner, l8, buddy, mem).unwrap_err();
            assert!(
                matches!(
                    e,
                    SlabError::NotObjectStart {
                        cache: "kmalloc-8",
                        ..
                    }
                ),
                "{e}"
            );
            // Wrong layout / cache.
            let e = heap.dealloc(a, lay(64, 8), buddy, mem).unwrap_err();
            assert!(matches!(
                e,
                SlabError::WrongCache {
                    cache: "kmalloc-64",
                    owner: "kmalloc-8",
                    ..
                }
            ));
            assert!(e.to_string().contains("belongs to kmalloc-8"), "{e}");
            // A frame the heap does not own (free buddy memory).
            let free_frame = buddy.alloc(0).unwrap();
            buddy.free(free_frame, 0).unwrap();
            let p = NonNull::new(mem.frame_ptr(free_frame)).unwrap();
            assert!(matches!(
                heap.dealloc(p, l8, buddy, mem),
                Err(SlabError::NotHeapObject { .. })
            ));
            // Immediate double free.
            heap.dealloc(a, l8, buddy, mem).unwrap();
            let e = heap.dealloc(a, l8, buddy, mem).unwrap_err();
            assert!(matches!(
                e,
                SlabError::DoubleFree {
                    cache: "kmalloc-8",
                    ..
                }
            ));
            assert!(e.to_string().contains("double free"), "{e}");
            heap.check_invariants(buddy).unwrap();
            heap.dealloc(b, l8, buddy, mem).unwrap();
            // Slab frames cannot be freed behind the heap's back.
            let c = heap.alloc(l8, buddy, mem).unwrap();
            let slab_pfn = mem.ptr_to_pfn(c.as_ptr());
            assert!(matches!(
                buddy.free(slab_pfn, 0),
                Err(FreeError::SlabOwned { .. })
            ));
            heap.dealloc(c, l8, buddy, mem).unwrap();
        });
    }

    #[test]
    fn custom_caches() {
        with_heap(64, |heap, buddy, mem| {
            let id = heap.create_cache("inode", 200, 64).unwrap();
            let other = heap.create_cache("dentry", 48, 8).unwrap();
            let info = heap.cache_info(id).unwrap();
            assert_eq!((info.name, info.objsize, info.align), ("inode", 256, 64));
            let p = heap.cache_alloc(id, buddy, mem).unwrap();
            assert_eq!(p.as_ptr() as usize % 64, 0);
            let e = heap.cache_free(other, p, buddy, mem).unwrap_err();
            assert!(matches!(
                e,
                SlabError::WrongCache {
                    cache: "dentry",
                    owner: "inode",
                    ..
                }
            ));
            heap.cache_free(id, p, buddy, mem).unwrap();
            assert!(matches!(
                heap.cache_alloc(CacheId(31), buddy, mem),
                Err(SlabError::NoSuchCache { id: 31 })
            ));
            assert!(matches!(
                heap.create_cache("bad", 8, 3),
                Err(SlabError::BadCacheParams { .. })
            ));
            assert!(matches!(
                heap.create_cache("bad", 0, 8),
                Err(SlabError::BadCacheParams { .. })
            ));
            assert!(matches!(
                heap.create_cache("huge", 40000, 8),
                Err(SlabError::BadCacheParams { .. })
            ));
            while heap.nr_caches < MAX_CACHES {
                heap.create_cache("filler", 16, 16).unwrap();
            }
            assert_eq!(
                heap.create_cache("x", 16, 16),
                Err(SlabError::TooManyCaches { name: "x" })
            );
            assert_eq!(heap.caches().count(), MAX_CACHES);
        });
    }

    #[cfg(feature = "slab-debug")]
    mod debug {
        use super::*;

        #[test]
        fn write_after_free_is_detected_on_realloc() {
            with_heap(16, |heap, buddy, mem| {
                let l = lay(64, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                let _keep = heap.alloc(l, buddy, mem).unwrap();
                heap.dealloc(a, l, buddy, mem).unwrap();
                // SAFETY: deliberately writes to a freed object inside the arena
                // to simulate a use-after-free bug.
                unsafe { a.as_ptr().add(10).write(0x42) };
                let e = heap.alloc(l, buddy, mem).unwrap_err();
                assert_eq!(
                    e,
                    SlabError::UseAfterFree {
                        cache: "kmalloc-64",
                        addr: a.as_ptr() as usize,
                        offset: 10,
                        found: 0x42
                    }
                );
                assert!(e.to_string().contains("use after free"), "{e}");
                // SAFETY: restore the poison so the heap is consistent again.
                unsafe { a.as_ptr().add(10).write(POISON_FREE) };
                let again = heap.alloc(l, buddy, mem).unwrap();
                assert_eq!(again, a);
            });
        }

        #[test]
        fn overflow_into_red_zone_is_detected_on_free() {
            with_heap(16, |heap, buddy, mem| {
                let l = lay(32, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                // SAFETY: deliberately writes one byte past the object (into
                // its red zone, still inside the slab) to simulate an overflow.
                unsafe { a.as_ptr().add(32).write(0) };
                let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                assert!(matches!(
                    e,
                    SlabError::RedZone {
                        cache: "kmalloc-32",
                        offset: 32,
                        found: 0,
                        ..
                    }
                ));
                assert!(e.to_string().contains("write past the end"), "{e}");
                // SAFETY: repair the red zone.
                unsafe { a.as_ptr().add(32).write(RED_ZONE) };
                heap.dealloc(a, l, buddy, mem).unwrap();
            });
        }

        /// Writes `byte` at `p + offset`: a deliberate overrun for the tests.
        fn poke(p: NonNull<u8>, offset: usize, byte: u8) {
            // SAFETY: the tests only poke inside the object's slot (object,
            // slack or red zone), which is memory of a live slab in the arena.
            unsafe { p.as_ptr().add(offset).write(byte) };
        }

        #[test]
        fn write_past_small_request_inside_object_is_detected() {
            with_heap(16, |heap, buddy, mem| {
                // The kernel's in-kernel test: 40 bytes live in kmalloc-64.
                let l = lay(40, 8);
                assert_eq!(
                    heap.kmalloc_cache_for(l),
                    heap.kmalloc_cache_for(lay(64, 8))
                );
                let a = heap.alloc(l, buddy, mem).unwrap();
                // The slack was armed on allocation.
                // SAFETY: `a` heads a 64-byte object plus red zone in its slab.
                let bytes = unsafe { core::slice::from_raw_parts(a.as_ptr(), 64) };
                assert!(bytes[..40].iter().all(|&b| b == POISON_FREE));
                assert!(bytes[40..].iter().all(|&b| b == RED_ZONE));
                for offset in [40, 63] {
                    poke(a, offset, 0x5a);
                    let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                    assert_eq!(
                        e,
                        SlabError::RedZone {
                            cache: "kmalloc-64",
                            addr: a.as_ptr() as usize,
                            offset,
                            found: 0x5a
                        }
                    );
                    let msg = e.to_string();
                    assert!(msg.contains("write past the end"), "{msg}");
                    assert!(msg.contains("kmalloc-64"), "{msg}");
                    assert!(
                        msg.contains(&std::format!("{:#x}", a.as_ptr() as usize)),
                        "{msg}"
                    );
                    assert!(msg.contains(&std::format!("offset {offset}")), "{msg}");
                    // The failed free changed nothing: repair and free for real.
                    poke(a, offset, RED_ZONE);
                }
                heap.dealloc(a, l, buddy, mem).unwrap();
                // A zero-sized request has no bytes of its own.
                let z = lay(0, 1);
                let b = heap.alloc(z, buddy, mem).unwrap();
                poke(b, 0, 0);
                let e = heap.dealloc(b, z, buddy, mem).unwrap_err();
                assert!(matches!(e, SlabError::RedZone { offset: 0, .. }), "{e}");
                poke(b, 0, RED_ZONE);
                heap.dealloc(b, z, buddy, mem).unwrap();
            });
        }

        #[test]
        fn write_at_end_of_full_object_is_detected() {
            with_heap(16, |heap, buddy, mem| {
                for size in [40, 64] {
                    let l = lay(size, 8);
                    let a = heap.alloc(l, buddy, mem).unwrap();
                    // First and last byte of the fixed red zone after the object.
                    for offset in [64, 64 + RED_ZONE_BYTES - 1] {
                        poke(a, offset, 0);
                        let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                        assert_eq!(
                            e,
                            SlabError::RedZone {
                                cache: "kmalloc-64",
                                addr: a.as_ptr() as usize,
                                offset,
                                found: 0
                            },
                            "request {size}"
                        );
                        poke(a, offset, RED_ZONE);
                    }
                    heap.dealloc(a, l, buddy, mem).unwrap();
                }
                // An intermediate class: 300 bytes in kmalloc-384.
                let l = lay(300, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                poke(a, 384, 1);
                let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                assert!(
                    matches!(
                        e,
                        SlabError::RedZone {
                            cache: "kmalloc-384",
                            offset: 384,
                            ..
                        }
                    ),
                    "{e}"
                );
                poke(a, 384, RED_ZONE);
                poke(a, 300, 1);
                let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                assert!(matches!(e, SlabError::RedZone { offset: 300, .. }), "{e}");
                poke(a, 300, RED_ZONE);
                heap.dealloc(a, l, buddy, mem).unwrap();
            });
        }

        #[test]
        fn correct_programs_produce_no_errors() {
            with_heap(256, |heap, buddy, mem| {
                let mut live = Vec::new();
                let mut tag = 0u8;
                // Every class, requests at and just below its size, several
                // alignments; each object written in full (with the red-zone
                // byte too: data may look like the pattern).
                // Miri is slow at the byte loops: one alignment there.
                let aligns: &[usize] = if cfg!(miri) { &[8] } else { &[1, 8, 64] };
                for &class in &KMALLOC_SIZES {
                    for size in [class - class / 4, class - 1, class] {
                        for &align in aligns {
                            let l = lay(size, align);
                            let p = heap.alloc(l, buddy, mem).unwrap();
                            tag = tag.wrapping_add(1);
                            let byte = if tag.is_multiple_of(5) { RED_ZONE } else { tag };
                            // SAFETY: `p` is a live allocation of `size` bytes.
                            unsafe { p.as_ptr().write_bytes(byte, size) };
                            live.push((p, l, byte));
                        }
                    }
                }
                for (p, l, byte) in live.drain(..).rev() {
                    // SAFETY: still our live allocation of `l.size()` bytes.
                    let bytes = unsafe { core::slice::from_raw_parts(p.as_ptr(), l.size()) };
                    assert!(bytes.iter().all(|&b| b == byte), "{l:?} overwritten");
                    heap.dealloc(p, l, buddy, mem).unwrap();
                }
                // A slot reused by requests of different sizes (LIFO reuse):
                // the red zone follows each request's own size.
                let (small, big) = (lay(40, 8), lay(64, 8));
                let a = heap.alloc(small, buddy, mem).unwrap();
                heap.dealloc(a, small, buddy, mem).unwrap();
                let b = heap.alloc(big, buddy, mem).unwrap();
                assert_eq!(a, b);
                // SAFETY: `b` is a live 64-byte allocation.
                unsafe { b.as_ptr().write_bytes(0, 64) };
                heap.dealloc(b, big, buddy, mem).unwrap();
                let c = heap.alloc(small, buddy, mem).unwrap();
                assert_eq!(a, c);
                // SAFETY: `c` is a live 40-byte allocation.
                unsafe { c.as_ptr().write_bytes(0, 40) };
                heap.dealloc(c, small, buddy, mem).unwrap();
                heap.check_invariants(buddy).unwrap();
            });
        }

        #[test]
        fn write_to_freed_slack_is_use_after_free() {
            with_heap(16, |heap, buddy, mem| {
                let l = lay(40, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                let _keep = heap.alloc(l, buddy, mem).unwrap();
                heap.dealloc(a, l, buddy, mem).unwrap();
                // Free objects are poisoned in full, slack included.
                poke(a, 50, 0x42);
                let e = heap.alloc(l, buddy, mem).unwrap_err();
                assert!(
                    matches!(
                        e,
                        SlabError::UseAfterFree {
                            offset: 50,
                            found: 0x42,
                            ..
                        }
                    ),
                    "{e}"
                );
                poke(a, 50, POISON_FREE);
                assert_eq!(heap.alloc(l, buddy, mem).unwrap(), a);
            });
        }

        #[test]
        fn named_caches_check_from_their_object_size() {
            with_heap(16, |heap, buddy, mem| {
                // 200 bytes aligned to 64: 256-byte objects, all usable.
                let id = heap.create_cache("inode", 200, 64).unwrap();
                assert_eq!(heap.cache_info(id).unwrap().objsize, 256);
                let p = heap.cache_alloc(id, buddy, mem).unwrap();
                // SAFETY: `p` is a live 256-byte object of the cache.
                unsafe { p.as_ptr().write_bytes(0, 256) };
                poke(p, 256, 0);
                let e = heap.cache_free(id, p, buddy, mem).unwrap_err();
                assert!(
                    matches!(
                        e,
                        SlabError::RedZone {
                            cache: "inode",
                            offset: 256,
                            ..
                        }
                    ),
                    "{e}"
                );
                poke(p, 256, RED_ZONE);
                heap.cache_free(id, p, buddy, mem).unwrap();
            });
        }

        #[test]
        fn double_free_not_at_freelist_head_is_detected() {
            with_heap(16, |heap, buddy, mem| {
                let l = lay(16, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                let b = heap.alloc(l, buddy, mem).unwrap();
                let _c = heap.alloc(l, buddy, mem).unwrap();
                heap.dealloc(a, l, buddy, mem).unwrap();
                heap.dealloc(b, l, buddy, mem).unwrap();
                let e = heap.dealloc(a, l, buddy, mem).unwrap_err();
                assert_eq!(
                    e,
                    SlabError::DoubleFree {
                        cache: "kmalloc-16",
                        addr: a.as_ptr() as usize
                    }
                );
                heap.check_invariants(buddy).unwrap();
            });
        }

        #[test]
        fn fresh_objects_are_poisoned() {
            with_heap(16, |heap, buddy, mem| {
                let l = lay(128, 8);
                let a = heap.alloc(l, buddy, mem).unwrap();
                // SAFETY: `a` is a live 128-byte object.
                let bytes = unsafe { core::slice::from_raw_parts(a.as_ptr(), 128) };
                assert!(bytes.iter().all(|&b| b == POISON_FREE));
                heap.dealloc(a, l, buddy, mem).unwrap();
            });
        }
    }
}
