//! The kernel shell: a monitor that runs as the kernel's own thread (pid 0)
//! on the serial console and on the framebuffer with a PS/2 keyboard, with
//! commands that show memory management at work: the views Linux gives
//! through `free`, `/proc/meminfo`, `/proc/vmstat`, `/proc/buddyinfo`,
//! `/proc/slabinfo`, `slabtop`, `ps` and `pmap -x`, a page-table walk,
//! a live picture of physical memory (`mmview`), and swap (`swapon`,
//! `swapoff`).
//!
//! Every command writes to a `&mut dyn Write` rather than to the console,
//! so tests run them through [`execute`] and read their output back. The
//! interactive loop ([`main`]) passes a writer to the consoles; it first
//! runs `/etc/init` (a program named by `FERRITE_INIT`) and `/etc/rc` (a
//! script) if the ramdisk has them.
//!
//! No `unsafe` here: the views read mm's state through snapshot functions
//! (`mm::vmstat`, `mm::frames`), never its locks.

#![deny(unsafe_code)]

pub mod clock;
pub mod cpus;
pub mod editor;
pub mod memory;
pub mod mmview;
pub mod pipeline;
pub mod procs;
pub mod swap;
pub mod sysctl;
pub mod system;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::mm::kalloc;
use crate::proc::sched::Pid;

/// What the shell prints before reading a line.
pub const PROMPT: &str = "ferrite$ ";

/// Why a command did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShellError {
    /// No command has this name.
    UnknownCommand(String),
    /// Wrong number or form of arguments.
    Usage {
        command: &'static str,
        usage: &'static str,
        why: String,
    },
    /// The process id names no process.
    NoSuchProcess { command: &'static str, pid: Pid },
    /// The arguments were fine, the action failed.
    Failed { command: &'static str, why: String },
    /// Writing the output failed.
    Output,
    /// The kernel heap ran out of memory for what the command needed: the
    /// command is refused (nothing here allocates, so it cannot fail too).
    OutOfMemory { command: &'static str },
    /// The line does not parse (an unclosed quote, a `>` without a file...).
    Syntax(usercore::cmdline::ParseError),
    /// Redirections, `|` or `&` on a command that is not `run`.
    NotRun(String),
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ShellError::UnknownCommand(name) => {
                write!(f, "{name}: unknown command (type `help` for the list)")
            }
            ShellError::Usage {
                command,
                usage: "",
                why,
            } => write!(f, "{command}: {why}\nusage: {command}"),
            ShellError::Usage {
                command,
                usage,
                why,
            } => write!(f, "{command}: {why}\nusage: {command} {usage}"),
            ShellError::NoSuchProcess { command, pid } => {
                write!(f, "{command}: no process with pid {pid}")
            }
            ShellError::Failed { command, why } => write!(f, "{command}: {why}"),
            ShellError::Output => write!(f, "shell: output error"),
            ShellError::OutOfMemory { command } => write!(f, "{command}: out of memory"),
            ShellError::Syntax(e) => write!(f, "shell: {e}"),
            ShellError::NotRun(name) => write!(
                f,
                "{name}: redirections, `|` and `&` work with `run` only (see help run)"
            ),
        }
    }
}

impl From<fmt::Error> for ShellError {
    fn from(_: fmt::Error) -> ShellError {
        ShellError::Output
    }
}

pub type Result = core::result::Result<(), ShellError>;

/// One shell command.
pub struct Command {
    pub name: &'static str,
    /// Argument syntax, e.g. `PID ADDR`.
    pub usage: &'static str,
    /// One line for `help`.
    pub about: &'static str,
    pub run: fn(&Args, &mut dyn Write) -> Result,
}

/// A command's arguments (without the command name), with parsers that
/// turn mistakes into [`ShellError::Usage`].
pub struct Args<'a> {
    pub command: &'static Command,
    pub words: &'a [&'a str],
}

