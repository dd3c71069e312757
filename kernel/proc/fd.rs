//! The descriptor table of a process (Linux's `files_struct`), with the
//! process's working directory and umask (Linux's `fs_struct`) alongside.
//!
//! A descriptor names an open file description ([`File`]): `dup`, `fcntl
//! (F_DUPFD)` and `fork` make more descriptors of the same description
//! (one offset, one set of status flags); only the close-on-exec flag
//! belongs to the descriptor itself. The table grows fallibly, up to
//! [`MAX_FDS`].
//!
//! The table lives in the scheduler's process record, so it is only
//! touched inside `sched::with_current`. A [`File`] whose last descriptor
//! goes may free memory when dropped (a tmpfs file with no name left): it
//! is always taken out of the table first and dropped after, outside the
//! scheduler's lock.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::sched;
use crate::fs::file::File;
use crate::mm::kalloc::{self, AllocError};

/// The most descriptors a process may have open (Linux's default
/// `RLIMIT_NOFILE` soft limit).
pub const MAX_FDS: usize = 1024;

/// One descriptor.
#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<File>,
    /// `FD_CLOEXEC`: closed by `execve`.
    pub cloexec: bool,
}

/// A process's descriptors, working directory and umask.
pub struct FdTable {
    entries: Vec<Option<FdEntry>>,
    /// The working directory: an absolute, normalised path.
    pub cwd: Vec<u8>,
    /// The file-mode creation mask.
    pub umask: u32,
    /// The absolute path of the program running (`/proc/<pid>/exe`),
    /// set by exec; empty for the kernel thread.
    pub exe: Vec<u8>,
}

impl FdTable {
    /// An empty table (the kernel thread's), at `/`.
    pub const fn empty() -> FdTable {
        FdTable {
            entries: Vec::new(),
            cwd: Vec::new(),
            umask: 0o022,
            exe: Vec::new(),
        }
    }

    /// The table a new process starts with: 0, 1 and 2 the console (one
    /// description, as a terminal's three are), at `/`.
    pub fn standard() -> Result<FdTable, AllocError> {
        let console = File::new(crate::fs::console::ops(), crate::fs::file::flags::O_RDWR)
            .map_err(|_| AllocError)?;
        let entry = FdEntry {
            file: console,
            cloexec: false,
        };
        Ok(FdTable {
            entries: kalloc::try_to_vec(&[Some(entry.clone()), Some(entry.clone()), Some(entry)])?,
            cwd: kalloc::try_to_vec(b"/")?,
            umask: 0o022,
            exe: Vec::new(),
        })
    }

    /// A copy for a child (fork): the same descriptions, shared.
    pub fn try_clone(&self) -> Result<FdTable, AllocError> {
        Ok(FdTable {
            entries: kalloc::try_to_vec(&self.entries)?,
            cwd: kalloc::try_to_vec(&self.cwd)?,
            umask: self.umask,
            exe: kalloc::try_to_vec(&self.exe)?,
        })
    }

