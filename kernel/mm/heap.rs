//! The kernel heap (`GlobalAlloc`).
//!
//! Before the frame allocator exists, allocations come from a boot heap: a
//! static 1 MiB region managed by `linked_list_allocator`. Once
//! `frames::init` has run, every new allocation comes from the slab heap;
//! blocks the boot heap handed out stay valid and go back to it when freed
//! (the address tells which heap owns a block).
//!
//! An allocation made through the fallible helpers of [`super::kalloc`] may
//! be failed on purpose by failure injection ([`super::failslab`]); every
//! other allocation fails only when memory really runs out.
//!
//! Those other allocations cannot fail gracefully: Rust's `Vec`, `Box`,
//! `String` ... abort the kernel. So the heap keeps an emergency reserve of
//! a few frame blocks (like the pages Linux keeps below its `min`
//! watermark for `__GFP_NOFAIL`/`PF_MEMALLOC` callers): when the frame
//! allocator is empty, an allocation that may not fail gets a reserve block
//! given back to the buddy allocator and retries; a fallible one fails at
//! once, leaving the reserve to those that cannot. The reserve is topped up
//! again once memory is plentiful.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::Heap;

use mmcore::{FrameKind, Pfn};

use super::direct::DirectMap;
use super::frames::{self, PhysicalMemory};
use super::layout::PAGE_SIZE;
use crate::arch::sync::IrqMutex;

const BOOT_HEAP_SIZE: usize = 1024 * 1024;

#[repr(C, align(4096))]
struct BootHeapRegion([u8; BOOT_HEAP_SIZE]);

static mut BOOT_HEAP_REGION: BootHeapRegion = BootHeapRegion([0; BOOT_HEAP_SIZE]);

/// Order of a reserve block: 16 KiB, the largest slab a kmalloc class
/// takes (a bigger request goes to the buddy allocator whole and cannot be
/// helped by one block).
const RESERVE_ORDER: usize = 2;
/// Blocks in a full reserve (128 KiB).
pub const RESERVE_BLOCKS: usize = 8;
/// The reserve is refilled only while at least this many frames stay free
/// (4 MiB): under pressure the frames go to whoever needs them.
const REFILL_ABOVE: u64 = 1024;

/// The emergency reserve. Only touched inside `frames::with` (the frame
/// allocator's lock, interrupts off), so its own lock is always taken
/// second and never contended.
struct Reserve {
    blocks: [Option<Pfn>; RESERVE_BLOCKS],
    /// Blocks given up to allocations that could not fail, ever.
    used: u64,
}

static RESERVE: IrqMutex<Reserve> = IrqMutex::ranked(
    Reserve {
        blocks: [None; RESERVE_BLOCKS],
        used: 0,
    },
    crate::arch::sync::rank::RESERVE,
);

/// Statistics of the heap-reserve lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    RESERVE.stat()
}

impl Reserve {
    fn held(&self) -> usize {
        self.blocks.iter().flatten().count()
    }

    /// Takes blocks back from the buddy allocator while memory is
    /// plentiful.
    fn refill(&mut self, m: &mut PhysicalMemory) {
        for slot in self.blocks.iter_mut().filter(|b| b.is_none()) {
            if m.buddy.free_pages() < REFILL_ABOVE + (1 << RESERVE_ORDER) {
                return;
            }
            *slot = m.alloc_owned(RESERVE_ORDER, FrameKind::Kernel, false);
        }
    }

    /// Gives one block back to the buddy allocator; false if none is left.
    fn release_one(&mut self, m: &mut PhysicalMemory) -> bool {
        let Some(pfn) = self.blocks.iter_mut().find_map(Option::take) else {
            return false;
        };
        m.buddy
            .free(pfn, RESERVE_ORDER)
            .expect("a reserve block is an allocated block");
        self.used += 1;
        true
    }
}

/// Tops the emergency reserve up while memory is plentiful; called under
/// the frames lock by the per-CPU caches' drains. (A slow-path allocation
/// tops it up too; with the per-CPU magazines serving most allocations,
/// one may not come for a while after the reserve was used.)
pub(super) fn refill_reserve(m: &mut PhysicalMemory) {
    let mut reserve = RESERVE.lock();
    if reserve.held() < RESERVE_BLOCKS {
        reserve.refill(m);
    }
}

/// Blocks in the emergency reserve now, and how many were ever used.
pub fn reserve_status() -> (usize, u64) {
    frames::with(|_| {
        let r = RESERVE.lock();
        (r.held(), r.used)
    })
}

struct KernelHeap {
    boot: IrqMutex<Option<Heap>>,
    slab_ready: AtomicBool,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    boot: IrqMutex::new(None),
    slab_ready: AtomicBool::new(false),
};

fn boot_region() -> core::ops::Range<usize> {
    let start = core::ptr::addr_of!(BOOT_HEAP_REGION) as usize;
    start..start + BOOT_HEAP_SIZE
}

/// Gives the boot heap its region; called first thing in `init`.
pub fn init_boot_heap() {
    let mut boot = HEAP.boot.lock();
    if boot.is_some() {
        return;
    }
    // SAFETY: the region is only ever handed to this one heap, once
    // (guarded by the `is_some` check under the lock).
    let heap = unsafe { Heap::new(boot_region().start as *mut u8, BOOT_HEAP_SIZE) };
    *boot = Some(heap);
}

