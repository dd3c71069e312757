//! POSIX signals on Linux x86_64: the numbers, default actions and mask
//! rules, and the signal frame a handler runs on (`struct rt_sigframe`:
//! return address, `ucontext_t` with Linux's `sigcontext`, `siginfo_t`, and
//! the FXSAVE area above it), written and read as bytes so the layout is
//! checked here on the host, field by field.
//!
//! Frame layout, from the handler's RSP upward (what `get_sigframe` and
//! `setup_rt_frame` in Linux's `arch/x86/kernel/signal*.c` build):
//!
//! | offset | what |
//! |---|---|
//! | 0 | `pretcode`: `sa_restorer` (the handler's `ret` goes there) |
//! | 8 | `ucontext_t` (304 bytes): flags, link, `uc_stack`, `uc_mcontext`, `uc_sigmask` |
//! | 312 | `siginfo_t` (128 bytes) |
//! | above | the 512-byte FXSAVE image, 64-byte aligned, `uc_mcontext.fpstate` points at it |
//!
//! The frame itself starts at `round_down(x, 16) - 8`, so the handler
//! begins with the stack as a `call` leaves it; 128 bytes below the
//! interrupted RSP (the red zone) are never touched.

/// Highest signal number (`_NSIG`).
pub const NSIG: u8 = 64;

#[allow(missing_docs)]
pub mod num {
    pub const SIGHUP: u8 = 1;
    pub const SIGINT: u8 = 2;
    pub const SIGQUIT: u8 = 3;
    pub const SIGILL: u8 = 4;
    pub const SIGTRAP: u8 = 5;
    pub const SIGABRT: u8 = 6;
    pub const SIGBUS: u8 = 7;
    pub const SIGFPE: u8 = 8;
    pub const SIGKILL: u8 = 9;
    pub const SIGUSR1: u8 = 10;
    pub const SIGSEGV: u8 = 11;
    pub const SIGUSR2: u8 = 12;
    pub const SIGPIPE: u8 = 13;
    pub const SIGALRM: u8 = 14;
    pub const SIGTERM: u8 = 15;
    pub const SIGSTKFLT: u8 = 16;
    pub const SIGCHLD: u8 = 17;
    pub const SIGCONT: u8 = 18;
    pub const SIGSTOP: u8 = 19;
    pub const SIGTSTP: u8 = 20;
    pub const SIGTTIN: u8 = 21;
    pub const SIGTTOU: u8 = 22;
    pub const SIGURG: u8 = 23;
    pub const SIGXCPU: u8 = 24;
    pub const SIGXFSZ: u8 = 25;
    pub const SIGVTALRM: u8 = 26;
    pub const SIGPROF: u8 = 27;
    pub const SIGWINCH: u8 = 28;
    pub const SIGIO: u8 = 29;
    pub const SIGPWR: u8 = 30;
    pub const SIGSYS: u8 = 31;
}
use num::*;

/// `sa_handler` values that are not functions.
pub const SIG_DFL: u64 = 0;
/// Ignore the signal.
pub const SIG_IGN: u64 = 1;

/// `sa_flags` bits.
#[allow(missing_docs)]
pub mod flags {
    pub const SA_NOCLDSTOP: u64 = 1;
    pub const SA_NOCLDWAIT: u64 = 2;
    pub const SA_SIGINFO: u64 = 4;
    pub const SA_RESTORER: u64 = 0x0400_0000;
    pub const SA_ONSTACK: u64 = 0x0800_0000;
    pub const SA_RESTART: u64 = 0x1000_0000;
    pub const SA_NODEFER: u64 = 0x4000_0000;
    pub const SA_RESETHAND: u64 = 0x8000_0000;
}

/// `ss_flags` of `sigaltstack`.
#[allow(missing_docs)]
pub mod ss {
    pub const SS_ONSTACK: i32 = 1;
    pub const SS_DISABLE: i32 = 2;
    pub const SS_AUTODISARM: i32 = 1 << 31;
    /// Smallest alternate stack `sigaltstack` accepts (`MINSIGSTKSZ`).
    pub const MINSIGSTKSZ: u64 = 2048;
}

