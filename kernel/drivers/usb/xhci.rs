//! The xHCI (USB 3) host controller: taken from the firmware, reset, and
//! run with polled rings (no interrupts: the event ring is read at each
//! timer tick, see [`super::poll`]).
//!
//! Bring-up ([`Controller::start`]): BIOS/OS handoff through the USB
//! Legacy Support capability (the firmware stops its SMI emulation),
//! halt, reset, the Device Context Base Address Array (and scratchpad
//! pages if the controller wants them), a command ring, one event ring
//! segment, run. Enumeration ([`Controller::enumerate`]): every root-hub
//! port with something connected is reset (USB 2; USB 3 ports enable
//! themselves), given a slot (Enable Slot) and an address (Address
//! Device), and its device and configuration descriptors are read. A
//! boot-protocol keyboard is configured (SET_CONFIGURATION, SET_PROTOCOL
//! boot, SET_IDLE 0, Configure Endpoint for its interrupt IN endpoint)
//! and gets a transfer queued; hubs are not walked (a keyboard behind a
//! hub is not seen).
//!
//! Register layout is the xHCI 1.2 specification's, read and written
//! through `mm::dma::Mmio` (bounds-checked; the crate's own register
//! accessors need an unsafe mapper, and their read-modify-write of PORTSC
//! writes back the write-1-to-clear bits, which would disable the port).
//! TRBs and device contexts are the `xhci` crate's. Everything the device
//! gives (capability offsets, slot ids, descriptor lengths, event
//! pointers) is checked before use: a controller that misbehaves or
//! vanishes makes the driver give up, never panic.

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use usercore::usb::{self as desc, BootReport, DeviceDescriptor};
use xhci::context::{EndpointType, Input32Byte, Input64Byte, InputHandler};
use xhci::ring::trb::{command, event, transfer, Link};

use crate::mm::dma::{DmaBuffer, Mmio};
use crate::mm::kalloc::try_push;

// Capability registers.
const CAP_LENGTH_VERSION: u64 = 0x00;
const CAP_HCSPARAMS1: u64 = 0x04;
const CAP_HCSPARAMS2: u64 = 0x08;
const CAP_HCCPARAMS1: u64 = 0x10;
const CAP_DBOFF: u64 = 0x14;
const CAP_RTSOFF: u64 = 0x18;

// Operational registers (from the operational base).
const OP_USBCMD: u64 = 0x00;
const OP_USBSTS: u64 = 0x04;
const OP_PAGESIZE: u64 = 0x08;
const OP_CRCR: u64 = 0x18;
const OP_DCBAAP: u64 = 0x30;
const OP_CONFIG: u64 = 0x38;
const OP_PORTS: u64 = 0x400;
const PORT_STRIDE: u64 = 0x10;

const USBCMD_RUN: u32 = 1 << 0;
const USBCMD_RESET: u32 = 1 << 1;
const USBSTS_HALTED: u32 = 1 << 0;
const USBSTS_NOT_READY: u32 = 1 << 11;

// PORTSC bits.
const PORT_CONNECTED: u32 = 1 << 0;
const PORT_ENABLED: u32 = 1 << 1;
const PORT_RESET: u32 = 1 << 4;
const PORT_POWER: u32 = 1 << 9;
const PORT_RESET_CHANGE: u32 = 1 << 21;
/// Every change bit (write 1 to clear): CSC, PEC, WRC, OCC, PRC, PLC, CEC.
const PORT_CHANGES: u32 = 0x7f << 17;
/// The bits a write must carry over to leave them as they are (port
/// power, indicator, wake enables); everything else is read-only,
/// write-1-to-clear or write-1-to-act and is written as 0.
const PORT_PRESERVE: u32 = PORT_POWER | (3 << 14) | (7 << 25);

// Interrupter 0 (from the runtime base).
const IR0: u64 = 0x20;
const IR_ERSTSZ: u64 = 0x08;
const IR_ERSTBA: u64 = 0x10;
const IR_ERDP: u64 = 0x18;
/// ERDP: Event Handler Busy (write 1 to clear).
const ERDP_BUSY: u64 = 1 << 3;

/// Extended capability: USB Legacy Support (the BIOS/OS semaphores).
const XCAP_LEGACY: u32 = 1;
const LEGACY_BIOS_OWNED: u32 = 1 << 16;
const LEGACY_OS_OWNED: u32 = 1 << 24;
/// USBLEGCTLSTS: the SMI enables to clear, and the SMI events (write 1
/// to clear), as Linux's quirk code does.
const LEGACY_DISABLE_SMI: u32 = (0x7 << 1) | (0xff << 5) | (0x7 << 17);
const LEGACY_SMI_EVENTS: u32 = 0x7 << 29;

