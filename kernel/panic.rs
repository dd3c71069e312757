//! The panic handler, and the guard every fatal report goes through.
//!
//! A panic or a fatal exception prints one report, then ends the run with
//! the failure exit. The report must end even when it trips over what broke:
//! [`begin`] counts the reports in progress, and a second entry (a panic
//! inside the report, say from a `Display` impl, or an exception while
//! printing it, #DF included) prints at most one short line straight to the
//! serial port and ends the run; a third prints nothing. The reports read
//! memory only through bounds checks and fault-safe reads (see
//! `arch::backtrace`, `arch::exceptions`), print without allocating, and
//! stop capturing output (`klog`).

use core::panic::{Location, PanicInfo};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::arch::backtrace;
use crate::arch::hook::{FnPointer, Hook};
use crate::power::{exit, ExitCode};

/// How far a report got: a nested failure names the step it interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// No report in progress.
    Idle = 0,
    /// The first line (panic message or exception summary).
    Message = 1,
    /// The registers of an exception.
    Registers = 2,
    /// The page walk of a page fault's address.
    PageWalk = 3,
    /// The words at the faulting stack pointer.
    StackDump = 4,
    /// The backtrace.
    Backtrace = 5,
    /// After the report: a test's verdict, then the exit.
    Verdict = 6,
}

impl Stage {
    fn from_u8(v: u8) -> Stage {
        match v {
            1 => Stage::Message,
            2 => Stage::Registers,
            3 => Stage::PageWalk,
            4 => Stage::StackDump,
            5 => Stage::Backtrace,
            6 => Stage::Verdict,
            _ => Stage::Idle,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Message => "message",
            Stage::Registers => "registers",
            Stage::PageWalk => "page walk",
            Stage::StackDump => "stack dump",
            Stage::Backtrace => "backtrace",
            Stage::Verdict => "verdict",
        }
    }
}

/// Reports in progress: 0 normally, 1 while reporting, 2+ nested.
static DEPTH: AtomicU32 = AtomicU32::new(0);
static STAGE: AtomicU8 = AtomicU8::new(Stage::Idle as u8);
/// A test expecting a nested failure at this stage (`Idle`: none expected).
static EXPECT_NESTED: AtomicU8 = AtomicU8::new(Stage::Idle as u8);

/// What started a report, for the one line of a nested failure.
#[derive(Clone, Copy)]
pub enum Entry<'a> {
    Panic(Option<&'a Location<'a>>),
    Exception { vector: u64, rip: u64 },
}

/// Enters a fatal report. Returns for the first one (with interrupts off,
/// the consoles force-unlocked and output capture stopped); a nested entry
/// never returns: it ends the run.
pub fn begin(entry: Entry) {
    x86_64::instructions::interrupts::disable();
    // The other CPUs stop (an NMI each); one that failed at the same
    // time halts here instead.
    crate::arch::smp::stop_others();
    let depth = DEPTH.fetch_add(1, Ordering::SeqCst);
    if depth == 0 {
        STAGE.store(Stage::Message as u8, Ordering::SeqCst);
        // SAFETY: interrupts are off and a report never returns to the code
        // it interrupted, which might hold a console lock.
        let fatal = unsafe { crate::arch::sync::Fatal::assume() };
        crate::klog::force_unlock_consoles(&fatal);
        return;
    }
    if depth == 1 {
        nested_line(entry);
    }
    // Third entry or worse: even the short line failed; just leave.
    exit(nested_verdict())
}

/// Records how far the report got.
pub fn set_stage(stage: Stage) {
    STAGE.store(stage as u8, Ordering::SeqCst);
}

/// The stage the current report is at.
pub fn stage() -> Stage {
    Stage::from_u8(STAGE.load(Ordering::SeqCst))
}

/// Whether a fatal report is being printed (or the run is ending after one).
pub fn reporting() -> bool {
    DEPTH.load(Ordering::SeqCst) > 0
}

/// Whether a failure happened inside a fatal report: only lock-free output
/// from now on.
pub fn nested() -> bool {
    depth() > 1
}

/// Fatal reports entered so far: 0 normally, 1 while reporting, 2 after a
/// failure inside the report, 3 or more if even its one line failed.
pub fn depth() -> u32 {
    DEPTH.load(Ordering::SeqCst)
}

/// For tests: a nested failure at `stage` of a report ends the run with the
/// success exit (the test provoked it on purpose).
pub fn expect_nested(stage: Stage) {
    EXPECT_NESTED.store(stage as u8, Ordering::SeqCst);
}

fn nested_verdict() -> ExitCode {
    let expected = EXPECT_NESTED.load(Ordering::SeqCst);
    if expected != Stage::Idle as u8 && expected == STAGE.load(Ordering::SeqCst) {
        ExitCode::Success
    } else {
        ExitCode::Failure
    }
}

/// The one line of a nested failure (and a test's verdict on it), straight
/// to the serial port.
fn nested_line(entry: Entry) {
    let stage = stage().name();
    match entry {
        Entry::Panic(Some(at)) => crate::klog::emergency_print(format_args!(
            "\nPANIC at {}:{} while printing a fatal report ({stage}); run ended\n",
            at.file(),
            at.line()
        )),
        Entry::Panic(None) => crate::klog::emergency_print(format_args!(
            "\nPANIC while printing a fatal report ({stage}); run ended\n"
        )),
        Entry::Exception { vector, rip } => crate::klog::emergency_print(format_args!(
            "\nEXCEPTION {} at RIP {rip:#x} while printing a fatal report ({stage}); run ended\n",
            crate::arch::exceptions::describe(vector).0
        )),
    }
    if nested_verdict() == ExitCode::Success {
        let name = crate::testing::current_test().unwrap_or("<no test>");
        crate::klog::emergency_print(format_args!(
            "test {name} ... ok (expected: a failure during the report's {stage} ended the run)\ntest result: ok. 1 passed\n"
        ));
    }
}

/// A finished panic report, for a test that expects the panic.
pub struct Report<'a> {
    pub info: &'a PanicInfo<'a>,
    pub backtrace: backtrace::Summary,
}

/// What a test that expects a panic installs: judges the report, ends the run.
pub type PanicHook = fn(&Report) -> !;

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for PanicHook {}

static PANIC_HOOK: Hook<PanicHook> = Hook::empty();

/// Lets a test take over the end of a panic report (see
/// `testing::expect_panic`).
pub fn set_panic_hook(hook: PanicHook) {
    PANIC_HOOK.set(hook);
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    begin(Entry::Panic(info.location()));
    let hook = PANIC_HOOK.get();
    let nested_expected = EXPECT_NESTED.load(Ordering::SeqCst) != Stage::Idle as u8;
    if hook.is_none() && !nested_expected {
        if let Some(test) = crate::testing::current_test() {
            crate::kprintln!("test {test} ... FAILED");
        }
    }
    crate::kprintln!("KERNEL PANIC: {info}");
    set_stage(Stage::Backtrace);
    let backtrace = backtrace::print_here();
    set_stage(Stage::Verdict);
    if let Some(hook) = hook {
        hook(&Report { info, backtrace });
    }
    exit(ExitCode::Failure)
}
