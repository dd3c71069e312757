//! Event counters with the meaning of Linux's `/proc/vmstat` fields.
//!
//! Per CPU, as Linux's `vm_event_states`: an event adds to the counter of
//! the CPU it happens on (its own cache line: the page-fault path of two
//! CPUs never writes one line between them), and a read sums every CPU's.
//! A read is therefore not one instant (an event on another CPU may or may
//! not be in it), as in Linux; every count only grows.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::percpu::MAX_CPUS;

/// How many counters there are (the `Counter` statics below number
/// themselves 0 .. COUNTERS).
const COUNTERS: usize = 23;

/// One CPU's counters, alone on their cache lines.
#[repr(align(64))]
struct CpuEvents([AtomicU64; COUNTERS]);

static EVENTS: [CpuEvents; MAX_CPUS] =
    [const { CpuEvents([const { AtomicU64::new(0) }; COUNTERS]) }; MAX_CPUS];

/// One event counter: an index into every CPU's [`CpuEvents`].
pub struct Counter(usize);

impl Counter {
    const fn new(index: usize) -> Counter {
        assert!(index < COUNTERS);
        Counter(index)
    }

    /// Counts one event on this CPU.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Counts `n` on this CPU. An atomic add: an interrupt on this CPU may
    /// count the same event in between, and a reader on another CPU reads
    /// the word at any time; but the line is this CPU's, so it never moves.
    #[inline]
    pub fn add(&self, n: u64) {
        let cpu = crate::arch::percpu::cpu_index();
        EVENTS[cpu].0[self.0].fetch_add(n, Ordering::Relaxed);
    }

    /// The sum over every CPU.
    pub fn get(&self) -> u64 {
        EVENTS
            .iter()
            .map(|c| c.0[self.0].load(Ordering::Relaxed))
            .sum()
    }
}

/// Page faults of any kind (`pgfault`).
pub static PGFAULT: Counter = Counter::new(0);
/// Faults that had to read a file page in (`pgmajfault`).
pub static PGMAJFAULT: Counter = Counter::new(1);
/// First reads of anonymous memory answered with the shared zero page.
pub static ZERO_PAGE_MAPS: Counter = Counter::new(2);
/// Demand-zero faults that allocated a fresh page.
pub static DEMAND_ZERO: Counter = Counter::new(3);
/// Copy-on-write faults that copied the page (`cow_copy`).
pub static COW_COPY: Counter = Counter::new(4);
/// Copy-on-write faults that found the page no longer shared and only
/// restored write access.
pub static COW_REUSE: Counter = Counter::new(5);
/// Faults that grew a stack region downwards.
pub static STACK_GROW: Counter = Counter::new(6);
/// Faults refused: the access became a segmentation fault or -EFAULT.
pub static SEGV: Counter = Counter::new(7);
/// Processes killed because a fault found no free frame (`oom_kill`): the
/// OOM killer's victims (`proc::oom`), the faulting process included.
pub static OOM_KILL: Counter = Counter::new(8);

/// Pages read in from swap (Linux's `pswpin`).
pub static PSWPIN: Counter = Counter::new(9);
/// Pages written out to swap (`pswpout`).
pub static PSWPOUT: Counter = Counter::new(10);
/// Pages direct reclaim looked at (`pgscan_direct`).
pub static PGSCAN_DIRECT: Counter = Counter::new(11);
/// Pages direct reclaim freed (`pgsteal_direct`).
pub static PGSTEAL_DIRECT: Counter = Counter::new(12);
/// Allocations that had to reclaim first (`allocstall`).
pub static ALLOCSTALL: Counter = Counter::new(13);
/// Pages background reclaim looked at (`pgscan_kswapd`).
pub static PGSCAN_KSWAPD: Counter = Counter::new(14);
/// Pages background reclaim freed (`pgsteal_kswapd`).
pub static PGSTEAL_KSWAPD: Counter = Counter::new(15);
/// Pages reclaim found in use and moved to an active list (`pgactivate`).
pub static PGACTIVATE: Counter = Counter::new(16);
/// Anonymous pages brought back whose eviction left a shadow
/// (`workingset_refault_anon`).
pub static WORKINGSET_REFAULT_ANON: Counter = Counter::new(17);
/// Of those, the ones the refault test put straight on the active list:
/// they were evicted too early (`workingset_activate_anon`).
pub static WORKINGSET_ACTIVATE_ANON: Counter = Counter::new(18);
/// File pages read in again whose drop left a shadow
/// (`workingset_refault_file`).
pub static WORKINGSET_REFAULT_FILE: Counter = Counter::new(19);
/// Of those, the ones put straight on the active list
/// (`workingset_activate_file`).
pub static WORKINGSET_ACTIVATE_FILE: Counter = Counter::new(20);
/// kswapd runs (`pageoutrun`): one per wake that found work.
pub static PAGEOUTRUN: Counter = Counter::new(21);

