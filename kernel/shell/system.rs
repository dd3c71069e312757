//! The rest of the commands: `ls`, `echo`, `sleep`, `clear`, `bench`,
//! `poweroff`, `reboot`, and the longer help texts.

use core::fmt::Write;

use super::{Args, Result};

/// Largest `poweroff` code: QEMU's exit status `33 + 2 * CODE` must fit
/// in a byte.
pub const POWEROFF_MAX_CODE: u32 = 111;

/// What `poweroff CODE` writes to QEMU's `isa-debug-exit` port. QEMU exits
/// with `(value << 1) | 1`, so CODE 0 gives 33 and CODE 1 gives 35: the
/// statuses the boot tool already reads as success and failure (`make run`
/// then exits 0 and 1); CODE N > 1 gives 33 + 2N.
pub const fn poweroff_value(code: u32) -> u32 {
    0x10 + code
}

/// More than one line of help, for `help COMMAND`.
pub fn details(name: &str) -> Option<&'static str> {
    Some(match name {
        "meminfo" => {
            "  Every frame the buddy allocator manages is in exactly one of:\n  \
             MemTotal = MemFree + Cached + AnonPages + Slab + PageTables + KernelStack\n  \
             \x20          + ZeroPage + KmallocLarge + KernelOther\n  \
             Cached is the page cache (ramdisk files, shared anonymous memory); Mapped is\n  \
             the part some process maps; MemAvailable adds the unmapped cache (freeable).\n  \
             KernelStack = VmallocUsed (every vmalloc area is a kernel stack). Reserved:\n  \
             frames in range that were never managed (firmware, holes, the kernel).\n  \
             Swap: SwapTotal/SwapFree (the area, see swapon), SwapCached (swapped-in\n  \
             pages still holding their slot; also in AnonPages). Inactive(anon): the\n  \
             anonymous pages on reclaim's one CLOCK list (Active(anon) is 0: there is\n  \
             no second list); Active(file)/Inactive(file): cached pages some process\n  \
             maps / that could be dropped. Dirty is 0: nothing waits for writeback.\n  \
             Committed_AS: memory promised to processes (private writable mappings,\n  \
             shared anonymous memory), touched or not; CommitLimit: what\n  \
             vm.overcommit_memory=2 allows (swap + overcommit_ratio % of RAM). See sysctl."
        }
        "pressure" => {
            "  some: the share of time at least one task waited for memory; full: the share\n  \
             in which every task that could run waited for it (nothing made progress).\n  \
             Waiting for memory: direct reclaim in a fault, reading a page back from\n  \
             swap. avg10/avg60/avg300: running averages over 10 s, 60 s, 300 s (percent,\n  \
             updated every 2 s); total: microseconds since boot. Linux's PSI."
        }
        "sysctl" => {
            "  vm.overcommit_memory: 0 (default) refuses only one request larger than RAM +\n  \
             swap; 1 grants everything; 2 refuses once Committed_AS would reach\n  \
             CommitLimit, and ignores MAP_NORESERVE. vm.overcommit_ratio (50) or\n  \
             vm.overcommit_kbytes sets CommitLimit's share of RAM (setting one clears the\n  \
             other). Charged: private writable mappings (not MAP_NORESERVE), brk, stack\n  \
             growth, shared anonymous objects, mprotect making a private mapping\n  \
             writable, fork (the child's copy); given back by munmap and exit."
        }
        "vmstat" => {
            "  Counts of pages (nr_*; nr_kernel_stack in kB as in Linux) and events since\n  \
             boot: pgalloc/pgfree (buddy pages), pgfault (all user faults), pgmajfault\n  \
             (file pages read in), zero_page_maps (first reads), demand_zero (first\n  \
             writes), cow_copy / cow_reuse (copy-on-write faults that copied / only made\n  \
             the page writable again), pswpin/pswpout (pages read from / written to\n  \
             swap), pgscan_direct/pgsteal_direct (pages reclaim looked at / freed),\n  \
             allocstall (reclaim passes), stack_grow, segv, oom_kill."
        }
        "ps" | "pmap" => {
            "  VSZ is the size of every region; RSS counts the pages present in the page\n  \
             tables (the shared zero page included), in kB. pmap Dirty: pages whose\n  \
             dirty bit the MMU set. Mode: rwx, then s for shared mappings. SWAP (ps)\n  \
             and Swap (pmap): pages swapped out, in kB."
        }
        "swapon" => {
            "  `swapon zram SIZE` makes SIZE (bytes, or with K, M, G) of compressed RAM\n  \
             the swap area, /dev/zram0 (Linux: zramctl, mkswap and swapon in one).\n  \
             Reclaim then moves anonymous pages there when memory runs short. One area\n  \
             at a time. `swapon -s` lists it like /proc/swaps (sizes in kB),\n  \
             `swapon --show` (or no argument) like util-linux."
        }
        "swapoff" => {
            "  Brings every swapped-out page of every process back into RAM, then turns\n  \
             swap off. Refused, changing nothing, if the pages would not fit in free\n  \
             plus freeable memory; stops with the reason if a page cannot come back\n  \
             (e.g. its region is PROT_NONE), leaving swap on."
        }
        "oomadj" => {
            "  When a page fault finds no free frame, the OOM killer kills the process\n  \
             with the most badness: resident + swapped + page-table pages, plus\n  \
             oom_score_adj thousandths of all memory (-1000: never; +1000: first).\n  \
             OOM_SCORE is Linux's /proc/PID/oom_score (0..2000), BADNESS the points\n  \
             (never: not killable), RSS in kB. Children inherit oom_score_adj.\n  \
             The killer's report and each kill go to the console; vmstat counts oom_kill."
        }
        "walk" => {
            "  Follows ADDR through the 4-level page tables of process PID (0: the\n  \
             kernel's own tables): each level's table, index and entry with its flags\n  \
             (P present, W writable, U user, A accessed, D dirty, PS huge, G global,\n  \
             COW copy-on-write, NX no-execute), down to the frame or the missing entry."
        }
        "mmview" => {
            "  Draws every frame of RAM on the framebuffer, coloured by owner, refreshed\n  \
             every 200 ms while programs run; a key stops it (or it stops after SECONDS).\n  \
             A cell is the majority owner of its frames. Without a framebuffer, or with\n  \
             -t, prints one character per group of frames instead."
        }
        "run" => {
            "  Starts /bin/PROGRAM (or a path) with ARGS. In the foreground the shell\n  \
             waits and says how it ended; with a final & it returns at once (see jobs).\n  \
             Quoting (every command): 'single' keeps all, \"double\" allows \\\" \\\\, and\n  \
             a backslash makes the next character ordinary.\n  \
             Redirections: < FILE (standard input), > FILE (output, created or\n  \
             truncated), >> FILE (appended), 2> FILE, 2>> FILE (errors), 2>&1\n  \
             (errors to where output goes); applied left to right, paths from /.\n  \
             Pipes: run A | run B (or run A | B) joins A's output to B's input; the\n  \
             shell waits for all, Ctrl-C interrupts all, $? is the last one's status.\n  \
             Example: run hello > /tmp/out, then run cat /tmp/out;\n  \
             run busybox sh script.sh 2>&1 | run busybox wc -l > /tmp/n &"
        }
        "failinject" => {
            "  Like Linux's failslab and fail_page_alloc: makes allocations fail on\n  \
             purpose so error paths run. `slab` is the kernel heap (only allocations\n  \
             whose caller handles failure: those made with mm::kalloc), `page` the\n  \
             frames of user-driven paths (user pages, page cache, page tables); `all`\n  \
             (the default) both. `every N` fails the Nth, 2Nth, ... such allocation,\n  \
             `random N [seed S]` one in N at random (seeded, reproducible), `times M`\n  \
             at most M failures. Setting a rule resets its counters. Without a rule,\n  \
             shows each target's rule, calls seen and failures. At boot the same\n  \
             comes from /etc/cmdline: `failslab=every:7 fail_page_alloc=random:50,seed:3`.\n  \
             Examples: `failinject slab every 7`, `failinject page random 50 seed 3\n  \
             times 100`, `failinject off`."
        }
        "poweroff" => {
            "  In QEMU, exits with status 33 + 2 * CODE (CODE 0..=111, default 0): the\n  \
             boot tool (make run) turns 33 into 0 and 35 (CODE 1) into 1 and passes the\n  \
             others on. `poweroff $?` uses the last foreground program's status (its\n  \
             exit code, or 128 + signal, at most 111). A real PC halts."
        }
        _ => return None,
    })
}

