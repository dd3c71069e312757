//! Processes: the scheduler, system calls, exec from the ramdisk, and the
//! handling of user faults (the faulting process dies, the kernel runs on),
//! and the OOM killer (`oom`: when memory runs out, the largest process dies).
//!
//! No unsafe code: user memory goes through `mm::uaccess` (typed copies of
//! `Pod` values), the user ABI's structs are `arch::uapi`'s, the ramdisk's
//! bytes come from `boot`. The scheduler core's context switch is the one
//! exception, allowed where it happens (see `sched`).
#![deny(unsafe_code)]

pub mod console;
pub mod cpus;
pub mod exec;
pub mod fd;
pub mod itimer;
pub mod kswapd;
pub mod oom;
pub mod ramdisk;
pub mod sched;
pub mod signal;
pub mod stats;
pub mod syscall;
pub mod user;
pub mod vdso;

/// Lets reclaim find every process's address space (its reverse map).
pub fn init_reclaim_hook() {
    crate::mm::reclaim::set_spaces_hook(sched::each_address_space);
}

pub fn init() {
    sched::init();
    crate::mm::psi::set_current_hook(sched::current_pid);
    init_reclaim_hook();
    user::install_fault_handlers();
    signal::init();
    oom::init();
    crate::arch::trap::set_syscall_handler(syscall::dispatch);
    console::init();
    ramdisk::init();
    crate::fs::vfs::init();
    vdso::init();
    // Background reclaim, in every kernel (the tests' too).
    if let Err(e) = kswapd::start() {
        log::warn!("kswapd: not started: {e:?}");
    }
    // The other CPUs join the scheduler (`cpus`).
    cpus::start_aps();
}
