//! A kernel stack overflow hits the guard page below the vmalloc'd stack; the CPU cannot push the #PF
//! frame on the dead stack, raises #DF, and the #DF handler runs on its own IST
//! stack and reports it: no triple fault.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use ferrite::testing::{ensure, expect_fault};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![stack_overflow_is_a_double_fault])
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    recurse(depth + 1) + core::hint::black_box(frame[3])
}

fn stack_overflow_is_a_double_fault() {
    expect_fault(|fault| {
        ensure(fault.vector() == 8, || {
            format!("vector {} ({fault})", fault.vector())
        })?;
        let guard = ferrite::kernel_stack().guard;
        ensure(
            fault.frame.rsp >= guard && fault.frame.rsp < guard + 2 * 4096,
            || {
                format!(
                    "RSP {:#x} is not at the guard page {guard:#x}",
                    fault.frame.rsp
                )
            },
        )?;
        let line = format!("{fault}");
        ensure(line.starts_with("#DF (vector 8"), || {
            format!("report `{line}`")
        })
    });
    core::hint::black_box(recurse(0));
    panic!("infinite recursion returned");
}
