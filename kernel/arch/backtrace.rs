//! Backtraces by frame pointers (the kernel is built with
//! `-C force-frame-pointers=yes`): each frame stores the caller's RBP at
//! `[rbp]` and the return address at `[rbp + 8]`.

use crate::mm::layout::is_kernel_address;
use crate::mm::paging::translate;

const MAX_FRAMES: usize = 32;

/// Whether an 8-byte read at `addr` is safe: kernel half, aligned, mapped.
fn readable(addr: u64) -> bool {
    is_kernel_address(addr)
        && addr.is_multiple_of(8)
        && translate(addr).is_some()
        && translate(addr + 8).is_some()
}

/// Frame 0 is the faulting RIP itself; older frames are return addresses,
/// which point after the call and may lie past the end of the caller (a call
/// to a function that never returns is often a function's last instruction),
/// so they are looked up one byte earlier.
fn print_entry(i: usize, addr: u64) {
    let symbol = if i == 0 {
        crate::symbols::lookup(addr)
    } else {
        crate::symbols::lookup(addr - 1).map(|mut s| {
            s.offset += 1;
            s
        })
    };
    match symbol {
        Some(sym) => crate::kprintln!("  {i:2}: {addr:#018x} {sym}"),
        None => crate::kprintln!("  {i:2}: {addr:#018x}"),
    }
}

/// Prints the call chain starting at `rip` with frame pointer `rbp`.
pub fn print(rip: u64, mut rbp: u64) {
    crate::kprintln!("backtrace:");
    print_entry(0, rip);
    let mut last = rip;
    let mut repeats = 0;
    for i in 1..MAX_FRAMES {
        if rbp == 0 || !readable(rbp) {
            break;
        }
        // SAFETY: `readable` checked that both words are mapped kernel memory.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        // Deep recursion (a stack overflow) would fill the trace with one line.
        if ret == last {
            repeats += 1;
        } else {
            if repeats > 0 {
                crate::kprintln!("      ... previous frame repeated {repeats} more times");
                repeats = 0;
            }
            print_entry(i, ret);
            last = ret;
        }
        if next <= rbp {
            // Frames move up the stack; anything else is a corrupt chain.
            break;
        }
        rbp = next;
    }
    if repeats > 0 {
        crate::kprintln!("      ... previous frame repeated {repeats} more times (trace cut)");
    }
}

/// A backtrace of the caller.
#[inline(always)]
pub fn print_here() {
    let rbp: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp) };
    print(print_here as *const () as u64, rbp);
}
