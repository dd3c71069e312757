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

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

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
}

/// Holds an [`IrqMutex`] (or an address-space lock taken with
/// [`try_lock_irq_off`]); interrupts stay off until it is dropped.
pub struct IrqMutexGuard<'a, T> {
    // Field order is drop order: the lock is released first, then the
    // interrupt state restored.
    guard: spin::MutexGuard<'a, T>,
    _irq: IrqOff,
}

impl<T> IrqMutex<T> {
    pub const fn new(value: T) -> Self {
        IrqMutex {
            inner: spin::Mutex::new(value),
        }
    }

    /// Disables interrupts (remembering whether they were on), then spins
    /// until the lock is free.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let irq = IrqOff::new();
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
        IrqMutexGuard { guard, _irq: irq }
    }

    /// Like [`lock`](Self::lock), but `None` at once if the lock is held.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        try_lock_irq_off(&self.inner)
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
    lock.try_lock()
        .map(|guard| IrqMutexGuard { guard, _irq: irq })
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
