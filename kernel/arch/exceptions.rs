//! What to do with CPU exceptions, and how to report them.
//!
//! A fatal kernel exception prints one summary line (name, vector, decoded
//! error code, CR2, RIP with its symbol, context), then the registers and a
//! backtrace, and ends the run with the failure exit code.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use super::hook::Hook;

use super::trap::{TrapFrame, VECTOR_PAGE_FAULT};

/// (mnemonic, name) by vector.
pub fn describe(vector: u64) -> (&'static str, &'static str) {
    match vector {
        0 => ("#DE", "divide error"),
        1 => ("#DB", "debug"),
        2 => ("NMI", "non-maskable interrupt"),
        3 => ("#BP", "breakpoint"),
        4 => ("#OF", "overflow"),
        5 => ("#BR", "bound range exceeded"),
        6 => ("#UD", "invalid opcode"),
        7 => ("#NM", "device not available"),
        8 => ("#DF", "double fault"),
        10 => ("#TS", "invalid TSS"),
        11 => ("#NP", "segment not present"),
        12 => ("#SS", "stack-segment fault"),
        13 => ("#GP", "general protection fault"),
        14 => ("#PF", "page fault"),
        16 => ("#MF", "x87 floating-point error"),
        17 => ("#AC", "alignment check"),
        18 => ("#MC", "machine check"),
        19 => ("#XM", "SIMD floating-point error"),
        20 => ("#VE", "virtualization exception"),
        21 => ("#CP", "control protection"),
        28 => ("#HV", "hypervisor injection"),
        29 => ("#VC", "VMM communication"),
        30 => ("#SX", "security exception"),
        _ => ("#??", "unknown vector"),
    }
}

/// The #PF error code, decoded: `P W U R I PK` bits.
#[derive(Clone, Copy)]
pub struct PageFaultCode(pub u64);

impl PageFaultCode {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const RESERVED: u64 = 1 << 3;
    pub const INSTRUCTION: u64 = 1 << 4;
    pub const PROTECTION_KEY: u64 = 1 << 5;
    pub const SHADOW_STACK: u64 = 1 << 6;

    pub fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }
}

impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let cause = if self.has(Self::PRESENT) {
            "protection violation"
        } else {
            "page not present"
        };
        let access = if self.has(Self::INSTRUCTION) {
            "instruction fetch"
        } else if self.has(Self::WRITE) {
            "write"
        } else {
            "read"
        };
        let mode = if self.has(Self::USER) {
            "user"
        } else {
            "kernel"
        };
        write!(f, "{mode} {access}, {cause}")?;
        if self.has(Self::RESERVED) {
            write!(f, ", reserved bit set in a page-table entry")?;
        }
        if self.has(Self::PROTECTION_KEY) {
            write!(f, ", protection key")?;
        }
        if self.has(Self::SHADOW_STACK) {
            write!(f, ", shadow stack")?;
        }
        Ok(())
    }
}

/// A selector error code (#GP, #TS, #NP, #SS), decoded.
#[derive(Clone, Copy)]
pub struct SelectorCode(pub u64);

impl fmt::Display for SelectorCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 == 0 {
            // #GP with code 0: not about a segment, e.g. a non-canonical
            // address or a privileged instruction.
            return write!(
                f,
                "no selector (non-canonical address or privileged operation)"
            );
        }
        let table = match (self.0 >> 1) & 3 {
            0 => "GDT",
            2 => "LDT",
            _ => "IDT",
        };
        let index = (self.0 >> 3) & 0x1fff;
        write!(f, "{table} entry {index}")?;
        if self.0 & 1 != 0 {
            write!(f, ", external event")?;
        }
        Ok(())
    }
}

/// One exception as the handlers and the tests see it.
pub struct Fault<'a> {
    pub frame: &'a TrapFrame,
    pub cr2: u64,
}

