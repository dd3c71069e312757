//! The ramdisk: a cpio (newc) archive the boot tool packs and the bootloader
//! loads; read-only files by path. Each file becomes a page-cache file the
//! first time it is opened, so its pages are shared by every mapping.

use alloc::collections::BTreeMap;
use alloc::string::String;
use spin::{Mutex, Once};
use usercore::cpio::Archive;

use crate::mm::pagecache;

static ARCHIVE: Once<Option<Archive<'static>>> = Once::new();
static FILE_IDS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

pub fn init() {
    ARCHIVE.call_once(|| {
        let (virt, len) = crate::boot::facts().ramdisk?;
        // SAFETY: the bootloader mapped the ramdisk at `virt..virt+len` in
        // its dynamic range; those mappings and frames (Bootloader memory)
        // are never reused, and the ramdisk is only read.
        let bytes: &'static [u8] =
            unsafe { core::slice::from_raw_parts(virt as *const u8, len as usize) };
        match Archive::parse(bytes) {
            Ok(archive) => {
                log::info!(
                    "ramdisk: {} KiB, {} files",
                    len / 1024,
                    archive.files().filter(|f| f.is_file()).count()
                );
                Some(archive)
            }
            Err(e) => {
                log::error!("ramdisk: not a valid cpio archive: {e}");
                None
            }
        }
    });
}

/// A file's bytes and its page-cache id.
#[derive(Clone, Copy)]
pub struct RamFile {
    pub data: &'static [u8],
    pub id: u32,
}

pub fn open(path: &str) -> Option<RamFile> {
    let archive = ARCHIVE.get()?.as_ref()?;
    let entry = archive.find(path)?;
    if !entry.is_file() {
        return None;
    }
    let data: &'static [u8] = entry.data;
    let key = String::from(entry.path);
    let id = x86_64::instructions::interrupts::without_interrupts(|| {
        *FILE_IDS
            .lock()
            .entry(key)
            .or_insert_with(|| pagecache::register(data))
    });
    Some(RamFile { data, id })
}

/// Every file path, for `ls`.
pub fn paths() -> alloc::vec::Vec<String> {
    match ARCHIVE.get().and_then(|a| a.as_ref()) {
        Some(a) => a
            .files()
            .filter(|f| f.is_file())
            .map(|f| String::from(f.path))
            .collect(),
        None => alloc::vec::Vec::new(),
    }
}
