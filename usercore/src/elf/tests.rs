//! Tests for the ELF parser and load plans. ELF files are written by hand
//! with [`build_elf`]; real static binaries are compiled when a compiler is
//! present.

use super::*;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use proptest::prelude::*;
use vmcore::USER_END;

const GNU_STACK: u32 = 0x6474_e551;

/// One program header to write.
#[derive(Clone, Copy, Debug)]
struct Ph {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph {
        p_type: PT_LOAD,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
        align: 0x1000,
    }
}

fn other(p_type: u32, offset: u64, vaddr: u64, size: u64) -> Ph {
    Ph {
        p_type,
        flags: PF_R,
        offset,
        vaddr,
        filesz: size,
        memsz: size,
        align: 8,
    }
}

/// Writes an ELF header with the program headers at offset 64, then pads
/// the file with a recognisable pattern (byte = offset % 251) to `len`.
fn build_elf(e_type: u16, entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF");
    v.extend_from_slice(&[2, 1, 1, 0]);
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&e_type.to_le_bytes());
    v.extend_from_slice(&EM_X86_64.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&entry.to_le_bytes());
    v.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    v.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    v.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    v.extend_from_slice(&(phdrs.len() as u16).to_le_bytes());
    v.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    assert_eq!(v.len(), EHDR_SIZE);
    for p in phdrs {
        v.extend_from_slice(&p.p_type.to_le_bytes());
        v.extend_from_slice(&p.flags.to_le_bytes());
        v.extend_from_slice(&p.offset.to_le_bytes());
        v.extend_from_slice(&p.vaddr.to_le_bytes());
        v.extend_from_slice(&p.vaddr.to_le_bytes()); // p_paddr
        v.extend_from_slice(&p.filesz.to_le_bytes());
        v.extend_from_slice(&p.memsz.to_le_bytes());
        v.extend_from_slice(&p.align.to_le_bytes());
    }
    let start = v.len();
    v.extend((start..len.max(start)).map(|i| (i % 251) as u8));
    v
}

/// A typical static ET_EXEC: headers, text, data + bss, TLS, GNU_STACK.
fn exec_phdrs() -> Vec<Ph> {
    vec![
        load(PF_R, 0, 0x40_0000, 0x200, 0x200),
        load(PF_R | PF_X, 0x1000, 0x40_1000, 0x800, 0x800),
        load(PF_R | PF_W, 0x2f00, 0x40_2f00, 0x80, 0x2200),
        Ph {
            p_type: PT_TLS,
            flags: PF_R,
            offset: 0x2f00,
            vaddr: 0x40_2f00,
            filesz: 0x10,
            memsz: 0x40,
            align: 8,
        },
        Ph {
            p_type: GNU_STACK,
            flags: PF_R | PF_W,
            offset: 0,
            vaddr: 0,
            filesz: 0,
            memsz: 0,
            align: 16,
        },
    ]
}

fn exec_elf() -> Vec<u8> {
    build_elf(ET_EXEC, 0x40_1010, &exec_phdrs(), 0x3000)
}

/// The same layout linked at 0 as a static-PIE, with PT_PHDR and PT_DYNAMIC.
fn pie_elf() -> Vec<u8> {
    let mut phdrs = vec![other(PT_PHDR, 64, 64, 7 * 56)];
    for p in exec_phdrs() {
        let mut p = p;
        if p.p_type != GNU_STACK {
            p.vaddr -= 0x40_0000;
        }
        phdrs.push(p);
    }
    phdrs.push(other(PT_DYNAMIC, 0x2f40, 0x2f40, 0x20));
    build_elf(ET_DYN, 0x1010, &phdrs, 0x3000)
}

const R: Prot = Prot {
    read: true,
    write: false,
    exec: false,
};
const RX: Prot = Prot {
    read: true,
    write: false,
    exec: true,
};
const RW: Prot = Prot {
    read: true,
    write: true,
    exec: false,
};

