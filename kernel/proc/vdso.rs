//! The vDSO: a small ELF shared object mapped into every process, so that
//! `clock_gettime`, `gettimeofday`, `time` and `getcpu` run without a
//! system call, as on Linux. musl and glibc find it through
//! `AT_SYSINFO_EHDR` in the auxiliary vector and look up
//! `__vdso_clock_gettime` (version `LINUX_2.6`) in its dynamic symbols.
//!
//! Built once at boot: the code (`arch::vdso`, assembled with the kernel)
//! wrapped in an ELF image by `usercore::vdso::build`, and the data page
//! the code reads (the TSC calibration, the TSC at boot, the boot wall
//! time from the RTC, the tick). Both pages are one page-cache "file":
//! page 0 the data (`[vvar]`, read-only), page 1 the image (`[vdso]`,
//! read and execute), mapped privately at a fixed place below the stack. Fork
//! copies the regions like any other; exec maps them anew.
//!
//! The data is fixed once the clock is calibrated and the RTC read (the
//! wall clock cannot be set), so the page is filled before the first
//! process and never changes; its sequence count (0, even) is where a
//! settable clock would make readers retry.

use alloc::vec::Vec;

use spin::Once;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{Prot, Sharing, VmError, Vma, VmaKind};

use crate::arch::vdso as code;
use crate::mm::aspace::AddressSpace;

/// Where the data page is mapped; the image is the page above it. Between
/// the top of the `mmap` area and the lowest the stack may grow.
pub const VVAR_ADDR: u64 = 0x7fff_f000_0000;
/// The vDSO image's address (`AT_SYSINFO_EHDR`).
pub const VDSO_ADDR: u64 = VVAR_ADDR + 4096;

/// The page-cache file holding [data page, image].
static FILE: Once<u32> = Once::new();

/// Builds the image and the data page. Called at boot, after the TSC is
/// calibrated and the RTC read (they are in the data page).
pub fn init() {
    FILE.call_once(|| {
        let (text, symbols) = code::text();
        let image = usercore::vdso::build(text, &symbols, "LINUX_2.6", "linux-vdso.so.1")
            .expect("the vDSO fits in a page");
        let mut bytes: Vec<u8> = alloc::vec![0; 4096];
        let mut put = |at: usize, v: u64| bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(code::VVAR_SEQ, 0);
        put(code::VVAR_TSC_KHZ, crate::time::tsc_khz());
        put(code::VVAR_BOOT_TSC, crate::time::boot_tsc());
        put(code::VVAR_BOOT_WALL_NS, crate::time::boot_wall_ns() as u64);
        put(code::VVAR_TICK_NS, crate::time::TICK_NS);
        bytes.extend_from_slice(&image);
        crate::mm::pagecache::register(bytes.leak())
    });
}

fn region(start: u64, prot: Prot, offset: u64, tag: VmaTag) -> Vma {
    Vma {
        start,
        end: start + 4096,
        prot,
        sharing: Sharing::Private,
        kind: VmaKind::File {
            file: *FILE.get().expect("vdso::init ran"),
            offset,
        },
        flags: VmaFlags {
            grows_down: false,
            tag,
            account: false,
            noreserve: false,
            no_write: false,
        },
    }
}

/// Maps `[vvar]` and `[vdso]` into a new program's address space; returns
/// the image's address for `AT_SYSINFO_EHDR`.
pub fn map_into(aspace: &mut AddressSpace) -> Result<u64, VmError> {
    aspace.map(region(VVAR_ADDR, Prot::READ, 0, VmaTag::Vvar))?;
    aspace.map(region(
        VDSO_ADDR,
        Prot::READ | Prot::EXEC,
        4096,
        VmaTag::Vdso,
    ))?;
    Ok(VDSO_ADDR)
}
