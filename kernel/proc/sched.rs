//! Processes and the scheduler: preemptive round robin on every CPU, from
//! one shared run queue (the SMP side — per-CPU state, idle contexts,
//! who runs where, the per-CPU tick — is `cpus`; lock rules in
//! docs/locking.md).
//!
//! Every process has its own kernel stack (vmalloc, guard page). A trap from
//! ring 3 lands on it (TSS `rsp0`); switching processes is switching kernel
//! stacks (`arch::switch`), plus CR3, `rsp0` and the FS base. The timer
//! preempts whatever runs when its time slice is used up; blocked processes
//! (waiting for a child, sleeping, reading the console) are skipped until an
//! event makes them runnable. Pid 0 is the kernel's own thread (the shell, or
//! a test's main), which has no address space of its own.
//!
//! Kernel threads ([`spawn_kthread`], Linux's `kthread_run`): processes
//! with no address space (they run on the kernel's page tables), their own
//! kernel stack, started at a kernel function that never returns. They are
//! scheduled like every process, shown by `ps` in brackets (`[kswapd0]`),
//! never killed (`kill`, the OOM killer) and never reaped. One may block
//! on its own [`Block`] and be woken from any context, even one holding
//! the frames lock or this scheduler's own lock ([`wake_from_anywhere`]).
//!
//! Unsafe: `proc` denies unsafe code, and the scheduler core is the one
//! exception, allowed statement by statement: laying out a new kernel stack
//! and switching stacks (with the next process's FPU state reached through
//! a pointer past the lock). Their invariants (a stack is resumed only when
//! switched out, and outlives its last switch) are the scheduler's, not a
//! type's; they move behind a safe owned-context type in `arch` when the
//! switch itself does.
//!
//! Locking: the scheduler lock is only taken with interrupts off, and is
//! never held across a switch.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use x86_64::registers::model_specific::FsBase;
use x86_64::VirtAddr;

use crate::arch::cpu::FpuState;
use crate::arch::switch::{prepare_stack, switch_stacks};
use crate::arch::sync::IrqMutex;
use crate::arch::trap::TrapFrame;
use crate::arch::{interrupts, syscall as arch_syscall};
use crate::mm::aspace::{self, SharedAddressSpace};
use crate::mm::fault::UserFault;
use crate::mm::kalloc::{self, AllocError};
use crate::mm::vmalloc::{self, VmArea};

pub type Pid = u32;

// Threads (CLONE_THREAD) and futexes: child modules, so they reach the
// process table's private parts; see their module comments.
#[path = "futex.rs"]
pub mod futex;
#[path = "thread.rs"]
pub mod thread;

/// Timer ticks a process runs before the next one gets the CPU (30 ms).
const TIME_SLICE_TICKS: u32 = 3;
/// Process-table and run-queue slots reserved at boot (both grow, fallibly,
/// on the spawn path only).
const MAX_QUEUED: usize = 1024;
/// Kernel stack of a user process: 32 KiB above a guard page.
const KERNEL_STACK_PAGES: u64 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// In `wait4` for a child to exit.
    Child,
    /// In `nanosleep` until this time (`time::uptime_ns`).
    Sleep(u64),
    /// In `read` from the console.
    Console,
    /// kswapd, waiting for an allocation to leave free memory below the
    /// low watermark.
    Kswapd,
    /// In `read` or `write` on the pipe with this id (empty or full).
    Pipe(u64),
    /// In `poll`/`select` until this tick (`u64::MAX`: no timeout); any
    /// I/O event wakes it too (`fs::poll::notify`).
    Poll(u64),
    /// Stopped by a signal (SIGSTOP, SIGTSTP, ...) until SIGCONT.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Runnable,
    Running,
    Blocked(Block),
    /// Exited; holds the wait status until the parent reaps it.
    Zombie(i32),
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Runnable => "runnable",
            State::Running => "running",
            State::Blocked(Block::Child) => "wait",
            State::Blocked(Block::Sleep(_)) => "sleep",
            State::Blocked(Block::Console) => "read",
            State::Blocked(Block::Kswapd) => "sleep",
            State::Blocked(Block::Pipe(_)) => "pipe",
            State::Blocked(Block::Poll(_)) => "poll",
            State::Blocked(Block::Stopped) => "stopped",
            State::Zombie(_) => "zombie",
        }
    }
}

/// Linux wait status: `(code & 0xff) << 8` for an exit, the signal number
/// for a death by signal.
pub const fn exit_status(code: i32) -> i32 {
    (code & 0xff) << 8
}

pub const fn signal_status(signal: u8) -> i32 {
    signal as i32 & 0x7f
}

pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    pub name: String,
    pub state: State,
    /// `None` for the kernel thread.
    pub aspace: Option<SharedAddressSpace>,
    /// Physical address of the PML4, cached for the switch.
    root: u64,
    kstack: Option<VmArea>,
    saved_rsp: u64,
    pub fs_base: u64,
    /// The program break: `(start, current)`.
    pub brk: (u64, u64),
    /// Ticks spent running.
    pub ticks: u64,
    /// Nanoseconds spent running (TSC), up to its last switch out.
    pub cpu_ns: u64,
    /// The fault that killed it, if one did.
    pub fault: Option<UserFault>,
    /// Descriptors, working directory, umask.
    pub fds: super::fd::FdTable,
    /// x87/SSE registers while not running.
    fpu: Box<FpuState>,
    /// Linux's `oom_score_adj` (-1000..=1000): how much more (or less)
    /// the OOM killer wants this process than its size says; -1000 never.
    /// Children inherit it (fork), a new program keeps it (exec).
    pub oom_score_adj: i16,
    /// What the process and machine calls keep: robust list, rseq, nice
    /// (`syscall::system`).
    pub sys: super::syscall::SysState,
    /// SIGKILL is pending: the process dies when its system call ends (the
    /// OOM killer chose it while it was copying user memory in the kernel).
    kill_pending: bool,
    /// A kernel thread (see the module comment): no address space of its
    /// own, never killed, never exits.
    kernel_thread: bool,
    /// Signal actions, mask, pending set, alternate stack (`signal`).
    pub sig: super::signal::SigState,
    /// Process group and session (`setpgid`, `setsid`): inherited over
    /// fork; a process the kernel starts leads its own.
    pub pgid: Pid,
    pub sid: Pid,
    /// Passed to the kernel when its parent died first. The kernel reaps
    /// such a process itself once it exits (Linux's init does the same for
    /// orphans), so zombies nobody will wait for do not pile up, each
    /// holding its kernel stack.
    adopted: bool,
    /// SMP (`cpus`): the CPU it last ran on (`ps`, /proc/PID/stat field
    /// 39), and whether a CPU is on its kernel stack now (set when picked,
    /// cleared by `arch::switch::finish_switch` once that CPU left it).
    pub cpu: u32,
    on_cpu: AtomicBool,
    /// Where it may run (`cpus::Affinity`).
    affinity: cpus::Affinity,
    /// Its thread group and per-thread clone state (`thread`): a thread
    /// is a process record of its own whose group leader holds what the
    /// group shares.
    pub thread: thread::ThreadInfo,
}

