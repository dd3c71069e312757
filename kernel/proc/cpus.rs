//! The scheduler on every CPU: what `sched` keeps per CPU, which CPU may
//! run what, the idle contexts, waking idle CPUs, the per-CPU tick.
//!
//! ## Design: one shared run queue
//!
//! Every CPU picks from the one run queue in `sched`'s `Scheduler`, under
//! the scheduler lock (the lock `sched` always had). Per-CPU queues with
//! balancing pay when that lock is contended. Here, with 2–4 CPUs, a pick
//! is one pass over a short queue under the lock against a 30 ms slice
//! (about 30 switches per second per busy CPU), and the shared queue
//! balances for free: a CPU that runs dry takes the next runnable process,
//! wherever it last ran. `tests/smpsched.rs` prints the switches each CPU
//! made for 3 programs per CPU run at once: within about 20 % of each other on
//! 2 and 4 CPUs (e.g. 1014/1040, 1067/1102/1017/1033). So: shared queue,
//! kept; per-CPU queues wait until a profile shows the lock. The cost of
//! the shared queue is cache affinity (no preference for the CPU a
//! process last ran on).
//!
//! ## Per CPU (in `arch::percpu::PerCpu`)
//!
//! `current` (the pid this CPU runs; [`NO_PID`] in its idle context),
//! `running_since` (CPU-time accounting), `slice` (ticks left), `idling`
//! (halted with nothing to run: a wake sends it an IPI). Each process
//! records the CPU it last ran on (`ps`'s CPU column, `/proc/PID/stat`
//! field 39) and whether a CPU is on its kernel stack (`on_cpu`): set when
//! a CPU picks it, cleared by `arch::switch::finish_switch` on that CPU
//! once it switched away (Linux's `p->on_cpu`). No CPU picks a process
//! another CPU is still on, and a zombie is not reaped (its stack freed)
//! before its CPU left it.
//!
//! ## Idle contexts
//!
//! Every CPU has an idle context of its own (the bootstrap CPU's is made
//! by [`init_idle`]; an AP's is the stack it was started on). A CPU whose
//! current process blocks or exits with nothing else to run switches to
//! it, rather than halting on the blocked process's stack, which another
//! CPU may want to resume. The idle context runs no process: it halts
//! until an interrupt and looks at the queue again.
//!
//! ## Who runs where
//!
//! Each process has an [`Affinity`]. Pid 0 (the shell, a test's main) stays
//! on the bootstrap CPU; kernel threads stay there too unless started on
//! another CPU or on any (`sched::spawn_kthread_on`: the per-CPU stress
//! test runs one on every CPU). User processes run on every CPU unless the
//! switch [`set_user_on_aps`] is off (then only CPU 0 runs them, as before
//! SMP). A kernel thread on an AP runs on whatever tables the CPU has
//! loaded (lazy TLB) like one on CPU 0; nothing it does depends on which
//! CPU it is on except the per-CPU data it reaches with interrupts off
//! (`arch::cpulocal`), and a thread pinned to a CPU never migrates, so its
//! view of "this CPU" is stable between two points with interrupts on.
//!
//! ## Ticks
//!
//! The local APIC timer of every CPU (`arch::apic::start_timer`, periodic
//! at `time::TICK_HZ`, calibrated against the TSC) ends the running
//! process's slice ([`on_cpu_tick`]). The PIT stays the global clock on
//! the bootstrap CPU: sleepers' deadlines, itimers, load average
//! (`sched::on_tick`). Without a local APIC the PIT tick ends slices as
//! before.
//!
//! ## Lock order
//!
//! See `docs/locking.md`. The scheduler lock is a leaf for everything but
//! the per-process state it protects; the run queue is part of it.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use crate::arch::percpu::NO_PID;
use crate::arch::percpu::{self, PerCpu};

use super::sched::Pid;

/// User processes may run on the application processors.
static USER_ON_APS: AtomicBool = AtomicBool::new(true);

/// Turns running user processes on the APs on or off (off: CPU 0 runs
/// every process, as before SMP). Processes running on an AP now finish
/// their slice there.
pub fn set_user_on_aps(on: bool) {
    USER_ON_APS.store(on, Ordering::SeqCst);
}