/// TRBs in a ring (one page of 16-byte TRBs; the last is the Link TRB).
const RING_TRBS: usize = 256;
const TRB_BYTES: usize = 16;
/// Device slots used at most (the DCBAA is one page either way).
const MAX_SLOTS: u8 = 32;
/// Bytes of the control-transfer buffer (descriptors longer are cut).
const CONTROL_BUFFER: usize = 4096;

// Standard requests (USB 2.0 chapter 9) and HID class requests.
const REQ_GET_DESCRIPTOR: u8 = 6;
const REQ_SET_CONFIGURATION: u8 = 9;
const HID_SET_IDLE: u8 = 0x0a;
const HID_SET_PROTOCOL: u8 = 0x0b;
/// bmRequestType: device to host, standard, device.
const RT_IN_STANDARD_DEVICE: u8 = 0x80;
const RT_OUT_STANDARD_DEVICE: u8 = 0x00;
/// bmRequestType: host to device, class, interface.
const RT_OUT_CLASS_INTERFACE: u8 = 0x21;

/// Port speeds (PORTSC bits 10..14, protocol speed IDs of the default
/// mapping).
const SPEED_FULL: u8 = 1;
const SPEED_LOW: u8 = 2;
const SPEED_HIGH: u8 = 3;

/// Why the controller or a device could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Reads as all ones or its offsets point outside its registers.
    NotAController,
    /// A wait for the controller ran out of time.
    Timeout(&'static str),
    /// No memory for rings, contexts or buffers.
    NoMemory,
    /// A command or transfer completed with this completion code.
    Completion(&'static str, u8),
    /// The device gave something that makes no sense here.
    BadDevice(&'static str),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Error::NotAController => write!(f, "does not answer like an xHCI controller"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::NoMemory => write!(f, "out of memory"),
            Error::Completion(what, code) => write!(f, "{what} failed (completion code {code})"),
            Error::BadDevice(why) => write!(f, "{why}"),
        }
    }
}

/// Milliseconds elapsed, by the TSC (interrupts may be off: boot runs
/// this before they are on).
struct Deadline(u64);

impl Deadline {
    fn after_ms(ms: u64) -> Deadline {
        let per_ms = crate::time::tsc_khz().max(100_000);
        Deadline(crate::time::rdtsc().saturating_add(ms.saturating_mul(per_ms)))
    }

    fn passed(&self) -> bool {
        crate::time::rdtsc() >= self.0
    }
}

/// Spins until `done` or `ms` milliseconds pass.
fn wait(ms: u64, what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), Error> {
    let deadline = Deadline::after_ms(ms);
    loop {
        if done() {
            return Ok(());
        }
        if deadline.passed() {
            return Err(Error::Timeout(what));
        }
        core::hint::spin_loop();
    }
}

/// A producer ring (command or transfer): one page, a Link TRB at the end
/// back to the start that toggles the cycle bit.
struct Ring {
    buf: DmaBuffer,
    enqueue: usize,
    cycle: bool,
}

impl Ring {
    fn new() -> Result<Ring, Error> {
        let mut buf = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let mut link = Link::new();
        link.set_ring_segment_pointer(buf.phys()).set_toggle_cycle();
        // The link's cycle bit is set when the producer reaches it.
        let raw = link.into_raw();
        let at = (RING_TRBS - 1) * TRB_BYTES;
        for (i, word) in raw.iter().enumerate() {
            buf.write_u32(at + 4 * i, word & if i == 3 { !1 } else { !0 });
        }
        Ok(Ring {
            buf,
            enqueue: 0,
            cycle: true,
        })
    }

    fn phys(&self) -> u64 {
        self.buf.phys()
    }

    /// Writes `trb` (its cycle bit set to the producer's) and returns its
    /// bus address. The word with the cycle bit goes last: the controller
    /// must not see a half-written TRB as valid.
    fn push(&mut self, trb: [u32; 4]) -> u64 {
        let at = self.enqueue * TRB_BYTES;
        for (i, word) in trb.iter().enumerate().take(3) {
            self.buf.write_u32(at + 4 * i, *word);
        }
        fence(Ordering::SeqCst);
        self.buf
            .write_u32(at + 12, (trb[3] & !1) | u32::from(self.cycle));
        let phys = self.buf.phys() + at as u64;
        self.enqueue += 1;
        if self.enqueue == RING_TRBS - 1 {
            let link = (RING_TRBS - 1) * TRB_BYTES + 12;
            let word = self.buf.read_u32(link);
            fence(Ordering::SeqCst);
            self.buf
                .write_u32(link, (word & !1) | u32::from(self.cycle));
            self.cycle = !self.cycle;
            self.enqueue = 0;
        }
        phys
    }
}