impl Process {
    /// Exited, killed, or with a SIGKILL pending: the OOM killer passes
    /// it over (its memory is on its way back).
    pub fn dying(&self) -> bool {
        matches!(self.state, State::Zombie(_)) || self.kill_pending
    }

    /// A kernel thread made by [`spawn_kthread`] (pid 0, the kernel's own
    /// thread, is not one: it may borrow an address space).
    pub fn is_kernel_thread(&self) -> bool {
        self.kernel_thread
    }

    /// Gives back the kernel stack of a process that will never run again
    /// (a reaped zombie, or one that never started): nobody is on it.
    fn free_kernel_stack(&mut self) {
        if let Some(stack) = self.kstack.take() {
            vmalloc::free(stack);
        }
    }
}

/// The process table: boxed processes in a vector sorted by pid. Unlike a
/// `BTreeMap` (whose insert allocates a node and aborts the kernel when the
/// heap is out of memory), room for an insert is reserved fallibly first.
/// Boxed, so a process stays put while the vector moves: `schedule` keeps
/// raw pointers to the saved RSP and FPU state across the switch.
#[allow(clippy::vec_box)]
struct ProcTable(Vec<Box<Process>>);

impl ProcTable {
    fn index(&self, pid: Pid) -> core::result::Result<usize, usize> {
        self.0.binary_search_by_key(&pid, |p| p.pid)
    }

    fn get(&self, pid: &Pid) -> Option<&Process> {
        self.index(*pid).ok().map(|i| &*self.0[i])
    }

    fn get_mut(&mut self, pid: &Pid) -> Option<&mut Process> {
        self.index(*pid).ok().map(|i| &mut *self.0[i])
    }

    fn values(&self) -> impl Iterator<Item = &Process> {
        self.0.iter().map(|p| &**p)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Process> {
        self.0.iter_mut().map(|p| &mut **p)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn remove(&mut self, pid: &Pid) -> Option<Box<Process>> {
        self.index(*pid).ok().map(|i| self.0.remove(i))
    }

    /// Inserts `p`, whose pid is new; reserve room first (with
    /// `kalloc::try_reserve(&mut table.0, 1)`) so this cannot allocate.
    fn insert(&mut self, p: Box<Process>) {
        debug_assert!(self.0.len() < self.0.capacity());
        let at = self.index(p.pid).expect_err("pids are never reused");
        self.0.insert(at, p);
    }
}

/// The shared run queue and process table (see `cpus` for the SMP
/// design). What each CPU runs, its slice and since when are per CPU
/// (`cpus::here()`).
struct Scheduler {
    procs: ProcTable,
    queue: VecDeque<Pid>,
}

static SCHED: IrqMutex<Option<Scheduler>> = IrqMutex::ranked(None, crate::arch::sync::rank::SCHED);

/// Statistics of the scheduler lock (`/proc/lock_stat`).
pub fn lock_stat() -> crate::arch::sync::LockStat {
    SCHED.stat()
}
static NEXT_PID: AtomicU32 = AtomicU32::new(1);

use super::cpus::{self, current_here, NO_PID};

/// Queues `pid` (runnable now) and wakes an idle CPU for it.
fn enqueue(queue: &mut VecDeque<Pid>, pid: Pid) {
    queue.push_back(pid);
    cpus::kick_idle();
}

/// CPU time of the current process in nanoseconds, the running stretch
/// included (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn current_cpu_ns() -> u64 {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let since = cpus::here().running_since.load(Ordering::Relaxed);
        let now = crate::time::uptime_ns();
        let running = if since == 0 {
            0
        } else {
            now.saturating_sub(since)
        };
        with_current(|p| p.cpu_ns + running)
    })
}

fn with<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    SCHED.with(|s| f(s.as_mut().expect("proc::init ran")))
}

/// Every process's address space, for reclaim's reverse map (`f` must not
/// allocate or lock: it runs under the scheduler lock).
pub fn each_address_space(f: &mut dyn FnMut(&crate::mm::aspace::SharedAddressSpace)) {
    SCHED.with(|s| {
        if let Some(s) = s.as_ref() {
            for p in s.procs.values() {
                if let Some(a) = &p.aspace {
                    // Threads share one: visited once, at the group's
                    // first thread that holds it.
                    if thread::first_holder(&s.procs, p) {
                        f(a);
                    }
                }
            }
        }
    })
}

/// Registers the running kernel thread as pid 0 and starts preemption.
pub fn init() {
    let kernel_root = crate::mm::pgtable::with_kernel(|t, _| t.root());
    let kernel = Process {
        pid: 0,
        ppid: 0,
        name: String::from("kernel"),
        state: State::Running,
        aspace: None,
        root: kernel_root,
        kstack: None,
        saved_rsp: 0,
        fs_base: 0,
        brk: (0, 0),
        ticks: 0,
        cpu_ns: 0,
        fault: None,
        fds: super::fd::FdTable::empty(),
        fpu: Box::new(FpuState::initial()),
        oom_score_adj: 0,
        sys: Default::default(),
        kill_pending: false,
        kernel_thread: false,
        sig: super::signal::SigState::new(),
        pgid: 0,
        sid: 0,
        adopted: false,
        cpu: 0,
        on_cpu: AtomicBool::new(true),
        affinity: cpus::Affinity::Cpu(0),
        thread: Default::default(),
    };
    let mut procs = Vec::with_capacity(MAX_QUEUED);
    procs.push(Box::new(kernel));
    let procs = ProcTable(procs);
    *SCHED.lock() = Some(Scheduler {
        procs,
        // Sized up front: the timer interrupt requeues processes and
        // must not allocate (a full queue only grows on spawn paths).
        queue: VecDeque::with_capacity(MAX_QUEUED),
    });
    cpus::here().current.store(0, Ordering::SeqCst);
    cpus::here().slice.store(TIME_SLICE_TICKS, Ordering::SeqCst);
    cpus::init_idle();
    crate::mm::psi::wake(0);
    interrupts::set_timer_hook(on_tick);
    crate::arch::apic::set_timer_hook(on_cpu_tick);
}

