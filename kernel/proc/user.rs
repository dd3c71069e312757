//! Run a ring-3 context in an address space until it exits or is killed.
//!
//! The context gets its own kernel trap stack (vmalloc, guard page) through
//! the TSS; timer interrupts and resolvable page faults return to it, while
//! `exit` or a refused fault come back here through `leave_user`.

use spin::{Mutex, Once};

use crate::arch::trap::TrapFrame;
use crate::arch::usermode::{enter_user, leave_user, user_frame, KernelContext};
use crate::arch::{syscall as arch_syscall, trap};
use crate::mm::aspace::{self, SharedAddressSpace};
use crate::mm::fault::{self, UserFault};
use crate::mm::vmalloc::{self, VmArea};

/// How a user context ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExit {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a fault: Linux's signal number (11 = SIGSEGV, 9 = SIGKILL
    /// for out of memory) and what happened.
    Killed { signal: u8, fault: UserFault },
}

pub const SIGKILL: u8 = 9;
pub const SIGSEGV: u8 = 11;
pub const SIGILL: u8 = 4;

const TRAP_STACK_PAGES: u64 = 4;

static TRAP_STACK: Once<VmArea> = Once::new();
static mut CONTEXT: KernelContext = KernelContext::new_zeroed();
static EXIT: Mutex<Option<UserExit>> = Mutex::new(None);
static NAME: Mutex<&'static str> = Mutex::new("user");

/// Ends the running user context with `exit`; called from a trap handler on
/// the trap stack.
pub fn finish(exit: UserExit) -> ! {
    *EXIT.lock() = Some(exit);
    // SAFETY: `run` filled CONTEXT with `enter_user` and is still waiting
    // for it to return; this trap stack is abandoned.
    unsafe { leave_user(core::ptr::addr_of!(CONTEXT), 0) }
}

fn on_user_fault(_: &mut TrapFrame, fault: &UserFault) -> ! {
    let name = *NAME.lock();
    crate::kprintln!("[{name}] {fault}");
    let signal = match fault.why {
        aspace::FaultError::OutOfMemory => SIGKILL,
        aspace::FaultError::Segv(_) | aspace::FaultError::KernelAddress => SIGSEGV,
    };
    finish(UserExit::Killed {
        signal,
        fault: *fault,
    })
}

fn on_user_exception(frame: &mut TrapFrame) {
    let (mnemonic, name) = crate::arch::exceptions::describe(frame.vector);
    let who = *NAME.lock();
    crate::kprintln!(
        "[{who}] {mnemonic} ({name}) at ip {:#x}, error {:#x}: killed",
        frame.rip,
        frame.error_code
    );
    let signal = match frame.vector {
        6 => SIGILL,
        _ => SIGSEGV,
    };
    finish(UserExit::Killed {
        signal,
        fault: UserFault {
            addr: 0,
            ip: frame.rip,
            access: vmcore::FaultAccess::Execute,
            code: 0,
            why: aspace::FaultError::Segv(vmcore::SegvReason::NoRegion),
        },
    })
}

/// Runs ring-3 code at `rip` with stack `rsp` and arguments `arg0`, `arg1`
/// (in RDI, RSI) in `aspace` until it exits or is killed.
pub fn run(
    name: &'static str,
    aspace: SharedAddressSpace,
    rip: u64,
    rsp: u64,
    arg0: u64,
    arg1: u64,
) -> UserExit {
    let stack = TRAP_STACK
        .call_once(|| vmalloc::alloc(TRAP_STACK_PAGES).expect("memory for the user trap stack"));
    fault::set_user_kill_hook(on_user_fault);
    trap::set_user_exception_handler(on_user_exception);
    trap::set_syscall_handler(super::syscall::dispatch);
    *NAME.lock() = name;
    let mut frame = user_frame(rip, rsp);
    frame.rdi = arg0;
    frame.rsi = arg1;
    let interrupts = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    aspace::switch_to(Some(aspace));
    arch_syscall::set_kernel_stack(stack.end());
    // SAFETY: the frame is a ring-3 context in the address space just made
    // current; the trap stack is set and is not this stack; CONTEXT lives in
    // a static until `finish` uses it.
    unsafe { enter_user(core::ptr::addr_of_mut!(CONTEXT), &frame) };
    aspace::switch_to(None);
    if interrupts {
        x86_64::instructions::interrupts::enable();
    }
    EXIT.lock()
        .take()
        .expect("finish records how the context ended")
}
