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

/// The two peaks, in pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hiwater {
    rss: u64,
    vm: u64,
}

impl Hiwater {
    /// No peak yet (a new address space; a fork's child starts over, as
    /// Linux's `dup_mm` resets them to the child's sizes).
    pub const fn new() -> Hiwater {
        Hiwater { rss: 0, vm: 0 }
    }

    /// Samples the sizes now (resident pages, mapped pages), before they
    /// go down.
    pub fn update(&mut self, rss: u64, vm: u64) {
        self.rss = self.rss.max(rss);
        self.vm = self.vm.max(vm);
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
}
