//! Virtual memory on address spaces made by the test: demand paging with the
//! zero page, copy-on-write fork, region splits, protection changes, file
//! pages, stack growth, and faults from ring 3 that are reported without
//! hurting the kernel. Every address space is destroyed at the end and the
//! free-frame count must be exactly back.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};
use ferrite::mm::aspace::{self, AddressSpace, FaultError, SharedAddressSpace};
use ferrite::mm::frame_ref::FrameRef;
use ferrite::mm::uaccess::{copy_from_user, copy_to_user, Efault};
use ferrite::mm::{commit, frames, pagecache, vmstat};
use ferrite::proc::user::{self, UserExit, SIGSEGV};
use mmcore::{FrameKind, Pfn};
use spin::Mutex;
use vmcore::fault::FaultMode;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{FaultAccess, FaultAction, Prot, PteFlags, SegvReason, Sharing, Vma, VmaKind};

use ferrite::testing::settled_free_pages;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::count_free_frames();
    ferrite::testing::run(ferrite::tests![
        mapping_1_gib_allocates_nothing_until_touched,
        reading_100_mib_maps_only_the_zero_page,
        fork_then_writes_diverge_with_exact_cow_counts,
        installed_leaves_carry_accessed_and_dirty,
        frames_go_back_only_after_the_flush,
        unmapping_the_middle_splits_the_region,
        protection_changes_take_effect_at_once,
        file_pages_fill_on_first_touch_and_are_shared,
        a_page_wholly_past_eof_is_a_bus_error,
        shared_anonymous_memory_dies_with_its_last_holder,
        clean_cache_pages_are_reclaimed_under_pressure,
        stack_grows_down_within_its_gap,
        user_copies_refuse_kernel_and_unmapped_pointers,
        ring3_faults_are_reported_not_fatal,
        destroying_every_address_space_returns_every_frame,
    ])
}

const MIB: u64 = 1 << 20;
const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;

/// Frames owned by address spaces: user pages and page tables (the heap's
/// own pages for region bookkeeping are not counted).
fn vm_frames() -> u64 {
    let by_kind = frames::stats().pages_by_kind;
    [
        FrameKind::UserAnon,
        FrameKind::UserFile,
        FrameKind::PageTable,
    ]
    .iter()
    .map(|&k| by_kind[k as usize])
    .sum()
}

fn space() -> SharedAddressSpace {
    Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")))
}

fn activate(a: &SharedAddressSpace) {
    aspace::switch_to(Some(a.clone()));
}

fn map(a: &SharedAddressSpace, start: u64, len: u64, prot: Prot) {
    a.lock()
        .map(Vma::anonymous(start, start + len, prot))
        .expect("free range");
}

fn write_byte(addr: u64, v: u8) -> Result<(), Efault> {
    copy_to_user(addr, &[v])
}

fn read_byte(addr: u64) -> Result<u8, Efault> {
    let mut b = [0u8];
    copy_from_user(&mut b, addr)?;
    Ok(b[0])
}

fn mapping_1_gib_allocates_nothing_until_touched() {
    let a = space();
    activate(&a);
    let before = vm_frames();
    let tables_before = a.lock().page_table_pages() as u64;
    // MAP_NORESERVE: more than the machine's RAM, which the overcommit
    // heuristic refuses otherwise (see tests/overcommit.rs).
    let vma = Vma {
        flags: VmaFlags {
            account: false,
            noreserve: true,
            ..VmaFlags::default()
        },
        ..Vma::anonymous(BASE, BASE + 1024 * MIB, Prot::RW)
    };
    a.lock().map(vma).expect("free range");
    assert_eq!(vm_frames(), before, "mapping allocated frames");
    let faults = vmstat::snapshot();
    for i in 0..8u64 {
        write_byte(BASE + i * 128 * MIB, i as u8 + 1).unwrap();
    }
    let used = vm_frames() - before;
    let tables = a.lock().page_table_pages() as u64 - tables_before;
    assert_eq!(
        used,
        8 + tables,
        "8 pages + {tables} page tables, used {used}"
    );
    assert!(tables <= 8 * 2 + 1, "{tables} page tables for 8 pages");
    assert_eq!(vmstat::snapshot().since(&faults).demand_zero, 8);
    assert_eq!(a.lock().resident_pages(), (8, 0));
    aspace::switch_to(None);
}

