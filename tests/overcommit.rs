//! Overcommit accounting: `Committed_AS` rises and falls by exactly the
//! pages of the charged regions as they are mapped, unmapped, protected,
//! grown, forked and dropped; mode 0 refuses one request larger than RAM,
//! mode 1 grants anything, mode 2 stops at `CommitLimit` and grants again
//! after an unmap; `sysctl` and `meminfo` show and set it all; and a user
//! program in mode 2 sees ENOMEM from mmap, mprotect, brk and fork, with
//! every page given back when it exits.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use ferrite::mm::uaccess::copy_to_user;
use ferrite::mm::{commit, frames};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use ferrite::shell;
use spin::Mutex;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, VmError, Vma};

use ferrite::testing::{meminfo_field, sh};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        defaults_are_linux_and_sysctl_sets_them,
        meminfo_shows_commit_limit_and_committed_as,
        committed_as_follows_every_change_exactly,
        mode_0_refuses_one_request_larger_than_ram,
        mode_1_grants_anything,
        mode_2_stops_at_the_limit_and_grants_after_unmap,
        user_program_in_mode_2_gets_enomem_and_gives_all_back,
    ])
}

const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;

fn ram_pages() -> u64 {
    frames::stats().managed_pages
}

fn space() -> SharedAddressSpace {
    Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")))
}

/// A private region as mmap makes it (charged if writable, unless
/// `noreserve`).
fn region(start: u64, pages: u64, prot: Prot, noreserve: bool) -> Vma {
    Vma {
        flags: VmaFlags {
            tag: VmaTag::Mmap,
            account: Vma::accountable(Sharing::Private, prot, noreserve),
            noreserve,
            ..VmaFlags::default()
        },
        ..Vma::anonymous(start, start + pages * PAGE, prot)
    }
}

fn sh_err(line: &str) -> String {
    let mut out = String::new();
    match shell::execute(line, &mut out) {
        Ok(()) => panic!("`{line}` succeeded:\n{out}"),
        Err(e) => alloc::format!("{e}"),
    }
}

fn set_mode(mode: u64) {
    sh(&alloc::format!("sysctl vm.overcommit_memory={mode}"));
    assert_eq!(commit::policy().mode.value(), mode);
}

fn defaults_are_linux_and_sysctl_sets_them() {
    let min_free_kbytes = ferrite::mm::kswapd::watermarks().min * 4;
    assert_eq!(
        sh("sysctl -a"),
        alloc::format!(
            "vm.drop_caches = 0\nvm.max_map_count = 65530\nvm.min_free_kbytes = {min_free_kbytes}\n\
             vm.mmap_min_addr = 65536\nvm.overcommit_kbytes = 0\nvm.overcommit_memory = 0\nvm.overcommit_ratio = 50\n\
             vm.swappiness = 60\nvm.watermark_scale_factor = 10\n"
        )
    );
    // Linux's min_free_kbytes for this much memory (int_sqrt(16 x KiB)).
    assert!((128..=262_144).contains(&min_free_kbytes));
    assert_eq!(sh("sysctl vm.swappiness=100"), "vm.swappiness = 100\n");
    assert_eq!(ferrite::mm::reclaim::swappiness(), 100);
    assert_eq!(
        sh_err("sysctl vm.swappiness=201"),
        "sysctl: setting key \"vm.swappiness\": Invalid argument"
    );
    assert_eq!(sh("sysctl vm.swappiness=60"), "vm.swappiness = 60\n");
    assert_eq!(
        sh("sysctl vm.overcommit_memory=2"),
        "vm.overcommit_memory = 2\n"
    );
    assert_eq!(
        sh("sysctl vm/overcommit_memory"),
        "vm.overcommit_memory = 2\n"
    );
    assert_eq!(
        sh_err("sysctl vm.overcommit_memory=3"),
        "sysctl: setting key \"vm.overcommit_memory\": Invalid argument"
    );
    assert_eq!(
        sh_err("sysctl vm.overcommit_memory=x"),
        "sysctl: setting key \"vm.overcommit_memory\": Invalid argument"
    );
    assert_eq!(
        commit::policy().mode.value(),
        2,
        "a refused value changed it"
    );
    assert!(sh_err("sysctl vm.no_such_thing").contains("unknown key `vm.no_such_thing`"));
    assert!(sh_err("sysctl vm.max_map_count=5").contains("fixed in Ferrite"));
    // kbytes and ratio are alternatives: setting one clears the other.
    assert_eq!(
        sh("sysctl -w vm.overcommit_kbytes=4096 vm.overcommit_ratio"),
        "vm.overcommit_kbytes = 4096\nvm.overcommit_ratio = 0\n"
    );
    assert_eq!(commit::commit_limit_pages(), 1024);
    assert_eq!(
        sh("sysctl vm.overcommit_ratio=50 vm.overcommit_kbytes vm.overcommit_memory=0"),
        "vm.overcommit_ratio = 50\nvm.overcommit_kbytes = 0\nvm.overcommit_memory = 0\n"
    );
    assert_eq!(commit::commit_limit_pages(), ram_pages() / 2);
}