/// TSC cycles spent inside the page-fault handler (entry to exit of the
/// Rust code, excluding the CPU's exception delivery and `iretq`): lets the
/// benchmarks split a fault's cost between the kernel and the machine.
pub static FAULT_HANDLER_CYCLES: Counter = Counter::new(22);

/// A copy of every counter, for tests and the `vmstat` command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pgfault: u64,
    pub pgmajfault: u64,
    pub zero_page_maps: u64,
    pub demand_zero: u64,
    pub cow_copy: u64,
    pub cow_reuse: u64,
    pub stack_grow: u64,
    pub segv: u64,
    pub oom_kill: u64,
    pub pswpin: u64,
    pub pswpout: u64,
    pub pgscan_direct: u64,
    pub pgsteal_direct: u64,
    pub allocstall: u64,
    pub pgscan_kswapd: u64,
    pub pgsteal_kswapd: u64,
    pub pgactivate: u64,
    pub workingset_refault_anon: u64,
    pub workingset_activate_anon: u64,
    pub workingset_refault_file: u64,
    pub workingset_activate_file: u64,
    pub pageoutrun: u64,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        pgfault: PGFAULT.get(),
        pgmajfault: PGMAJFAULT.get(),
        zero_page_maps: ZERO_PAGE_MAPS.get(),
        demand_zero: DEMAND_ZERO.get(),
        cow_copy: COW_COPY.get(),
        cow_reuse: COW_REUSE.get(),
        stack_grow: STACK_GROW.get(),
        segv: SEGV.get(),
        oom_kill: OOM_KILL.get(),
        pswpin: PSWPIN.get(),
        pswpout: PSWPOUT.get(),
        pgscan_direct: PGSCAN_DIRECT.get(),
        pgsteal_direct: PGSTEAL_DIRECT.get(),
        allocstall: ALLOCSTALL.get(),
        pgscan_kswapd: PGSCAN_KSWAPD.get(),
        pgsteal_kswapd: PGSTEAL_KSWAPD.get(),
        pgactivate: PGACTIVATE.get(),
        workingset_refault_anon: WORKINGSET_REFAULT_ANON.get(),
        workingset_activate_anon: WORKINGSET_ACTIVATE_ANON.get(),
        workingset_refault_file: WORKINGSET_REFAULT_FILE.get(),
        workingset_activate_file: WORKINGSET_ACTIVATE_FILE.get(),
        pageoutrun: PAGEOUTRUN.get(),
    }
}

impl Snapshot {
    /// Counter increases since `earlier`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            pgfault: self.pgfault - earlier.pgfault,
            pgmajfault: self.pgmajfault - earlier.pgmajfault,
            zero_page_maps: self.zero_page_maps - earlier.zero_page_maps,
            demand_zero: self.demand_zero - earlier.demand_zero,
            cow_copy: self.cow_copy - earlier.cow_copy,
            cow_reuse: self.cow_reuse - earlier.cow_reuse,
            stack_grow: self.stack_grow - earlier.stack_grow,
            segv: self.segv - earlier.segv,
            oom_kill: self.oom_kill - earlier.oom_kill,
            pswpin: self.pswpin - earlier.pswpin,
            pswpout: self.pswpout - earlier.pswpout,
            pgscan_direct: self.pgscan_direct - earlier.pgscan_direct,
            pgsteal_direct: self.pgsteal_direct - earlier.pgsteal_direct,
            allocstall: self.allocstall - earlier.allocstall,
            pgscan_kswapd: self.pgscan_kswapd - earlier.pgscan_kswapd,
            pgsteal_kswapd: self.pgsteal_kswapd - earlier.pgsteal_kswapd,
            pgactivate: self.pgactivate - earlier.pgactivate,
            workingset_refault_anon: self.workingset_refault_anon - earlier.workingset_refault_anon,
            workingset_activate_anon: self.workingset_activate_anon
                - earlier.workingset_activate_anon,
            workingset_refault_file: self.workingset_refault_file - earlier.workingset_refault_file,
            workingset_activate_file: self.workingset_activate_file
                - earlier.workingset_activate_file,
            pageoutrun: self.pageoutrun - earlier.pageoutrun,
        }
    }
}

// Snapshots for the shell's views: each is taken under the locks it needs
// and copied out, so no view runs its own code under an mm lock except the
// block visitor (which must not allocate).

use mmcore::buddy::{BlockInfo, BlockState, BuddyStats};
use mmcore::slab::CacheInfo;
use mmcore::{FrameKind, Pfn};

use super::frames;
use crate::arch::sync::IrqOff;

