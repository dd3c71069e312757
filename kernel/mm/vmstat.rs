//! Event counters with the meaning of Linux's `/proc/vmstat` fields.

use core::sync::atomic::{AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Page faults of any kind (`pgfault`).
pub static PGFAULT: Counter = Counter::new();
/// Faults that had to read a file page in (`pgmajfault`).
pub static PGMAJFAULT: Counter = Counter::new();
/// First reads of anonymous memory answered with the shared zero page.
pub static ZERO_PAGE_MAPS: Counter = Counter::new();
/// Demand-zero faults that allocated a fresh page.
pub static DEMAND_ZERO: Counter = Counter::new();
/// Copy-on-write faults that copied the page (`cow_copy`).
pub static COW_COPY: Counter = Counter::new();
/// Copy-on-write faults that found the page no longer shared and only
/// restored write access.
pub static COW_REUSE: Counter = Counter::new();
/// Faults that grew a stack region downwards.
pub static STACK_GROW: Counter = Counter::new();
/// Faults refused: the access became a segmentation fault or -EFAULT.
pub static SEGV: Counter = Counter::new();
/// Processes killed because a fault found no free frame (`oom_kill`).
pub static OOM_KILL: Counter = Counter::new();

/// TSC cycles spent inside the page-fault handler (entry to exit of the
/// Rust code, excluding the CPU's exception delivery and `iretq`): lets the
/// benchmarks split a fault's cost between the kernel and the machine.
pub static FAULT_HANDLER_CYCLES: Counter = Counter::new();

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

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
        }
    }
}