fn reading_100_mib_maps_only_the_zero_page() {
    let a = space();
    activate(&a);
    let before = vm_frames();
    let tables_before = a.lock().page_table_pages() as u64;
    map(&a, BASE, 100 * MIB, Prot::RW);
    let counters = vmstat::snapshot();
    for page in 0..(100 * MIB / PAGE) {
        assert_eq!(read_byte(BASE + page * PAGE), Ok(0));
    }
    let delta = vmstat::snapshot().since(&counters);
    assert_eq!(delta.zero_page_maps, 100 * MIB / PAGE);
    assert_eq!(delta.demand_zero, 0);
    let used = vm_frames() - before;
    let tables = a.lock().page_table_pages() as u64 - tables_before;
    assert_eq!(used, tables, "only page tables may be allocated");
    assert!(tables <= 53, "{tables} page tables for 100 MiB");
    // Writing one of them now takes a real frame.
    write_byte(BASE + 5 * PAGE, 9).unwrap();
    assert_eq!(vmstat::snapshot().since(&counters).demand_zero, 1);
    assert_eq!(read_byte(BASE + 5 * PAGE), Ok(9));
    assert_eq!(read_byte(BASE + 6 * PAGE), Ok(0));
    aspace::switch_to(None);
}

fn fork_then_writes_diverge_with_exact_cow_counts() {
    let parent = space();
    activate(&parent);
    map(&parent, BASE, 16 * PAGE, Prot::RW);
    for i in 0..16 {
        write_byte(BASE + i * PAGE, 0xa0 + i as u8).unwrap();
    }
    let child = Arc::new(Mutex::new(parent.lock().fork().expect("fork")));
    let counters = vmstat::snapshot();
    // The child writes the first 8 pages: each is shared, so each is copied.
    activate(&child);
    for i in 0..8 {
        assert_eq!(
            read_byte(BASE + i * PAGE),
            Ok(0xa0 + i as u8),
            "child sees parent data"
        );
        write_byte(BASE + i * PAGE, 0xc0 + i as u8).unwrap();
    }
    // The parent writes all 16: the first 8 are its alone now (reuse), the
    // last 8 are still shared with the child (copy).
    activate(&parent);
    for i in 0..16 {
        write_byte(BASE + i * PAGE, 0xd0 + i as u8).unwrap();
    }
    let delta = vmstat::snapshot().since(&counters);
    assert_eq!(delta.cow_copy, 16, "copies: {delta:?}");
    assert_eq!(delta.cow_reuse, 8, "reuses: {delta:?}");
    for i in 0..16 {
        assert_eq!(parent.lock().peek(BASE + i * PAGE), Some(0xd0 + i as u8));
        let expect_child = if i < 8 { 0xc0 } else { 0xa0 } + i as u8;
        assert_eq!(child.lock().peek(BASE + i * PAGE), Some(expect_child));
    }
    aspace::switch_to(None);
}

/// The frame being watched by [`observe_flush`], and its reference count
/// at the first flush of its page (`u64::MAX`: no flush seen yet).
static WATCHED: AtomicU64 = AtomicU64::new(0);
static WATCHED_PAGE: AtomicU64 = AtomicU64::new(0);
static REFS_AT_FLUSH: AtomicU64 = AtomicU64::new(u64::MAX);

fn observe_flush(va: u64) {
    let page = WATCHED_PAGE.load(Ordering::SeqCst);
    if (va == page || va == ferrite::arch::mmu::ALL)
        && REFS_AT_FLUSH.load(Ordering::SeqCst) == u64::MAX
    {
        let pfn = Pfn(WATCHED.load(Ordering::SeqCst));
        REFS_AT_FLUSH.store(u64::from(frames::refcount(pfn)), Ordering::SeqCst);
    }
}

fn observe_nothing(_: u64) {}

