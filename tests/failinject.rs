//! Failure injection (failslab / fail_page_alloc) and fallible kernel
//! allocation: the injection rules fail exactly the allocations they should
//! (only those made through `mm::kalloc`), the boot command line and the
//! shell command set them, and the user suites run with heap (and, where
//! the frame allocator calls the hook, frame) allocations failing: programs
//! may fail or die, the kernel never panics, and once everything has exited
//! every frame is back. The same with compressed swap on and memory short
//! (a swap-out whose device write fails, a swap-in or readahead with no
//! frame, and programs swapping under heap and frame injection): afterwards
//! every swap slot and swap-cache page is free too. Also: an ELF with hundreds of `PT_LOAD` segments
//! whose read-only segments end in a bss tail runs (it used to be refused
//! as "out of memory").

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ferrite::arch::usermode::user_frame;
use ferrite::klog::{capture_start, capture_take};
use ferrite::mm::aspace::{self, AddressSpace, SharedAddressSpace};
use ferrite::mm::failslab::{self, Mode, Rule, Stats, Target};
use ferrite::mm::uaccess::copy_to_user;
use ferrite::mm::{frames, kalloc, pagecache, reclaim, swap, swapoff, vmstat};
use ferrite::proc::exec::{self, ExecError};
use ferrite::proc::ramdisk::RamFile;
use ferrite::proc::sched::{self, State};
use ferrite::proc::user::{spawn_program, wait_for, UserExit};
use spin::Mutex;
use vmcore::fault::FaultMode;
use vmcore::{FaultAccess, Prot, Vma};

use ferrite::testing::settled_free_pages;

ferrite::kernel_entry!(main);

static FREE_AT_START: spin::Once<(u64, [u64; 8], u64)> = spin::Once::new();

/// Settled free pages, frames by owner, and vmalloc pages in use.
fn snapshot() -> (u64, [u64; 8], u64) {
    let free = settled_free_pages();
    let mut kinds = [0; 8];
    for (k, n) in kinds.iter_mut().zip(frames::stats().pages_by_kind) {
        *k = n;
    }
    (free, kinds, ferrite::mm::vmalloc::used_pages())
}

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        heap_rules_fail_only_fallible_allocations,
        random_rule_is_seeded_and_about_one_in_n,
        page_hook_follows_its_rule,
        boot_command_line_sets_the_rules,
        shell_command_sets_and_shows_the_rules,
        views_refuse_instead_of_panicking,
        heap_reserve_carries_infallible_allocations_through_exhaustion,
        many_readonly_load_segments_with_bss_tails_run,
        iovec_arrays_are_bounded,
        execve_arguments_are_bounded_and_fallible,
        baseline_after_a_clean_run,
        user_suites_survive_heap_injection,
        user_suites_survive_frame_injection,
        swap_write_and_swap_in_failures_lose_nothing,
        swapping_programs_survive_injection,
        swapoff_and_kills_mid_swap_under_injection,
        every_frame_comes_back,
    ])
}

fn slab(mode: Mode, times: Option<u64>) {
    failslab::configure(Target::Slab, Rule { mode, times });
}

fn slab_stats() -> Stats {
    failslab::status(Target::Slab).1
}

fn heap_rules_fail_only_fallible_allocations() {
    slab(Mode::Every(1), None);
    assert!(kalloc::try_with_capacity::<u8>(100).is_err());
    assert!(kalloc::try_box([0u64; 8]).is_err());
    assert!(kalloc::try_arc(5u32).is_err());
    assert!(kalloc::try_string("failslab").is_err());
    assert!(kalloc::try_format(format_args!("{}", 42)).is_err());
    // Infallible allocations are never chosen (they would abort), and the
    // mark does not outlive the helper that set it.
    let mut plain: Vec<u8> = Vec::with_capacity(100);
    plain.push(1);
    // Room already there: nothing allocated, nothing counted.
    let before = slab_stats();
    kalloc::try_push(&mut plain, 2).expect("no allocation needed");
    assert_eq!(slab_stats(), before);
    let boxed = alloc::boxed::Box::new([0u8; 64]);
    assert_eq!(boxed.len(), 64);
    assert_eq!(slab_stats().failed, 5);
    assert_eq!(slab_stats().calls, 5);

    // Every 3rd: calls 3 and 6 fail.
    slab(Mode::Every(3), None);
    let got: Vec<bool> = (0..6)
        .map(|_| kalloc::try_with_capacity::<u64>(4).is_ok())
        .collect();
    assert_eq!(got, [true, true, false, true, true, false]);

    // At most twice.
    slab(Mode::Every(1), Some(2));
    let got: Vec<bool> = (0..4).map(|_| kalloc::try_string("x").is_ok()).collect();
    assert_eq!(got, [false, false, true, true]);
    assert_eq!(slab_stats().failed, 2);

    // Off: nothing fails, the counts stay readable.
    failslab::off();
    assert!(kalloc::try_with_capacity::<u8>(100).is_ok());
    assert_eq!(failslab::status(Target::Slab).0, Rule::OFF);
    assert_eq!(slab_stats().failed, 2);
}

fn random_pattern(seed: u64, n: usize) -> Vec<bool> {
    slab(Mode::Random { one_in: 4, seed }, None);
    let got = (0..n)
        .map(|_| kalloc::try_with_capacity::<u8>(8).is_err())
        .collect();
    failslab::off();
    got
}

fn random_rule_is_seeded_and_about_one_in_n() {
    let a = random_pattern(1, 400);
    let b = random_pattern(1, 400);
    let c = random_pattern(2, 400);
    assert_eq!(a, b, "the same seed gives the same failures");
    assert_ne!(a, c, "another seed gives other failures");
    let failed = a.iter().filter(|&&f| f).count();
    assert!((50..=150).contains(&failed), "1 in 4 of 400: {failed}");
}

