//! Hardware interrupts: the two 8259 PICs, remapped to vectors 32..48, and
//! the PIT (8254): periodic at `time::TICK_HZ` while booting, then one-shot
//! (`pit_oneshot`), armed by `time` for the next tick or sleeper's wake-up.
//!
//! Where the ACPI MADT lists an I/O APIC, `smp::init` moves the device
//! interrupts onto it ([`route_through_ioapic`]): same vectors, the PICs
//! masked, end of interrupt at the local APIC. The PIT stays the timer
//! (through the I/O APIC, on the GSI the MADT's override names): its
//! one-shot deadlines serve the global tick and the sleepers as before,
//! on the bootstrap CPU; each CPU's time slices come from its local APIC
//! timer (`apic::start_timer`, `proc::cpus`). Without an I/O APIC the
//! PICs stay in charge.

use x86_64::instructions::port::Port;

use super::hook::Hook;
use super::trap::TrapFrame;

const PIC1_COMMAND: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_COMMAND: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
const PIC_EOI: u8 = 0x20;

const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
const PIT_FREQUENCY_HZ: u64 = 1_193_182;

/// Device interrupts come through the I/O APIC (the PICs are masked).
static APIC_MODE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether device interrupts come through the I/O APIC.
pub fn uses_ioapic() -> bool {
    apic_mode()
}

fn apic_mode() -> bool {
    APIC_MODE.load(core::sync::atomic::Ordering::Relaxed)
}

/// Hands the device interrupts from the PICs to the I/O APIC(s), each
/// to the local APIC `dest_apic`: every IRQ unmasked at the PIC now is
/// unmasked at the I/O APIC, then the PICs are masked for good. Called
/// once with interrupts off; false (nothing changed) without an I/O APIC.
pub fn route_through_ioapic(madt: &super::acpi::Madt1, dest_apic: u32) -> bool {
    if !super::ioapic::init(madt, dest_apic) {
        return false;
    }
    let mut data1: Port<u8> = Port::new(PIC1_DATA);
    let mut data2: Port<u8> = Port::new(PIC2_DATA);
    // SAFETY: reading and then setting the PICs' interrupt mask registers.
    let (mask1, mask2) = unsafe {
        let masks = (data1.read(), data2.read());
        data1.write(0xff);
        data2.write(0xff);
        masks
    };
    let unmasked = !(mask1 as u16 | (mask2 as u16) << 8);
    for irq in 0..16u8 {
        // IRQ 2 is only the cascade between the two PICs.
        if irq != 2 && unmasked & (1 << irq) != 0 && !super::ioapic::set_masked(irq, false) {
            log::warn!("ioapic: no I/O APIC pin for ISA IRQ {irq}");
        }
    }
    APIC_MODE.store(true, core::sync::atomic::Ordering::Relaxed);
    super::apic::mask_lint0();
    true
}

pub const IRQ_TIMER: u8 = 0;
pub const IRQ_KEYBOARD: u8 = 1;
pub const IRQ_COM1: u8 = 4;

/// Remaps the PICs to vectors 32..48 (their BIOS default overlaps CPU
/// exceptions), unmasks the timer, and starts the PIT.
pub fn init() {
    let mut cmd1: Port<u8> = Port::new(PIC1_COMMAND);
    let mut data1: Port<u8> = Port::new(PIC1_DATA);
    let mut cmd2: Port<u8> = Port::new(PIC2_COMMAND);
    let mut data2: Port<u8> = Port::new(PIC2_DATA);
    let mut wait: Port<u8> = Port::new(0x80);
    // SAFETY: the standard 8259 initialisation sequence (ICW1..ICW4) on the
    // PIC's fixed ports; interrupts are still disabled.
    unsafe {
        let mut io_wait = || wait.write(0);
        cmd1.write(0x11); // ICW1: init, expect ICW4
        io_wait();
        cmd2.write(0x11);
        io_wait();
        data1.write(32); // ICW2: vector offsets
        io_wait();
        data2.write(40);
        io_wait();
        data1.write(4); // ICW3: slave on IRQ2
        io_wait();
        data2.write(2);
        io_wait();
        data1.write(0x01); // ICW4: 8086 mode
        io_wait();
        data2.write(0x01);
        io_wait();
        // Mask everything except the timer (and the cascade line).
        data1.write(!((1 << IRQ_TIMER) | (1 << 2)));
        data2.write(0xff);
    }
    let divisor = (PIT_FREQUENCY_HZ / crate::time::TICK_HZ) as u16;
    let mut pit_cmd: Port<u8> = Port::new(PIT_COMMAND);
    let mut pit0: Port<u8> = Port::new(PIT_CHANNEL0);
    // SAFETY: channel 0, lobyte/hibyte, mode 3 (square wave): the PIT's
    // documented programming sequence on its fixed ports.
    unsafe {
        pit_cmd.write(0x36);
        pit0.write(divisor as u8);
        pit0.write((divisor >> 8) as u8);
    }
}

