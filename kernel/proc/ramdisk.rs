//! The ramdisk: a cpio (newc) archive the boot tool packs and the bootloader
//! loads; read-only files by path. Every file is registered with the page
//! cache at boot, so its pages are shared by every mapping and opening a
//! file allocates nothing (a user's `open` cannot run the heap out).
//!
//! `/etc/cmdline`, if present, is the kernel's boot command line (the boot
//! tool packs `FERRITE_CMDLINE` there); it is applied here, before the first
//! user process starts (see [`crate::mm::failslab::apply_cmdline`]).

use alloc::vec::Vec;
use spin::Once;
use usercore::cpio::Archive;

use crate::mm::pagecache;

/// The archive and, sorted by path, each file with its page-cache id.
struct Ramdisk {
    archive: Archive<'static>,
    files: Vec<(&'static str, RamFile)>,
}

static RAMDISK: Once<Option<Ramdisk>> = Once::new();

/// Where the boot command line is read from.
pub const CMDLINE: &str = "/etc/cmdline";

pub fn init() {
    RAMDISK.call_once(|| {
        let bytes = crate::boot::facts().ramdisk_bytes()?;
        let archive = match Archive::parse(bytes) {
            Ok(archive) => archive,
            Err(e) => {
                log::error!("ramdisk: not a valid cpio archive: {e}");
                return None;
            }
        };
        // Boot time: allocation failure here is fatal anyway. One
        // allocation of the right size and an in-place sort: no temporary
        // buffers that would leave empty slabs behind.
        let count = archive.files().filter(|f| f.is_file()).count();
        let mut files: Vec<(&'static str, RamFile)> = Vec::with_capacity(count);
        for f in archive.files().filter(|f| f.is_file()) {
            let file = RamFile {
                data: f.data,
                id: pagecache::register(f.data),
            };
            files.push((f.path, file));
        }
        // Stable for equal paths (the first in the archive wins, as
        // `Archive::find` finds it): sort by (path, position).
        files.sort_unstable_by_key(|&(path, file)| (path, file.id));
        files.dedup_by_key(|&mut (path, _)| path);
        log::info!("ramdisk: {} KiB, {} files", bytes.len() / 1024, files.len());
        Some(Ramdisk { archive, files })
    });
    if let Some(cmdline) = open(CMDLINE) {
        match core::str::from_utf8(cmdline.data) {
            Ok(text) => {
                crate::mm::failslab::apply_cmdline(text);
            }
            Err(_) => log::warn!("{CMDLINE} is not text; ignored"),
        }
    }
}

/// A file's bytes and its page-cache id.
#[derive(Clone, Copy)]
pub struct RamFile {
    pub data: &'static [u8],
    pub id: u32,
}

fn ramdisk() -> Option<&'static Ramdisk> {
    RAMDISK.get()?.as_ref()
}

/// The file at `path` (a directory or a missing path is `None`). Allocates
/// nothing.
pub fn open(path: &str) -> Option<RamFile> {
    let ramdisk = ramdisk()?;
    // The archive's own lookup knows its path rules (a leading `/`, `./`).
    let entry = ramdisk.archive.find(path)?;
    if !entry.is_file() {
        return None;
    }
    let at = ramdisk
        .files
        .binary_search_by_key(&entry.path, |&(p, _)| p)
        .ok()?;
    Some(ramdisk.files[at].1)
}

/// Every file path, in archive order, for `ls` (allocates nothing).
pub fn paths() -> impl Iterator<Item = &'static str> {
    ramdisk()
        .into_iter()
        .flat_map(|r| r.archive.files().filter(|f| f.is_file()).map(|f| f.path))
}

/// A child of a ramdisk directory.
pub enum Child {
    Dir(&'static str),
    File(&'static str, RamFile),
    Symlink(&'static str, &'static [u8]),
}

/// The first component of `path` below directory `dir` (`""` the root),
/// and whether more components follow it.
fn below<'a>(dir: &str, path: &'a str) -> Option<(&'a str, bool)> {
    let rel = if dir.is_empty() {
        path
    } else {
        path.strip_prefix(dir)?.strip_prefix('/')?
    };
    if rel.is_empty() {
        return None;
    }
    Some(match rel.split_once('/') {
        Some((first, _)) => (first, true),
        None => (rel, false),
    })
}

/// The entry `name` of directory `dir` (`""` the root): a file, a symbolic
/// link, or a directory (listed in the archive, or the prefix of a path).
/// Allocates nothing.
pub fn child(dir: &str, name: &str) -> Option<Child> {
    let ramdisk = ramdisk()?;
    let mut found = None;
    for e in ramdisk.archive.files() {
        let Some((first, more)) = below(dir, e.path) else {
            continue;
        };
        if first != name {
            continue;
        }
        let prefix = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let path = &e.path[..prefix + first.len()];
        found = Some(if more || e.is_dir() {
            Child::Dir(path)
        } else if e.is_symlink() {
            Child::Symlink(path, e.data)
        } else if e.is_file() {
            let at = ramdisk
                .files
                .binary_search_by_key(&e.path, |&(p, _)| p)
                .ok()?;
            Child::File(path, ramdisk.files[at].1)
        } else {
            continue;
        });
        if more {
            return found;
        }
    }
    found
}

/// The entries of directory `dir`, each name once, with its type.
pub fn children(
    dir: &'static str,
) -> impl Iterator<Item = (&'static str, usercore::fsabi::FileType)> {
    use usercore::fsabi::FileType;
    let entries = ramdisk().map(|r| r.archive.files());
    let all = entries.clone();
    entries
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(move |(i, e)| {
            let (first, more) = below(dir, e.path)?;
            // Listed once: skip a name an earlier entry already gave.
            let seen = all
                .clone()
                .into_iter()
                .flatten()
                .take(i)
                .any(|earlier| below(dir, earlier.path).is_some_and(|(f, _)| f == first));
            if seen {
                return None;
            }
            let kind = if more || e.is_dir() {
                FileType::Directory
            } else if e.is_symlink() {
                FileType::Symlink
            } else if e.is_file() {
                FileType::Regular
            } else {
                return None;
            };
            Some((first, kind))
        })
}

/// The permission bits of the entry at `path`.
pub fn permissions(path: &str) -> Option<u32> {
    Some(ramdisk()?.archive.find(path)?.permissions())
}