    /// The file at `fd`.
    pub fn get(&self, fd: u64) -> Option<&FdEntry> {
        self.entries.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    pub fn get_mut(&mut self, fd: u64) -> Option<&mut FdEntry> {
        self.entries.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    /// Puts `entry` in the lowest free descriptor at or above `min`.
    pub fn install_from(&mut self, min: usize, entry: FdEntry) -> Result<usize, InstallError> {
        if min >= MAX_FDS {
            return Err(InstallError::TableFull);
        }
        let free = self
            .entries
            .iter()
            .enumerate()
            .skip(min)
            .find(|(_, e)| e.is_none())
            .map(|(i, _)| i);
        let slot = match free {
            Some(i) => i,
            None => {
                let slot = self.entries.len().max(min);
                if slot >= MAX_FDS {
                    return Err(InstallError::TableFull);
                }
                self.grow_to(slot + 1)?;
                slot
            }
        };
        self.entries[slot] = Some(entry);
        Ok(slot)
    }

    fn grow_to(&mut self, len: usize) -> Result<(), InstallError> {
        if len > self.entries.len() {
            let more = len - self.entries.len();
            kalloc::try_reserve(&mut self.entries, more).map_err(|_| InstallError::OutOfMemory)?;
            self.entries.resize(len, None);
        }
        Ok(())
    }

    /// Puts `entry` at `fd`, returning what was there (to be dropped by the
    /// caller, outside the scheduler's lock): `dup2`/`dup3`.
    pub fn install_at(
        &mut self,
        fd: usize,
        entry: FdEntry,
    ) -> Result<Option<FdEntry>, InstallError> {
        if fd >= MAX_FDS {
            return Err(InstallError::TableFull);
        }
        self.grow_to(fd + 1)?;
        Ok(self.entries[fd].replace(entry))
    }

    /// Takes descriptor `fd` out (`close`).
    pub fn take(&mut self, fd: u64) -> Option<FdEntry> {
        self.entries.get_mut(usize::try_from(fd).ok()?)?.take()
    }

    /// Takes out the lowest close-on-exec descriptor, if any is left
    /// (`execve` closes them one at a time, each dropped outside the lock).
    pub fn take_one_cloexec(&mut self) -> Option<FdEntry> {
        self.entries
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|e| e.cloexec))?
            .take()
    }

    /// Takes every descriptor out (exit), leaving the table empty.
    pub fn take_all(&mut self) -> FdTable {
        core::mem::replace(self, FdTable::empty())
    }

    /// The open descriptors, lowest first (for `/proc/<pid>/fd`).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &FdEntry)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, e.as_ref()?)))
    }
}

/// The table a new process starts with ([`FdTable::standard`]).
pub fn standard() -> Result<FdTable, AllocError> {
    FdTable::standard()
}

/// The description behind the current process's descriptor `fd`.
pub fn get(fd: u64) -> Option<Arc<File>> {
    sched::thread::with_current_group(|p| p.fds.get(fd).map(|e| e.file.clone()))
}

/// Why `install` found no descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// All `MAX_FDS` are open (`EMFILE`).
    TableFull,
    /// The table could not grow (`ENOMEM`).
    OutOfMemory,
}

/// The lowest free descriptor of the current process, now holding `file`.
pub fn install(file: Arc<File>, cloexec: bool) -> Result<i64, InstallError> {
    sched::thread::with_current_group(|p| p.fds.install_from(0, FdEntry { file, cloexec }))
        .map(|fd| fd as i64)
}

/// Closes `fd`; the description is dropped here, outside the lock.
pub fn close(fd: u64) -> Option<()> {
    let entry = sched::thread::with_current_group(|p| p.fds.take(fd))?;
    drop(entry);
    Some(())
}

/// `execve`: closes the close-on-exec descriptors.
pub fn close_on_exec() {
    while let Some(closed) = sched::thread::with_current_group(|p| p.fds.take_one_cloexec()) {
        drop(closed);
    }
}

/// The current process's working directory (a copy).
pub fn cwd() -> Result<Vec<u8>, AllocError> {
    sched::thread::with_current_group(|p| kalloc::try_to_vec(&p.fds.cwd))
}

/// The absolute path of program `path` as exec finds it (the ramdisk's
/// paths are relative to `/`), for [`FdTable::exe`].
pub fn exe_path(path: &str) -> Result<Vec<u8>, AllocError> {
    let rel = usercore::cpio::normalize(path);
    let mut out = kalloc::try_with_capacity(rel.len() + 1)?;
    out.push(b'/');
    out.extend_from_slice(rel.as_bytes());
    Ok(out)
}

/// Records the program process `pid` runs (exec).
pub fn set_exe(pid: super::sched::Pid, exe: Vec<u8>) {
    let old = sched::with_process(pid, |p| core::mem::replace(&mut p.fds.exe, exe));
    drop(old);
}
