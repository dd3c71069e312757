//! USB formats the kernel's USB drivers read from devices: the standard
//! descriptors (device, configuration, interface, endpoint) and the HID
//! boot-protocol keyboard report, with its keys turned into the PC's
//! scancode set 1 (what the PS/2 keyboard driver already decodes).
//!
//! Everything here comes from a device, so nothing is trusted: every
//! length is checked against the bytes actually there, a descriptor that
//! claims to be shorter than its header or to run past the end ends the
//! walk, and an odd value is skipped, never a panic.

/// Descriptor types (USB 2.0, table 9-5).
pub const DESC_DEVICE: u8 = 1;
/// Configuration descriptor type.
pub const DESC_CONFIGURATION: u8 = 2;
/// Interface descriptor type.
pub const DESC_INTERFACE: u8 = 4;
/// Endpoint descriptor type.
pub const DESC_ENDPOINT: u8 = 5;

/// Interface class: HID.
pub const CLASS_HID: u8 = 3;
/// Interface class: mass storage.
pub const CLASS_MASS_STORAGE: u8 = 8;
/// HID subclass: supports the boot protocol.
pub const HID_SUBCLASS_BOOT: u8 = 1;
/// HID boot protocol: keyboard.
pub const HID_PROTOCOL_KEYBOARD: u8 = 1;

/// The standard device descriptor (18 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDescriptor {
    /// bcdUSB.
    pub usb_version: u16,
    /// bDeviceClass (0: per interface).
    pub class: u8,
    /// bDeviceSubClass.
    pub subclass: u8,
    /// bDeviceProtocol.
    pub protocol: u8,
    /// bMaxPacketSize0: endpoint 0's packet size (for USB 3, a power of 2).
    pub max_packet_size0: u8,
    /// idVendor.
    pub vendor: u16,
    /// idProduct.
    pub product: u16,
    /// bNumConfigurations.
    pub configurations: u8,
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

impl DeviceDescriptor {
    /// Parses a device descriptor: `None` unless `bytes` holds all 18
    /// bytes of one (type 1, bLength at least 18).
    pub fn parse(bytes: &[u8]) -> Option<DeviceDescriptor> {
        if bytes.len() < 18 || bytes[0] < 18 || bytes[1] != DESC_DEVICE {
            return None;
        }
        Some(DeviceDescriptor {
            usb_version: le16(bytes, 2)?,
            class: bytes[4],
            subclass: bytes[5],
            protocol: bytes[6],
            max_packet_size0: bytes[7],
            vendor: le16(bytes, 8)?,
            product: le16(bytes, 10)?,
            configurations: bytes[17],
        })
    }

    /// Endpoint 0's packet size in bytes as the xHCI endpoint context
    /// wants it: USB 3 devices give an exponent (9 = 512 bytes).
    pub fn ep0_packet_bytes(&self) -> u16 {
        let raw = self.max_packet_size0;
        if self.usb_version >= 0x0300 {
            if raw < 16 {
                1 << raw
            } else {
                512
            }
        } else {
            u16::from(raw)
        }
    }
}

/// The first 8 bytes of a device descriptor are enough for bMaxPacketSize0
/// (what the first, short, request reads).
pub fn max_packet_size0(prefix: &[u8]) -> Option<u8> {
    if prefix.len() < 8 || prefix[1] != DESC_DEVICE || prefix[0] < 8 {
        return None;
    }
    Some(prefix[7])
}

/// The configuration descriptor's header (9 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigHeader {
    /// wTotalLength: this descriptor and every one that follows it.
    pub total_length: u16,
    /// bNumInterfaces.
    pub interfaces: u8,
    /// bConfigurationValue (what SET_CONFIGURATION takes).
    pub value: u8,
}

impl ConfigHeader {
    /// Parses the header: `None` unless `bytes` starts with a whole one.
    pub fn parse(bytes: &[u8]) -> Option<ConfigHeader> {
        if bytes.len() < 9 || bytes[0] < 9 || bytes[1] != DESC_CONFIGURATION {
            return None;
        }
        Some(ConfigHeader {
            total_length: le16(bytes, 2)?,
            interfaces: bytes[4],
            value: bytes[5],
        })
    }
}

/// An interface descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alternate: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
}