/// `si_code` values.
#[allow(missing_docs)]
pub mod code {
    pub const SI_USER: i32 = 0;
    pub const SI_KERNEL: i32 = 0x80;
    pub const SI_TKILL: i32 = -6;
    pub const SI_QUEUE: i32 = -1;
    pub const SI_TIMER: i32 = -2;
    pub const SEGV_MAPERR: i32 = 1;
    pub const SEGV_ACCERR: i32 = 2;
    pub const BUS_ADRERR: i32 = 2;
    pub const ILL_ILLOPN: i32 = 2;
    pub const FPE_INTDIV: i32 = 1;
    pub const FPE_FLTINV: i32 = 7;
    pub const CLD_EXITED: i32 = 1;
    pub const CLD_KILLED: i32 = 2;
    pub const CLD_DUMPED: i32 = 3;
    pub const CLD_STOPPED: i32 = 5;
    pub const CLD_CONTINUED: i32 = 6;
}

/// The bit of `sig` in a 64-bit `sigset_t` (signal 1 is bit 0).
pub const fn bit(sig: u8) -> u64 {
    1u64 << (sig - 1)
}

/// Signals no mask can block and no action can catch or ignore.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// Whether `sig` is a signal number at all (1..=64).
pub const fn valid(sig: u64) -> bool {
    sig >= 1 && sig <= NSIG as u64
}

/// What `SIG_DFL` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// Terminate the process.
    Term,
    /// Terminate with a core dump (the core bit in the wait status).
    Core,
    /// Nothing: the signal is discarded.
    Ignore,
    /// Stop the process (job control).
    Stop,
    /// Continue a stopped process.
    Cont,
}

/// The default action of `sig` (signal(7)).
pub fn default_action(sig: u8) -> Default {
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => Default::Core,
        SIGCHLD | SIGURG | SIGWINCH => Default::Ignore,
        SIGCONT => Default::Cont,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Default::Stop,
        _ => Default::Term,
    }
}

/// The wait status of a death by `sig` (with the core bit, 0x80, for a
/// signal whose default dumps core).
pub fn death_status(sig: u8) -> i32 {
    let core = if default_action(sig) == Default::Core {
        0x80
    } else {
        0
    };
    (sig as i32 & 0x7f) | core
}

/// The lowest-numbered signal in `set` (standard signals before real-time
/// ones, as Linux picks them; synchronous faults are posted alone).
pub fn first(set: u64) -> Option<u8> {
    (set != 0).then(|| set.trailing_zeros() as u8 + 1)
}

/// `rt_sigprocmask`'s `how`.
pub fn apply_how(blocked: u64, how: u64, set: u64) -> Option<u64> {
    let new = match how {
        0 => blocked | set,  // SIG_BLOCK
        1 => blocked & !set, // SIG_UNBLOCK
        2 => set,            // SIG_SETMASK
        _ => return None,
    };
    Some(new & !UNBLOCKABLE)
}

/// RFLAGS bits a signal frame may change on `rt_sigreturn`: the arithmetic
/// flags, DF and AC (Linux's `FIX_EFLAGS` without TF and RF: Ferrite does
/// not single-step user code).
pub const FIX_EFLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4_0000;

/// The RFLAGS `rt_sigreturn` resumes with: the user's arithmetic flags,
/// the kernel's choice for the rest (IF stays set).
pub fn restore_eflags(current: u64, saved: u64) -> u64 {
    (current & !FIX_EFLAGS) | (saved & FIX_EFLAGS) | 0x202
}

/// `siginfo_t`'s variable part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoKind {
    /// Sent by `kill`/`tgkill` (or the kernel with `SI_KERNEL`).
    Kill {
        /// Sender.
        pid: i32,
        /// Sender's user (always root).
        uid: u32,
    },
    /// Sent with a value (`rt_sigqueueinfo`: the sender's own words).
    Value {
        /// `si_pid`.
        pid: i32,
        /// `si_uid`.
        uid: u32,
        /// `si_value` (`sival_int` in its low half).
        value: u64,
    },
    /// A fault: the address.
    Fault {
        /// `si_addr`.
        addr: u64,
    },
    /// `SIGCHLD`: which child, and its exit code or signal.
    Child {
        /// The child.
        pid: i32,
        /// Exit code, or the signal that killed it.
        status: i32,
    },
}

/// A `siginfo_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// `si_signo`.
    pub signo: i32,
    /// `si_code`.
    pub code: i32,
    /// The rest.
    pub kind: InfoKind,
}

/// Bytes in a `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn get_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_le_bytes(b)
}

fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

impl SigInfo {
    /// Its bytes as `siginfo_t` (x86_64: the union starts at offset 16).
    pub fn to_bytes(&self) -> [u8; SIGINFO_SIZE] {
        let mut b = [0u8; SIGINFO_SIZE];
        put(&mut b, 0, &self.signo.to_le_bytes());
        put(&mut b, 8, &self.code.to_le_bytes());
        match self.kind {
            InfoKind::Kill { pid, uid } => {
                put(&mut b, 16, &pid.to_le_bytes());
                put(&mut b, 20, &uid.to_le_bytes());
            }
            InfoKind::Value { pid, uid, value } => {
                put(&mut b, 16, &pid.to_le_bytes());
                put(&mut b, 20, &uid.to_le_bytes());
                put(&mut b, 24, &value.to_le_bytes());
            }
            InfoKind::Fault { addr } => put(&mut b, 16, &addr.to_le_bytes()),
            InfoKind::Child { pid, status } => {
                put(&mut b, 16, &pid.to_le_bytes());
                put(&mut b, 24, &status.to_le_bytes());
            }
        }
        b
    }
}

/// The first real-time signal (the kernel's `SIGRTMIN`; C libraries
/// keep a few for themselves): real-time signals queue, one entry per
/// send, where standard ones (below) coalesce into one pending bit.
pub const SIGRTMIN: u8 = 32;

/// Whether `sig` is a real-time (queued) signal.
pub const fn is_realtime(sig: u8) -> bool {
    sig >= SIGRTMIN
}

/// The info a user passed to `rt_sigqueueinfo` (128 bytes, checked by
/// the caller): its code, `si_pid`, `si_uid` and `si_value` words are
/// kept; the signal number is the call's.
pub fn info_from_user(sig: u8, b: &[u8; SIGINFO_SIZE]) -> SigInfo {
    SigInfo {
        signo: sig as i32,
        code: get_i32(b, 8),
        kind: InfoKind::Value {
            pid: get_i32(b, 16),
            uid: get_i32(b, 20) as u32,
            value: get_u64(b, 24),
        },
    }
}

/// `alarm`'s result: the seconds left of the old timer (`left_ns`),
/// rounded as Linux's `alarm_setitimer` (up at half a second, and never
/// 0 for a timer still armed).
pub fn alarm_seconds(left_ns: u64) -> u64 {
    let (sec, usec) = (left_ns / 1_000_000_000, (left_ns % 1_000_000_000) / 1000);
    if usec >= 500_000 || (sec == 0 && usec > 0) {
        sec + 1
    } else {
        sec
    }
}

/// A `struct timeval` pair's nanoseconds for `setitimer`: `None` (EINVAL)
/// unless `0 <= tv_usec < 1e6` and `tv_sec >= 0`.
pub fn timeval_ns(sec: i64, usec: i64) -> Option<u64> {
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return None;
    }
    Some(
        (sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(usec as u64 * 1000),
    )
}

/// Nanoseconds as a `struct timeval` for `getitimer`, rounded up to the
/// microsecond so a timer still armed never reads as zero.
pub fn ns_timeval(ns: u64) -> [i64; 2] {
    let us = ns.div_ceil(1000);
    [(us / 1_000_000) as i64, (us % 1_000_000) as i64]
}

/// The registers a signal frame saves: `struct sigcontext` (x86_64) minus
/// the FPU pointer and the reserved words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Regs {
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub rdx: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rsp: u64,
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
}

/// `stack_t`: an alternate signal stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    /// `ss_sp`: lowest address.
    pub sp: u64,
    /// `ss_flags`.
    pub flags: i32,
    /// `ss_size`.
    pub size: u64,
}

/// Bytes in a `stack_t`.
pub const STACK_T_SIZE: usize = 24;

impl StackT {
    /// Its bytes.
    pub fn to_bytes(&self) -> [u8; STACK_T_SIZE] {
        let mut b = [0u8; STACK_T_SIZE];
        put(&mut b, 0, &self.sp.to_le_bytes());
        put(&mut b, 8, &self.flags.to_le_bytes());
        put(&mut b, 16, &self.size.to_le_bytes());
        b
    }

    /// Read from its bytes (the padding after `ss_flags` is ignored).
    pub fn from_bytes(b: &[u8; STACK_T_SIZE]) -> StackT {
        StackT {
            sp: get_u64(b, 0),
            flags: get_i32(b, 8),
            size: get_u64(b, 16),
        }
    }

