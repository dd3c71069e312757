//! Zone watermarks, computed as Linux's `mm/page_alloc.c` does
//! (`init_per_zone_wmark_min` and `__setup_per_zone_wmarks`), for one zone.
//!
//! - **min** (`min_free_kbytes`): `int_sqrt(lowmem_kbytes * 16)` KiB,
//!   clamped to 128..=262144 KiB. Linux's own table (its comment above
//!   `init_per_zone_wmark_min`): 16 MiB of memory → 512 KiB, 64 MiB →
//!   1024 KiB, 1 GiB → 4096 KiB, 16 GiB → 16384 KiB. User allocations stop
//!   at min; below it only the kernel allocates (reclaim's own memory, page
//!   tables, kernel stacks), so reclaim never deadlocks for want of a frame.
//! - **low** = min + `max(min / 4, managed * watermark_scale_factor / 10000)`
//!   (`watermark_scale_factor` = 10 by default): an allocation that leaves
//!   fewer free pages wakes kswapd.
//! - **high** = low + the same step: kswapd reclaims until free pages are
//!   back at high, then sleeps.
//!
//! Ferrite's one difference: min is never below [`FERRITE_MIN_KBYTES`]
//! (512 KiB, 128 frames), the floor of the user reserve it replaces. It
//! only applies to machines smaller than 16 MiB (where Linux's formula
//! gives less than 512 KiB); every machine Ferrite boots on gets Linux's
//! number.

/// Linux's lower clamp of `min_free_kbytes`.
pub const LINUX_MIN_FREE_KBYTES_FLOOR: u64 = 128;
/// Linux's upper clamp of `min_free_kbytes` (256 MiB, since Linux 5.8).
pub const LINUX_MIN_FREE_KBYTES_CEILING: u64 = 262_144;
/// Ferrite's floor of the min watermark (see the module comment).
pub const FERRITE_MIN_KBYTES: u64 = 512;
/// Linux's default `vm.watermark_scale_factor` (in ten-thousandths of the
/// zone's managed memory).
pub const DEFAULT_WATERMARK_SCALE_FACTOR: u64 = 10;

/// `floor(sqrt(x))`, Linux's `int_sqrt`.
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Newton's method from above: converges to the floor.
    let mut r = 1u64 << (64 - x.leading_zeros()).div_ceil(2);
    loop {
        let next = (r + x / r) / 2;
        if next >= r {
            return r;
        }
        r = next;
    }
}

/// Linux's `min_free_kbytes` for `lowmem_kbytes` of memory.
pub fn linux_min_free_kbytes(lowmem_kbytes: u64) -> u64 {
    int_sqrt(lowmem_kbytes.saturating_mul(16))
        .clamp(LINUX_MIN_FREE_KBYTES_FLOOR, LINUX_MIN_FREE_KBYTES_CEILING)
}

/// One zone's watermarks, in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// User allocations fail (and reclaim directly) at or below this.
    pub min: u64,
    /// An allocation leaving fewer free pages wakes kswapd.
    pub low: u64,
    /// kswapd reclaims until this many pages are free.
    pub high: u64,
}

impl Watermarks {
    /// Linux's watermarks for a single zone of `managed_pages` pages of
    /// `page_kbytes` KiB each, with `min_free_kbytes` given.
    pub fn linux(
        managed_pages: u64,
        page_kbytes: u64,
        min_free_kbytes: u64,
        watermark_scale_factor: u64,
    ) -> Watermarks {
        let min = min_free_kbytes / page_kbytes.max(1);
        // mult_frac(managed, scale, 10000)
        let scaled = (managed_pages / 10_000) * watermark_scale_factor
            + (managed_pages % 10_000) * watermark_scale_factor / 10_000;
        let step = (min / 4).max(scaled);
        Watermarks {
            min,
            low: min + step,
            high: min + 2 * step,
        }
    }