pub fn current_pid() -> Pid {
    let _irq = crate::arch::sync::IrqOff::new();
    current_here()
}

/// Runs `f` on the current process.
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    with(|s| {
        let pid = current_here();
        f(s.procs.get_mut(&pid).expect("the current process exists"))
    })
}

/// Runs `f` on process `pid`, if it exists.
pub fn with_process<R>(pid: Pid, f: impl FnOnce(&mut Process) -> R) -> Option<R> {
    with(|s| s.procs.get_mut(&pid).map(f))
}

/// A snapshot line per process, for `ps`.
#[derive(Clone)]
pub struct ProcInfo {
    pub pid: Pid,
    pub ppid: Pid,
    pub name: String,
    pub state: &'static str,
    pub aspace: Option<SharedAddressSpace>,
    pub ticks: u64,
    /// A kernel thread (`ps` shows its name in brackets).
    pub kernel_thread: bool,
    /// The CPU it runs on or last ran on.
    pub cpu: u32,
}

pub fn list() -> Vec<ProcInfo> {
    try_list().expect("memory for the process list")
}

/// Like [`list`], failing instead of aborting when the heap is out of
/// memory (for `ps` and other views a user may run under pressure).
pub fn try_list() -> core::result::Result<Vec<ProcInfo>, AllocError> {
    // Room first, then the copy under the lock; names are copied after it
    // (allocating with the scheduler lock held would work, but the lock is
    // an interrupts-off section and copies can be large).
    let mut out: Vec<ProcInfo> = Vec::new();
    loop {
        let n = count();
        kalloc::try_reserve(&mut out, n)?;
        let done = with(|s| {
            if s.procs.len() > out.capacity() {
                return false;
            }
            for p in s.procs.values() {
                out.push(ProcInfo {
                    pid: p.pid,
                    ppid: p.ppid,
                    name: String::new(),
                    state: p.state.name(),
                    aspace: p.aspace.clone(),
                    ticks: p.ticks,
                    kernel_thread: p.kernel_thread,
                    cpu: p.cpu,
                });
            }
            true
        });
        if done {
            break;
        }
    }
    for info in &mut out {
        // A process that is gone by now keeps an empty name.
        let name = with_process(info.pid, |p| kalloc::try_string(&p.name));
        if let Some(name) = name {
            info.name = name?;
        }
    }
    Ok(out)
}

/// Runs `f` on the process with the smallest pid above `after`, if any:
/// a scan over every process that neither allocates nor holds the
/// scheduler lock between processes (the OOM killer's).
pub fn with_next_process<R>(after: Pid, f: impl FnOnce(&Process) -> R) -> Option<R> {
    with(|s| {
        let i = match s.procs.index(after) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        s.procs.0.get(i).map(|p| f(p))
    })
}

/// Processes with a SIGKILL pending (see [`kill_current_later`]); the
/// system-call exit path looks at the current process only when there are.
static PENDING_KILLS: AtomicU32 = AtomicU32::new(0);

/// Marks the current process to die by SIGKILL when its system call ends
/// (it may hold kernel resources now, so it cannot exit here).
pub fn kill_current_later() {
    with_current(|p| {
        if p.pid != 0 && !p.kill_pending {
            p.kill_pending = true;
            PENDING_KILLS.fetch_add(1, Ordering::SeqCst);
        }
    })
}

/// True if the current process has a SIGKILL pending.
pub fn kill_pending() -> bool {
    PENDING_KILLS.load(Ordering::SeqCst) != 0 && with_current(|p| p.kill_pending)
}

/// Ends the current process if a SIGKILL is pending (called where a system
/// call returns to user space, holding nothing).
pub fn deliver_pending_kill() {
    if kill_pending() {
        exit_current(signal_status(9));
    }
}

/// The first process (in pid order) that `pred` accepts, without
/// allocating.
pub fn find_pid(mut pred: impl FnMut(&Process) -> bool) -> Option<Pid> {
    with(|s| s.procs.values().find(|p| pred(p)).map(|p| p.pid))
}

/// The newest pid handed out (`/proc/loadavg`'s last field: Linux's
/// `idr_get_cursor - 1`), whether or not it still lives.
pub fn last_pid() -> Pid {
    NEXT_PID.load(Ordering::Relaxed).saturating_sub(1)
}

/// Tasks now, without allocating: (running or runnable, in
/// uninterruptible sleep, all), pid 0 (the idle thread) left out, as
/// Linux's `nr_running`, `nr_iowait`/`nr_uninterruptible` and
/// `nr_threads` leave out the idle task.
pub fn task_counts() -> super::stats::TaskCounts {
    with(|s| super::stats::TaskCounts::of(s.procs.values().map(|p| (p.pid, p.state))))
}

/// How many processes the kernel adopted (orphans, live or zombie).
pub fn adopted_count() -> usize {
    with(|s| s.procs.values().filter(|p| p.adopted).count())
}

/// How many processes there are (zombies included), without allocating.
pub fn count() -> usize {
    with(|s| s.procs.len())
}

/// Why a process could not be created.
#[derive(Debug)]
pub enum SpawnError {
    /// No room for its kernel stack.
    KernelStack(vmalloc::VmallocError),
    /// The kernel heap is out of memory.
    OutOfMemory,
    /// A kernel thread pinned to a CPU that is not online.
    NoSuchCpu(u32),
}

impl From<AllocError> for SpawnError {
    fn from(_: AllocError) -> SpawnError {
        SpawnError::OutOfMemory
    }
}

/// Creates a process that starts in ring 3 with `frame` in `aspace`, as a
/// child of the current process, with the standard descriptors, and queues
/// it.
pub fn spawn(
    name: &str,
    aspace: SharedAddressSpace,
    frame: &TrapFrame,
    fs_base: u64,
    brk: (u64, u64),
) -> Result<Pid, SpawnError> {
    let name = kalloc::try_string(name)?;
    let fds = super::fd::standard()?;
    spawn_child(
        name,
        aspace,
        frame,
        fs_base,
        brk,
        fds,
        super::signal::SigState::new(),
    )
}

