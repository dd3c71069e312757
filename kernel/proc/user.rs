//! What happens when user code misbehaves, and running user code from the
//! kernel: a refused fault or a CPU exception in ring 3 goes to the
//! process's signal handler if it installed one (`signal`); otherwise it
//! prints one line and kills that process (SIGSEGV, SIGBUS past the end of a mapped file, SIGILL,
//! SIGFPE, or SIGKILL when memory ran out); its parent's `wait4` sees the
//! signal.

use super::exec::{self, ExecError};
use super::sched::{self, Pid};
use super::signal;
use crate::arch::trap::{self, TrapFrame};
use crate::arch::usermode::user_frame;
use crate::mm::aspace::{FaultError, SharedAddressSpace};
use crate::mm::fault::{self, UserFault};
use usercore::signal::{code as sigcode, death_status};
use vmcore::SegvReason;

pub const SIGILL: u8 = 4;
pub const SIGFPE: u8 = 8;
pub const SIGBUS: u8 = 7;
pub const SIGKILL: u8 = 9;
pub const SIGSEGV: u8 = 11;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExit {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal; `fault` says what happened when a page fault
    /// was the cause.
    Killed {
        signal: u8,
        fault: Option<UserFault>,
    },
}

impl UserExit {
    fn from_status(status: i32, fault: Option<UserFault>) -> UserExit {
        if status & 0x7f == 0 {
            UserExit::Exited((status >> 8) & 0xff)
        } else {
            UserExit::Killed {
                signal: (status & 0x7f) as u8,
                fault,
            }
        }
    }
}

/// Prints `[pid N name] ` and then `what`, without allocating (this runs
/// when memory may be gone).
fn report(what: core::fmt::Arguments) {
    sched::with_current(|p| crate::kprintln!("[pid {} {}] {what}", p.pid, p.name));
}

/// A refused fault: its signal goes to the process's handler if it has
/// one (and does not block it), else the process dies by it.
fn on_user_fault(_: &mut TrapFrame, fault: &UserFault) {
    let (signal, code) = match fault.why {
        // (The last two never leave the fault path.)
        FaultError::OutOfMemory | FaultError::ZeroedFrameWanted | FaultError::CopyWanted => {
            (SIGKILL, 0)
        }
        FaultError::PastEof => (SIGBUS, sigcode::BUS_ADRERR),
        FaultError::Segv(SegvReason::NoRegion) | FaultError::KernelAddress => {
            (SIGSEGV, sigcode::SEGV_MAPERR)
        }
        FaultError::Segv(_) => (SIGSEGV, sigcode::SEGV_ACCERR),
    };
    if signal != SIGKILL && signal::catches(signal) {
        signal::post_fault(signal, code, fault.addr);
        return;
    }
    report(format_args!("{fault}"));
    sched::note_fault(*fault);
    sched::exit_current(death_status(signal))
}

fn on_user_exception(frame: &mut TrapFrame) {
    let (signal, code, addr) = match frame.vector {
        0 => (SIGFPE, sigcode::FPE_INTDIV, frame.rip),
        16 | 19 => (SIGFPE, sigcode::FPE_FLTINV, frame.rip),
        6 => (SIGILL, sigcode::ILL_ILLOPN, frame.rip),
        3 => (signal::num::SIGTRAP, sigcode::SI_KERNEL, 0),
        _ => (SIGSEGV, sigcode::SI_KERNEL, 0),
    };
    if signal::catches(signal) {
        signal::post_fault(signal, code, addr);
        return;
    }
    let (mnemonic, name) = crate::arch::exceptions::describe(frame.vector);
    report(format_args!(
        "{mnemonic} ({name}) at ip {:#x}, error {:#x}: killed",
        frame.rip, frame.error_code
    ));
    sched::exit_current(death_status(signal))
}

pub fn install_fault_handlers() {
    fault::set_user_kill_hook(on_user_fault);
    trap::set_user_exception_handler(on_user_exception);
}

/// Waits for child `pid` of the kernel thread and says how it ended.
pub fn wait_for(pid: Pid) -> UserExit {
    super::console::set_foreground(pid);
    // Look at the fault before the zombie is reaped.
    loop {
        // Ctrl-C sent the foreground process SIGINT (`console::push`).
        if super::console::take_interrupt() {
            crate::kprintln!("^C");
        }
        let zombie = sched::with_process(pid, |p| match p.state {
            sched::State::Zombie(status) => Some((status, p.fault)),
            _ => None,
        })
        .flatten();
        if let Some((status, fault)) = zombie {
            super::console::set_foreground(0);
            sched::reap(pid as i64).expect("our child");
            return UserExit::from_status(status, fault);
        }
        // Checked again with interrupts off, so an exit between the look
        // above and the block (this task preempted) is not a lost wake.
        sched::block_unless(sched::Block::Child, || {
            super::console::interrupt_pending()
                || sched::with_process(pid, |p| matches!(p.state, sched::State::Zombie(_)))
                    .unwrap_or(true)
        });
    }
}