/// The event ring: one segment, and its one-entry segment table.
struct EventRing {
    buf: DmaBuffer,
    table: DmaBuffer,
    dequeue: usize,
    cycle: bool,
}

impl EventRing {
    fn new() -> Result<EventRing, Error> {
        let buf = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let mut table = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        table.write_u32(0, buf.phys() as u32);
        table.write_u32(4, (buf.phys() >> 32) as u32);
        table.write_u32(8, RING_TRBS as u32);
        Ok(EventRing {
            buf,
            table,
            dequeue: 0,
            cycle: true,
        })
    }

    /// The next event the controller wrote, if any.
    fn pop(&mut self) -> Option<[u32; 4]> {
        let at = self.dequeue * TRB_BYTES;
        let control = self.buf.read_u32(at + 12);
        if (control & 1 != 0) != self.cycle {
            return None;
        }
        fence(Ordering::SeqCst);
        let trb = [
            self.buf.read_u32(at),
            self.buf.read_u32(at + 4),
            self.buf.read_u32(at + 8),
            control,
        ];
        self.dequeue += 1;
        if self.dequeue == RING_TRBS {
            self.dequeue = 0;
            self.cycle = !self.cycle;
        }
        Some(trb)
    }

    fn dequeue_phys(&self) -> u64 {
        self.buf.phys() + (self.dequeue * TRB_BYTES) as u64
    }
}

/// What enumeration learned about a device (for `lsusb`-like reports and
/// the tests).
#[derive(Clone, Copy, Debug)]
pub struct DeviceInfo {
    /// Root-hub port (1-based).
    pub port: u8,
    pub slot: u8,
    /// Protocol speed ID (1 full, 2 low, 3 high, 4 super).
    pub speed: u8,
    pub vendor: u16,
    pub product: u16,
    /// The device's class (0: see its interfaces).
    pub class: u8,
    pub mass_storage: bool,
    pub keyboard: bool,
}

/// An addressed device: its output context and endpoint 0's ring.
struct Device {
    info: DeviceInfo,
    _output: DmaBuffer,
    ep0: Ring,
}

/// A boot keyboard's interrupt IN endpoint with one transfer in flight.
struct Keyboard {
    slot: u8,
    dci: u8,
    ring: Ring,
    report: DmaBuffer,
    /// Bytes asked for per transfer.
    length: u32,
    last: BootReport,
    decoder: crate::drivers::keyboard::Decoder,
    /// A transfer failed: no more are queued.
    dead: bool,
}

/// A running xHCI controller.
pub struct Controller {
    regs: Mmio,
    op: u64,
    runtime: u64,
    doorbells: u64,
    ports: u8,
    slots: u8,
    /// 64-byte contexts (HCCPARAMS1.CSZ).
    wide_contexts: bool,
    dcbaa: DmaBuffer,
    _scratchpads: Vec<DmaBuffer>,
    commands: Ring,
    events: EventRing,
    control_buf: DmaBuffer,
    devices: Vec<Device>,
    keyboards: Vec<Keyboard>,
    /// Events that were not what anyone waited for (port changes...).
    pub stray_events: u64,
    /// Bytes the keyboards put into the console.
    pub keyboard_bytes: u64,
}

/// Completion codes that mean success for a transfer.
const CC_SUCCESS: u8 = 1;
const CC_SHORT_PACKET: u8 = 13;

fn completion_code(trb: &[u32; 4]) -> u8 {
    (trb[2] >> 24) as u8
}

fn trb_type(trb: &[u32; 4]) -> u8 {
    ((trb[3] >> 10) & 0x3f) as u8
}