/// Gather, flush, then free: when `munmap` (or `MADV_DONTNEED`) takes a
/// page out of the live address space, its frame is still allocated, with
/// its reference, at the moment the TLB entry is flushed, and free after.
fn frames_go_back_only_after_the_flush() {
    let a = space();
    activate(&a);
    map(&a, BASE, 4 * PAGE, Prot::RW);
    ferrite::arch::mmu::set_flush_observer(observe_flush);
    for (i, take_out) in [
        (|a: &SharedAddressSpace| a.lock().unmap(BASE, BASE + PAGE).unwrap())
            as fn(&SharedAddressSpace),
        |a: &SharedAddressSpace| a.lock().discard(BASE + PAGE, BASE + 2 * PAGE),
    ]
    .into_iter()
    .enumerate()
    {
        let va = BASE + i as u64 * PAGE;
        write_byte(va, 7).unwrap();
        let (pa, _) = a.lock().translate(va).expect("mapped");
        let pfn = Pfn::from_addr(pa);
        assert_eq!(frames::refcount(pfn), 1);
        WATCHED.store(pfn.0, Ordering::SeqCst);
        WATCHED_PAGE.store(va, Ordering::SeqCst);
        REFS_AT_FLUSH.store(u64::MAX, Ordering::SeqCst);
        take_out(&a);
        assert_eq!(
            REFS_AT_FLUSH.load(Ordering::SeqCst),
            1,
            "case {i}: the frame was not allocated when its page was flushed"
        );
        assert_eq!(frames::refcount(pfn), 0, "case {i}: freed after the flush");
        assert_eq!(a.lock().translate(va), None);
    }
    ferrite::arch::mmu::set_flush_observer(observe_nothing);
    aspace::switch_to(None);
}

/// A fault installs its leaf with A set, and D too for a write, as the
/// access that faulted is about to set them (Linux's `pte_mkdirty`). The
/// faults are handled on a space that is not live, so no access by the MMU
/// sets the bits instead.
fn installed_leaves_carry_accessed_and_dirty() {
    let a = space();
    map(&a, BASE, 3 * PAGE, Prot::RW);
    let fault = |addr: u64, access: FaultAccess| {
        a.lock()
            .handle_fault(addr, access, FaultMode::User)
            .expect("a fault inside the region")
    };
    let flags = |addr: u64| a.lock().translate(addr).expect("mapped").1.flags();
    assert_eq!(fault(BASE, FaultAccess::Read), FaultAction::MapZeroPage);
    let zero = flags(BASE);
    assert!(zero.contains(PteFlags::ACCESSED), "zero page: {zero}");
    assert!(!zero.contains(PteFlags::DIRTY), "zero page: {zero}");
    assert!(!zero.contains(PteFlags::WRITABLE), "zero page: {zero}");
    assert_eq!(
        fault(BASE + PAGE, FaultAccess::Write),
        FaultAction::MapNewZeroed
    );
    let all = PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::WRITABLE;
    let written = flags(BASE + PAGE);
    assert!(written.contains(all), "written page: {written}");
    // A COW copy is a write too; its fresh leaf gets the bits again.
    let child = a.lock().fork().expect("fork");
    assert_eq!(
        fault(BASE + PAGE, FaultAccess::Write),
        FaultAction::CopyOnWrite
    );
    let copied = flags(BASE + PAGE);
    assert!(copied.contains(all), "copied page: {copied}");
    drop(child);
}

fn unmapping_the_middle_splits_the_region() {
    let a = space();
    activate(&a);
    map(&a, BASE, 10 * PAGE, Prot::RW);
    for i in 0..10 {
        write_byte(BASE + i * PAGE, i as u8 + 1).unwrap();
    }
    let before = vm_frames();
    a.lock().unmap(BASE + 4 * PAGE, BASE + 6 * PAGE).unwrap();
    assert_eq!(
        vm_frames(),
        before - 2,
        "the two unmapped frames were not freed"
    );
    let regions: alloc::vec::Vec<(u64, u64)> =
        a.lock().vmas().iter().map(|v| (v.start, v.end)).collect();
    assert_eq!(
        regions,
        vec![(BASE, BASE + 4 * PAGE), (BASE + 6 * PAGE, BASE + 10 * PAGE)]
    );
    assert_eq!(
        read_byte(BASE + 4 * PAGE),
        Err(Efault),
        "hole still readable"
    );
    assert_eq!(read_byte(BASE + 3 * PAGE), Ok(4));
    assert_eq!(read_byte(BASE + 6 * PAGE), Ok(7));
    aspace::switch_to(None);
}