impl Interface {
    /// A HID keyboard that speaks the boot protocol.
    pub fn is_boot_keyboard(&self) -> bool {
        self.class == CLASS_HID
            && self.subclass == HID_SUBCLASS_BOOT
            && self.protocol == HID_PROTOCOL_KEYBOARD
    }
}

/// An endpoint descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// bEndpointAddress: number in bits 0..4, bit 7 set for IN.
    pub address: u8,
    /// bmAttributes: transfer type in bits 0..2.
    pub attributes: u8,
    /// wMaxPacketSize bits 0..11 (the packet size; bits 11..13 are extra
    /// transactions per microframe).
    pub max_packet_size: u16,
    /// bInterval.
    pub interval: u8,
}

impl Endpoint {
    /// The endpoint number (1..=15 for anything but endpoint 0).
    pub fn number(&self) -> u8 {
        self.address & 0x0f
    }

    /// Device to host.
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// An interrupt endpoint.
    pub fn is_interrupt(&self) -> bool {
        self.attributes & 3 == 3
    }

    /// The xHCI Device Context Index: 2 * number, + 1 for IN.
    pub fn dci(&self) -> usize {
        usize::from(self.number()) * 2 + usize::from(self.is_in())
    }
}

/// One descriptor of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// An interface (what follows belongs to it).
    Interface(Interface),
    /// An endpoint of the last interface.
    Endpoint(Endpoint),
    /// Anything else (class-specific, or too short to be what its type
    /// says): its type.
    Other(u8),
}

/// The descriptors of a configuration (the bytes GET_DESCRIPTOR returned,
/// header included), in order. Stops at the first malformed one: a
/// bLength under 2 or past the end (of the bytes, or of wTotalLength).
pub struct Descriptors<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Walks `config`, a configuration descriptor and what follows it.
pub fn descriptors(config: &[u8]) -> Descriptors<'_> {
    let end = match ConfigHeader::parse(config) {
        Some(h) => config.len().min(usize::from(h.total_length)),
        None => 0,
    };
    Descriptors {
        bytes: &config[..end],
        at: 0,
    }
}

impl Iterator for Descriptors<'_> {
    type Item = Descriptor;

    fn next(&mut self) -> Option<Descriptor> {
        let rest = self.bytes.get(self.at..)?;
        let len = usize::from(*rest.first()?);
        if len < 2 || len > rest.len() {
            self.at = self.bytes.len();
            return None;
        }
        self.at += len;
        let d = &rest[..len];
        Some(match d[1] {
            DESC_INTERFACE if len >= 9 => Descriptor::Interface(Interface {
                number: d[2],
                alternate: d[3],
                class: d[5],
                subclass: d[6],
                protocol: d[7],
            }),
            DESC_ENDPOINT if len >= 7 => Descriptor::Endpoint(Endpoint {
                address: d[2],
                attributes: d[3],
                max_packet_size: u16::from_le_bytes([d[4], d[5]]) & 0x7ff,
                interval: d[6],
            }),
            other => Descriptor::Other(other),
        })
    }
}

/// The first boot-protocol keyboard interface (alternate setting 0) of a
/// configuration and its interrupt IN endpoint (with a packet size of at
/// least 1 byte), if any.
pub fn find_boot_keyboard(config: &[u8]) -> Option<(Interface, Endpoint)> {
    let mut current: Option<Interface> = None;
    for d in descriptors(config) {
        match d {
            Descriptor::Interface(i) => current = Some(i),
            Descriptor::Endpoint(e) => {
                if let Some(i) = current {
                    if i.is_boot_keyboard()
                        && i.alternate == 0
                        && e.is_in()
                        && e.is_interrupt()
                        && e.number() != 0
                        && e.max_packet_size > 0
                    {
                        return Some((i, e));
                    }
                }
            }
            Descriptor::Other(_) => {}
        }
    }
    None
}

/// Whether a configuration has an interface of `class`.
pub fn has_interface_class(config: &[u8], class: u8) -> bool {
    descriptors(config).any(|d| matches!(d, Descriptor::Interface(i) if i.class == class))
}

/// The xHCI endpoint context Interval (2^Interval × 125 µs) for an
/// interrupt endpoint's bInterval: frames (1 ms) for full and low speed,
/// 2^(bInterval-1) microframes for high and super speed. Clamped to what
/// the field allows.
pub fn xhci_interval(b_interval: u8, full_or_low_speed: bool) -> u8 {
    if full_or_low_speed {
        // 1 ms = 8 microframes = 2^3; bInterval ms -> log2(8 * bInterval).
        let frames = u32::from(b_interval.max(1));
        let exponent = 31 - (frames * 8).leading_zeros();
        exponent.clamp(3, 10) as u8
    } else {
        b_interval.clamp(1, 16) - 1
    }
}