/// The hook the frame allocator calls on user-driven paths.
fn page_hook_follows_its_rule() {
    assert!(!failslab::should_fail_page(), "off by default");
    failslab::configure(
        Target::Page,
        Rule {
            mode: Mode::Every(4),
            times: Some(2),
        },
    );
    let got: Vec<bool> = (0..12).map(|_| failslab::should_fail_page()).collect();
    let want = [
        false, false, false, true, false, false, false, true, false, false, false, false,
    ];
    assert_eq!(got, want);
    // Counting stops with the budget spent.
    assert_eq!(
        failslab::status(Target::Page).1,
        Stats {
            calls: 8,
            failed: 2
        }
    );
    // Independent of the heap's rule.
    assert_eq!(failslab::status(Target::Slab).0, Rule::OFF);
    failslab::off();
    assert!(!failslab::should_fail_page());
}

fn boot_command_line_sets_the_rules() {
    let applied = failslab::apply_cmdline(
        "# injection for this boot\nquiet failslab=every:7,times:3\n\
         fail_page_alloc=random:50,seed:3 failslab=bogus:1\n",
    );
    // The malformed setting is ignored (and logged); the earlier one holds.
    assert_eq!(applied, 2);
    assert_eq!(
        failslab::status(Target::Slab).0,
        Rule {
            mode: Mode::Every(7),
            times: Some(3)
        }
    );
    assert_eq!(
        failslab::status(Target::Page).0,
        Rule {
            mode: Mode::Random {
                one_in: 50,
                seed: 3
            },
            times: None
        }
    );
    assert_eq!(
        failslab::apply_cmdline("failslab=off fail_page_alloc=off"),
        2
    );
    assert_eq!(failslab::status(Target::Slab).0, Rule::OFF);
    assert_eq!(failslab::status(Target::Page).0, Rule::OFF);
}

fn shell(line: &str) -> Result<String, String> {
    let mut out = String::new();
    match ferrite::shell::execute(line, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => Err(alloc::format!("{e}")),
    }
}

fn shell_command_sets_and_shows_the_rules() {
    // (The shell's own fallible allocations count as calls too.)
    let out = shell("failinject slab every 100 times 10").unwrap();
    assert!(
        out.contains("failslab") && out.contains("every 100 times 10"),
        "{out}"
    );
    assert!(!out.contains("fail_page_alloc"), "{out}");
    let out = shell("failinject page random 50 seed 3").unwrap();
    assert!(out.contains("fail_page_alloc  random 50 seed 3"), "{out}");
    let out = shell("failinject").unwrap();
    assert!(
        out.contains("every 100 times 10") && out.contains("random 50 seed 3"),
        "{out}"
    );
    let out = shell("failinject off").unwrap();
    assert_eq!(
        out.lines().filter(|l| l.contains(" off: ")).count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("failslab         off: 0 failed of 3 calls"),
        "{out}"
    );
    let err = shell("failinject slab every 0").unwrap_err();
    assert!(err.contains("N >= 1") && err.contains("usage"), "{err}");
    let err = shell("failinject slab every 3 seed 4").unwrap_err();
    assert!(err.contains("`seed` only goes with `random`"), "{err}");
    assert_eq!(failslab::status(Target::Slab).0, Rule::OFF);
    // A refused view says why instead of panicking (the 1st allocation is
    // the shell's word list, the 2nd the process list).
    slab(Mode::Every(2), None);
    let err = shell("ps").unwrap_err();
    failslab::off();
    assert_eq!(err, "ps: out of memory");
    assert!(shell("ps").unwrap().contains("kernel"));
}

fn views_refuse_instead_of_panicking() {
    let spin = spawn_program("/bin/spin", &["spin"]).expect("spin starts");
    sched::sleep_ticks(5);
    let pmap = alloc::format!("pmap {spin}");
    let walk = alloc::format!("walk {spin} 0x7ffffffff000");
    let views = [
        "ps",
        "meminfo",
        "free",
        "vmstat",
        "pressure",
        "buddyinfo",
        "slabinfo",
        "slabtop",
        "memmap",
        "jobs",
        "ls",
        "mmview -t",
        &pmap,
        &walk,
        "help",
    ];
    let mut refused = 0;
    for view in views {
        let name = view.split(' ').next().unwrap();
        // The Nth fallible allocation of the command fails, for each N
        // up to the first run that needs fewer.
        for n in 1..=8 {
            slab(Mode::Every(n), Some(1));
            let result = shell(view);
            failslab::off();
            match result {
                Ok(out) => {
                    assert!(!out.is_empty(), "{view}: no output");
                    break;
                }
                Err(e) if e == alloc::format!("{name}: out of memory") => refused += 1,
                Err(e) if n == 1 && e == "shell: out of memory" => refused += 1,
                Err(e) => panic!("{view} with allocation {n} failing: {e}"),
            }
        }
    }
    assert!(refused > views.len(), "only {refused} refusals");
    // Real exhaustion: not one free frame. Each view prints or refuses.
    let hoard = hoard_every_frame();
    let mut results: [Option<Result<usize, ()>>; 16] = [None; 16];
    for (view, result) in views.iter().zip(&mut results) {
        let name = view.split(' ').next().unwrap();
        *result = Some(match shell(view) {
            Ok(out) => Ok(out.len()),
            Err(e) if e == alloc::format!("{name}: out of memory") => Err(()),
            Err(e) => panic!("{view} with no free frame: {e}"),
        });
    }
    free_hoard(hoard);
    ferrite::kprintln!("  with no free frame: {results:?}");
    assert!(sched::kill(spin));
    wait_for(spin);
}

/// Takes every free frame (biggest blocks first), linking the blocks
/// through their first bytes: no heap needed. Returns the list head.
fn hoard_every_frame() -> u64 {
    let mut head = 0u64;
    for order in (0..=10).rev() {
        while let Some(pfn) = frames::alloc(order, mmcore::FrameKind::Kernel) {
            let at = ferrite::mm::layout::phys_to_virt(pfn.addr()) as *mut u64;
            // SAFETY: a block just allocated for us alone, in the direct
            // map; its first 16 bytes are ours to write.
            unsafe {
                at.write(head);
                at.add(1).write(order as u64);
            }
            head = pfn.addr();
        }
    }
    head
}