fn protection_changes_take_effect_at_once() {
    let a = space();
    activate(&a);
    map(&a, BASE, 4 * PAGE, Prot::RW);
    write_byte(BASE, 1).unwrap();
    a.lock().protect(BASE, BASE + 4 * PAGE, Prot::READ).unwrap();
    assert_eq!(
        write_byte(BASE, 2),
        Err(Efault),
        "write allowed after PROT_READ"
    );
    assert_eq!(read_byte(BASE), Ok(1));
    a.lock().protect(BASE, BASE + PAGE, Prot::RW).unwrap();
    write_byte(BASE, 3).unwrap();
    assert_eq!(read_byte(BASE), Ok(3));
    assert_eq!(
        write_byte(BASE + PAGE, 3),
        Err(Efault),
        "protect leaked past its range"
    );
    a.lock().protect(BASE, BASE + 4 * PAGE, Prot::NONE).unwrap();
    assert_eq!(read_byte(BASE), Err(Efault), "read allowed after PROT_NONE");
    aspace::switch_to(None);
}

static FILE: [u8; 3 * 4096 + 100] = {
    let mut f = [0u8; 3 * 4096 + 100];
    let mut i = 0;
    while i < f.len() {
        f[i] = (i / 4096) as u8 * 0x10 + (i % 7) as u8;
        i += 1;
    }
    f
};

fn file_vma(file: u32, start: u64, pages: u64, prot: Prot) -> Vma {
    Vma {
        start,
        end: start + pages * PAGE,
        prot,
        sharing: Sharing::Private,
        kind: VmaKind::File { file, offset: 0 },
        flags: VmaFlags {
            grows_down: false,
            tag: VmaTag::Image,
            ..VmaFlags::default()
        },
    }
}

fn file_pages_fill_on_first_touch_and_are_shared() {
    let file = pagecache::register(&FILE);
    let a = space();
    let b = space();
    a.lock().map(file_vma(file, BASE, 4, Prot::RW)).unwrap();
    b.lock().map(file_vma(file, BASE, 4, Prot::READ)).unwrap();
    let counters = vmstat::snapshot();
    activate(&a);
    let mut buf = [0u8; 64];
    copy_from_user(&mut buf, BASE + PAGE + 10).unwrap();
    assert_eq!(&buf[..], &FILE[4096 + 10..4096 + 74]);
    assert_eq!(read_byte(BASE + 3 * PAGE + 99), Ok(FILE[3 * 4096 + 99]));
    assert_eq!(
        read_byte(BASE + 3 * PAGE + 100),
        Ok(0),
        "past EOF reads zero"
    );
    assert_eq!(vmstat::snapshot().since(&counters).pgmajfault, 2);
    activate(&b);
    assert_eq!(read_byte(BASE + PAGE + 10), Ok(FILE[4096 + 10]));
    assert_eq!(
        vmstat::snapshot().since(&counters).pgmajfault,
        2,
        "cache missed"
    );
    let (pa_a, _) = a.lock().translate(BASE + PAGE).unwrap();
    let (pa_b, _) = b.lock().translate(BASE + PAGE).unwrap();
    assert_eq!(pa_a, pa_b, "both map the page-cache frame");
    // A private write copies; the file and the other mapping are unchanged.
    activate(&a);
    write_byte(BASE + PAGE + 10, 0xee).unwrap();
    assert_eq!(read_byte(BASE + PAGE + 10), Ok(0xee));
    assert_eq!(b.lock().peek(BASE + PAGE + 10), Some(FILE[4096 + 10]));
    assert_eq!(vmstat::snapshot().since(&counters).cow_copy, 1);
    aspace::switch_to(None);
    drop((a, b));
    assert!(pagecache::shrink() >= 2, "idle cache pages not freed");
}

