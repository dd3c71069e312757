//! Backtraces by frame pointers (the kernel is built with
//! `-C force-frame-pointers=yes`): each frame stores the caller's RBP at
//! `[rbp]` and the return address at `[rbp + 8]`.
//!
//! Backtraces are printed by the fatal-error reports, when the chain itself
//! may be what broke, so the walk trusts nothing it reads: every frame must
//! lie on the stack the walk started on (above the stack pointer, within
//! [`MAX_KERNEL_STACK`] of it), frames must move up the stack, return
//! addresses must lie in the kernel image, each read goes through the
//! fault-safe [`read_kernel_u64`], and the walk stops after [`MAX_FRAMES`].
//! It never walks page tables (that was once how a report faulted and
//! recursed into a double fault).

use super::stack::MAX_KERNEL_STACK;
use super::uaccess::read_kernel_u64;
use crate::mm::layout::{is_kernel_address, KERNEL_BASE};

/// At most this many frames are walked, the faulting one included.
pub const MAX_FRAMES: usize = 32;

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The chain ended normally (a zero frame pointer or return address).
    Complete,
    /// A frame pointer not on the stack the walk started on (or misaligned).
    OutsideStack,
    /// A frame on the stack that could not be read (the read faulted).
    Unreadable,
    /// A return address outside the kernel image.
    NotKernelText,
    /// A saved frame pointer that does not move up the stack.
    NotAscending,
    /// [`MAX_FRAMES`] frames walked.
    MaxFrames,
}

impl End {
    fn describe(self) -> &'static str {
        match self {
            End::Complete => "end of chain",
            End::OutsideStack => "frame pointer is not on this stack",
            End::Unreadable => "frame could not be read",
            End::NotKernelText => "return address outside the kernel image",
            End::NotAscending => "saved frame pointer does not move up the stack",
            End::MaxFrames => "frame limit reached",
        }
    }
}

/// What a walk saw: how many frames (the first included) and why it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub frames: usize,
    pub end: End,
}

/// Whether `rbp` may be a frame on the stack whose pointer was `sp`.
fn on_stack(rbp: u64, sp: u64) -> bool {
    is_kernel_address(rbp)
        && rbp.is_multiple_of(8)
        && rbp >= sp
        && rbp - sp < MAX_KERNEL_STACK
        && rbp.checked_add(16).is_some()
}

/// Walks the chain from `rip` with frame pointer `rbp` on the stack whose
/// pointer was `sp`, calling `f(index, address)` for each frame (frame 0 is
/// `rip`). Bounded, and fault-safe (see the module comment).
pub fn walk(rip: u64, mut rbp: u64, sp: u64, mut f: impl FnMut(usize, u64)) -> Summary {
    f(0, rip);
    let mut frames = 1;
    while frames < MAX_FRAMES {
        if rbp == 0 {
            return Summary {
                frames,
                end: End::Complete,
            };
        }
        if !on_stack(rbp, sp) {
            return Summary {
                frames,
                end: End::OutsideStack,
            };
        }
        let (Some(next), Some(ret)) = (read_kernel_u64(rbp), read_kernel_u64(rbp + 8)) else {
            return Summary {
                frames,
                end: End::Unreadable,
            };
        };
        if ret == 0 {
            return Summary {
                frames,
                end: End::Complete,
            };
        }
        if ret < KERNEL_BASE {
            return Summary {
                frames,
                end: End::NotKernelText,
            };
        }
        f(frames, ret);
        frames += 1;
        if next != 0 && next <= rbp {
            return Summary {
                frames,
                end: End::NotAscending,
            };
        }
        rbp = next;
    }
    Summary {
        frames,
        end: End::MaxFrames,
    }
}

/// Frame 0 is the faulting RIP itself; older frames are return addresses,
/// which point after the call and may lie past the end of the caller (a call
/// to a function that never returns is often a function's last instruction),
/// so they are looked up one byte earlier.
fn print_entry(i: usize, addr: u64) {
    let symbol = if i == 0 {
        crate::symbols::lookup(addr)
    } else {
        crate::symbols::lookup(addr.wrapping_sub(1)).map(|mut s| {
            s.offset += 1;
            s
        })
    };
    match symbol {
        Some(sym) => crate::kprintln!("  {i:2}: {addr:#018x} {sym}"),
        None => crate::kprintln!("  {i:2}: {addr:#018x}"),
    }
}

/// Prints the call chain starting at `rip` with frame pointer `rbp`, on the
/// stack whose pointer was `sp`.
pub fn print(rip: u64, rbp: u64, sp: u64) -> Summary {
    crate::kprintln!("backtrace:");
    // Deep recursion (a stack overflow) would fill the trace with one line.
    let mut last = None;
    let mut repeats = 0u32;
    let summary = walk(rip, rbp, sp, |i, addr| {
        if last == Some(addr) {
            repeats += 1;
            return;
        }
        if repeats > 0 {
            crate::kprintln!("      ... previous frame repeated {repeats} more times");
            repeats = 0;
        }
        print_entry(i, addr);
        last = Some(addr);
    });
    if repeats > 0 {
        crate::kprintln!("      ... previous frame repeated {repeats} more times");
    }
    if summary.end != End::Complete {
        crate::kprintln!("  (trace cut: {})", summary.end.describe());
    }
    summary
}

/// A backtrace of the caller.
#[inline(always)]
pub fn print_here() -> Summary {
    let (rbp, rsp): (u64, u64);
    // SAFETY: reads two registers.
    unsafe { core::arch::asm!("mov {}, rbp", "mov {}, rsp", out(reg) rbp, out(reg) rsp) };
    print(print_here as *const () as u64, rbp, rsp)
}
