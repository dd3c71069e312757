//! Which machines each in-kernel test boots on.
//!
//! `tests/machines.txt` has one line per test kernel:
//! `name: bios-256M uefi-256M bios-4G timeout=120 swap=64M`. A machine may
//! add `-smpN` (N CPUs) and `-pc` or `-q35` (the chipset; q35 unless
//! said), and `-noacpi` (no ACPI tables), e.g. `uefi-256M-smp4-pc`. USB:
//! `-usbstick` boots the image from a USB stick (usb-storage on an xHCI
//! controller, no other disk), `-usbkbd` adds a USB keyboard on xHCI (keys
//! typed into it on the kernel's request, see `qemu`), `-xhci` an xHCI
//! controller with nothing plugged in. A test without a
//! line boots once, BIOS with 256 MiB. `swap=SIZE` attaches a blank virtio
//! disk of SIZE to every machine of the line; `bin=PATH` packs that file
//! (a path from the repository root) into the test's ramdisk as
//! `/bin/NAME`.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

#[derive(Clone)]
pub struct Machine {
    pub firmware: Firmware,
    /// QEMU `-m` value, e.g. `256M` or `8G`.
    pub memory: String,
    /// CPUs (`-smp`); 1 unless the spec says `-smpN`.
    pub cpus: u32,
    /// QEMU `-machine`: `q35` unless the spec says `-pc`.
    pub chipset: &'static str,
    /// No ACPI tables (`-noacpi`: QEMU's `acpi=off`), as on machines
    /// older than ACPI.
    pub no_acpi: bool,
    /// USB devices on a QEMU xHCI controller (`-usbstick`, `-usbkbd`,
    /// `-xhci`).
    pub usb: Usb,
    pub timeout_secs: Option<u64>,
    /// Bytes of the blank virtio-blk disk attached (the swap disk), if any.
    pub swap_bytes: Option<u64>,
    /// Files (paths from the repository root) the test's ramdisk adds to
    /// `/bin` (`bin=PATH`, once per file).
    pub bins: Vec<PathBuf>,
}

/// What hangs off the machine's xHCI controller (none of it: no controller).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Usb {
    /// An xHCI controller even with nothing plugged in (`-xhci`).
    pub controller: bool,
    /// The boot image is a USB stick on it, the machine's only disk.
    pub stick: bool,
    /// A USB keyboard on it (QEMU's `usb-kbd`).
    pub keyboard: bool,
}

impl Usb {
    /// Whether the machine has an xHCI controller at all.
    pub fn any(&self) -> bool {
        self.controller || self.stick || self.keyboard
    }
}

/// Every boot under TCG takes seconds; a test that runs this long is hung.
const DEFAULT_TIMEOUT_SECS: u64 = 90;

impl Machine {
    /// `FERRITE_TEST_TIMEOUT=SECONDS` in the environment overrides the
    /// listed timeout (long campaigns, e.g. `make fuzz`).
    pub fn timeout(&self) -> u64 {
        let env = std::env::var("FERRITE_TEST_TIMEOUT").ok();
        timeout_with(env.as_deref(), self.timeout_secs)
    }
}

fn timeout_with(env: Option<&str>, listed: Option<u64>) -> u64 {
    env.and_then(|v| v.trim().parse().ok())
        .filter(|&secs| secs > 0)
        .or(listed)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let firmware = match self.firmware {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        };
        write!(f, "{firmware} {}", self.memory)?;
        if self.cpus != 1 {
            write!(f, " {} CPUs", self.cpus)?;
        }
        if self.chipset != "q35" {
            write!(f, " {}", self.chipset)?;
        }
        if self.no_acpi {
            write!(f, " without ACPI")?;
        }
        if self.usb.stick {
            write!(f, " from a USB stick")?;
        }
        if self.usb.keyboard {
            write!(f, " + USB keyboard")?;
        }
        if self.usb.any() && !self.usb.stick && !self.usb.keyboard {
            write!(f, " + empty xHCI controller")?;
        }
        if let Some(bytes) = self.swap_bytes {
            write!(f, " + {} MiB swap disk", bytes >> 20)?;
        }
        Ok(())
    }
}