/// Loads `file` the way the kernel would from `plan`, into a sparse page
/// map, checking regions do not collide and permissions are consistent.
fn simulate(plan: &LoadPlan, file: &[u8]) -> BTreeMap<u64, (Vec<u8>, Prot)> {
    let mut pages: BTreeMap<u64, (Vec<u8>, Prot)> = BTreeMap::new();
    for seg in &plan.segments {
        assert!(seg.file.is_some() || seg.anon.is_some());
        if let Some(f) = seg.file {
            assert!(f.start % PAGE_SIZE == 0 && f.end % PAGE_SIZE == 0 && f.start < f.end);
            assert_eq!(f.file_offset % PAGE_SIZE, 0);
            for page in (f.start..f.end).step_by(PAGE_SIZE as usize) {
                let off = (f.file_offset + (page - f.start)) as usize;
                // Past the end of the file reads as zeros, as with mmap.
                let mut data = vec![0u8; PAGE_SIZE as usize];
                let avail = file.len().saturating_sub(off).min(PAGE_SIZE as usize);
                data[..avail].copy_from_slice(&file[off..off + avail]);
                assert!(
                    pages.insert(page, (data, f.prot)).is_none(),
                    "page mapped twice"
                );
            }
        }
        if let Some(z) = seg.zero_tail {
            let f = seg.file.expect("zero tail without a file region");
            assert!(z.start < z.end && z.end == f.end && z.end - z.start < PAGE_SIZE);
            let page = page_down(z.start);
            let data = &mut pages.get_mut(&page).unwrap().0;
            data[(z.start - page) as usize..].fill(0);
        }
        if let Some(a) = seg.anon {
            assert!(a.start % PAGE_SIZE == 0 && a.end % PAGE_SIZE == 0 && a.start < a.end);
            if let Some(f) = seg.file {
                assert_eq!(a.start, f.end);
            }
            for page in (a.start..a.end).step_by(PAGE_SIZE as usize) {
                let data = vec![0u8; PAGE_SIZE as usize];
                assert!(
                    pages.insert(page, (data, a.prot)).is_none(),
                    "page mapped twice"
                );
            }
        }
    }
    pages
}

fn read_mem(pages: &BTreeMap<u64, (Vec<u8>, Prot)>, addr: u64) -> u8 {
    let (data, _) = &pages[&page_down(addr)];
    data[(addr % PAGE_SIZE) as usize]
}

/// Checks the simulated memory matches what the ELF file says: file bytes
/// where `filesz` covers, zeros in the bss, right permissions.
fn check_loaded(image: &ElfImage, plan: &LoadPlan, file: &[u8]) {
    let pages = simulate(plan, file);
    for s in &image.segments {
        let base = s.vaddr + plan.bias;
        // Every byte of small segments (a stride under Miri, which is slow),
        // plus the edges: first and last file byte, first bss byte, last byte.
        let samples = if cfg!(miri) { 64 } else { 4096 };
        let step = (s.memsz / samples).max(1);
        let edges = [0, s.filesz.saturating_sub(1), s.filesz, s.memsz - 1];
        let edges = edges.into_iter().filter(|&i| i < s.memsz);
        for i in (0..s.memsz).step_by(step as usize).chain(edges) {
            let want = if i < s.filesz {
                file[(s.offset + i) as usize]
            } else {
                0
            };
            assert_eq!(
                read_mem(&pages, base + i),
                want,
                "byte {i} of segment {}",
                s.index
            );
            assert_eq!(pages[&page_down(base + i)].1, s.prot);
        }
        assert!(plan.brk_start >= page_up(base + s.memsz).unwrap());
    }
    assert_eq!(plan.brk_start % PAGE_SIZE, 0);
    assert!(pages.keys().all(|&p| p < plan.brk_start));
    let (_, entry_prot) = &pages[&page_down(plan.entry)];
    assert!(entry_prot.exec);
    if let Some(phdr) = plan.phdr_addr {
        // The program headers really are at AT_PHDR.
        let phoff = u64::from_le_bytes(file[32..40].try_into().unwrap());
        for i in 0..u64::from(image.phnum) * 56 {
            assert_eq!(read_mem(&pages, phdr + i), file[(phoff + i) as usize]);
        }
    }
}

