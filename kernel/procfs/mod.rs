//! `/proc`: the files Linux tools read, in Linux 6.1's formats, made from
//! the kernel's own figures, self-contained so the VFS can mount it.
//!
//! ```text
//! /proc/meminfo vmstat buddyinfo slabinfo zoneinfo swaps uptime loadavg
//!       stat cpuinfo version filesystems mounts   (text)
//! /proc/pressure/memory                             (text)
//! /proc/self -> <pid of the reader>                 (symlink)
//! /proc/<pid>/maps smaps smaps_rollup status stat statm cmdline comm
//!             exe (symlink) pagemap (binary: 8 bytes per page)
//! /proc/<pid>/fd/<n> (symlinks) fdinfo/<n> (text)
//! /proc/sys/vm/<tunable>                            (text; some writable)
//! ```
//!
//! The API the VFS mounts: [`lookup`] (a path relative to `/proc`) or
//! [`child`] (one name in a directory) give a [`Node`]; [`kind`] and
//! [`mode`] describe it; [`list`] lists a directory; [`read`] reads a file
//! at an offset; [`write`] writes one (`/proc/sys/vm`); [`readlink`] reads
//! a link. Every call is fallible (`ENOMEM`, never a panic) and returns
//! with no lock held: the caller copies to user memory afterwards.
//!
//! A text file is generated whole into a fallible buffer at every read
//! (what Linux's `seq_file` does for most of these), then the requested
//! slice is copied out. The generators write to any `fmt::Write`: the
//! shell's views (`meminfo`, `vmstat`, `buddyinfo`, `slabinfo`,
//! `zoneinfo`, `pressure`, `swapon -s`) print through the same functions,
//! so the shell and `/proc` show the same numbers from one place.

#![deny(unsafe_code)]

pub mod fd;
pub mod mem;
pub mod mount;
pub mod system;
pub mod sysvm;
pub mod task;

use alloc::vec::Vec;
use core::fmt;

use crate::mm::kalloc;
use crate::proc::sched::{self, Pid};
use crate::proc::syscall::Errno;

/// Why a `/proc` operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcError {
    /// Out of kernel memory for the text (`ENOMEM`).
    NoMemory,
    /// No such entry, or the process is gone (`ENOENT`).
    NotFound,
    /// Not a directory / not a file / not a link for this operation
    /// (`EINVAL`), or a bad offset or value.
    Invalid,
    /// The file is read-only (`EACCES` on open for writing, as Linux's
    /// mode 0444 gives; `EPERM`-free here: everyone is root).
    ReadOnly,
    /// The caller may not see it (`EPERM`).
    NotPermitted,
}

impl ProcError {
    pub fn errno(self) -> Errno {
        match self {
            ProcError::NoMemory => Errno::ENOMEM,
            ProcError::NotFound => Errno::ENOENT,
            ProcError::Invalid => Errno::EINVAL,
            ProcError::ReadOnly => Errno::EACCES,
            ProcError::NotPermitted => Errno::EPERM,
        }
    }
}

impl From<kalloc::AllocError> for ProcError {
    fn from(_: kalloc::AllocError) -> ProcError {
        ProcError::NoMemory
    }
}

/// A formatting error while generating: the only sink in `/proc` that can
/// fail is [`Text`], which fails only when out of memory.
impl From<fmt::Error> for ProcError {
    fn from(_: fmt::Error) -> ProcError {
        ProcError::NoMemory
    }
}

pub type Result<T = ()> = core::result::Result<T, ProcError>;

/// A generator's text: a `fmt::Write` into a fallible `Vec` (a write that
/// cannot grow it fails instead of aborting the kernel).
#[derive(Default)]
pub struct Text {
    pub bytes: Vec<u8>,
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        kalloc::try_extend_from_slice(&mut self.bytes, s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// A file at the top of `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Meminfo,
    Vmstat,
    Buddyinfo,
    Slabinfo,
    Zoneinfo,
    Swaps,
    Uptime,
    Loadavg,
    Stat,
    Cpuinfo,
    Version,
    Filesystems,
    Mounts,
    /// `/proc/pressure/memory`.
    PressureMemory,
    LockStat,
}

const GLOBALS: [(&str, Global); 14] = [
    ("buddyinfo", Global::Buddyinfo),
    ("cpuinfo", Global::Cpuinfo),
    ("filesystems", Global::Filesystems),
    ("loadavg", Global::Loadavg),
    ("lock_stat", Global::LockStat),
    ("meminfo", Global::Meminfo),
    ("mounts", Global::Mounts),
    ("slabinfo", Global::Slabinfo),
    ("stat", Global::Stat),
    ("swaps", Global::Swaps),
    ("uptime", Global::Uptime),
    ("version", Global::Version),
    ("vmstat", Global::Vmstat),
    ("zoneinfo", Global::Zoneinfo),
];

/// A file of `/proc/<pid>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFile {
    Maps,
    Smaps,
    SmapsRollup,
    Status,
    Stat,
    Statm,
    Cmdline,
    Comm,
    /// A link to the program's path.
    Exe,
    /// Binary: one 64-bit entry per virtual page.
    Pagemap,
}

