//! System files: `/proc/uptime`, `loadavg`, `stat`, `cpuinfo`, `version`,
//! `filesystems`, `mounts`, in Linux 6.1's formats.
//!
//! Ferrite has one CPU and counts time in 10 ms timer ticks, which is
//! exactly Linux's `USER_HZ` (100): tick counts are printed as they are.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::Result;
use crate::arch::sync::LockStat;
use crate::proc::{sched, stats};
use crate::time;

/// Ticks of CPU time: (user processes, kernel threads and pid 0), summed
/// over every live process (what has exited is no longer counted).
fn cpu_ticks() -> Result<(u64, u64)> {
    let list = sched::try_list()?;
    let (mut user, mut system) = (0, 0);
    for p in &list {
        if p.kernel_thread || p.pid == 0 {
            system += p.ticks;
        } else {
            user += p.ticks;
        }
    }
    Ok((user, system))
}

/// `/proc/uptime`: seconds since boot and seconds idle, two decimals.
pub fn uptime(out: &mut dyn Write) -> Result {
    let ticks = time::ticks();
    let (user, system) = cpu_ticks()?;
    let idle = ticks.saturating_sub(user + system);
    let hz = time::TICK_HZ;
    writeln!(
        out,
        "{}.{:02} {}.{:02}",
        ticks / hz,
        ticks % hz * 100 / hz,
        idle / hz,
        idle % hz * 100 / hz
    )?;
    Ok(())
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages
/// (`proc::stats`), runnable / all tasks and the newest pid, as Linux's
/// `loadavg_proc_show`.
pub fn loadavg(out: &mut dyn Write) -> Result {
    let load = stats::load();
    let tasks = sched::task_counts();
    writeln!(
        out,
        "{} {}/{} {}",
        load.display(),
        tasks.running,
        tasks.total,
        sched::last_pid()
    )?;
    Ok(())
}

/// A lock's statistics, read.
pub type LockStatFn = fn() -> LockStat;

/// The locks `/proc/lock_stat` lists, by name.
pub const LOCKS: [(&str, LockStatFn); 9] = [
    ("frames", crate::mm::frames::lock_stat),
    ("sched", crate::proc::sched::lock_stat),
    ("pagecache", crate::mm::pagecache::lock_stat),
    ("pagecache_files", crate::mm::pagecache::file_lock_stat),
    ("kernel_tables", crate::mm::pgtable::lock_stat),
    ("vmalloc", crate::mm::vmalloc::lock_stat),
    ("psi", crate::mm::psi::lock_stat),
    ("swap_device", crate::mm::swap::lock_stat),
    ("heap_reserve", crate::mm::heap::lock_stat),
];

/// `/proc/lock_stat`: per lock since boot, with Linux's column names
/// where it has them: `contentions`, `waittime-total` (TSC cycles, where
/// Linux has microseconds), `acquisitions`. Only the kernel's main spin
/// locks are listed; a per-process address-space lock is not.
pub fn lock_stat(out: &mut dyn Write) -> Result {
    writeln!(
        out,
        "lock_stat version 0.4 (Ferrite: waittime in TSC cycles)"
    )?;
    writeln!(
        out,
        "{:>20} {:>14} {:>16} {:>14}",
        "class name", "contentions", "waittime-total", "acquisitions"
    )?;
    for (name, stat) in LOCKS {
        let s = stat();
        writeln!(
            out,
            "{:>19}: {:>14} {:>16} {:>14}",
            name, s.contentions, s.wait_cycles, s.acquisitions
        )?;
    }
    Ok(())
}

/// `/proc/stat`: the CPU line (user, nice, system, idle, iowait, irq,
/// softirq, steal, guest, guest_nice, in ticks), per CPU, then the
/// counters.
pub fn stat(out: &mut dyn Write) -> Result {
    let ticks = time::ticks();
    let (user, system) = cpu_ticks()?;
    let tasks = sched::task_counts();
    let idle = ticks.saturating_sub(user + system);
    writeln!(out, "cpu  {user} 0 {system} {idle} 0 0 0 0 0 0")?;
    writeln!(out, "cpu0 {user} 0 {system} {idle} 0 0 0 0 0 0")?;
    writeln!(out, "intr {ticks}")?;
    writeln!(out, "ctxt {}", stats::switches())?;
    // Boot time in Unix seconds: the RTC's wall clock at boot.
    writeln!(out, "btime {}", time::boot_wall_ns().max(0) / 1_000_000_000)?;
    writeln!(out, "processes {}", stats::forks())?;
    writeln!(out, "procs_running {}", tasks.running.max(1))?;
    writeln!(out, "procs_blocked {}", tasks.blocked)?;
    writeln!(out, "softirq 0 0 0 0 0 0 0 0 0 0 0")?;
    Ok(())
}

/// Linux's names for CPUID leaf 1 EDX bits (x86 `cpufeatures.h`, word 0).
const EDX1: [(u32, &str); 26] = [
    (0, "fpu"),
    (1, "vme"),
    (2, "de"),
    (3, "pse"),
    (4, "tsc"),
    (5, "msr"),
    (6, "pae"),
    (7, "mce"),
    (8, "cx8"),
    (9, "apic"),
    (11, "sep"),
    (12, "mtrr"),
    (13, "pge"),
    (14, "mca"),
    (15, "cmov"),
    (16, "pat"),
    (17, "pse36"),
    (19, "clflush"),
    (21, "dts"),
    (22, "acpi"),
    (23, "mmx"),
    (24, "fxsr"),
    (25, "sse"),
    (26, "sse2"),
    (27, "ss"),
    (28, "ht"),
];

/// Extended leaf 0x8000_0001 EDX (word 1).
const EDX81: [(u32, &str); 5] = [
    (11, "syscall"),
    (20, "nx"),
    (26, "pdpe1gb"),
    (27, "rdtscp"),
    (29, "lm"),
];

/// Leaf 1 ECX (word 4).
const ECX1: [(u32, &str); 17] = [
    (0, "pni"),
    (1, "pclmulqdq"),
    (3, "monitor"),
    (9, "ssse3"),
    (12, "fma"),
    (13, "cx16"),
    (19, "sse4_1"),
    (20, "sse4_2"),
    (21, "x2apic"),
    (22, "movbe"),
    (23, "popcnt"),
    (25, "aes"),
    (26, "xsave"),
    (28, "avx"),
    (29, "f16c"),
    (30, "rdrand"),
    (31, "hypervisor"),
];

/// Leaf 7 EBX (word 9).
const EBX7: [(u32, &str); 8] = [
    (0, "fsgsbase"),
    (3, "bmi1"),
    (5, "avx2"),
    (7, "smep"),
    (8, "bmi2"),
    (18, "rdseed"),
    (19, "adx"),
    (20, "smap"),
];

fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    // CPUID exists on every x86_64 CPU; reading it is side-effect free.
    core::arch::x86_64::__cpuid_count(leaf, 0)
}

