//! The MMU's registers and the TLB: the one place that reads or writes CR3
//! and invalidates translations.
//!
//! Everything above `arch` names address spaces by the physical address of
//! their root table and asks for flushes through these functions; the TLB
//! gather in `mm` decides *what* to flush and this module does it, on this
//! CPU; `tlb` does it on the others (shootdown IPIs), and [`switch_root`]
//! publishes the root each CPU has loaded for it.

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

use super::hook::Hook;

/// Called before each flush with the page flushed (or [`ALL`]): lets a test
/// check what is still allocated at that moment.
static FLUSH_OBSERVER: Hook<fn(u64)> = Hook::empty();

/// What [`set_flush_observer`]'s function receives for a full flush.
pub const ALL: u64 = u64::MAX;

/// Installs `f` to be told about every flush (tests).
pub fn set_flush_observer(f: fn(u64)) {
    FLUSH_OBSERVER.set(f);
}

fn observe(va: u64) {
    if let Some(f) = FLUSH_OBSERVER.get() {
        f(va);
    }
}

/// Physical address of the live root table (the PML4 in CR3).
pub fn active_root() -> u64 {
    Cr3::read().0.start_address().as_u64()
}

/// True if the tree rooted at `root` is the one the CPU translates with.
pub fn is_active(root: u64) -> bool {
    active_root() == root
}

/// Loads `root` into CR3 unless it is already there (a reload would flush
/// the whole non-global TLB for nothing) — or unless this CPU held it
/// only lazily ([`enter_lazy`]): shootdowns skipped it meanwhile, so the
/// reload is the flush they owed.
///
/// # Safety
/// `root` must be a PML4 whose kernel half maps the running code, stack and
/// every kernel object in use (every user address space copies the
/// kernel's upper half, so any of them qualifies), and it must stay
/// allocated while loaded.
pub unsafe fn switch_root(root: u64) {
    use core::sync::atomic::Ordering::SeqCst;
    let frame = PhysFrame::containing_address(PhysAddr::new(root));
    let me = super::percpu::this();
    // No longer lazy, first: a shooter that still reads "lazy" (and skips
    // this CPU) read it before this, so after its table change, and the
    // reload below comes later. (A shootdown NMI between here and the
    // load finds the old root loaded and not lazy: it flushes it.)
    let was_lazy = me.tlb_lazy.swap(false, SeqCst);
    // Published before the load, ordered against a shootdown's read of
    // it (`tlb`): either the shooter sees this CPU has `root`, or this
    // CPU's walks of `root` begin after the shooter's table change.
    me.loaded_root.store(root, SeqCst);
    if was_lazy || Cr3::read().0 != frame {
        // SAFETY: the caller guarantees the new tree maps everything the
        // kernel is using right now.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }
}

/// This CPU keeps its root only lazily from now on (it switches to its
/// idle context or a kernel thread, neither of which uses the user half;
/// interrupts off). Shootdowns that free no page tables skip it (`tlb`);
/// the next [`switch_root`] reloads CR3.
pub fn enter_lazy() {
    super::percpu::this()
        .tlb_lazy
        .store(true, core::sync::atomic::Ordering::SeqCst);
}

/// Invalidates this CPU's translation of the page at `va`.
pub fn flush_page(va: u64) {
    observe(va);
    x86_64::instructions::tlb::flush(VirtAddr::new_truncate(va));
}

/// Invalidates every non-global translation of this CPU.
pub fn flush_all() {
    observe(ALL);
    x86_64::instructions::tlb::flush_all();
}