#[test]
fn valid_exec_parses() {
    let image = parse(&exec_elf()).unwrap();
    assert_eq!(image.kind, ElfKind::Exec);
    assert_eq!(image.entry, 0x40_1010);
    assert_eq!((image.phnum, image.phentsize), (5, 56));
    assert_eq!(image.phdr, Some(0x40_0040), "computed from the first LOAD");
    assert_eq!(
        image.tls,
        Some(TlsInfo {
            vaddr: 0x40_2f00,
            filesz: 0x10,
            memsz: 0x40,
            align: 8
        })
    );
    let s = &image.segments;
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].vaddr, s[0].prot), (0x40_0000, R));
    assert_eq!((s[1].vaddr, s[1].filesz, s[1].prot), (0x40_1000, 0x800, RX));
    assert_eq!(
        (s[2].vaddr, s[2].offset, s[2].filesz, s[2].memsz, s[2].prot),
        (0x40_2f00, 0x2f00, 0x80, 0x2200, RW)
    );
}

#[test]
fn exec_load_plan_regions() {
    let file = exec_elf();
    let image = parse(&file).unwrap();
    let plan = image.load_plan(0, USER_END).unwrap();
    assert_eq!(plan.entry, 0x40_1010);
    assert_eq!(plan.phdr_addr, Some(0x40_0040));
    assert_eq!(plan.brk_start, 0x40_6000);
    assert_eq!(plan.bias, 0);
    assert_eq!(
        plan.segments[1],
        SegmentPlan {
            file: Some(FileRegion {
                start: 0x40_1000,
                end: 0x40_2000,
                file_offset: 0x1000,
                prot: RX
            }),
            zero_tail: None,
            anon: None,
        }
    );
    // Data: file page 0x402000 (offset 0x2000), bss from 0x402f80.
    assert_eq!(
        plan.segments[2],
        SegmentPlan {
            file: Some(FileRegion {
                start: 0x40_2000,
                end: 0x40_3000,
                file_offset: 0x2000,
                prot: RW
            }),
            zero_tail: Some(ZeroTail {
                start: 0x40_2f80,
                end: 0x40_3000
            }),
            anon: Some(AnonRegion {
                start: 0x40_3000,
                end: 0x40_6000,
                prot: RW
            }),
        }
    );
    check_loaded(&image, &plan, &file);
}

#[test]
fn static_pie_parses_and_relocates() {
    let file = pie_elf();
    let image = parse(&file).unwrap();
    assert_eq!(image.kind, ElfKind::StaticPie);
    assert_eq!(image.phdr, Some(0x40), "from PT_PHDR");
    let plan = image.load_plan(DEFAULT_PIE_BIAS, USER_END).unwrap();
    assert_eq!(plan.entry, DEFAULT_PIE_BIAS + 0x1010);
    assert_eq!(plan.phdr_addr, Some(DEFAULT_PIE_BIAS + 0x40));
    assert_eq!(plan.brk_start, DEFAULT_PIE_BIAS + 0x6000);
    assert_eq!(plan.segments[0].file.unwrap().start, DEFAULT_PIE_BIAS);
    check_loaded(&image, &plan, &file);

    // Unrelocated, the first page would sit at 0 (below mmap_min_addr).
    assert_eq!(
        image.load_plan(0, USER_END).unwrap_err(),
        ElfError::OutsideUserSpace { index: 1 }
    );
    assert_eq!(
        image.load_plan(DEFAULT_PIE_BIAS + 8, USER_END).unwrap_err(),
        ElfError::MisalignedBias(DEFAULT_PIE_BIAS + 8)
    );
}

#[test]
fn bss_only_segment_is_anonymous() {
    let phdrs = [
        load(PF_R | PF_X, 0, 0x40_0000, 0x1000, 0x1000),
        load(PF_R | PF_W, 0x1000, 0x40_1000, 0, 0x1800),
    ];
    let file = build_elf(ET_EXEC, 0x40_0100, &phdrs, 0x1000);
    let image = parse(&file).unwrap();
    let plan = image.load_plan(0, USER_END).unwrap();
    assert_eq!(
        plan.segments[1],
        SegmentPlan {
            file: None,
            zero_tail: None,
            anon: Some(AnonRegion {
                start: 0x40_1000,
                end: 0x40_3000,
                prot: RW
            }),
        }
    );
    // A page-exact file part needs no zero tail.
    assert_eq!(plan.segments[0].zero_tail, None);
    check_loaded(&image, &plan, &file);
}