impl Args<'_> {
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        self.words.get(i).copied()
    }

    /// A usage error with `why`.
    pub fn usage(&self, why: impl Into<String>) -> ShellError {
        ShellError::Usage {
            command: self.command.name,
            usage: self.command.usage,
            why: why.into(),
        }
    }

    /// The command is refused for lack of memory.
    pub fn oom(&self) -> ShellError {
        ShellError::OutOfMemory {
            command: self.command.name,
        }
    }

    /// A usage error with a formatted reason (`out of memory` if there is
    /// no room for the text).
    pub fn usage_fmt(&self, why: fmt::Arguments) -> ShellError {
        match kalloc::try_format(why) {
            Ok(why) => self.usage(why),
            Err(_) => self.oom(),
        }
    }

    /// [`Args::failed`] with a formatted reason.
    pub fn failed_fmt(&self, why: fmt::Arguments) -> ShellError {
        match kalloc::try_format(why) {
            Ok(why) => self.failed(why),
            Err(_) => self.oom(),
        }
    }

    pub fn failed(&self, why: impl Into<String>) -> ShellError {
        ShellError::Failed {
            command: self.command.name,
            why: why.into(),
        }
    }

    /// Checks the argument count is within `min..=max`.
    pub fn count(&self, min: usize, max: usize) -> Result {
        let n = self.words.len();
        if n < min {
            Err(self.usage_fmt(format_args!("missing argument")))
        } else if n > max {
            Err(self.usage_fmt(format_args!("unexpected argument `{}`", self.words[max])))
        } else {
            Ok(())
        }
    }

    /// Argument `i` as a number (decimal, or hex with `0x`), naming it
    /// `what` in the error.
    pub fn number(&self, i: usize, what: &str) -> core::result::Result<u64, ShellError> {
        let word = self
            .get(i)
            .ok_or_else(|| self.usage_fmt(format_args!("missing argument")))?;
        parse_number(word).ok_or_else(|| self.usage_fmt(format_args!("`{word}` is not {what}")))
    }

    /// Argument `i` as the pid of an existing process.
    pub fn pid(&self, i: usize) -> core::result::Result<Pid, ShellError> {
        let n = self.number(i, "a process id")?;
        let pid = Pid::try_from(n)
            .map_err(|_| self.usage_fmt(format_args!("{n} is not a process id")))?;
        if crate::proc::sched::with_process(pid, |_| ()).is_none() {
            return Err(ShellError::NoSuchProcess {
                command: self.command.name,
                pid,
            });
        }
        Ok(pid)
    }
}

/// Text formatted into a fixed buffer on the stack (cut short if it does
/// not fit), for padding labels without allocating.
pub struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub fn format(args: fmt::Arguments) -> Self {
        let mut t = StackText {
            buf: [0; N],
            len: 0,
        };
        let _ = fmt::write(&mut t, args);
        t
    }

    pub fn as_str(&self) -> &str {
        // Only whole `str`s (or their char-boundary prefixes) are copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut take = s.len().min(N - self.len);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl<const N: usize> fmt::Display for StackText<N> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// `123`, `0x7b` (or `0X7B`); underscores allowed as separators.
/// (Parsed digit by digit: nothing to allocate.)
pub fn parse_number(word: &str) -> Option<u64> {
    let (digits, radix) = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (word, 10),
    };
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
        any = true;
    }
    any.then_some(value)
}