fn meminfo_shows_commit_limit_and_committed_as() {
    let m = sh("meminfo");
    // No swap yet: CommitLimit is half of MemTotal.
    assert_eq!(meminfo_field(&m, "SwapTotal"), 0);
    assert_eq!(
        meminfo_field(&m, "CommitLimit"),
        meminfo_field(&m, "MemTotal") / 8 * 4,
        "{m}"
    );
    let before = meminfo_field(&m, "Committed_AS");
    assert_eq!(before, commit::committed_pages() * 4);
    let a = space();
    a.lock().map(region(BASE, 256, Prot::RW, false)).unwrap();
    assert_eq!(
        meminfo_field(&sh("meminfo"), "Committed_AS"),
        before + 1024,
        "1 MiB mapped"
    );
    drop(a);
    assert_eq!(meminfo_field(&sh("meminfo"), "Committed_AS"), before);
}

/// Every operation moves `Committed_AS` and the space's own count by
/// exactly its charge, in mode 0 (all small) and the same in mode 1.
fn committed_as_follows_every_change_exactly() {
    for mode in [0, 1] {
        set_mode(mode);
        follow_changes();
    }
    set_mode(0);
}

fn follow_changes() {
    let base = commit::committed_pages();
    let delta = || commit::committed_pages() - base;
    let a = space();
    let mut s = a.lock();
    // Charged: private writable. Not: read-only, NORESERVE.
    s.map(region(BASE, 100, Prot::RW, false)).unwrap();
    assert_eq!(delta(), 100);
    s.map(region(BASE + 200 * PAGE, 50, Prot::READ, false))
        .unwrap();
    s.map(region(BASE + 300 * PAGE, 1000, Prot::RW, true))
        .unwrap();
    assert_eq!(delta(), 100);
    // Unmapping the middle of the charged region gives back just that.
    s.unmap(BASE + 10 * PAGE, BASE + 20 * PAGE).unwrap();
    assert_eq!(delta(), 90);
    // Unmapping across charged and uncharged regions and holes.
    s.unmap(BASE + 95 * PAGE, BASE + 305 * PAGE).unwrap();
    assert_eq!(delta(), 85);
    // A read-only region, part of it made writable: charged then, and not
    // given back when it is read-only again; all of it writable charges
    // only the rest.
    s.map(region(BASE + 1400 * PAGE, 40, Prot::READ, false))
        .unwrap();
    s.protect(BASE + 1410 * PAGE, BASE + 1430 * PAGE, Prot::RW)
        .unwrap();
    assert_eq!(delta(), 105);
    s.protect(BASE + 1400 * PAGE, BASE + 1440 * PAGE, Prot::READ)
        .unwrap();
    assert_eq!(delta(), 105);
    s.protect(BASE + 1400 * PAGE, BASE + 1440 * PAGE, Prot::RW)
        .unwrap();
    assert_eq!(delta(), 125);
    // The NORESERVE region made read-only and writable again: never charged.
    s.protect(BASE + 305 * PAGE, BASE + 1300 * PAGE, Prot::READ)
        .unwrap();
    s.protect(BASE + 305 * PAGE, BASE + 1300 * PAGE, Prot::RW)
        .unwrap();
    assert_eq!(delta(), 125);
    // MAP_FIXED over 10 charged pages (85..95) and 10 free ones: charged
    // the net.
    s.map_fixed(region(BASE + 85 * PAGE, 20, Prot::RW, false))
        .unwrap();
    assert_eq!(delta(), 135);
    // MAP_FIXED read-only over 20 charged pages: they are given back.
    s.map_fixed(region(BASE + 85 * PAGE, 20, Prot::READ, false))
        .unwrap();
    assert_eq!(delta(), 115);
    assert_eq!(s.committed_pages(), 115);
    // A moved region keeps its charge.
    s.move_region(BASE, 10 * PAGE, BASE + 2000 * PAGE).unwrap();
    assert_eq!(delta(), 115);
    // A charged stack is charged as it grows (pages written through the
    // user mapping: the fault path).
    let top = 0x7fff_0000_0000u64;
    let mut stack = region(top - 4 * PAGE, 4, Prot::RW, false);
    stack.flags.grows_down = true;
    stack.flags.tag = VmaTag::Stack;
    s.map(stack).unwrap();
    assert_eq!(delta(), 119);
    drop(s);
    aspace::switch_to(Some(a.clone()));
    copy_to_user(top - 10 * PAGE + 8, &[1]).unwrap();
    assert_eq!(delta(), 125, "6 pages of stack growth");
    // Beyond the guard gap: not grown, not charged.
    assert!(copy_to_user(top - 4000 * PAGE, &[1]).is_err());
    assert_eq!(delta(), 125);
    aspace::switch_to(None);
    assert_eq!(a.lock().committed_pages(), 125);
    // fork charges the child what the parent has; the child dying gives
    // it back.
    let child = a.lock().fork().expect("fork");
    assert_eq!(delta(), 250);
    assert_eq!(child.committed_pages(), 125);
    drop(child);
    assert_eq!(delta(), 125);
    // The space dying gives back everything.
    drop(a);
    assert_eq!(commit::committed_pages(), base);
}