impl Controller {
    /// Takes the controller whose registers are `regs` from the firmware,
    /// resets it and starts it with no device set up.
    pub fn start(regs: Mmio) -> Result<Controller, Error> {
        let first = regs.read32(CAP_LENGTH_VERSION);
        if first == u32::MAX {
            return Err(Error::NotAController);
        }
        let cap_length = u64::from(first & 0xff);
        let params1 = regs.read32(CAP_HCSPARAMS1);
        let params2 = regs.read32(CAP_HCSPARAMS2);
        let cparams1 = regs.read32(CAP_HCCPARAMS1);
        let op = cap_length;
        let doorbells = u64::from(regs.read32(CAP_DBOFF) & !3);
        let runtime = u64::from(regs.read32(CAP_RTSOFF) & !0x1f);
        let ports = (params1 >> 24) as u8;
        let slots = (params1 as u8).min(MAX_SLOTS);
        let wide_contexts = cparams1 & (1 << 2) != 0;
        let scratchpads = (((params2 >> 21) & 0x1f) << 5 | (params2 >> 27)) as usize;
        // Every register block inside the window, or this is not xHCI.
        let inside = |base: u64, len: u64| base.checked_add(len).is_some_and(|e| e <= regs.len());
        if cap_length < 0x20
            || slots == 0
            || !inside(op, OP_PORTS + u64::from(ports) * PORT_STRIDE)
            || !inside(runtime, IR0 + 0x20)
            || !inside(doorbells, 4 * (u64::from(slots) + 1))
        {
            return Err(Error::NotAController);
        }

        let xecp = u64::from(cparams1 >> 16) * 4;
        take_from_firmware(&regs, xecp);

        // Halt, then reset.
        let cmd = regs.read32(op + OP_USBCMD);
        regs.write32(op + OP_USBCMD, cmd & !USBCMD_RUN);
        wait(100, "the controller to halt", || {
            regs.read32(op + OP_USBSTS) & USBSTS_HALTED != 0
        })?;
        regs.write32(op + OP_USBCMD, USBCMD_RESET);
        wait(1000, "the controller reset", || {
            regs.read32(op + OP_USBCMD) & USBCMD_RESET == 0
                && regs.read32(op + OP_USBSTS) & USBSTS_NOT_READY == 0
        })?;
        if regs.read32(op + OP_PAGESIZE) & 1 == 0 {
            return Err(Error::BadDevice("no 4 KiB page size"));
        }

        let mut dcbaa = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let mut pages = Vec::new();
        if scratchpads > 0 {
            // The array (one 8-byte pointer each, up to 1023: 2 pages),
            // then the pages it points to.
            let mut array =
                DmaBuffer::new((scratchpads * 8).div_ceil(4096)).ok_or(Error::NoMemory)?;
            for i in 0..scratchpads {
                let page = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
                array.write_u32(i * 8, page.phys() as u32);
                array.write_u32(i * 8 + 4, (page.phys() >> 32) as u32);
                try_push(&mut pages, page).map_err(|_| Error::NoMemory)?;
            }
            dcbaa.write_u32(0, array.phys() as u32);
            dcbaa.write_u32(4, (array.phys() >> 32) as u32);
            try_push(&mut pages, array).map_err(|_| Error::NoMemory)?;
        }
        let commands = Ring::new()?;
        let events = EventRing::new()?;
        let control_buf = DmaBuffer::new(CONTROL_BUFFER / 4096).ok_or(Error::NoMemory)?;

        let config = regs.read32(op + OP_CONFIG);
        regs.write32(op + OP_CONFIG, (config & !0xff) | u32::from(slots));
        regs.write64(op + OP_DCBAAP, dcbaa.phys());
        regs.write64(op + OP_CRCR, commands.phys() | 1);
        let ir = runtime + IR0;
        regs.write32(ir + IR_ERSTSZ, 1);
        regs.write64(ir + IR_ERDP, events.dequeue_phys());
        regs.write64(ir + IR_ERSTBA, events.table.phys());
        // Interrupts stay off (USBCMD.INTE clear): the rings are polled.
        regs.write32(op + OP_USBCMD, USBCMD_RUN);
        wait(100, "the controller to run", || {
            regs.read32(op + OP_USBSTS) & USBSTS_HALTED == 0
        })?;
        Ok(Controller {
            regs,
            op,
            runtime,
            doorbells,
            ports,
            slots,
            wide_contexts,
            dcbaa,
            _scratchpads: pages,
            commands,
            events,
            control_buf,
            devices: Vec::new(),
            keyboards: Vec::new(),
            stray_events: 0,
            keyboard_bytes: 0,
        })
    }

    /// Root-hub ports.
    pub fn ports(&self) -> u8 {
        self.ports
    }

