//! Booting an image in QEMU and turning its exit into a verdict.
//!
//! The kernel ends a run by writing to the `isa-debug-exit` port (0xf4); QEMU
//! then exits with `(value << 1) | 1`. Ferrite writes 0x10 for success (exit
//! code 33) and 0x11 for failure (35). Anything else, including a triple fault
//! (QEMU exits 0 under `-no-reboot`), is a failure.
//!
//! A test kernel on a machine with a USB keyboard (`-usbkbd`) asks for
//! keys with a serial line `ferrite-qemu: type TEXT` (see [`TYPE_REQUEST`]):
//! the runner then types TEXT on that keyboard through QEMU's QMP socket
//! (`input-send-event`; QEMU gives keys to the keyboard activated last,
//! the `usb-kbd`, not the chipset's PS/2 keyboard: aiming at the device by
//! id needs it bound to a display console, which a test has not), one key
//! down and up at a time. The test kernels check the bytes came through USB.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::machines::{Firmware, Machine};
use crate::Images;

pub const QEMU_EXIT_SUCCESS: i32 = (0x10 << 1) | 1;
pub const QEMU_EXIT_FAILURE: i32 = (0x11 << 1) | 1;

/// The serial line a test kernel prints to have the runner type the rest
/// of the line on the USB keyboard (the two characters `\n` type Enter).
pub const TYPE_REQUEST: &str = "ferrite-qemu: type ";

/// The QEMU id of the USB keyboard.
const USB_KEYBOARD_ID: &str = "usbkbd";

pub enum Mode {
    /// Serial on this terminal (keyboard input reaches the kernel), a window if
    /// there is a display, optional GDB stub; no timeout.
    Interactive { gdb: bool },
    /// Serial captured (and echoed), no display, killed after the timeout.
    Test,
}

pub enum Status {
    Success,
    /// The kernel said it failed (a panic, a failed test): QEMU's exit
    /// status was [`QEMU_EXIT_FAILURE`].
    KernelFailure,
    /// QEMU ended with this status on its own (or -1: killed by a signal).
    Failure(i32),
    TimedOut,
}

pub struct Outcome {
    pub status: Status,
    pub serial: String,
}

fn qemu_binary() -> &'static str {
    "qemu-system-x86_64"
}

fn ovmf_paths() -> Result<(PathBuf, PathBuf), String> {
    let code =
        std::env::var("OVMF_CODE").unwrap_or_else(|_| "/usr/share/OVMF/OVMF_CODE_4M.fd".into());
    let vars =
        std::env::var("OVMF_VARS").unwrap_or_else(|_| "/usr/share/OVMF/OVMF_VARS_4M.fd".into());
    let (code, vars) = (PathBuf::from(code), PathBuf::from(vars));
    for path in [&code, &vars] {
        if !path.is_file() {
            return Err(format!(
                "UEFI firmware `{}` not found: install Debian's `ovmf` or set OVMF_CODE/OVMF_VARS",
                path.display()
            ));
        }
    }
    Ok((code, vars))
}

/// A QMP socket path for one boot (short: a Unix socket path has at most
/// 107 bytes).
fn qmp_socket_path() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "ferrite-qmp-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn command(
    images: &Images,
    machine: &Machine,
    mode: &Mode,
    qmp: Option<&Path>,
) -> Result<Command, String> {
    let mut cmd = Command::new(qemu_binary());
    let chipset = if machine.no_acpi {
        format!("{},acpi=off", machine.chipset)
    } else {
        machine.chipset.to_owned()
    };
    cmd.args(["-machine", &chipset, "-cpu", "max", "-m", &machine.memory]);
    if machine.cpus != 1 {
        cmd.arg("-smp").arg(machine.cpus.to_string());
    }
    cmd.args(["-no-reboot", "-serial", "stdio"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    let image = match machine.firmware {
        Firmware::Bios => &images.bios,
        Firmware::Uefi => {
            let (code, vars) = ovmf_paths()?;
            // The variable store is writable: give every boot its own copy.
            let vars_copy = images.uefi.with_extension("vars.fd");
            std::fs::copy(&vars, &vars_copy)
                .map_err(|e| format!("copy {}: {e}", vars.display()))?;
            cmd.arg("-drive").arg(format!(
                "if=pflash,format=raw,readonly=on,file={}",
                code.display()
            ));
            cmd.arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars_copy.display()));
            &images.uefi
        }
    };
    if machine.usb.any() {
        cmd.args(["-device", "qemu-xhci,id=xhci"]);
    }
    if machine.usb.stick {
        // The image is the machine's only disk: a boot that works came
        // from the stick.
        cmd.arg("-drive").arg(format!(
            "if=none,id=stick,format=raw,file={}",
            image.display()
        ));
        cmd.args([
            "-device",
            "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=1",
        ]);
    } else {
        cmd.arg("-drive")
            .arg(format!("format=raw,file={}", image.display()));
    }
    if machine.usb.keyboard {
        cmd.args([
            "-device",
            &format!("usb-kbd,bus=xhci.0,id={USB_KEYBOARD_ID}"),
        ]);
    }
    if let Some(bytes) = machine.swap_bytes {
        let disk = blank_disk(&images.bios, bytes)?;
        cmd.arg("-drive").arg(format!(
            "if=none,id=swap,format=raw,file={}",
            disk.display()
        ));
        cmd.args(["-device", "virtio-blk-pci,drive=swap"]);
    }
    if let Some(qmp) = qmp {
        cmd.arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
    }
    // For tools: a monitor socket to sample the CPUs (tools/profile-guest),
    // a trace option, ... Not used by any test.
    if let Ok(extra) = std::env::var("FERRITE_QEMU_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    match mode {
        Mode::Test => {
            cmd.args(["-display", "none"]);
            cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        }
        Mode::Interactive { gdb } => {
            if std::env::var_os("DISPLAY").is_none() {
                cmd.args(["-display", "none"]);
            }
            if *gdb {
                cmd.args(["-s", "-S"]);
                eprintln!("QEMU waits for GDB on localhost:1234 (see README: Debugging with GDB)");
            }
        }
    }
    Ok(cmd)
}

