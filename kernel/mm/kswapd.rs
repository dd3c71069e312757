//! Background reclaim (Linux's kswapd, `mm/vmscan.c`): the zone's
//! watermarks and the reclaim a kernel thread does between them.
//!
//! - **Watermarks** ([`mmcore::watermark`], Linux's formulas): a user page
//!   is only handed out while free pages stay above **min** (the kernel's
//!   own allocations may go below it, so reclaim, which needs memory to
//!   write a page out, never deadlocks for want of a frame); below min the
//!   faulting process reclaims directly (`fault` → `reclaim_for_user`).
//! - An allocation that leaves free pages below **low** wakes kswapd
//!   ([`wake`]), which frees clean page-cache pages and swaps anonymous
//!   pages out in batches until free pages are back at **high**, then
//!   sleeps. A process allocating steadily thus finds free memory ready
//!   instead of stalling in direct reclaim.
//! - A run that frees nothing (no swap and nothing clean to drop, or swap
//!   full) ends at once, and wakes are ignored for [`BACKOFF_TICKS`]: a
//!   process allocating at the edge of memory does not keep kswapd busy for
//!   nothing (Linux stops waking a node's kswapd after
//!   `MAX_RECLAIM_RETRIES` fruitless runs the same way).
//!
//! The thread itself (its sleep and start) is `proc::kswapd`'s; `mm` only
//! calls up through the wake hook.
//!
//! Locking: [`wake`] may run anywhere a user page is allocated, locks held
//! or not: it neither allocates nor waits for a lock (an atomic flag, then
//! the scheduler's `wake_from_anywhere`, which only *tries* its lock and
//! otherwise leaves the wake to the next timer tick). [`balance`] runs in
//! the kswapd thread with no lock held, as direct reclaim does, and like
//! direct reclaim (which runs inside the page-fault handler) with
//! interrupts off during each batch: see the comment there.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mmcore::watermark::Watermarks;

use super::reclaim::{self, Reclaimer};
use super::{frames, pagecache, vmstat};
use crate::arch::hook::Hook;
use crate::arch::sync::IrqOff;

static WATERMARKS: spin::Once<Watermarks> = spin::Once::new();

/// Set by [`wake`], cleared when a run starts: the thread sleeps only
/// while it is clear, so no wake is lost.
static WANTED: AtomicBool = AtomicBool::new(false);
/// Tick before which wakes are ignored (after a run that freed nothing).
static BACKOFF_UNTIL: AtomicU64 = AtomicU64::new(0);
/// Cleared to leave all reclaim to the faulting processes (measurements:
/// the same workload with and without kswapd, in one boot).
static ENABLED: AtomicBool = AtomicBool::new(true);
/// Makes the kswapd thread runnable (installed by `proc::kswapd`).
static WAKE: Hook<fn()> = Hook::empty();

/// How long wakes are ignored after a run that freed nothing (1 s).
pub const BACKOFF_TICKS: u64 = crate::time::TICK_HZ;

/// Computes the watermarks for the memory the allocator manages (after
/// `frames::init`).
pub fn init() {
    let managed = frames::with(|m| m.buddy.managed_pages());
    WATERMARKS.call_once(|| Watermarks::for_managed(managed));
}

/// The zone's watermarks, in pages.
pub fn watermarks() -> Watermarks {
    *WATERMARKS.get().expect("mm::kswapd::init ran")
}

/// [`watermarks`], or `None` before `init` ran.
pub fn try_watermarks() -> Option<Watermarks> {
    WATERMARKS.get().copied()
}

/// Installs the function that wakes the kswapd thread.
pub fn set_wake_hook(hook: fn()) {
    WAKE.set(hook);
}

/// Free memory fell below the low watermark: wakes kswapd unless it is
/// already awake or backing off. Safe from any context (see the module's
/// locking note).
pub fn wake() {
    if !ENABLED.load(Ordering::Relaxed)
        || WANTED.load(Ordering::Relaxed)
        || crate::time::ticks() < BACKOFF_UNTIL.load(Ordering::Relaxed)
    {
        return;
    }
    WANTED.store(true, Ordering::SeqCst);
    if let Some(hook) = WAKE.get() {
        hook();
    }
}

/// Turns background reclaim on (the default) or off: off, allocations
/// below low no longer wake kswapd, and only direct reclaim frees memory.
/// Returns the old setting.
pub fn set_enabled(on: bool) -> bool {
    ENABLED.swap(on, Ordering::SeqCst)
}

/// Whether a wake is waiting for the thread.
pub fn wanted() -> bool {
    WANTED.load(Ordering::SeqCst)
}

/// The largest batch one reclaim call is asked for.
const BATCH: u64 = reclaim::BATCH;

/// One kswapd run (Linux's `balance_pgdat`): reclaims until free pages
/// reach the high watermark, or nothing more can be freed. Returns the
/// pages freed.
pub fn balance() -> u64 {
    WANTED.store(false, Ordering::SeqCst);
    vmstat::PAGEOUTRUN.inc();
    let high = watermarks().high;
    let mut freed = 0;
    loop {
        let free = frames::free_pages();
        if free >= high {
            return freed;
        }
        let want = (high - free).min(BATCH);
        // One batch with interrupts off, as direct reclaim runs (inside
        // the page-fault handler's interrupt gate): reclaim takes other
        // processes' address-space locks with a plain `try_lock`, and must
        // not be preempted holding one — their owner's fault handler would
        // spin on it with interrupts off, for ever. The timer preempts
        // kswapd between batches.
        let (cache, anon) = {
            let _irq = IrqOff::new();
            // Clean page-cache pages first: they cost nothing to drop.
            let cache = pagecache::try_shrink();
            let anon = if cache < want {
                reclaim::reclaim_by(want - cache, Reclaimer::Kswapd)
            } else {
                0
            };
            (cache, anon)
        };
        vmstat::PGSCAN_KSWAPD.add(cache);
        vmstat::PGSTEAL_KSWAPD.add(cache);
        if cache + anon == 0 {
            // Nothing reclaimable (no swap, swap full, or every page in
            // use right now): sleep, and let wakes pass for a while.
            BACKOFF_UNTIL.store(crate::time::ticks() + BACKOFF_TICKS, Ordering::SeqCst);
            return freed;
        }
        freed += cache + anon;
    }
}