fn free_hoard(mut head: u64) {
    while head != 0 {
        let at = ferrite::mm::layout::phys_to_virt(head) as *const u64;
        // SAFETY: written by `hoard_every_frame` into a block we still own.
        let (next, order) = unsafe { (at.read(), at.add(1).read()) };
        frames::free(mmcore::Pfn::from_addr(head), order as usize).expect("our block");
        head = next;
    }
}

fn heap_reserve_carries_infallible_allocations_through_exhaustion() {
    let before = settled_free_pages();
    let (held, used) = ferrite::mm::heap::reserve_status();
    assert_eq!(held, ferrite::mm::heap::RESERVE_BLOCKS);
    let hoard = hoard_every_frame();
    assert_eq!(frames::free_pages(), 0);
    // Fallible allocations fail (from the slabs' leftovers at first):
    // the reserve is not for them.
    let mut fallible: [Option<Vec<u8>>; 64] = [const { None }; 64];
    let mut refused = false;
    for slot in &mut fallible {
        match kalloc::try_with_capacity::<u8>(2048) {
            Ok(v) => *slot = Some(v),
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "64 fallible 2 KiB allocations with no free frame");
    assert_eq!(ferrite::mm::heap::reserve_status(), (held, used));
    // Ones that cannot fail get the reserve (each needs a page of its own).
    let mut boxes: [Option<alloc::boxed::Box<[u8; 2048]>>; 8] = [const { None }; 8];
    for (i, slot) in boxes.iter_mut().enumerate() {
        *slot = Some(alloc::boxed::Box::new([i as u8; 2048]));
    }
    core::hint::black_box(&boxes);
    let (held_now, used_now) = ferrite::mm::heap::reserve_status();
    assert!(
        held_now < held && used_now > used,
        "the reserve was not used"
    );
    drop(boxes);
    drop(fallible);
    free_hoard(hoard);
    // The next allocation tops the reserve up again; nothing was lost.
    drop(core::hint::black_box(alloc::boxed::Box::new(0u64)));
    assert_eq!(ferrite::mm::heap::reserve_status().0, held);
    assert_eq!(settled_free_pages(), before);
}

/// A static ELF: `count` read-only `PT_LOAD` segments, each one page of
/// file bytes (0x11 then 0xaa) of which only 32 belong to the segment,
/// followed by a bss that ends a page later; and code that exits with
/// segment 0's first byte plus its first bss byte.
fn many_segments_elf(count: u64) -> Vec<u8> {
    const DATA_AT: u64 = 0x1000_0000;
    let phnum = count + 1;
    let table_end = 64 + phnum * 56;
    let code_off = table_end.next_multiple_of(4096);
    let data_off = code_off + 4096;
    let mut f = alloc::vec![0u8; (data_off + 4096) as usize];
    let put = |f: &mut Vec<u8>, at: u64, bytes: &[u8]| {
        f[at as usize..at as usize + bytes.len()].copy_from_slice(bytes)
    };
    put(&mut f, 0, b"\x7fELF\x02\x01\x01");
    put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut f, 18, &62u16.to_le_bytes()); // x86_64
    put(&mut f, 20, &1u32.to_le_bytes());
    let entry = 0x40_0000 + code_off;
    put(&mut f, 24, &entry.to_le_bytes());
    put(&mut f, 32, &64u64.to_le_bytes());
    put(&mut f, 52, &64u16.to_le_bytes());
    put(&mut f, 54, &56u16.to_le_bytes());
    put(&mut f, 56, &(phnum as u16).to_le_bytes());
    let phdr = |f: &mut Vec<u8>, i: u64, flags: u32, off: u64, vaddr: u64, filesz, memsz| {
        let at = 64 + i * 56;
        put(f, at, &1u32.to_le_bytes()); // PT_LOAD
        put(f, at + 4, &flags.to_le_bytes());
        put(f, at + 8, &off.to_le_bytes());
        put(f, at + 16, &vaddr.to_le_bytes());
        put(f, at + 32, &u64::to_le_bytes(filesz));
        put(f, at + 40, &u64::to_le_bytes(memsz));
        put(f, at + 48, &4096u64.to_le_bytes());
    };
    phdr(&mut f, 0, 5, code_off, entry, 32, 32); // R-X
    for i in 0..count {
        phdr(&mut f, i + 1, 4, data_off, DATA_AT + i * 0x2000, 32, 0x1800); // R--
    }
    let seg0 = DATA_AT as u32;
    let mut code = Vec::new();
    code.extend_from_slice(&[0x0f, 0xb6, 0x3c, 0x25]); // movzx edi, byte [seg0 + 32]
    code.extend_from_slice(&(seg0 + 32).to_le_bytes());
    code.extend_from_slice(&[0x0f, 0xb6, 0x04, 0x25]); // movzx eax, byte [seg0]
    code.extend_from_slice(&seg0.to_le_bytes());
    code.extend_from_slice(&[0x01, 0xc7]); // add edi, eax
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0, 0x0f, 0x05]); // exit(edi)
    put(&mut f, code_off, &code);
    put(&mut f, data_off, &[0x11; 32]);
    f[(data_off + 32) as usize..].fill(0xaa);
    f
}

fn many_readonly_load_segments_with_bss_tails_run() {
    let data: &'static [u8] = alloc::vec::Vec::leak(many_segments_elf(300));
    let file = RamFile {
        data,
        id: pagecache::register(data),
    };
    let image = exec::load_file(file, "/many-loads", &[b"many-loads"], &[])
        .unwrap_or_else(|e| panic!("300 PT_LOAD segments refused: {e}"));
    let pid = sched::spawn(&image.name, image.aspace, &image.frame, 0, image.brk)
        .expect("memory for a process");
    // 0x11 from the file, 0 from the zeroed tail (the file has 0xaa there).
    assert_eq!(wait_for(pid), UserExit::Exited(0x11));
}