impl Fault<'_> {
    pub fn vector(&self) -> u64 {
        self.frame.vector
    }

    pub fn mnemonic(&self) -> &'static str {
        describe(self.frame.vector).0
    }

    pub fn page_fault_code(&self) -> Option<PageFaultCode> {
        (self.frame.vector == VECTOR_PAGE_FAULT).then_some(PageFaultCode(self.frame.error_code))
    }
}

/// The one-line summary: `#PF (vector 14, page fault) in kernel: ...`.
impl fmt::Display for Fault<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let (mnemonic, name) = describe(self.frame.vector);
        let context = if self.frame.from_user() {
            "user"
        } else {
            "kernel"
        };
        write!(
            f,
            "{mnemonic} (vector {}, {name}) in {context}",
            self.frame.vector
        )?;
        match self.frame.vector {
            14 => write!(
                f,
                ": error {:#x} ({}), CR2 {:#x}",
                self.frame.error_code,
                PageFaultCode(self.frame.error_code),
                self.cr2
            )?,
            10..=13 => write!(
                f,
                ": error {:#x} ({})",
                self.frame.error_code,
                SelectorCode(self.frame.error_code)
            )?,
            8 | 17 | 21 | 29 | 30 => write!(f, ": error {:#x}", self.frame.error_code)?,
            _ => {}
        }
        write!(f, ", RIP {:#x}", self.frame.rip)?;
        if let Some(sym) = crate::symbols::lookup(self.frame.rip) {
            write!(f, " <{sym}>")?;
        }
        Ok(())
    }
}

fn print_registers(frame: &TrapFrame, cr2: u64) {
    let f = frame;
    crate::kprintln!(
        "  RIP {:#018x}  RSP {:#018x}  RFLAGS {:#010x}  CS {:#x}  SS {:#x}  CR2 {:#x}",
        f.rip,
        f.rsp,
        f.rflags,
        f.cs,
        f.ss,
        cr2
    );
    crate::kprintln!(
        "  RAX {:#018x}  RBX {:#018x}  RCX {:#018x}  RDX {:#018x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx
    );
    crate::kprintln!(
        "  RSI {:#018x}  RDI {:#018x}  RBP {:#018x}  R8  {:#018x}",
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8
    );
    crate::kprintln!(
        "  R9  {:#018x}  R10 {:#018x}  R11 {:#018x}  R12 {:#018x}",
        f.r9,
        f.r10,
        f.r11,
        f.r12
    );
    crate::kprintln!(
        "  R13 {:#018x}  R14 {:#018x}  R15 {:#018x}",
        f.r13,
        f.r14,
        f.r15
    );
}

/// Prints the full report of an exception.
pub fn report(fault: &Fault) {
    crate::kprintln!("EXCEPTION {fault}");
    print_registers(fault.frame, fault.cr2);
    super::backtrace::print(fault.frame.rip, fault.frame.rbp);
}

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// `int3` is not an error: log it and carry on after the instruction.
pub fn breakpoint(frame: &mut TrapFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    log::info!("breakpoint at RIP {:#x}", frame.rip.wrapping_sub(1));
}

pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

/// A test may take over fatal exceptions: it checks the fault and ends the
/// run itself (see `testing::expect_fault`).
static FATAL_HOOK: Hook<fn(&Fault) -> !> = Hook::empty();

pub fn set_fatal_hook(hook: fn(&Fault) -> !) {
    FATAL_HOOK.set(hook);
}

/// An exception the kernel cannot recover from: report it and stop.
pub fn fatal(frame: &mut TrapFrame) -> ! {
    // SAFETY: interrupts are off (trap gates are interrupt gates) and this
    // path never returns to whatever held the console locks.
    unsafe { crate::klog::force_unlock_consoles() };
    let fault = Fault {
        frame,
        cr2: super::cpu::cr2(),
    };
    report(&fault);
    if let Some(hook) = FATAL_HOOK.get() {
        hook(&fault);
    }
    crate::kprintln!("kernel stopped by a fatal exception");
    crate::power::exit(crate::power::ExitCode::Failure)
}
