//! `ferrite-boot`: the host side of Ferrite.
//!
//! It turns a kernel ELF into BIOS and UEFI disk images with the `bootloader`
//! crate and boots them in QEMU with the serial port on the terminal and an
//! `isa-debug-exit` device, so a kernel can end a run with an exit code.
//! Cargo uses it (through `tools/run-kernel`) as the runner for `cargo run` and
//! for every in-kernel integration test.

mod machines;
mod qemu;
mod ramdisk;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use machines::{Firmware, Machine};

const USAGE: &str = "\
usage: ferrite-boot <command> [options]

commands:
  image  --kernel ELF --out-dir DIR [--name NAME] [--ramdisk FILE]
         write DIR/NAME-bios.img and DIR/NAME-uefi.img (without --ramdisk,
         the ramdisk is packed from user/build, user/rootfs, $FERRITE_EXTRA,
         $FERRITE_INIT, $FERRITE_RC and $FERRITE_CMDLINE, as for `run`)
  run    --kernel ELF [--uefi] [--memory SIZE] [--smp N] [--swap SIZE] [--gdb] [--timeout SECS] [--ramdisk FILE]
         boot the kernel in QEMU with serial on this terminal (--swap: attach
         a blank virtio-blk disk of SIZE, e.g. 512M, for swap)
  runner ELF [ARGS]
         what cargo calls: boots a test kernel (path under deps/) on every
         machine tests/machines.txt lists for it, anything else like `run`

