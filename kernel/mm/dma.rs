//! Memory for devices: DMA buffers, device registers, and `virtio-drivers`'
//! [`Hal`] on the frame allocator.
//!
//! There is no IOMMU: a device reads and writes physical addresses. DMA
//! memory is physically contiguous frames from the buddy allocator
//! ([`DmaBuffer`]), reached through the direct map; "sharing" a buffer with
//! the device is translating its address. Device registers (PCI BARs) are
//! mapped uncached in the vmalloc area ([`map_mmio`]) before a driver asks
//! for them, so [`FrameHal::mmio_phys_to_virt`] only looks them up and
//! never has to allocate (it cannot fail).
//!
//! This is the one module that turns DMA and register addresses into
//! pointers; drivers (`drivers/`, `#![deny(unsafe_code)]`) use its safe
//! types.

use core::ptr::NonNull;

use mmcore::{FrameKind, Pfn};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use super::frames;
use super::layout::{phys_to_virt, PAGE_OFFSET, PAGE_SIZE, VMALLOC_START};
use super::vmalloc::{self, IoMapping, VmallocError};
use crate::arch::sync::IrqMutex;

/// The buddy order of a block of at least `pages` pages.
fn order_for(pages: usize) -> usize {
    pages.max(1).next_power_of_two().trailing_zeros() as usize
}

/// Physically contiguous, zeroed frames a device may read and write: the
/// kernel's until dropped (then freed).
#[derive(Debug)]
pub struct DmaBuffer {
    pfn: Pfn,
    order: usize,
    len: usize,
}

impl DmaBuffer {
    /// `pages` contiguous zeroed pages (rounded up to a power of two in the
    /// allocator, `len` stays `pages` pages), or `None` without memory.
    pub fn new(pages: usize) -> Option<DmaBuffer> {
        let order = order_for(pages);
        if order > mmcore::MAX_ORDER {
            return None;
        }
        let pfn = frames::alloc_zeroed(order, FrameKind::Kernel)?;
        Some(DmaBuffer {
            pfn,
            order,
            len: pages.max(1) * PAGE_SIZE as usize,
        })
    }

