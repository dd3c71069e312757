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

/// The path of the ramdisk file with page-cache id `id` (`None` for any
/// other page-cache object: shared anonymous memory). Allocates nothing.
pub fn path_of(id: u32) -> Option<&'static str> {
    ramdisk()?
        .files
        .iter()
        .find(|(_, f)| f.id == id)
        .map(|&(path, _)| path)
}
