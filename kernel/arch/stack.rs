//! Static stacks with a guard page, for the exception stacks (IST) that must
//! exist before the vmalloc area does, and the switch onto a new stack.
//!
//! A stack is a static, page-aligned array whose lowest page is unmapped at
//! boot: running off the end faults on the guard page instead of silently
//! overwriting whatever lies below.

use core::cell::UnsafeCell;

use mmcore::PAGE_SIZE as PAGE;

/// No kernel stack is larger than this (the boot stack and `main`'s are
/// 64 KiB, processes' kernel stacks and the IST stacks smaller): a frame
/// further than this above the stack pointer is not on the same stack. The
/// backtraces use it to bound their walk.
pub const MAX_KERNEL_STACK: u64 = 64 * 1024;

#[repr(C, align(4096))]
pub struct GuardedStack<const N: usize> {
    guard: UnsafeCell<[u8; PAGE]>,
    stack: UnsafeCell<[u8; N]>,
}

// SAFETY: the memory is only used as a CPU stack by one context at a time;
// Rust code never reads or writes it through this type.
unsafe impl<const N: usize> Sync for GuardedStack<N> {}

impl<const N: usize> GuardedStack<N> {
    pub const fn new() -> Self {
        GuardedStack {
            guard: UnsafeCell::new([0; PAGE]),
            stack: UnsafeCell::new([0; N]),
        }
    }

    pub fn guard_page(&self) -> u64 {
        self.guard.get() as u64
    }

    /// The initial stack pointer (stacks grow down), 16-byte aligned.
    pub fn top(&self) -> u64 {
        (self.stack.get() as u64 + N as u64) & !0xf
    }

    /// Unmaps the guard page.
    pub fn protect(&self) {
        if let Err(why) = crate::mm::paging::unmap_guard_page(self.guard_page()) {
            panic!("cannot place guard page at {:#x}: {why}", self.guard_page());
        }
    }
}

impl<const N: usize> Default for GuardedStack<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Switches to `stack_top` and calls `f` there; never returns.
pub fn run_on_stack(stack_top: u64, f: extern "C" fn() -> !) -> ! {
    // SAFETY: `stack_top` is the top of a mapped stack nothing else uses; the
    // old stack is abandoned (nothing on it is referenced again), and `f`
    // never returns into it.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {f}",
            "ud2",
            top = in(reg) stack_top,
            f = in(reg) f,
            options(noreturn)
        )
    }
}

const _: () = assert!(crate::KERNEL_STACK_PAGES * PAGE as u64 <= MAX_KERNEL_STACK);
