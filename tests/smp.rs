//! SMP bring-up: every CPU QEMU was given (`-smp N`, which QEMU also
//! writes to CMOS register 0x5f as N - 1) is found in the ACPI MADT,
//! started, reports its own APIC id through its per-CPU data, and
//! handles a wake-up IPI in its idle loop; the bootstrap CPU's timer and
//! serial interrupts still arrive.

#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::Ordering;

use ferrite::arch::{apic, interrupts, percpu, smp};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        every_cpu_is_online,
        bootstrap_cpu_per_cpu_data,
        every_ap_handles_a_wake_ipi,
        device_interrupts_come_through_the_ioapic,
        timer_and_serial_interrupts_arrive,
        keyboard_interrupt_arrives,
        shell_lists_every_cpu,
        proc_cpuinfo_lists_every_cpu,
        any_cpu_kernel_threads_run_on_every_cpu,
    ])
}

/// The CPU count QEMU put in CMOS (register 0x5f: CPUs - 1).
fn qemu_cpus() -> usize {
    use x86_64::instructions::port::Port;
    let _irq = ferrite::arch::sync::IrqOff::new();
    // SAFETY: the CMOS index/data ports, read with interrupts off (the RTC
    // driver does the same); 0x5f is an ordinary CMOS byte.
    let value: u8 = unsafe {
        Port::<u8>::new(0x70).write(0x5f);
        Port::<u8>::new(0x71).read()
    };
    value as usize + 1
}

/// Without ACPI tables (`-noacpi` machines) the kernel runs on one CPU
/// with the 8259 PICs, as before SMP.
fn has_madt() -> bool {
    ferrite::arch::acpi::madt().is_some()
}

fn every_cpu_is_online() {
    let expected = if has_madt() { qemu_cpus() } else { 1 };
    assert_eq!(smp::cpus_found(), expected, "CPUs in the MADT");
    assert_eq!(smp::cpus_online(), expected, "CPUs online");
    let cpus = percpu::cpus();
    let mut ids = alloc::vec::Vec::new();
    for (i, cpu) in cpus.iter().enumerate() {
        let online = cpu.online.load(Ordering::Acquire);
        assert_eq!(online, i < expected, "CPU {i} online");
        if online {
            assert_eq!(cpu.index.load(Ordering::Relaxed) as usize, i);
            ids.push(cpu.apic_id.load(Ordering::Relaxed));
        }
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "APIC ids {ids:?} are distinct");
    log::info!("smp: {expected} CPUs online, APIC ids {ids:?}");
}

fn bootstrap_cpu_per_cpu_data() {
    let me = percpu::current().expect("GS points at this CPU's data");
    assert_eq!(me.index.load(Ordering::Relaxed), 0);
    assert_eq!(me.apic_id.load(Ordering::Relaxed), apic::id());
    assert_eq!(apic::is_ready(), has_madt());
}