/// [`spawn`] with the name, descriptor table and signal state given
/// (fork's copies). The signal state is set before the child is queued:
/// once queued, another CPU may run it at once, and a copy written after
/// that would undo what the child did meanwhile (`sigaction`,
/// `sigprocmask`). Every allocation is fallible: out of memory is an
/// error, and whatever was made for the child goes back.
pub fn spawn_child(
    name: String,
    aspace: SharedAddressSpace,
    frame: &TrapFrame,
    fs_base: u64,
    brk: (u64, u64),
    fds: super::fd::FdTable,
    sig: super::signal::SigState,
) -> Result<Pid, SpawnError> {
    reap_adopted();
    let mut process = new_user_process(name, aspace, frame, fs_base, brk, fds)?;
    process.sig = sig;
    queue_new(process)
}

/// The record of a new user process (or thread: `thread`), not queued.
fn new_user_process(
    name: String,
    aspace: SharedAddressSpace,
    frame: &TrapFrame,
    fs_base: u64,
    brk: (u64, u64),
    fds: super::fd::FdTable,
) -> Result<Box<Process>, SpawnError> {
    let fpu = kalloc::try_box(FpuState::initial())?;
    // The box first: once the kernel stack exists, nothing may fail
    // without giving it back.
    let slot = kalloc::try_box_uninit::<Process>()?;
    let kstack = vmalloc::alloc(KERNEL_STACK_PAGES).map_err(SpawnError::KernelStack)?;
    let frame_size = core::mem::size_of::<TrapFrame>() as u64;
    let frame_at = (kstack.end() - frame_size) & !0xf;
    // The scheduler core's own unsafe (see the module comment).
    // SAFETY: `frame_at` is inside the fresh kernel stack, 16-byte aligned,
    // with room for a TrapFrame below the top; nothing else uses the stack.
    #[allow(unsafe_code)]
    unsafe {
        (frame_at as *mut TrapFrame).write(frame.clone())
    };
    // SAFETY: below the frame the stack is unused; the first switch to this
    // process "returns" into trap_return with RSP at the frame.
    #[allow(unsafe_code)]
    let saved_rsp = unsafe {
        prepare_stack(
            frame_at,
            crate::arch::switch::first_return_to_user as *const () as u64,
        )
    };
    let root = aspace.lock().root();
    let process = Box::write(
        slot,
        Process {
            pid: 0,
            ppid: 0,
            name,
            state: State::Runnable,
            aspace: Some(aspace),
            root,
            kstack: Some(kstack),
            saved_rsp,
            fs_base,
            brk,
            ticks: 0,
            cpu_ns: 0,
            fault: None,
            fds,
            fpu,
            oom_score_adj: 0,
            sys: Default::default(),
            kill_pending: false,
            kernel_thread: false,
            sig: super::signal::SigState::new(),
            pgid: 0,
            sid: 0,
            adopted: false,
            cpu: 0,
            on_cpu: AtomicBool::new(false),
            affinity: cpus::Affinity::Any,
            thread: Default::default(),
        },
    );
    Ok(process)
}

