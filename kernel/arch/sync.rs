//! The kernel's spin lock: [`IrqMutex`], a `spin::Mutex` whose guard keeps
//! interrupts off while it is held.
//!
//! On one CPU a spin lock is only a deadlock hazard if the holder can be
//! interrupted by code that takes the same lock (an interrupt handler, or
//! the timer switching to a process whose fault handler needs it). Taking
//! the lock with interrupts off rules both out. `lock` saves RFLAGS.IF,
//! disables interrupts, and the guard restores the saved state when it is
//! dropped (after releasing the lock), so guards nest and a lock taken
//! where interrupts are already off (an interrupt handler, `schedule`)
//! leaves them off.
//!
//! Every lock in the kernel that an interrupt handler, the page-fault
//! handler or the scheduler may take is an `IrqMutex`. The one exception is
//! the address-space lock (`Arc<spin::Mutex<AddressSpace>>`): its owner
//! holds it with interrupts on for as long as a system call runs (it may
//! be preempted); anyone else takes it with [`try_lock_irq_off`] and
//! yields while it is busy (see the "Locking" section of `mm`).
//!
//! With several CPUs a waiter spins with interrupts off, so while it
//! spins it answers TLB shootdowns addressed to it (`tlb::poll`): the
//! holder may be waiting for exactly that.
//!
//! The fatal-error path may break a lock whose holder it interrupted, with
//! a [`Fatal`] token: the only unsafe operation here.
//!
//! **Statistics** (`/proc/lock_stat`, Linux's names): every lock counts its
//! acquisitions (one plain add by the holder, on a line it owns anyway),
//! and only when a `lock` finds the lock held, a contention and the TSC
//! cycles it waited. The uncontended path reads no clock.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::interrupts;

/// Interrupts off until dropped; then back on only if they were on when it
/// was made. Not `Send`: RFLAGS belongs to the CPU that saved it.
pub struct IrqOff {
    was_enabled: bool,
    _not_send: PhantomData<*mut ()>,
}

impl IrqOff {
    /// Saves RFLAGS.IF and disables interrupts.
    pub fn new() -> Self {
        let was_enabled = interrupts::are_enabled();
        if was_enabled {
            interrupts::disable();
        }
        IrqOff {
            was_enabled,
            _not_send: PhantomData,
        }
    }
}

impl Default for IrqOff {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqOff {
    fn drop(&mut self) {
        if self.was_enabled {
            interrupts::enable();
        }
    }
}

/// A spin lock taken with interrupts off (see the module documentation).
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
    /// Place in the lock order (`mm`'s table), 0 for unranked; checked in
    /// debug builds (see [`rank`]).
    rank: u8,
    /// Acquisitions (`lock` and successful `try_lock`): written only by the
    /// holder, so a load and a store suffice.
    acquisitions: AtomicU64,
    /// `lock` calls that found the lock held, and the TSC cycles they spun.
    contentions: AtomicU64,
    wait_cycles: AtomicU64,
}

/// A lock's counters, read at one moment (each is monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockStat {
    pub acquisitions: u64,
    pub contentions: u64,
    /// TSC cycles spent waiting, over all contentions.
    pub wait_cycles: u64,
}

impl LockStat {
    /// Increases since `earlier`.
    pub fn since(&self, earlier: &LockStat) -> LockStat {
        LockStat {
            acquisitions: self.acquisitions - earlier.acquisitions,
            contentions: self.contentions - earlier.contentions,
            wait_cycles: self.wait_cycles - earlier.wait_cycles,
        }
    }
}

/// Holds an [`IrqMutex`] (or an address-space lock taken with
/// [`try_lock_irq_off`]); interrupts stay off until it is dropped.
pub struct IrqMutexGuard<'a, T> {
    // Field order is drop order: the lock is released first, then this
    // CPU's record of it, then the interrupt state restored.
    guard: spin::MutexGuard<'a, T>,
    _rank: Held,
    _irq: IrqOff,
}

/// The lock order, checked in debug builds: ranks follow the table in
/// `mm`'s "Locking" section (1 is the outermost). A lock of rank `r` may
/// be taken only while every ranked lock this CPU holds has a rank below
/// `r`. Each CPU keeps a bit per rank it holds (interrupts are off while
/// any `IrqMutex` is held, so only this CPU's code changes its bits); a
/// `lock` that breaks the order is counted and its pair remembered
/// ([`order_violations`]), and the tests assert there are none. A
/// `try_lock` never waits, so it cannot deadlock and is not checked, but
/// what it takes is recorded.
pub mod rank {
    pub const SCHED: u8 = 1;
    pub const CACHE: u8 = 2;
    /// Every page-cache file's own lock (one held at a time).
    pub const CACHE_FILE: u8 = 3;
    pub const KERNEL_TABLES: u8 = 4;
    pub const AREA: u8 = 5;
    pub const FRAMES: u8 = 6;
    pub const RESERVE: u8 = 7;
    pub const PSI: u8 = 8;
}

/// Broken-order `lock`s seen (debug builds; always 0 in release ones).
static ORDER_VIOLATIONS: AtomicU64 = AtomicU64::new(0);
/// The first one: (rank taken) << 8 | (highest rank held).
static FIRST_VIOLATION: AtomicU64 = AtomicU64::new(0);

/// Lock-order violations so far, and the first as (rank taken, highest
/// rank held then).
pub fn order_violations() -> (u64, Option<(u8, u8)>) {
    let first = FIRST_VIOLATION.load(Ordering::Relaxed);
    (
        ORDER_VIOLATIONS.load(Ordering::Relaxed),
        (first != 0).then_some(((first >> 8) as u8, first as u8)),
    )
}

