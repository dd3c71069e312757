//! The kernel heap (`GlobalAlloc`).
//!
//! Until the frame allocator exists, allocations come from a boot heap: a
//! static region managed by `linked_list_allocator`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use spin::Mutex;

const BOOT_HEAP_SIZE: usize = 1024 * 1024;

#[repr(C, align(4096))]
struct BootHeapRegion([u8; BOOT_HEAP_SIZE]);

static mut BOOT_HEAP_REGION: BootHeapRegion = BootHeapRegion([0; BOOT_HEAP_SIZE]);

struct KernelHeap {
    boot: Mutex<Option<Heap>>,
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap {
    boot: Mutex::new(None),
};

/// Gives the boot heap its region; called first thing in `init`.
pub fn init_boot_heap() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut boot = HEAP.boot.lock();
        if boot.is_some() {
            return;
        }
        // SAFETY: the region is only ever handed to this one heap, once
        // (guarded by the `is_some` check under the lock).
        let heap = unsafe {
            let start = core::ptr::addr_of_mut!(BOOT_HEAP_REGION) as *mut u8;
            Heap::new(start, BOOT_HEAP_SIZE)
        };
        *boot = Some(heap);
    });
}

/// Bytes in use in the boot heap.
pub fn boot_heap_used() -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| {
        HEAP.boot.lock().as_ref().map_or(0, |h| h.used())
    })
}

// SAFETY: all state is behind a spin lock taken with interrupts disabled, so
// an interrupt handler that allocates cannot deadlock against its own CPU.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        x86_64::instructions::interrupts::without_interrupts(|| match self.boot.lock().as_mut() {
            Some(heap) => heap
                .allocate_first_fit(layout)
                .map_or(core::ptr::null_mut(), |p| p.as_ptr()),
            None => core::ptr::null_mut(),
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        x86_64::instructions::interrupts::without_interrupts(|| {
            if let (Some(heap), Some(ptr)) = (self.boot.lock().as_mut(), NonNull::new(ptr)) {
                // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with
                // this layout, i.e. from this heap.
                unsafe { heap.deallocate(ptr, layout) };
            }
        })
    }
}
