//! Files: open file descriptions ([`file`]), the file-system tree and its
//! mount table ([`vfs`]), and the file systems: the read-only ramdisk at
//! `/` ([`ramfs`]), a writable [`tmpfs`] at `/tmp`, the devices in `/dev`
//! ([`devfs`]) and the console as a file ([`console`]).
//!
//! The system calls that reach them are in `proc::syscall` (`fs`, `path`,
//! `fd`); the descriptor table is `proc::fd`.

pub mod console;
pub mod devfs;
pub mod file;
pub mod pipe;
pub mod poll;
pub mod ramfs;
pub mod tmpfs;
pub mod vfs;

pub use file::{File, FileOps};
