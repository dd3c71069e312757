//! Hardware interrupts: the two 8259 PICs, remapped to vectors 32..48, and
//! the PIT (8254): periodic at `time::TICK_HZ` while booting, then one-shot
//! (`pit_oneshot`), armed by `time` for the next tick or sleeper's wake-up.
//!
//! The legacy PIC is on every PC Ferrite targets (and emulated by QEMU);
//! using the APIC is left for when there is more than one CPU to wake.

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
    if irq != 7 && irq != 15 {
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
