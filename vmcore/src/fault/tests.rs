use super::*;
use crate::vma::{VmaFlags, VmaTag};
use alloc::string::ToString;

const P: u64 = crate::PAGE_SIZE;

fn anon(prot: Prot, sharing: Sharing) -> Vma {
    Vma {
        sharing,
        ..Vma::anonymous(16 * P, 32 * P, prot)
    }
}

fn file(prot: Prot, sharing: Sharing) -> Vma {
    Vma {
        kind: VmaKind::File {
            file: 9,
            offset: 4 * P,
        },
        ..anon(prot, sharing)
    }
}

fn fault(vma: &Vma, addr: u64, access: FaultAccess, page: Option<PresentPage>) -> FaultAction {
    decide(&Fault {
        addr,
        access,
        mode: FaultMode::User,
        vma: Some(vma),
        page,
        swapped: None,
    })
}

fn present(flags: PteFlags, frame: FrameUse) -> Option<PresentPage> {
    Some(PresentPage {
        pte: Pte::new(0x5000, flags | PteFlags::PRESENT | PteFlags::USER),
        frame,
    })
}

#[test]
fn permission_checks() {
    let ro = anon(Prot::READ, Sharing::Private);
    assert_eq!(
        decide(&Fault {
            addr: 0,
            access: FaultAccess::Read,
            mode: FaultMode::User,
            vma: None,
            page: None,
            swapped: None
        }),
        FaultAction::Segv(SegvReason::NoRegion)
    );
    assert_eq!(
        fault(&ro, 17 * P, FaultAccess::Write, None),
        FaultAction::Segv(SegvReason::WriteToReadOnly)
    );
    assert_eq!(
        fault(&ro, 17 * P, FaultAccess::Execute, None),
        FaultAction::Segv(SegvReason::ExecNonExec)
    );
    let none = anon(Prot::NONE, Sharing::Private);
    assert_eq!(
        fault(&none, 17 * P, FaultAccess::Read, None),
        FaultAction::Segv(SegvReason::ReadNonReadable)
    );
    // Address outside the region handed in (and not a stack): no region.
    assert_eq!(
        fault(&ro, 15 * P, FaultAccess::Read, None),
        FaultAction::Segv(SegvReason::NoRegion)
    );
    assert_eq!(
        fault(&ro, 32 * P, FaultAccess::Read, None),
        FaultAction::Segv(SegvReason::NoRegion)
    );
    // Kernel-mode instruction fetch from a user page: SMEP.
    let rx = anon(Prot::RX, Sharing::Private);
    let kexec = Fault {
        addr: 17 * P,
        access: FaultAccess::Execute,
        mode: FaultMode::Kernel,
        vma: Some(&rx),
        page: None,
        swapped: None,
    };
    assert_eq!(decide(&kexec), FaultAction::Segv(SegvReason::ExecNonExec));
    assert_eq!(
        SegvReason::WriteToReadOnly.to_string(),
        "write to read-only region"
    );
    assert_eq!(
        SegvReason::ExecNonExec.to_string(),
        "execute of non-executable region"
    );
    assert_eq!(SegvReason::NoRegion.to_string(), "no mapping");
}

#[test]
fn anonymous_first_touch() {
    let rw = anon(Prot::RW, Sharing::Private);
    assert_eq!(
        fault(&rw, 17 * P, FaultAccess::Read, None),
        FaultAction::MapZeroPage
    );
    assert_eq!(
        fault(&rw, 17 * P, FaultAccess::Write, None),
        FaultAction::MapNewZeroed
    );
    let zero_flags = leaf_flags(&rw, &FaultAction::MapZeroPage).unwrap();
    assert!(
        !zero_flags.contains(PteFlags::WRITABLE)
            && zero_flags.contains(PteFlags::COW | PteFlags::NO_EXECUTE)
    );
    let new_flags = leaf_flags(&rw, &FaultAction::MapNewZeroed).unwrap();
    assert_eq!(
        new_flags,
        PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITABLE | PteFlags::NO_EXECUTE
    );
    // Writing the zero page allocates.
    let zp = present(PteFlags::COW | PteFlags::NO_EXECUTE, FrameUse::ZeroPage);
    assert_eq!(
        fault(&rw, 17 * P, FaultAccess::Write, zp),
        FaultAction::MapNewZeroed
    );
    // Shared anonymous: never the zero page.
    let shared = anon(Prot::READ, Sharing::Shared);
    assert_eq!(
        fault(&shared, 17 * P, FaultAccess::Read, None),
        FaultAction::MapNewZeroed
    );
    assert!(!leaf_flags(&shared, &FaultAction::MapNewZeroed)
        .unwrap()
        .contains(PteFlags::WRITABLE));
}

