//! Overcommit policy: may this many more pages be committed? Linux's
//! `__vm_enough_memory` and `vm_commit_limit` (mm/util.c, 6.1) as pure
//! decisions, so the host tests can check every mode at its edges.
//!
//! "Committed" pages are promises, not frames: every page of an
//! accountable region ([`crate::Vma::accountable`]) counts from the moment
//! it is mapped until it is unmapped, touched or not (Linux's
//! `Committed_AS`). What is charged where, in Linux and here:
//! - `mmap` of a private writable region (anonymous or file), unless
//!   `MAP_NORESERVE` is honoured (modes 0 and 1);
//! - a shared anonymous object, once, for its whole size (shmem);
//! - `brk` growth, `mremap` growth of a charged region, stack growth;
//! - `mprotect` making a private region writable that was not charged;
//! - `fork`: the child is charged what the parent is.
//!
//! Unmapping a charged region (or exiting) gives its pages back.

/// `vm.overcommit_memory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OvercommitMode {
    /// 0, the default: refuse only a single request larger than all of RAM
    /// and swap (`OVERCOMMIT_GUESS`).
    #[default]
    Guess,
    /// 1: grant everything (`OVERCOMMIT_ALWAYS`).
    Always,
    /// 2: strict accounting, nothing past [`Overcommit::commit_limit`]
    /// (`OVERCOMMIT_NEVER`); `MAP_NORESERVE` is ignored.
    Never,
}

impl OvercommitMode {
    /// The sysctl value, 0..=2.
    pub const fn value(self) -> u64 {
        match self {
            OvercommitMode::Guess => 0,
            OvercommitMode::Always => 1,
            OvercommitMode::Never => 2,
        }
    }

    /// The mode for a sysctl value; `None` outside 0..=2 (Linux: `EINVAL`).
    pub const fn from_value(v: u64) -> Option<OvercommitMode> {
        match v {
            0 => Some(OvercommitMode::Guess),
            1 => Some(OvercommitMode::Always),
            2 => Some(OvercommitMode::Never),
            _ => None,
        }
    }
}

/// The overcommit tunables (`vm.overcommit_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overcommit {
    /// `vm.overcommit_memory`.
    pub mode: OvercommitMode,
    /// `vm.overcommit_ratio`: percent of RAM in the commit limit (mode 2).
    pub ratio: u64,
    /// `vm.overcommit_kbytes`: if not 0, the RAM part of the commit limit
    /// in kB instead of the ratio.
    pub kbytes: u64,
}

impl Default for Overcommit {
    fn default() -> Overcommit {
        Overcommit::LINUX
    }
}

/// Size of a page in kB.
const PAGE_KB: u64 = crate::PAGE_SIZE / 1024;

impl Overcommit {
    /// Linux's defaults: heuristic, 50 %, no kbytes.
    pub const LINUX: Overcommit = Overcommit {
        mode: OvercommitMode::Guess,
        ratio: 50,
        kbytes: 0,
    };

    /// `CommitLimit` in pages: swap plus `kbytes` of RAM, or `ratio`
    /// percent of it (Linux's `vm_commit_limit`; no huge pages here).
    pub const fn commit_limit(&self, ram_pages: u64, swap_pages: u64) -> u64 {
        let ram = if self.kbytes != 0 {
            self.kbytes / PAGE_KB
        } else {
            ram_pages.saturating_mul(self.ratio) / 100
        };
        ram.saturating_add(swap_pages)
    }

    /// May `pages` more be committed, with `committed` committed now?
    ///
    /// Mode 0 looks at the request alone: no more than RAM plus swap at
    /// once. Mode 2 looks at the total: granted while the count *after*
    /// the request stays below the limit (Linux compares `Committed_AS <
    /// allowed` after adding, so the last page of the limit is never
    /// granted). Ferrite has no users: every process is root, so Linux's
    /// admin reserve never applies; its user reserve (a little of the limit
    /// held back from one large process) is not modelled.
    pub const fn allows(
        &self,
        pages: u64,
        committed: u64,
        ram_pages: u64,
        swap_pages: u64,
    ) -> bool {
        match self.mode {
            OvercommitMode::Always => true,
            OvercommitMode::Guess => pages <= ram_pages.saturating_add(swap_pages),
            OvercommitMode::Never => {
                committed.saturating_add(pages) < self.commit_limit(ram_pages, swap_pages)
            }
        }
    }