    /// The bus (= physical) address of the first byte.
    pub fn phys(&self) -> u64 {
        self.pfn.addr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the frames are this buffer's alone (allocated in `new`,
        // freed only in `drop`), contiguous in the direct map for `len`
        // bytes; the borrow of `self` keeps them alive and unaliased by
        // `as_mut_slice`.
        unsafe { core::slice::from_raw_parts(phys_to_virt(self.phys()) as *const u8, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`, and `&mut self` makes this the only
        // reference to the bytes.
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(self.phys()) as *mut u8, self.len) }
    }
}

/// Word access for memory the device reads and writes while the kernel
/// does (rings, contexts): volatile, so neither side's accesses are
/// cached or reordered away by the compiler. An access outside the buffer
/// (or not 4-byte aligned) reads 0 and writes nothing: offsets come from
/// the driver, and a wrong one must not become a stray write.
impl DmaBuffer {
    fn word(&self, offset: usize) -> Option<*mut u32> {
        let end = offset.checked_add(4)?;
        (end <= self.len && offset.is_multiple_of(4))
            .then(|| (phys_to_virt(self.phys()) + offset as u64) as *mut u32)
    }

    /// The little-endian u32 at byte `offset`.
    pub fn read_u32(&self, offset: usize) -> u32 {
        match self.word(offset) {
            // SAFETY: inside this buffer's frames (checked), aligned; the
            // frames are this buffer's until it is dropped.
            Some(p) => unsafe { p.read_volatile() },
            None => 0,
        }
    }

    /// Stores `value` at byte `offset`.
    pub fn write_u32(&mut self, offset: usize, value: u32) {
        if let Some(p) = self.word(offset) {
            // SAFETY: as for `read_u32`; `&mut self` makes the kernel's
            // the only access but the device's.
            unsafe { p.write_volatile(value) }
        }
    }

    /// Copies bytes `offset..offset + out.len()` (clipped to the buffer)
    /// into `out`; returns how many were copied.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> usize {
        let n = self.len.saturating_sub(offset).min(out.len());
        let base = phys_to_virt(self.phys()) + offset as u64;
        for (i, b) in out[..n].iter_mut().enumerate() {
            // SAFETY: `offset + i < len` (clipped above): inside the
            // buffer's frames.
            *b = unsafe { ((base + i as u64) as *const u8).read_volatile() };
        }
        n
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        frames::free(self.pfn, self.order).expect("a DMA buffer's own frames");
    }
}

/// The physical address of `bytes` if they lie in the direct map (so are
/// physically contiguous and RAM): what a device can be handed directly.
pub fn direct_phys(bytes: &[u8]) -> Option<u64> {
    direct_range(bytes.as_ptr() as u64, bytes.len())
}

fn direct_range(va: u64, len: usize) -> Option<u64> {
    let end = va.checked_add(len as u64)?;
    (va >= PAGE_OFFSET && end <= VMALLOC_START).then(|| va - PAGE_OFFSET)
}

/// The physical address of `va..va + len` in the kernel half if every page
/// of it is mapped and the frames follow each other (a buffer on a kernel
/// stack within one page, say).
fn contiguous_range(va: u64, len: usize) -> Option<u64> {
    let pa = super::paging::translate(va)?;
    let last = va.checked_add(len.max(1) as u64 - 1)?;
    let mut page = va - va % PAGE_SIZE + PAGE_SIZE;
    while page <= last {
        let expected = pa - va % PAGE_SIZE + (page - (va - va % PAGE_SIZE));
        if super::paging::translate(page)? != expected {
            return None;
        }
        page += PAGE_SIZE;
    }
    Some(pa)
}

// ---------------------------------------------------------------------------
// Device registers.

/// Register windows mapped so far (one device's BARs fill a few). They
/// stay mapped for good: a device's registers do not move, and a second
/// probe of the same device finds them here.
const MMIO_SLOTS: usize = 8;
static MMIO: IrqMutex<[Option<IoMapping>; MMIO_SLOTS]> =
    IrqMutex::new([const { None }; MMIO_SLOTS]);

#[derive(Debug)]
pub enum MmioError {
    /// No room in the vmalloc area or for a page table.
    Map(VmallocError),
    /// Every slot is taken.
    TooManyWindows,
}

/// Maps device registers `phys..phys + len` uncached (unless a window
/// already covers them), so [`FrameHal::mmio_phys_to_virt`] can hand them
/// out. Returns their virtual address.
pub fn map_mmio(phys: u64, len: u64) -> Result<u64, MmioError> {
    if let Some(va) = mmio_lookup(phys, len) {
        return Ok(va);
    }
    let mapping = vmalloc::ioremap(phys, len).map_err(MmioError::Map)?;
    let va = mapping.virt();
    let mut slots = MMIO.lock();
    match slots.iter_mut().find(|s| s.is_none()) {
        Some(slot) => {
            *slot = Some(mapping);
            Ok(va)
        }
        None => {
            drop(slots);
            vmalloc::iounmap(mapping);
            Err(MmioError::TooManyWindows)
        }
    }
}

/// A device's register window (mapped uncached by [`map_mmio`], mapped
/// for good): volatile 32-bit accesses at byte offsets. An offset outside
/// the window or not 4-byte aligned reads all ones (what a missing device
/// reads) and writes nothing, so an offset computed from a value the
/// device gave can never reach other memory.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    va: u64,
    len: u64,
}

impl Mmio {
    /// Maps registers `phys..phys + len`.
    pub fn map(phys: u64, len: u64) -> Result<Mmio, MmioError> {
        Ok(Mmio {
            va: map_mmio(phys, len)?,
            len,
        })
    }

    /// The window's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reg(&self, offset: u64) -> Option<*mut u32> {
        let end = offset.checked_add(4)?;
        (end <= self.len && offset.is_multiple_of(4)).then(|| (self.va + offset) as *mut u32)
    }

    pub fn read32(&self, offset: u64) -> u32 {
        match self.reg(offset) {
            // SAFETY: inside the window `map_mmio` mapped uncached for
            // these registers (checked), aligned; it stays mapped.
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }

    pub fn write32(&self, offset: u64, value: u32) {
        if let Some(p) = self.reg(offset) {
            // SAFETY: as for `read32`. What the write makes the device do
            // (DMA to addresses it is given) is the driver's to get right:
            // it hands over only memory it owns (`DmaBuffer`s).
            unsafe { p.write_volatile(value) }
        }
    }

    /// A 64-bit register as two 32-bit accesses, low half first (what
    /// xHCI allows whatever its AC64 says).
    pub fn read64(&self, offset: u64) -> u64 {
        u64::from(self.read32(offset)) | u64::from(self.read32(offset.wrapping_add(4))) << 32
    }

    pub fn write64(&self, offset: u64, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset.wrapping_add(4), (value >> 32) as u32);
    }
}

fn mmio_lookup(phys: u64, len: u64) -> Option<u64> {
    MMIO.lock()
        .iter()
        .flatten()
        .find_map(|m| m.translate(phys, len))
}

// ---------------------------------------------------------------------------
// Bounce slots: for small buffers the `virtio-drivers` queue shares from a
// kernel stack (a request header, a status byte) that straddle two pages
// whose frames are not neighbours. Drivers hand over data only in
// `DmaBuffer`s or direct-map memory, so nothing larger ever comes here.

/// Bytes per bounce slot, and slots in the page.
const BOUNCE_SLOT: usize = 128;
const BOUNCE_SLOTS: usize = PAGE_SIZE as usize / BOUNCE_SLOT;

struct Bounce {
    page: Option<DmaBuffer>,
    /// Bit i: slot i is in use.
    used: u32,
}

static BOUNCE: IrqMutex<Bounce> = IrqMutex::new(Bounce {
    page: None,
    used: 0,
});

/// Allocates the bounce page (once). Drivers call this before their first
/// request; `false` without memory.
pub fn init_bounce() -> bool {
    if BOUNCE.lock().page.is_some() {
        return true;
    }
    let Some(page) = DmaBuffer::new(1) else {
        return false;
    };
    // Allocated with the lock dropped (the frames lock is never taken
    // under it); a spare from a racing caller is freed after unlocking.
    let spare = {
        let mut bounce = BOUNCE.lock();
        match bounce.page {
            None => {
                bounce.page = Some(page);
                None
            }
            Some(_) => Some(page),
        }
    };
    drop(spare);
    true
}

/// Copies `len` bytes at `va` into a free bounce slot; its bus address.
fn bounce_in(va: *const u8, len: usize) -> Option<PhysAddr> {
    if len > BOUNCE_SLOT {
        return None;
    }
    let mut bounce = BOUNCE.lock();
    let Bounce { page, used } = &mut *bounce;
    let page = page.as_mut()?;
    let slot = (0..BOUNCE_SLOTS).find(|i| *used & (1 << i) == 0)?;
    *used |= 1 << slot;
    let dst = &mut page.as_mut_slice()[slot * BOUNCE_SLOT..slot * BOUNCE_SLOT + len];
    // SAFETY: `share`'s caller guarantees `va..va + len` is valid and not
    // accessed by anyone else during the call; `dst` is the bounce page's.
    dst.copy_from_slice(unsafe { core::slice::from_raw_parts(va, len) });
    Some(page.phys() + (slot * BOUNCE_SLOT) as u64)
}

/// If `paddr` is a bounce slot: copies it back to `va` (when the device
/// may have written it) and frees the slot.
fn bounce_out(paddr: PhysAddr, va: *mut u8, len: usize, copy_back: bool) {
    let mut bounce = BOUNCE.lock();
    let Some(page) = bounce.page.as_ref() else {
        return;
    };
    let base = page.phys();
    if paddr < base || paddr >= base + PAGE_SIZE {
        return;
    }
    let slot = (paddr - base) as usize / BOUNCE_SLOT;
    if copy_back {
        let src = &page.as_slice()[slot * BOUNCE_SLOT..slot * BOUNCE_SLOT + len];
        // SAFETY: `unshare`'s caller guarantees `va..va + len` is valid and
        // not accessed by anyone else during the call.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), va, len) };
    }
    bounce.used &= !(1 << slot);
}

// ---------------------------------------------------------------------------

/// `virtio-drivers`' hardware interface on Ferrite's frame allocator.
pub struct FrameHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous
// frames from the buddy allocator that nothing else references until
// `dma_dealloc` frees them, reached through the direct map (valid and
// writable); `mmio_phys_to_virt` returns windows `map_mmio` mapped (valid,
// uncached, used by the one transport of the device); `share` returns the
// bus address of exactly the bytes it was given (or of a bounce copy that
// `unshare` copies back).
unsafe impl Hal for FrameHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match DmaBuffer::new(pages) {
            Some(buffer) => {
                let buffer = core::mem::ManuallyDrop::new(buffer);
                let va = phys_to_virt(buffer.phys()) as *mut u8;
                (buffer.phys(), NonNull::new(va).expect("direct-map address"))
            }
            // The crate turns a zero address into `Error::DmaError` (frame
            // 0 is never handed out: the first MiB stays reserved).
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        match frames::free(Pfn::from_addr(paddr), order_for(pages)) {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let va = mmio_lookup(paddr, size as u64).unwrap_or_else(|| {
            panic!("virtio: registers at {paddr:#x} (+{size:#x}) were not mapped before the probe")
        });
        NonNull::new(va as *mut u8).expect("vmalloc address")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr() as *mut u8;
        let len = buffer.len();
        direct_range(va as u64, len)
            .or_else(|| contiguous_range(va as u64, len))
            .or_else(|| bounce_in(va, len))
            .unwrap_or_else(|| {
                panic!("virtio: a {len}-byte buffer at {va:p} is not physically contiguous")
            })
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let copy_back = direction != BufferDirection::DriverToDevice;
        bounce_out(paddr, buffer.as_ptr() as *mut u8, buffer.len(), copy_back);
    }
}
