//! The page cache's reverse map (`i_mmap`): from a file page to every
//! page-table entry that maps it, in every address space. Two processes
//! (a fork) run a program while the test takes its file pages away from
//! under them (unmapped everywhere, then dropped) and they refault them
//! and finish right; after munmap of part of a file region, mprotect
//! splitting one, mremap moving one, MAP_FIXED over one, and fork, the map
//! finds exactly the leaves that exist; a private page that was written
//! (its copy-on-write copy) never goes; and every frame comes back.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrite::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use ferrite::mm::pagecache::{self, Busy, Mapping};
use ferrite::mm::uaccess::{copy_from_user, copy_to_user};
use ferrite::mm::vmstat;
use ferrite::proc::ramdisk;
use ferrite::proc::sched::{self, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::testing::settled_free_pages;
use mmcore::Pfn;
use spin::Mutex;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, Vma, VmaKind};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        a_fork_pair_runs_while_its_file_pages_are_dropped,
        region_changes_keep_the_map_exact,
    ])
}

const PAGE: u64 = 4096;
const PAGES: u64 = 16;
const BASE: u64 = 0x1000_0000;
const MOVED: u64 = 0x2000_0000;

fn alive(pid: sched::Pid) -> bool {
    sched::with_process(pid, |p| !matches!(p.state, State::Zombie(_))).unwrap_or(false)
}

/// `filemap` (a parent and its child checking their program file, mapped
/// privately, and their own text and data, round after round) runs while
/// the test, between its rounds, unmaps every page of that file from every
/// address space and shrinks the cache (which also drops the mapped pages
/// not touched since its last look). They fault the pages back in and
/// finish right; the page each wrote is never taken.
fn a_fork_pair_runs_while_its_file_pages_are_dropped() {
    let file = ramdisk::open("/bin/filemap").expect("/bin/filemap (make -C user)");
    let pages = (file.data.len() as u64).div_ceil(PAGE);
    // The file's cache index grows to its full size (and keeps it: a
    // radix leaf never shrinks) before the balance is taken: every page
    // cached once (then dropped again by settled_free_pages).
    for index in 0..pages {
        drop(pagecache::get(file.id, index * PAGE).expect("cache a page"));
    }
    let free = settled_free_pages();
    let counters = vmstat::snapshot();
    let dropped = pagecache::mapped_dropped();
    ferrite::klog::capture_start();
    let pid = spawn_program("/bin/filemap", &["filemap"]).expect("spawn filemap");
    let (mut passes, mut unmapped, mut busy) = (0u64, 0usize, 0u64);
    while alive(pid) {
        // The first 60 passes, and three in four after, only shrink: the
        // second look at a page no one touched since (start-up code, say)
        // drops it even though it is mapped.
        if passes >= 60 && passes % 4 == 3 {
            for index in 0..pages {
                match pagecache::unmap_page_everywhere(file.id, index) {
                    Ok(n) => unmapped += n,
                    Err(Busy) => busy += 1,
                }
            }
        }
        pagecache::shrink();
        passes += 1;
        sched::yield_now();
    }
    let exit = wait_for(pid);
    let out = ferrite::klog::capture_take();
    assert_eq!(exit, UserExit::Exited(0), "output: {out}");
    assert!(
        out.contains("filemap: parent ok after 300 rounds")
            && out.contains("filemap: child ok after 300 rounds"),
        "output: {out}"
    );
    drop(out);
    assert_eq!(settled_free_pages(), free, "frames kept");
    let majfault = vmstat::snapshot().since(&counters).pgmajfault;
    let mapped_dropped = pagecache::mapped_dropped() - dropped;
    ferrite::kprintln!(
        "filemap: {passes} passes, {unmapped} leaves unmapped ({busy} busy), \
         {mapped_dropped} mapped pages dropped by shrink, {majfault} major faults"
    );
    // Both processes map the whole file (the private mapping) and touch
    // it every round: each pass that unmapped found them.
    assert!(
        unmapped as u64 >= 2 * pages * 4,
        "{unmapped} leaves unmapped in {passes} passes"
    );
    assert!(
        mapped_dropped > 0,
        "shrink never dropped an idle mapped page"
    );
    assert!(
        majfault >= 2 * pages,
        "{majfault} major faults: the pages were not read back in"
    );
}

