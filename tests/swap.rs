//! Swap in QEMU: programs whose memory is several times the machine's RAM
//! run to the end with correct data on compressed swap (zram), fork + COW
//! pages survive being swapped out and in on both sides, and every frame
//! and slot comes back when they exit.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use ferrite::mm::uaccess::{copy_from_user, copy_to_user};
use ferrite::mm::{frames, reclaim, swap, vmstat};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::testing::settled_free_pages;
use spin::Mutex;
use vmcore::{Prot, Vma};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        three_times_ram_on_compressed_swap,
        a_page_shared_by_many_takes_one_slot,
    ])
}

fn run(path: &str, argv: &[&str]) -> (UserExit, String) {
    capture_start();
    let pid = spawn_program(path, argv).unwrap_or_else(|e| panic!("{path}: {e}"));
    let exit = wait_for(pid);
    (exit, capture_take())
}

/// RAM in MiB as the allocator manages it.
fn ram_mib() -> u64 {
    frames::stats().managed_pages / 256
}

fn three_times_ram_on_compressed_swap() {
    // A first run of the program without swap sets up what stays (the
    // program's cached file pages, one-time kernel state).
    let (exit, out) = run("/bin/swapstress", &["swapstress", "1", "1"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    let free_before = settled_free_pages();
    let kinds_before = frames::stats().pages_by_kind;
    let mib = ram_mib() * 3;
    swap::swapon_zram(mib * 256 * 2).expect("swapon");
    let before = vmstat::snapshot();
    let arg = alloc::format!("{mib}");
    let (exit, out) = run("/bin/swapstress", &["swapstress", &arg, "1"]);
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(out.contains("swapstress: ok"), "output: {out}");
    let d = vmstat::snapshot().since(&before);
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping happened: {d:?}");
    assert!(d.pgmajfault > 0, "swap-ins are major faults: {d:?}");
    let (_, used, cached) = swap::usage();
    assert_eq!((used, cached), (0, 0), "slots or swap cache left");
    swap::swapoff().expect("nothing is swapped out");
    assert_eq!(swap::usage(), (0, 0, 0));
    let free_after = settled_free_pages();
    assert_eq!(
        free_after,
        free_before,
        "frames lost: by kind before {kinds_before:?} after {:?}",
        frames::stats().pages_by_kind
    );
    ferrite::kprintln!(
        "  {mib} MiB on {} MiB of RAM: pswpout {} pswpin {} majfault {} scanned {} stolen {}",
        ram_mib(),
        d.pswpout,
        d.pswpin,
        d.pgmajfault,
        d.pgscan_direct,
        d.pgsteal_direct
    );
}

/// The address spaces reclaim may look in (this test's own; none of them
/// is a process).
static SPACES: Mutex<Vec<SharedAddressSpace>> = Mutex::new(Vec::new());

fn test_spaces(f: &mut dyn FnMut(&SharedAddressSpace)) {
    for a in SPACES.lock().iter() {
        f(a);
    }
}

/// A page fork shares among nine address spaces is written to one slot
/// once; every leaf records that slot; swapping it back in from any of
/// them maps one frame again, shared through the swap cache.
fn a_page_shared_by_many_takes_one_slot() {
    const BASE: u64 = 0x5000_0000;
    let free_before = settled_free_pages();
    swap::swapon_zram(1024).expect("swapon");
    reclaim::set_spaces_hook(test_spaces);
    let parent: SharedAddressSpace = Arc::new(Mutex::new(AddressSpace::new().unwrap()));
    parent
        .lock()
        .map(Vma::anonymous(BASE, BASE + 4096, Prot::RW))
        .unwrap();
    aspace::switch_to(Some(parent.clone()));
    copy_to_user(BASE, &[0xab; 64]).unwrap();
    let mut all = alloc::vec![parent.clone()];
    for _ in 0..8 {
        let child = parent.lock().fork().expect("fork");
        all.push(Arc::new(Mutex::new(child)));
    }
    aspace::switch_to(None);
    *SPACES.lock() = all.clone();
    let before = vmstat::snapshot();
    // Two rounds at most: the first may only clear accessed bits.
    let mut freed = 0;
    for _ in 0..4 {
        freed += reclaim::reclaim(1);
        if freed > 0 {
            break;
        }
    }
    assert_eq!(freed, 1, "the shared page was swapped out");
    let d = vmstat::snapshot().since(&before);
    assert_eq!(d.pswpout, 1, "written once: {d:?}");
    let (_, used, cached) = swap::usage();
    assert_eq!((used, cached), (1, 0), "one slot, nothing cached");
    for a in &all {
        assert_eq!(a.lock().translate(BASE), None, "every leaf is a swap entry");
        assert_eq!(a.lock().swap_pages(), 1);
    }
    // Each faults it back: one read from the device, then cache hits.
    let mut frame = None;
    for a in &all {
        aspace::switch_to(Some(a.clone()));
        let mut b = [0u8; 64];
        copy_from_user(&mut b, BASE).unwrap();
        assert_eq!(b, [0xab; 64]);
        let (pa, _) = a.lock().translate(BASE).unwrap();
        assert_eq!(*frame.get_or_insert(pa), pa, "one frame for all");
    }
    aspace::switch_to(None);
    let d = vmstat::snapshot().since(&before);
    assert_eq!(d.pswpin, 1, "read once: {d:?}");
    assert_eq!(
        swap::usage().1,
        0,
        "the slot is free once every leaf is back"
    );
    *SPACES.lock() = Vec::new();
    drop(all);
    drop(parent);
    swap::swapoff().expect("swapoff");
    ferrite::proc::init_reclaim_hook();
    assert_eq!(settled_free_pages(), free_before, "frames lost");
}