    /// Whether `MAP_NORESERVE` is honoured: in every mode but 2 (Linux's
    /// `do_mmap`).
    pub const fn honours_noreserve(&self) -> bool {
        !matches!(self.mode, OvercommitMode::Never)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RAM: u64 = 65_536; // 256 MiB
    const SWAP: u64 = 131_072; // 512 MiB

    fn mode(mode: OvercommitMode) -> Overcommit {
        Overcommit {
            mode,
            ..Overcommit::LINUX
        }
    }

    #[test]
    fn defaults_are_linux() {
        let d = Overcommit::default();
        assert_eq!(d.mode, OvercommitMode::Guess);
        assert_eq!(d.ratio, 50);
        assert_eq!(d.kbytes, 0);
        assert!(d.honours_noreserve());
    }

    #[test]
    fn modes_round_trip() {
        for v in 0..3 {
            assert_eq!(OvercommitMode::from_value(v).unwrap().value(), v);
        }
        assert_eq!(OvercommitMode::from_value(3), None);
        assert_eq!(OvercommitMode::from_value(u64::MAX), None);
    }

    #[test]
    fn commit_limit_is_ratio_of_ram_plus_swap() {
        let o = Overcommit::LINUX;
        assert_eq!(o.commit_limit(RAM, 0), RAM / 2);
        assert_eq!(o.commit_limit(RAM, SWAP), RAM / 2 + SWAP);
        let full = Overcommit { ratio: 100, ..o };
        assert_eq!(full.commit_limit(RAM, SWAP), RAM + SWAP);
        let none = Overcommit { ratio: 0, ..o };
        assert_eq!(none.commit_limit(RAM, SWAP), SWAP);
        // A ratio above 100 is allowed (Linux too): overcommit in mode 2.
        let more = Overcommit { ratio: 300, ..o };
        assert_eq!(more.commit_limit(RAM, 0), 3 * RAM);
        // No overflow with absurd tunables.
        let huge = Overcommit {
            ratio: u64::MAX,
            ..o
        };
        assert_eq!(huge.commit_limit(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn kbytes_replaces_the_ratio() {
        let o = Overcommit {
            kbytes: 100 * 1024,
            ..Overcommit::LINUX
        };
        assert_eq!(o.commit_limit(RAM, 0), 25_600);
        assert_eq!(o.commit_limit(RAM, SWAP), 25_600 + SWAP);
        // Less than a page of kbytes is nothing.
        let tiny = Overcommit { kbytes: 3, ..o };
        assert_eq!(tiny.commit_limit(RAM, 7), 7);
    }

    #[test]
    fn guess_refuses_only_one_request_beyond_ram_and_swap() {
        let o = mode(OvercommitMode::Guess);
        assert!(o.allows(RAM, 0, RAM, 0));
        assert!(!o.allows(RAM + 1, 0, RAM, 0));
        assert!(o.allows(RAM + SWAP, 0, RAM, SWAP));
        assert!(!o.allows(RAM + SWAP + 1, 0, RAM, SWAP));
        // What is already committed does not matter.
        assert!(o.allows(RAM, u64::MAX / 2, RAM, 0));
        // 4 GiB on a 512 MiB machine without swap: refused.
        assert!(!o.allows(1 << 20, 0, 131_072, 0));
    }

    #[test]
    fn always_grants_everything() {
        let o = mode(OvercommitMode::Always);
        assert!(o.allows(u64::MAX, u64::MAX, 0, 0));
        assert!(o.honours_noreserve());
    }

    #[test]
    fn never_stops_one_page_short_of_the_limit() {
        let o = mode(OvercommitMode::Never);
        let limit = o.commit_limit(RAM, SWAP);
        assert!(!o.honours_noreserve());
        assert!(o.allows(limit - 1, 0, RAM, SWAP));
        assert!(!o.allows(limit, 0, RAM, SWAP));
        assert!(o.allows(1, limit - 2, RAM, SWAP));
        assert!(!o.allows(1, limit - 1, RAM, SWAP));
        assert!(!o.allows(0, limit, RAM, SWAP));
        assert!(!o.allows(u64::MAX, 1, RAM, SWAP));
    }

    proptest! {
        /// Mode 2 against its definition, and the modes' order: whatever
        /// mode 2 grants, mode 0 grants if the request fits in RAM + swap,
        /// and mode 1 grants everything.
        #[test]
        fn never_matches_the_definition(
            pages in 0..1u64 << 22,
            committed in 0..1u64 << 22,
            ram in 0..1u64 << 21,
            swap in 0..1u64 << 21,
            ratio in 0..200u64,
        ) {
            let o = Overcommit { mode: OvercommitMode::Never, ratio, kbytes: 0 };
            let limit = ram * ratio / 100 + swap;
            prop_assert_eq!(o.allows(pages, committed, ram, swap), committed + pages < limit);
            let guess = Overcommit { mode: OvercommitMode::Guess, ..o };
            prop_assert_eq!(guess.allows(pages, committed, ram, swap), pages <= ram + swap);
            if ratio <= 100 && o.allows(pages, committed, ram, swap) {
                prop_assert!(guess.allows(pages, committed, ram, swap));
            }
            let always = Overcommit { mode: OvercommitMode::Always, ..o };
            prop_assert!(always.allows(pages, committed, ram, swap));
        }
    }
}
