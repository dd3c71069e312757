//! A function installed at run time and called from an interrupt or trap
//! handler: the lower layers (`arch`, `mm`) call up into the layers above
//! them only through these, so the dependencies still run arch -> mm -> proc.
//!
//! The pointer lives in an atomic so a handler can read it at any moment
//! without a lock (it may interrupt the code that installs it).

use core::marker::PhantomData;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Function-pointer types a [`Hook`] may hold.
///
/// # Safety
/// Implementors must be plain `fn` pointer types: one non-null, pointer-sized
/// value that can be stored as a `usize` and turned back.
pub unsafe trait FnPointer: Copy {}

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for fn() {}
// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for fn(&mut super::trap::TrapFrame) {}
// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for fn(u64) {}
// SAFETY: a plain function pointer.
unsafe impl FnPointer for fn() -> ! {}
// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for fn(&super::exceptions::Fault) -> ! {}

/// An optional function of type `F`, settable at run time.
pub struct Hook<F: FnPointer> {
    raw: AtomicUsize,
    _fn: PhantomData<F>,
}

impl<F: FnPointer> Hook<F> {
    pub const fn empty() -> Hook<F> {
        Hook {
            raw: AtomicUsize::new(0),
            _fn: PhantomData,
        }
    }

    /// Installs `f`, replacing whatever was there.
    pub fn set(&self, f: F) {
        const { assert!(core::mem::size_of::<F>() == core::mem::size_of::<usize>()) };
        // SAFETY: `F` is a fn pointer (FnPointer's contract), the same size
        // as usize, as the assertion above checks.
        let raw: usize = unsafe { core::mem::transmute_copy(&f) };
        self.raw.store(raw, Ordering::SeqCst);
    }

    /// The installed function, if any.
    pub fn get(&self) -> Option<F> {
        let raw = self.raw.load(Ordering::SeqCst);
        // SAFETY: non-zero values were stored by `set` from an `F`.
        (raw != 0).then(|| unsafe { core::mem::transmute_copy::<usize, F>(&raw) })
    }
}