/// Page `i` of FILE: its index in every byte's high nibble.
static FILE: [u8; (PAGES * PAGE) as usize] = {
    let mut f = [0u8; (PAGES * PAGE) as usize];
    let mut i = 0;
    while i < f.len() {
        f[i] = ((i / 4096) as u8) << 4 | (i % 11) as u8;
        i += 1;
    }
    f
};

fn space() -> SharedAddressSpace {
    Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")))
}

fn file_vma(file: u32, start: u64, pages: u64) -> Vma {
    Vma {
        start,
        end: start + pages * PAGE,
        prot: Prot::RW,
        sharing: Sharing::Private,
        kind: VmaKind::File { file, offset: 0 },
        flags: VmaFlags {
            tag: VmaTag::Mmap,
            ..VmaFlags::default()
        },
    }
}

/// The regions of `file` in `a`.
fn regions(a: &SharedAddressSpace, file: u32) -> Vec<Mapping> {
    let a = a.lock();
    a.vmas()
        .iter()
        .filter_map(|v| match v.kind {
            VmaKind::File { file: f, offset } if f == file => Some(Mapping {
                space: a.id(),
                start: v.start,
                offset,
                len: v.end - v.start,
            }),
            _ => None,
        })
        .collect()
}

/// Reads every page of every region of `file` in each space (faulting the
/// file pages in) and checks what it reads; `written` is the address whose
/// byte space `w` changed.
fn touch_all(spaces: &[SharedAddressSpace], file: u32, written: Option<(usize, u64, u8)>) {
    for (i, a) in spaces.iter().enumerate() {
        aspace::switch_to(Some(a.clone()));
        for m in regions(a, file) {
            for at in (0..m.len).step_by(PAGE as usize) {
                let mut b = [0u8];
                copy_from_user(&mut b, m.start + at + 5).expect("a mapped page");
                let want = match written {
                    Some((w, va, v)) if w == i && va == m.start + at + 5 => v,
                    _ => FILE[(m.offset + at + 5) as usize],
                };
                assert_eq!(b[0], want, "space {i} at {:#x}", m.start + at);
            }
        }
    }
    aspace::switch_to(None);
}

/// The reverse map of `file` is exactly the spaces' regions of it, and for
/// every page, [`pagecache::unmap_page_in`] clears exactly the leaves that
/// map its cache frame (counted beforehand by translating every address
/// of every region), leaving private copies alone.
fn check_exact(spaces: &[SharedAddressSpace], file: u32) {
    let mut want: Vec<Mapping> = spaces.iter().flat_map(|a| regions(a, file)).collect();
    let mut got = pagecache::mappings(file).expect("the file");
    let key = |m: &Mapping| (m.space, m.start);
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want, "reverse map vs regions");
    for index in 0..PAGES {
        // The leaves mapping the cache frame of page `index`, and the
        // private copies of it.
        let (mut leaves, mut copies) = (Vec::new(), Vec::new());
        for (i, a) in spaces.iter().enumerate() {
            for m in regions(a, file) {
                let Some(va) = m.va_of(index) else { continue };
                match a.lock().translate(va) {
                    Some((pa, _))
                        if pagecache::owner_of(Pfn::from_addr(pa)) == Some((file, index)) =>
                    {
                        leaves.push((i, va))
                    }
                    Some((pa, _)) => copies.push((i, va, pa)),
                    None => {}
                }
            }
        }
        assert_eq!(
            pagecache::unmap_page_in(spaces, file, index),
            Ok(leaves.len()),
            "page {index}: leaves {leaves:x?}"
        );
        for &(i, va) in &leaves {
            assert_eq!(
                spaces[i].lock().translate(va),
                None,
                "page {index}: kept at {va:#x}"
            );
        }
        for &(i, va, pa) in &copies {
            assert_eq!(
                spaces[i].lock().translate(va).map(|t| t.0),
                Some(pa),
                "page {index}: private copy at {va:#x} taken"
            );
        }
    }
}