/// Every command, in the order `help` lists them.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "[COMMAND]",
        about: "list the commands, or explain one",
        run: help,
    },
    Command {
        name: "meminfo",
        usage: "",
        about: "memory use by owner, like /proc/meminfo (kB)",
        run: memory::meminfo,
    },
    Command {
        name: "cpus",
        usage: "",
        about: "the CPUs found (ACPI MADT) and online, with their APIC ids",
        run: cpus::cpus,
    },
    Command {
        name: "free",
        usage: "",
        about: "used and free memory, like `free -k`",
        run: memory::free,
    },
    Command {
        name: "vmstat",
        usage: "",
        about: "allocation and fault counters, like /proc/vmstat",
        run: memory::vmstat,
    },
    Command {
        name: "pressure",
        usage: "",
        about: "memory pressure stall information, like /proc/pressure/memory",
        run: memory::pressure,
    },
    Command {
        name: "buddyinfo",
        usage: "",
        about: "free blocks per order, like /proc/buddyinfo",
        run: memory::buddyinfo,
    },
    Command {
        name: "zoneinfo",
        usage: "",
        about: "free pages, watermarks (min/low/high) and kswapd, like /proc/zoneinfo",
        run: memory::zoneinfo,
    },
    Command {
        name: "slabinfo",
        usage: "",
        about: "slab caches, like /proc/slabinfo",
        run: memory::slabinfo,
    },
    Command {
        name: "slabtop",
        usage: "",
        about: "slab caches by size, like `slabtop -o`",
        run: memory::slabtop,
    },
    Command {
        name: "memmap",
        usage: "",
        about: "the physical memory map the bootloader handed over",
        run: memory::memmap,
    },
    Command {
        name: "mmview",
        usage: "[SECONDS | -t]",
        about: "draw physical memory by owner, live (-t: as text)",
        run: mmview::command,
    },
    Command {
        name: "swapon",
        usage: "[zram SIZE | -s | --show]",
        about: "swap to SIZE of compressed RAM (e.g. 256M); -s: list, like /proc/swaps",
        run: swap::swapon,
    },
    Command {
        name: "swapoff",
        usage: "[-a | DEVICE]",
        about: "bring every swapped-out page back into RAM, then stop swapping",
        run: swap::swapoff,
    },
    Command {
        name: "ps",
        usage: "",
        about: "processes with their memory (VSZ, RSS in kB)",
        run: procs::ps,
    },
    Command {
        name: "pmap",
        usage: "PID",
        about: "a process's regions with resident pages, like `pmap -x`",
        run: procs::pmap,
    },
    Command {
        name: "walk",
        usage: "PID ADDR",
        about: "walk the page tables of PID (0: the kernel's) for ADDR",
        run: procs::walk,
    },
    Command {
        name: "run",
        usage: "PROGRAM [ARGS...] [<IN] [>OUT] [>>OUT] [| PROGRAM...] [&]",
        about: "run programs from /bin: redirections, pipes, & (see help run)",
        run: procs::run,
    },
    Command {
        name: "jobs",
        usage: "",
        about: "background programs and how they ended",
        run: procs::jobs,
    },
    Command {
        name: "kill",
        usage: "PID",
        about: "kill a process (SIGKILL)",
        run: procs::kill,
    },
    Command {
        name: "sysctl",
        usage: "-a | KEY[=VALUE]... | -w KEY=VALUE...",
        about: "show or set tunables (vm.overcommit_memory, ...), like sysctl",
        run: sysctl::command,
    },
    Command {
        name: "oomadj",
        usage: "[PID [ADJ]]",
        about: "OOM killer scores; set a process's oom_score_adj (-1000..1000)",
        run: procs::oomadj,
    },
    Command {
        name: "failinject",
        usage: "[slab|page|all] [off | every N | random N [seed S]] [times M]",
        about: "fail allocations on purpose (failslab, fail_page_alloc)",
        run: system::failinject,
    },
    Command {
        name: "ls",
        usage: "",
        about: "files in the ramdisk",
        run: system::ls,
    },
    Command {
        name: "echo",
        usage: "[TEXT...]",
        about: "print TEXT (for scripts)",
        run: system::echo,
    },
    Command {
        name: "sleep",
        usage: "SECONDS",
        about: "let programs run for a while (for scripts)",
        run: system::sleep,
    },
    Command {
        name: "clear",
        usage: "",
        about: "clear the screen",
        run: system::clear,
    },
    Command {
        name: "bench",
        usage: "",
        about: "run the fault-path benchmarks",
        run: system::bench,
    },
    Command {
        name: "date",
        usage: "",
        about: "the date and time (UTC, from the RTC) and the time since boot",
        run: clock::date,
    },
    Command {
        name: "poweroff",
        usage: "[CODE | $?]",
        about: "end the session; in QEMU, exit with CODE (see help poweroff)",
        run: system::poweroff,
    },
    Command {
        name: "reboot",
        usage: "",
        about: "reset the machine",
        run: system::reboot,
    },
];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Runs one command line, writing its output to `out`. Empty lines and
/// `#` comments do nothing. Words may be quoted (`'...'`, `"..."`, `\`);
/// `run` lines may have redirections and pipes ([`pipeline`]).
pub fn execute(line: &str, out: &mut dyn Write) -> Result {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    // The words, in vectors that grow fallibly: a line is user input.
    let oom = ShellError::OutOfMemory { command: "shell" };
    let parsed = usercore::cmdline::parse(line).map_err(|e| match e {
        usercore::cmdline::ParseError::OutOfMemory => oom.clone(),
        e => ShellError::Syntax(e),
    })?;
    let Some(first) = parsed.commands.first() else {
        return Ok(());
    };
    let name = first.words.first().map(String::as_str).unwrap_or_default();
    if name == "run" {
        return pipeline::run(&parsed, out);
    }
    let command = match find(name) {
        Some(c) => c,
        None => {
            let name = kalloc::try_string(name).map_err(|_| oom)?;
            return Err(ShellError::UnknownCommand(name));
        }
    };
    if parsed.commands.len() > 1 || parsed.background || !first.redirects.is_empty() {
        let name = kalloc::try_string(name).map_err(|_| oom)?;
        return Err(ShellError::NotRun(name));
    }
    let mut words: Vec<&str> =
        kalloc::try_with_capacity(first.words.len()).map_err(|_| oom.clone())?;
    words.extend(first.words[1..].iter().map(String::as_str));
    let args = Args {
        command,
        words: &words,
    };
    (command.run)(&args, out)
}