#[test]
fn bss_within_last_file_page_has_tail_but_no_anon() {
    let phdrs = [load(PF_R | PF_W | PF_X, 0x100, 0x40_0100, 0x100, 0x300)];
    let file = build_elf(ET_EXEC, 0x40_0100, &phdrs, 0x1000);
    let image = parse(&file).unwrap();
    let plan = image.load_plan(0, USER_END).unwrap();
    assert_eq!(
        plan.segments[0].zero_tail,
        Some(ZeroTail {
            start: 0x40_0200,
            end: 0x40_1000
        })
    );
    assert_eq!(plan.segments[0].anon, None);
    assert_eq!(plan.brk_start, 0x40_1000);
    check_loaded(&image, &plan, &file);
}

/// Hundreds of read-only segments, each ending in a bss tail inside its
/// last file page and a page of bss after it: all accepted (Linux's only
/// limit is the 64 KiB header table), each with a zeroed tail to write into
/// a read-only segment.
#[test]
fn hundreds_of_readonly_segments_with_bss_tails() {
    let count = 600u64;
    let mut phdrs = vec![load(PF_R | PF_X, 0x1000, 0x40_1000, 0x100, 0x100)];
    for i in 0..count {
        phdrs.push(load(PF_R, 0x2000, 0x100_0000 + i * 0x2000, 0x20, 0x1800));
    }
    let file = build_elf(ET_EXEC, 0x40_1000, &phdrs, 0x3000);
    let image = parse(&file).unwrap();
    assert_eq!(image.segments.len(), count as usize + 1);
    let plan = image.load_plan(0, USER_END).unwrap();
    let tails: Vec<_> = plan.segments.iter().filter_map(|s| s.zero_tail).collect();
    assert_eq!(tails.len(), count as usize);
    for (i, seg) in plan.segments[1..].iter().enumerate() {
        let start = 0x100_0000 + i as u64 * 0x2000;
        let file = seg.file.unwrap();
        assert!(!file.prot.write, "segment {i} must stay read-only");
        assert_eq!(
            seg.zero_tail,
            Some(ZeroTail {
                start: start + 0x20,
                end: start + 0x1000
            })
        );
        assert_eq!(
            seg.anon.map(|a| (a.start, a.end)),
            Some((start + 0x1000, start + 0x2000))
        );
    }
    check_loaded(&image, &plan, &file);

    // Past the 64 KiB header table: refused with the reason.
    let max = MAX_PHDR_TABLE / PHDR_SIZE;
    let too_many = vec![load(PF_R | PF_X, 0x1000, 0x40_1000, 0x100, 0x100); max + 1];
    let err = parse(&build_elf(ET_EXEC, 0x40_1000, &too_many, 0x2000)).unwrap_err();
    assert_eq!(
        err,
        ElfError::TooManyPhdrs {
            phnum: max as u16 + 1
        }
    );
    assert_eq!(
        format!("{err}"),
        "ELF: too many program headers (1171, at most 1170 in 64 KiB)"
    );
}

#[test]
fn load_plan_rejections() {
    let image = parse(&exec_elf()).unwrap();
    assert_eq!(
        image.load_plan(0x1000, USER_END).unwrap_err(),
        ElfError::BiasNotAllowed
    );
    // Exclusive end: the last segment's pages end at 0x406000.
    assert!(image.load_plan(0, 0x40_6000).is_ok());
    assert_eq!(
        image.load_plan(0, 0x40_5fff).unwrap_err(),
        ElfError::OutsideUserSpace { index: 2 }
    );
    let low = parse(&build_elf(
        ET_EXEC,
        0xf010,
        &[load(PF_R | PF_X, 0, 0xf000, 0x100, 0x100)],
        0x1000,
    ))
    .unwrap();
    assert_eq!(
        low.load_plan(0, USER_END).unwrap_err(),
        ElfError::OutsideUserSpace { index: 0 }
    );

    let pie = parse(&pie_elf()).unwrap();
    assert_eq!(
        pie.load_plan(!0xfffu64, u64::MAX).unwrap_err(),
        ElfError::Overflow { index: 1 }
    );

    // The fields are public: a hand-made null segment is refused.
    let mut bad = image.clone();
    bad.segments[0].memsz = 0;
    bad.segments[0].filesz = 0;
    assert_eq!(
        bad.load_plan(0, USER_END).unwrap_err(),
        ElfError::EmptySegment { index: 0 }
    );
}