environment:
  OVMF_CODE, OVMF_VARS  UEFI firmware (default /usr/share/OVMF/OVMF_CODE_4M.fd, OVMF_VARS_4M.fd)
  FERRITE_UEFI=1        `runner` boots through UEFI instead of BIOS
  FERRITE_MEMORY=SIZE   `runner` machine memory (default 256M)
  FERRITE_SMP=N         `runner` machine CPUs (default 1)
  FERRITE_SWAP=SIZE     `runner` attaches a blank virtio-blk swap disk of SIZE (e.g. 512M);
                        for a test kernel, to every machine (tests/machines.txt: swap=SIZE)
  FERRITE_GDB=1         `runner` waits for GDB on localhost:1234
  FERRITE_USB=LIST      `runner`: `stick` boots from a USB stick on xHCI, `kbd` adds a
                        USB keyboard, `xhci` an empty xHCI controller (comma-separated)
  FERRITE_EXTRA=DIR     also pack DIR's files into the ramdisk, under /bin
  FERRITE_INIT=PROG     the program the kernel starts first (default: the shell)
  FERRITE_RC=FILE       pack FILE as /etc/rc, the script the shell runs at boot
  FERRITE_CMDLINE=TEXT  pack TEXT as /etc/cmdline, the kernel's boot options
                        (failslab=every:N fail_page_alloc=random:N,seed:S,times:M)
  FERRITE_TEST_TIMEOUT=SECONDS  `runner` timeout for every machine (overrides tests/machines.txt)
  FERRITE_QEMU_ARGS=ARGS  extra QEMU arguments (split at spaces) for every boot, e.g. a
                        monitor socket for tools/profile-guest
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ferrite-boot: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let Some(command) = args.first() else {
        return Err(format!("no command given\n{USAGE}"));
    };
    let opts = Options::parse(&args[1..])?;
    match command.as_str() {
        "image" => {
            let kernel = opts.kernel()?;
            let out_dir = opts.out_dir.clone().ok_or("image needs --out-dir DIR")?;
            let name = opts.name.clone().unwrap_or_else(|| "ferrite".into());
            let pack = ramdisk::Pack::from_env();
            let images = make_images(&kernel, &out_dir, &name, opts.ramdisk.as_deref(), &pack)?;
            println!("BIOS image: {}", images.bios.display());
            println!("UEFI image: {}", images.uefi.display());
            Ok(ExitCode::SUCCESS)
        }
        "run" => {
            let kernel = opts.kernel()?;
            let machine = opts.machine();
            boot_interactive(&kernel, &machine, &opts)
        }
        "runner" => {
            let kernel = opts.kernel()?;
            if is_test_kernel(&kernel) {
                run_test_kernel(&kernel, &opts)
            } else {
                let mut machine = opts.machine();
                if env_flag("FERRITE_UEFI") {
                    machine.firmware = Firmware::Uefi;
                }
                if let Ok(memory) = std::env::var("FERRITE_MEMORY") {
                    machine.memory = memory;
                }
                if let Ok(n) = std::env::var("FERRITE_SMP") {
                    if !n.is_empty() {
                        machine.cpus = n
                            .parse()
                            .ok()
                            .filter(|n| (1..=64).contains(n))
                            .ok_or_else(|| format!("FERRITE_SMP: `{n}` is not 1..64"))?;
                    }
                }
                if let Some(swap) = env_swap()? {
                    machine.swap_bytes = Some(swap);
                }
                machine.usb = env_usb()?;
                let mut opts = opts.clone();
                opts.gdb |= env_flag("FERRITE_GDB");
                boot_interactive(&kernel, &machine, &opts)
            }
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

/// `FERRITE_SWAP=SIZE`, if set and not empty.
fn env_swap() -> Result<Option<u64>, String> {
    match std::env::var("FERRITE_SWAP") {
        Ok(size) if !size.trim().is_empty() => machines::parse_size(&size)
            .map(Some)
            .map_err(|e| format!("FERRITE_SWAP: {e}")),
        _ => Ok(None),
    }
}

/// `FERRITE_USB=stick,kbd`: boot from a USB stick and/or add a USB
/// keyboard (`xhci`: an empty controller).
fn env_usb() -> Result<machines::Usb, String> {
    let mut usb = machines::Usb::default();
    let value = std::env::var("FERRITE_USB").unwrap_or_default();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "stick" => usb.stick = true,
            "kbd" => usb.keyboard = true,
            "xhci" => usb.controller = true,
            other => {
                return Err(format!(
                    "FERRITE_USB: unknown `{other}` (stick, kbd or xhci)"
                ))
            }
        }
    }
    Ok(usb)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[derive(Clone, Default)]
struct Options {
    kernel: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    name: Option<String>,
    ramdisk: Option<PathBuf>,
    uefi: bool,
    memory: Option<String>,
    smp: Option<u32>,
    swap: Option<u64>,
    gdb: bool,
    timeout: Option<u64>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.as_str() {
                "--kernel" => opts.kernel = Some(value("--kernel")?.into()),
                "--out-dir" => opts.out_dir = Some(value("--out-dir")?.into()),
                "--name" => opts.name = Some(value("--name")?),
                "--ramdisk" => opts.ramdisk = Some(value("--ramdisk")?.into()),
                "--memory" => opts.memory = Some(value("--memory")?),
                "--swap" => opts.swap = Some(machines::parse_size(&value("--swap")?)?),
                "--timeout" => {
                    let secs = value("--timeout")?;
                    opts.timeout = Some(
                        secs.parse()
                            .map_err(|_| format!("--timeout: `{secs}` is not a number"))?,
                    );
                }
                "--smp" => {
                    let n = value("--smp")?;
                    opts.smp = Some(
                        n.parse()
                            .ok()
                            .filter(|&n| (1..=64).contains(&n))
                            .ok_or_else(|| format!("--smp: `{n}` is not 1..64"))?,
                    );
                }
                "--uefi" => opts.uefi = true,
                "--gdb" => opts.gdb = true,
                // cargo passes test-harness flags such as `--nocapture`; a
                // kernel test has no harness to give them to.
                flag if flag.starts_with("--") && opts.kernel.is_some() => {}
                path if opts.kernel.is_none() => opts.kernel = Some(path.into()),
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        Ok(opts)
    }

    fn kernel(&self) -> Result<PathBuf, String> {
        let kernel = self.kernel.clone().ok_or("no kernel ELF given")?;
        if !kernel.is_file() {
            return Err(format!("kernel `{}` does not exist", kernel.display()));
        }
        Ok(kernel)
    }

    fn machine(&self) -> Machine {
        Machine {
            firmware: if self.uefi {
                Firmware::Uefi
            } else {
                Firmware::Bios
            },
            memory: self.memory.clone().unwrap_or_else(|| "256M".into()),
            cpus: self.smp.unwrap_or(1),
            chipset: "q35",
            no_acpi: false,
            usb: Default::default(),
            timeout_secs: self.timeout,
            swap_bytes: self.swap,
            bins: Vec::new(),
        }
    }
}

/// Cargo names test executables `<name>-<16 hex digits>` (in `deps/` or,
/// in newer versions, `build/<package>/<hash>/out/`); `cargo run` binaries
/// have no hash.
fn is_test_kernel(kernel: &Path) -> bool {
    kernel
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.rsplit_once('-'))
        .is_some_and(|(_, hash)| hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Appends a short account of a failed kernel test to the file named by
/// `$FERRITE_FAILURE_LOG` (set by `make test`, which prints the file at
/// the end: a CI log's tail then says what failed, not only which test).
/// The account: the test, the machine, why, the serial lines that say what
/// went wrong (panics, failed assertions, FAILED lines) and its last lines.
fn record_failure(name: &str, machine: &Machine, why: &str, serial: &str) {
    let Some(path) = std::env::var_os("FERRITE_FAILURE_LOG") else {
        return;
    };
    let lines: Vec<&str> = serial.lines().collect();
    let telling: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("panicked") || l.contains("FAILED") || l.contains("assert"))
        .collect();
    let mut text = format!("=== `{name}` on {machine}: {why}\n");
    for l in telling.iter().rev().take(12).rev() {
        text.push_str(&format!("  ! {l}\n"));
    }
    for l in lines.iter().rev().take(15).rev() {
        text.push_str(&format!("  | {l}\n"));
    }
    use std::io::Write as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = file.write_all(text.as_bytes());
    }
}