fn region_changes_keep_the_map_exact() {
    let file = pagecache::register(&FILE);
    let free = settled_free_pages();
    let a = space();
    a.lock().map(file_vma(file, BASE, PAGES)).unwrap();
    touch_all(core::slice::from_ref(&a), file, None);
    check_exact(core::slice::from_ref(&a), file);

    // fork: the child's regions are registered, its leaves found.
    touch_all(core::slice::from_ref(&a), file, None);
    let b: SharedAddressSpace = Arc::new(Mutex::new(a.lock().fork().expect("fork")));
    let both = [a.clone(), b.clone()];
    check_exact(&both, file);

    // munmap of the middle splits a's region in two.
    a.lock().unmap(BASE + 3 * PAGE, BASE + 5 * PAGE).unwrap();
    touch_all(&both, file, None);
    check_exact(&both, file);

    // mprotect of one page splits a region in three.
    a.lock()
        .protect(BASE + 8 * PAGE, BASE + 9 * PAGE, Prot::READ)
        .unwrap();
    touch_all(&both, file, None);
    check_exact(&both, file);

    // mremap moves four of b's pages (and their leaves) elsewhere.
    touch_all(&both, file, None);
    b.lock()
        .move_region(BASE + 10 * PAGE, 4 * PAGE, MOVED)
        .unwrap();
    assert!(b.lock().translate(MOVED).is_some(), "leaves moved");
    check_exact(&both, file);

    // MAP_FIXED anonymous memory over one page of a's region.
    a.lock()
        .map_fixed(Vma::anonymous(BASE + 12 * PAGE, BASE + 13 * PAGE, Prot::RW))
        .unwrap();
    touch_all(&both, file, None);
    check_exact(&both, file);

    // A private write: a's page 14 is its own copy now; only b's leaf of
    // the file page is found, and a's copy survives every reclaim below.
    touch_all(&both, file, None);
    let copy_at = BASE + 14 * PAGE + 5;
    aspace::switch_to(Some(a.clone()));
    copy_to_user(copy_at, &[0xee]).unwrap();
    aspace::switch_to(None);
    let written = Some((0, copy_at, 0xee));
    check_exact(&both, file);
    touch_all(&both, file, written);

    // A busy mapper: nothing changes.
    {
        let _held = a.lock();
        assert_eq!(pagecache::unmap_page_in(&both, file, 0), Err(Busy));
    }
    assert!(a.lock().translate(BASE).is_some() && b.lock().translate(BASE).is_some());

    // Accessed bits: set by the touches above, cleared by the first look.
    assert!(pagecache::page_referenced_in(&both, file, 0));
    assert!(!pagecache::page_referenced_in(&both, file, 0));

    // Shrinking: the first look spares what was touched since the last,
    // the second drops every idle page even though mapped (unmapping it
    // everywhere); the private copy stays.
    touch_all(&both, file, written);
    let cached = pagecache::cached_pages();
    let dropped = pagecache::mapped_dropped();
    assert_eq!(
        pagecache::shrink_in(&both, u64::MAX),
        0,
        "touched pages dropped"
    );
    let freed = pagecache::shrink_in(&both, u64::MAX);
    assert_eq!(freed, PAGES, "idle mapped pages kept");
    assert_eq!(pagecache::mapped_dropped() - dropped, PAGES);
    assert_eq!(pagecache::cached_pages(), cached - PAGES);
    assert_eq!(a.lock().peek(copy_at), Some(0xee), "private copy dropped");
    // They come back from the file.
    touch_all(&both, file, written);
    check_exact(&both, file);

    // Exit: each space's entries go with it.
    drop(both);
    drop(b);
    assert_eq!(pagecache::mappings(file).unwrap(), regions(&a, file));
    drop(a);
    assert_eq!(pagecache::mappings(file).unwrap(), Vec::new());
    assert_eq!(settled_free_pages(), free, "frames kept");
}
