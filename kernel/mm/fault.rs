//! The page-fault handler: resolves user faults in the current address
//! space, turns refused ones into a segmentation fault for the faulting
//! context (or -EFAULT for the kernel's user copies), and reports every other
//! kernel fault as an oops.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use alloc::sync::Arc;

use vmcore::fault::{FaultMode, PfErrorCode};
use vmcore::{FaultAccess, FaultAction, SegvReason};

use super::aspace::{self, AddressSpace, FaultError, Prepared, SharedAddressSpace};
use super::layout::is_user_address;
use super::vmstat;
use crate::arch::hook::{FnPointer, Hook};
use crate::arch::trap::TrapFrame;
use crate::arch::{cpu, exceptions, trap, uaccess};

/// A user access the kernel refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserFault {
    pub addr: u64,
    pub ip: u64,
    pub access: FaultAccess,
    /// The #PF error code (what the MMU saw).
    pub code: u64,
    pub why: FaultError,
}

impl fmt::Display for UserFault {
    /// `segfault at 0x0 ip 0x401234 (user read, page not present: no mapping)`
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mmu = PfErrorCode(self.code);
        match self.why {
            FaultError::Segv(reason) => write!(
                f,
                "segfault at {:#x} ip {:#x} ({mmu}: {reason})",
                self.addr, self.ip
            ),
            FaultError::KernelAddress => write!(
                f,
                "segfault at {:#x} ip {:#x} ({mmu}: kernel address)",
                self.addr, self.ip
            ),
            FaultError::PastEof => write!(
                f,
                "bus error at {:#x} ip {:#x} ({mmu}: file page wholly past end of file)",
                self.addr, self.ip
            ),
            FaultError::OutOfMemory | FaultError::ZeroedFrameWanted | FaultError::CopyWanted => {
                write!(
                    f,
                    "out of memory: no frame for a page at {:#x} ip {:#x} ({mmu})",
                    self.addr, self.ip
                )
            }
        }
    }
}

/// What the process layer does with a user context whose fault was
/// refused: report it with its name and end it, or, when the process
/// handles the signal, return with the signal posted (it is delivered on
/// the way back to user mode).
pub type UserKillHook = fn(&mut TrapFrame, &UserFault);

static KILL_HOOK: Hook<UserKillHook> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for UserKillHook {}

pub fn set_user_kill_hook(hook: UserKillHook) {
    KILL_HOOK.set(hook);
}

/// What the OOM killer decided for a fault that found no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomVerdict {
    /// Memory came back (a victim was killed) or is on its way: fault again.
    Retry,
    /// Give up: a user fault kills the faulting process (SIGKILL), a user
    /// copy fails (EFAULT).
    Fail,
}

/// The process layer's OOM killer (`proc::oom`). Called with no lock held
/// (the faulting address space's lock is released); it may sleep.
pub type OomHook = fn(FaultMode) -> OomVerdict;

static OOM_HOOK: Hook<OomHook> = Hook::empty();

// SAFETY: a plain `fn` pointer type.
unsafe impl FnPointer for OomHook {}

pub fn set_oom_hook(hook: OomHook) {
    OOM_HOOK.set(hook);
}

/// A user page could not get a frame: the last resort before the fault
/// fails. Reclaim belongs before the OOM killer (here, or in the
/// allocator's failure path); the killer runs only if that frees nothing.
/// Call with no lock held.
pub fn out_of_memory(mode: FaultMode) -> OomVerdict {
    match OOM_HOOK.get() {
        Some(hook) => hook(mode),
        None => {
            if mode == FaultMode::User {
                vmstat::OOM_KILL.inc();
            }
            OomVerdict::Fail
        }
    }
}

pub fn init() {
    trap::set_page_fault_handler(page_fault);
}