/// A HID boot-protocol keyboard report: modifier bits and up to six keys
/// held (usage IDs of the keyboard page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootReport {
    /// Bit 0 left Ctrl, 1 left Shift, 2 left Alt, 3 left GUI, 4..8 the
    /// right ones.
    pub modifiers: u8,
    /// Keys held (0: none in this slot).
    pub keys: [u8; 6],
}

/// Usage IDs 1..=3 in every key slot: the keyboard cannot tell which keys
/// are down (too many held). Such a report changes nothing.
const ERROR_ROLL_OVER: u8 = 1;

impl BootReport {
    /// Parses a report: byte 0 modifiers, byte 1 reserved, bytes 2..8
    /// keys. A shorter report has fewer key slots; `None` for fewer than
    /// 2 bytes or a roll-over error report.
    pub fn parse(bytes: &[u8]) -> Option<BootReport> {
        if bytes.len() < 2 {
            return None;
        }
        let mut keys = [0u8; 6];
        let slots = bytes.get(2..).unwrap_or(&[]);
        for (k, &b) in keys.iter_mut().zip(slots) {
            *k = b;
        }
        if keys.iter().any(|&k| (ERROR_ROLL_OVER..=3).contains(&k)) {
            return None;
        }
        Some(BootReport {
            modifiers: bytes[0],
            keys,
        })
    }

    fn holds(&self, usage: u8) -> bool {
        usage != 0 && self.keys.contains(&usage)
    }
}

/// The key changes from `old` to `new`, in the order a keyboard would
/// send them: modifiers pressed, keys released, keys pressed, modifiers
/// released. Modifiers are reported as their usages 0xe0..=0xe7.
pub fn key_changes(old: &BootReport, new: &BootReport, emit: &mut dyn FnMut(u8, bool)) {
    for bit in 0..8u8 {
        if new.modifiers & !old.modifiers & (1 << bit) != 0 {
            emit(0xe0 + bit, true);
        }
    }
    for &k in &old.keys {
        if k != 0 && !new.holds(k) {
            emit(k, false);
        }
    }
    for (i, &k) in new.keys.iter().enumerate() {
        // A key listed twice in one report is pressed once.
        if k != 0 && !old.holds(k) && !new.keys[..i].contains(&k) {
            emit(k, true);
        }
    }
    for bit in 0..8u8 {
        if old.modifiers & !new.modifiers & (1 << bit) != 0 {
            emit(0xe0 + bit, false);
        }
    }
}

/// The PC scancode (set 1 make code, and whether it has the 0xe0 prefix)
/// of a HID keyboard usage, for the keys a US keyboard's console uses;
/// `None` for the rest.
pub fn set1_scancode(usage: u8) -> Option<(bool, u8)> {
    /// Letters a..z in usage order.
    const LETTERS: [u8; 26] = [
        0x1e, 0x30, 0x2e, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32, 0x31, 0x18,
        0x19, 0x10, 0x13, 0x1f, 0x14, 0x16, 0x2f, 0x11, 0x2d, 0x15, 0x2c,
    ];
    /// Usages 0x28..=0x39: Enter, Esc, Backspace, Tab, Space, - = [ ] \
    /// (non-US #), ; ' ` , . / CapsLock.
    const PUNCT: [u8; 18] = [
        0x1c, 0x01, 0x0e, 0x0f, 0x39, 0x0c, 0x0d, 0x1a, 0x1b, 0x2b, 0x2b, 0x27, 0x28, 0x29, 0x33,
        0x34, 0x35, 0x3a,
    ];
    Some(match usage {
        0x04..=0x1d => (false, LETTERS[usize::from(usage - 0x04)]),
        // 1..9 then 0: set 1 codes 0x02..=0x0b in the same order.
        0x1e..=0x27 => (false, usage - 0x1e + 0x02),
        0x28..=0x39 => (false, PUNCT[usize::from(usage - 0x28)]),
        0x4a => (true, 0x47),  // Home
        0x4c => (true, 0x53),  // Delete
        0x4d => (true, 0x4f),  // End
        0x4f => (true, 0x4d),  // Right
        0x50 => (true, 0x4b),  // Left
        0x51 => (true, 0x50),  // Down
        0x52 => (true, 0x48),  // Up
        0x54 => (true, 0x35),  // keypad /
        0x58 => (true, 0x1c),  // keypad Enter
        0xe0 => (false, 0x1d), // left Ctrl
        0xe1 => (false, 0x2a), // left Shift
        0xe2 => (false, 0x38), // left Alt
        0xe4 => (true, 0x1d),  // right Ctrl
        0xe5 => (false, 0x36), // right Shift
        0xe6 => (true, 0x38),  // right Alt
        _ => return None,
    })
}