/// Parses `phdrs` in an ET_EXEC with entry 0x401010 and returns the error.
fn exec_err(phdrs: &[Ph]) -> ElfError {
    parse(&build_elf(ET_EXEC, 0x40_1010, phdrs, 0x3000)).unwrap_err()
}

#[test]
fn header_rejections() {
    let good = exec_elf();
    let patch = |at: usize, bytes: &[u8]| {
        let mut f = good.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        parse(&f).unwrap_err()
    };
    assert_eq!(parse(&good[..63]).unwrap_err(), ElfError::TooShort);
    assert_eq!(patch(0, b"\x7fELG"), ElfError::BadMagic);
    assert_eq!(patch(4, &[1]), ElfError::NotElf64);
    assert_eq!(patch(5, &[2]), ElfError::NotLittleEndian);
    assert_eq!(patch(6, &[0]), ElfError::BadVersion);
    assert_eq!(patch(20, &[2]), ElfError::BadVersion);
    assert_eq!(patch(18, &3u16.to_le_bytes()), ElfError::WrongMachine(3));
    assert_eq!(patch(16, &1u16.to_le_bytes()), ElfError::NotExecutable(1));
    assert_eq!(patch(54, &32u16.to_le_bytes()), ElfError::BadPhentsize(32));
    assert_eq!(patch(56, &0u16.to_le_bytes()), ElfError::BadPhdrTable);
    assert_eq!(
        patch(56, &0xffffu16.to_le_bytes()),
        ElfError::TooManyPhdrs { phnum: 0xffff }
    );
    assert_eq!(patch(32, &0x2fe0u64.to_le_bytes()), ElfError::BadPhdrTable);
    assert_eq!(patch(32, &u64::MAX.to_le_bytes()), ElfError::BadPhdrTable);
    // Entry outside any segment, in a non-executable one, or in bss.
    assert_eq!(
        patch(24, &0x50_0000u64.to_le_bytes()),
        ElfError::BadEntry(0x50_0000)
    );
    assert_eq!(
        patch(24, &0x40_0010u64.to_le_bytes()),
        ElfError::BadEntry(0x40_0010)
    );
    assert_eq!(
        parse(&build_elf(
            ET_EXEC,
            0x40_0900,
            &[load(PF_R | PF_X, 0, 0x40_0000, 0x800, 0x1000)],
            0x1000
        ))
        .unwrap_err(),
        ElfError::BadEntry(0x40_0900)
    );
}

#[test]
fn interpreter_is_refused_for_both_types() {
    let mut phdrs = exec_phdrs();
    phdrs.push(other(PT_INTERP, 0x180, 0x40_0180, 0x1c));
    assert_eq!(exec_err(&phdrs), ElfError::Dynamic);
    let pie = build_elf(ET_DYN, 0x1010, &phdrs, 0x3000);
    assert_eq!(parse(&pie).unwrap_err(), ElfError::Dynamic);
    assert_eq!(
        format!("{}", ElfError::Dynamic),
        "ELF: dynamically linked programs are not supported"
    );
}

