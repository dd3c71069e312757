//! Owned frame references.
//!
//! A user page's frame is counted: every leaf that maps it, and every other
//! holder (the page cache), owns one reference. A [`FrameHandle`] is one
//! such reference as a value: whoever holds it owns the reference, dropping
//! it gives the reference back, and the only ways to make one are to
//! allocate, to clone one (take another reference) or to take a leaf out of
//! the page tables. Installing a leaf consumes a handle. So the type system,
//! not each call site, keeps the counts right: a reference cannot be
//! dropped twice, and one that is forgotten shows up as a leak in the
//! model tests rather than as a use-after-free.
//!
//! The kernel's handle counts in the per-frame metadata of the buddy
//! allocator; the host tests count in a map. The shared zero page is a
//! handle too, one that counts nothing: cloning and dropping it are free.

/// One counted reference to a physical frame.
///
/// Implementations give the reference back in `Drop` (and take one in
/// their clone operation), except for the distinguished zero page.
pub trait FrameHandle: Sized {
    /// Physical address of the frame.
    fn addr(&self) -> u64;

    /// Gives up the handle *without* dropping its reference: the leaf (or
    /// other raw slot) the caller stores the address in owns it from now
    /// on. The inverse is [`FrameHandle::from_raw`].
    fn into_raw(self) -> u64;

    /// Takes back the reference a raw slot (a leaf just cleared or
    /// replaced, an index entry just removed) owned.
    ///
    /// # Safety
    /// `addr` must come from [`FrameHandle::into_raw`] (of this type), and
    /// the slot that held it must no longer refer to it, so that the one
    /// reference has exactly one owner again.
    unsafe fn from_raw(addr: u64) -> Self;
}
