//! Booting an image in QEMU and turning its exit into a verdict.
//!
//! The kernel ends a run by writing to the `isa-debug-exit` port (0xf4); QEMU
//! then exits with `(value << 1) | 1`. Ferrite writes 0x10 for success (exit
//! code 33) and 0x11 for failure (35). Anything else, including a triple fault
//! (QEMU exits 0 under `-no-reboot`), is a failure.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::machines::{Firmware, Machine};
use crate::Images;

pub const QEMU_EXIT_SUCCESS: i32 = (0x10 << 1) | 1;
pub const QEMU_EXIT_FAILURE: i32 = (0x11 << 1) | 1;

pub enum Mode {
    /// Serial on this terminal (keyboard input reaches the kernel), a window if
    /// there is a display, optional GDB stub; no timeout.
    Interactive { gdb: bool },
    /// Serial captured (and echoed), no display, killed after the timeout.
    Test,
}

pub enum Status {
    Success,
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

fn command(images: &Images, machine: &Machine, mode: &Mode) -> Result<Command, String> {
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
    cmd.arg("-drive")
        .arg(format!("format=raw,file={}", image.display()));
    if let Some(bytes) = machine.swap_bytes {
        let disk = blank_disk(&images.bios, bytes)?;
        cmd.arg("-drive").arg(format!(
            "if=none,id=swap,format=raw,file={}",
            disk.display()
        ));
        cmd.args(["-device", "virtio-blk-pci,drive=swap"]);
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
    let mut cmd = command(images, machine, &mode)?;
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
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            forward(chunk, &mut serial);
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
    Ok(Outcome {
        status,
        serial: String::from_utf8_lossy(&serial).into_owned(),
    })
}

fn verdict(code: Option<i32>) -> Status {
    match code {
        Some(QEMU_EXIT_SUCCESS) => Status::Success,
        Some(QEMU_EXIT_FAILURE) => Status::Failure(1),
        Some(other) => Status::Failure(other),
        None => Status::Failure(-1),
    }
}