/// `boot-a1b2c3d4e5f6a7b8` -> `boot`
fn test_name(kernel: &Path) -> String {
    let file = kernel
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => file,
    }
}

pub struct Images {
    pub bios: PathBuf,
    pub uefi: PathBuf,
}

/// Strips debug info (a large debug kernel loads slowly through the BIOS
/// stages) but keeps the symbol table, which the kernel reads to put names on
/// backtraces.
fn stripped_copy(kernel: &Path, out_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let out = out_dir.join(format!("{name}.elf"));
    let objcopy = llvm_tool("llvm-objcopy");
    let status = objcopy.as_ref().and_then(|tool| {
        std::process::Command::new(tool)
            .arg("--strip-debug")
            .arg(kernel)
            .arg(&out)
            // Its complaint about a file it cannot strip is not ours: the
            // copy below serves.
            .stderr(std::process::Stdio::null())
            .status()
            .ok()
    });
    match status {
        Some(s) if s.success() => Ok(out),
        _ => {
            // Without llvm-tools the image still works, only slower to load.
            std::fs::copy(kernel, &out).map_err(|e| format!("copy kernel: {e}"))?;
            Ok(out)
        }
    }
}

fn llvm_tool(tool: &str) -> Option<PathBuf> {
    let output = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(output.stdout).ok()?;
    let path = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host_triple())
        .join("bin")
        .join(tool);
    path.is_file().then_some(path)
}

fn host_triple() -> &'static str {
    "x86_64-unknown-linux-gnu"
}

pub fn make_images(
    kernel: &Path,
    out_dir: &Path,
    name: &str,
    ramdisk: Option<&Path>,
    pack: &ramdisk::Pack,
) -> Result<Images, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("create {}: {e}", out_dir.display()))?;
    let elf = stripped_copy(kernel, out_dir, name)?;
    let packed;
    let ramdisk = match ramdisk {
        Some(r) => Some(r),
        None => {
            packed = ramdisk::pack_default(&out_dir.join(format!("{name}.cpio")), pack)?;
            Some(packed.as_path())
        }
    };
    let mut builder = bootloader::DiskImageBuilder::new(elf);
    // The bootloader's own progress log is long and slow to draw; keep its
    // warnings only. Ferrite prints its own banner.
    let mut config = bootloader::BootConfig::default();
    config.log_level = bootloader_boot_config::LevelFilter::Warn;
    builder.set_boot_config(&config);
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk.to_owned());
    }
    let images = Images {
        bios: out_dir.join(format!("{name}-bios.img")),
        uefi: out_dir.join(format!("{name}-uefi.img")),
    };
    builder
        .create_bios_image(&images.bios)
        .map_err(|e| format!("BIOS image: {e:#}"))?;
    builder
        .create_uefi_image(&images.uefi)
        .map_err(|e| format!("UEFI image: {e:#}"))?;
    Ok(images)
}

fn image_dir(kernel: &Path) -> PathBuf {
    // Next to the kernel, so parallel test kernels never share an image.
    kernel.parent().unwrap_or(Path::new(".")).join("images")
}

fn boot_interactive(kernel: &Path, machine: &Machine, opts: &Options) -> Result<ExitCode, String> {
    let name = test_name(kernel);
    let mut pack = ramdisk::Pack::from_env();
    pack.bins.extend(machine.bins.iter().cloned());
    let images = make_images(
        kernel,
        &image_dir(kernel),
        &name,
        opts.ramdisk.as_deref(),
        &pack,
    )?;
    let outcome = qemu::boot(&images, machine, qemu::Mode::Interactive { gdb: opts.gdb })?;
    Ok(match outcome.status {
        qemu::Status::Success => ExitCode::SUCCESS,
        // `poweroff N` writes 0x10 + N: QEMU exits with 33 + 2N.
        qemu::Status::Failure(code) if code > 35 && code % 2 == 1 => {
            ExitCode::from(((code - 33) / 2).clamp(1, 255) as u8)
        }
        qemu::Status::KernelFailure => ExitCode::FAILURE,
        qemu::Status::Failure(code) => ExitCode::from(code.clamp(1, 255) as u8),
        qemu::Status::TimedOut => ExitCode::from(124),
    })
}

