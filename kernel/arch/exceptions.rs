//! What to do with CPU exceptions, and how to report them.
//!
//! A fatal kernel exception prints one summary line (name, vector, decoded
//! error code, CR2, RIP with its symbol, context), then the registers, for a
//! page fault the page-table entries that translate CR2, the words at the
//! stack pointer and a backtrace, and ends the run with the failure exit
//! code. The report goes through `panic::begin`: an exception or panic while
//! printing it ends the run at once. Everything it reads besides the trap
//! frame goes through the fault-safe `read_kernel_u64`, and every walk is
//! bounded.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use super::backtrace;
use super::hook::Hook;
use super::trap::{TrapFrame, VECTOR_PAGE_FAULT};
use super::uaccess::read_kernel_u64;
use crate::mm::layout::PAGE_OFFSET;
use crate::panic::{set_stage, Entry, Stage};
use vmcore::fault::PfErrorCode;

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
    /// What the report saw (filled in once it is printed).
    pub report: ReportSummary,
}

/// What a fatal report saw while reading memory that may be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportSummary {
    /// The page walk of CR2 (page faults only).
    pub walk: Option<PageWalk>,
    pub backtrace: backtrace::Summary,
}

impl Default for ReportSummary {
    fn default() -> Self {
        ReportSummary {
            walk: None,
            backtrace: backtrace::Summary {
                frames: 0,
                end: backtrace::End::Complete,
            },
        }
    }
}

/// Why a page walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// An entry without the present bit.
    NotPresent,
    /// A leaf (4 KiB page, or a huge page at a higher level).
    Leaf,
    /// A table that could not be read (the read faulted).
    Unreadable,
}

/// The software page walk of one address: how many entries were read
/// (1 = the PML4 entry only) and why it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageWalk {
    pub entries: usize,
    pub end: WalkEnd,
}

const PTE_PRESENT: u64 = 1 << 0;
const PTE_HUGE: u64 = 1 << 7;
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;
const LEVEL_NAMES: [&str; 4] = ["PML4", "PDPT", "PD", "PT"];

fn read_cr3() -> u64 {
    let cr3: u64;
    // SAFETY: reads a control register.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
    cr3
}

/// Walks the live page tables for `addr` (at most four levels), printing
/// each entry: `page walk of 0x...: PML4[273]=0x... PDPT[0]=0x... ...`.
/// Tables are read through the direct map with fault-safe reads, so a
/// corrupt entry pointing anywhere ends the walk instead of faulting.
pub fn print_page_walk(addr: u64) -> PageWalk {
    crate::kprint!("page walk of {addr:#x}:");
    let mut table = read_cr3() & PTE_ADDR;
    let mut walk = PageWalk {
        entries: 0,
        end: WalkEnd::Unreadable,
    };
    for (level, name) in LEVEL_NAMES.iter().enumerate() {
        let index = (addr >> (39 - 9 * level)) & 0x1ff;
        // A corrupt entry may hold any address: no overflow on the way.
        let at = table
            .checked_add(PAGE_OFFSET)
            .and_then(|virt| virt.checked_add(index * 8));
        let Some(entry) = at.and_then(read_kernel_u64) else {
            crate::kprint!(" {name} at phys {table:#x} unreadable");
            walk.end = WalkEnd::Unreadable;
            break;
        };
        walk.entries += 1;
        crate::kprint!(" {name}[{index}]={entry:#x}");
        if entry & PTE_PRESENT == 0 {
            walk.end = WalkEnd::NotPresent;
            break;
        }
        if level == 3 || (level > 0 && entry & PTE_HUGE != 0) {
            walk.end = WalkEnd::Leaf;
            break;
        }
        table = entry & PTE_ADDR;
    }
    crate::kprintln!();
    walk
}

/// Prints the words at a kernel stack pointer (fault-safe reads).
fn print_stack(rsp: u64) {
    const WORDS: u64 = 8;
    crate::kprint!("stack at {rsp:#x}:");
    for i in 0..WORDS {
        match rsp.checked_add(i * 8).and_then(read_kernel_u64) {
            Some(word) => crate::kprint!(" {word:#x}"),
            None => {
                crate::kprint!(" (unreadable)");
                break;
            }
        }
    }
    crate::kprintln!();
}

impl Fault<'_> {
    pub fn vector(&self) -> u64 {
        self.frame.vector
    }

    pub fn mnemonic(&self) -> &'static str {
        describe(self.frame.vector).0
    }

    pub fn page_fault_code(&self) -> Option<PfErrorCode> {
        (self.frame.vector == VECTOR_PAGE_FAULT).then_some(PfErrorCode(self.frame.error_code))
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
                PfErrorCode(self.frame.error_code),
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

/// Prints the full report of an exception (the caller entered it with
/// `panic::begin`).
fn report(fault: &Fault) -> ReportSummary {
    set_stage(Stage::Message);
    crate::kprintln!("EXCEPTION {fault}");
    set_stage(Stage::Registers);
    print_registers(fault.frame, fault.cr2);
    let mut summary = ReportSummary::default();
    if fault.vector() == VECTOR_PAGE_FAULT {
        set_stage(Stage::PageWalk);
        summary.walk = Some(print_page_walk(fault.cr2));
    }
    if !fault.frame.from_user() {
        set_stage(Stage::StackDump);
        print_stack(fault.frame.rsp);
    }
    set_stage(Stage::Backtrace);
    summary.backtrace = backtrace::print(fault.frame.rip, fault.frame.rbp, fault.frame.rsp);
    summary
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
    // Read CR2 first: a fault inside the report would overwrite it.
    let cr2 = super::cpu::cr2();
    // A second failure inside a report ends the run here.
    crate::panic::begin(Entry::Exception {
        vector: frame.vector,
        rip: frame.rip,
    });
    let mut fault = Fault {
        frame,
        cr2,
        report: ReportSummary::default(),
    };
    fault.report = report(&fault);
    set_stage(Stage::Verdict);
    if let Some(hook) = FATAL_HOOK.get() {
        hook(&fault);
    }
    crate::kprintln!("kernel stopped by a fatal exception");
    crate::power::exit(crate::power::ExitCode::Failure)
}
