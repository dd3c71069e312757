//! TLB shootdown: invalidating translations on the other CPUs.
//!
//! Each CPU publishes the root table it has loaded (`PerCpu::loaded_root`,
//! written by `mmu::switch_root` before CR3). A change to an address space
//! asks [`others_with`] for the CPUs that may cache it — those with its
//! root loaded — and [`shoot`] sends them one IPI for the gather's whole
//! flush (its pages up to `vmcore::gather::FLUSH_ALL_THRESHOLD`, a whole
//! flush beyond: the same ceiling as on this CPU), then waits until every
//! one of them acknowledged; only then does the caller (the gather in
//! `mm`) free the frames. A gather holds up to
//! `vmcore::gather::MAX_GATHER_FRAMES` frames, so a `munmap` of up to
//! 32 MiB is one round. Without PCID a CPU that switched to another root
//! holds nothing of the old one, so "loaded now" is the exact set.
//! Kernel-half changes (vmalloc unmaps) go to every CPU ([`shoot_kernel`]),
//! global entries included.
//!
//! Lazy TLB (Linux's): the idle context and kernel threads keep the tables
//! they find, marked `tlb_lazy` (`mmu::enter_lazy`). They never use the
//! user half, so a flush that frees only frames skips them — the CPU
//! reloads CR3 when it switches to a user space again (`mmu::switch_root`),
//! which is the flush it missed. A flush after page tables were unlinked
//! reaches them too (their MMU could still walk the freed tables
//! speculatively), and they answer it by leaving the space for the
//! kernel's tables, so later ones skip them. Without this, a thread whose
//! sibling sleeps IPIs the idle CPU at every `munmap`, and waking a halted
//! CPU under TCG costs milliseconds.
//!
//! The ordering that makes the set exact: the shooter changes the tables,
//! then (SeqCst fence) reads the roots; a switching CPU writes its root
//! (SeqCst), then loads CR3. Either the shooter sees the CPU, or the
//! CPU's page walks of the new root start after the change.
//!
//! One shootdown at a time (a spin lock). The request goes as an NMI, so
//! it is answered even by a CPU that spins with interrupts off — on a
//! lock the shooter holds (an address space's, under reclaim), or for
//! `LOCK` itself; a CPU spinning on an `IrqMutex` also polls ([`poll`]).
//! The handler only invalidates (or loads the kernel's tables) and
//! acknowledges: no lock, nothing that an interrupted context could hold.

use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::percpu;

/// The shootdown IPI's vector.
pub const TLB_VECTOR: u8 = 0xf1;

/// Pages one request carries (more: a full flush): the gather's ceiling.
pub const MAX_PAGES: usize = vmcore::gather::FLUSH_ALL_THRESHOLD as usize;

/// [`shoot`]'s `root` for the kernel half (every CPU, global entries).
pub const KERNEL: u64 = u64::MAX;

static LOCK: spin::Mutex<()> = spin::Mutex::new(());
static REQ_ROOT: AtomicU64 = AtomicU64::new(0);
static REQ_PAGES: [AtomicU64; MAX_PAGES] = [const { AtomicU64::new(0) }; MAX_PAGES];
static REQ_COUNT: AtomicU32 = AtomicU32::new(0);
static REQ_FULL: AtomicBool = AtomicBool::new(false);
static REQ_LEAVE: AtomicBool = AtomicBool::new(false);
static REMAINING: AtomicU32 = AtomicU32::new(0);
/// The kernel's own root (a CPU leaving an address space loads it).
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// Counters (`tests/smpsched.rs`, the shell's `cpus`).
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);
static IPIS: AtomicU64 = AtomicU64::new(0);
static ACKS: AtomicU64 = AtomicU64::new(0);
/// TSC cycles shooters spent in [`shoot`] (lock, send, wait), and the
/// CPUs a shootdown skipped because they held the space only lazily.
static CYCLES: AtomicU64 = AtomicU64::new(0);
static LAZY_SKIPPED: AtomicU64 = AtomicU64::new(0);