/// A pid of its own for a process about to be queued (pids are never
/// reused), taken before [`queue_new`] when something must know it before
/// the process can run (`clone`'s tid words).
fn reserve_pid() -> Pid {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

/// Gives `process` a pid (unless it has a reserved one, [`reserve_pid`])
/// and queues it: a user process as a child of the current one, inheriting
/// its `oom_score_adj`; a kernel thread as the kernel's. Gives its kernel
/// stack back if there is no room.
fn queue_new(mut process: Box<Process>) -> Result<Pid, SpawnError> {
    let result = with(|s| {
        // The run queue holds each live process at most once plus stale
        // entries of dead ones; keep room for all of them so the timer
        // interrupt (which requeues) never has to grow it.
        let want = (2 * (s.procs.len() + 1) + 16)
            .saturating_sub(s.queue.len())
            .max(1);
        let room = kalloc::try_reserve_deque(&mut s.queue, want)
            .and_then(|()| kalloc::try_reserve(&mut s.procs.0, 1));
        if room.is_err() {
            return Err(process);
        }
        if process.pid == 0 {
            process.pid = reserve_pid();
        }
        if !process.kernel_thread {
            // A child of the current thread group; a new thread (tgid set
            // by `thread`) has its group's parent.
            process.ppid = thread::parent_for_new(s, &process);
            process.oom_score_adj = s.procs.get(&current_here()).map_or(0, |p| p.oom_score_adj);
            process.sys = s
                .procs
                .get(&current_here())
                .map_or_else(Default::default, |p| p.sys.for_child());
        }
        // The parent's group and session; the kernel's children lead
        // their own.
        let parent = s
            .procs
            .get(&current_here())
            .map_or((0, 0), |p| (p.pgid, p.sid));
        (process.pgid, process.sid) = if process.kernel_thread || current_here() == 0 {
            (process.pid, process.pid)
        } else {
            parent
        };
        if process.thread.tgid == 0 {
            process.thread.tgid = process.pid;
        }
        let pid = process.pid;
        super::stats::note_fork();
        s.procs.insert(process);
        enqueue(&mut s.queue, pid);
        crate::mm::psi::wake(pid);
        Ok(pid)
    });
    result.map_err(|mut unstarted| {
        unstarted.free_kernel_stack();
        SpawnError::OutOfMemory
    })
}

/// Kernel stack of a kernel thread (as a user process's).
const KTHREAD_STACK_PAGES: u64 = KERNEL_STACK_PAGES;

/// Starts a kernel thread named `name` (shown as `[name]`) running `entry`
/// (see the module comment) on the bootstrap CPU: a child of pid 0 with
/// `oom_score_adj` -1000.
pub fn spawn_kthread(name: &str, entry: fn() -> !) -> Result<Pid, SpawnError> {
    spawn_kthread_on(name, entry, cpus::Affinity::Cpu(0))
}

/// [`spawn_kthread`] on the CPUs `affinity` allows: one CPU (it never
/// migrates), or any. A CPU that is not online is refused.
pub fn spawn_kthread_on(
    name: &str,
    entry: fn() -> !,
    affinity: cpus::Affinity,
) -> Result<Pid, SpawnError> {
    if let cpus::Affinity::Cpu(c) = affinity {
        if c as usize >= crate::arch::smp::cpus_online() {
            return Err(SpawnError::NoSuchCpu(c));
        }
    }
    let name = kalloc::try_string(name)?;
    let fpu = kalloc::try_box(FpuState::initial())?;
    let slot = kalloc::try_box_uninit::<Process>()?;
    let root = crate::mm::pgtable::with_kernel(|t, _| t.root());
    let (kstack, saved_rsp) =
        crate::arch::switch::new_kernel_thread_stack(KTHREAD_STACK_PAGES, entry)
            .map_err(SpawnError::KernelStack)?;
    let process = Box::write(
        slot,
        Process {
            pid: 0,
            ppid: 0,
            name,
            state: State::Runnable,
            aspace: None,
            root,
            kstack: Some(kstack),
            saved_rsp,
            fs_base: 0,
            brk: (0, 0),
            ticks: 0,
            cpu_ns: 0,
            fault: None,
            fds: super::fd::FdTable::empty(),
            fpu,
            oom_score_adj: -1000,
            sys: Default::default(),
            kill_pending: false,
            kernel_thread: true,
            sig: super::signal::SigState::new(),
            pgid: 0,
            sid: 0,
            adopted: false,
            cpu: 0,
            on_cpu: AtomicBool::new(false),
            affinity,
            thread: Default::default(),
        },
    );
    // Counted before it is queued: the queueing's wake-up must reach its
    // CPU even with user processes kept on CPU 0.
    cpus::note_kthread(affinity, true);
    queue_new(process).inspect_err(|_| cpus::note_kthread(affinity, false))
}

/// Ends the current kernel thread (Linux's `kthread_exit`): it becomes a
/// zombie the kernel reaps itself ([`reap_adopted`], once its CPU left its
/// stack), so its kernel stack comes back. Only kernel threads may call
/// this.
pub fn kthread_exit() -> ! {
    x86_64::instructions::interrupts::disable();
    with(|s| {
        let pid = current_here();
        let p = s.procs.get_mut(&pid).expect("the current process exists");
        assert!(
            p.kernel_thread,
            "kthread_exit from pid {pid}, not a kernel thread"
        );
        crate::mm::psi::exit(pid, true);
        p.state = State::Zombie(0);
        p.adopted = true;
        cpus::note_kthread(p.affinity, false);
    });
    schedule();
    unreachable!("a zombie kernel thread was resumed");
}

/// Frees the zombies the kernel adopted (see `Process::adopted`): they are
/// not running (the current process is never one of them), so their kernel
/// stacks are free to go. Called before a new process is made, which is
/// when their memory is wanted (and when a test settles its frame count).
pub fn reap_adopted() {
    loop {
        let zombie = with(|s| {
            let cur = current_here();
            let pid = s
                .procs
                .values()
                .find(|p| {
                    p.adopted
                        && p.pid != cur
                        && matches!(p.state, State::Zombie(_))
                        && !p.on_cpu.load(Ordering::SeqCst)
                        && thread::reapable(&s.procs, p)
                })
                .map(|p| p.pid)?;
            s.procs.remove(&pid)
        });
        let Some(mut zombie) = zombie else { return };
        zombie.free_kernel_stack();
    }
}

/// What [`schedule`] decided under the lock.
enum Switch {
    /// Keep running what runs (or, in the idle context, halt).
    Stay,
    /// Another CPU is still leaving a runnable process: look again.
    Retry,
    /// Switch to `rsp`, saving this context's stack pointer in `save`.
    To {
        /// The next process's address space and root, its kernel stack
        /// top, FS base and FPU state; `None` for the idle context and
        /// kernel threads (lazy TLB: they keep the tables they find).
        space: Option<(Option<SharedAddressSpace>, u64)>,
        top: Option<u64>,
        fs: u64,
        fpu: Option<*const FpuState>,
        rsp: u64,
        save: *mut u64,
    },
}

/// Picks the next runnable process and switches to it; returns when the
/// current process runs again (in a CPU's idle context: when it is
/// switched back to, or at once with `idling` set if there is nothing to
/// run). Interrupts must be off. See `cpus` for the SMP rules.
pub fn schedule() {
    debug_assert!(!x86_64::instructions::interrupts::are_enabled());
    let here = cpus::here();
    let me = cpus::cpu();
    loop {
        let switch = {
            let mut guard = SCHED.lock();
            let s = guard.as_mut().expect("proc::init ran");
            let cur = current_here();
            // The current process stops running here (if it was): its time
            // since it started counts as CPU time.
            let now = crate::time::uptime_ns();
            let since = here.running_since.swap(0, Ordering::Relaxed);
            if since != 0 {
                if let Some(p) = s.procs.get_mut(&cur) {
                    p.cpu_ns += now.saturating_sub(since);
                }
            }
            if s.procs.get(&cur).is_some_and(|p| p.state == State::Running) {
                s.procs.get_mut(&cur).unwrap().state = State::Runnable;
                s.queue.push_back(cur);
            }
            // One pass over the queue: stale entries (dead or not
            // runnable) go; processes this CPU may not run, or that
            // another CPU is still leaving, stay queued.
            let mut next = None;
            let mut busy = false;
            for _ in 0..s.queue.len() {
                let Some(pid) = s.queue.pop_front() else {
                    break;
                };
                let Some(p) = s.procs.get(&pid) else { continue };
                if p.state != State::Runnable {
                    continue;
                }
                let leaving = pid != cur && p.on_cpu.load(Ordering::SeqCst);
                if leaving || !cpus::may_run_on(p.kernel_thread, p.affinity, me) {
                    busy |= leaving;
                    s.queue.push_back(pid);
                    continue;
                }
                next = Some(pid);
                break;
            }
            match next {
                None if busy => Switch::Retry,
                None if cur == NO_PID => {
                    here.idling.store(true, Ordering::SeqCst);
                    Switch::Stay
                }
                None => {
                    // The current process blocked or exited: this CPU
                    // leaves its stack for the idle context.
                    here.current.store(NO_PID, Ordering::SeqCst);
                    let old = s.procs.get_mut(&cur).expect("the current process exists");
                    if old.pid == 0 {
                        old.root = crate::arch::mmu::active_root();
                        old.aspace = aspace::current();
                    }
                    old.fpu.save();
                    crate::arch::switch::release_after_switch(&old.on_cpu);
                    Switch::To {
                        space: None,
                        top: None,
                        fs: 0,
                        fpu: None,
                        rsp: here.idle_rsp.load(Ordering::SeqCst),
                        save: &mut old.saved_rsp,
                    }
                }
                Some(next) => {
                    here.idling.store(false, Ordering::SeqCst);
                    here.running_since.store(now.max(1), Ordering::Relaxed);
                    here.slice.store(TIME_SLICE_TICKS, Ordering::Relaxed);
                    let p = s.procs.get_mut(&next).unwrap();
                    p.state = State::Running;
                    p.cpu = me;
                    if next == cur {
                        Switch::Stay
                    } else {
                        super::stats::note_switch();
                        here.switches.fetch_add(1, Ordering::Relaxed);
                        p.on_cpu.store(true, Ordering::SeqCst);
                        here.current.store(next, Ordering::SeqCst);
                        let (root, top, fs, rsp) = (
                            p.root,
                            p.kstack.as_ref().map(|k| k.end()),
                            p.fs_base,
                            p.saved_rsp,
                        );
                        // The kernel thread's record holds the address space
                        // it borrowed only while it is switched out: taken
                        // back here, so a space it lets go of (tests, the
                        // shell) dies when it drops it, not at its next
                        // switch.
                        let space = if next == 0 {
                            Some((p.aspace.take(), root))
                        } else if p.kernel_thread {
                            None
                        } else {
                            Some((p.aspace.clone(), root))
                        };
                        let fpu: *const FpuState = &*p.fpu;
                        let save: *mut u64 = if cur == NO_PID {
                            here.idle_rsp.as_ptr()
                        } else {
                            let old = s.procs.get_mut(&cur).unwrap();
                            if old.pid == 0 {
                                // The kernel thread may have borrowed an
                                // address space (tests, inspection): resume
                                // it there.
                                old.root = crate::arch::mmu::active_root();
                                old.aspace = aspace::current();
                            }
                            old.fpu.save();
                            crate::arch::switch::release_after_switch(&old.on_cpu);
                            &mut old.saved_rsp
                        };
                        Switch::To {
                            space,
                            top,
                            fs,
                            fpu: Some(fpu),
                            rsp,
                            save,
                        }
                    }
                }
            }
        };
        match switch {
            Switch::Stay => return,
            Switch::Retry => core::hint::spin_loop(),
            Switch::To {
                space,
                top,
                fs,
                fpu,
                rsp,
                save,
            } => {
                if let Some(fpu) = fpu {
                    // SAFETY: the boxed state of a process in the table,
                    // which cannot be reaped before it runs.
                    #[allow(unsafe_code)]
                    unsafe {
                        (*fpu).restore()
                    };
                }
                match space {
                    Some((aspace, root)) => aspace::switch_to_root(aspace, root),
                    // Lazy TLB: the idle context and kernel threads run on
                    // whatever tables are loaded (every kernel half is the
                    // same); the space's last owner makes every CPU leave
                    // it before it is freed (`arch::tlb::leave_everywhere`).
                    None => aspace::forget_current(),
                }
                if let Some(top) = top {
                    arch_syscall::set_kernel_stack(top);
                }
                FsBase::write(VirtAddr::new(fs));
                // SAFETY: `rsp` was saved by switch_stacks or prepared by
                // spawn for a context that is not running (`on_cpu` keeps
                // two CPUs off one stack); `save` points into a boxed
                // Process that stays in the table at least until it is
                // reaped, which waits for `on_cpu` to clear (or into this
                // CPU's slot); interrupts are off.
                #[allow(unsafe_code)]
                unsafe {
                    switch_stacks(save, rsp)
                };
                crate::arch::switch::finish_switch();
                return;
            }
        }
    }
}

/// Gives up the CPU to the next runnable process.
pub fn yield_now() {
    x86_64::instructions::interrupts::without_interrupts(schedule);
}

/// Sleeps a signal ends (wait4, nanosleep, console read, pipes, poll).
fn interruptible(state: State) -> bool {
    matches!(
        state,
        State::Blocked(
            Block::Child | Block::Sleep(_) | Block::Console | Block::Pipe(_) | Block::Poll(_)
        )
    )
}

fn on_tick(frame: &mut TrapFrame) {
    // A timer interrupt counts ticks of the 10 ms grid, or only wakes a
    // sleeper whose deadline came between two ticks (see `time`).
    let ticks = crate::time::last_interrupt_ticks();
    if ticks > 0 {
        crate::mm::psi::tick();
    }
    let now = crate::time::uptime_ns();
    let preempt = {
        let mut guard = SCHED.lock();
        let Some(s) = guard.as_mut() else {
            return;
        };
        let deferred = DEFERRED_KSWAPD_WAKE.swap(false, Ordering::SeqCst);
        let mut next_wake = u64::MAX;
        let mut woke_sleeper = false;
        let cur = current_here();
        let user = frame.cs & 3 == 3;
        for p in s.procs.values_mut() {
            // alarm/setitimer (`itimer`): a timer's signal wakes a sleep.
            // A process running on another CPU counts as in user mode.
            let running = (p.state == State::Running).then_some((ticks, p.pid != cur || user));
            let (signalled, timer_next) = super::itimer::on_tick(p, now, running);
            next_wake = next_wake.min(timer_next);
            let wake = match p.state {
                State::Blocked(Block::Sleep(until)) => {
                    if now < until {
                        next_wake = next_wake.min(until);
                    }
                    now >= until
                }
                // poll/select: a deadline in timer ticks (fs::poll).
                State::Blocked(Block::Poll(until)) => crate::time::ticks() >= until,
                State::Blocked(Block::Kswapd) => deferred,
                _ => false,
            };
            let wake = wake || (signalled && !p.is_kernel_thread() && interruptible(p.state));
            if wake {
                woke_sleeper |= matches!(p.state, State::Blocked(Block::Sleep(_))) || signalled;
                p.state = State::Runnable;
                enqueue(&mut s.queue, p.pid);
                crate::mm::psi::wake(p.pid);
            }
        }
        crate::time::set_next_wake(next_wake);
        let now_ticks = crate::time::ticks();
        if ticks > 0 && super::stats::load_due(now_ticks) {
            let counts = super::stats::TaskCounts::of(s.procs.values().map(|p| (p.pid, p.state)));
            super::stats::load_sample(now_ticks, counts.active());
        }
        // With a local APIC timer on every CPU, slices and per-process
        // ticks are its business (`on_cpu_tick`); without, the PIT's.
        let slice_over = !crate::arch::apic::timer_running() && {
            if let Some(p) = s.procs.get_mut(&cur) {
                p.ticks += ticks;
            }
            let here = cpus::here();
            let left = here
                .slice
                .load(Ordering::Relaxed)
                .saturating_sub(ticks.min(u32::MAX as u64) as u32);
            here.slice.store(left, Ordering::Relaxed);
            left == 0
        };
        // A sleeper whose time came runs now (as Linux's wake-up
        // preemption lets it), not when the running process's slice ends.
        slice_over || woke_sleeper
    };
    if preempt {
        schedule();
    }
}

/// The local APIC timer's tick on every CPU (`cpus`): the running
/// process's tick and slice; at the slice's end, or when an idle CPU
/// finds work it was not woken for, the scheduler runs.
fn on_cpu_tick(_frame: &mut TrapFrame) {
    let here = cpus::here();
    let preempt = {
        let mut guard = SCHED.lock();
        let Some(s) = guard.as_mut() else {
            return;
        };
        let cur = current_here();
        match s.procs.get_mut(&cur) {
            Some(p) => {
                p.ticks += 1;
                let left = here.slice.load(Ordering::Relaxed).saturating_sub(1);
                here.slice.store(left, Ordering::Relaxed);
                left == 0
            }
            None => !s.queue.is_empty(),
        }
    };
    if preempt {
        schedule();
    }
}

/// Blocks the current process until `wake` is called for it.
pub fn block(why: Block) {
    block_unless(why, || false)
}

/// Blocks the current process for `why` unless `ready()` says there is
/// already something to do. With several CPUs a waker may run at any
/// moment, so the order is Linux's (`set_current_state`, check, then
/// `schedule`): the state says Blocked first (under the scheduler lock),
/// then `ready` is asked. A wake that comes after the state was set finds
/// it blocked and makes it runnable; one that came before set what
/// `ready` reads. Either way nothing is lost. `ready` runs without the
/// scheduler lock (it may take it).
pub fn block_unless(why: Block, ready: impl FnOnce() -> bool) {
    block_current(State::Blocked(why), ready, || {})
}

/// See [`block_unless`]; `before_sleep` runs once the process will sleep.
fn block_current(state: State, ready: impl FnOnce() -> bool, before_sleep: impl FnOnce()) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        with(|s| {
            let pid = current_here();
            let p = s.procs.get_mut(&pid).expect("the current process exists");
            p.state = state;
            crate::mm::psi::sleep(pid);
        });
        if ready() {
            // Running again; a waker that came meanwhile already told
            // PSI and queued it (the stale entry is dropped at a pick).
            with(|s| {
                let pid = current_here();
                let p = s.procs.get_mut(&pid).expect("the current process exists");
                if p.state == state {
                    crate::mm::psi::wake(pid);
                }
                p.state = State::Running;
            });
            return;
        }
        before_sleep();
        schedule();
    })
}