#[test]
fn segment_rejections() {
    let text = load(PF_R | PF_X, 0x1000, 0x40_1000, 0x800, 0x800);
    let with = |p: Ph| exec_err(&[text, p]);

    assert_eq!(exec_err(&[other(4, 0, 0, 0)]), ElfError::NoLoadSegments);
    assert_eq!(
        with(load(PF_R, 0x2000, 0x40_2000, 0x200, 0x100)),
        ElfError::FileSizeExceedsMemSize { index: 1 }
    );
    assert_eq!(
        with(load(PF_R, 0x2000, 0x40_2000, 0x1001, 0x2000)),
        ElfError::SegmentOutsideFile { index: 1 }
    );
    assert_eq!(
        with(load(PF_R, u64::MAX - 4, 0x40_2ffb, 0x10, 0x10)),
        ElfError::Overflow { index: 1 }
    );
    assert_eq!(
        with(load(PF_R, 0x2000, 0x40_2100, 0x100, 0x100)),
        ElfError::Misaligned { index: 1 }
    );
    let mut odd = load(PF_R, 0x2000, 0x40_2000, 0x100, 0x100);
    odd.align = 0x1800;
    assert_eq!(with(odd), ElfError::BadAlign { index: 1 });
    assert_eq!(
        with(load(PF_R, 0x2000, 0x40_2000, 0, 0)),
        ElfError::EmptySegment { index: 1 }
    );
    assert_eq!(
        with(load(PF_R, 0, !0xfffu64, 0, 0x800)),
        ElfError::Overflow { index: 1 },
        "page_up of the end overflows"
    );
    assert_eq!(
        with(load(PF_R, 0x1000, 0x40_1000, 0x100, 0x100)),
        ElfError::Overlap {
            first: 0,
            second: 1
        }
    );
    // Listed out of address order and overlapping: still caught.
    assert_eq!(
        exec_err(&[text, load(PF_R, 0x0, 0x40_0000, 0x10, 0x1100)]),
        ElfError::Overlap {
            first: 0,
            second: 1
        }
    );
    assert_eq!(
        with(load(PF_R, 0x1900, 0x40_1900, 0x100, 0x100)),
        ElfError::SharedPage {
            first: 0,
            second: 1
        }
    );
    // PT_PHDR pointing outside every LOAD.
    assert_eq!(
        exec_err(&[text, other(PT_PHDR, 64, 0x90_0000, 112)]),
        ElfError::PhdrNotLoaded
    );
}

#[test]
fn phdr_absent_when_not_loaded() {
    // The only LOAD starts at file offset 0x1000: the headers at 64 are not
    // in memory, so there is no AT_PHDR to give.
    let image = parse(&build_elf(
        ET_EXEC,
        0x40_1010,
        &[load(PF_R | PF_X, 0x1000, 0x40_1000, 0x800, 0x800)],
        0x3000,
    ))
    .unwrap();
    assert_eq!(image.phdr, None);
    assert_eq!(image.load_plan(0, USER_END).unwrap().phdr_addr, None);
}

#[test]
fn error_messages() {
    assert_eq!(
        format!("{}", ElfError::SegmentOutsideFile { index: 2 }),
        "ELF: segment 2 extends past the end of the file"
    );
    assert_eq!(
        format!("{}", ElfError::WrongMachine(40)),
        "ELF: machine 40 is not x86_64 (62)"
    );
}