/// A disk size: bytes, or a number with a `K`, `M`, `G` or `T` suffix
/// (binary units, like QEMU's `-m`). It must be a non-zero whole number of
/// 512-byte sectors.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("bad size `{text}`, expected e.g. 512M or 2G");
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size `{text}` is too large"))?;
    if bytes == 0 || bytes % 512 != 0 {
        return Err(format!(
            "size `{text}` is not a non-zero multiple of 512 bytes"
        ));
    }
    Ok(bytes)
}

fn machines_file() -> PathBuf {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    PathBuf::from(root).join("tests/machines.txt")
}

pub fn for_test(name: &str) -> Result<Vec<Machine>, String> {
    let path = machines_file();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((test, specs)) = line.split_once(':') else {
            continue;
        };
        if test.trim() != name {
            continue;
        }
        return parse_specs(specs).map_err(|e| format!("{}:{}: {e}", path.display(), lineno + 1));
    }
    Ok(vec![Machine {
        firmware: Firmware::Bios,
        memory: "256M".into(),
        cpus: 1,
        chipset: "q35",
        no_acpi: false,
        usb: Usb::default(),
        timeout_secs: None,
        swap_bytes: None,
        bins: Vec::new(),
    }])
}

fn parse_specs(specs: &str) -> Result<Vec<Machine>, String> {
    let mut timeout = None;
    let mut swap = None;
    let mut bins = Vec::new();
    let mut machines = Vec::new();
    for spec in specs.split_whitespace() {
        if let Some(secs) = spec.strip_prefix("timeout=") {
            timeout = Some(secs.parse().map_err(|_| format!("bad timeout `{secs}`"))?);
            continue;
        }
        if let Some(size) = spec.strip_prefix("swap=") {
            swap = Some(parse_size(size)?);
            continue;
        }
        if let Some(path) = spec.strip_prefix("bin=") {
            if path.is_empty() {
                return Err("bin= needs a path".into());
            }
            bins.push(PathBuf::from(path));
            continue;
        }
        let (firmware, memory) = spec
            .split_once('-')
            .ok_or_else(|| format!("bad machine `{spec}`, expected e.g. bios-256M"))?;
        let firmware = match firmware {
            "bios" => Firmware::Bios,
            "uefi" => Firmware::Uefi,
            other => return Err(format!("unknown firmware `{other}`")),
        };
        let mut parts = memory.split('-');
        let memory = parts.next().unwrap_or("");
        let (mut cpus, mut chipset, mut no_acpi) = (1, "q35", false);
        let mut usb = Usb::default();
        for part in parts {
            if let Some(n) = part.strip_prefix("smp") {
                cpus = n
                    .parse()
                    .ok()
                    .filter(|&n| (1..=64).contains(&n))
                    .ok_or_else(|| format!("bad CPU count `{part}` in `{spec}`"))?;
            } else if part == "noacpi" {
                no_acpi = true;
            } else if part == "usbstick" {
                usb.stick = true;
            } else if part == "usbkbd" {
                usb.keyboard = true;
            } else if part == "xhci" {
                usb.controller = true;
            } else if part == "pc" || part == "q35" {
                chipset = if part == "pc" { "pc" } else { "q35" };
            } else {
                return Err(format!("unknown machine option `{part}` in `{spec}`"));
            }
        }
        machines.push(Machine {
            firmware,
            memory: memory.to_owned(),
            cpus,
            chipset,
            no_acpi,
            usb,
            timeout_secs: None,
            swap_bytes: None,
            bins: Vec::new(),
        });
    }
    if machines.is_empty() {
        return Err("no machines listed".into());
    }
    for machine in &mut machines {
        machine.timeout_secs = timeout;
        machine.swap_bytes = swap;
        machine.bins = bins.clone();
    }
    Ok(machines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_machines_and_timeout() {
        let machines = parse_specs(" bios-256M uefi-8G timeout=120").unwrap();
        assert_eq!(machines.len(), 2);
        assert!(machines[0].firmware == Firmware::Bios && machines[0].memory == "256M");
        assert!(machines[1].firmware == Firmware::Uefi && machines[1].memory == "8G");
        assert!(machines.iter().all(|m| m.timeout() == 120));
    }

    #[test]
    fn swap_disk_applies_to_every_machine_of_the_line() {
        let machines = parse_specs("bios-64M uefi-256M swap=512M").unwrap();
        assert!(machines.iter().all(|m| m.swap_bytes == Some(512 << 20)));
        let machines = parse_specs("bios-64M").unwrap();
        assert_eq!(machines[0].swap_bytes, None);
        assert!(parse_specs("bios-64M swap=lots").is_err());
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0M").is_err());
        assert!(parse_size("1000").is_err(), "not whole sectors");
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err(), "overflow");
    }

    #[test]
    fn bin_files_apply_to_every_machine_of_the_line() {
        let machines = parse_specs("bios-64M uefi-256M bin=target/a/busybox bin=x/y").unwrap();
        for m in &machines {
            assert_eq!(
                m.bins,
                [PathBuf::from("target/a/busybox"), PathBuf::from("x/y")]
            );
        }
        assert!(parse_specs("bios-64M bin=").is_err());
    }

    #[test]
    fn cpus_and_chipset() {
        let m = parse_specs("bios-256M uefi-256M-smp4-pc bios-64M-q35-smp2").unwrap();
        assert!(m[0].cpus == 1 && m[0].chipset == "q35" && m[0].memory == "256M");
        assert!(m[1].cpus == 4 && m[1].chipset == "pc" && m[1].memory == "256M");
        assert!(m[2].cpus == 2 && m[2].chipset == "q35" && m[2].memory == "64M");
        assert!(!m[1].no_acpi);
        let m = parse_specs("bios-256M-smp2-pc-noacpi").unwrap();
        assert!(m[0].no_acpi && m[0].cpus == 2 && m[0].chipset == "pc");
        assert!(parse_specs("bios-256M-smp0").is_err());
        assert!(parse_specs("bios-256M-smpx").is_err());
        assert!(parse_specs("bios-256M-isa").is_err());
    }

    #[test]
    fn usb_options() {
        let m =
            parse_specs("bios-256M-usbstick uefi-256M-usbkbd-smp2 bios-64M-xhci bios-64M").unwrap();
        assert!(m[0].usb.stick && !m[0].usb.keyboard && m[0].usb.any());
        assert!(m[1].usb.keyboard && !m[1].usb.stick && m[1].cpus == 2);
        assert!(m[2].usb.controller && m[2].usb.any() && !m[2].usb.stick);
        assert!(!m[3].usb.any());
        assert!(parse_specs("bios-256M-usb").is_err());
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(parse_specs("").is_err());
        assert!(parse_specs("coreboot-1G").is_err());
        assert!(parse_specs("bios256M").is_err());
        assert!(parse_specs("bios-1G timeout=soon").is_err());
    }

    #[test]
    fn environment_overrides_the_timeout() {
        assert_eq!(timeout_with(Some("7200"), Some(600)), 7200);
        assert_eq!(timeout_with(Some("7200"), None), 7200);
        assert_eq!(timeout_with(None, Some(600)), 600);
        // Empty, zero or garbage: the listed timeout stays.
        assert_eq!(timeout_with(Some(""), Some(600)), 600);
        assert_eq!(timeout_with(Some("0"), Some(600)), 600);
        assert_eq!(timeout_with(Some("soon"), None), DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn default_timeout_applies_without_one() {
        let machines = parse_specs("bios-64M").unwrap();
        assert_eq!(machines[0].timeout(), DEFAULT_TIMEOUT_SECS);
    }
}
