//! Symbol names for backtraces, read from the kernel's own ELF file.
//!
//! The bootloader leaves the whole kernel file in memory (`BootInfo::kernel_addr`)
//! and the images keep `.symtab` (only debug info is stripped), so the kernel
//! can name the functions in a backtrace on any machine, serial port or not.

use core::fmt;

use spin::Once;

struct SymbolTable {
    symtab: &'static [u8],
    strtab: &'static [u8],
}

static TABLE: Once<Option<SymbolTable>> = Once::new();

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Finds `.symtab` and its string table; any inconsistency means "no symbols".
fn parse(elf: &'static [u8]) -> Option<SymbolTable> {
    if elf.get(0..4)? != b"\x7fELF" || *elf.get(4)? != 2 {
        return None;
    }
    let shoff = read_u64(elf, 0x28)? as usize;
    let shentsize = read_u16(elf, 0x3a)? as usize;
    let shnum = read_u16(elf, 0x3c)? as usize;
    let section = |i: usize| -> Option<(u32, usize, usize, u32)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let kind = read_u32(elf, at + 4)?;
        let offset = read_u64(elf, at + 0x18)? as usize;
        let size = read_u64(elf, at + 0x20)? as usize;
        let link = read_u32(elf, at + 0x28)?;
        Some((kind, offset, size, link))
    };
    for i in 0..shnum {
        let (kind, offset, size, link) = section(i)?;
        if kind != SHT_SYMTAB {
            continue;
        }
        let (_, str_offset, str_size, _) = section(link as usize)?;
        return Some(SymbolTable {
            symtab: elf.get(offset..offset.checked_add(size)?)?,
            strtab: elf.get(str_offset..str_offset.checked_add(str_size)?)?,
        });
    }
    None
}

pub fn init(_: &crate::boot::Boot) {
    TABLE.call_once(|| parse(crate::mm::direct::kernel_file()));
}

/// A function containing an address, and the offset into it.
pub struct Symbol {
    pub name: &'static str,
    pub offset: u64,
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{:#}+{:#x}",
            rustc_demangle::demangle(self.name),
            self.offset
        )
    }
}

/// The function containing `addr`, if it is in the kernel image.
///
/// Safe on the fatal-error path: lock-free, no allocation, and every read
/// is a bounds-checked slice access into the kernel file checked at boot
/// (frames reserved since, reached through the direct map); the scan is
/// bounded by the table's size.
pub fn lookup(addr: u64) -> Option<Symbol> {
    if addr < crate::mm::layout::KERNEL_BASE {
        return None;
    }
    let table = TABLE.get()?.as_ref()?;
    for sym in table.symtab.as_chunks::<SYM_SIZE>().0 {
        let info = sym[4];
        if info & 0xf != STT_FUNC {
            continue;
        }
        let value = read_u64(sym, 8)?;
        let size = read_u64(sym, 16)?;
        if addr < value || addr >= value.saturating_add(size.max(1)) {
            continue;
        }
        let name_at = read_u32(sym, 0)? as usize;
        let bytes = table.strtab.get(name_at..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        let name = core::str::from_utf8(&bytes[..end]).ok()?;
        return Some(Symbol {
            name,
            offset: addr - value,
        });
    }
    None
}