fn run_test_kernel(kernel: &Path, opts: &Options) -> Result<ExitCode, String> {
    let name = test_name(kernel);
    let mut machines = machines::for_test(&name)?;
    if let Some(swap) = env_swap()? {
        for machine in &mut machines {
            machine.swap_bytes = Some(swap);
        }
    }
    // The line's `bin=` files (the same for every machine of it).
    let mut pack = ramdisk::Pack::from_env();
    pack.bins = machines.first().map(|m| m.bins.clone()).unwrap_or_default();
    let images = make_images(
        kernel,
        &image_dir(kernel),
        &name,
        opts.ramdisk.as_deref(),
        &pack,
    )?;
    let mut failed = Vec::new();
    for machine in &machines {
        println!("=== kernel test `{name}` on {machine}");
        let started = std::time::Instant::now();
        let outcome = qemu::boot(&images, machine, qemu::Mode::Test)?;
        let secs = started.elapsed().as_secs_f64();
        match outcome.status {
            qemu::Status::Success => {
                println!("=== kernel test `{name}` on {machine}: ok ({secs:.1} s)")
            }
            status => {
                let why = match status {
                    qemu::Status::TimedOut => format!("hung: killed after {} s", machine.timeout()),
                    qemu::Status::KernelFailure => "the kernel reported a failure".to_string(),
                    qemu::Status::Failure(code) => format!("QEMU itself exited with code {code}"),
                    qemu::Status::Success => unreachable!(),
                };
                println!("=== kernel test `{name}` on {machine}: FAILED ({why})");
                println!("--- serial output of `{name}` on {machine} ---");
                print!("{}", outcome.serial);
                println!("--- end of serial output ---");
                record_failure(&name, machine, &why, &outcome.serial);
                failed.push(format!("{machine}: {why}"));
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("kernel test `{name}` FAILED on: {}", failed.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_test_kernels_from_the_kernel() {
        assert!(is_test_kernel(Path::new(
            "target/x86_64-unknown-none/debug/deps/boot-09ffd6a1a33f2ab1"
        )));
        assert!(is_test_kernel(Path::new(
            "target/x86_64-unknown-none/debug/build/ferrite/09ffd6a1a33f2ab1/out/fault_gp-09ffd6a1a33f2ab1"
        )));
        assert!(!is_test_kernel(Path::new(
            "target/x86_64-unknown-none/debug/ferrite"
        )));
        assert!(!is_test_kernel(Path::new("target/x/debug/my-kernel")));
    }

    #[test]
    fn test_name_drops_the_hash() {
        assert_eq!(
            test_name(Path::new("x/fault_pf_unmapped-7ab47c77e81845fe")),
            "fault_pf_unmapped"
        );
        assert_eq!(test_name(Path::new("x/ferrite")), "ferrite");
    }

    /// `make image EXTRA=dir INIT=prog RC=file` (and so `make usb`): both
    /// images carry the extra program, the init name and the script.
    #[test]
    fn images_carry_extra_init_and_rc() {
        let dir = std::env::temp_dir().join(format!("ferrite-image-test-{}", std::process::id()));
        let extra = dir.join("extra");
        std::fs::create_dir_all(&extra).unwrap();
        let program = b"#extra-program-7f3a9c#";
        std::fs::write(extra.join("myprog"), program).unwrap();
        let rc = dir.join("rc");
        let script = b"run myprog #rc-script-51be02#\npoweroff\n";
        std::fs::write(&rc, script).unwrap();
        // Any file serves as the kernel: the image builder only copies it.
        let kernel = dir.join("kernel.elf");
        std::fs::write(&kernel, b"not really a kernel").unwrap();
        let vars = |name: &str| match name {
            "FERRITE_EXTRA" => Some(extra.display().to_string()),
            "FERRITE_INIT" => Some("myprog-init-8d41".to_string()),
            "FERRITE_RC" => Some(rc.display().to_string()),
            _ => None,
        };
        let pack = ramdisk::Pack::from_vars(vars);
        let out = dir.join("out");
        let images = make_images(&kernel, &out, "t", None, &pack).unwrap();
        for image in [&images.bios, &images.uefi] {
            let bytes = std::fs::read(image).unwrap();
            let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            assert!(has(b"bin/myprog"), "{}: no /bin/myprog", image.display());
            assert!(has(program), "{}: no program", image.display());
            assert!(has(b"etc/init"), "{}: no /etc/init", image.display());
            assert!(
                has(b"myprog-init-8d41"),
                "{}: no init name",
                image.display()
            );
            assert!(has(b"etc/rc"), "{}: no /etc/rc", image.display());
            assert!(has(script), "{}: no rc script", image.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_ignore_harness_flags_after_the_kernel() {
        let args: Vec<String> = ["k.elf", "--nocapture", "--uefi"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let opts = Options::parse(&args).unwrap();
        assert_eq!(opts.kernel.as_deref(), Some(Path::new("k.elf")));
        assert!(opts.uefi);
    }
}
