//! File descriptors: 0, 1 and 2 are the console; `open` adds read-only
//! ramdisk files. Each process has its own table, copied by fork and kept
//! across exec.

use alloc::vec::Vec;

use super::ramdisk::RamFile;
use super::sched;
use crate::mm::kalloc::{self, AllocError};

#[derive(Clone, Copy)]
pub enum OpenFile {
    Console,
    Ramdisk { file: RamFile, pos: u64 },
}

/// The table a new process starts with.
pub fn standard() -> Result<Vec<Option<OpenFile>>, AllocError> {
    kalloc::try_to_vec(&[Some(OpenFile::Console); 3])
}

pub const MAX_FDS: usize = 64;

pub fn get(fd: u64) -> Option<OpenFile> {
    sched::with_current(|p| p.fds.get(fd as usize).copied().flatten())
}

pub fn set_pos(fd: u64, new: u64) {
    sched::with_current(|p| {
        if let Some(Some(OpenFile::Ramdisk { pos, .. })) = p.fds.get_mut(fd as usize) {
            *pos = new;
        }
    })
}

/// Why `install` found no descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// All `MAX_FDS` are open (`EMFILE`).
    TableFull,
    /// The table could not grow (`ENOMEM`).
    OutOfMemory,
}

/// The lowest free descriptor, now holding `file`.
pub fn install(file: OpenFile) -> Result<i64, InstallError> {
    sched::with_current(|p| {
        let slot = match p.fds.iter().position(Option::is_none) {
            Some(i) => i,
            None if p.fds.len() < MAX_FDS => {
                kalloc::try_push(&mut p.fds, None).map_err(|_| InstallError::OutOfMemory)?;
                p.fds.len() - 1
            }
            None => return Err(InstallError::TableFull),
        };
        p.fds[slot] = Some(file);
        Ok(slot as i64)
    })
}

pub fn close(fd: u64) -> Option<()> {
    sched::with_current(|p| p.fds.get_mut(fd as usize)?.take().map(|_| ()))
}