#[test]
fn file_first_touch() {
    let private = file(Prot::RW | Prot::EXEC, Sharing::Private);
    let read = fault(&private, 18 * P + 7, FaultAccess::Read, None);
    assert_eq!(
        read,
        FaultAction::FillFromFile {
            file: 9,
            offset: 6 * P,
            private_copy: false
        }
    );
    let flags = leaf_flags(&private, &read).unwrap();
    assert!(flags.contains(PteFlags::COW) && !flags.contains(PteFlags::WRITABLE));
    assert!(!flags.contains(PteFlags::NO_EXECUTE));
    let write = fault(&private, 18 * P, FaultAccess::Write, None);
    assert_eq!(
        write,
        FaultAction::FillFromFile {
            file: 9,
            offset: 6 * P,
            private_copy: true
        }
    );
    assert!(leaf_flags(&private, &write)
        .unwrap()
        .contains(PteFlags::WRITABLE));
    // A page-cache page mapped privately is always copied on write.
    let cached = present(PteFlags::COW, FrameUse::PageCache);
    assert_eq!(
        fault(&private, 18 * P, FaultAccess::Write, cached),
        FaultAction::CopyOnWrite
    );

    let shared = file(Prot::RW, Sharing::Shared);
    let w = fault(&shared, 16 * P, FaultAccess::Write, None);
    assert_eq!(
        w,
        FaultAction::FillFromFile {
            file: 9,
            offset: 4 * P,
            private_copy: false
        }
    );
    let flags = leaf_flags(&shared, &w).unwrap();
    assert!(flags.contains(PteFlags::WRITABLE) && !flags.contains(PteFlags::COW));
}

#[test]
fn cow_and_reuse() {
    let rw = anon(Prot::RW, Sharing::Private);
    let cow = |refs| present(PteFlags::COW, FrameUse::Anon { refs });
    assert_eq!(
        fault(&rw, 20 * P, FaultAccess::Write, cow(2)),
        FaultAction::CopyOnWrite
    );
    assert_eq!(
        fault(&rw, 20 * P, FaultAccess::Write, cow(1)),
        FaultAction::ReuseWritable
    );
    assert_eq!(
        fault(&rw, 20 * P, FaultAccess::Read, cow(2)),
        FaultAction::Spurious
    );
    let writable = present(PteFlags::WRITABLE, FrameUse::Anon { refs: 1 });
    assert_eq!(
        fault(&rw, 20 * P, FaultAccess::Write, writable),
        FaultAction::Spurious
    );
    // Shared region, stale read-only leaf: just make it writable.
    let shared = anon(Prot::RW, Sharing::Shared);
    let ro = present(PteFlags::EMPTY, FrameUse::Anon { refs: 3 });
    assert_eq!(
        fault(&shared, 20 * P, FaultAccess::Write, ro),
        FaultAction::ReuseWritable
    );
    // Executable region but the leaf still has NX: refresh it.
    let rx = anon(Prot::RX, Sharing::Private);
    let nx = present(PteFlags::NO_EXECUTE, FrameUse::Anon { refs: 1 });
    assert_eq!(
        fault(&rx, 20 * P, FaultAccess::Execute, nx),
        FaultAction::RefreshPte
    );
    assert_eq!(leaf_flags(&rx, &FaultAction::RefreshPte), None);
}