/// Makes every process blocked for `why` runnable.
pub fn wake_all(why: Block) {
    // Called from interrupt handlers: nothing here allocates (the queue
    // has room, see `spawn_child`).
    with(|s| wake_locked(s, why))
}

fn wake_locked(s: &mut Scheduler, why: Block) {
    for p in s.procs.values_mut() {
        if p.state == State::Blocked(why) {
            p.state = State::Runnable;
            enqueue(&mut s.queue, p.pid);
            crate::mm::psi::wake(p.pid);
        }
    }
}

/// Makes every process in `poll`/`select` ([`Block::Poll`], whatever its
/// timeout) runnable: they look at their files again.
pub fn wake_pollers() {
    with(|s| {
        for p in s.procs.values_mut() {
            if matches!(p.state, State::Blocked(Block::Poll(_))) {
                p.state = State::Runnable;
                enqueue(&mut s.queue, p.pid);
                crate::mm::psi::wake(p.pid);
            }
        }
    })
}

/// A [`Block::Kswapd`] wake that found the scheduler lock held: the next
/// timer tick delivers it.
static DEFERRED_KSWAPD_WAKE: AtomicBool = AtomicBool::new(false);

/// Wakes the processes blocked on [`Block::Kswapd`] from any context: it
/// neither allocates nor waits for a lock. With interrupts off and one
/// CPU, the scheduler lock can only be held by the context this
/// interrupted (or this one): then the wake is left to the next tick
/// (10 ms at most) instead of deadlocking.
pub fn wake_from_anywhere() {
    match SCHED.try_lock() {
        Some(mut guard) => {
            if let Some(s) = guard.as_mut() {
                wake_locked(s, Block::Kswapd);
            }
        }
        None => DEFERRED_KSWAPD_WAKE.store(true, Ordering::SeqCst),
    }
}