pub fn user_on_aps() -> bool {
    USER_ON_APS.load(Ordering::SeqCst)
}

/// This CPU's slot.
pub fn here() -> &'static PerCpu {
    percpu::this()
}

/// This CPU's index.
pub fn cpu() -> u32 {
    percpu::cpu_index() as u32
}

/// The pid this CPU runs ([`NO_PID`] in its idle context).
pub fn current_here() -> Pid {
    here().current.load(Ordering::Relaxed)
}

/// Where a process may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// Only on this CPU (pid 0 and kernel threads by default: CPU 0).
    Cpu(u32),
    /// On any CPU (user processes: see [`set_user_on_aps`]).
    Any,
}

/// Kernel threads alive that may run on an AP: while there are any, a
/// wake-up reaches idle APs even with [`set_user_on_aps`] off.
static AP_KTHREADS: AtomicUsize = AtomicUsize::new(0);

/// A kernel thread with `affinity` starts (`true`) or ends.
pub fn note_kthread(affinity: Affinity, start: bool) {
    if affinity != Affinity::Cpu(0) {
        if start {
            AP_KTHREADS.fetch_add(1, Ordering::SeqCst);
        } else {
            AP_KTHREADS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Whether a process with `affinity` may run on CPU `cpu`: a pinned one
/// only there; any other kernel thread anywhere; a user process anywhere
/// while [`set_user_on_aps`] is on, else on CPU 0.
pub fn may_run_on(kernel_thread: bool, affinity: Affinity, cpu: u32) -> bool {
    match affinity {
        Affinity::Cpu(c) => c == cpu,
        Affinity::Any => cpu == 0 || kernel_thread || user_on_aps(),
    }
}

/// Sends a wake-up IPI to every idle CPU but this one (something was
/// queued). Called with the scheduler lock held, so an idle CPU that set
/// `idling` under the lock either sees the new entry or gets the IPI.
pub fn kick_idle() {
    let me = percpu::cpu_index();
    let online = crate::arch::smp::cpus_online();
    if online < 2 {
        return;
    }
    for (i, c) in percpu::cpus()
        .iter()
        .enumerate()
        .take(crate::arch::percpu::MAX_CPUS)
    {
        if i != me && c.online.load(Ordering::Acquire) && c.idling.load(Ordering::SeqCst) {
            if i != 0 && !user_on_aps() && AP_KTHREADS.load(Ordering::SeqCst) == 0 {
                continue;
            }
            crate::arch::smp::wake(i);
        }
    }
}

/// Makes the bootstrap CPU's idle context (a kernel stack that runs
/// [`idle_loop`]); the APs' are their start-up stacks.
pub fn init_idle() {
    let (stack, rsp) = crate::arch::switch::new_kernel_thread_stack(4, idle_entry)
        .expect("a kernel stack for CPU 0's idle context");
    // The idle context lives for good (a `VmArea` frees nothing when
    // dropped; only `vmalloc::free` would).
    let _ = stack;
    percpu::cpus()[0].idle_rsp.store(rsp, Ordering::SeqCst);
}

fn idle_entry() -> ! {
    idle_loop()
}

/// A CPU's idle context: look for work, halt until an interrupt when
/// there is none. Never returns.
pub fn idle_loop() -> ! {
    let me = here();
    loop {
        x86_64::instructions::interrupts::disable();
        // Sets `idling` (under the scheduler lock) when nothing runs.
        super::sched::schedule();
        if me.idling.load(Ordering::SeqCst) {
            // An idle CPU gives back its allocator caches (and answers
            // drain requests, which come with a wake-up IPI).
            crate::mm::percpu::on_idle();
            x86_64::instructions::interrupts::enable_and_hlt();
            me.idle_wakes.fetch_add(1, Ordering::Relaxed);
            me.idling.store(false, Ordering::SeqCst);
        }
    }
}

/// Starts the scheduler on every AP (they idle in `arch::smp` until
/// now): each enters [`idle_loop`] at its next interrupt.
pub fn start_aps() {
    crate::arch::smp::set_idle_hook(idle_loop);
    for i in 1..crate::arch::smp::cpus_online() {
        crate::arch::smp::wake(i);
    }
}