const PID_FILES: [(&str, PidFile); 10] = [
    ("cmdline", PidFile::Cmdline),
    ("comm", PidFile::Comm),
    ("exe", PidFile::Exe),
    ("maps", PidFile::Maps),
    ("pagemap", PidFile::Pagemap),
    ("smaps", PidFile::Smaps),
    ("smaps_rollup", PidFile::SmapsRollup),
    ("stat", PidFile::Stat),
    ("statm", PidFile::Statm),
    ("status", PidFile::Status),
];

/// Something in `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// `/proc` itself.
    Root,
    /// `/proc/pressure`.
    PressureDir,
    /// `/proc/sys`.
    SysDir,
    /// `/proc/sys/vm`.
    SysVmDir,
    Global(Global),
    /// `/proc/sys/vm/<name>`: an index into [`sysvm::TUNABLES`].
    SysVm(usize),
    /// `/proc/self`: a link to the reader's `<pid>`.
    SelfLink,
    PidDir(Pid),
    Pid(Pid, PidFile),
    /// `/proc/<pid>/fd` and `/proc/<pid>/fdinfo`.
    FdDir(Pid),
    FdinfoDir(Pid),
    /// `/proc/<pid>/fd/<n>` (a link) and `/proc/<pid>/fdinfo/<n>`.
    Fd(Pid, u32),
    Fdinfo(Pid, u32),
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// A node's kind.
pub fn kind(node: Node) -> Kind {
    match node {
        Node::Root
        | Node::PressureDir
        | Node::SysDir
        | Node::SysVmDir
        | Node::PidDir(_)
        | Node::FdDir(_)
        | Node::FdinfoDir(_) => Kind::Dir,
        Node::SelfLink | Node::Pid(_, PidFile::Exe) | Node::Fd(..) => Kind::Symlink,
        _ => Kind::File,
    }
}

/// Permission bits as Linux shows them (`ls -l /proc`).
pub fn mode(node: Node) -> u16 {
    match node {
        Node::Root | Node::PressureDir | Node::SysDir | Node::SysVmDir | Node::PidDir(_) => 0o555,
        Node::SelfLink | Node::Pid(_, PidFile::Exe) => 0o777,
        // Linux: dr-x------ directories, lrwx------ links.
        Node::FdDir(_) | Node::FdinfoDir(_) => 0o500,
        Node::Fd(..) => 0o700,
        Node::SysVm(i) if sysvm::TUNABLES[i].writable() => 0o644,
        Node::Global(Global::Slabinfo) => 0o400,
        Node::Global(Global::PressureMemory) => 0o644,
        Node::Pid(_, PidFile::Pagemap) => 0o400,
        Node::Pid(_, PidFile::Comm) => 0o644,
        _ => 0o444,
    }
}

/// Whether `pid` is a process (a zombie included, as in Linux).
fn exists(pid: Pid) -> bool {
    sched::with_process(pid, |_| ()).is_some()
}

/// The entry `name` of directory `dir`.
pub fn child(dir: Node, name: &str) -> Option<Node> {
    match dir {
        Node::Root => {
            if let Some(&(_, g)) = GLOBALS.iter().find(|(n, _)| *n == name) {
                return Some(Node::Global(g));
            }
            match name {
                "self" => Some(Node::SelfLink),
                "pressure" => Some(Node::PressureDir),
                "sys" => Some(Node::SysDir),
                _ => {
                    // A pid: digits only, no leading zero (Linux's
                    // name_to_int).
                    if name.is_empty()
                        || name.len() > 10
                        || !name.bytes().all(|b| b.is_ascii_digit())
                        || (name.len() > 1 && name.starts_with('0'))
                    {
                        return None;
                    }
                    let pid: Pid = name.parse().ok()?;
                    exists(pid).then_some(Node::PidDir(pid))
                }
            }
        }
        Node::PressureDir => (name == "memory").then_some(Node::Global(Global::PressureMemory)),
        Node::SysDir => (name == "vm").then_some(Node::SysVmDir),
        Node::SysVmDir => sysvm::find(name).map(Node::SysVm),
        Node::PidDir(pid) => match name {
            "fd" => Some(Node::FdDir(pid)),
            "fdinfo" => Some(Node::FdinfoDir(pid)),
            _ => PID_FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, f)| Node::Pid(pid, f)),
        },
        Node::FdDir(pid) | Node::FdinfoDir(pid) => {
            if name.is_empty()
                || name.len() > 10
                || !name.bytes().all(|b| b.is_ascii_digit())
                || (name.len() > 1 && name.starts_with('0'))
            {
                return None;
            }
            let n: u32 = name.parse().ok()?;
            fd::is_open(pid, n).then_some(match dir {
                Node::FdDir(_) => Node::Fd(pid, n),
                _ => Node::Fdinfo(pid, n),
            })
        }
        _ => None,
    }
}

