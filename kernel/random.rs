//! The kernel's random numbers (`getrandom`, `AT_RANDOM`): a ChaCha20
//! fast-key-erasure generator (usercore's `chacha`, tested on the host)
//! seeded from the CPU's RDSEED, or RDRAND, where it has them, and from
//! the TSC otherwise; every request mixes in a fresh hardware word (and
//! the TSC), so the stream never depends on the first seed alone.

use spin::Mutex;
use usercore::chacha::Rng;

/// `None` until the first request seeds it.
static RNG: Mutex<Option<Rng>> = Mutex::new(None);

fn has_rdrand() -> bool {
    // CPUID leaf 1, ECX bit 30. CPUID exists on every x86_64 CPU.
    core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0
}

fn has_rdseed() -> bool {
    // CPUID leaf 7 subleaf 0, EBX bit 18.
    core::arch::x86_64::__cpuid(0).eax >= 7
        && core::arch::x86_64::__cpuid_count(7, 0).ebx & (1 << 18) != 0
}

#[target_feature(enable = "rdrand")]
fn rdrand() -> Option<u64> {
    let mut v = 0;
    for _ in 0..10 {
        // Safe inside a function compiled for RDRAND; calling it is not.
        if core::arch::x86_64::_rdrand64_step(&mut v) == 1 {
            return Some(v);
        }
    }
    None
}

#[target_feature(enable = "rdseed")]
fn rdseed() -> Option<u64> {
    let mut v = 0;
    for _ in 0..10 {
        // Safe inside a function compiled for RDSEED; calling it is not.
        if core::arch::x86_64::_rdseed64_step(&mut v) == 1 {
            return Some(v);
        }
    }
    None
}

/// One word from the hardware (RDSEED first, then RDRAND), or `None`.
fn hardware_word() -> Option<u64> {
    if has_rdseed() {
        // SAFETY: the CPU has RDSEED (CPUID above).
        if let Some(v) = unsafe { rdseed() } {
            return Some(v);
        }
    }
    if has_rdrand() {
        // SAFETY: the CPU has RDRAND (CPUID above).
        return unsafe { rdrand() };
    }
    None
}

/// Whether the CPU gives hardware random numbers (RDSEED or RDRAND).
pub fn has_hardware() -> bool {
    has_rdseed() || has_rdrand()
}

/// 256 bits of entropy: hardware words where there are any, each mixed
/// with the TSC (whose low bits jitter).
fn entropy(words: usize) -> [u32; 8] {
    let mut out = [0u32; 8];
    for pair in out.chunks_mut(2).take(words) {
        let tsc = crate::time::rdtsc();
        let v =
            hardware_word().unwrap_or(0) ^ tsc.rotate_left(17).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        pair[0] = v as u32;
        pair[1] = (v >> 32) as u32;
    }
    out
}

/// Fills `out` with random bytes. Never blocks: the generator is seeded
/// on first use.
pub fn fill(out: &mut [u8]) {
    // The hardware is asked before the lock is taken.
    let fresh = entropy(1);
    let mut rng = RNG.lock();
    let rng = rng.get_or_insert_with(|| Rng::new(entropy(4)));
    rng.mix(&fresh);
    rng.fill(out);
}