    /// The devices enumerated.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceInfo> {
        self.devices.iter().map(|d| &d.info)
    }

    /// Keyboards taking keys.
    pub fn keyboards(&self) -> usize {
        self.keyboards.iter().filter(|k| !k.dead).count()
    }

    fn portsc(&self, port: u8) -> u64 {
        self.op + OP_PORTS + u64::from(port - 1) * PORT_STRIDE
    }

    fn ring_doorbell(&self, slot: u8, target: u32) {
        fence(Ordering::SeqCst);
        self.regs
            .write32(self.doorbells + 4 * u64::from(slot), target);
    }

    /// Tells the controller events up to the dequeue pointer are handled.
    fn update_dequeue(&self) {
        self.regs.write64(
            self.runtime + IR0 + IR_ERDP,
            self.events.dequeue_phys() | ERDP_BUSY,
        );
    }

    /// Handles every pending event; `want` picks the one a caller waits
    /// for (returned), everything else is dispatched (keyboard reports)
    /// or counted.
    fn drain(&mut self, want: &mut dyn FnMut(&[u32; 4]) -> bool) -> Option<[u32; 4]> {
        let mut found = None;
        let mut any = false;
        while let Some(trb) = self.events.pop() {
            any = true;
            if found.is_none() && want(&trb) {
                found = Some(trb);
                continue;
            }
            self.dispatch(&trb);
        }
        if any {
            self.update_dequeue();
        }
        found
    }

    /// Polls the event ring (the timer tick's work).
    pub fn poll(&mut self) {
        self.drain(&mut |_| false);
    }

    /// Waits up to `ms` for the event `want` picks.
    fn wait_event(
        &mut self,
        ms: u64,
        what: &'static str,
        want: &mut dyn FnMut(&[u32; 4]) -> bool,
    ) -> Result<[u32; 4], Error> {
        let deadline = Deadline::after_ms(ms);
        loop {
            if let Some(trb) = self.drain(want) {
                return Ok(trb);
            }
            if deadline.passed() {
                return Err(Error::Timeout(what));
            }
            core::hint::spin_loop();
        }
    }

    /// Runs one command; its completion event.
    fn command(&mut self, trb: [u32; 4], what: &'static str) -> Result<[u32; 4], Error> {
        let phys = self.commands.push(trb);
        self.ring_doorbell(0, 0);
        let event = self.wait_event(1000, what, &mut |e| {
            matches!(
                event::Allowed::try_from(*e),
                Ok(event::Allowed::CommandCompletion(c)) if c.command_trb_pointer() == phys
            )
        })?;
        match completion_code(&event) {
            CC_SUCCESS => Ok(event),
            code => Err(Error::Completion(what, code)),
        }
    }

    fn dispatch(&mut self, trb: &[u32; 4]) {
        if let Ok(event::Allowed::TransferEvent(t)) = event::Allowed::try_from(*trb) {
            let (slot, dci) = (t.slot_id(), t.endpoint_id());
            if let Some(i) = self
                .keyboards
                .iter()
                .position(|k| k.slot == slot && k.dci == dci && !k.dead)
            {
                self.keyboard_report(i, completion_code(trb), t.trb_transfer_length());
                return;
            }
        }
        self.stray_events += 1;
    }

    /// A keyboard transfer completed: decode the report, queue the next.
    fn keyboard_report(&mut self, i: usize, code: u8, residue: u32) {
        let Some(k) = self.keyboards.get_mut(i) else {
            return;
        };
        if code != CC_SUCCESS && code != CC_SHORT_PACKET {
            log::warn!("usb: keyboard in slot {}: transfer failed (completion code {code}); it is ignored from now on", k.slot);
            k.dead = true;
            return;
        }
        let got = k.length.saturating_sub(residue).min(8) as usize;
        let mut bytes = [0u8; 8];
        k.report.read_bytes(0, &mut bytes[..got]);
        let mut pushed = 0u64;
        if let Some(report) = BootReport::parse(&bytes[..got]) {
            let decoder = &mut k.decoder;
            let mut scancode = |b: u8| {
                decoder.feed(b, &mut |byte| {
                    pushed += 1;
                    crate::proc::console::push(byte);
                })
            };
            desc::key_changes(&k.last, &report, &mut |usage, pressed| {
                desc::set1_bytes(usage, pressed, &mut scancode)
            });
            k.last = report;
        }
        self.keyboard_bytes += pushed;
        self.queue_keyboard_transfer(i);
    }

    fn queue_keyboard_transfer(&mut self, i: usize) {
        let Some(k) = self.keyboards.get_mut(i) else {
            return;
        };
        let mut normal = transfer::Normal::new();
        normal
            .set_data_buffer_pointer(k.report.phys())
            .set_trb_transfer_length(k.length)
            .set_interrupt_on_short_packet()
            .set_interrupt_on_completion();
        k.ring.push(normal.into_raw());
        let (slot, dci) = (k.slot, k.dci);
        self.ring_doorbell(slot, u32::from(dci));
    }

    /// Context bytes: 32, or 64 with CSZ.
    fn context_bytes(&self) -> usize {
        if self.wide_contexts {
            64
        } else {
            32
        }
    }

    /// Fills an input context (of the controller's context size) with
    /// `fill` and copies it to a fresh DMA page.
    fn input_context(&self, fill: impl FnOnce(&mut dyn InputHandler)) -> Result<DmaBuffer, Error> {
        let mut page = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let size = self.context_bytes();
        let mut write = |ctx: &dyn InputHandler| {
            let mut put = |index: usize, words: &[u32]| {
                for (w, value) in words.iter().enumerate() {
                    page.write_u32(index * size + 4 * w, *value);
                }
            };
            put(0, ctx.control().as_ref());
            put(1, ctx.device().slot().as_ref());
            for dci in 1..=31 {
                put(1 + dci, ctx.device().endpoint(dci).as_ref());
            }
        };
        if self.wide_contexts {
            let mut ctx = Input64Byte::new_64byte();
            fill(&mut ctx);
            write(&ctx);
        } else {
            let mut ctx = Input32Byte::new_32byte();
            fill(&mut ctx);
            write(&ctx);
        }
        Ok(page)
    }

    /// Resets `port` if it needs it (USB 2) and returns its speed, or
    /// `None` if nothing usable is there.
    fn reset_port(&mut self, port: u8) -> Result<Option<u8>, Error> {
        let reg = self.portsc(port);
        let sc = self.regs.read32(reg);
        if sc == u32::MAX || sc & PORT_CONNECTED == 0 {
            return Ok(None);
        }
        if sc & PORT_ENABLED == 0 {
            self.regs
                .write32(reg, (sc & PORT_PRESERVE) | PORT_RESET | PORT_CHANGES);
            let regs = self.regs;
            wait(500, "a port reset", || {
                regs.read32(reg) & PORT_RESET_CHANGE != 0
            })?;
        }
        let sc = self.regs.read32(reg);
        // Clear the change bits (connect, reset...), keeping the rest.
        self.regs
            .write32(reg, (sc & PORT_PRESERVE) | (sc & PORT_CHANGES));
        if sc & PORT_ENABLED == 0 || sc & PORT_CONNECTED == 0 {
            return Ok(None);
        }
        let speed = ((sc >> 10) & 0xf) as u8;
        Ok((1..=5).contains(&speed).then_some(speed))
    }

    /// A control transfer on `device`'s endpoint 0. `data`: bytes asked
    /// for (IN) or sent from the control buffer (OUT), at most
    /// [`CONTROL_BUFFER`]. IN data lands in `control_buf`.
    fn control(
        &mut self,
        device: usize,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        length: u16,
    ) -> Result<(), Error> {
        let length = length.min(CONTROL_BUFFER as u16);
        let input = request_type & 0x80 != 0;
        if input {
            for off in (0..usize::from(length).next_multiple_of(4)).step_by(4) {
                self.control_buf.write_u32(off, 0);
            }
        }
        let buf = self.control_buf.phys();
        let Some(dev) = self.devices.get_mut(device) else {
            return Err(Error::BadDevice("no such device"));
        };
        let slot = dev.info.slot;
        let mut setup = transfer::SetupStage::new();
        setup
            .set_request_type(request_type)
            .set_request(request)
            .set_value(value)
            .set_index(index)
            .set_length(length)
            .set_transfer_type(match (length, input) {
                (0, _) => transfer::TransferType::No,
                (_, true) => transfer::TransferType::In,
                (_, false) => transfer::TransferType::Out,
            });
        dev.ep0.push(setup.into_raw());
        if length > 0 {
            let mut data = transfer::DataStage::new();
            data.set_data_buffer_pointer(buf)
                .set_trb_transfer_length(u32::from(length))
                .set_direction(if input {
                    transfer::Direction::In
                } else {
                    transfer::Direction::Out
                });
            dev.ep0.push(data.into_raw());
        }
        let mut status = transfer::StatusStage::new();
        // The status stage goes the other way from the data (IN if none).
        if !input || length == 0 {
            status.set_direction();
        }
        status.set_interrupt_on_completion();
        let status_phys = dev.ep0.push(status.into_raw());
        self.ring_doorbell(slot, 1);
        let event = self.wait_event(1000, "a control transfer", &mut |e| {
            trb_type(e) == 32 && (e[3] >> 24) as u8 == slot && ((e[3] >> 16) & 0x1f) == 1
        })?;
        let pointer = u64::from(event[0]) | u64::from(event[1]) << 32;
        match completion_code(&event) {
            CC_SUCCESS | CC_SHORT_PACKET if pointer == status_phys => Ok(()),
            CC_SUCCESS | CC_SHORT_PACKET => {
                // An event for the data stage (short packet): the status
                // stage's follows.
                self.wait_event(1000, "a control transfer's status", &mut |e| {
                    trb_type(e) == 32 && u64::from(e[0]) | u64::from(e[1]) << 32 == status_phys
                })
                .map(|_| ())
            }
            code => Err(Error::Completion("a control transfer", code)),
        }
    }

    /// GET_DESCRIPTOR into `out` (clipped); the bytes read.
    fn get_descriptor(
        &mut self,
        device: usize,
        kind: u8,
        index: u8,
        out: &mut [u8],
    ) -> Result<(), Error> {
        let len = out.len().min(CONTROL_BUFFER) as u16;
        self.control(
            device,
            RT_IN_STANDARD_DEVICE,
            REQ_GET_DESCRIPTOR,
            u16::from(kind) << 8 | u16::from(index),
            0,
            len,
        )?;
        self.control_buf.read_bytes(0, out);
        Ok(())
    }

    /// Sets up whatever is connected to every root-hub port. A device that
    /// fails is logged and skipped.
    pub fn enumerate(&mut self) {
        for port in 1..=self.ports {
            match self.enumerate_port(port) {
                Ok(Some(info)) => log::info!(
                    "usb: port {port}: {:04x}:{:04x} {} speed{}{}",
                    info.vendor,
                    info.product,
                    match info.speed {
                        SPEED_FULL => "full",
                        SPEED_LOW => "low",
                        SPEED_HIGH => "high",
                        _ => "super",
                    },
                    if info.keyboard { ", boot keyboard" } else { "" },
                    if info.mass_storage {
                        ", mass storage"
                    } else {
                        ""
                    },
                ),
                Ok(None) => {}
                Err(e) => log::warn!("usb: port {port}: {e}"),
            }
        }
    }

    fn enumerate_port(&mut self, port: u8) -> Result<Option<DeviceInfo>, Error> {
        let Some(speed) = self.reset_port(port)? else {
            return Ok(None);
        };
        let event = self.command(command::EnableSlot::new().into_raw(), "Enable Slot")?;
        let slot = (event[3] >> 24) as u8;
        if slot == 0 || slot > self.slots {
            return Err(Error::BadDevice("the controller gave a slot out of range"));
        }
        let output = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let ep0 = Ring::new()?;
        let (ep0_phys, output_phys) = (ep0.phys(), output.phys());
        let packet0: u16 = match speed {
            SPEED_LOW | SPEED_FULL => 8,
            SPEED_HIGH => 64,
            _ => 512,
        };
        let input = self.input_context(|ctx| {
            ctx.control_mut().set_add_context_flag(0);
            ctx.control_mut().set_add_context_flag(1);
            let slot_ctx = ctx.device_mut().slot_mut();
            slot_ctx.set_root_hub_port_number(port);
            slot_ctx.set_route_string(0);
            slot_ctx.set_speed(speed);
            slot_ctx.set_context_entries(1);
            let ep = ctx.device_mut().endpoint_mut(1);
            ep.set_endpoint_type(EndpointType::Control);
            ep.set_max_packet_size(packet0);
            ep.set_error_count(3);
            ep.set_tr_dequeue_pointer(ep0_phys);
            ep.set_dequeue_cycle_state();
            ep.set_average_trb_length(8);
        })?;
        self.dcbaa
            .write_u32(usize::from(slot) * 8, output_phys as u32);
        self.dcbaa
            .write_u32(usize::from(slot) * 8 + 4, (output_phys >> 32) as u32);
        let mut address = command::AddressDevice::new();
        address
            .set_input_context_pointer(input.phys())
            .set_slot_id(slot);
        self.command(address.into_raw(), "Address Device")?;
        let info = DeviceInfo {
            port,
            slot,
            speed,
            vendor: 0,
            product: 0,
            class: 0,
            mass_storage: false,
            keyboard: false,
        };
        try_push(
            &mut self.devices,
            Device {
                info,
                _output: output,
                ep0,
            },
        )
        .map_err(|_| Error::NoMemory)?;
        let device = self.devices.len() - 1;

        // The first 8 bytes tell endpoint 0's packet size.
        let mut prefix = [0u8; 8];
        self.get_descriptor(device, desc::DESC_DEVICE, 0, &mut prefix)?;
        let mps =
            desc::max_packet_size0(&prefix).ok_or(Error::BadDevice("no device descriptor"))?;
        let mut raw = [0u8; 18];
        if speed <= SPEED_HIGH && u16::from(mps) != packet0 && mps != 0 {
            let input = self.input_context(|ctx| {
                ctx.control_mut().set_add_context_flag(1);
                ctx.device_mut()
                    .endpoint_mut(1)
                    .set_max_packet_size(u16::from(mps));
            })?;
            let mut evaluate = command::EvaluateContext::new();
            evaluate
                .set_input_context_pointer(input.phys())
                .set_slot_id(slot);
            self.command(evaluate.into_raw(), "Evaluate Context")?;
        }
        self.get_descriptor(device, desc::DESC_DEVICE, 0, &mut raw)?;
        let dd = DeviceDescriptor::parse(&raw).ok_or(Error::BadDevice("bad device descriptor"))?;

        let mut header = [0u8; 9];
        self.get_descriptor(device, desc::DESC_CONFIGURATION, 0, &mut header)?;
        let ch = desc::ConfigHeader::parse(&header)
            .ok_or(Error::BadDevice("bad configuration descriptor"))?;
        let total = usize::from(ch.total_length).clamp(9, 1024);
        let mut config = [0u8; 1024];
        self.get_descriptor(device, desc::DESC_CONFIGURATION, 0, &mut config[..total])?;
        let config = &config[..total];
        let keyboard = desc::find_boot_keyboard(config);
        let info = DeviceInfo {
            vendor: dd.vendor,
            product: dd.product,
            class: dd.class,
            mass_storage: dd.class == desc::CLASS_MASS_STORAGE
                || desc::has_interface_class(config, desc::CLASS_MASS_STORAGE),
            keyboard: keyboard.is_some(),
            ..info
        };
        self.devices[device].info = info;
        if let Some((interface, endpoint)) = keyboard {
            self.set_up_keyboard(device, ch.value, interface, endpoint)?;
        }
        Ok(Some(info))
    }

    fn set_up_keyboard(
        &mut self,
        device: usize,
        configuration: u8,
        interface: desc::Interface,
        endpoint: desc::Endpoint,
    ) -> Result<(), Error> {
        let info = self.devices[device].info;
        self.control(
            device,
            RT_OUT_STANDARD_DEVICE,
            REQ_SET_CONFIGURATION,
            u16::from(configuration),
            0,
            0,
        )?;
        let iface = u16::from(interface.number);
        // Boot protocol (0), and reports only when something changes.
        self.control(
            device,
            RT_OUT_CLASS_INTERFACE,
            HID_SET_PROTOCOL,
            0,
            iface,
            0,
        )?;
        // SET_IDLE is optional for a keyboard: a stall here is no error.
        let _ = self.control(device, RT_OUT_CLASS_INTERFACE, HID_SET_IDLE, 0, iface, 0);

        let ring = Ring::new()?;
        let report = DmaBuffer::new(1).ok_or(Error::NoMemory)?;
        let dci = endpoint.dci();
        let ring_phys = ring.phys();
        let packet = endpoint.max_packet_size;
        let interval = desc::xhci_interval(
            endpoint.interval,
            matches!(info.speed, SPEED_FULL | SPEED_LOW),
        );
        let input = self.input_context(|ctx| {
            ctx.control_mut().set_add_context_flag(0);
            ctx.control_mut().set_add_context_flag(dci);
            let slot_ctx = ctx.device_mut().slot_mut();
            slot_ctx.set_root_hub_port_number(info.port);
            slot_ctx.set_speed(info.speed);
            slot_ctx.set_context_entries(dci as u8);
            let ep = ctx.device_mut().endpoint_mut(dci);
            ep.set_endpoint_type(EndpointType::InterruptIn);
            ep.set_max_packet_size(packet);
            ep.set_interval(interval);
            ep.set_error_count(3);
            ep.set_tr_dequeue_pointer(ring_phys);
            ep.set_dequeue_cycle_state();
            ep.set_average_trb_length(8);
            ep.set_max_endpoint_service_time_interval_payload_low(packet);
        })?;
        let mut configure = command::ConfigureEndpoint::new();
        configure
            .set_input_context_pointer(input.phys())
            .set_slot_id(info.slot);
        self.command(configure.into_raw(), "Configure Endpoint")?;
        try_push(
            &mut self.keyboards,
            Keyboard {
                slot: info.slot,
                dci: dci as u8,
                ring,
                report,
                length: u32::from(packet.min(64)),
                last: BootReport::default(),
                decoder: crate::drivers::keyboard::Decoder::new(),
                dead: false,
            },
        )
        .map_err(|_| Error::NoMemory)?;
        self.queue_keyboard_transfer(self.keyboards.len() - 1);
        Ok(())
    }
}

