//! Fallible kernel allocation: the helpers every path a user can drive
//! (system calls, exec, fork, the shell's views) uses instead of Rust's
//! infallible `Vec::push`, `Box::new`, `String::from`, `format!` ... which
//! abort the kernel when the heap is out of memory.
//!
//! Each helper makes exactly one allocation attempt and marks it as one the
//! caller handles ("may fail"), so failure injection ([`super::failslab`])
//! may fail it, like Linux's `failslab` (which skips `__GFP_NOFAIL`; here
//! the default is the other way round). The mark is set with interrupts off
//! around the single `try_reserve`/`try_new` call, and the heap clears it at
//! the first allocation it sees, so neither an interrupt handler nor a
//! nested allocation can be failed by it.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::arch::percpu::{cpu_index, MAX_CPUS};

/// A kernel heap allocation failed (the system call returns `ENOMEM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("out of memory")
    }
}

pub type Result<T> = core::result::Result<T, AllocError>;

/// What the next heap allocation on each CPU is marked as (see [`Mark`]).
/// Per CPU: a mark is set with interrupts off around one allocation on
/// one CPU, and an allocation on another CPU at the same time must not
/// take it (with one global mark it did: an infallible allocation there
/// could be failed by injection or refused the reserve, and abort).
static MARK: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(Mark::None as u8) }; MAX_CPUS];

/// How the heap may treat an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Mark {
    /// Must not fail while any memory is left (the heap's reserve helps).
    None = 0,
    /// The caller handles failure ("may fail"): failure injection may fail
    /// it, and the heap's reserve is not for it.
    MayFail = 1,
    /// The caller handles failure but the allocation is one the kernel
    /// makes to free memory (a swap device's buffer for a page being
    /// written out): failure injection may fail it, and the heap's reserve
    /// still helps it under real exhaustion.
    Injectable = 2,
}

/// Takes (and clears) the mark: called by the heap for every allocation,
/// so only the first one inside a helper sees it set.
pub(super) fn take_mark() -> Mark {
    // Interrupts off: nothing moves this context to another CPU between
    // finding its slot and taking the mark.
    let _irq = crate::arch::sync::IrqOff::new();
    match MARK[cpu_index()].swap(Mark::None as u8, Ordering::Relaxed) {
        1 => Mark::MayFail,
        2 => Mark::Injectable,
        _ => Mark::None,
    }
}

/// Runs `f` with its first allocation marked `mark`. Interrupts are off
/// meanwhile, so an interrupt handler's allocation cannot take the mark;
/// the previous mark is restored afterwards, so the helpers nest.
fn marked<R>(mark: Mark, f: impl FnOnce() -> R) -> R {
    let _irq = crate::arch::sync::IrqOff::new();
    let slot = &MARK[cpu_index()];
    let previous = slot.swap(mark as u8, Ordering::Relaxed);
    let result = f();
    slot.store(previous, Ordering::Relaxed);
    result
}

/// Runs `f` (one allocation attempt) with its allocation marked "may fail".
fn fallible<R>(f: impl FnOnce() -> R) -> R {
    marked(Mark::MayFail, f)
}

/// Runs `f`, whose first heap allocation (if any) is fallible and handled
/// by `f` itself, with that allocation open to failure injection but not
/// refused the heap's reserve ([`Mark::Injectable`]): for allocations made
/// on the way to freeing memory, such as a compressed swap device's buffer
/// for a page being written out (`f` must make no infallible allocation
/// before that one).
pub fn injectable<R>(f: impl FnOnce() -> R) -> R {
    marked(Mark::Injectable, f)
}

/// Makes room for `additional` more elements.
pub fn try_reserve<T>(v: &mut Vec<T>, additional: usize) -> Result<()> {
    if v.capacity() - v.len() >= additional {
        return Ok(());
    }
    fallible(|| v.try_reserve(additional)).map_err(|_| AllocError)
}

/// An empty vector with room for `n` elements.
pub fn try_with_capacity<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    try_reserve(&mut v, n)?;
    Ok(v)
}

/// Appends `value`.
pub fn try_push<T>(v: &mut Vec<T>, value: T) -> Result<()> {
    try_reserve(v, 1)?;
    v.push(value);
    Ok(())
}

/// Appends a copy of `items`.
pub fn try_extend_from_slice<T: Clone>(v: &mut Vec<T>, items: &[T]) -> Result<()> {
    try_reserve(v, items.len())?;
    v.extend_from_slice(items);
    Ok(())
}

/// A copy of `items` in a new vector.
pub fn try_to_vec<T: Clone>(items: &[T]) -> Result<Vec<T>> {
    let mut v = try_with_capacity(items.len())?;
    v.extend_from_slice(items);
    Ok(v)
}

/// `n` zero bytes.
pub fn try_zeroed(n: usize) -> Result<Vec<u8>> {
    let mut v = try_with_capacity(n)?;
    v.resize(n, 0);
    Ok(v)
}

/// Makes room for `additional` more elements in a queue.
pub fn try_reserve_deque<T>(q: &mut VecDeque<T>, additional: usize) -> Result<()> {
    if q.capacity() - q.len() >= additional {
        return Ok(());
    }
    fallible(|| q.try_reserve(additional)).map_err(|_| AllocError)
}

/// A copy of `s`.
pub fn try_string(s: &str) -> Result<String> {
    let mut out = String::new();
    try_push_str(&mut out, s)?;
    Ok(out)
}

/// Appends `s`.
pub fn try_push_str(out: &mut String, s: &str) -> Result<()> {
    if out.capacity() - out.len() < s.len() {
        fallible(|| out.try_reserve(s.len())).map_err(|_| AllocError)?;
    }
    out.push_str(s);
    Ok(())
}

/// A `fmt::Write` into a `String` that grows fallibly; formatting stops
/// with `fmt::Error` when memory runs out, and `failed` says so.
struct TryWriter<'a> {
    out: &'a mut String,
    failed: bool,
}

impl fmt::Write for TryWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        try_push_str(self.out, s).map_err(|_| {
            self.failed = true;
            fmt::Error
        })
    }
}

/// `format!`, fallibly: `try_format(format_args!(...))`.
pub fn try_format(args: fmt::Arguments) -> Result<String> {
    let mut out = String::new();
    let mut w = TryWriter {
        out: &mut out,
        failed: false,
    };
    match fmt::write(&mut w, args) {
        Ok(()) => Ok(out),
        // A `Display` impl may fail by itself; only report what we caused.
        Err(_) if w.failed => Err(AllocError),
        Err(_) => Ok(out),
    }
}

/// `Box::new`, fallibly.
pub fn try_box<T>(value: T) -> Result<Box<T>> {
    fallible(|| Box::try_new(value)).map_err(|_| AllocError)
}

/// Room for a `T` on the heap, to be filled with `Box::write` once the
/// value exists (so a value holding resources is never made only to be
/// dropped for lack of a box).
pub fn try_box_uninit<T>() -> Result<Box<core::mem::MaybeUninit<T>>> {
    fallible(Box::try_new_uninit).map_err(|_| AllocError)
}

/// `Arc::new`, fallibly.
pub fn try_arc<T>(value: T) -> Result<Arc<T>> {
    fallible(|| Arc::try_new(value)).map_err(|_| AllocError)
}