/// A blank (all zeros, sparse: it takes no space until written) raw disk
/// of `bytes` next to the boot images, made anew for every boot: swap
/// needs no contents from one boot to the next.
fn blank_disk(image: &Path, bytes: u64) -> Result<PathBuf, String> {
    let path = image.with_file_name(format!(
        "{}-swap.img",
        image
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("ferrite")
            .trim_end_matches("-bios")
    ));
    let file =
        std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    file.set_len(bytes)
        .map_err(|e| format!("size {} to {bytes} bytes: {e}", path.display()))?;
    Ok(path)
}

pub fn boot(images: &Images, machine: &Machine, mode: Mode) -> Result<Outcome, String> {
    let qmp = (machine.usb.keyboard && matches!(mode, Mode::Test)).then(qmp_socket_path);
    if let Some(path) = &qmp {
        let _ = std::fs::remove_file(path);
    }
    let mut cmd = command(images, machine, &mode, qmp.as_deref())?;
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e} (install Debian's `qemu-system-x86`)",
            qemu_binary()
        )
    })?;

    let Mode::Test = mode else {
        let status = child.wait().map_err(|e| format!("wait for QEMU: {e}"))?;
        return Ok(Outcome {
            status: verdict(status.code()),
            serial: String::new(),
        });
    };

    // Forward serial output as it arrives and keep it for the failure report.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(machine.timeout());
    let mut serial = Vec::new();
    let forward = |chunk: Vec<u8>, serial: &mut Vec<u8>| {
        let _ = std::io::stdout().write_all(&chunk);
        let _ = std::io::stdout().flush();
        serial.extend_from_slice(&chunk);
    };
    // Where the next unread serial line starts (requests to type keys).
    let mut line_start = 0;
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            forward(chunk, &mut serial);
        }
        while let Some(nl) = serial[line_start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&serial[line_start..line_start + nl]).into_owned();
            line_start += nl + 1;
            let line = line.trim_end_matches('\r');
            let Some(at) = line.find(TYPE_REQUEST) else {
                continue;
            };
            let text = &line[at + TYPE_REQUEST.len()..];
            let Some(path) = &qmp else {
                eprintln!(
                    "ferrite-boot: the kernel asked for keys, but this machine has no USB keyboard"
                );
                continue;
            };
            // A connection per request: QEMU's QMP server takes a new
            // client whenever the last one has gone.
            let typed = Qmp::connect(path)
                .and_then(|mut conn| type_text(&mut conn, &text.replace("\\n", "\n")));
            if let Err(e) = typed {
                // The kernel may have taken the keys it wanted and ended
                // before the last key-up: QEMU's exit is the verdict.
                if matches!(child.try_wait(), Ok(Some(_))) {
                    continue;
                }
                std::thread::sleep(Duration::from_millis(500));
                if matches!(child.try_wait(), Ok(Some(_))) {
                    continue;
                }
                // Never leave QEMU running behind a failed test.
                let _ = child.kill();
                let _ = child.wait();
                if let Some(path) = &qmp {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break verdict(status.code());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break Status::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    while let Ok(chunk) = rx.try_recv() {
        forward(chunk, &mut serial);
    }
    if let Some(path) = &qmp {
        let _ = std::fs::remove_file(path);
    }
    Ok(Outcome {
        status,
        serial: String::from_utf8_lossy(&serial).into_owned(),
    })
}

fn verdict(code: Option<i32>) -> Status {
    match code {
        Some(QEMU_EXIT_SUCCESS) => Status::Success,
        Some(QEMU_EXIT_FAILURE) => Status::KernelFailure,
        Some(other) => Status::Failure(other),
        None => Status::Failure(-1),
    }
}

/// A QMP (QEMU Machine Protocol) connection: JSON commands, one per line.
struct Qmp {
    stream: UnixStream,
    replies: BufReader<UnixStream>,
}

impl Qmp {
    fn connect(path: &Path) -> Result<Qmp, String> {
        let stream =
            UnixStream::connect(path).map_err(|e| format!("QMP {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let replies = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut qmp = Qmp { stream, replies };
        // The greeting, then capabilities negotiation.
        let mut greeting = String::new();
        qmp.replies
            .read_line(&mut greeting)
            .map_err(|e| format!("QMP greeting: {e}"))?;
        if !greeting.contains("QMP") {
            return Err(format!("QMP: no greeting (got {greeting:?})"));
        }
        qmp.execute(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(qmp)
    }

    /// Sends one command and waits for its reply (events in between are
    /// skipped).
    fn execute(&mut self, command: &str) -> Result<(), String> {
        self.stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("QMP write of `{command}`: {e}"))?;
        loop {
            let mut line = String::new();
            match self.replies.read_line(&mut line) {
                Ok(0) => return Err("QMP: QEMU closed the socket".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("QMP read: {e}")),
            }
            if line.contains("\"return\"") {
                return Ok(());
            }
            if line.contains("\"error\"") {
                return Err(format!("QMP `{command}`: {}", line.trim()));
            }
        }
    }
}

/// The QEMU key codes (`QKeyCode`) that type `c` on a US keyboard: the
/// key, and whether Shift is held.
pub fn qcode(c: char) -> Option<(String, bool)> {
    const PLAIN: &[(char, &str)] = &[
        (' ', "spc"),
        ('\n', "ret"),
        ('\t', "tab"),
        ('-', "minus"),
        ('=', "equal"),
        ('[', "bracket_left"),
        (']', "bracket_right"),
        ('\\', "backslash"),
        (';', "semicolon"),
        ('\'', "apostrophe"),
        ('`', "grave_accent"),
        (',', "comma"),
        ('.', "dot"),
        ('/', "slash"),
    ];
    const SHIFTED: &[(char, char)] = &[
        ('!', '1'),
        ('@', '2'),
        ('#', '3'),
        ('$', '4'),
        ('%', '5'),
        ('^', '6'),
        ('&', '7'),
        ('*', '8'),
        ('(', '9'),
        (')', '0'),
        ('_', '-'),
        ('+', '='),
        ('{', '['),
        ('}', ']'),
        ('|', '\\'),
        (':', ';'),
        ('"', '\''),
        ('~', '`'),
        ('<', ','),
        ('>', '.'),
        ('?', '/'),
    ];
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return Some((c.to_string(), false));
    }
    if c.is_ascii_uppercase() {
        return Some((c.to_ascii_lowercase().to_string(), true));
    }
    if let Some((_, name)) = PLAIN.iter().find(|(k, _)| *k == c) {
        return Some((name.to_string(), false));
    }
    let (_, base) = SHIFTED.iter().find(|(k, _)| *k == c)?;
    qcode(*base).map(|(name, _)| (name, true))
}

/// Types `text` on the USB keyboard: for each character, Shift down if
/// needed, the key down, then up (separate events, a little apart, so the
/// guest's polling sees each state).
fn type_text(qmp: &mut Qmp, text: &str) -> Result<(), String> {
    let key = |name: &str, down: bool| {
        format!(
            r#"{{"execute":"input-send-event","arguments":{{"events":[{{"type":"key","data":{{"down":{down},"key":{{"type":"qcode","data":"{name}"}}}}}}]}}}}"#
        )
    };
    for c in text.chars() {
        let Some((name, shift)) = qcode(c) else {
            return Err(format!("cannot type {c:?} on the USB keyboard"));
        };
        if shift {
            qmp.execute(&key("shift", true))?;
        }
        qmp.execute(&key(&name, true))?;
        std::thread::sleep(Duration::from_millis(30));
        qmp.execute(&key(&name, false))?;
        if shift {
            qmp.execute(&key("shift", false))?;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcodes_of_a_us_keyboard() {
        assert_eq!(qcode('a'), Some(("a".into(), false)));
        assert_eq!(qcode('Q'), Some(("q".into(), true)));
        assert_eq!(qcode('7'), Some(("7".into(), false)));
        assert_eq!(qcode('!'), Some(("1".into(), true)));
        assert_eq!(qcode(' '), Some(("spc".into(), false)));
        assert_eq!(qcode('\n'), Some(("ret".into(), false)));
        assert_eq!(qcode('?'), Some(("slash".into(), true)));
        assert_eq!(qcode('é'), None);
    }
}