/// Runs ring-3 code at `rip` with stack `rsp` and arguments `arg0`, `arg1`
/// (in RDI, RSI) in `aspace` as a new process, and waits for it.
pub fn run(
    name: &str,
    aspace: SharedAddressSpace,
    rip: u64,
    rsp: u64,
    arg0: u64,
    arg1: u64,
) -> UserExit {
    let mut frame = user_frame(rip, rsp);
    frame.rdi = arg0;
    frame.rsi = arg1;
    let pid = sched::spawn(name, aspace, &frame, 0, (0, 0)).expect("memory for a process");
    wait_for(pid)
}

/// Starts the program at `path` in the ramdisk as a child of the kernel.
pub fn spawn_program(path: &str, argv: &[&str]) -> Result<Pid, ExecError> {
    let fds = super::fd::standard().map_err(|_| ExecError::OutOfMemory)?;
    spawn_program_with(path, argv, fds)
}

/// [`spawn_program`] with the descriptor table given (the shell's
/// redirections and pipelines).
pub fn spawn_program_with(
    path: &str,
    argv: &[&str],
    fds: super::fd::FdTable,
) -> Result<Pid, ExecError> {
    let mut bytes: alloc::vec::Vec<&[u8]> =
        crate::mm::kalloc::try_with_capacity(argv.len()).map_err(|_| ExecError::OutOfMemory)?;
    bytes.extend(argv.iter().map(|a| a.as_bytes()));
    let argv = bytes;
    let envp: [&[u8]; 2] = [b"PATH=/bin", b"HOME=/"];
    let exe = super::fd::exe_path(path).map_err(|_| ExecError::OutOfMemory)?;
    let mut image = exec::load(path, &argv, &envp)?;
    let name = core::mem::take(&mut image.name);
    let pid = sched::spawn_child(
        name,
        image.aspace,
        &image.frame,
        0,
        image.brk,
        fds,
        super::signal::SigState::new(),
    )
    .map_err(|_| ExecError::OutOfMemory)?;
    super::fd::set_exe(pid, exe);
    Ok(pid)
}

/// Waits for every one of `pids` (children of the kernel thread, e.g. a
/// pipeline) to end, and says how each did. Ctrl-C interrupts them all,
/// as a terminal signals its foreground process group: the console sends
/// SIGINT to the last one (the foreground), this sends it to the others
/// (a stage left alone could wait for ever on its pipe).
pub fn wait_for_all(pids: &[Pid], exits: &mut [Option<UserExit>]) {
    let foreground = pids.last().copied().unwrap_or(0);
    super::console::set_foreground(foreground);
    loop {
        if super::console::take_interrupt() {
            crate::kprintln!("^C");
            for (&pid, exit) in pids.iter().zip(exits.iter()) {
                if exit.is_none() && pid != foreground {
                    let _ = super::signal::send(pid, super::signal::num::SIGINT);
                    if super::signal::is_stopped(pid) {
                        let _ = super::signal::send(pid, super::signal::num::SIGCONT);
                    }
                }
            }
        }
        let mut running = false;
        for (&pid, exit) in pids.iter().zip(exits.iter_mut()) {
            if exit.is_some() {
                continue;
            }
            let zombie = sched::with_process(pid, |p| match p.state {
                sched::State::Zombie(status) => Some((status, p.fault)),
                _ => None,
            });
            match zombie {
                Some(Some((status, fault))) => {
                    let _ = sched::reap(pid as i64);
                    *exit = Some(UserExit::from_status(status, fault));
                }
                Some(None) => running = true,
                // Reaped by someone else: it ended, how is not known.
                None => *exit = Some(UserExit::Exited(0)),
            }
        }
        if !running {
            super::console::set_foreground(0);
            return;
        }
        // Checked again with interrupts off (see `wait_for`).
        sched::block_unless(sched::Block::Child, || {
            super::console::interrupt_pending()
                || pids.iter().zip(exits.iter()).any(|(&pid, exit)| {
                    exit.is_none()
                        && sched::with_process(pid, |p| matches!(p.state, sched::State::Zombie(_)))
                            .unwrap_or(true)
                })
        });
    }
}
