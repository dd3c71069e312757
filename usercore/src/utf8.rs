//! A streaming UTF-8 decoder for the console: bytes arrive in arbitrary
//! pieces (one `write` each), so a character may be split between two
//! writes. The decoder keeps the unfinished character between calls.
//!
//! Invalid input becomes U+FFFD REPLACEMENT CHARACTER, one per "maximal
//! subpart" of an ill-formed sequence (the WHATWG/Unicode recommendation,
//! which is also what Rust's `String::from_utf8_lossy` does): a byte that
//! cannot continue the pending sequence ends it with one U+FFFD and is then
//! decoded afresh. So a stream fed in any split gives exactly the characters
//! the whole stream gives through `from_utf8_lossy`.

/// U+FFFD, what an ill-formed sequence decodes to.
pub const REPLACEMENT: char = '\u{FFFD}';

/// The decoder's state between bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Decoder {
    /// The bits of the character so far.
    code: u32,
    /// Continuation bytes still needed (0: between characters).
    need: u8,
    /// The range the next continuation byte must be in (narrower than
    /// 0x80..=0xbf right after some lead bytes: no overlong forms, no
    /// surrogates, nothing above U+10FFFF).
    lower: u8,
    upper: u8,
}

impl Utf8Decoder {
    /// A decoder between characters.
    pub const fn new() -> Utf8Decoder {
        Utf8Decoder {
            code: 0,
            need: 0,
            lower: 0x80,
            upper: 0xbf,
        }
    }

    /// Whether part of a character is pending.
    pub fn pending(&self) -> bool {
        self.need != 0
    }

    /// Feeds one byte; `out` receives the characters it completes (none,
    /// one, or a U+FFFD for the sequence it broke followed by its own).
    pub fn push(&mut self, byte: u8, mut out: impl FnMut(char)) {
        if self.need != 0 {
            if (self.lower..=self.upper).contains(&byte) {
                self.code = (self.code << 6) | (byte & 0x3f) as u32;
                self.need -= 1;
                self.lower = 0x80;
                self.upper = 0xbf;
                if self.need == 0 {
                    // The ranges above admit only scalar values.
                    out(char::from_u32(self.code).unwrap_or(REPLACEMENT));
                }
                return;
            }
            // The sequence ends here, unfinished; the byte starts afresh.
            *self = Utf8Decoder::new();
            out(REPLACEMENT);
        }
        match byte {
            0x00..=0x7f => out(byte as char),
            0xc2..=0xdf => self.start(byte & 0x1f, 1, 0x80, 0xbf),
            0xe0 => self.start(0, 2, 0xa0, 0xbf),
            0xed => self.start(0xd, 2, 0x80, 0x9f),
            0xe1..=0xef => self.start(byte & 0x0f, 2, 0x80, 0xbf),
            0xf0 => self.start(0, 3, 0x90, 0xbf),
            0xf4 => self.start(4, 3, 0x80, 0x8f),
            0xf1..=0xf3 => self.start(byte & 0x07, 3, 0x80, 0xbf),
            // Continuation bytes without a lead, 0xc0, 0xc1, 0xf5..=0xff.
            _ => out(REPLACEMENT),
        }
    }

    /// Feeds every byte of `bytes` in order.
    pub fn push_all(&mut self, bytes: &[u8], mut out: impl FnMut(char)) {
        for &b in bytes {
            self.push(b, &mut out);
        }
    }

    fn start(&mut self, bits: u8, need: u8, lower: u8, upper: u8) {
        *self = Utf8Decoder {
            code: bits as u32,
            need,
            lower,
            upper,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> String {
        let mut d = Utf8Decoder::new();
        let mut s = String::new();
        let mut at = 0;
        for &cut in cuts.iter().chain(core::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            d.push_all(&bytes[at..cut], |c| s.push(c));
            at = cut;
        }
        // A stream ending inside a character: one U+FFFD, as from_utf8_lossy.
        if d.pending() {
            s.push(REPLACEMENT);
        }
        s
    }

    #[test]
    fn a_character_split_between_writes_is_one_character() {
        let euro = "€".as_bytes();
        let mut d = Utf8Decoder::new();
        let mut s = String::new();
        d.push_all(&euro[..1], |c| s.push(c));
        assert!(s.is_empty() && d.pending());
        d.push_all(&euro[1..], |c| s.push(c));
        assert_eq!(s, "€");
        assert!(!d.pending());
    }

    #[test]
    fn ill_formed_sequences_as_from_utf8_lossy() {
        let cases: &[&[u8]] = &[
            b"\xff",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"a\xe2\x82b",
            b"\xf0\x9f\x98",
            b"\x80\x80",
        ];
        for &c in cases {
            assert_eq!(
                decode_in_pieces(c, &[]),
                String::from_utf8_lossy(c),
                "{c:x?}"
            );
        }
    }

    #[test]
    fn every_byte_value_alone() {
        for b in 0..=255u8 {
            assert_eq!(
                decode_in_pieces(&[b], &[]),
                String::from_utf8_lossy(&[b]),
                "{b:#x}"
            );
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config(2000))]
        #[test]
        fn any_split_decodes_as_the_whole(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x80u8..0xc0, 0xc2u8..0xf5], 0..64),
            mut cuts in proptest::collection::vec(0usize..64, 0..8),
        ) {
            cuts.sort_unstable();
            let want = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert_eq!(decode_in_pieces(&bytes, &cuts), want);
        }

        #[test]
        fn valid_text_round_trips(s in "\\PC{0,40}", cut in 0usize..200) {
            let bytes: Vec<u8> = s.clone().into_bytes();
            prop_assert_eq!(decode_in_pieces(&bytes, &[cut]), s);
        }
    }
}
