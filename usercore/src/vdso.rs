//! The vDSO's ELF image: a one-page shared object around position-
//! independent code (the kernel assembles the code; this wraps it), with
//! the dynamic symbol table, SysV hash table and symbol versions that C
//! libraries search: musl's `__vdsosym` walks `DT_HASH`'s symbol count and
//! checks `DT_VERSYM`/`DT_VERDEF`; glibc looks symbols up through the hash
//! table with version `LINUX_2.6`, as on Linux.
//!
//! Layout (one page, linked at address 0, so a symbol's value is its
//! offset from the load address): ELF header, program headers (`PT_LOAD`
//! of the whole page R+X, `PT_DYNAMIC`), `.hash`, `.dynsym`, `.dynstr`,
//! `.gnu.version`, `.gnu.version_d`, `.dynamic`, the section names and
//! headers, and the code at [`TEXT_OFFSET`].

use alloc::vec;
use alloc::vec::Vec;

/// Where the code starts in the image. The code addresses its data page
/// (mapped just below the image) relative to itself, so it must know this.
pub const TEXT_OFFSET: usize = 0x800;
/// The image's size: one page.
pub const IMAGE_SIZE: usize = crate::PAGE_SIZE as usize;

/// Why an image could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VdsoError {
    /// The code does not fit after [`TEXT_OFFSET`] in one page.
    TextTooBig,
    /// The tables do not fit below [`TEXT_OFFSET`] (too many or too long
    /// names).
    TablesTooBig,
    /// A symbol's offset is outside the code.
    BadSymbol,
}

/// The SysV ELF hash (`DT_HASH`, `vd_hash`).
pub fn elf_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

// ELF constants (the subset used here).
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PF_X: u32 = 1;
const PF_R: u32 = 4;
const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_SONAME: u64 = 14;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const STB_GLOBAL_STT_FUNC: u8 = 0x12;
const VER_FLG_BASE: u16 = 1;
const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHF_ALLOC_EXEC: u64 = 0x2 | 0x4;

/// A little-endian byte writer over the image.
struct Out {
    bytes: Vec<u8>,
}

impl Out {
    fn at(&mut self, off: usize, data: &[u8]) {
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }
    fn u16(&mut self, off: usize, v: u16) {
        self.at(off, &v.to_le_bytes());
    }
    fn u32(&mut self, off: usize, v: u32) {
        self.at(off, &v.to_le_bytes());
    }
    fn u64(&mut self, off: usize, v: u64) {
        self.at(off, &v.to_le_bytes());
    }
}

const fn align8(v: usize) -> usize {
    (v + 7) & !7
}

