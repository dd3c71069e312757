//! Per-CPU variables: one slot per CPU, reached only by the CPU it belongs
//! to, with interrupts off.
//!
//! [`CpuLocal::with`] finds the running CPU through its GS base
//! ([`super::percpu::current`]), disables interrupts (so neither an
//! interrupt handler nor the scheduler can run on this CPU meanwhile, and
//! the task cannot move to another CPU) and hands out the slot. No other
//! CPU ever touches a slot, so there is no lock and no atomic
//! read-modify-write on the way: the cost is saving and restoring RFLAGS
//! and reading the GS base. Work that concerns another CPU's slot (a
//! drain) is asked of that CPU, which does it itself.
//!
//! `with` returns `None`, and the caller takes its shared path, when the
//! CPU is not known yet (before `percpu::install`) or when this CPU is
//! already inside `with` for this variable (a panic raised inside the
//! closure that allocates, or an NMI): never two `&mut` to one slot.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use super::percpu::{self, MAX_CPUS};
use super::sync::IrqOff;

/// One CPU's slot of a [`CpuLocal`].
#[repr(C, align(64))]
pub struct Slot<T> {
    /// This CPU is inside `with` (written and read by this CPU only).
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

impl<T> Slot<T> {
    pub const fn new(value: T) -> Slot<T> {
        Slot {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }
}

/// A `T` per CPU (see the module comment).
pub struct CpuLocal<T> {
    slots: [Slot<T>; MAX_CPUS],
}

// SAFETY: a slot's value is only reached through `with`, on the CPU the
// slot belongs to, with interrupts off and its `busy` flag set, so at most
// one reference to it exists at a time; `T: Send` because the value is
// created on one CPU and used on another.
unsafe impl<T: Send> Sync for CpuLocal<T> {}

impl<T> CpuLocal<T> {
    /// Build with `[const { Slot::new(value) }; MAX_CPUS]`.
    pub const fn new(slots: [Slot<T>; MAX_CPUS]) -> CpuLocal<T> {
        CpuLocal { slots }
    }

    /// Runs `f` on this CPU's value (and index) with interrupts off;
    /// `None` (and `f` not run) if the CPU is unknown or already inside
    /// `with` here.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T, usize) -> R) -> Option<R> {
        let _irq = IrqOff::new();
        let index = percpu::current()?.index.load(Ordering::Relaxed) as usize;
        let slot = self.slots.get(index)?;
        if slot.busy.load(Ordering::Relaxed) {
            return None;
        }
        slot.busy.store(true, Ordering::Relaxed);
        // SAFETY: the slot is this CPU's; interrupts are off, so nothing
        // else runs on this CPU until `_irq` drops, no other CPU reaches
        // this slot, and `busy` (checked and set above) rules out a nested
        // `with` on this CPU: this is the only reference to the value.
        let value = unsafe { &mut *slot.value.get() };
        let r = f(value, index);
        slot.busy.store(false, Ordering::Relaxed);
        Some(r)
    }

    /// This CPU's index, if known (the slot [`with`](Self::with) uses).
    pub fn this_cpu() -> Option<usize> {
        percpu::current().map(|c| c.index.load(Ordering::Relaxed) as usize)
    }
}