/// When injection starts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    /// Before the program is loaded: exec and spawn fail too.
    Load,
    /// Once it is running: its own system calls (fork, exec, ...) fail.
    Start,
}

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;
const DATA_PAGES: u64 = 64;
const STACK_TOP: u64 = 0x7fff_0000_0000;

/// An address space with `code` at CODE (r-x) and `data` at DATA (rw,
/// DATA_PAGES long), and a stack.
fn user_space(code: &[u8], data: &[(u64, &[u8])]) -> SharedAddressSpace {
    let a = Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")));
    {
        let mut s = a.lock();
        s.map(Vma::anonymous(CODE, CODE + 4096, Prot::RW)).unwrap();
        s.map(Vma::anonymous(DATA, DATA + DATA_PAGES * 4096, Prot::RW))
            .unwrap();
        s.map(Vma::anonymous(STACK_TOP - 4 * 4096, STACK_TOP, Prot::RW))
            .unwrap();
    }
    aspace::switch_to(Some(a.clone()));
    copy_to_user(CODE, code).expect("code page");
    for &(at, bytes) in data {
        copy_to_user(at, bytes).expect("data");
    }
    aspace::switch_to(None);
    a.lock().protect(CODE, CODE + 4096, Prot::RX).unwrap();
    a
}

/// Runs ring-3 `code` with RDI, RSI = `args` and injection `on` once it
/// runs; returns the low byte of what it passes to exit and what it
/// printed.
fn run_code(code: &[u8], data: &[(u64, &[u8])], args: [u64; 2], on: &dyn Fn()) -> (u8, String) {
    let a = user_space(code, data);
    let mut frame = user_frame(CODE, STACK_TOP);
    frame.rdi = args[0];
    frame.rsi = args[1];
    capture_start();
    let pid = sched::spawn("failinject", a, &frame, 0, (0, 0)).expect("a process");
    on();
    let exit = wait_for(pid);
    failslab::off();
    let out = capture_take();
    match exit {
        UserExit::Exited(code) => (code as u8, out),
        other => panic!("the test program died: {other:?}; output: {out}"),
    }
}

/// `writev(1, rdi, rsi)`, then exit with its result.
const WRITEV: &[u8] = &[
    0x48, 0x89, 0xf2, // mov rdx, rsi
    0x48, 0x89, 0xfe, // mov rsi, rdi
    0xbf, 1, 0, 0, 0, // mov edi, 1
    0xb8, 20, 0, 0, 0, // mov eax, SYS_writev
    0x0f, 0x05, // syscall
    0x89, 0xc7, // mov edi, eax
    0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
    0x0f, 0x05, // syscall
];