    /// Ferrite's watermarks for `managed_pages` 4 KiB pages: Linux's, with
    /// min no lower than [`FERRITE_MIN_KBYTES`].
    pub fn for_managed(managed_pages: u64) -> Watermarks {
        let kbytes = managed_pages.saturating_mul(4);
        let min_free = linux_min_free_kbytes(kbytes).max(FERRITE_MIN_KBYTES);
        Watermarks::linux(managed_pages, 4, min_free, DEFAULT_WATERMARK_SCALE_FACTOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIB: u64 = 1024;

    #[test]
    fn min_free_kbytes_matches_linux_table() {
        // The table in Linux's mm/page_alloc.c, above
        // init_per_zone_wmark_min (what its int_sqrt computes).
        let table = [
            (16, 512),
            (32, 724),
            (64, 1024),
            (128, 1448),
            (256, 2048),
            (512, 2896),
            (1024, 4096),
            (2048, 5792),
            (4096, 8192),
            // The comment says 11584k; int_sqrt(134217728) is 11585.
            (8192, 11585),
            (16384, 16384),
        ];
        for (mib, kbytes) in table {
            assert_eq!(linux_min_free_kbytes(mib * MIB), kbytes, "{mib} MiB");
        }
    }

    #[test]
    fn min_free_kbytes_clamps_like_linux() {
        assert_eq!(linux_min_free_kbytes(0), 128);
        assert_eq!(linux_min_free_kbytes(1024), 128); // 1 MiB: sqrt = 128
        assert_eq!(linux_min_free_kbytes(512), 128);
        // 4 TiB would give 262144 exactly; more stays there.
        assert_eq!(linux_min_free_kbytes(4 << 30), 262_144);
        assert_eq!(linux_min_free_kbytes(64 << 30), 262_144);
        assert_eq!(linux_min_free_kbytes(u64::MAX), 262_144);
    }

    #[test]
    fn watermarks_of_linux_zones() {
        // 1 GiB zone, min_free_kbytes 4096: min 1024 pages; min/4 = 256 <
        // 262144 * 10 / 10000 = 262, so the scale factor sets the step.
        let w = Watermarks::linux(262_144, 4, 4096, 10);
        assert_eq!(
            w,
            Watermarks {
                min: 1024,
                low: 1286,
                high: 1548
            }
        );
        // 64 MiB zone, min_free_kbytes 1024: min 256, min/4 = 64 > 16.
        let w = Watermarks::linux(16_384, 4, 1024, 10);
        assert_eq!(
            w,
            Watermarks {
                min: 256,
                low: 320,
                high: 384
            }
        );
        // 16 GiB zone, min_free_kbytes 16384: min 4096; 1024 < 4194.
        let w = Watermarks::linux(4_194_304, 4, 16384, 10);
        assert_eq!(
            w,
            Watermarks {
                min: 4096,
                low: 8290,
                high: 12484
            }
        );
        // watermark_scale_factor 1000 (10 %) on 1 GiB.
        let w = Watermarks::linux(262_144, 4, 4096, 1000);
        assert_eq!(w.low - w.min, 26_214);
    }

    #[test]
    fn ferrite_watermarks_follow_linux_above_16_mib() {
        for mib in [16u64, 64, 256, 4096, 8192] {
            let pages = mib * 256;
            let ours = Watermarks::for_managed(pages);
            let linux = Watermarks::linux(pages, 4, linux_min_free_kbytes(mib * MIB), 10);
            assert_eq!(ours, linux, "{mib} MiB");
        }
        // A 4 MiB machine: Linux says 256 KiB, Ferrite keeps 512 KiB.
        assert_eq!(Watermarks::for_managed(1024).min, 128);
        assert_eq!(linux_min_free_kbytes(4 * MIB), 256);
    }

    proptest! {
        #[test]
        fn int_sqrt_is_floor_sqrt(x in any::<u64>()) {
            let r = int_sqrt(x) as u128;
            prop_assert!(r * r <= x as u128);
            prop_assert!((r + 1) * (r + 1) > x as u128);
        }

        #[test]
        fn watermarks_are_ordered(pages in 0u64..(1 << 34)) {
            let w = Watermarks::for_managed(pages);
            prop_assert!(w.min >= FERRITE_MIN_KBYTES / 4);
            prop_assert!(w.min <= w.low && w.low <= w.high);
            prop_assert_eq!(w.high - w.low, w.low - w.min);
            prop_assert!(w.low - w.min >= w.min / 4);
        }
    }
}