fn mode_0_refuses_one_request_larger_than_ram() {
    set_mode(0);
    let base = commit::committed_pages();
    let ram = ram_pages();
    let a = space();
    let mut s = a.lock();
    // The example: 4 GiB MAP_NORESERVE is granted (and free).
    s.map(region(BASE, 1 << 20, Prot::RW, true)).unwrap();
    assert_eq!(commit::committed_pages(), base);
    // Exactly all of RAM is granted in one request, one page more is not;
    // what is committed already does not matter.
    let at = 1u64 << 40;
    s.map(region(at, ram, Prot::RW, false)).unwrap();
    s.map(region(at + 2 * ram * PAGE, ram, Prot::RW, false))
        .unwrap();
    assert_eq!(commit::committed_pages(), base + 2 * ram);
    assert_eq!(
        s.map(region(at + 4 * ram * PAGE, ram + 1, Prot::RW, false)),
        Err(VmError::Overcommit { pages: ram + 1 })
    );
    assert!(s.vmas().is_free(at + 4 * ram * PAGE, at + 5 * ram * PAGE));
    // Read-only is granted; made writable at once, refused, and nothing
    // changed.
    let ro = at + 8 * ram * PAGE;
    s.map(region(ro, ram + 1, Prot::READ, false)).unwrap();
    assert_eq!(
        s.protect(ro, ro + (ram + 1) * PAGE, Prot::RW),
        Err(VmError::Overcommit { pages: ram + 1 })
    );
    assert_eq!(s.vmas().find(ro).unwrap().prot, Prot::READ);
    assert_eq!(commit::committed_pages(), base + 2 * ram);
    drop(s);
    drop(a);
    assert_eq!(commit::committed_pages(), base);
}