/// Sleeps the current process for at least `ticks` timer ticks' time
/// (`ticks` × 10 ms, at least one).
pub fn sleep_ticks(ticks: u64) {
    let ns = ticks.max(1).saturating_mul(crate::time::TICK_NS);
    sleep_until_ns(crate::time::uptime_ns().saturating_add(ns));
}

/// Sleeps the current process until the TSC clock (`time::uptime_ns`)
/// reaches `deadline` or something else wakes it (check the time).
pub fn sleep_until_ns(deadline: u64) {
    sleep_until_ns_unless(deadline, || false)
}

/// [`sleep_until_ns`] unless `ready()` says there is already something to
/// do (a pending signal): checked with interrupts off, so a wake between
/// the check and the sleep is never lost.
pub fn sleep_until_ns_unless(deadline: u64, ready: impl FnOnce() -> bool) {
    if crate::time::uptime_ns() >= deadline {
        return;
    }
    block_current(
        State::Blocked(Block::Sleep(deadline)),
        || crate::time::uptime_ns() >= deadline || ready(),
        || crate::time::add_wake(deadline),
    )
}

/// Ends the current process with wait status `status`: its memory goes back
/// at once, its children pass to the kernel, its parent is woken. The
/// kernel stack stays until the parent reaps the zombie.
/// With threads: every thread of the group ends (`exit_group`, a fatal
/// signal; `thread::exit_group_current`).
pub fn exit_current(status: i32) -> ! {
    thread::exit_group_current(status)
}

/// Tells `parent` that its child `child` ended with wait status `status`:
/// wakes it from `wait4`, and sends it SIGCHLD (which also ends a sleep
/// when it has a handler for it).
fn notify_parent(s: &mut Scheduler, parent: Pid, child: Pid, status: i32) {
    // One thread of the parent's group takes SIGCHLD; every one of its
    // threads in wait4 wakes (`thread`).
    let target = thread::signal_target_locked(s, parent, super::signal::num::SIGCHLD);
    thread::wake_child_waiters(s, parent);
    let Some(p) = s.procs.get_mut(&target) else {
        return;
    };
    let signalled = parent != 0
        && !p.kernel_thread
        && p.sig.post(
            super::signal::num::SIGCHLD,
            super::signal::child_info(child, status),
        );
    let wake = match p.state {
        State::Blocked(Block::Child) => true,
        State::Blocked(Block::Sleep(_) | Block::Console) => signalled,
        _ => false,
    };
    if wake {
        p.state = State::Runnable;
        enqueue(&mut s.queue, target);
        crate::mm::psi::wake(target);
    }
}