/// Switches new allocations to the slab heap (after `frames::init`) and
/// fills the emergency reserve.
pub fn switch_to_slab() {
    frames::with(|m| RESERVE.lock().refill(m));
    HEAP.slab_ready.store(true, Ordering::SeqCst);
}

/// Bytes in use in the boot heap.
pub fn boot_heap_used() -> usize {
    HEAP.boot.lock().as_ref().map_or(0, |h| h.used())
}

impl KernelHeap {
    fn boot_alloc(&self, layout: Layout) -> *mut u8 {
        match self.boot.lock().as_mut() {
            Some(heap) => heap
                .allocate_first_fit(layout)
                .map_or(core::ptr::null_mut(), |p| p.as_ptr()),
            None => core::ptr::null_mut(),
        }
    }
}

// SAFETY: all state is behind spin locks taken with interrupts disabled, so
// an interrupt handler that allocates cannot deadlock against its own CPU;
// blocks are returned to the heap that handed them out.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Taken for every allocation: the mark belongs to the first one.
        let mark = super::kalloc::take_mark();
        let may_fail = mark == super::kalloc::Mark::MayFail;
        if !self.slab_ready.load(Ordering::Relaxed) {
            return self.boot_alloc(layout);
        }
        if mark != super::kalloc::Mark::None && super::failslab::should_fail_slab() {
            return core::ptr::null_mut();
        }
        // Fast path: this CPU's magazine, no shared lock (mm::percpu).
        if let Some(p) = super::percpu::try_alloc_object(layout) {
            return p.as_ptr();
        }
        // Whether a reserve block can help: the request fits in the slab
        // one block makes.
        let reserve_helps = !may_fail && layout.size() <= (PAGE_SIZE as usize) << RESERVE_ORDER;
        // The slow path: refill this CPU's magazine with a batch (or, where
        // there is none, the slab heap itself) under the frames lock.
        let attempt = |use_reserve: bool| {
            super::percpu::with_objects(|mut cpu| {
                frames::with(|m| {
                    let mut reserve = RESERVE.lock();
                    loop {
                        let result = match cpu.as_deref_mut() {
                            Some(c) => c.alloc_slow(layout, &mut m.slab, &mut m.buddy, &DirectMap),
                            None => m.slab.alloc(layout, &mut m.buddy, &DirectMap),
                        };
                        match result {
                            Ok(ptr) => {
                                if reserve.held() < RESERVE_BLOCKS {
                                    reserve.refill(m);
                                }
                                return ptr.as_ptr();
                            }
                            // Out of frames, and the caller cannot fail: a
                            // reserve block goes back to the buddy allocator,
                            // try again.
                            Err(mmcore::SlabError::OutOfMemory { .. })
                                if use_reserve && reserve_helps && reserve.release_one(m) => {}
                            // Out of memory: the caller (alloc_error_handler or
                            // a fallible API like `try_reserve`) decides.
                            Err(mmcore::SlabError::OutOfMemory { .. }) => {
                                return core::ptr::null_mut()
                            }
                            // Bigger than the largest block: a failure like
                            // any other (a fallible caller gets its error; an
                            // infallible one reaches alloc_error_handler).
                            Err(mmcore::SlabError::UnsupportedLayout { .. }) => {
                                return core::ptr::null_mut()
                            }
                            Err(e) => panic!("kernel heap: {e}"),
                        }
                    }
                })
            })
        };
        let ptr = attempt(false);
        if !ptr.is_null() {
            return ptr;
        }
        // Objects and frames sitting in the CPUs' caches go back first.
        super::percpu::drain_on_shortage();
        let ptr = attempt(false);
        if !ptr.is_null() {
            return ptr;
        }
        // Clean page-cache pages nothing maps can go first (not while this
        // very allocation is made under the cache lock: then none are
        // dropped), before the emergency reserve.
        if super::pagecache::try_shrink() > 0 {
            let ptr = attempt(false);
            if !ptr.is_null() {
                return ptr;
            }
        }
        attempt(true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(ptr) = NonNull::new(ptr) else {
            return;
        };
        if boot_region().contains(&(ptr.as_ptr() as usize)) {
            if let Some(heap) = self.boot.lock().as_mut() {
                // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc`
                // with this layout; its address says the boot heap.
                unsafe { heap.deallocate(ptr, layout) };
            }
            return;
        }
        // Fast path: into this CPU's magazine.
        // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
        // this layout and is given up.
        if unsafe { super::percpu::try_free_object(ptr, layout) } {
            return;
        }
        super::percpu::with_objects(|cpu| {
            frames::with(|m| {
                let result = match cpu {
                    // SAFETY: as above.
                    Some(c) => unsafe {
                        c.free_slow(ptr, layout, &mut m.slab, &mut m.buddy, &DirectMap)
                    },
                    None => m.slab.dealloc(ptr, layout, &mut m.buddy, &DirectMap),
                };
                if let Err(e) = result {
                    // A double free or an overrun: memory is already corrupt.
                    panic!("kernel heap: {e}");
                }
            })
        })
    }
}