    /// Whether `sp` lies on this stack (Linux's `on_sig_stack`: above the
    /// base, at most at the top).
    pub fn contains(&self, sp: u64) -> bool {
        self.size != 0 && sp > self.sp && sp - self.sp <= self.size
    }
}

/// `ucontext_t` as the kernel writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UContext {
    /// `uc_flags`.
    pub flags: u64,
    /// `uc_link` (unused by the kernel).
    pub link: u64,
    /// `uc_stack`: the alternate stack when the signal came.
    pub stack: StackT,
    /// `uc_mcontext`'s registers.
    pub regs: Regs,
    /// `uc_mcontext.fpstate`: the FXSAVE image, or 0.
    pub fpstate: u64,
    /// `uc_sigmask`: the mask to restore.
    pub sigmask: u64,
}

/// Bytes in the kernel's `ucontext_t` (up to and with `uc_sigmask`).
pub const UCONTEXT_SIZE: usize = 304;
/// Offset of `uc_mcontext` in `ucontext_t`.
pub const MCONTEXT_OFFSET: usize = 40;
/// `uc_flags`: `UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`, as Linux sets.
pub const UC_FLAGS: u64 = 0x2 | 0x4;

impl UContext {
    /// Its bytes.
    pub fn to_bytes(&self) -> [u8; UCONTEXT_SIZE] {
        let mut b = [0u8; UCONTEXT_SIZE];
        put(&mut b, 0, &self.flags.to_le_bytes());
        put(&mut b, 8, &self.link.to_le_bytes());
        put(&mut b, 16, &self.stack.to_bytes());
        let r = &self.regs;
        let m = MCONTEXT_OFFSET;
        let words = [
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx,
            r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.eflags,
        ];
        for (i, w) in words.iter().enumerate() {
            put(&mut b, m + 8 * i, &w.to_le_bytes());
        }
        // cs, gs, fs, ss as four u16.
        put(&mut b, m + 144, &r.cs.to_le_bytes());
        put(&mut b, m + 150, &r.ss.to_le_bytes());
        put(&mut b, m + 152, &r.err.to_le_bytes());
        put(&mut b, m + 160, &r.trapno.to_le_bytes());
        put(&mut b, m + 168, &r.oldmask.to_le_bytes());
        put(&mut b, m + 176, &r.cr2.to_le_bytes());
        put(&mut b, m + 184, &self.fpstate.to_le_bytes());
        put(&mut b, 296, &self.sigmask.to_le_bytes());
        b
    }

    /// Read back from its bytes (what `rt_sigreturn` does).
    pub fn from_bytes(b: &[u8; UCONTEXT_SIZE]) -> UContext {
        let m = MCONTEXT_OFFSET;
        let w = |i: usize| get_u64(b, m + 8 * i);
        let mut stack = [0u8; STACK_T_SIZE];
        stack.copy_from_slice(&b[16..16 + STACK_T_SIZE]);
        UContext {
            flags: get_u64(b, 0),
            link: get_u64(b, 8),
            stack: StackT::from_bytes(&stack),
            regs: Regs {
                r8: w(0),
                r9: w(1),
                r10: w(2),
                r11: w(3),
                r12: w(4),
                r13: w(5),
                r14: w(6),
                r15: w(7),
                rdi: w(8),
                rsi: w(9),
                rbp: w(10),
                rbx: w(11),
                rdx: w(12),
                rax: w(13),
                rcx: w(14),
                rsp: w(15),
                rip: w(16),
                eflags: w(17),
                cs: get_u16(b, m + 144),
                ss: get_u16(b, m + 150),
                err: get_u64(b, m + 152),
                trapno: get_u64(b, m + 160),
                oldmask: get_u64(b, m + 168),
                cr2: get_u64(b, m + 176),
            },
            fpstate: get_u64(b, m + 184),
            sigmask: get_u64(b, 296),
        }
    }
}