/// Spins (interrupts on) until `cond` or about `ms` milliseconds.
fn wait_for(ms: u64, cond: impl Fn() -> bool) -> bool {
    let start = ferrite::time::uptime_ns();
    while !cond() {
        if ferrite::time::uptime_ns() - start > ms * 1_000_000 {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

fn every_ap_handles_a_wake_ipi() {
    let n = smp::cpus_online();
    for round in 1..=3u64 {
        for i in 1..n {
            let cpu = &percpu::cpus()[i];
            let before = cpu.wakeups.load(Ordering::Relaxed);
            let idle_before = cpu.idle_wakes.load(Ordering::Relaxed);
            smp::wake(i);
            assert!(
                wait_for(2000, || cpu.wakeups.load(Ordering::Relaxed) > before),
                "CPU {i} took no wake-up IPI (round {round})"
            );
            // The IPI woke the AP from `hlt` in its idle loop.
            assert!(
                wait_for(2000, || cpu.idle_wakes.load(Ordering::Relaxed)
                    > idle_before),
                "CPU {i}'s idle loop did not run (round {round})"
            );
        }
    }
    // The bootstrap CPU took none of them.
    assert_eq!(percpu::cpus()[0].wakeups.load(Ordering::Relaxed), 0);
}

fn timer_and_serial_interrupts_arrive() {
    let ticks = ferrite::time::ticks();
    let timer = interrupts::irq_count(interrupts::IRQ_TIMER);
    let serial = interrupts::irq_count(interrupts::IRQ_COM1);
    assert!(
        wait_for(2000, || ferrite::time::ticks() >= ticks + 5),
        "the tick stopped"
    );
    assert!(interrupts::irq_count(interrupts::IRQ_TIMER) > timer);
    // Enabling the UART's "transmitter empty" interrupt with nothing to
    // send raises IRQ 4 at once (the driver turns it off again).
    use ferrite::arch::port::COM1_IER;
    {
        let _irq = ferrite::arch::sync::IrqOff::new();
        COM1_IER.write(0b11);
    }
    let got = wait_for(2000, || {
        interrupts::irq_count(interrupts::IRQ_COM1) > serial
    });
    COM1_IER.write(0b01);
    assert!(got, "no serial interrupt");
}

fn device_interrupts_come_through_the_ioapic() {
    if !has_madt() {
        assert!(!interrupts::uses_ioapic());
        return;
    }
    // Every machine in the list (QEMU pc and q35) has an I/O APIC.
    assert!(interrupts::uses_ioapic(), "the 8259 PICs still deliver");
    let masks: (u8, u8) = {
        use x86_64::instructions::port::Port;
        // SAFETY: reading the PICs' interrupt mask registers.
        unsafe { (Port::<u8>::new(0x21).read(), Port::<u8>::new(0xa1).read()) }
    };
    assert_eq!(masks, (0xff, 0xff), "the PICs are masked");
    // The PIT (ISA IRQ 0) is unmasked at the I/O APIC, on GSI 2 under QEMU.
    assert!(ferrite::arch::ioapic::unmasked() & 1 != 0);
    assert_eq!(ferrite::arch::acpi::madt().expect("a MADT").isa[0].gsi, 2);
}

/// The i8042's "write keyboard output buffer" command (0xd2) makes a byte
/// arrive as if the keyboard sent it, with its IRQ 1: a right-shift
/// release (0xb6), which types nothing.
fn keyboard_interrupt_arrives() {
    use x86_64::instructions::port::Port;
    assert!(ferrite::drivers::keyboard::init(), "QEMU has an i8042");
    let before = interrupts::irq_count(interrupts::IRQ_KEYBOARD);
    {
        let _irq = ferrite::arch::sync::IrqOff::new();
        let wait_input_empty = || {
            for _ in 0..100_000 {
                // SAFETY: the i8042 status port.
                if unsafe { Port::<u8>::new(0x64).read() } & 2 == 0 {
                    return;
                }
                core::hint::spin_loop();
            }
        };
        wait_input_empty();
        // SAFETY: the i8042 command and data ports, in its documented
        // command sequence.
        unsafe { Port::<u8>::new(0x64).write(0xd2) };
        wait_input_empty();
        // SAFETY: as above.
        unsafe { Port::<u8>::new(0x60).write(0xb6) };
    }
    assert!(
        wait_for(2000, || interrupts::irq_count(interrupts::IRQ_KEYBOARD)
            > before),
        "no keyboard interrupt"
    );
}

fn shell_lists_every_cpu() {
    let out = ferrite::testing::sh("cpus");
    let n = smp::cpus_online();
    assert!(
        out.starts_with(&alloc::format!("{n} CPU(s) found, {n} online")),
        "{out}"
    );
    for i in 0..n {
        let apic_id = percpu::cpus()[i].apic_id.load(Ordering::Relaxed);
        let state = if i == 0 { "running" } else { "idle" };
        assert!(
            out.lines().any(|l| {
                let w: alloc::vec::Vec<&str> = l.split_whitespace().collect();
                w.len() >= 3
                    && w[0] == alloc::format!("{i}")
                    && w[1] == alloc::format!("{apic_id}")
                    && w[2] == state
            }),
            "CPU {i} missing: {out}"
        );
    }
}

fn proc_cpuinfo_lists_every_cpu() {
    let mut text = alloc::string::String::new();
    ferrite::procfs::system::cpuinfo(&mut text).expect("cpuinfo");
    let n = smp::cpus_online();
    let processors: alloc::vec::Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("processor\t: "))
        .collect();
    assert_eq!(processors.len(), n, "{text}");
    for i in 0..n {
        let apic_id = percpu::cpus()[i].apic_id.load(Ordering::Relaxed);
        let block = text
            .split("\n\n")
            .find(|b| b.starts_with(&alloc::format!("processor\t: {i}\n")))
            .unwrap_or_else(|| panic!("no block for CPU {i}: {text}"));
        assert!(
            block.contains(&alloc::format!("\napicid\t\t: {apic_id}\n")),
            "{block}"
        );
        assert!(
            block.contains(&alloc::format!("\ncpu cores\t: {n}\n")),
            "{block}"
        );
    }
}

/// CPUs each `Affinity::Any` worker ran on (bit per CPU), and how many
/// workers finished.
static SEEN: [core::sync::atomic::AtomicU64; 8] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 8];
static NEXT_WORKER: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
static FINISHED: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// CPUs the workers ran on, together (bit per CPU).
fn seen_all() -> u64 {
    SEEN.iter()
        .fold(0, |acc, s| acc | s.load(Ordering::Relaxed))
}

/// Spins, noting every CPU it finds itself on, until the workers together
/// have been on every CPU (or 20 s passed), then exits.
fn any_cpu_worker() -> ! {
    let me = NEXT_WORKER.fetch_add(1, Ordering::SeqCst);
    let want = (1u64 << smp::cpus_online().min(SEEN.len())) - 1;
    let start = ferrite::time::uptime_ns();
    while seen_all() != want && ferrite::time::uptime_ns() - start < 20_000_000_000 {
        let cpu = ferrite::proc::cpus::cpu();
        SEEN[me].fetch_or(1 << cpu, Ordering::Relaxed);
        core::hint::spin_loop();
    }
    FINISHED.fetch_add(1, Ordering::SeqCst);
    ferrite::proc::sched::kthread_exit()
}

/// Kernel threads allowed on any CPU (`spawn_kthread_on` with
/// `Affinity::Any`): as many busy ones as CPUs, while this thread sleeps,
/// are spread so that every CPU runs one of them; all end and are reaped.
fn any_cpu_kernel_threads_run_on_every_cpu() {
    use ferrite::proc::{cpus::Affinity, sched};
    let n = smp::cpus_online().min(SEEN.len());
    for _ in 0..n {
        sched::spawn_kthread_on("anycpu", any_cpu_worker, Affinity::Any).expect("spawn");
    }
    let start = ferrite::time::uptime_ns();
    while FINISHED.load(Ordering::SeqCst) < n {
        sched::sleep_ticks(1);
        assert!(
            ferrite::time::uptime_ns() - start < 60_000_000_000,
            "the workers did not finish"
        );
    }
    let all = seen_all();
    assert_eq!(all, (1u64 << n) - 1, "CPUs used (bit per CPU): {all:#b}");
    assert!(
        ferrite::testing::reap_adopted_for_a_while(),
        "every worker was reaped"
    );
}