/// The node at `path`, relative to `/proc` (`["meminfo"]`,
/// `["self", "maps"]`; an empty path is `/proc`). `self` is followed as a
/// directory component for the calling process. `.` and empty components
/// are skipped; `..` goes up.
pub fn lookup(path: &[&str]) -> Option<Node> {
    let mut stack: [Node; 4] = [Node::Root; 4];
    let mut depth = 0usize;
    for &name in path {
        match name {
            "" | "." => continue,
            ".." => {
                depth = depth.saturating_sub(1);
                continue;
            }
            _ => {}
        }
        let mut next = child(stack[depth], name)?;
        if next == Node::SelfLink && path.len() > depth + 1 {
            next = Node::PidDir(sched::with_current(|p| p.tgid()));
        }
        if depth + 1 >= stack.len() {
            return None;
        }
        depth += 1;
        stack[depth] = next;
    }
    Some(stack[depth])
}

/// One directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Name,
    pub node: Node,
}

/// An entry's name, kept without allocating (`4294967295` is the longest
/// pid; tunables are shorter than 32).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    buf: [u8; 32],
    len: u8,
}

impl Name {
    fn new(s: &str) -> Name {
        let mut n = Name {
            buf: [0; 32],
            len: 0,
        };
        let len = s.len().min(32);
        n.buf[..len].copy_from_slice(&s.as_bytes()[..len]);
        n.len = len as u8;
        n
    }

    fn number(v: u32) -> Name {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        Name::new(core::str::from_utf8(&digits[i..]).unwrap_or("0"))
    }

    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The entries of directory `dir` (without `.` and `..`), in Linux's
/// order for `/proc`: the fixed entries, then the pids ascending.
pub fn list(dir: Node) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    let add = |out: &mut Vec<DirEntry>, name: Name, node: Node| {
        kalloc::try_push(out, DirEntry { name, node }).map_err(ProcError::from)
    };
    match dir {
        Node::Root => {
            for (name, g) in GLOBALS {
                add(&mut out, Name::new(name), Node::Global(g))?;
            }
            add(&mut out, Name::new("pressure"), Node::PressureDir)?;
            add(&mut out, Name::new("self"), Node::SelfLink)?;
            add(&mut out, Name::new("sys"), Node::SysDir)?;
            for p in sched::try_list()? {
                add(&mut out, Name::number(p.pid), Node::PidDir(p.pid))?;
            }
        }
        Node::PressureDir => add(
            &mut out,
            Name::new("memory"),
            Node::Global(Global::PressureMemory),
        )?,
        Node::SysDir => add(&mut out, Name::new("vm"), Node::SysVmDir)?,
        Node::SysVmDir => {
            for (i, t) in sysvm::TUNABLES.iter().enumerate() {
                add(&mut out, Name::new(t.name), Node::SysVm(i))?;
            }
        }
        Node::PidDir(pid) => {
            if !exists(pid) {
                return Err(ProcError::NotFound);
            }
            for (name, f) in PID_FILES {
                add(&mut out, Name::new(name), Node::Pid(pid, f))?;
            }
            add(&mut out, Name::new("fd"), Node::FdDir(pid))?;
            add(&mut out, Name::new("fdinfo"), Node::FdinfoDir(pid))?;
        }
        Node::FdDir(pid) | Node::FdinfoDir(pid) => {
            let fds = fd::list(pid)?;
            kalloc::try_reserve(&mut out, fds.len())?;
            for n in fds {
                let node = match dir {
                    Node::FdDir(_) => Node::Fd(pid, n),
                    _ => Node::Fdinfo(pid, n),
                };
                add(&mut out, Name::number(n), node)?;
            }
        }
        _ => return Err(ProcError::Invalid),
    }
    Ok(out)
}