pub fn failinject(args: &Args, out: &mut dyn Write) -> Result {
    use crate::mm::failslab::{self, Target};
    let mut words = args.words;
    let targets: &[Target] = match words.first().copied() {
        Some("all") => {
            words = &words[1..];
            &[Target::Slab, Target::Page]
        }
        Some(w) => match failslab::parse_target(w) {
            Some(Target::Slab) => {
                words = &words[1..];
                &[Target::Slab]
            }
            Some(Target::Page) => {
                words = &words[1..];
                &[Target::Page]
            }
            None => &[Target::Slab, Target::Page],
        },
        None => &[Target::Slab, Target::Page],
    };
    if !words.is_empty() {
        let rule = failslab::parse_rule(words.iter().copied())
            .map_err(|e| args.usage_fmt(format_args!("{e}")))?;
        for &t in targets {
            failslab::configure(t, rule);
        }
    }
    for &t in targets {
        let (rule, stats) = failslab::status(t);
        writeln!(
            out,
            "{:<16} {rule}: {} failed of {} calls",
            t.name(),
            stats.failed,
            stats.calls
        )?;
    }
    Ok(())
}

pub fn ls(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    let mut empty = true;
    for path in crate::proc::ramdisk::paths() {
        writeln!(out, "/{}", path.trim_start_matches('/'))?;
        empty = false;
    }
    if empty {
        writeln!(out, "the ramdisk is empty")?;
    }
    Ok(())
}