/// Runs `f` on process `pid`; if it returns true as its second value and
/// the process sleeps interruptibly (wait4, nanosleep, console read,
/// pause), it is woken (a signal for it). Callable from interrupt
/// handlers: nothing allocates.
pub fn with_process_wake<R>(pid: Pid, f: impl FnOnce(&mut Process) -> (R, bool)) -> Option<R> {
    with(|s| {
        let p = s.procs.get_mut(&pid)?;
        let (r, wake) = f(p);
        if wake && !p.kernel_thread && interruptible(p.state) {
            p.state = State::Runnable;
            enqueue(&mut s.queue, pid);
            crate::mm::psi::wake(pid);
        }
        Some(r)
    })
}

/// Makes a stopped process (`Block::Stopped`) runnable again (SIGCONT).
pub fn resume_stopped(pid: Pid) {
    with(|s| {
        if let Some(p) = s.procs.get_mut(&pid) {
            if p.state == State::Blocked(Block::Stopped) {
                p.state = State::Runnable;
                enqueue(&mut s.queue, pid);
                crate::mm::psi::wake(pid);
            }
        }
    })
}

/// Whether child `p` is one a wait for `pid` takes: that child (> 0),
/// any (-1), or one in process group `-pid` (< -1; `wait4` turns 0 into
/// the caller's group).
pub fn wait_selects(p: &Process, pid: i64) -> bool {
    match pid {
        pid if pid > 0 => p.pid as i64 == pid,
        -1 => true,
        pid => p.pgid as i64 == -pid,
    }
}

/// There is no child that matches (ECHILD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoChild;

/// Reaps a zombie child of the current process: `pid` > 0 for that child,
/// -1 for any. `Ok(Some((pid, status)))` when one was reaped, `Ok(None)` if
/// children exist but none has exited, `Err(())` if there are none that
/// match (ECHILD).
pub fn reap(pid: i64) -> Result<Option<(Pid, i32)>, NoChild> {
    // Threads that ended go first (their kernel stacks).
    reap_adopted();
    // A zombie whose CPU is still on its kernel stack (it is between
    // `thread::exit_thread_locked` and the end of its last switch, `cpus`)
    // is waited for: its stack must not go before. Any thread waits for
    // the children of its whole group.
    while with(|s| {
        let me = thread::group_of(s, current_here());
        s.procs.values().any(|p| {
            p.ppid == me
                && p.pid != me
                && matches!(p.state, State::Zombie(_))
                && wait_selects(p, pid)
                && p.on_cpu.load(Ordering::SeqCst)
        })
    }) {
        core::hint::spin_loop();
    }
    let reaped = with(|s| {
        // A child is its group leader, reapable when all its threads ended.
        let me = thread::group_of(s, current_here());
        let mut any = false;
        let mut found = None;
        for p in s.procs.values() {
            if p.ppid != me
                || p.pid == me
                || p.kernel_thread
                || !p.is_group_leader()
                || !wait_selects(p, pid)
            {
                continue;
            }
            any = true;
            // (One that became a zombie since the wait above is left for
            // the next call.)
            if let State::Zombie(status) = p.state {
                if !p.on_cpu.load(Ordering::SeqCst) && thread::reapable(&s.procs, p) {
                    found = Some((p.pid, status));
                    break;
                }
            }
        }
        match found {
            Some((child, status)) => {
                let p = s.procs.remove(&child).expect("found above");
                Ok(Some((child, status, p)))
            }
            None if any => Ok(None),
            None => Err(NoChild),
        }
    })?;
    Ok(reaped.map(|(child, status, p)| {
        let mut p = p;
        p.free_kernel_stack();
        (child, status)
    }))
}

/// Waits for a child as `wait4` does (blocking unless `nohang`).
pub fn wait(pid: i64, nohang: bool) -> Result<Option<(Pid, i32)>, NoChild> {
    loop {
        match reap(pid)? {
            Some(done) => return Ok(Some(done)),
            None if nohang => return Ok(None),
            // Checked again with interrupts off: a child that exits between
            // the reap and the block (this task preempted in between)
            // finds us not yet blocked, and its wake would be lost.
            None => block_unless(Block::Child, || zombie_child(pid)),
        }
    }
}

/// Whether a child matching `pid` (as in [`reap`]) is a zombie.
pub fn zombie_child(pid: i64) -> bool {
    with(|s| {
        let me = thread::group_of(s, current_here());
        s.procs.values().any(|p| {
            p.ppid == me
                && p.pid != me
                && !p.kernel_thread
                && p.is_group_leader()
                && wait_selects(p, pid)
                && matches!(p.state, State::Zombie(_))
                && thread::reapable(&s.procs, p)
        })
    })
}

/// Gives the current process a new program (execve): its address space,
/// name, break and TLS base are replaced; returns the old address space,
/// already switched away from, for the caller to drop.
pub fn replace_image(image: &mut super::exec::Image) -> Option<SharedAddressSpace> {
    let root = image.aspace.lock().root();
    let old = with_current(|p| {
        // Moved, not copied: nothing to allocate past the point of no return.
        core::mem::swap(&mut p.name, &mut image.name);
        p.brk = image.brk;
        p.fs_base = 0;
        p.root = root;
        *p.fpu = FpuState::initial();
        p.aspace.replace(image.aspace.clone())
    });
    aspace::switch_to_root(Some(image.aspace.clone()), root);
    FsBase::write(VirtAddr::new(0));
    FpuState::initial().restore();
    old
}

/// Records the fault that is about to kill the current process.
pub fn note_fault(fault: UserFault) {
    with_current(|p| p.fault = Some(fault));
}

/// Kills process `pid` as SIGKILL would: it never runs again, its memory
/// goes back now, its parent sees it die by signal 9. False if there is no
/// such (live, user) process: kernel threads are never killed.
pub fn kill(pid: Pid) -> bool {
    if pid == 0 || with_process(pid, |p| p.kernel_thread).unwrap_or(false) {
        return false;
    }
    // The whole thread group dies (`thread::kill_group`).
    let Some(tgid) = with(|s| s.procs.get(&pid).map(|p| p.thread.tgid)) else {
        return false;
    };
    if tgid == with(|s| thread::group_of(s, current_here())) {
        exit_current(signal_status(9));
    }
    thread::kill_group(tgid, signal_status(9))
}