fn a_page_wholly_past_eof_is_a_bus_error() {
    let file = pagecache::register(&FILE);
    let a = space();
    // Eight pages of a four-page file.
    a.lock().map(file_vma(file, BASE, 8, Prot::READ)).unwrap();
    let cached = pagecache::cached_pages();
    for page in [4, 5, 7] {
        assert_eq!(
            a.lock()
                .handle_fault(BASE + page * PAGE, FaultAccess::Read, FaultMode::User),
            Err(FaultError::PastEof),
            "page {page}"
        );
    }
    assert_eq!(pagecache::cached_pages(), cached, "no page cached past EOF");
    // The last, partial page is still there.
    assert!(a
        .lock()
        .handle_fault(BASE + 3 * PAGE, FaultAccess::Read, FaultMode::User)
        .is_ok());
}

fn shared_vma(file: u32, start: u64, pages: u64) -> Vma {
    Vma {
        sharing: Sharing::Shared,
        ..file_vma(file, start, pages, Prot::RW)
    }
}

/// `MAP_SHARED | MAP_ANONYMOUS` memory is an object every holder shares;
/// it and its pages go when the last address space holding it lets go,
/// not before (a fork child keeps it alive) and not never.
fn shared_anonymous_memory_dies_with_its_last_holder() {
    let (objects, _) = pagecache::anonymous_objects();
    // The cache's file table grows (and keeps its capacity) when the
    // object joins the ramdisk's files: grown first, so a ramdisk with one
    // more program does not count that as a leak.
    let first = pagecache::register_anonymous(commit::Charge::none()).expect("an object");
    pagecache::release(first);
    let free = settled_free_pages();
    let cached = pagecache::cached_pages();
    let committed = commit::committed_pages();
    for round in 0..3u64 {
        let a = space();
        let charge = commit::charge(16).expect("16 pages to commit");
        let obj = pagecache::register_anonymous(charge).expect("an object");
        a.lock().map(shared_vma(obj, BASE, 16)).unwrap();
        pagecache::release(obj); // the creator's hold; the space keeps its own
        activate(&a);
        for i in 0..16 {
            write_byte(BASE + i * PAGE, round as u8 + 1).unwrap();
        }
        assert_eq!(pagecache::anonymous_objects(), (objects + 1, 16));
        // A fork holds it too: the parent unmapping it does not free it.
        let child = Arc::new(Mutex::new(a.lock().fork().expect("fork")));
        a.lock().unmap(BASE, BASE + 16 * PAGE).unwrap();
        assert_eq!(pagecache::anonymous_objects(), (objects + 1, 16));
        assert_eq!(child.lock().peek(BASE + 5 * PAGE), Some(round as u8 + 1));
        // Unmapping part of the child's region keeps it; the rest goes
        // with the child.
        let reclaimable = pagecache::reclaimable_pages();
        child.lock().unmap(BASE, BASE + 8 * PAGE).unwrap();
        assert_eq!(pagecache::anonymous_objects(), (objects + 1, 16));
        assert_eq!(
            pagecache::reclaimable_pages(),
            reclaimable,
            "unmapped shared anonymous pages are not reclaimable (no other copy)"
        );
        aspace::switch_to(None);
        drop(child);
        assert_eq!(pagecache::anonymous_objects(), (objects, 0));
        // The object's charge went with it.
        assert_eq!(commit::committed_pages(), committed);
        drop(a);
    }
    assert_eq!(pagecache::cached_pages(), cached);
    assert_eq!(settled_free_pages(), free, "shared anonymous pages leaked");
}

static BIG_FILE: [u8; 2 << 20] = [0x5a; 2 << 20];