#[test]
fn stack_growth() {
    let stack = Vma {
        flags: VmaFlags {
            grows_down: true,
            tag: VmaTag::Stack,
            ..VmaFlags::default()
        },
        ..Vma::anonymous(40 * P, 56 * P, Prot::RW)
    };
    assert_eq!(
        fault(&stack, 39 * P + 8, FaultAccess::Write, None),
        FaultAction::GrowStack
    );
    assert_eq!(
        fault(&stack, 39 * P + 8, FaultAccess::Execute, None),
        FaultAction::Segv(SegvReason::ExecNonExec)
    );
    assert_eq!(
        fault(&stack, 56 * P, FaultAccess::Read, None),
        FaultAction::Segv(SegvReason::NoRegion)
    );
    // Never below the minimum mmap address: a grows-down region placed at
    // it does not grow to a null pointer (a system call's user copy from
    // NULL found page 0 mapped, `make fuzz` on 2 CPUs, FUZZ_SEED=77).
    let low = Vma {
        start: crate::MMAP_MIN_ADDR,
        end: crate::MMAP_MIN_ADDR + 4 * P,
        ..stack
    };
    for addr in [0, 8, crate::MMAP_MIN_ADDR - 8] {
        for access in [FaultAccess::Read, FaultAccess::Write] {
            assert_eq!(
                fault(&low, addr, access, None),
                FaultAction::Segv(SegvReason::NoRegion),
                "{addr:#x} {access:?}"
            );
        }
    }
}

#[test]
fn fork_and_protect_rules() {
    let rw = anon(Prot::RW, Sharing::Private);
    let pte = Pte::new(
        0x7000,
        PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITABLE | PteFlags::DIRTY,
    );
    let (parent, child, shares) = fork_pte(&rw, pte);
    assert!(shares && parent == child);
    assert!(parent.is_cow() && !parent.is_writable() && parent.addr() == 0x7000);
    // Read-only private: still COW-marked so a later mprotect can't expose the frame.
    let ro = anon(Prot::READ, Sharing::Private);
    let (p, c, s) = fork_pte(&ro, pte.without(PteFlags::WRITABLE));
    assert!(s && p.is_cow() && c.is_cow() && !c.is_writable());
    assert!(!protect_pte(&rw, p).is_writable());
    // Shared: same writable leaf in both.
    let shared = anon(Prot::RW, Sharing::Shared);
    assert_eq!(fork_pte(&shared, pte), (pte, pte, true));
    assert_eq!(fork_pte(&rw, Pte::EMPTY), (Pte::EMPTY, Pte::EMPTY, false));
    // mprotect: exclusive private leaf becomes writable again, A/D kept.
    let exclusive = Pte::new(0x7000, PteFlags::PRESENT | PteFlags::USER | PteFlags::DIRTY);
    let now = protect_pte(&rw, exclusive);
    assert!(now.is_writable() && now.has(PteFlags::DIRTY | PteFlags::NO_EXECUTE));
    // PROT_NONE: not user-accessible.
    let none = anon(Prot::NONE, Sharing::Private);
    assert!(!protect_pte(&none, pte).has(PteFlags::USER));
}

#[test]
fn error_code_decoding() {
    assert_eq!(PfErrorCode(0b00111).access(), FaultAccess::Write);
    assert_eq!(PfErrorCode(0b10101).access(), FaultAccess::Execute);
    assert_eq!(PfErrorCode(0b00100).access(), FaultAccess::Read);
    assert_eq!(PfErrorCode(0b00100).mode(), FaultMode::User);
    assert_eq!(PfErrorCode(0b00010).mode(), FaultMode::Kernel);
    assert!(PfErrorCode(0b00111).present() && !PfErrorCode(0b00110).present());
    assert_eq!(
        PfErrorCode(0b01111).to_string(),
        "user write, protection violation, reserved bit set in a page-table entry"
    );
    assert_eq!(
        PfErrorCode(0b10000).to_string(),
        "kernel instruction fetch, page not present"
    );
}