fn iovec_arrays_are_bounded() {
    // 1,025 vectors: the first 1,023 empty, the 1,024th the marker, the
    // last the marker again; and the marker text.
    let text = DATA + 0x3_0000;
    let marker = b"[iovec]\n";
    let mut iov = Vec::new();
    for i in 0..1025u64 {
        let len = if i >= 1023 { marker.len() as u64 } else { 0 };
        iov.extend_from_slice(&text.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    let data: &[(u64, &[u8])] = &[(DATA, &iov), (text, marker)];
    let run = |iov: u64, count: u64| run_code(WRITEV, data, [iov, count], &|| {});
    let (code, out) = run(DATA, 1024);
    assert_eq!(code as usize, marker.len(), "writev of 1024 vectors: {out}");
    assert_eq!(out.matches("[iovec]").count(), 1, "{out}");
    // UIO_MAXIOV + 1: EINVAL, nothing written.
    let (code, out) = run(DATA, 1025);
    assert_eq!(code, (-22i64) as u8, "1025 vectors: {out}");
    assert!(!out.contains("[iovec]"), "{out}");
    // The array runs past its region: EFAULT before anything is written
    // (the marker vector is the last one inside the region).
    let end = DATA + DATA_PAGES * 4096;
    let last_mapped = end - 16;
    let iov_tail: &[(u64, &[u8])] = &[(last_mapped, &iov[1023 * 16..1024 * 16]), (text, marker)];
    let (code, out) = run_code(WRITEV, iov_tail, [last_mapped, 2], &|| {});
    assert_eq!(code, (-14i64) as u8, "a vector past the region: {out}");
    assert!(!out.contains("[iovec]"), "written before the check: {out}");
    let (code, _) = run(DATA, 0);
    assert_eq!(code, 0);
}

/// `execve(rdi, rsi, NULL)`, then (if it returns) exit with its result.
const EXECVE: &[u8] = &[
    0x31, 0xd2, // xor edx, edx
    0xb8, 59, 0, 0, 0, // mov eax, SYS_execve
    0x0f, 0x05, // syscall
    0x89, 0xc7, // mov edi, eax
    0xb8, 60, 0, 0, 0, // mov eax, SYS_exit
    0x0f, 0x05, // syscall
];

fn execve_arguments_are_bounded_and_fallible() {
    let path = DATA;
    let argv = DATA + 0x100;
    let long = DATA + 0x1000;
    let hello_args = DATA + 0x800;
    let mut strings = Vec::new();
    strings.extend_from_slice(b"hello\0x\0");
    let mut many = Vec::new();
    for _ in 0..40 {
        many.extend_from_slice(&long.to_le_bytes());
    }
    many.extend_from_slice(&0u64.to_le_bytes());
    let mut two = Vec::new();
    two.extend_from_slice(&hello_args.to_le_bytes());
    two.extend_from_slice(&(hello_args + 6).to_le_bytes());
    two.extend_from_slice(&0u64.to_le_bytes());
    let a4k = alloc::vec![b'a'; 4095];
    let data: &[(u64, &[u8])] = &[
        (path, b"/bin/hello\0"),
        (argv, &many),
        (argv + 0x400, &two),
        (hello_args, &strings),
        (long, &a4k),
    ];
    // 40 strings of 4 KiB: past ARG_MAX.
    let (code, out) = run_code(EXECVE, data, [path, argv], &|| {});
    assert_eq!(code, (-7i64) as u8, "E2BIG expected: {out}");
    // Out of kernel memory while copying them in: ENOMEM, the caller
    // goes on.
    let fail_all = || {
        failslab::configure(
            Target::Slab,
            Rule {
                mode: Mode::Every(1),
                times: None,
            },
        )
    };
    let (code, out) = run_code(EXECVE, data, [path, argv + 0x400], &fail_all);
    assert_eq!(code, (-12i64) as u8, "ENOMEM expected: {out}");
    assert!(slab_stats().failed > 0);
    // And then it works.
    let (code, out) = run_code(EXECVE, data, [path, argv + 0x400], &|| {});
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello from ferrite user space"), "{out}");
}

/// Runs a program with injection `on` (from `from`) for at most `ticks`
/// timer ticks (then kills it) and turns injection off; `None` if it
/// could not even start for lack of memory.
fn run_bounded(
    path: &str,
    argv: &[&str],
    ticks: u64,
    from: From,
    on: &dyn Fn(),
) -> Option<UserExit> {
    if from == From::Load {
        on();
    }
    let pid = match spawn_program(path, argv) {
        Ok(pid) => pid,
        Err(ExecError::OutOfMemory) => {
            failslab::off();
            return None;
        }
        Err(e) => panic!("{path}: {e}"),
    };
    if from == From::Start {
        on();
    }
    let deadline = ferrite::time::ticks() + ticks;
    while ferrite::time::ticks() < deadline {
        let done = sched::with_process(pid, |p| matches!(p.state, State::Zombie(_)));
        if done != Some(false) {
            break;
        }
        sched::sleep_ticks(2);
    }
    failslab::off();
    sched::kill(pid);
    Some(wait_for(pid))
}

/// Kills and reaps everything left (orphans of killed parents come to the
/// kernel thread); kernel threads (kswapd) stay.
fn clean_up() {
    let user = |p: &sched::Process| p.pid != 0 && !p.is_kernel_thread();
    while let Some(pid) = sched::find_pid(|p| user(p) && !matches!(p.state, State::Zombie(_))) {
        sched::kill(pid);
    }
    while let Some(pid) = sched::find_pid(|p| user(p) && p.ppid == 0) {
        let _ = sched::reap(pid as i64);
    }
    assert_eq!(sched::find_pid(user), None, "processes left behind");
}

const SUITES: [(&str, &[&str]); 4] = [
    ("/bin/hello", &["hello", "a1", "b2"]),
    ("/bin/cow-demo", &["cow-demo"]),
    ("/bin/malloc-stress", &["malloc-stress"]),
    ("/bin/usertests", &["usertests"]),
];

/// Runs every suite once with injection `on` from `from`; returns a line
/// saying how each ended.
fn run_suites(label: &str, from: From, on: &dyn Fn()) -> String {
    let mut line = alloc::format!("  {label:<28}");
    for (path, argv) in SUITES {
        capture_start();
        let exit = run_bounded(path, argv, 30 * ferrite::time::TICK_HZ, from, on);
        let _ = capture_take();
        clean_up();
        let what = match exit {
            None => String::from("no memory to start"),
            Some(UserExit::Exited(code)) => alloc::format!("exit {code}"),
            Some(UserExit::Killed { signal, .. }) => alloc::format!("signal {signal}"),
        };
        line += &alloc::format!(" {}: {what};", argv[0]);
    }
    line
}

fn baseline_after_a_clean_run() {
    // Once without injection: everything passes, and whatever the first
    // run leaves for good (grown tables) is there before the baseline.
    let line = run_suites("no injection", From::Load, &|| {});
    ferrite::kprintln!("{line}");
    for (_, argv) in SUITES {
        assert!(
            line.contains(&alloc::format!(" {}: exit 0;", argv[0])),
            "{line}"
        );
    }
    drop(line);
    // And a clean swapping run: what it leaves for good (the programs'
    // cached pages, slab caches for the swap device's buffers) is there
    // before the baseline too, and the set-up really swaps.
    let hoard = hoard_leaving(USER_MIB * 256);
    swap::swapon_zram(SWAP_PAGES).expect("swapon");
    let before = vmstat::snapshot();
    for (path, argv) in swap_workloads() {
        let (exit, _) = run_swapping(path, &argv, &|| {});
        remove_tmp_file();
        assert_eq!(
            exit,
            Some(UserExit::Exited(0)),
            "{argv:?} without injection"
        );
    }
    let d = vmstat::snapshot().since(&before);
    ferrite::kprintln!(
        "  swapping, no injection: pswpout {} pswpin {}",
        d.pswpout,
        d.pswpin
    );
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping: {d:?}");
    assert_swap_empty("the clean run");
    swap::swapoff().expect("swapoff");
    free_hoard(hoard);
    FREE_AT_START.call_once(snapshot);
}

fn user_suites_survive_heap_injection() {
    let rules = [
        (Mode::Every(3), From::Load),
        (Mode::Every(1), From::Start),
        (Mode::Every(2), From::Start),
        (Mode::Every(5), From::Start),
        (Mode::Random { one_in: 3, seed: 1 }, From::Start),
        (Mode::Random { one_in: 8, seed: 2 }, From::Start),
    ];
    let mut failed = 0;
    for (mode, from) in rules {
        let rule = Rule { mode, times: None };
        let label = alloc::format!(
            "failslab {rule}{}",
            if from == From::Load { " (load)" } else { "" }
        );
        // Counters add up over the four programs (set once, then resumed).
        failslab::configure(Target::Slab, rule);
        failslab::off();
        let line = run_suites(&label, from, &|| failslab::resume(Target::Slab, rule));
        let stats = slab_stats();
        ferrite::kprintln!("{line} {} of {} failed", stats.failed, stats.calls);
        failed += stats.failed;
    }
    assert!(failed > 0, "heap injection never fired");
}

fn user_suites_survive_frame_injection() {
    let mut calls = 0;
    let mut failed = 0;
    for (one_in, seed) in [(50, 1), (200, 2)] {
        let rule = Rule {
            mode: Mode::Random { one_in, seed },
            times: None,
        };
        failslab::configure(Target::Page, rule);
        failslab::off();
        let line = run_suites(
            &alloc::format!("fail_page_alloc 1/{one_in}"),
            From::Start,
            &|| failslab::resume(Target::Page, rule),
        );
        let stats = failslab::status(Target::Page).1;
        ferrite::kprintln!("{line} {} of {} failed", stats.failed, stats.calls);
        calls += stats.calls;
        failed += stats.failed;
    }
    assert!(
        calls > 0,
        "user frames never asked failslab::should_fail_page"
    );
    assert!(failed > 0, "frame injection never fired");
}

/// Memory left to user space while programs swap (MiB): fits the time
/// budget on every machine, and the programs use 1.6 times it.
const USER_MIB: u64 = 20;
const SWAP_PAGES: u64 = 4 * USER_MIB * 256;

/// Takes every free frame but `pages` (see [`hoard_every_frame`]).
fn hoard_leaving(pages: u64) -> u64 {
    let mut head = hoard_every_frame();
    while head != 0 && frames::free_pages() < pages {
        let at = ferrite::mm::layout::phys_to_virt(head) as *const u64;
        // SAFETY: written by `hoard_every_frame` into a block we still own.
        let (next, order) = unsafe { (at.read(), at.add(1).read()) };
        frames::free(mmcore::Pfn::from_addr(head), order as usize).expect("our block");
        head = next;
    }
    head
}

/// The programs that swap: 1.6 times [`USER_MIB`] (private anonymous
/// memory, and shared anonymous memory a forked child writes and its
/// parent checks).
fn swap_workloads() -> [(&'static str, Vec<&'static str>); 4] {
    const MIB: &str = "32";
    const _: () = assert!(USER_MIB * 16 / 10 == 32);
    [
        ("/bin/swapstress", alloc::vec!["swapstress", MIB, "1"]),
        ("/bin/thrash", alloc::vec!["thrash", "loop", MIB, "1"]),
        ("/bin/shmtests", alloc::vec!["shmtests", "shared", MIB]),
        // A tmpfs file bigger than the memory left (and within tmpfs's
        // limit, half of RAM, on 64 MiB too); removed after each run.
        (
            "/bin/shmtests",
            alloc::vec!["shmtests", "write", TMP_FILE, "24", "1"],
        ),
    ]
}

/// The tmpfs file of the fourth swap workload.
const TMP_FILE: &str = "/tmp/failinject";

/// Removes the tmpfs file a swap workload may have left (written whole,
/// in part, or not at all): its pages and slots go with it.
fn remove_tmp_file() {
    let (dir, leaf) = ferrite::fs::vfs::resolve_parent(b"/", TMP_FILE.as_bytes()).expect("/tmp");
    let _ = dir.inode.unlink(leaf, false);
}

/// Failed injections so far (heap and frames).
fn injected() -> u64 {
    failslab::status(Target::Slab).1.failed + failslab::status(Target::Page).1.failed
}

/// Runs a program that swaps with injection `on` once it runs, for at most
/// 60 s; returns how it ended (`None`: no memory to start) and in how many
/// of its 20 ms samples an injected failure happened while pages were
/// swapped out and swap I/O went on (injection reaching the swap paths).
fn run_swapping(path: &str, argv: &[&str], on: &dyn Fn()) -> (Option<UserExit>, u64) {
    capture_start();
    let pid = match spawn_program(path, argv) {
        Ok(pid) => pid,
        Err(ExecError::OutOfMemory) => return (None, 0),
        Err(e) => panic!("{path}: {e}"),
    };
    on();
    let io = || {
        let s = vmstat::snapshot();
        s.pswpin + s.pswpout
    };
    let (mut failed, mut swapped) = (injected(), io());
    let mut hits = 0;
    let deadline = ferrite::time::ticks() + 60 * ferrite::time::TICK_HZ;
    while ferrite::time::ticks() < deadline {
        let done = sched::with_process(pid, |p| matches!(p.state, State::Zombie(_)));
        if done != Some(false) {
            break;
        }
        sched::sleep_ticks(2);
        let (f, s) = (injected(), io());
        if f > failed && s > swapped && swap::usage().1 > 0 {
            hits += 1;
        }
        (failed, swapped) = (f, s);
    }
    failslab::off();
    sched::kill(pid);
    let exit = wait_for(pid);
    let _ = capture_take();
    clean_up();
    (Some(exit), hits)
}

/// Every slot and swap-cache page is free (nothing is swapped out once
/// every process is gone).
fn assert_swap_empty(after: &str) {
    assert_eq!(reclaim::in_flight(), 0);
    let (total, used, cached) = swap::usage();
    assert_eq!(
        (used, cached),
        (0, 0),
        "swap slots or swap-cache pages left after {after} (of {total})"
    );
}

const SWAP_BASE: u64 = 0x1000_0000;
const SWAP_TEST_PAGES: u64 = 256;

/// The word page `i` of the swap test carries at its start and end.
fn swap_word(i: u64) -> u64 {
    (i << 32) ^ 0x5a5a_0000_0000_5a5a
}

/// Every page of the swap test's region through the fault path: `Ok`, or
/// the first wrong page.
fn check_swap_pages() -> Result<(), (u64, u64)> {
    for i in 0..SWAP_TEST_PAGES {
        for off in [0, 4088] {
            let mut bytes = [0u8; 8];
            ferrite::mm::uaccess::copy_from_user(&mut bytes, SWAP_BASE + i * 4096 + off)
                .map_err(|_| (i, 0))?;
            let got = u64::from_le_bytes(bytes);
            if got != swap_word(i) {
                return Err((i, got));
            }
        }
    }
    Ok(())
}

/// Direct reclaim until `a` has at least `want` swap entries (or 8 rounds).
fn reclaim_into_swap(a: &SharedAddressSpace, want: u64) -> u64 {
    let mut swapped = 0;
    for _ in 0..8 {
        reclaim::reclaim(SWAP_TEST_PAGES);
        swapped = a.lock().swap_pages();
        if swapped >= want {
            break;
        }
    }
    swapped
}

/// A swap-out whose device write fails (the compressed device's buffer is
/// refused) leaves the page in the swap cache, its data whole; a swap-in
/// with no frame for the page (or its readahead) fails the fault with
/// ENOMEM and changes nothing; afterwards everything reads back and every
/// slot comes back.
fn swap_write_and_swap_in_failures_lose_nothing() {
    let free_before = settled_free_pages();
    swap::swapon_zram(4 * SWAP_TEST_PAGES).expect("swapon");
    let a = Arc::new(Mutex::new(AddressSpace::new().expect("memory for a PML4")));
    aspace::switch_to(Some(a.clone()));
    a.lock()
        .map(Vma::anonymous(
            SWAP_BASE,
            SWAP_BASE + SWAP_TEST_PAGES * 4096,
            Prot::RW,
        ))
        .unwrap();
    for i in 0..SWAP_TEST_PAGES {
        for off in [0, 4088] {
            copy_to_user(SWAP_BASE + i * 4096 + off, &swap_word(i).to_le_bytes()).expect("write");
        }
    }
    // Every heap allocation open to injection fails: no page reaches the
    // device (each stays in the swap cache behind its swap entries).
    slab(Mode::Every(1), None);
    let before = vmstat::snapshot();
    let entries = reclaim_into_swap(&a, SWAP_TEST_PAGES / 2);
    let failed = slab_stats().failed;
    failslab::off();
    let d = vmstat::snapshot().since(&before);
    assert_eq!(d.pswpout, 0, "a write went through: {d:?}");
    assert!(
        failed > 0,
        "the device's buffers were not injected ({entries} entries)"
    );
    let (_, used, cached) = swap::usage();
    ferrite::kprintln!(
        "  every swap-out write failing: {failed} failed, {entries} entries, {used} slots, {cached} cached"
    );
    assert!(
        entries > 0 && cached > 0,
        "reclaim did not get as far as the write"
    );
    assert_eq!(check_swap_pages(), Ok(()), "data lost on a failed write");
    // Now written out for real.
    let before = vmstat::snapshot();
    let entries = reclaim_into_swap(&a, SWAP_TEST_PAGES / 2);
    let d = vmstat::snapshot().since(&before);
    assert!(d.pswpout > 0 && entries > 0, "nothing swapped out: {d:?}");
    // No frame for a swap-in: the fault fails, every swap entry stays.
    let out: Vec<u64> = (0..SWAP_TEST_PAGES)
        .filter(|&i| a.lock().peek(SWAP_BASE + i * 4096).is_none())
        .collect();
    assert!(!out.is_empty());
    failslab::configure(
        Target::Page,
        Rule {
            mode: Mode::Every(1),
            times: None,
        },
    );
    let usage = swap::usage();
    for &i in out.iter().take(16) {
        let got = a
            .lock()
            .handle_fault(SWAP_BASE + i * 4096, FaultAccess::Read, FaultMode::User);
        assert!(
            matches!(got, Err(aspace::FaultError::OutOfMemory)),
            "page {i} came in with no frame to be had: {got:?}"
        );
    }
    let page_failed = failslab::status(Target::Page).1.failed;
    failslab::off();
    assert!(page_failed > 0);
    assert_eq!(
        swap::usage(),
        usage,
        "a failed swap-in changed the swap area"
    );
    // A frame for the page but not for its readahead: the page comes in.
    failslab::configure(
        Target::Page,
        Rule {
            mode: Mode::Every(2),
            times: None,
        },
    );
    let i = out[out.len() / 2];
    let got = a
        .lock()
        .handle_fault(SWAP_BASE + i * 4096, FaultAccess::Read, FaultMode::User);
    failslab::off();
    assert!(got.is_ok(), "page {i}: {got:?}");
    assert_eq!(check_swap_pages(), Ok(()), "data lost on a failed swap-in");
    aspace::switch_to(None);
    drop((a, out));
    assert_swap_empty("the address space went");
    swap::swapoff().expect("swapoff");
    assert_eq!(settled_free_pages(), free_before, "frames lost");
}

/// Programs swapping in and out of [`USER_MIB`] MiB (the rest of memory
/// held by the kernel) under heap injection (which reaches the compressed
/// device's buffers) and frame injection (swap-ins, readahead, page
/// tables): programs may fail or die, the kernel does not panic, and after
/// each run every swap slot and swap-cache page is free.
fn swapping_programs_survive_injection() {
    let hoard = hoard_leaving(USER_MIB * 256);
    swap::swapon_zram(SWAP_PAGES).expect("swapon");
    let rules = [
        (Target::Slab, Mode::Every(2)),
        (Target::Slab, Mode::Every(3)),
        (Target::Slab, Mode::Every(7)),
        (Target::Slab, Mode::Every(50)),
        (Target::Slab, Mode::Random { one_in: 8, seed: 5 }),
        (
            Target::Slab,
            Mode::Random {
                one_in: 32,
                seed: 11,
            },
        ),
        (
            Target::Page,
            Mode::Random {
                one_in: 32,
                seed: 6,
            },
        ),
        (
            Target::Page,
            Mode::Random {
                one_in: 128,
                seed: 7,
            },
        ),
        (
            Target::Page,
            Mode::Random {
                one_in: 512,
                seed: 12,
            },
        ),
    ];
    let (mut slab_hits, mut page_hits) = (0, 0);
    let before = vmstat::snapshot();
    for (target, mode) in rules {
        let rule = Rule { mode, times: None };
        for (path, argv) in swap_workloads() {
            failslab::configure(target, rule);
            failslab::off();
            let (exit, hits) = run_swapping(path, &argv, &|| failslab::resume(target, rule));
            remove_tmp_file();
            let stats = failslab::status(target).1;
            ferrite::kprintln!(
                "  {} {rule}, {}: {exit:?}; {} of {} failed, {hits} samples with failures while swapping",
                target.name(),
                argv[0],
                stats.failed,
                stats.calls
            );
            match target {
                Target::Slab => slab_hits += hits,
                Target::Page => page_hits += hits,
            }
            assert_swap_empty(&alloc::format!("{} {rule}, {}", target.name(), argv[0]));
        }
    }
    // Both at once.
    let both = || {
        failslab::resume(
            Target::Slab,
            Rule {
                mode: Mode::Random {
                    one_in: 16,
                    seed: 8,
                },
                times: None,
            },
        );
        failslab::resume(
            Target::Page,
            Rule {
                mode: Mode::Random {
                    one_in: 64,
                    seed: 9,
                },
                times: None,
            },
        );
    };
    let [(path, argv), ..] = swap_workloads();
    let (exit, hits) = run_swapping(path, &argv, &both);
    ferrite::kprintln!("  both, swapstress: {exit:?}; {hits} samples with failures while swapping");
    assert_swap_empty("both");
    let d = vmstat::snapshot().since(&before);
    ferrite::kprintln!(
        "  under injection: pswpout {} pswpin {}",
        d.pswpout,
        d.pswpin
    );
    assert!(d.pswpout > 0 && d.pswpin > 0, "no swapping: {d:?}");
    assert!(slab_hits > 0, "heap injection never fired while swapping");
    assert!(page_hits > 0, "frame injection never fired while swapping");
    swap::swapoff().expect("swapoff");
    free_hoard(hoard);
}

/// Starts swapstress on [`USER_MIB`] MiB and waits (at most 30 s) until
/// it has at least 1,000 pages swapped out.
fn swapping_swapstress() -> sched::Pid {
    let [(path, argv), ..] = swap_workloads();
    capture_start();
    let pid = spawn_program(path, &argv).expect("swapstress starts");
    let deadline = ferrite::time::ticks() + 30 * ferrite::time::TICK_HZ;
    while swap::usage().1 < 1000 && ferrite::time::ticks() < deadline {
        sched::sleep_ticks(1);
    }
    assert!(swap::usage().1 >= 1000, "swapstress does not swap");
    pid
}

/// `swapoff` while a program swaps, with frames for the pages it brings
/// back failing: it brings every page back and turns swap off, or refuses
/// and leaves swap on and working. And a program killed while it swaps,
/// under heap or frame injection. Afterwards every slot and swap-cache
/// page is free.
fn swapoff_and_kills_mid_swap_under_injection() {
    swap::swapon_zram(SWAP_PAGES).expect("swapon");
    let mut refused = 0;
    for (one_in, seed) in [(16, 21), (256, 22), (4096, 23)] {
        let hoard = hoard_leaving(USER_MIB * 256);
        let pid = swapping_swapstress();
        let _ = capture_take();
        // Room for the pages to come back.
        free_hoard(hoard);
        let rule = Rule {
            mode: Mode::Random { one_in, seed },
            times: None,
        };
        failslab::configure(Target::Page, rule);
        let result = swapoff::swapoff_all(sched::yield_now);
        failslab::off();
        let stats = failslab::status(Target::Page).1;
        ferrite::kprintln!(
            "  swapoff with fail_page_alloc {rule}: {result:?}; {} of {} failed",
            stats.failed,
            stats.calls
        );
        match result {
            Ok(_) => {
                assert!(!swap::enabled());
                swap::swapon_zram(SWAP_PAGES).expect("swapon");
            }
            Err(e) => {
                refused += 1;
                assert!(swap::enabled(), "refused ({e}) but swap went off");
                // Reclaim from the kernel's own thread (preemptible) while
                // the program swaps: it once hung here, holding the
                // program's address-space lock when the program faulted.
                for _ in 0..8 {
                    ferrite::mm::reclaim::reclaim(256);
                }
            }
        }
        sched::kill(pid);
        wait_for(pid);
        let _ = capture_take();
        clean_up();
        // Refused or not, the dead program's slots and swap-cache pages
        // are all free now: reclaim's pages whose leaves it could not
        // replace (the program held its address-space lock) leave the
        // cache when their last mapping goes.
        assert_swap_empty(&alloc::format!("swapoff with {rule}"));
    }
    ferrite::kprintln!("  swapoff refused {refused} of 3 times");
    let hoard = hoard_leaving(USER_MIB * 256);
    let rules = [
        (
            Target::Slab,
            Mode::Random {
                one_in: 4,
                seed: 31,
            },
        ),
        (Target::Slab, Mode::Every(2)),
        (
            Target::Page,
            Mode::Random {
                one_in: 16,
                seed: 32,
            },
        ),
        (
            Target::Page,
            Mode::Random {
                one_in: 128,
                seed: 33,
            },
        ),
    ];
    for (target, mode) in rules {
        let rule = Rule { mode, times: None };
        for wait in [1, 7, 30] {
            let pid = swapping_swapstress();
            failslab::configure(target, rule);
            sched::sleep_ticks(wait);
            sched::kill(pid);
            let exit = wait_for(pid);
            failslab::off();
            let _ = capture_take();
            clean_up();
            ferrite::kprintln!(
                "  killed after {wait} ticks of {} {rule}: {exit:?}",
                target.name()
            );
            assert_swap_empty(&alloc::format!("a kill under {} {rule}", target.name()));
        }
    }
    swap::swapoff().expect("swapoff");
    free_hoard(hoard);
}

fn every_frame_comes_back() {
    failslab::off();
    clean_up();
    let (start, kinds_then, vm_then) = *FREE_AT_START.get().unwrap();
    let (now, kinds_now, vm_now) = snapshot();
    ferrite::kprintln!("  free pages: {start} after the clean run, {now} after injection");
    let why = alloc::format!(
        "by owner {kinds_then:?} then, {kinds_now:?} now; vmalloc pages {vm_then} then, {vm_now} now"
    );
    // Every frame is back, exactly: no user page, page table, page-cache
    // page, kernel stack or slab page was lost on an error path.
    assert_eq!(now, start, "frames lost under injection: {why}");
    assert_eq!(vm_now, vm_then, "kernel stacks lost: {why}");
}