/// Bytes of the FXSAVE image in a frame.
pub const FPSTATE_SIZE: usize = 512;
/// Bytes from the frame's start to the end of its `siginfo_t`.
pub const FRAME_SIZE: usize = 8 + UCONTEXT_SIZE + SIGINFO_SIZE;
/// Offset of `uc` in the frame.
pub const UC_OFFSET: u64 = 8;
/// Offset of `info` in the frame.
pub const INFO_OFFSET: u64 = 8 + UCONTEXT_SIZE as u64;
/// Most bytes a frame takes, alignment gaps included (for bounce buffers).
pub const MAX_FRAME_BYTES: usize = FRAME_SIZE + FPSTATE_SIZE + 64 + 16 + 8;
/// The red zone below a user RSP that the frame skips.
pub const RED_ZONE: u64 = 128;

/// Where a frame goes (Linux's `get_sigframe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The frame's start: the handler's RSP.
    pub frame: u64,
    /// The FXSAVE image (64-byte aligned).
    pub fpstate: u64,
    /// Just past the FXSAVE image: the frame occupies `[frame, end)`.
    pub end: u64,
    /// Whether the handler runs on the alternate stack (newly entered).
    pub entering_altstack: bool,
}

/// Places a frame for a signal interrupting user RSP `sp`, on the
/// alternate stack `alt` when the action has `SA_ONSTACK` (`onstack`), the
/// stack is enabled and not already in use. `None` if the frame would
/// overflow the alternate stack or wrap around (the process then dies by
/// SIGSEGV, as on Linux).
pub fn place_frame(sp: u64, onstack: bool, alt: &StackT) -> Option<Placement> {
    let mut top = sp.checked_sub(RED_ZONE)?;
    let nested = alt.contains(sp);
    let enabled = alt.flags & ss::SS_DISABLE == 0 && alt.size != 0;
    let mut entering = false;
    if onstack && enabled && !nested {
        top = alt.sp.checked_add(alt.size)?;
        entering = true;
    }
    let fpstate = top.checked_sub(FPSTATE_SIZE as u64)? & !63;
    let frame = (fpstate.checked_sub(FRAME_SIZE as u64)? & !15).checked_sub(8)?;
    if (entering || nested) && !alt.contains(frame) {
        return None;
    }
    Some(Placement {
        frame,
        fpstate,
        end: fpstate + FPSTATE_SIZE as u64,
        entering_altstack: entering,
    })
}

/// The alternate stack as `uc_stack` and `sigaltstack`'s old value show
/// it, seen from user RSP `sp`: `SS_ONSTACK` when `sp` is on it,
/// `SS_DISABLE` when there is none.
pub fn altstack_view(alt: &StackT, sp: u64) -> StackT {
    let mut out = *alt;
    if alt.size == 0 || alt.flags & ss::SS_DISABLE != 0 {
        out = StackT {
            sp: alt.sp,
            flags: ss::SS_DISABLE,
            size: alt.size,
        };
    } else if alt.contains(sp) {
        out.flags = ss::SS_ONSTACK | (alt.flags & ss::SS_AUTODISARM);
    }
    out
}

/// Checks a new alternate stack for `sigaltstack`: the stack to install, or
/// the errno (`EINVAL` for bad flags, `ENOMEM` when smaller than
/// `MINSIGSTKSZ`).
pub fn new_altstack(new: &StackT) -> Result<StackT, i32> {
    const EINVAL: i32 = 22;
    const ENOMEM: i32 = 12;
    let mode = new.flags & !ss::SS_AUTODISARM;
    match mode {
        ss::SS_DISABLE => Ok(StackT {
            sp: 0,
            flags: ss::SS_DISABLE,
            size: 0,
        }),
        0 | ss::SS_ONSTACK => {
            if new.size < ss::MINSIGSTKSZ {
                return Err(ENOMEM);
            }
            if new.sp.checked_add(new.size).is_none() {
                return Err(EINVAL);
            }
            Ok(StackT {
                sp: new.sp,
                flags: new.flags & ss::SS_AUTODISARM,
                size: new.size,
            })
        }
        _ => Err(EINVAL),
    }
}

/// A whole frame's bytes for [`Placement`] `at`: return address, context,
/// info and the FXSAVE image; `out` must hold `at.end - at.frame` bytes.
pub fn write_frame(
    out: &mut [u8],
    at: &Placement,
    restorer: u64,
    uc: &UContext,
    info: &SigInfo,
    fpu: &[u8; FPSTATE_SIZE],
) {
    let len = (at.end - at.frame) as usize;
    let out = &mut out[..len];
    out.fill(0);
    let mut uc = *uc;
    uc.fpstate = at.fpstate;
    put(out, 0, &restorer.to_le_bytes());
    put(out, UC_OFFSET as usize, &uc.to_bytes());
    put(out, INFO_OFFSET as usize, &info.to_bytes());
    put(out, (at.fpstate - at.frame) as usize, fpu);
}

