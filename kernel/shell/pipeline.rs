//! `run` lines with redirections and pipelines:
//!
//! ```text
//! run PROGRAM [ARGS...] [< IN] [> OUT | >> OUT] [2> ERR | 2>&1] [| [run] PROGRAM ...] [&]
//! ```
//!
//! The line is parsed by `usercore::cmdline` (quoting, operators). Every
//! program gets its own descriptor table: the console on 0, 1 and 2, then
//! a pipe between each program and the next (standard output of one into
//! standard input of the next), then the redirections, left to right, as
//! `sh` applies them. Files are opened by the shell (relative paths from
//! `/`): `>` creates or truncates, `>>` appends. The shell keeps no end
//! of any pipe, so the reader sees end of file when the writer exits.
//! In the foreground the shell waits for every program and reports each;
//! Ctrl-C sends them all SIGINT. `$?` is the last program's status.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::Ordering;

use usercore::cmdline::{Line, Redirect, Target};

use super::procs::{self, ExitText};
use super::{Args, Result};
use crate::fs::file::flags::{O_APPEND, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY};
use crate::mm::kalloc;
use crate::proc::exec::ExecError;
use crate::proc::fd::{FdEntry, FdTable};
use crate::proc::sched::{self, Pid};
use crate::proc::user::{self, UserExit};

/// Permissions of a file `>` creates (0666 less the usual umask 022).
const CREATE_MODE: u32 = 0o644;

/// The words of command `i` of a `run` line, without the `run` (which may
/// be left out after a `|`).
fn program_words(line: &Line, i: usize) -> &[String] {
    let words = &line.commands[i].words;
    match words.first().map(String::as_str) {
        Some("run") => &words[1..],
        _ => words,
    }
}

/// What `errno` means, as `strerror` says it (the ones opening a file
/// gives).
fn strerror(e: crate::proc::syscall::Errno) -> &'static str {
    match (e.to_return() as i64).unsigned_abs() {
        2 => "No such file or directory",
        12 => "Out of memory",
        13 => "Permission denied",
        17 => "File exists",
        20 => "Not a directory",
        21 => "Is a directory",
        28 => "No space left on device",
        30 => "Read-only file system",
        36 => "File name too long",
        40 => "Too many levels of symbolic links",
        _ => "cannot open",
    }
}

/// Opens `path` for a redirection.
fn open(args: &Args, path: &str, flags: u32) -> core::result::Result<FdEntry, super::ShellError> {
    let file = crate::fs::vfs::open(b"/", path.as_bytes(), flags, CREATE_MODE)
        .map_err(|e| args.failed_fmt(format_args!("{path}: {}", strerror(e))))?;
    Ok(FdEntry {
        file,
        cloexec: false,
    })
}

/// Applies one redirection to a program's table.
fn redirect(args: &Args, table: &mut FdTable, r: &Redirect) -> Result {
    let entry = match &r.target {
        Target::Read(path) => open(args, path, O_RDONLY)?,
        Target::Write(path) => open(args, path, O_WRONLY | O_CREAT | O_TRUNC)?,
        Target::Append(path) => open(args, path, O_WRONLY | O_CREAT | O_APPEND)?,
        Target::Dup(from) => table.get(u64::from(*from)).cloned().ok_or_else(|| {
            args.failed_fmt(format_args!(
                "{}>&{from}: descriptor {from} is not open",
                r.fd
            ))
        })?,
    };
    let old = table
        .install_at(r.fd as usize, entry)
        .map_err(|_| args.oom())?;
    drop(old);
    Ok(())
}

/// Runs a parsed line whose first command is `run`.
pub fn run(line: &Line, out: &mut dyn Write) -> Result {
    let command = super::find("run").expect("run is a command");
    let args = Args {
        command,
        words: &[],
    };
    let n = line.commands.len();
    for i in 0..n {
        if program_words(line, i).is_empty() {
            return Err(args.usage_fmt(format_args!("missing program name")));
        }
    }
    // Every program's table: the console, the pipes, the redirections.
    let mut tables: Vec<FdTable> = kalloc::try_with_capacity(n).map_err(|_| args.oom())?;
    for _ in 0..n {
        tables.push(FdTable::standard().map_err(|_| args.oom())?);
    }
    for i in 1..n {
        let (read, write) = crate::fs::pipe::create(0)
            .map_err(|e| args.failed_fmt(format_args!("pipe: {}", strerror(e))))?;
        let (left, right) = tables.split_at_mut(i);
        let no_room = |_| args.oom();
        drop(
            left[i - 1]
                .install_at(
                    1,
                    FdEntry {
                        file: write,
                        cloexec: false,
                    },
                )
                .map_err(no_room)?,
        );
        drop(
            right[0]
                .install_at(
                    0,
                    FdEntry {
                        file: read,
                        cloexec: false,
                    },
                )
                .map_err(no_room)?,
        );
    }
    for (table, command) in tables.iter_mut().zip(&line.commands) {
        for r in &command.redirects {
            redirect(&args, table, r)?;
        }
    }
    // Start them, first to last. If one cannot start, those started are
    // killed (a stage left alone could wait forever on its pipe).
    let mut pids: Vec<Pid> = kalloc::try_with_capacity(n).map_err(|_| args.oom())?;
    for (i, table) in tables.into_iter().enumerate() {
        let words = program_words(line, i);
        let mut argv: Vec<&str> = kalloc::try_with_capacity(words.len()).map_err(|_| args.oom())?;
        argv.extend(words.iter().map(String::as_str));
        let path = procs::try_program_path(argv[0]).map_err(|_| args.oom())?;
        match user::spawn_program_with(&path, &argv, table) {
            Ok(pid) => pids.push(pid),
            Err(e) => {
                for &pid in &pids {
                    sched::kill(pid);
                    let _ = sched::reap(pid as i64);
                }
                return Err(match e {
                    ExecError::OutOfMemory => args.oom(),
                    e => args.failed_fmt(format_args!("{path}: {e}")),
                });
            }
        }
    }
    let name = |i: usize| program_words(line, i)[0].as_str();
    if line.background {
        for (i, &pid) in pids.iter().enumerate() {
            if procs::add_job(pid, name(i)) {
                writeln!(out, "[{pid}] {} running in the background", name(i))?;
            } else {
                writeln!(
                    out,
                    "[{pid}] {} running in the background (not in `jobs`: out of memory)",
                    name(i)
                )?;
            }
        }
        return Ok(());
    }
    let mut exits: Vec<Option<UserExit>> = kalloc::try_with_capacity(n).map_err(|_| args.oom())?;
    exits.resize(pids.len(), None);
    user::wait_for_all(&pids, &mut exits);
    for (i, (&pid, exit)) in pids.iter().zip(&exits).enumerate() {
        let exit = exit.unwrap_or(UserExit::Exited(0));
        if i + 1 == n {
            procs::LAST_STATUS.store(procs::status_of(&exit), Ordering::Relaxed);
        }
        writeln!(out, "[pid {pid}] {}: {}", name(i), ExitText(&exit))?;
    }
    Ok(())
}