/// Arms PIT channel 0 in one-shot mode (mode 0: interrupt on terminal
/// count) to raise IRQ 0 in `ns` nanoseconds (at most 54 ms; at least one
/// PIT period, 838 ns). Reprogramming restarts the count.
pub fn pit_oneshot(ns: u64) {
    let count = (ns as u128 * PIT_FREQUENCY_HZ as u128 / 1_000_000_000).clamp(1, 0xffff) as u16;
    use super::port::{PIT_CHANNEL0 as channel0, PIT_COMMAND as command};
    command.write(0x30); // channel 0, lobyte/hibyte, mode 0
    channel0.write(count as u8);
    channel0.write((count >> 8) as u8);
}

pub fn enable() {
    x86_64::instructions::interrupts::enable();
}

fn end_of_interrupt(irq: u8) {
    if apic_mode() {
        super::apic::eoi();
        return;
    }
    // SAFETY: acknowledging an IRQ at the PIC(s) that raised it.
    unsafe {
        if irq >= 8 {
            Port::<u8>::new(PIC2_COMMAND).write(PIC_EOI);
        }
        Port::<u8>::new(PIC1_COMMAND).write(PIC_EOI);
    }
}

/// IRQ 7 and 15 can be spurious: the PIC raises them with nothing in service.
fn is_spurious(irq: u8) -> bool {
    if apic_mode() || (irq != 7 && irq != 15) {
        return false;
    }
    let (cmd, _) = if irq == 7 {
        (PIC1_COMMAND, 0)
    } else {
        (PIC2_COMMAND, 0)
    };
    let mut port: Port<u8> = Port::new(cmd);
    // SAFETY: OCW3 "read ISR" then a read of the same port.
    let isr = unsafe {
        port.write(0x0b);
        port.read()
    };
    isr & 0x80 == 0
}

/// Interrupts taken per IRQ line (spurious ones not counted).
static IRQ_COUNTS: [core::sync::atomic::AtomicU64; 16] =
    [const { core::sync::atomic::AtomicU64::new(0) }; 16];

/// How many interrupts IRQ `irq` raised since boot.
pub fn irq_count(irq: u8) -> u64 {
    IRQ_COUNTS
        .get(irq as usize)
        .map_or(0, |c| c.load(core::sync::atomic::Ordering::Relaxed))
}

static TIMER_HOOK: Hook<fn(&mut TrapFrame)> = Hook::empty();
static IRQ_HOOKS: [Hook<fn()>; 16] = [const { Hook::empty() }; 16];

/// Called on every timer tick, after the EOI (it may switch processes).
pub fn set_timer_hook(hook: fn(&mut TrapFrame)) {
    TIMER_HOOK.set(hook);
}

/// Installs a handler for a device IRQ and unmasks it at the PIC.
pub fn set_irq_handler(irq: u8, hook: fn()) {
    IRQ_HOOKS[irq as usize].set(hook);
    if apic_mode() {
        if !super::ioapic::set_masked(irq, false) {
            log::warn!("ioapic: no I/O APIC pin for ISA IRQ {irq}");
        }
        return;
    }
    let (port, bit) = if irq < 8 {
        (PIC1_DATA, irq)
    } else {
        (PIC2_DATA, irq - 8)
    };
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut data: Port<u8> = Port::new(port);
        // SAFETY: read-modify-write of the PIC's interrupt mask register.
        unsafe {
            let mask = data.read();
            data.write(mask & !(1 << bit));
        }
    });
}

pub fn handle_irq(irq: u8, frame: &mut TrapFrame) {
    if is_spurious(irq) {
        // A spurious IRQ 15 still needs an EOI at the master (for IRQ 2).
        if irq == 15 {
            end_of_interrupt(0);
        }
        return;
    }
    IRQ_COUNTS[irq as usize].fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if irq == IRQ_TIMER {
        crate::time::timer_interrupt();
        end_of_interrupt(irq);
        // The one-shot timer is armed again at once, for the next tick (the
        // hook re-arms it for an earlier sleeper), since the hook may
        // switch away before returning.
        crate::time::start_oneshot();
        crate::time::arm();
        if let Some(hook) = TIMER_HOOK.get() {
            hook(frame);
        }
        return;
    }
    if let Some(hook) = IRQ_HOOKS[irq as usize].get() {
        hook();
    }
    end_of_interrupt(irq);
}