/// Makes a user FXSAVE image safe for FXRSTOR: MXCSR bits the CPU does not
/// have (`mxcsr_mask`) would fault in the kernel, so they are cleared; the
/// reserved tail is not looked at by the CPU.
pub fn sanitize_fxsave(fpu: &mut [u8; FPSTATE_SIZE], mxcsr_mask: u32) {
    let mxcsr = u32::from_le_bytes([fpu[24], fpu[25], fpu[26], fpu[27]]) & mxcsr_mask;
    fpu[24..28].copy_from_slice(&mxcsr.to_le_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn alarm_rounds_as_linux() {
        assert_eq!(alarm_seconds(0), 0);
        assert_eq!(alarm_seconds(999), 0);
        assert_eq!(alarm_seconds(1_000), 1);
        assert_eq!(alarm_seconds(1_400_000_000), 1);
        assert_eq!(alarm_seconds(1_500_000_000), 2);
        assert_eq!(alarm_seconds(3_000_000_000), 3);
    }

    #[test]
    fn timevals_convert_and_check() {
        assert_eq!(timeval_ns(1, 5), Some(1_000_005_000));
        assert_eq!(timeval_ns(-1, 0), None);
        assert_eq!(timeval_ns(0, 1_000_000), None);
        assert_eq!(timeval_ns(0, -1), None);
        assert_eq!(ns_timeval(1), [0, 1]);
        assert_eq!(ns_timeval(2_000_001_000), [2, 1]);
    }

    #[test]
    fn queued_info_keeps_the_users_words() {
        let mut b = [0u8; SIGINFO_SIZE];
        b[0..4].copy_from_slice(&99i32.to_le_bytes());
        b[8..12].copy_from_slice(&code::SI_QUEUE.to_le_bytes());
        b[16..20].copy_from_slice(&7i32.to_le_bytes());
        b[24..32].copy_from_slice(&0x1234u64.to_le_bytes());
        let info = info_from_user(40, &b);
        assert_eq!(info.signo, 40);
        assert!(is_realtime(40) && !is_realtime(31));
        let out = info.to_bytes();
        assert_eq!(&out[0..4], &40i32.to_le_bytes());
        assert_eq!(&out[8..32], &b[8..32]);
    }

    use super::*;

    #[test]
    fn default_actions_match_signal7() {
        assert_eq!(default_action(SIGSEGV), Default::Core);
        assert_eq!(default_action(SIGINT), Default::Term);
        assert_eq!(default_action(SIGCHLD), Default::Ignore);
        assert_eq!(default_action(SIGTSTP), Default::Stop);
        assert_eq!(default_action(40), Default::Term);
        assert_eq!(death_status(SIGSEGV), 0x8b);
        assert_eq!(death_status(SIGTERM), 15);
        assert_eq!(death_status(SIGKILL), 9);
    }

    #[test]
    fn masks() {
        assert_eq!(bit(1), 1);
        assert_eq!(bit(64), 1 << 63);
        assert_eq!(apply_how(0, 0, u64::MAX), Some(!UNBLOCKABLE));
        assert_eq!(apply_how(0b110, 1, 0b10), Some(0b100));
        assert_eq!(apply_how(1, 2, 2), Some(2));
        assert_eq!(apply_how(1, 3, 2), None);
        assert_eq!(first(0), None);
        assert_eq!(first(bit(SIGUSR1) | bit(SIGTERM)), Some(SIGUSR1));
        assert!(valid(1) && valid(64) && !valid(0) && !valid(65));
    }

    #[test]
    fn ucontext_offsets_are_linuxs() {
        let uc = UContext {
            flags: 6,
            regs: Regs {
                r8: 0x11,
                rip: 0x401000,
                rsp: 0x7fff0000,
                eflags: 0x246,
                cs: 0x23,
                ss: 0x1b,
                cr2: 0xdead,
                ..Regs::default()
            },
            fpstate: 0x7ffe0000,
            sigmask: 0x8000,
            ..UContext::default()
        };
        let b = uc.to_bytes();
        // musl's gregs[]: REG_R8 = 0, REG_RSP = 15, REG_RIP = 16, REG_EFL
        // = 17, REG_CSGSFS = 18, REG_CR2 = 22; then fpregs, reserved, mask.
        let greg = |i: usize| get_u64(&b, MCONTEXT_OFFSET + 8 * i);
        assert_eq!(greg(0), 0x11);
        assert_eq!(greg(15), 0x7fff0000);
        assert_eq!(greg(16), 0x401000);
        assert_eq!(greg(17), 0x246);
        assert_eq!(greg(18) & 0xffff, 0x23);
        assert_eq!(greg(22), 0xdead);
        assert_eq!(greg(23), 0x7ffe0000);
        assert_eq!(get_u64(&b, MCONTEXT_OFFSET + 256), 0x8000);
        assert_eq!(UContext::from_bytes(&b), uc);
    }

    #[test]
    fn siginfo_fields() {
        let i = SigInfo {
            signo: 11,
            code: code::SEGV_ACCERR,
            kind: InfoKind::Fault { addr: 0x1234 },
        };
        let b = i.to_bytes();
        assert_eq!(get_i32(&b, 0), 11);
        assert_eq!(get_i32(&b, 8), 2);
        assert_eq!(get_u64(&b, 16), 0x1234);
        let c = SigInfo {
            signo: 17,
            code: code::CLD_EXITED,
            kind: InfoKind::Child { pid: 7, status: 3 },
        }
        .to_bytes();
        assert_eq!((get_i32(&c, 16), get_i32(&c, 24)), (7, 3));
    }

    #[test]
    fn frame_placement() {
        let none = StackT {
            flags: ss::SS_DISABLE,
            ..StackT::default()
        };
        let p = place_frame(0x7fff_1000, true, &none).unwrap();
        assert_eq!(p.fpstate % 64, 0);
        assert_eq!((p.frame + 8) % 16, 0);
        assert!(p.end <= 0x7fff_1000 - RED_ZONE);
        assert!(p.frame + FRAME_SIZE as u64 <= p.fpstate);
        assert!(!p.entering_altstack);
        let alt = StackT {
            sp: 0x10_0000,
            flags: 0,
            size: 0x4000,
        };
        let q = place_frame(0x7fff_1000, true, &alt).unwrap();
        assert!(q.entering_altstack && alt.contains(q.frame) && q.end <= 0x10_4000);
        // Already on the altstack: nested below the current RSP.
        let r = place_frame(0x10_2000, true, &alt).unwrap();
        assert!(r.end <= 0x10_2000 - RED_ZONE && !r.entering_altstack);
        // Too small to hold a frame.
        let tiny = StackT {
            sp: 0x10_0000,
            flags: 0,
            size: 256,
        };
        assert_eq!(place_frame(0x7fff_1000, true, &tiny), None);
        assert_eq!(place_frame(100, false, &none), None);
        assert!(MAX_FRAME_BYTES as u64 >= p.end - p.frame);
    }

    #[test]
    fn altstack_rules() {
        let s = StackT {
            sp: 0x1000,
            flags: 0,
            size: 100,
        };
        assert_eq!(new_altstack(&s), Err(12));
        let ok = StackT { size: 8192, ..s };
        assert_eq!(new_altstack(&ok), Ok(ok));
        assert_eq!(new_altstack(&StackT { flags: 5, ..ok }), Err(22));
        assert_eq!(
            new_altstack(&StackT {
                flags: ss::SS_DISABLE,
                ..s
            })
            .unwrap()
            .flags,
            ss::SS_DISABLE
        );
        assert_eq!(altstack_view(&ok, 0x1800).flags, ss::SS_ONSTACK);
        assert_eq!(altstack_view(&ok, 0x9000).flags, 0);
        assert_eq!(altstack_view(&StackT::default(), 0).flags, ss::SS_DISABLE);
    }

    #[test]
    fn sigreturn_flags_and_fpu() {
        assert_eq!(restore_eflags(0x202, 0xffff_ffff), 0x202 | FIX_EFLAGS);
        assert_eq!(restore_eflags(0x202, 0) & 0x200, 0x200);
        let mut f = [0u8; FPSTATE_SIZE];
        f[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        sanitize_fxsave(&mut f, 0xffbf);
        assert_eq!(u32::from_le_bytes([f[24], f[25], f[26], f[27]]), 0xffbf);
    }
}