/// The set 1 bytes for one key change: the 0xe0 prefix if extended, then
/// the make code, or the break code (make | 0x80) on release.
pub fn set1_bytes(usage: u8, pressed: bool, emit: &mut dyn FnMut(u8)) {
    if let Some((extended, code)) = set1_scancode(usage) {
        if extended {
            emit(0xe0);
        }
        emit(if pressed { code } else { code | 0x80 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// QEMU's usb-kbd configuration: config, interface (HID boot
    /// keyboard), HID descriptor, interrupt IN endpoint 1.
    const KBD_CONFIG: [u8; 34] = [
        9, 2, 34, 0, 1, 1, 0, 0xa0, 50, // configuration
        9, 4, 0, 0, 1, 3, 1, 1, 0, // interface 0: HID boot keyboard
        9, 0x21, 0x11, 1, 0, 1, 0x22, 63, 0, // HID descriptor
        7, 5, 0x81, 3, 8, 0, 7, // endpoint 0x81, interrupt, 8 bytes, 7 ms
    ];

    #[test]
    fn finds_the_boot_keyboard_endpoint() {
        let (i, e) = find_boot_keyboard(&KBD_CONFIG).unwrap();
        assert_eq!(i.number, 0);
        assert_eq!(
            (e.number(), e.is_in(), e.max_packet_size, e.interval),
            (1, true, 8, 7)
        );
        assert_eq!(e.dci(), 3);
        assert!(has_interface_class(&KBD_CONFIG, CLASS_HID));
        assert!(!has_interface_class(&KBD_CONFIG, CLASS_MASS_STORAGE));
    }

    #[test]
    fn odd_configurations_end_the_walk_without_panic() {
        // Every truncation of a good configuration.
        for n in 0..KBD_CONFIG.len() {
            let _ = find_boot_keyboard(&KBD_CONFIG[..n]);
            let _ = descriptors(&KBD_CONFIG[..n]).count();
        }
        assert_eq!(find_boot_keyboard(&KBD_CONFIG[..33]), None);
        // wTotalLength shorter than the bytes: the rest is ignored.
        let mut short = KBD_CONFIG;
        short[2] = 27;
        assert_eq!(find_boot_keyboard(&short), None);
        // A zero bLength (would loop forever) and one past the end.
        let mut zero = KBD_CONFIG;
        zero[18] = 0;
        assert_eq!(descriptors(&zero).count(), 2);
        let mut long = KBD_CONFIG;
        long[27] = 200;
        assert_eq!(find_boot_keyboard(&long), None);
        // An endpoint descriptor too short to be one.
        let mut stub = KBD_CONFIG;
        stub[27] = 3;
        assert_eq!(find_boot_keyboard(&stub), None);
        // Not a configuration at all, or garbage.
        assert_eq!(descriptors(&[1, 2, 3]).count(), 0);
        assert_eq!(descriptors(&[0xff; 64]).count(), 0);
        // An OUT or bulk endpoint, or one of 0 bytes, is not the one.
        for (at, value) in [(29, 0x01), (30, 2), (31, 0)] {
            let mut bad = KBD_CONFIG;
            bad[at] = value;
            assert_eq!(find_boot_keyboard(&bad), None, "byte {at} = {value}");
        }
    }

    #[test]
    fn device_descriptor() {
        let d = [
            18, 1, 0x00, 0x02, 0, 0, 0, 64, 0x27, 0x06, 0x01, 0x00, 0, 0, 1, 2, 3, 1,
        ];
        let dev = DeviceDescriptor::parse(&d).unwrap();
        assert_eq!(
            (dev.vendor, dev.product, dev.max_packet_size0),
            (0x0627, 1, 64)
        );
        assert_eq!(dev.ep0_packet_bytes(), 64);
        assert_eq!(max_packet_size0(&d[..8]), Some(64));
        assert_eq!(DeviceDescriptor::parse(&d[..17]), None);
        let mut bad = d;
        bad[1] = 2;
        assert_eq!(DeviceDescriptor::parse(&bad), None);
        assert_eq!(max_packet_size0(&bad[..8]), None);
        let mut usb3 = d;
        usb3[3] = 3;
        usb3[7] = 9;
        assert_eq!(
            DeviceDescriptor::parse(&usb3).unwrap().ep0_packet_bytes(),
            512
        );
        usb3[7] = 200;
        assert_eq!(
            DeviceDescriptor::parse(&usb3).unwrap().ep0_packet_bytes(),
            512
        );
    }

    #[test]
    fn intervals() {
        assert_eq!(xhci_interval(7, true), 5); // 56 microframes -> 2^5
        assert_eq!(xhci_interval(1, true), 3);
        assert_eq!(xhci_interval(0, true), 3);
        assert_eq!(xhci_interval(255, true), 10);
        assert_eq!(xhci_interval(4, false), 3);
        assert_eq!(xhci_interval(0, false), 0);
        assert_eq!(xhci_interval(200, false), 15);
    }

    fn changes(old: &BootReport, new: &BootReport) -> Vec<(u8, bool)> {
        let mut v = Vec::new();
        key_changes(old, new, &mut |u, p| v.push((u, p)));
        v
    }

    #[test]
    fn reports_become_key_changes() {
        let none = BootReport::default();
        // Shift + h pressed, then h released, then shift released.
        let shift_h = BootReport::parse(&[0x02, 0, 0x0b, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(changes(&none, &shift_h), [(0xe1, true), (0x0b, true)]);
        let shift = BootReport::parse(&[0x02, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(changes(&shift_h, &shift), [(0x0b, false)]);
        assert_eq!(changes(&shift, &none), [(0xe1, false)]);
        // Rolling from a to b: b pressed after a is released.
        let a = BootReport::parse(&[0, 0, 0x04, 0, 0, 0, 0, 0]).unwrap();
        let ab = BootReport::parse(&[0, 0, 0x04, 0x05, 0, 0, 0, 0]).unwrap();
        let b = BootReport::parse(&[0, 0, 0x05, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(changes(&a, &ab), [(0x05, true)]);
        assert_eq!(changes(&ab, &b), [(0x04, false)]);
        // The same report again: nothing.
        assert_eq!(changes(&b, &b), []);
        // A key listed twice is pressed once.
        let twice = BootReport::parse(&[0, 0, 0x06, 0x06, 0, 0, 0, 0]).unwrap();
        assert_eq!(changes(&none, &twice), [(0x06, true)]);
    }

    #[test]
    fn odd_reports() {
        assert_eq!(BootReport::parse(&[]), None);
        assert_eq!(BootReport::parse(&[0]), None);
        // Roll-over error: ignored.
        assert_eq!(BootReport::parse(&[0, 0, 1, 1, 1, 1, 1, 1]), None);
        // Short and long reports.
        assert_eq!(
            BootReport::parse(&[0, 0, 0x04]).unwrap().keys,
            [4, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            BootReport::parse(&[0, 0, 1 + 3, 5, 6, 7, 8, 9, 10, 11])
                .unwrap()
                .keys,
            [4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn scancodes() {
        let bytes = |usage, pressed| {
            let mut v = Vec::new();
            set1_bytes(usage, pressed, &mut |b| v.push(b));
            v
        };
        assert_eq!(bytes(0x04, true), [0x1e]); // a
        assert_eq!(bytes(0x1d, false), [0xac]); // z released
        assert_eq!(bytes(0x1e, true), [0x02]); // 1
        assert_eq!(bytes(0x27, true), [0x0b]); // 0
        assert_eq!(bytes(0x28, true), [0x1c]); // Enter
        assert_eq!(bytes(0x2c, true), [0x39]); // Space
        assert_eq!(bytes(0x38, true), [0x35]); // /
        assert_eq!(bytes(0x52, true), [0xe0, 0x48]); // Up
        assert_eq!(bytes(0xe4, false), [0xe0, 0x9d]); // right Ctrl released
        assert_eq!(bytes(0xe1, true), [0x2a]); // left Shift
        assert_eq!(bytes(0xff, true), []);
        assert_eq!(bytes(0x00, true), []);
    }
}