fn resolve(addr: u64, access: FaultAccess, mode: FaultMode) -> Result<(), FaultError> {
    if !is_user_address(addr) {
        // Ring 3 touching the kernel half: never allowed.
        return Err(FaultError::KernelAddress);
    }
    let Some(current) = aspace::current() else {
        return Err(FaultError::Segv(SegvReason::NoRegion));
    };
    // Shared with other threads (more references than its process's, this
    // CPU's slot and ours) of which one runs on another CPU now: a new
    // frame is cleared or copied unlocked, so their faults on other pages
    // go on meanwhile. Otherwise one locked pass (a second pass costs a
    // lookup more: a thread whose siblings sleep pays nothing).
    let threaded = Arc::strong_count(&current) > SOLE_USER_REFS
        && crate::arch::tlb::running_elsewhere(
            crate::arch::percpu::this()
                .loaded_root
                .load(Ordering::Relaxed),
        );
    // Out of frames: reclaim (swapping pages out, with no lock held, so
    // this address space's pages may go too) and try again.
    for _ in 0..RECLAIM_TRIES {
        let result = fault_once(&current, addr, access, mode, threaded);
        match result {
            Err(FaultError::OutOfMemory) if direct_reclaim() > 0 => continue,
            other => return other.map(|_| ()),
        }
    }
    fault_once(&current, addr, access, mode, threaded).map(|_| ())
}

/// References to a single-threaded process's address space while it
/// faults: its process record's, this CPU's current slot's and
/// [`resolve`]'s own.
const SOLE_USER_REFS: usize = 3;

/// Faults whose frame, cleared or copied unlocked, was refused under the
/// lock (another thread filled the page first, the cache's page changed,
/// or the region did): the frame went back. Tests read it; counted only
/// on that rare path.
pub static PREPARED_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Frames cleared or copied ahead of the lock on a guess ([`FaultHint`])
/// that the fault then did not want: they went back. Tests read it.
pub static PREDICTED_UNUSED: AtomicU64 = AtomicU64::new(0);

/// What the last threaded fault on a CPU needed, to guess the next one's:
/// a thread touching fresh memory faults page after page the same way, so
/// the next fault makes its frame before taking the lock (a cleared one,
/// or a copy of the file page the region maps there) and resolves in one
/// locked pass instead of two. `root` is the page-table root of the space
/// it faulted in (0: no guess); `kind` [`GUESS_ZERO`] or [`GUESS_COPY`];
/// for a copy, the private file region `[start, end)` mapping `file` from
/// byte `offset`. Only a hint: plain atomics, written by whichever CPU the
/// fault runs on (a fault preempted and moved updates that CPU's), so the
/// fields may not even agree; the locked pass checks what it is given (a
/// copy is used only if the cache holds that same page for the fault's
/// real region), and a wrong guess costs a clear or a copy.
struct FaultHint {
    root: AtomicU64,
    kind: core::sync::atomic::AtomicU8,
    family: core::sync::atomic::AtomicU32,
    file: core::sync::atomic::AtomicU32,
    start: AtomicU64,
    end: AtomicU64,
    offset: AtomicU64,
}

const GUESS_ZERO: u8 = 1;
const GUESS_COPY: u8 = 2;

static FAULT_HINTS: [FaultHint; crate::arch::percpu::MAX_CPUS] = [const {
    FaultHint {
        root: AtomicU64::new(0),
        kind: core::sync::atomic::AtomicU8::new(0),
        family: core::sync::atomic::AtomicU32::new(0),
        file: core::sync::atomic::AtomicU32::new(0),
        start: AtomicU64::new(0),
        end: AtomicU64::new(0),
        offset: AtomicU64::new(0),
    }
}; crate::arch::percpu::MAX_CPUS];

