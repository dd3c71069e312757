//! `RLIMIT_AS` and `RLIMIT_DATA` as an address space enforces them (Linux's
//! `may_expand_vm`): regions past a limit are refused, replacing one is not
//! counted twice, and a fork keeps the limits.

use vmcore::host::HostTables;
use vmcore::rlimit::{Rlimit, RLIMIT_AS, RLIMIT_DATA, RLIM_INFINITY};
use vmcore::space::VmSpace;
use vmcore::vma::{VmaFlags, VmaTag};
use vmcore::{PageTables, Prot, Sharing, VmError, Vma, VmaKind};

const P: u64 = 4096;

fn region(start: u64, pages: u64, prot: Prot, tag: VmaTag) -> Vma {
    Vma {
        start,
        end: start + pages * P,
        prot,
        sharing: Sharing::Private,
        kind: VmaKind::Anonymous,
        flags: VmaFlags {
            tag,
            ..VmaFlags::default()
        },
    }
}

fn limit(space: &mut VmSpace, resource: u32, bytes: u64) {
    let new = Rlimit {
        cur: bytes,
        max: RLIM_INFINITY,
    };
    space.rlimits_mut().set(resource, new).unwrap();
}

#[test]
fn address_space_limit_refuses_growth() {
    let mut mem = HostTables::new();
    let mut space = VmSpace::new(PageTables::new(&mut mem).unwrap());
    limit(&mut space, RLIMIT_AS, 10 * P);
    space
        .map(region(0x100_000, 8, Prot::READ, VmaTag::Mmap))
        .unwrap();
    assert_eq!(
        space.map(region(0x200_000, 3, Prot::READ, VmaTag::Mmap)),
        Err(VmError::Rlimit {
            resource: RLIMIT_AS
        })
    );
    space
        .map(region(0x200_000, 2, Prot::READ, VmaTag::Mmap))
        .unwrap();
    // Replacing mapped pages (MAP_FIXED) is not growth.
    let over = region(0x100_000, 4, Prot::RW, VmaTag::Mmap);
    assert_eq!(space.may_expand(&over), Ok(()));
    let mut fork = VmSpace::new(PageTables::new(&mut mem).unwrap());
    space.fork_regions(&mut fork).unwrap();
    assert_eq!(fork.rlimits().cur(RLIMIT_AS), 10 * P);
}

#[test]
fn data_limit_counts_private_writable_only() {
    let mut mem = HostTables::new();
    let mut space = VmSpace::new(PageTables::new(&mut mem).unwrap());
    limit(&mut space, RLIMIT_DATA, 4 * P);
    space
        .map(region(0x100_000, 4, Prot::RW, VmaTag::Heap))
        .unwrap();
    // Read-only and stack regions are not data.
    space
        .map(region(0x200_000, 16, Prot::READ, VmaTag::Mmap))
        .unwrap();
    let mut stack = region(0x300_000, 16, Prot::RW, VmaTag::Stack);
    stack.flags.grows_down = true;
    space.map(stack).unwrap();
    assert_eq!(
        space.map(region(0x400_000, 1, Prot::RW, VmaTag::Heap)),
        Err(VmError::Rlimit {
            resource: RLIMIT_DATA
        })
    );
}
