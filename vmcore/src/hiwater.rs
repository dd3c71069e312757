//! Peak sizes of an address space: `VmPeak` and `VmHWM` in
//! `/proc/PID/status` (Linux's `hiwater_vm` and `hiwater_rss`).
//!
//! As in Linux, the peaks are sampled where the sizes are about to go
//! down (before `munmap`, `MADV_DONTNEED`, a `MAP_FIXED` replacement, a
//! shrinking `mremap` or `brk`: Linux's `update_hiwater_rss` /
//! `update_hiwater_vm`), and a reader takes the larger of the peak and
//! the size now. Growth needs no sampling: the size now covers it. A
//! drop the kernel does not sample (reclaim taking pages away, as in
//! Linux) leaves the peak where the last sample put it.

/// The two peaks, in pages, and a bound on the resident pages now.
///
/// Counting the resident pages is a walk of every present leaf, so a
/// sample before each `munmap` would make the call cost as much as the
/// whole address space. Linux keeps counters; here the sampler keeps an
/// upper bound instead: the resident pages at the last walk, plus every
/// page a fault may have added since ([`Hiwater::grew`]), minus the pages
/// an unmap is known to have removed ([`Hiwater::shrank`]). While that
/// bound is no more than the peak, the pages now cannot be more either,
/// and the walk is skipped ([`Hiwater::rss_may_exceed_peak`]). A drop the
/// sampler is not told about (reclaim, `MADV_DONTNEED`) only leaves the
/// bound loose; anything that adds pages some other way (a fork's child,
/// swapoff's batch) must [`Hiwater::forget`] it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hiwater {
    rss: u64,
    vm: u64,
    /// At least the resident pages now; `u64::MAX`: not known.
    rss_bound: u64,
}

impl Default for Hiwater {
    fn default() -> Hiwater {
        Hiwater::new()
    }
}

impl Hiwater {
    /// No peak yet, and nothing resident (a new, empty address space).
    pub const fn new() -> Hiwater {
        Hiwater {
            rss: 0,
            vm: 0,
            rss_bound: 0,
        }
    }

    /// Samples the sizes now (resident pages, mapped pages), before they
    /// go down; the resident pages are then the bound.
    pub fn update(&mut self, rss: u64, vm: u64) {
        self.rss = self.rss.max(rss);
        self.vm = self.vm.max(vm);
        self.rss_bound = rss;
    }

    /// Samples the mapped pages alone (the resident pages need no walk:
    /// [`Self::rss_may_exceed_peak`] is false).
    pub fn update_vm(&mut self, vm: u64) {
        self.vm = self.vm.max(vm);
    }

    /// Whether the resident pages now may be above the peak (the bound
    /// says so, or is not known): only then must a sample walk them.
    pub fn rss_may_exceed_peak(&self) -> bool {
        self.rss_bound > self.rss
    }

    /// Up to `pages` more may be resident (a fault resolved).
    pub fn grew(&mut self, pages: u64) {
        self.rss_bound = self.rss_bound.saturating_add(pages);
    }

    /// At least `pages` resident pages are gone (an unmap took them out
    /// of the tables; count only pages that `VmRSS` counted).
    pub fn shrank(&mut self, pages: u64) {
        if self.rss_bound != u64::MAX {
            self.rss_bound = self.rss_bound.saturating_sub(pages);
        }
    }

    /// Pages came in some way the bound did not follow: the next sample
    /// walks.
    pub fn forget(&mut self) {
        self.rss_bound = u64::MAX;
    }

    /// `VmHWM` given the resident pages now.
    pub fn peak_rss(&self, rss: u64) -> u64 {
        self.rss.max(rss)
    }

    /// `VmPeak` given the mapped pages now.
    pub fn peak_vm(&self, vm: u64) -> u64 {
        self.vm.max(vm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_the_largest_sample_or_now() {
        let mut h = Hiwater::new();
        assert_eq!((h.peak_rss(5), h.peak_vm(9)), (5, 9));
        h.update(100, 200);
        // Shrunk after the sample: the peak stays.
        assert_eq!((h.peak_rss(10), h.peak_vm(20)), (100, 200));
        // Grown past it since: the size now.
        assert_eq!((h.peak_rss(150), h.peak_vm(250)), (150, 250));
        h.update(50, 300);
        assert_eq!((h.peak_rss(0), h.peak_vm(0)), (100, 300));
    }

    #[test]
    fn the_walk_is_skipped_only_while_the_bound_is_under_the_peak() {
        let mut h = Hiwater::new();
        assert!(!h.rss_may_exceed_peak(), "empty: nothing resident");
        h.grew(10);
        assert!(h.rss_may_exceed_peak());
        h.update(10, 40);
        assert!(!h.rss_may_exceed_peak(), "sampled: bound = peak");
        // A malloc1 round: one page in, one page out, no walk.
        for _ in 0..3 {
            h.grew(1);
            assert!(h.rss_may_exceed_peak(), "11 may be above 10");
            h.shrank(1);
            assert!(!h.rss_may_exceed_peak());
        }
        h.shrank(4);
        h.grew(3);
        assert!(!h.rss_may_exceed_peak(), "at most 9 now");
        h.grew(2);
        assert!(h.rss_may_exceed_peak(), "maybe 11");
        h.forget();
        h.shrank(1000);
        assert!(h.rss_may_exceed_peak(), "unknown stays unknown");
        h.update(7, 40);
        assert_eq!(h.peak_rss(0), 10);
        assert!(!h.rss_may_exceed_peak());
    }

    /// Against a model: random growth (by faults, told), drops told and
    /// untold, and sizes forgotten; whenever the sampler skips the walk,
    /// the true resident count is no more than the peak it keeps.
    #[test]
    fn a_skipped_walk_never_misses_a_peak() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut h = Hiwater::new();
            let mut rss = 0u64;
            let mut true_peak = 0u64;
            for _ in 0..500 {
                match next() % 6 {
                    0 | 1 => {
                        // A fault: maybe a page in (told either way).
                        let added = next() % 2;
                        rss += added;
                        h.grew(1);
                    }
                    2 => {
                        // An unmap of pages it tells.
                        let gone = next() % (rss + 1);
                        rss -= gone;
                        h.shrank(gone);
                    }
                    3 => {
                        // Reclaim: pages go untold.
                        rss -= next() % (rss + 1);
                    }
                    4 => {
                        // A fork's child or swapoff: pages in, untold.
                        rss += next() % 5;
                        h.forget();
                    }
                    _ => {
                        // A sample before a shrink.
                        if h.rss_may_exceed_peak() {
                            h.update(rss, 0);
                        }
                        true_peak = true_peak.max(rss);
                        assert_eq!(h.peak_rss(rss), true_peak);
                    }
                }
            }
        }
    }
}