/// The BIOS/OS handoff: asks the firmware to let go of the controller
/// (it stops emulating a PS/2 keyboard through SMIs) and turns its SMIs
/// off. A firmware that does not answer within a second is overruled, as
/// Linux does.
fn take_from_firmware(regs: &Mmio, first: u64) {
    let mut at = first;
    // The list is at most a few entries; a loop in it must not hang us.
    for _ in 0..64 {
        if at == 0 || at >= regs.len() {
            return;
        }
        let cap = regs.read32(at);
        if cap == u32::MAX {
            return;
        }
        if cap & 0xff == XCAP_LEGACY {
            if cap & LEGACY_BIOS_OWNED != 0 {
                regs.write32(at, cap | LEGACY_OS_OWNED);
                if wait(1000, "the firmware", || {
                    regs.read32(at) & LEGACY_BIOS_OWNED == 0
                })
                .is_err()
                {
                    log::warn!("usb: the firmware did not release the xHCI controller; taking it");
                    regs.write32(at, (regs.read32(at) & !LEGACY_BIOS_OWNED) | LEGACY_OS_OWNED);
                }
            }
            let control = regs.read32(at + 4);
            regs.write32(at + 4, (control & LEGACY_DISABLE_SMI) | LEGACY_SMI_EVENTS);
            return;
        }
        let next = u64::from((cap >> 8) & 0xff) * 4;
        if next == 0 {
            return;
        }
        at += next;
    }
}