/// Builds the image: `text` placed at [`TEXT_OFFSET`], each `(name,
/// offset in text)` exported as a global function of version `version`
/// (the only version besides the base one, `soname`).
pub fn build(
    text: &[u8],
    symbols: &[(&str, usize)],
    version: &str,
    soname: &str,
) -> Result<Vec<u8>, VdsoError> {
    if text.len() > IMAGE_SIZE - TEXT_OFFSET {
        return Err(VdsoError::TextTooBig);
    }
    if symbols.iter().any(|&(_, off)| off >= text.len()) {
        return Err(VdsoError::BadSymbol);
    }
    let nsyms = symbols.len() + 1; // the null symbol first
                                   // String table: "", soname, version, then the names.
    let mut strtab: Vec<u8> = vec![0];
    let mut add_str = |s: &str| {
        let off = strtab.len() as u32;
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
        off
    };
    let soname_off = add_str(soname);
    let version_off = add_str(version);
    let name_offs: Vec<u32> = symbols.iter().map(|&(n, _)| add_str(n)).collect();
    let shstrtab: &[u8] = b"\0.text\0.shstrtab\0";

    // Offsets of each part.
    let phoff = 64;
    let hash = align8(phoff + 2 * 56);
    let nbucket = nsyms;
    let dynsym = align8(hash + 4 * (2 + nbucket + nsyms));
    let dynstr = dynsym + 24 * nsyms;
    let versym = align8(dynstr + strtab.len());
    let verdef = align8(versym + 2 * nsyms);
    let dynamic = align8(verdef + 2 * 28);
    let ndyn = 10;
    let shstr = dynamic + 16 * ndyn;
    let shoff = align8(shstr + shstrtab.len());
    let end = shoff + 3 * 64;
    if end > TEXT_OFFSET {
        return Err(VdsoError::TablesTooBig);
    }

    let mut o = Out {
        bytes: vec![0; IMAGE_SIZE],
    };
    // ELF header.
    o.at(0, &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    o.u16(16, 3); // ET_DYN
    o.u16(18, 62); // EM_X86_64
    o.u32(20, 1); // EV_CURRENT
    o.u64(24, 0); // no entry point
    o.u64(32, phoff as u64);
    o.u64(40, shoff as u64);
    o.u16(52, 64); // e_ehsize
    o.u16(54, 56); // e_phentsize
    o.u16(56, 2); // e_phnum
    o.u16(58, 64); // e_shentsize
    o.u16(60, 3); // e_shnum
    o.u16(62, 2); // e_shstrndx
                  // PT_LOAD: the whole page, read + execute, at address 0.
    let ph =
        |o: &mut Out, at: usize, kind: u32, flags: u32, off: usize, size: usize, align: u64| {
            o.u32(at, kind);
            o.u32(at + 4, flags);
            o.u64(at + 8, off as u64); // p_offset
            o.u64(at + 16, off as u64); // p_vaddr
            o.u64(at + 24, off as u64); // p_paddr
            o.u64(at + 32, size as u64); // p_filesz
            o.u64(at + 40, size as u64); // p_memsz
            o.u64(at + 48, align);
        };
    ph(
        &mut o,
        phoff,
        PT_LOAD,
        PF_R | PF_X,
        0,
        IMAGE_SIZE,
        IMAGE_SIZE as u64,
    );
    ph(&mut o, phoff + 56, PT_DYNAMIC, PF_R, dynamic, 16 * ndyn, 8);

    // .hash: nbucket, nchain, buckets, chains (SysV).
    o.u32(hash, nbucket as u32);
    o.u32(hash + 4, nsyms as u32);
    let buckets = hash + 8;
    let chains = buckets + 4 * nbucket;
    for (i, &(name, _)) in symbols.iter().enumerate() {
        let sym = (i + 1) as u32;
        let b = elf_hash(name.as_bytes()) as usize % nbucket;
        // Append to the bucket's chain.
        let mut slot = buckets + 4 * b;
        loop {
            let next = u32::from_le_bytes(o.bytes[slot..slot + 4].try_into().unwrap());
            if next == 0 {
                break;
            }
            slot = chains + 4 * next as usize;
        }
        o.u32(slot, sym);
    }

    // .dynsym: Elf64_Sym {name u32, info u8, other u8, shndx u16, value u64, size u64}.
    let mut sorted: Vec<usize> = symbols.iter().map(|&(_, off)| off).collect();
    sorted.sort_unstable();
    for (i, &(_, off)) in symbols.iter().enumerate() {
        let at = dynsym + 24 * (i + 1);
        let next = sorted
            .iter()
            .copied()
            .find(|&s| s > off)
            .unwrap_or(text.len());
        o.u32(at, name_offs[i]);
        o.bytes[at + 4] = STB_GLOBAL_STT_FUNC;
        o.u16(at + 6, 1); // section 1: .text
        o.u64(at + 8, (TEXT_OFFSET + off) as u64);
        o.u64(at + 16, (next - off) as u64);
    }
    o.at(dynstr, &strtab);
    // .gnu.version: the null symbol local (0), the rest version 2.
    for i in 1..nsyms {
        o.u16(versym + 2 * i, 2);
    }
    // .gnu.version_d: the base version (the soname), then `version`.
    let verdef_entry =
        |o: &mut Out, at: usize, flags: u16, ndx: u16, name: &str, name_off: u32, last: bool| {
            o.u16(at, 1); // vd_version
            o.u16(at + 2, flags);
            o.u16(at + 4, ndx);
            o.u16(at + 6, 1); // vd_cnt
            o.u32(at + 8, elf_hash(name.as_bytes()));
            o.u32(at + 12, 20); // vd_aux: the Verdaux right after
            o.u32(at + 16, if last { 0 } else { 28 }); // vd_next
            o.u32(at + 20, name_off); // vda_name
            o.u32(at + 24, 0); // vda_next
        };
    verdef_entry(&mut o, verdef, VER_FLG_BASE, 1, soname, soname_off, false);
    verdef_entry(&mut o, verdef + 28, 0, 2, version, version_off, true);
    // .dynamic.
    let entries = [
        (DT_HASH, hash as u64),
        (DT_STRTAB, dynstr as u64),
        (DT_SYMTAB, dynsym as u64),
        (DT_STRSZ, strtab.len() as u64),
        (DT_SYMENT, 24),
        (DT_SONAME, soname_off as u64),
        (DT_VERSYM, versym as u64),
        (DT_VERDEF, verdef as u64),
        (DT_VERDEFNUM, 2),
        (DT_NULL, 0),
    ];
    for (i, &(tag, val)) in entries.iter().enumerate() {
        o.u64(dynamic + 16 * i, tag);
        o.u64(dynamic + 16 * i + 8, val);
    }
    // Section headers: null, .text, .shstrtab (debuggers and readelf like
    // them; the symbols name section 1).
    o.at(shstr, shstrtab);
    let sh = |o: &mut Out, at: usize, name: u32, kind: u32, flags: u64, off: usize, size: usize| {
        o.u32(at, name);
        o.u32(at + 4, kind);
        o.u64(at + 8, flags);
        o.u64(at + 16, if flags != 0 { off as u64 } else { 0 }); // sh_addr
        o.u64(at + 24, off as u64);
        o.u64(at + 32, size as u64);
        o.u64(at + 48, 1); // sh_addralign
    };
    sh(
        &mut o,
        shoff + 64,
        1,
        SHT_PROGBITS,
        SHF_ALLOC_EXEC,
        TEXT_OFFSET,
        text.len(),
    );
    sh(&mut o, shoff + 128, 7, SHT_STRTAB, 0, shstr, shstrtab.len());
    o.at(TEXT_OFFSET, text);
    Ok(o.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd16(b: &[u8], o: usize) -> u16 {
        u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
    }
    fn rd32(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }
    fn rd64(b: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
    }
    fn cstr(b: &[u8], o: usize) -> &str {
        let end = b[o..].iter().position(|&c| c == 0).unwrap();
        core::str::from_utf8(&b[o..o + end]).unwrap()
    }

    /// musl's `__vdsosym`, transcribed: the dynamic table from the
    /// program headers, every symbol up to DT_HASH's nchain, the version
    /// checked through DT_VERSYM/DT_VERDEF.
    fn musl_lookup(img: &[u8], vername: &str, name: &str) -> Option<u64> {
        let phoff = rd64(img, 32) as usize;
        let (mut base, mut dynv) = (None, None);
        for i in 0..rd16(img, 56) as usize {
            let ph = phoff + i * rd16(img, 54) as usize;
            match rd32(img, ph) {
                PT_LOAD => base = Some(rd64(img, ph + 8) - rd64(img, ph + 16)),
                PT_DYNAMIC => dynv = Some(rd64(img, ph + 8) as usize),
                _ => {}
            }
        }
        let (base, mut d) = (base? as usize, dynv?);
        let (mut strings, mut syms, mut hashtab, mut versym, mut verdef) = (0, 0, 0, 0, 0);
        loop {
            let (tag, val) = (rd64(img, d), rd64(img, d + 8) as usize + base);
            match tag {
                DT_NULL => break,
                DT_STRTAB => strings = val,
                DT_SYMTAB => syms = val,
                DT_HASH => hashtab = val,
                DT_VERSYM => versym = val,
                DT_VERDEF => verdef = val,
                _ => {}
            }
            d += 16;
        }
        assert!(strings != 0 && syms != 0 && hashtab != 0 && versym != 0 && verdef != 0);
        for i in 0..rd32(img, hashtab + 4) as usize {
            let s = syms + 24 * i;
            let info = img[s + 4];
            if info & 0xf != 2 || (info >> 4 != 1 && info >> 4 != 2) || rd16(img, s + 6) == 0 {
                continue;
            }
            if cstr(img, strings + rd32(img, s) as usize) != name {
                continue;
            }
            let v = rd16(img, versym + 2 * i) & 0x7fff;
            let mut def = verdef;
            let ok = loop {
                if rd16(img, def + 2) & VER_FLG_BASE == 0 && rd16(img, def + 4) & 0x7fff == v {
                    let aux = def + rd32(img, def + 12) as usize;
                    break cstr(img, strings + rd32(img, aux) as usize) == vername;
                }
                if rd32(img, def + 16) == 0 {
                    break false;
                }
                def += rd32(img, def + 16) as usize;
            };
            if ok {
                return Some(base as u64 + rd64(img, s + 8));
            }
        }
        None
    }

    /// A lookup through the SysV hash chains (what glibc does).
    fn hash_lookup(img: &[u8], name: &str) -> Option<u64> {
        let dynamic = rd64(img, 64 + 56 + 8) as usize;
        let get = |tag| {
            (0..)
                .map(|i| dynamic + 16 * i)
                .find(|&d| rd64(img, d) == tag || rd64(img, d) == DT_NULL)
                .map(|d| rd64(img, d + 8) as usize)
                .unwrap()
        };
        let (hash, syms, strings) = (get(DT_HASH), get(DT_SYMTAB), get(DT_STRTAB));
        let nbucket = rd32(img, hash) as usize;
        let mut i = rd32(
            img,
            hash + 8 + 4 * (elf_hash(name.as_bytes()) as usize % nbucket),
        ) as usize;
        let chains = hash + 8 + 4 * nbucket;
        while i != 0 {
            if cstr(img, strings + rd32(img, syms + 24 * i) as usize) == name {
                return Some(rd64(img, syms + 24 * i + 8));
            }
            i = rd32(img, chains + 4 * i) as usize;
        }
        None
    }

    const NAMES: [&str; 4] = [
        "__vdso_clock_gettime",
        "__vdso_gettimeofday",
        "__vdso_time",
        "__vdso_getcpu",
    ];

    fn image() -> Vec<u8> {
        let text: Vec<u8> = (0..200u8).collect();
        let syms: Vec<(&str, usize)> = NAMES
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i * 40))
            .collect();
        build(&text, &syms, "LINUX_2.6", "linux-vdso.so.1").unwrap()
    }

    #[test]
    fn elf_hash_known_values() {
        // Linux's vDSO version hash (glibc's VDSO_HASH is 61765110).
        assert_eq!(elf_hash(b""), 0);
        assert_eq!(elf_hash(b"LINUX_2.6"), 61_765_110);
        assert_eq!(elf_hash(b"printf"), 0x0779_05a6);
    }

    #[test]
    fn header_and_layout() {
        let img = image();
        assert_eq!(img.len(), 4096);
        assert_eq!(&img[..4], b"\x7fELF");
        assert_eq!(rd16(&img, 16), 3, "ET_DYN");
        assert_eq!(rd16(&img, 18), 62, "EM_X86_64");
        // The code is at TEXT_OFFSET.
        assert_eq!(img[TEXT_OFFSET + 7], 7);
        // The PT_LOAD covers the page, read + execute.
        assert_eq!(rd32(&img, 64), PT_LOAD);
        assert_eq!(rd32(&img, 68), PF_R | PF_X);
        assert_eq!(rd64(&img, 64 + 32), 4096);
    }

    #[test]
    fn musl_finds_every_symbol_with_its_version() {
        let img = image();
        for (i, name) in NAMES.iter().enumerate() {
            assert_eq!(
                musl_lookup(&img, "LINUX_2.6", name),
                Some((TEXT_OFFSET + i * 40) as u64),
                "{name}"
            );
            assert_eq!(hash_lookup(&img, name), Some((TEXT_OFFSET + i * 40) as u64));
            assert_eq!(musl_lookup(&img, "LINUX_2.5", name), None, "wrong version");
        }
        assert_eq!(musl_lookup(&img, "LINUX_2.6", "__vdso_nothing"), None);
        assert_eq!(hash_lookup(&img, "__vdso_nothing"), None);
        assert_eq!(musl_lookup(&img, "LINUX_2.6", "linux-vdso.so.1"), None);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let big = vec![0u8; IMAGE_SIZE - TEXT_OFFSET + 1];
        assert_eq!(build(&big, &[], "V", "S"), Err(VdsoError::TextTooBig));
        assert_eq!(
            build(&[0; 4], &[("f", 4)], "V", "S"),
            Err(VdsoError::BadSymbol)
        );
        let long = "x".repeat(2000);
        assert_eq!(
            build(&[0; 4], &[(&long, 0)], "V", "S"),
            Err(VdsoError::TablesTooBig)
        );
    }
}
