//! ChaCha20 (RFC 8439) as the kernel's random-number generator: the block
//! function, and [`Rng`], a fast-key-erasure generator over it (each
//! request's output is followed by a fresh key taken from the same
//! stream, so a later look at the state cannot recover earlier output).
//! The kernel seeds and reseeds it from RDSEED/RDRAND (`getrandom`,
//! `AT_RANDOM`).

/// "expand 32-byte k".
const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// One 64-byte ChaCha20 block for `key`, block `counter` and `nonce`.
pub fn block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u8; 64] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&CONSTANTS);
    init[4..12].copy_from_slice(key);
    init[12] = counter;
    init[13..].copy_from_slice(nonce);
    let mut s = init;
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for (i, word) in s.iter().enumerate() {
        let w = word.wrapping_add(init[i]);
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A fast-key-erasure generator: a 256-bit key and a request counter
/// (the nonce), so no two requests share a keystream.
#[derive(Clone)]
pub struct Rng {
    key: [u32; 8],
    requests: u64,
}

impl Rng {
    /// A generator keyed with `seed`.
    pub const fn new(seed: [u32; 8]) -> Rng {
        Rng {
            key: seed,
            requests: 0,
        }
    }

    /// Mixes `entropy` into the key (a reseed): the new key is the
    /// keystream of the old one XORed with it, so it is at least as
    /// unpredictable as either.
    pub fn mix(&mut self, entropy: &[u32; 8]) {
        let stream = self.next_block(u32::MAX);
        for (i, k) in self.key.iter_mut().enumerate() {
            let w = u32::from_le_bytes([
                stream[4 * i],
                stream[4 * i + 1],
                stream[4 * i + 2],
                stream[4 * i + 3],
            ]);
            *k = w ^ entropy[i];
        }
    }

    fn next_block(&mut self, counter: u32) -> [u8; 64] {
        let nonce = [self.requests as u32, (self.requests >> 32) as u32, 0];
        block(&self.key, counter, &nonce)
    }

    /// Fills `out` (at most 256 GiB: 2^32 blocks) with keystream, then
    /// replaces the key with keystream never handed out.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut counter = 0u32;
        for chunk in out.chunks_mut(64) {
            let b = self.next_block(counter);
            chunk.copy_from_slice(&b[..chunk.len()]);
            counter = counter.wrapping_add(1);
        }
        // The new key: the last block of this request's keystream.
        let next = self.next_block(u32::MAX);
        for (i, k) in self.key.iter_mut().enumerate() {
            *k = u32::from_le_bytes([
                next[4 * i],
                next[4 * i + 1],
                next[4 * i + 2],
                next[4 * i + 3],
            ]);
        }
        self.requests = self.requests.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8439_block_test_vector() {
        // RFC 8439 section 2.3.2.
        let key: [u32; 8] = core::array::from_fn(|i| {
            let b = 4 * i as u32;
            u32::from_le_bytes([b as u8, (b + 1) as u8, (b + 2) as u8, (b + 3) as u8])
        });
        let nonce = [0x0900_0000, 0x4a00_0000, 0];
        let out = block(&key, 1, &nonce);
        let expect_start = [0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15];
        let expect_end = [0xa2, 0x50, 0x3c, 0x4e];
        assert_eq!(out[..8], expect_start);
        assert_eq!(out[60..], expect_end);
    }

    #[test]
    fn requests_differ_and_key_moves_on() {
        let mut rng = Rng::new([7; 8]);
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        rng.fill(&mut a);
        rng.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(rng.key, [7; 8]);
        let mut again = Rng::new([7; 8]);
        let mut c = [0u8; 100];
        again.fill(&mut c);
        assert_eq!(a, c);
        again.mix(&[1; 8]);
        let mut d = [0u8; 100];
        again.fill(&mut d);
        assert_ne!(b, d);
    }
}