pub fn echo(args: &Args, out: &mut dyn Write) -> Result {
    let mut first = true;
    for word in args.words {
        if !first {
            out.write_char(' ')?;
        }
        out.write_str(word)?;
        first = false;
    }
    writeln!(out)?;
    Ok(())
}

/// `2`, `0.5`, `1.25` seconds -> milliseconds.
fn parse_seconds(word: &str) -> Option<u64> {
    let (whole, frac) = word.split_once('.').unwrap_or((word, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = 0;
    for b in frac.bytes().chain(core::iter::repeat(b'0')).take(3) {
        ms = ms * 10 + (b - b'0') as u64;
    }
    whole.checked_mul(1000)?.checked_add(ms)
}

pub fn sleep(args: &Args, out: &mut dyn Write) -> Result {
    args.count(1, 1)?;
    let word = args.words[0];
    let ms = parse_seconds(word)
        .filter(|&ms| ms <= 3_600_000)
        .ok_or_else(|| {
            args.usage_fmt(format_args!(
                "`{word}` is not a number of seconds (0..3600)"
            ))
        })?;
    let ticks = ms * crate::time::TICK_HZ / 1000;
    if ticks > 0 {
        crate::proc::sched::sleep_ticks(ticks);
    }
    let _ = out;
    Ok(())
}

pub fn clear(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    out.write_str("\x1b[2J\x1b[H")?;
    Ok(())
}

pub fn bench(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    // The benchmarks borrow address spaces of their own; come back to the
    // kernel's tables afterwards.
    let results = crate::bench::run_all();
    crate::mm::aspace::switch_to(None);
    writeln!(out, "{} benchmarks run", results.len())?;
    Ok(())
}

pub fn poweroff(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 1)?;
    let code = match args.get(0) {
        None => 0,
        Some("$?") => (super::procs::last_status().max(0) as u32).min(POWEROFF_MAX_CODE),
        Some(_) => {
            let code = args.number(0, "an exit code")?;
            if code > POWEROFF_MAX_CODE as u64 {
                return Err(
                    args.usage_fmt(format_args!("{code} is too big (0..={POWEROFF_MAX_CODE})"))
                );
            }
            code as u32
        }
    };
    writeln!(
        out,
        "poweroff: code {code} (QEMU exit status {})",
        (poweroff_value(code) << 1) | 1
    )?;
    crate::power::exit_raw(poweroff_value(code))
}

pub fn reboot(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 0)?;
    writeln!(out, "reboot: resetting the machine")?;
    crate::arch::cpu::reset_machine();
    crate::power::halt()
}