/// This CPU holds a ranked lock: clears its bit when dropped.
struct Held(u8);

impl Held {
    /// Records `rank` as held by this CPU (interrupts are off), first
    /// checking the order if `check`.
    #[inline]
    fn take(rank: u8, check: bool) -> Held {
        if !cfg!(debug_assertions) || rank == 0 {
            return Held(0);
        }
        let Some(cpu) = super::percpu::current() else {
            return Held(0);
        };
        let held = cpu.locks_held.load(Ordering::Relaxed);
        let bit = 1u32 << rank;
        if held & bit != 0 {
            // Already held here (a ranked try_lock of a second lock of
            // the same rank): not recorded twice.
            return Held(0);
        }
        if check && held >> rank != 0 {
            let highest = 31 - held.leading_zeros();
            if ORDER_VIOLATIONS.fetch_add(1, Ordering::Relaxed) == 0 {
                FIRST_VIOLATION.store(u64::from(rank) << 8 | u64::from(highest), Ordering::Relaxed);
            }
        }
        cpu.locks_held.store(held | bit, Ordering::Relaxed);
        Held(rank)
    }
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        if self.0 != 0 {
            if let Some(cpu) = super::percpu::current() {
                cpu.locks_held
                    .fetch_and(!(1u32 << self.0), Ordering::Relaxed);
            }
        }
    }
}

impl<T> IrqMutex<T> {
    pub const fn new(value: T) -> Self {
        Self::ranked(value, 0)
    }

    /// A lock at `rank` in the lock order (see [`rank`]).
    pub const fn ranked(value: T, rank: u8) -> Self {
        IrqMutex {
            inner: spin::Mutex::new(value),
            rank,
            acquisitions: AtomicU64::new(0),
            contentions: AtomicU64::new(0),
            wait_cycles: AtomicU64::new(0),
        }
    }

    /// The lock's statistics so far.
    pub fn stat(&self) -> LockStat {
        LockStat {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contentions: self.contentions.load(Ordering::Relaxed),
            wait_cycles: self.wait_cycles.load(Ordering::Relaxed),
        }
    }

    /// Counts an acquisition; call holding the lock (the only writer).
    #[inline]
    fn acquired(&self) {
        let n = self.acquisitions.load(Ordering::Relaxed);
        self.acquisitions.store(n + 1, Ordering::Relaxed);
    }

    /// Disables interrupts (remembering whether they were on), then spins
    /// until the lock is free.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let irq = IrqOff::new();
        let guard = match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.lock_contended(),
        };
        self.held(guard, irq, true)
    }

    /// The guard of a lock just taken: counts the acquisition and records
    /// its rank (checking the order if `check`).
    #[inline]
    fn held<'a>(
        &'a self,
        guard: spin::MutexGuard<'a, T>,
        irq: IrqOff,
        check: bool,
    ) -> IrqMutexGuard<'a, T> {
        self.acquired();
        IrqMutexGuard {
            guard,
            _rank: Held::take(self.rank, check),
            _irq: irq,
        }
    }

    /// The slow path of [`lock`](Self::lock): spins (interrupts already
    /// off) until the lock is free, and counts the wait.
    #[cold]
    fn lock_contended(&self) -> spin::MutexGuard<'_, T> {
        let start = crate::time::rdtsc();
        let guard = loop {
            if let Some(guard) = self.inner.try_lock() {
                break guard;
            }
            // Another CPU holds it, and may be waiting for this CPU to
            // answer a TLB shootdown (it cannot arrive: interrupts are
            // off): answer it here (`tlb`).
            super::tlb::poll();
            core::hint::spin_loop();
        };
        let waited = crate::time::rdtsc().wrapping_sub(start);
        self.contentions.fetch_add(1, Ordering::Relaxed);
        self.wait_cycles.fetch_add(waited, Ordering::Relaxed);
        guard
    }

    /// Like [`lock`](Self::lock), but `None` at once if the lock is held.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let irq = IrqOff::new();
        let guard = self.inner.try_lock()?;
        Some(self.held(guard, irq, false))
    }

    /// Runs `f` on the locked value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }

    /// Releases the lock whatever holds it. Only the fatal-error path can
    /// do this: it never returns to the holder it interrupted.
    pub fn force_unlock(&self, _: &Fatal) {
        // SAFETY: the `Fatal` token proves interrupts are off and the code
        // holding the guard will never run again, so nothing uses the
        // guard's exclusive access after the lock is released here.
        unsafe { self.inner.force_unlock() };
    }
}

/// Takes `lock` with interrupts off if it is free: for the address-space
/// lock, whose owner holds it with interrupts on (so waiting for it with
/// interrupts off could wait forever: yield and retry instead).
pub fn try_lock_irq_off<T>(lock: &spin::Mutex<T>) -> Option<IrqMutexGuard<'_, T>> {
    let irq = IrqOff::new();
    lock.try_lock().map(|guard| IrqMutexGuard {
        guard,
        _rank: Held(0),
        _irq: irq,
    })
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// Proof that the caller is on the fatal-error path: interrupts are off,
/// only this CPU runs, and the interrupted code never resumes. Lets
/// [`IrqMutex::force_unlock`] break the consoles' locks so the report can
/// be printed.
pub struct Fatal(());

impl Fatal {
    /// # Safety
    /// Interrupts must be off and the caller must never return to (or
    /// switch back to) any code that was interrupted while holding a lock.
    pub unsafe fn assume() -> Fatal {
        Fatal(())
    }
}