fn mode_1_grants_anything() {
    set_mode(1);
    let base = commit::committed_pages();
    let a = space();
    // 16 TiB, charged in full: Committed_AS may pass any limit.
    let pages = 1u64 << 32;
    a.lock().map(region(BASE, pages, Prot::RW, false)).unwrap();
    assert_eq!(commit::committed_pages(), base + pages);
    assert!(commit::committed_pages() > commit::commit_limit_pages());
    let child = a.lock().fork().expect("fork");
    assert_eq!(commit::committed_pages(), base + 2 * pages);
    drop(child);
    drop(a);
    assert_eq!(commit::committed_pages(), base);
    set_mode(0);
}

fn mode_2_stops_at_the_limit_and_grants_after_unmap() {
    set_mode(2);
    let base = commit::committed_pages();
    let limit = commit::commit_limit_pages();
    assert!(base < limit, "{base} committed, limit {limit}");
    // Linux grants while Committed_AS stays *below* the limit.
    let room = limit - base - 1;
    let a = space();
    let mut s = a.lock();
    assert_eq!(
        s.map(region(BASE, room + 1, Prot::RW, false)),
        Err(VmError::Overcommit { pages: room + 1 })
    );
    // MAP_NORESERVE is not honoured in mode 2: the syscall layer maps it
    // charged (commit::honours_noreserve), so the request is the same.
    assert!(!commit::honours_noreserve());
    s.map(region(BASE, room, Prot::RW, false)).unwrap();
    assert_eq!(commit::committed_pages(), limit - 1);
    let next = BASE + (room + 10) * PAGE;
    assert_eq!(
        s.map(region(next, 1, Prot::RW, false)),
        Err(VmError::Overcommit { pages: 1 })
    );
    // Not charged: still granted.
    s.map(region(next, 1, Prot::READ, false)).unwrap();
    assert_eq!(
        s.protect(next, next + PAGE, Prot::RW),
        Err(VmError::Overcommit { pages: 1 })
    );
    // A fork would need as much again.
    assert!(s.fork().is_err());
    assert_eq!(commit::committed_pages(), limit - 1);
    // Unmap 3 pages: exactly 3 fit again.
    s.unmap(BASE, BASE + 3 * PAGE).unwrap();
    s.protect(next, next + PAGE, Prot::RW).unwrap();
    s.map(region(BASE, 2, Prot::RW, false)).unwrap();
    assert!(s.map(region(BASE + 2 * PAGE, 1, Prot::RW, false)).is_err());
    assert_eq!(commit::committed_pages(), limit - 1);
    drop(s);
    drop(a);
    assert_eq!(commit::committed_pages(), base);
    // Everything back: the whole room fits again.
    let a = space();
    a.lock().map(region(BASE, room, Prot::RW, false)).unwrap();
    drop(a);
    set_mode(0);
}

fn user_program_in_mode_2_gets_enomem_and_gives_all_back() {
    set_mode(2);
    let base = commit::committed_pages();
    capture_start();
    let pid = spawn_program("/bin/usertests", &["usertests", "overcommit-strict"])
        .expect("usertests exists");
    let exit = wait_for(pid);
    let out = capture_take();
    set_mode(0);
    ferrite::kprintln!(
        "  {}",
        out.lines()
            .find(|l| l.contains("overcommit-strict ..."))
            .unwrap_or("no result line")
    );
    assert_eq!(exit, UserExit::Exited(0), "output:\n{out}");
    assert!(out.contains("usertests: 1 passed, 0 failed"), "{out}");
    assert!(!out.contains("skipped"), "{out}");
    // The program, its case's child and every fork are gone: every
    // page they committed came back.
    assert_eq!(commit::committed_pages(), base);
}