/// The whole text of a text file (everything but `pagemap`).
pub fn generate(node: Node) -> Result<Text> {
    let mut t = Text::default();
    match node {
        Node::Global(g) => match g {
            Global::Meminfo => mem::meminfo(&mut t)?,
            Global::Vmstat => mem::vmstat(&mut t)?,
            Global::Buddyinfo => mem::buddyinfo(&mut t)?,
            Global::Slabinfo => mem::slabinfo(&mut t)?,
            Global::Zoneinfo => mem::zoneinfo(&mut t)?,
            Global::Swaps => mem::swaps(&mut t)?,
            Global::PressureMemory => mem::pressure(&mut t)?,
            Global::Uptime => system::uptime(&mut t)?,
            Global::Loadavg => system::loadavg(&mut t)?,
            Global::Stat => system::stat(&mut t)?,
            Global::Cpuinfo => system::cpuinfo(&mut t)?,
            Global::Version => system::version(&mut t)?,
            Global::Filesystems => system::filesystems(&mut t)?,
            Global::Mounts => system::mounts(&mut t)?,
            Global::LockStat => system::lock_stat(&mut t)?,
        },
        Node::SysVm(i) => sysvm::show(i, &mut t)?,
        Node::Pid(pid, f) => match f {
            PidFile::Maps => task::maps(pid, &mut t)?,
            PidFile::Smaps => task::smaps(pid, &mut t)?,
            PidFile::SmapsRollup => task::smaps_rollup(pid, &mut t)?,
            PidFile::Status => task::status(pid, &mut t)?,
            PidFile::Stat => task::stat(pid, &mut t)?,
            PidFile::Statm => task::statm(pid, &mut t)?,
            PidFile::Cmdline => task::cmdline(pid, &mut t.bytes)?,
            PidFile::Comm => task::comm(pid, &mut t)?,
            PidFile::Exe | PidFile::Pagemap => return Err(ProcError::Invalid),
        },
        Node::Fdinfo(pid, n) => fd::info(pid, n, &mut t)?,
        _ => return Err(ProcError::Invalid),
    }
    Ok(t)
}

/// Reads file `node` at byte `offset` into `buf` (a kernel buffer: the
/// caller copies it to user memory with no lock held); returns the bytes
/// read, 0 at the end. Stateless: the text is made anew for each call, so
/// a file read in pieces should go through [`ProcFile`]. `pagemap` is read in whole 8-byte entries at
/// `offset = page number * 8` (`EINVAL` otherwise, as Linux).
pub fn read(node: Node, offset: u64, buf: &mut [u8]) -> Result<usize> {
    match node {
        Node::Pid(pid, PidFile::Pagemap) => task::pagemap_read(pid, offset, buf),
        _ if kind(node) != Kind::File => Err(ProcError::Invalid),
        _ => Ok(copy_at(&generate(node)?.bytes, offset, buf)),
    }
}

/// An open `/proc` file: what the VFS keeps in its file object. A text
/// file is generated at its first read (and again at every read from
/// offset 0, as Linux's `seq_file` starts over), and later reads at higher
/// offsets copy from that text: a reader going through it in small pieces
/// gets one consistent snapshot, as on Linux. `pagemap` is read live.
pub struct ProcFile {
    pub node: Node,
    text: Option<Text>,
}

impl ProcFile {
    /// Opens `node` (a file: `EISDIR`-like `Invalid` otherwise).
    pub fn open(node: Node) -> Result<ProcFile> {
        match kind(node) {
            Kind::File => Ok(ProcFile { node, text: None }),
            _ => Err(ProcError::Invalid),
        }
    }

    /// Reads at `offset` into the kernel buffer `buf` (copy it to user
    /// memory afterwards: no lock is held when this returns).
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if let Node::Pid(pid, PidFile::Pagemap) = self.node {
            return task::pagemap_read(pid, offset, buf);
        }
        if offset == 0 || self.text.is_none() {
            // The old text goes first: the new one may need its memory.
            self.text = None;
            self.text = Some(generate(self.node)?);
        }
        let text = self.text.as_ref().map_or(&[][..], |t| &t.bytes[..]);
        Ok(copy_at(text, offset, buf))
    }

    /// Writes `data` (see [`write`]).
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        write(self.node, data)
    }
}

/// Copies `text[offset..]` into `buf` as far as it fits.
fn copy_at(text: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    if start >= text.len() {
        return 0;
    }
    let n = buf.len().min(text.len() - start);
    buf[..n].copy_from_slice(&text[start..start + n]);
    n
}

/// Writes `data` to file `node` (the tunables of `/proc/sys/vm`); returns
/// the bytes taken (all of them).
pub fn write(node: Node, data: &[u8]) -> Result<usize> {
    match node {
        Node::SysVm(i) => sysvm::write(i, data).map(|()| data.len()),
        _ if kind(node) == Kind::File => Err(ProcError::ReadOnly),
        _ => Err(ProcError::Invalid),
    }
}

/// The target of link `node`: `self` -> `"<pid>"`, `exe` -> the program.
pub fn readlink(node: Node) -> Result<Vec<u8>> {
    match node {
        Node::SelfLink => {
            let name = Name::number(sched::with_current(|p| p.tgid()));
            Ok(kalloc::try_to_vec(name.as_str().as_bytes())?)
        }
        Node::Pid(pid, PidFile::Exe) => task::exe(pid),
        Node::Fd(pid, n) => fd::target(pid, n),
        _ => Err(ProcError::Invalid),
    }
}
