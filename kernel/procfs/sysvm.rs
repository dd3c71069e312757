//! `/proc/sys/vm/*`: the kernel's memory tunables by their Linux names.
//! One table for `/proc` and the shell's `sysctl` (which shows
//! `vm.NAME = VALUE`).
//!
//! Reading gives the value and a newline; writing takes a decimal number
//! (surrounding white space allowed, as Linux's `proc_dointvec`) and gives
//! `EINVAL` when it is not one or out of the tunable's range. The ones
//! Ferrite computes or fixes are read-only (mode 0444: `EACCES`).

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{ProcError, Result};
use crate::mm::commit;

/// Why a value was not set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetError {
    /// Out of the tunable's range (Linux: `EINVAL`).
    Invalid,
    /// Fixed in Ferrite.
    ReadOnly,
}

/// One tunable: its name under `vm`, and how to read and set it.
pub struct Tunable {
    pub name: &'static str,
    pub get: fn() -> u64,
    /// `None`: fixed in Ferrite (read-only).
    pub set: Option<fn(u64) -> core::result::Result<(), SetError>>,
}

impl Tunable {
    pub fn writable(&self) -> bool {
        self.set.is_some()
    }

    /// Sets it to `v`.
    pub fn set(&self, v: u64) -> core::result::Result<(), SetError> {
        (self.set.ok_or(SetError::ReadOnly)?)(v)
    }
}

/// The last value written to `drop_caches` (Linux shows it back).
static DROP_CACHES: AtomicU64 = AtomicU64::new(0);

/// `drop_caches`: 1 drops the clean page cache no process maps (Linux's
/// `invalidate_mapping_pages` leaves mapped pages too), 2 gives the slab
/// heap's empty slabs back, 3 both. Returns the pages freed.
pub fn drop_caches(what: u64) -> u64 {
    let mut freed = 0;
    if what & 1 != 0 {
        freed += crate::mm::pagecache::shrink_unmapped();
    }
    if what & 2 != 0 {
        let before = crate::mm::frames::with(|m| m.buddy.free_pages());
        crate::mm::frames::with(|m| m.slab.shrink(&mut m.buddy));
        let after = crate::mm::frames::with(|m| m.buddy.free_pages());
        freed += after.saturating_sub(before);
    }
    freed
}

/// Every tunable, sorted by name (as `ls /proc/sys/vm` and `sysctl -a`
/// list them).
pub static TUNABLES: &[Tunable] = &[
    Tunable {
        name: "drop_caches",
        get: || DROP_CACHES.load(Ordering::Relaxed),
        set: Some(|v| match v {
            1..=4 => {
                // 4 only silences Linux's log message.
                drop_caches(v);
                DROP_CACHES.store(v, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(SetError::Invalid),
        }),
    },
    Tunable {
        name: "max_map_count",
        get: || vmcore::vma::MAX_MAP_COUNT as u64,
        set: None,
    },
    Tunable {
        // The min watermark in KiB, computed at boot (read-only here).
        name: "min_free_kbytes",
        get: || crate::mm::kswapd::watermarks().min * 4,
        set: None,
    },
    Tunable {
        name: "mmap_min_addr",
        get: || crate::mm::layout::USER_MIN,
        set: None,
    },
    Tunable {
        name: "overcommit_kbytes",
        get: || commit::policy().kbytes,
        set: Some(|v| {
            commit::set_kbytes(v);
            Ok(())
        }),
    },
    Tunable {
        name: "overcommit_memory",
        get: || commit::policy().mode.value(),
        set: Some(|v| commit::set_mode(v).ok_or(SetError::Invalid)),
    },
    Tunable {
        name: "overcommit_ratio",
        get: || commit::policy().ratio,
        set: Some(|v| commit::set_ratio(v).ok_or(SetError::Invalid)),
    },
    Tunable {
        name: "swappiness",
        get: || crate::mm::reclaim::swappiness() as u64,
        set: Some(|v| match u32::try_from(v) {
            Ok(v) if v <= 200 => {
                crate::mm::reclaim::set_swappiness(v);
                Ok(())
            }
            _ => Err(SetError::Invalid),
        }),
    },
    Tunable {
        name: "watermark_scale_factor",
        get: || 10,
        set: None,
    },
];

/// The index of tunable `name`.
pub fn find(name: &str) -> Option<usize> {
    TUNABLES.iter().position(|t| t.name == name)
}

/// The file's text: the value and a newline.
pub fn show(i: usize, out: &mut dyn Write) -> Result {
    writeln!(out, "{}", (TUNABLES[i].get)())?;
    Ok(())
}

/// A number as `proc_dointvec` takes it: decimal, white space around.
pub fn parse(data: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(data).ok()?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Sets tunable `i` from the bytes written to its file.
pub fn write(i: usize, data: &[u8]) -> Result {
    let t = &TUNABLES[i];
    if !t.writable() {
        return Err(ProcError::ReadOnly);
    }
    let v = parse(data).ok_or(ProcError::Invalid)?;
    t.set(v).map_err(|e| match e {
        SetError::Invalid => ProcError::Invalid,
        SetError::ReadOnly => ProcError::ReadOnly,
    })
}