/// Compiles `int main(){return 0;}` with `cc args...`; `None` when the
/// compiler is missing or cannot link a static program here.
#[cfg(not(miri))]
fn compile(cc: &str, args: &[&str]) -> Option<Vec<u8>> {
    use std::process::Command;
    if !std::path::Path::new(cc).exists() {
        std::eprintln!("skipping: {cc} not installed");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "usercore-elf-{}-{}",
        std::process::id(),
        args.join("").replace(['-', ' '], "")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("x.c");
    let out = dir.join("x");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let status = Command::new(cc)
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .ok()?;
    let bytes = status.success().then(|| std::fs::read(&out).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    if bytes.is_none() {
        std::eprintln!("skipping: {cc} {args:?} failed");
    }
    bytes
}

#[cfg(not(miri))]
#[test]
fn real_musl_static_binary() {
    let Some(file) = compile("/usr/bin/musl-gcc", &["-static"]) else {
        return;
    };
    let image = parse(&file).unwrap();
    assert_eq!(image.kind, ElfKind::Exec);
    assert!(image.phdr.is_some(), "musl's start code needs AT_PHDR");
    let plan = image.load_plan(0, USER_END).unwrap();
    assert!(plan
        .segments
        .iter()
        .any(|s| s.file.is_some_and(|f| f.prot.exec)));
    check_loaded(&image, &plan, &file);
}

#[cfg(not(miri))]
#[test]
fn real_static_pie_binary() {
    let Some(file) = compile("/usr/bin/gcc", &["-static-pie"]) else {
        return;
    };
    let image = parse(&file).unwrap();
    assert_eq!(image.kind, ElfKind::StaticPie);
    assert!(image.tls.is_some(), "glibc has TLS");
    let plan = image.load_plan(DEFAULT_PIE_BIAS, USER_END).unwrap();
    assert_eq!(plan.entry, image.entry + DEFAULT_PIE_BIAS);
    check_loaded(&image, &plan, &file);

    // A dynamically linked program is refused with the clear message.
    let Some(dynamic) = compile("/usr/bin/gcc", &[]) else {
        return;
    };
    assert_eq!(parse(&dynamic).unwrap_err(), ElfError::Dynamic);
}

proptest! {
    #![proptest_config(crate::proptest_config(512))]

    #[test]
    fn mutations_never_panic(
        edits in proptest::collection::vec((0usize..64 + 7 * 56, any::<u8>()), 1..12),
        pie in any::<bool>(),
        cut in 0usize..0x3001,
        bias_pages in 0u64..0x10_0000,
    ) {
        let mut file = if pie { pie_elf() } else { exec_elf() };
        for (i, v) in edits {
            if i < file.len() {
                file[i] = v;
            }
        }
        if let Ok(image) = parse(&file[..cut.min(file.len())]) {
            for bias in [0, bias_pages * PAGE_SIZE, DEFAULT_PIE_BIAS] {
                if let Ok(plan) = image.load_plan(bias, USER_END) {
                    prop_assert!(plan.brk_start <= USER_END);
                    prop_assert_eq!(plan.segments.len(), image.segments.len());
                }
            }
        }
    }

    /// Random page-separated layouts load exactly as the ELF describes.
    #[test]
    fn random_layouts_load_correctly(
        segs in proptest::collection::vec(
            (0u64..3, 0u64..0x1000, 0u64..0x2800, 0u64..0x3000, 0u32..8),
            1..5,
        ),
        bias_pages in 0u64..0x100,
    ) {
        // Lay segments out in increasing pages; file data follows the
        // header page, each segment's file bytes in fresh pages.
        let mut phdrs = Vec::new();
        let mut next_page = 0x40_0000u64;
        let mut next_file = 0x1000u64;
        for (i, &(gap, in_page, filesz, extra, flags)) in segs.iter().enumerate() {
            let vaddr = next_page + gap * PAGE_SIZE + in_page;
            let offset = next_file + in_page;
            // The first segment holds the entry point: executable, with file bytes.
            let (flags, filesz) = if i == 0 { (flags | PF_X, filesz.max(1)) } else { (flags, filesz) };
            let memsz = (filesz + extra).max(1);
            phdrs.push(load(flags, offset, vaddr, filesz, memsz));
            next_page = page_up(vaddr + memsz).unwrap();
            next_file = page_up(offset + filesz).unwrap();
        }
        let entry = phdrs[0].vaddr;
        let file = build_elf(ET_EXEC, entry, &phdrs, next_file as usize + 1);
        let image = parse(&file).unwrap();
        prop_assert_eq!(image.load_plan(bias_pages * PAGE_SIZE, USER_END).is_err(), bias_pages != 0);
        let plan = image.load_plan(0, USER_END).unwrap();
        check_loaded(&image, &plan, &file);

        let pie = build_elf(ET_DYN, entry, &phdrs, next_file as usize + 1);
        let image = parse(&pie).unwrap();
        let plan = image.load_plan(bias_pages * PAGE_SIZE, USER_END).unwrap();
        check_loaded(&image, &plan, &pie);
    }
}

#[test]
fn head_of_file_parses_like_whole_file() {
    let file = exec_elf();
    // The header and program headers are in the first page; the segments
    // are checked against the file length given, not the slice.
    let want = head_len(&file).unwrap();
    assert!((64..=1024).contains(&want), "{want}");
    assert_eq!(head_len(&file[..63]), None);
    assert_eq!(
        head_len(b"#!/bin/sh\necho hello, this is a script of 64 bytes or more, ok?\n"),
        None
    );
    let head = &file[..want as usize];
    assert_eq!(
        parse_head(head, file.len() as u64).unwrap().segments,
        parse(&file).unwrap().segments
    );
    assert_eq!(
        parse_head(head, 0x2f00).unwrap_err(),
        ElfError::SegmentOutsideFile { index: 2 }
    );
    assert_eq!(
        parse_head(&file[..64], file.len() as u64).unwrap_err(),
        ElfError::BadPhdrTable
    );
}