/// Everything `meminfo`, `free` and `vmstat` show, read at one moment.
#[derive(Clone, Debug)]
pub struct MemSnapshot {
    pub buddy: BuddyStats,
    /// Frames of heap allocations bigger than the largest kmalloc class.
    pub kmalloc_large: u64,
    /// Page-cache frames some process maps (reference count above 1).
    pub file_mapped: u64,
    /// Pages mapped in the vmalloc area (kernel stacks).
    pub vmalloc_used: u64,
    /// Ramdisk pages of the cache no process maps (could be dropped).
    pub reclaimable: u64,
    /// Resident pages of shared anonymous objects (`Shmem`: cached, on the
    /// anon LRU lists).
    pub shmem: u64,
    /// Pages on the LRU lists: `[anon, file]` × `[active, inactive]`.
    pub lru: [[u64; 2]; 2],
    /// Swap pages: (total, used, in the swap cache).
    pub swap: (u64, u64, u64),
}

/// A consistent [`MemSnapshot`]: interrupts stay off across the three
/// reads, so no process runs in between (the locks are taken one after
/// the other, never nested: the cache's, then the frames lock).
pub fn mem_snapshot() -> MemSnapshot {
    let _irq = IrqOff::new();
    let vmalloc_used = super::vmalloc::used_pages();
    let reclaimable = super::pagecache::reclaimable_pages();
    let shmem = super::pagecache::anonymous_objects().1;
    frames::with(|m| {
        let (_, kmalloc_large) = m.slab.large_stats();
        let mut file_mapped = 0;
        for block in m.buddy.blocks() {
            if block.state == BlockState::Allocated(FrameKind::UserFile)
                && frames::refcount(block.pfn) > 1
            {
                file_mapped += 1 << block.order;
            }
        }
        let mut buddy = m.buddy.stats();
        super::percpu::adjust_stats(&mut buddy);
        MemSnapshot {
            buddy,
            kmalloc_large,
            file_mapped,
            vmalloc_used,
            reclaimable,
            shmem,
            lru: lru_lengths(m),
            swap: super::swap::usage_locked(m),
        }
    })
}

fn lru_lengths(m: &frames::PhysicalMemory) -> [[u64; 2]; 2] {
    use reclaimcore::Kind;
    let lru = m.ext.lru();
    [Kind::Anon, Kind::File].map(|k| [lru.active_len(k) as u64, lru.inactive_len(k) as u64])
}

/// The LRU lists' lengths (`[anon, file]` × `[active, inactive]`) and swap
/// (total, used, cached), read in one go (cheap: for views refreshed
/// often, like `mmview`).
pub fn lru_and_swap() -> ([[u64; 2]; 2], (u64, u64, u64)) {
    frames::with(|m| (lru_lengths(m), super::swap::usage_locked(m)))
}

/// Copies every slab cache's statistics into `list`, up to its capacity
/// (made by the caller: allocating under the frames lock would deadlock).
pub fn slab_caches(list: &mut alloc::vec::Vec<CacheInfo>) {
    frames::with(|m| {
        for cache in m.slab.caches() {
            if list.len() < list.capacity() {
                list.push(cache);
            }
        }
    });
}

/// The frames the allocator describes: `(first pfn, count)`.
pub fn frame_span() -> (u64, u64) {
    frames::with(|m| {
        let base = m.buddy.base_pfn().0;
        (base, m.buddy.end_pfn().0 - base)
    })
}

/// Owner and reference count of one frame, read together.
pub fn frame_info(pfn: Pfn) -> (FrameKind, u16) {
    let (kind, refs) = frames::with(|m| (m.buddy.kind(pfn), m.buddy.refcount(pfn)));
    match kind {
        // User frames count their references atomically.
        FrameKind::UserAnon | FrameKind::UserFile => (kind, frames::refcount(pfn)),
        _ => (kind, refs),
    }
}

/// [`visit_blocks`], also telling for each block whether it is a user
/// page on an active LRU list.
///
/// Returns the frames on the CPUs' page lists at that moment (allocated
/// blocks to the buddy allocator, free in meminfo), read under the same lock.
pub fn visit_blocks_lru(mut f: impl FnMut(BlockInfo, bool)) -> u64 {
    frames::with(|m| {
        for block in m.buddy.blocks() {
            let active = block.order == 0
                && matches!(
                    block.state,
                    BlockState::Allocated(FrameKind::UserAnon | FrameKind::UserFile)
                )
                && m.ext.is_active(block.pfn);
            f(block, active);
        }
        super::percpu::pages_held().iter().sum()
    })
}

/// Calls `f` for every block the allocator describes, in address order,
/// under the frames lock: `f` must not allocate (the heap takes that lock)
/// and should be quick (interrupts are off).
pub fn visit_blocks(f: impl FnMut(BlockInfo)) {
    frames::with(|m| m.buddy.blocks().for_each(f));
}