/// Clean page-cache pages nothing maps are dropped when user memory runs
/// short, so reading files cannot starve the machine.
fn clean_cache_pages_are_reclaimed_under_pressure() {
    let file = pagecache::register(&BIG_FILE);
    let pages = BIG_FILE.len() as u64 / PAGE;
    let a = space();
    a.lock()
        .map(file_vma(file, BASE, pages, Prot::READ))
        .unwrap();
    activate(&a);
    for i in 0..pages {
        assert_eq!(read_byte(BASE + i * PAGE), Ok(0x5a));
    }
    aspace::switch_to(None);
    drop(a);
    let cached = pagecache::cached_pages();
    assert!(cached >= pages, "{cached} cached");
    // Take every frame user pages may have: the idle cache must give way.
    let mut taken = vec![];
    while let Some(frame) = FrameRef::alloc_user(FrameKind::UserAnon, false) {
        taken.push(frame);
    }
    assert_eq!(pagecache::cached_pages(), 0, "idle cache pages kept");
    assert_eq!(
        frames::free_pages(),
        frames::user_reserve(),
        "user pages took the kernel's reserve"
    );
    drop(taken);
}

fn stack_grows_down_within_its_gap() {
    let a = space();
    activate(&a);
    let top = 0x7fff_0000_0000u64;
    let mut stack = Vma::anonymous(top - 4 * PAGE, top, Prot::RW);
    stack.flags = VmaFlags {
        grows_down: true,
        tag: VmaTag::Stack,
        ..VmaFlags::default()
    };
    a.lock().map(stack).unwrap();
    let counters = vmstat::snapshot();
    write_byte(top - 8 * PAGE, 1).unwrap();
    assert_eq!(vmstat::snapshot().since(&counters).stack_grow, 1);
    assert_eq!(
        a.lock().vmas().find(top - 8 * PAGE).unwrap().start,
        top - 8 * PAGE
    );
    assert_eq!(
        write_byte(top - 2000 * PAGE, 1),
        Err(Efault),
        "stack grew across the guard gap"
    );
    aspace::switch_to(None);
}

fn user_copies_refuse_kernel_and_unmapped_pointers() {
    let a = space();
    activate(&a);
    map(&a, BASE, PAGE, Prot::RW);
    let kernel = ferrite::mm::layout::PAGE_OFFSET + 0x10_0000;
    let mut buf = [0u8; 16];
    assert_eq!(copy_from_user(&mut buf, kernel), Err(Efault));
    assert_eq!(copy_to_user(kernel, &buf), Err(Efault));
    assert_eq!(copy_from_user(&mut buf, u64::MAX - 4), Err(Efault));
    // Half mapped: the first page is there, the second is not.
    assert_eq!(copy_from_user(&mut buf, BASE + PAGE - 8), Err(Efault));
    assert_eq!(
        copy_from_user(&mut buf, 0),
        Err(Efault),
        "null page readable"
    );
    copy_from_user(&mut buf, BASE + PAGE - 16).unwrap();
    aspace::switch_to(None);
}

// Position-independent ring-3 programs, copied into user pages. Each gets
// an address in RDI.
core::arch::global_asm!(
    ".pushsection .rodata.user_programs, \"a\"",
    ".global user_write_rdi_start",
    "user_write_rdi_start:",
    "mov byte ptr [rdi], 1",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    ".global user_read_rdi_start",
    "user_read_rdi_start:",
    "mov al, byte ptr [rdi]",
    "mov eax, 60",
    "mov edi, 7",
    "syscall",
    ".global user_jump_rdi_start",
    "user_jump_rdi_start:",
    "jmp rdi",
    ".global user_programs_end",
    "user_programs_end:",
    ".popsection",
);

unsafe extern "C" {
    static user_write_rdi_start: u8;
    static user_read_rdi_start: u8;
    static user_jump_rdi_start: u8;
    static user_programs_end: u8;
}

const CODE: u64 = 0x40_0000;
const STACK_TOP: u64 = 0x7000_0000;