/// Runs a script: each line is echoed after the prompt, then run; an error
/// is printed and the script goes on. Returns how many lines failed.
pub fn run_script(script: &str, out: &mut dyn Write) -> usize {
    let mut failed = 0;
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let _ = writeln!(out, "{PROMPT}{line}");
        if let Err(e) = execute(line, out) {
            let _ = writeln!(out, "{e}");
            failed += 1;
        }
    }
    failed
}

fn help(args: &Args, out: &mut dyn Write) -> Result {
    args.count(0, 1)?;
    if let Some(name) = args.get(0) {
        let command =
            find(name).ok_or_else(|| args.usage_fmt(format_args!("no command `{name}`")))?;
        writeln!(out, "usage: {} {}", command.name, command.usage)?;
        writeln!(out, "  {}", command.about)?;
        if let Some(more) = system::details(command.name) {
            writeln!(out, "{more}")?;
        }
        return Ok(());
    }
    writeln!(out, "Ferrite shell commands:")?;
    for c in COMMANDS {
        let syntax = alloc::format!("{} {}", c.name, c.usage);
        writeln!(out, "  {syntax:<28} {}", c.about)?;
    }
    writeln!(
        out,
        "Editing: Left/Right, Home/End, Backspace, Ctrl-U, Ctrl-K, Ctrl-C; Up/Down: history."
    )?;
    Ok(())
}

/// Writes to every console (serial and framebuffer).
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::klog::print(format_args!("{s}"));
        Ok(())
    }
}

/// The program named by `/etc/init` (from `FERRITE_INIT`), if any.
fn init_program() -> Option<String> {
    let file = crate::proc::ramdisk::open("/etc/init")?;
    let name = core::str::from_utf8(file.data).ok()?.trim();
    (!name.is_empty()).then(|| String::from(name))
}

/// The kernel's main thread after boot: `/etc/init`, `/etc/rc`, then the
/// interactive shell. Never returns (`poweroff` ends the machine).
pub fn main() -> ! {
    let keyboard = crate::drivers::keyboard::init();
    let mut out = Console;
    let _ = writeln!(
        out,
        "Ferrite shell on the serial console{}. Type `help` for the commands.",
        match (keyboard, crate::drivers::usb::summary().keyboards > 0) {
            (true, true) => " and the PS/2 and USB keyboards",
            (true, false) => " and the PS/2 keyboard",
            (false, true) => " and the USB keyboard",
            (false, false) => "",
        }
    );
    if let Some(program) = init_program() {
        let _ = writeln!(out, "init: running {program} (from /etc/init)");
        if let Err(e) = execute(&alloc::format!("run {program}"), &mut out) {
            let _ = writeln!(out, "init: {e}");
        }
    }
    if let Some(rc) = crate::proc::ramdisk::open("/etc/rc") {
        match core::str::from_utf8(rc.data) {
            Ok(script) => {
                let _ = writeln!(out, "rc: running /etc/rc");
                run_script(script, &mut out);
            }
            Err(_) => {
                let _ = writeln!(out, "rc: /etc/rc is not text; skipped");
            }
        }
    }
    interactive(&mut out)
}

/// Reads lines from the console input queue (serial and keyboard) and
/// runs them, forever. Bytes that arrive together (a paste) are run line
/// by line.
pub fn interactive(out: &mut dyn Write) -> ! {
    let mut editor = editor::LineEditor::new();
    procs::report_finished_jobs(out);
    let _ = out.write_str(PROMPT);
    loop {
        let mut buf = [0u8; 64];
        let n = crate::proc::console::read_blocking(&mut buf);
        for &byte in &buf[..n] {
            if let Some(line) = editor.feed(byte, out) {
                if let Err(e) = execute(&line, out) {
                    let _ = writeln!(out, "{e}");
                }
                procs::report_finished_jobs(out);
                procs::reap_orphans();
                let _ = out.write_str(PROMPT);
            }
        }
    }
}