/// `/proc/cpuinfo`: one block per online CPU, from CPUID (read on this
/// CPU; every CPU of a machine has the same model) and each CPU's APIC id.
pub fn cpuinfo(out: &mut dyn Write) -> Result {
    let max = cpuid(0).eax;
    let max_ext = cpuid(0x8000_0000).eax;
    let v = cpuid(0);
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&v.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&v.edx.to_le_bytes());
    vendor[8..].copy_from_slice(&v.ecx.to_le_bytes());
    let l1 = cpuid(1);
    let base_family = (l1.eax >> 8) & 0xf;
    let family = if base_family == 0xf {
        base_family + ((l1.eax >> 20) & 0xff)
    } else {
        base_family
    };
    let model = if base_family == 6 || base_family == 0xf {
        ((l1.eax >> 4) & 0xf) | (((l1.eax >> 16) & 0xf) << 4)
    } else {
        (l1.eax >> 4) & 0xf
    };
    let mut brand = [0u8; 48];
    if max_ext >= 0x8000_0004 {
        for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
            let r = cpuid(leaf);
            for (j, word) in [r.eax, r.ebx, r.ecx, r.edx].iter().enumerate() {
                let at = i * 16 + j * 4;
                brand[at..at + 4].copy_from_slice(&word.to_le_bytes());
            }
        }
    }
    let brand_len = brand.iter().position(|&b| b == 0).unwrap_or(brand.len());
    let brand = core::str::from_utf8(&brand[..brand_len])
        .unwrap_or("")
        .trim();
    let khz = time::tsc_khz();
    let clflush = ((l1.ebx >> 8) & 0xff) * 8;
    let (phys, virt) = if max_ext >= 0x8000_0008 {
        let r = cpuid(0x8000_0008).eax;
        (r & 0xff, (r >> 8) & 0xff)
    } else {
        (36, 48)
    };
    let online = crate::arch::smp::cpus_online();
    for (index, cpu) in crate::arch::percpu::cpus().iter().enumerate() {
        if !cpu.online.load(core::sync::atomic::Ordering::Acquire) {
            continue;
        }
        let apic_id = cpu.apic_id.load(core::sync::atomic::Ordering::Relaxed);
        cpu_block(
            out, index, apic_id, online, &vendor, family, model, brand, &l1, max, max_ext, khz,
            clflush, phys, virt,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cpu_block(
    out: &mut dyn Write,
    index: usize,
    apic_id: u32,
    online: usize,
    vendor: &[u8; 12],
    family: u32,
    model: u32,
    brand: &str,
    l1: &core::arch::x86_64::CpuidResult,
    max: u32,
    max_ext: u32,
    khz: u64,
    clflush: u32,
    phys: u32,
    virt: u32,
) -> Result {
    writeln!(out, "processor\t: {index}")?;
    writeln!(
        out,
        "vendor_id\t: {}",
        core::str::from_utf8(vendor).unwrap_or("unknown")
    )?;
    writeln!(out, "cpu family\t: {family}")?;
    writeln!(out, "model\t\t: {model}")?;
    writeln!(
        out,
        "model name\t: {}",
        if brand.is_empty() { "unknown" } else { brand }
    )?;
    writeln!(out, "stepping\t: {}", l1.eax & 0xf)?;
    writeln!(out, "cpu MHz\t\t: {}.{:03}", khz / 1000, khz % 1000)?;
    writeln!(out, "physical id\t: 0")?;
    writeln!(out, "siblings\t: {online}")?;
    writeln!(out, "core id\t\t: {index}")?;
    writeln!(out, "cpu cores\t: {online}")?;
    writeln!(out, "apicid\t\t: {apic_id}")?;
    writeln!(out, "initial apicid\t: {apic_id}")?;
    writeln!(out, "fpu\t\t: yes")?;
    writeln!(out, "fpu_exception\t: yes")?;
    writeln!(out, "cpuid level\t: {max}")?;
    writeln!(out, "wp\t\t: yes")?;
    write!(out, "flags\t\t:")?;
    let e81 = if max_ext >= 0x8000_0001 {
        cpuid(0x8000_0001).edx
    } else {
        0
    };
    let b7 = if max >= 7 { cpuid(7).ebx } else { 0 };
    for (reg, table) in [
        (l1.edx, &EDX1[..]),
        (e81, &EDX81[..]),
        (l1.ecx, &ECX1[..]),
        (b7, &EBX7[..]),
    ] {
        for &(bit, name) in table {
            if reg & (1 << bit) != 0 {
                write!(out, " {name}")?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "bugs\t\t:")?;
    writeln!(
        out,
        "bogomips\t: {}.{:02}",
        khz * 2 / 1000,
        khz * 2 % 1000 / 10
    )?;
    writeln!(out, "clflush size\t: {clflush}")?;
    writeln!(out, "cache_alignment\t: {clflush}")?;
    writeln!(
        out,
        "address sizes\t: {phys} bits physical, {virt} bits virtual"
    )?;
    writeln!(out, "power management:")?;
    writeln!(out)?;
    Ok(())
}

/// `/proc/version`: Linux's `linux_proc_banner` with `uname`'s fields.
pub fn version(out: &mut dyn Write) -> Result {
    writeln!(
        out,
        "Ferrite version {} (ferrite@ferrite) (rustc) Ferrite teaching kernel",
        crate::VERSION
    )?;
    Ok(())
}

/// `/proc/filesystems`: `nodev\tNAME` for the filesystems Ferrite has
/// (the VFS adds its own at merge).
pub fn filesystems(out: &mut dyn Write) -> Result {
    for name in FILESYSTEMS.load(Ordering::Relaxed) {
        writeln!(out, "nodev\t{name}")?;
    }
    Ok(())
}

/// `/proc/mounts`: the mount table (`DEV DIR TYPE OPTIONS 0 0`).
pub fn mounts(out: &mut dyn Write) -> Result {
    (MOUNTS.load(Ordering::Relaxed))(out)
}

fn builtin_mounts(out: &mut dyn Write) -> Result {
    writeln!(out, "rootfs / rootfs ro 0 0")?;
    writeln!(out, "devtmpfs /dev devtmpfs rw,relatime 0 0")?;
    writeln!(out, "tmpfs /tmp tmpfs rw,relatime 0 0")?;
    writeln!(out, "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0")?;
    Ok(())
}

/// The list `/proc/filesystems` prints; the VFS may install its own.
pub static FILESYSTEMS: Hook<&'static [&'static str]> =
    Hook::new(&["rootfs", "ramfs", "tmpfs", "devtmpfs", "proc"]);

/// What prints `/proc/mounts`; the VFS installs its mount table's.
pub static MOUNTS: Hook<fn(&mut dyn Write) -> Result> = Hook::new(builtin_mounts);

/// A replaceable value (a function or a static list), set once at boot.
pub struct Hook<T: Copy>(spin::Mutex<T>);

impl<T: Copy> Hook<T> {
    pub const fn new(value: T) -> Self {
        Hook(spin::Mutex::new(value))
    }

    pub fn load(&self, _: Ordering) -> T {
        *self.0.lock()
    }

    pub fn store(&self, value: T) {
        *self.0.lock() = value;
    }
}
