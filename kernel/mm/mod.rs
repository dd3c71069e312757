//! Memory management: the address layout, physical frames (buddy), the
//! kernel heap (slab) and page tables.
//!
//! # Locking
//!
//! Preemptive kernel on several CPUs (docs/locking.md has what SMP adds:
//! per-CPU state, TLB shootdowns and the rules for waiting on other
//! CPUs): the timer may switch processes whenever interrupts are on. Every lock below except the address-space lock is an
//! [`IrqMutex`](crate::arch::sync::IrqMutex): `lock()` saves RFLAGS.IF and
//! disables interrupts, the guard restores them on drop, so no interrupt
//! handler and no other process can run while it is held, and taking it
//! where interrupts are already off (handlers, `schedule`) nests. Lock
//! statics are private; other modules go through functions, and the shell
//! reads copies ([`vmstat::mem_snapshot`], [`vmstat::slab_caches`],
//! [`vmstat::frame_info`], ...).
//!
//! | lock | guards |
//! |---|---|
//! | address space (`Arc<spin::Mutex<AddressSpace>>`, [`aspace`]) | one process's regions, page tables and page-cache holds |
//! | `JOBS` ([`shell::procs`](crate::shell::procs)) | the shell's background jobs |
//! | `DECODER` ([`drivers::keyboard`](crate::drivers::keyboard)) | scancode decoder state (IRQ 1) |
//! | `SCHED` ([`proc::sched`](crate::proc::sched)) | the process table, run queue, current pid (timer IRQ) |
//! | `CURRENT` ([`aspace`]), one per CPU | which address space this CPU has loaded (read by the #PF handler) |
//! | `CACHE` ([`pagecache`]) | the page cache's global work: registering a file (a slot in the file table), reclaim's sweeps over every file (the CLOCK hand) |
//! | a file's lock ([`pagecache`], one per file, rank `CACHE_FILE`) | one cache file: its radix tree (the fault path's lookup), shadows, reverse map, users, swapped pages |
//! | `KERNEL_TABLES` ([`pgtable`]) | the kernel's page tables (vmalloc maps into them) |
//! | `AREA` ([`vmalloc`]) | the vmalloc area's free ranges and usage |
//! | `INPUT` ([`proc::console`](crate::proc::console)) | console input bytes (serial and keyboard IRQs) |
//! | `CAPTURE` ([`klog`](crate::klog)), `CONSOLE` ([`drivers::fbcon`](crate::drivers::fbcon)), `PORT` ([`drivers::serial`](crate::drivers::serial)) | output capture, framebuffer console, COM1 |
//! | `DISK` ([`drivers::virtio_blk`](crate::drivers::virtio_blk)), `MMIO`, `BOUNCE` ([`dma`]) | the parked swap disk; device-register windows; DMA bounce slots (leaves: nothing is taken under them) |
//! | `MEMORY`, "the frames lock" ([`frames`]) | buddy allocator, frame metadata, the LRU and reverse maps, the swap cache, and the slab heap (a fault's user page comes from a per-CPU list and reaches the LRU through a per-CPU batch, both refilled/applied under it a batch at a time: [`percpu`]). User frames' reference counts are atomic ([`frame_ref`], `mmcore::pageref`): taking one from a held one and dropping one that is not the last need no lock; the last drop frees under it |
//! | `RESERVE`, boot heap ([`heap`]), `STATE` ([`failslab`]) | the heap's emergency reserve, the boot heap, failure injection |
//! | `PSI` ([`psi`]) | memory-pressure task counts and figures (a leaf: taken alone or under `SCHED`) |
//! | `KILLER` ([`proc::oom`](crate::proc::oom)) | the OOM killer's owner and last victim (a leaf: taken alone; the killer itself runs from the fault path with no lock held, and may sleep) |
//!
//! **Order.** A lock may be taken while holding only locks *above* it in
//! the table, never one below it (not every pair nests; none nests the
//! other way round). The frames lock is the innermost lock but for the
//! last rows, which nest only inside it (the reserve) or are leaves. The
//! ones that nest today: address space -> a file's lock -> frames (faults
//! that read a page in; a cache hit takes only the file's lock);
//! `CACHE` -> a file's lock (registration, reclaim's sweeps; one file
//! lock at a time); address space -> frames (faults,
//! fork through `LockedFrameTables`, teardown); `KERNEL_TABLES` -> frames
//! (table allocation); `AREA` -> frames (its list grows on the heap);
//! `JOBS` -> `SCHED`; `SCHED` -> `CURRENT` (`schedule`); `SCHED` -> `PSI`
//! (the scheduler's reports); `DECODER` -> `INPUT`; `CAPTURE`/`CONSOLE` ->
//! frames (they allocate); frames -> `RESERVE`.
//!
//! **Rules** (each was written only at its call site before):
//! - *No heap allocation under the frames lock* (nor under `RESERVE`, the
//!   boot heap's or failslab's lock): the heap takes the frames lock, and
//!   a spin lock is not recursive. Make room first (`kalloc::try_*`), copy
//!   under the lock. For the same reason nothing prints under the frames
//!   lock: printing may allocate (the capture buffer, the framebuffer's
//!   held text).
//! - *Never hold your own address-space lock across a user copy.*
//!   `uaccess` takes it to check the range, and a fault inside the copy
//!   takes it again in the #PF handler: the process deadlocks on itself.
//!   Decide under the lock, drop the guard, then copy.
//! - The address-space lock is a plain spin lock: its owner (a system
//!   call, its own page fault) holds it with interrupts on and may be
//!   preempted holding it. Anyone else (the shell, inspection) takes it
//!   with [`try_lock_irq_off`](crate::arch::sync::try_lock_irq_off) and
//!   yields while it is busy (`shell::procs::with_aspace`), so the owner's
//!   fault handler never finds it held by someone who was switched out.
//!   The scheduler never locks an address space (it caches the root).
//! - *Threads of one process make new pages unlocked* ([`fault`]): a
//!   fault in an address space shared by threads, while another CPU runs
//!   it, first decides under the lock; a demand-zero fill or a private
//!   copy of a file page stops there (changing nothing), the frame is
//!   cleared or copied with the lock released (a copy's source page held
//!   by a reference), and a second locked pass decides again and installs
//!   it only if the page still wants it (else it is freed after the
//!   unlock). Anonymous copy-on-write copies stay under the lock; other
//!   spaces take one pass.
//! - The last reference to an address space is dropped with no lock held
//!   (teardown takes file locks and the frames lock): `sched` drops it after
//!   releasing `SCHED`, and the switch away from a dying space keeps a
//!   reference until then.
//! - Page-cache frames are allocated with neither `CACHE` nor a file's
//!   lock held: allocating may reclaim cache pages. Reclaim from the
//!   allocator's failure path (`pagecache::try_shrink`) only *tries*
//!   `CACHE` and each file's lock, so an allocation made under one finds
//!   nothing to reclaim there instead of deadlocking.
//! - The page cache's reverse-map walks (`pagecache::unmap_page_everywhere`,
//!   `page_referenced`, `shrink`) hold the page's file lock (and `CACHE`
//!   for a sweep) and only *try* the address-space locks under it (a busy
//!   space keeps its page), so they never wait against the usual address
//!   space -> file lock order of a fault; they list the address spaces
//!   before taking either and drop the list after.
//! - *A reference to a user frame is taken only from one held* (a leaf, a
//!   cache index entry under its file's lock, the swap cache under the
//!   frames lock) or, for a frame found on the LRU, under the frames lock
//!   with a get that refuses a zero count (the frame's last holder is
//!   about to free it under that lock). So a count checked under the lock
//!   of the only structure that holds the frame (the cache's "only the
//!   index holds it" under the file's lock) cannot grow meanwhile.
//! - Interrupt handlers never allocate: the queues they fill (`INPUT`,
//!   `SCHED`'s run queue) are sized beforehand.
//! - *Waking kswapd is allowed under any lock* ([`kswapd::wake`], called
//!   by the user-page allocator after it dropped the frames lock, but
//!   safe under it too): it sets an atomic flag and only *tries* `SCHED`
//!   (`sched::wake_from_anywhere`); if `SCHED` is held (by the context it
//!   interrupted, or this one), the next timer tick makes kswapd runnable.
//!   So frames -> `SCHED` is never a wait, and the usual order (`SCHED`
//!   above frames: the spawn path reserves run-queue room under `SCHED`)
//!   stands. kswapd itself reclaims with no lock held, as direct reclaim
//!   does, and with interrupts off during each batch as direct reclaim
//!   (inside the #PF handler, an interrupt gate) is: reclaim takes other
//!   processes' address-space locks with a plain `try_lock`, and a holder
//!   preempted with one would leave that process's fault handler spinning
//!   on it with interrupts off (the hang the first kswapd had).
//! - Only the fatal-error path breaks a lock (the consoles'), with the
//!   [`Fatal`](crate::arch::sync::Fatal) token: it never returns to the
//!   holder it interrupted.
//!
//! Physical memory is read and written through [`direct`], the one module
//! of `mm` that dereferences the direct map (the page-table code still has
//! a few sites of its own that move there next).

pub mod aspace;
pub mod commit;
pub mod direct;
pub mod dma;
pub mod failslab;
pub mod fault;
pub mod frame_ref;
pub mod frames;
pub mod heap;
pub mod kalloc;
pub mod kswapd;
pub mod layout;
pub mod pagecache;
pub mod pageext;
pub mod paging;
pub mod percpu;
pub mod pgtable;
pub mod psi;
pub mod reclaim;
pub mod swap;
pub mod swapoff;
pub mod uaccess;
pub mod vmalloc;
pub mod vmstat;

pub fn init(_: &crate::boot::Boot) {
    paging::init();
    crate::time::calibrate_tsc();
    frames::init(crate::boot::facts().memory_regions);
    kswapd::init();
    heap::switch_to_slab();
    pgtable::init();
    vmalloc::init();
    aspace::zero_page();
    fault::init();
}