/// Forgets every CPU's guess about the space whose page-table root is
/// `root`: it is being torn down, and its root frame may come back as
/// another space's, whose faults must not take this one's guess (a frame
/// made for its reverse-map family, a copy from its file region). Call
/// before the root frame is freed; nothing can fault in the space by then,
/// so no guess about it is recorded after.
pub fn forget_root(root: u64) {
    for hint in &FAULT_HINTS {
        let _ = hint
            .root
            .compare_exchange(root, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The page-table roots the CPUs' fault hints name now (tests).
pub fn hinted_roots() -> impl Iterator<Item = u64> {
    FAULT_HINTS
        .iter()
        .map(|h| h.root.load(Ordering::Relaxed))
        .filter(|&root| root != 0)
}

fn fault_hint() -> &'static FaultHint {
    &FAULT_HINTS[crate::arch::percpu::cpu_index().min(FAULT_HINTS.len() - 1)]
}

impl FaultHint {
    /// Makes the guessed frame for a fault at `addr` in the space of
    /// `root`, unlocked, into `prepared`. Failures just leave it empty.
    fn prepare(&self, root: u64, addr: u64, prepared: &mut Prepared) -> bool {
        if root == 0 || self.root.load(Ordering::Relaxed) != root {
            return false;
        }
        let family = self.family.load(Ordering::Relaxed);
        match self.kind.load(Ordering::Relaxed) {
            GUESS_ZERO => prepared.zeroed = AddressSpace::prepare_zeroed(family, addr),
            GUESS_COPY => {
                let (start, end) = (
                    self.start.load(Ordering::Relaxed),
                    self.end.load(Ordering::Relaxed),
                );
                if !(start..end).contains(&addr) {
                    return false;
                }
                let offset =
                    self.offset.load(Ordering::Relaxed) + (vmcore::page_down(addr) - start);
                let Ok(page) = super::pagecache::get(self.file.load(Ordering::Relaxed), offset)
                else {
                    return false;
                };
                if page.major {
                    // Read in now, for this fault: the locked pass finds
                    // it cached.
                    vmstat::PGMAJFAULT.inc();
                }
                prepared.copy = AddressSpace::prepare_copy(&page.frame, family, addr);
                prepared.source = Some(page.frame);
            }
            _ => return false,
        }
        true
    }

    /// Records what the fault just resolved under the lock needed:
    /// `region` is the private file region it copied from, if it did.
    fn record(&self, root: u64, family: u32, zero: bool, region: Option<&vmcore::Vma>) {
        let kind = match region.map(|r| (r, r.kind)) {
            Some((r, vmcore::VmaKind::File { file, offset })) => {
                self.file.store(file, Ordering::Relaxed);
                self.start.store(r.start, Ordering::Relaxed);
                self.end.store(r.end, Ordering::Relaxed);
                self.offset.store(offset, Ordering::Relaxed);
                GUESS_COPY
            }
            _ if zero => GUESS_ZERO,
            _ => 0,
        };
        self.kind.store(kind, Ordering::Relaxed);
        self.family.store(family, Ordering::Relaxed);
        self.root
            .store(if kind == 0 { 0 } else { root }, Ordering::Relaxed);
    }
}

/// One try at the fault. `threaded`: a first locked pass that finds a
/// demand-zero fill or a private copy of a file page stops there; the
/// frame is cleared or copied with the lock released, and a second pass
/// decides again with it in hand (the page may have been filled, the
/// cache's page replaced or the region unmapped meanwhile: the frame then
/// goes back, after the unlock). When this CPU's last threaded fault in
/// the same space needed the same ([`FaultHint`]), the frame is made
/// before the first pass, which then usually completes the fault.
#[inline(always)]
fn fault_once(
    space: &SharedAddressSpace,
    addr: u64,
    access: FaultAccess,
    mode: FaultMode,
    threaded: bool,
) -> Result<FaultAction, FaultError> {
    if !threaded {
        return space.lock().handle_fault(addr, access, mode);
    }
    let mut prepared = Prepared::default();
    let root = crate::arch::percpu::this()
        .loaded_root
        .load(Ordering::Relaxed);
    let hint = fault_hint();
    let guessed = hint.prepare(root, addr, &mut prepared);
    let offered_zero = prepared.zeroed.is_some();
    let offered_copy = prepared.copy.is_some();
    let (first, family, region) = {
        let mut locked = space.lock();
        let first = locked.handle_fault_prepared(addr, access, mode, &mut prepared, true);
        let copied = matches!(first, Err(FaultError::CopyWanted))
            || (offered_copy && prepared.copy.is_none());
        let region = if copied {
            locked.vmas().find(addr).copied()
        } else {
            None
        };
        (first, locked.family(), region)
    };
    let wanted_zero = matches!(first, Err(FaultError::ZeroedFrameWanted))
        || (offered_zero && prepared.zeroed.is_none());
    hint.record(root, family, wanted_zero, region.as_ref());
    if guessed && (prepared.zeroed.is_some() || prepared.copy.is_some()) {
        // Guessed wrong (the page needed no new frame, or another one):
        // the frame goes back with the lock released.
        PREDICTED_UNUSED.fetch_add(1, Ordering::Relaxed);
    }
    prepared.zeroed = None;
    prepared.copy = None;
    if !matches!(first, Err(FaultError::CopyWanted)) {
        // The guessed copy's source, if the first pass did not hold one.
        prepared.source = None;
    }
    // No frame: out of memory, as the fill under the lock would have been
    // (the same allocator path; the caller reclaims and comes back). The
    // source of a copy stays in `prepared` until the second pass has
    // decided.
    match first {
        Err(FaultError::ZeroedFrameWanted) => {
            prepared.zeroed =
                Some(AddressSpace::prepare_zeroed(family, addr).ok_or(FaultError::OutOfMemory)?);
        }
        Err(FaultError::CopyWanted) => {
            let src = prepared.source.as_ref().ok_or(FaultError::OutOfMemory)?;
            prepared.copy =
                Some(AddressSpace::prepare_copy(src, family, addr).ok_or(FaultError::OutOfMemory)?);
        }
        other => return other,
    }
    let result = space
        .lock()
        .handle_fault_prepared(addr, access, mode, &mut prepared, false);
    if prepared.zeroed.is_some() || prepared.copy.is_some() {
        PREPARED_REFUSED.fetch_add(1, Ordering::Relaxed);
    }
    // Refused: back to the allocator, and the source's reference given
    // up, with the lock released.
    drop(prepared);
    result
}

/// Direct reclaim for a fault: the process waits for memory (a stall,
/// counted in `pressure`).
fn direct_reclaim() -> u64 {
    let _stall = super::psi::MemStall::enter();
    super::reclaim::reclaim_for_user()
}

/// How often a fault reclaims and retries before it is out of memory
/// (each round frees a batch, or ends the loop if it freed nothing).
const RECLAIM_TRIES: usize = 16;

/// [`resolve`], and when no frame was left, the OOM killer (with the
/// address-space lock released) and another try if it freed memory.
fn resolve_or_oom(addr: u64, access: FaultAccess, mode: FaultMode) -> Result<(), FaultError> {
    loop {
        match resolve(addr, access, mode) {
            Err(FaultError::OutOfMemory) if out_of_memory(mode) == OomVerdict::Retry => {}
            result => return result,
        }
    }
}

fn page_fault(frame: &mut TrapFrame) {
    let start = crate::time::rdtsc();
    handle_page_fault(frame);
    vmstat::FAULT_HANDLER_CYCLES.add(crate::time::rdtsc() - start);
}

fn handle_page_fault(frame: &mut TrapFrame) {
    vmstat::PGFAULT.inc();
    let addr = cpu::cr2();
    let access = PfErrorCode(frame.error_code).access();
    if frame.from_user() {
        match resolve_or_oom(addr, access, FaultMode::User) {
            Ok(()) => return,
            Err(why) => {
                let fault = UserFault {
                    addr,
                    ip: frame.rip,
                    access,
                    code: frame.error_code,
                    why,
                };
                kill_user(frame, &fault);
                return;
            }
        }
    }
    if uaccess::is_user_access(frame) && is_user_address(addr) {
        // The kernel copying to or from user memory on a user's behalf:
        // resolve like a user fault; if refused, the copy fails with EFAULT.
        if resolve_or_oom(addr, access, FaultMode::Kernel).is_err() {
            uaccess::apply_fixup(frame);
        }
        return;
    }
    if uaccess::is_kernel_read(frame) {
        // A fault-safe read of kernel memory (the fatal-error reports'):
        // it returns None instead of faulting again.
        uaccess::apply_kernel_read_fixup(frame);
        return;
    }
    // Anything else is a kernel bug: an oops.
    exceptions::fatal(frame)
}

fn kill_user(frame: &mut TrapFrame, fault: &UserFault) {
    if let Some(hook) = KILL_HOOK.get() {
        hook(frame, fault);
        return;
    }
    crate::kprintln!("[no process] {fault}");
    exceptions::fatal(frame)
}