/// (shootdowns, IPIs sent, acknowledgements received) since boot.
pub fn counts() -> (u64, u64, u64) {
    (
        SHOOTDOWNS.load(Ordering::Relaxed),
        IPIS.load(Ordering::Relaxed),
        ACKS.load(Ordering::Relaxed),
    )
}

/// (TSC cycles spent shooting, lazy CPUs skipped) since boot.
pub fn costs() -> (u64, u64) {
    (
        CYCLES.load(Ordering::Relaxed),
        LAZY_SKIPPED.load(Ordering::Relaxed),
    )
}

/// Records the kernel's root table (boot).
pub fn set_kernel_root(root: u64) {
    KERNEL_ROOT.store(root, Ordering::Relaxed);
}

/// The online CPUs other than this one, with their indices (only the
/// slots of CPUs the MADT listed can be online).
fn other_online_cpus() -> impl Iterator<Item = (usize, &'static percpu::PerCpu)> {
    let me = percpu::cpu_index();
    let found = super::smp::cpus_found().min(percpu::cpus().len());
    percpu::cpus()[..found]
        .iter()
        .enumerate()
        .filter(move |&(i, c)| i != me && c.online.load(Ordering::Acquire))
}

/// The other online CPUs that have `root` loaded (a bit per CPU index),
/// those holding it only lazily included if `lazy_too` (page tables were
/// unlinked); every other online CPU for [`KERNEL`].
pub fn others_with(root: u64, lazy_too: bool) -> u64 {
    if super::smp::cpus_online() < 2 {
        return 0;
    }
    // The table change before this is ordered before the reads of the
    // roots (see the module comment).
    fence(Ordering::SeqCst);
    let mut mask = 0;
    for (i, c) in other_online_cpus() {
        if root == KERNEL {
            mask |= 1 << i;
        } else if c.loaded_root.load(Ordering::SeqCst) == root {
            // Read after the root: a CPU leaving lazy mode clears the
            // flag before it publishes a root and reloads CR3, so "lazy"
            // here means its reload comes after this table change.
            if lazy_too || !c.tlb_lazy.load(Ordering::SeqCst) {
                mask |= 1 << i;
            } else {
                LAZY_SKIPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    mask
}

/// Whether another CPU runs `root` right now (loaded, not lazily): a
/// thread of that address space that may fault meanwhile. A hint (it can
/// change at once): the fault path uses it to choose whether to clear or
/// copy a page with the address-space lock released. Unlike
/// [`others_with`] it counts nothing and orders nothing.
pub fn running_elsewhere(root: u64) -> bool {
    other_online_cpus().any(|(_, c)| {
        c.loaded_root.load(Ordering::Relaxed) == root && !c.tlb_lazy.load(Ordering::Relaxed)
    })
}

/// Invalidates `pages` (or everything, `full`) of `root` on the CPUs in
/// `mask` (see [`others_with`]; never this one), or makes them leave
/// `root` for the kernel's tables (`leave`: the space is about to be
/// freed), and returns once each acknowledged.
pub fn shoot(mask: u64, root: u64, pages: &[u64], full: bool, leave: bool) {
    if mask == 0 {
        return;
    }
    // On this CPU throughout; requests for it are answered while waiting.
    let _irq = super::sync::IrqOff::new();
    let t0 = crate::time::rdtsc();
    let guard = loop {
        if let Some(g) = LOCK.try_lock() {
            break g;
        }
        poll();
        core::hint::spin_loop();
    };
    let full = full || pages.len() > MAX_PAGES;
    REQ_ROOT.store(root, Ordering::Relaxed);
    if !full {
        for (slot, &va) in REQ_PAGES.iter().zip(pages) {
            slot.store(va, Ordering::Relaxed);
        }
    }
    REQ_COUNT.store(if full { 0 } else { pages.len() as u32 }, Ordering::Relaxed);
    REQ_FULL.store(full, Ordering::Relaxed);
    REQ_LEAVE.store(leave, Ordering::Relaxed);
    let targets = mask.count_ones();
    REMAINING.store(targets, Ordering::SeqCst);
    // Counted before they go: `nmi` tells a shootdown's NMI by this.
    IPIS.fetch_add(targets as u64, Ordering::SeqCst);
    for (i, c) in percpu::cpus().iter().enumerate() {
        if mask & (1 << i) != 0 {
            c.tlb_pending.store(true, Ordering::SeqCst);
            // An NMI: it arrives even where the target spins with
            // interrupts off (on a lock this CPU holds, say).
            super::apic::send_nmi(c.apic_id.load(Ordering::Relaxed));
        }
    }
    while REMAINING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
    ACKS.fetch_add(targets as u64, Ordering::Relaxed);
    SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
    drop(guard);
    CYCLES.fetch_add(crate::time::rdtsc().wrapping_sub(t0), Ordering::Relaxed);
}

/// Invalidates kernel-half `pages` on every other CPU (after the caller
/// invalidated them here).
pub fn shoot_kernel(pages: &[u64]) {
    shoot(others_with(KERNEL, true), KERNEL, pages, false, false);
}

/// Makes every other CPU that has `root` loaded (lazily: the space has no
/// user left) switch to the kernel's tables. Called before the space's
/// tables are freed.
pub fn leave_everywhere(root: u64) {
    shoot(others_with(root, true), root, &[], true, true);
}

/// Answers a request addressed to this CPU, if there is one (from the
/// NMI, or from a spin loop): the request is claimed first, so an NMI
/// that interrupts a poll finds nothing left to do.
pub fn poll() {
    let Some(me) = percpu::current_any() else {
        return;
    };
    if !me.tlb_pending.load(Ordering::Acquire) || !me.tlb_pending.swap(false, Ordering::AcqRel) {
        return;
    }
    let root = REQ_ROOT.load(Ordering::Relaxed);
    let full = REQ_FULL.load(Ordering::Relaxed);
    let loaded = me.loaded_root.load(Ordering::Relaxed);
    if root == KERNEL {
        if full {
            flush_everything();
        } else {
            for slot in &REQ_PAGES[..REQ_COUNT.load(Ordering::Relaxed) as usize] {
                x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(
                    slot.load(Ordering::Relaxed),
                ));
            }
        }
    } else if loaded == root {
        // A lazy holder (asked because tables went, or it turned lazy
        // after the shooter looked) leaves the space instead: later
        // shootdowns of it skip this CPU.
        if REQ_LEAVE.load(Ordering::Relaxed) || me.tlb_lazy.load(Ordering::SeqCst) {
            let kernel = KERNEL_ROOT.load(Ordering::Relaxed);
            // SAFETY: the kernel's own tables map the whole kernel half,
            // which is all this CPU uses while it has the dying space
            // loaded lazily (its idle context or a kernel thread).
            unsafe { super::mmu::switch_root(kernel) };
        } else if full {
            x86_64::instructions::tlb::flush_all();
        } else {
            for slot in &REQ_PAGES[..REQ_COUNT.load(Ordering::Relaxed) as usize] {
                x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(
                    slot.load(Ordering::Relaxed),
                ));
            }
        }
    }
    me.tlb_handled.fetch_add(1, Ordering::Relaxed);
    REMAINING.fetch_sub(1, Ordering::AcqRel);
}

/// The shootdown IPI (the fixed vector; requests go as NMIs now, this
/// stays for a request raised that way).
pub fn interrupt() {
    poll();
    super::apic::eoi();
}

/// An NMI arrived: a shootdown request's, once shootdowns are sent
/// (answered here; true: nothing else to do). A CPU stopped by a panic
/// halts. False: a real NMI (before any shootdown), for the fatal path.
pub fn nmi() -> bool {
    if super::smp::stopping() {
        super::smp::stopped();
    }
    if IPIS.load(Ordering::Relaxed) == 0 && SHOOTDOWNS.load(Ordering::Relaxed) == 0 {
        return false;
    }
    // A request already answered by a spin loop's poll leaves nothing:
    // the NMI is then a harmless duplicate.
    poll();
    true
}

/// Every translation of this CPU, global ones too (CR4.PGE toggled).
fn flush_everything() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: clearing and restoring PGE only flushes the TLB.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}