/// An address space with the user programs at CODE (R-X), a stack, and a
/// read-only page, a writable page and a non-executable page.
fn program_space() -> SharedAddressSpace {
    let a = space();
    activate(&a);
    let start = core::ptr::addr_of!(user_write_rdi_start);
    let end = core::ptr::addr_of!(user_programs_end);
    // SAFETY: both symbols delimit the blob above, in the kernel's rodata.
    let code = unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) };
    map(&a, CODE, PAGE, Prot::RW);
    copy_to_user(CODE, code).unwrap();
    a.lock().protect(CODE, CODE + PAGE, Prot::RX).unwrap();
    map(&a, STACK_TOP - 4 * PAGE, 4 * PAGE, Prot::RW);
    map(&a, BASE, PAGE, Prot::READ);
    map(&a, BASE + PAGE, PAGE, Prot::RW);
    aspace::switch_to(None);
    a
}

fn entry(symbol: *const u8) -> u64 {
    CODE + (symbol as u64 - core::ptr::addr_of!(user_write_rdi_start) as u64)
}

fn killed_for(exit: UserExit, addr: u64, access: FaultAccess, reason: SegvReason) {
    match exit {
        UserExit::Killed { signal, fault } => {
            assert_eq!(signal, SIGSEGV);
            let fault = fault.expect("killed by a page fault");
            assert_eq!(fault.addr, addr, "fault address");
            assert_eq!(fault.access, access);
            assert_eq!(fault.why, FaultError::Segv(reason));
        }
        other => panic!("expected a segfault, got {other:?}"),
    }
}

fn ring3_faults_are_reported_not_fatal() {
    let a = program_space();
    let write = entry(core::ptr::addr_of!(user_write_rdi_start));
    let read = entry(core::ptr::addr_of!(user_read_rdi_start));
    let jump = entry(core::ptr::addr_of!(user_jump_rdi_start));
    let run = |rip, arg| user::run("vmtest", a.clone(), rip, STACK_TOP, arg, 0);

    assert_eq!(
        run(write, BASE + PAGE),
        UserExit::Exited(0),
        "allowed write"
    );
    assert_eq!(run(read, BASE), UserExit::Exited(7), "allowed read");
    killed_for(
        run(write, BASE),
        BASE,
        FaultAccess::Write,
        SegvReason::WriteToReadOnly,
    );
    killed_for(
        run(read, 0x6000_0000),
        0x6000_0000,
        FaultAccess::Read,
        SegvReason::NoRegion,
    );
    killed_for(
        run(jump, BASE + PAGE),
        BASE + PAGE,
        FaultAccess::Execute,
        SegvReason::ExecNonExec,
    );
    killed_for(
        run(write, CODE),
        CODE,
        FaultAccess::Write,
        SegvReason::WriteToReadOnly,
    );
    // Kernel memory is present but not user-accessible.
    let kernel = ferrite::mm::layout::PAGE_OFFSET;
    match run(read, kernel) {
        UserExit::Killed { signal, fault } => {
            let fault = fault.expect("killed by a page fault");
            assert_eq!((signal, fault.addr), (SIGSEGV, kernel));
            assert_eq!(fault.why, FaultError::KernelAddress);
            let line = alloc::format!("{fault}");
            assert!(line.contains("user read, protection violation"), "{line}");
        }
        other => panic!("read of kernel memory: {other:?}"),
    }
    // And the kernel is fine: the same space still runs programs.
    assert_eq!(run(write, BASE + PAGE), UserExit::Exited(0));
}

fn destroying_every_address_space_returns_every_frame() {
    // Every earlier test dropped its address spaces; the page cache gave
    // its idle pages back. Nothing may be left over.
    // The slab heap, the user trap stack and the file table may keep a few
    // pages; the test prints the balance and allows only those.
    let trap_stack = 4 + 1;
    ferrite::testing::assert_frames_back(trap_stack + 4);
    // A fresh cycle must balance exactly.
    ferrite::testing::assert_round_balances("an address space", || {
        let a = program_space();
        activate(&a);
        map(&a, BASE + 2 * PAGE, 64 * PAGE, Prot::RW);
        for i in 0..64 {
            write_byte(BASE + (2 + i) * PAGE, 1).unwrap();
        }
        let b = Arc::new(Mutex::new(a.lock().fork().unwrap()));
        activate(&b);
        for i in 0..32 {
            write_byte(BASE + (2 + i) * PAGE, 2).unwrap();
        }
        aspace::switch_to(None);
    });
}
