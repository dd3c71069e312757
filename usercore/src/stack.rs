//! The initial user stack: what a C runtime finds at `rsp` on entry.
//!
//! The System V x86_64 ABI (and Linux's `create_elf_tables`) fixes the
//! layout, from `rsp` upwards:
//!
//! ```text
//! rsp ->  argc
//!         argv[0] .. argv[argc-1], NULL
//!         envp[0] .. envp[n-1], NULL
//!         auxv pairs (type, value) .., (AT_NULL, 0)
//!         padding (so rsp is 16-byte aligned)
//!         16 random bytes (AT_RANDOM)
//!         "x86_64\0" (AT_PLATFORM)
//!         argv strings, then envp strings
//! top ->  (stack_top, exclusive)
//! ```
//!
//! [`build`] produces these bytes with their final user addresses, so the
//! kernel only copies them to `[start, stack_top)` and sets `rsp`.

use alloc::vec::Vec;
use core::fmt;

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Entry to ignore.
pub const AT_IGNORE: u64 = 1;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Base address of the dynamic loader (0: none).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// The program's entry point.
pub const AT_ENTRY: u64 = 9;
/// Real user id.
pub const AT_UID: u64 = 11;
/// Effective user id.
pub const AT_EUID: u64 = 12;
/// Real group id.
pub const AT_GID: u64 = 13;
/// Effective group id.
pub const AT_EGID: u64 = 14;
/// Address of the platform string ("x86_64").
pub const AT_PLATFORM: u64 = 15;
/// CPU capability bits.
pub const AT_HWCAP: u64 = 16;
/// Clock ticks per second (for `times()`).
pub const AT_CLKTCK: u64 = 17;
/// Whether the program runs with elevated privileges (0).
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes (stack protector and pointer-guard seeds).
pub const AT_RANDOM: u64 = 25;
/// More CPU capability bits.
pub const AT_HWCAP2: u64 = 26;
/// Address of the executed file's name.
pub const AT_EXECFN: u64 = 31;
/// The vDSO's ELF header (`AT_SYSINFO_EHDR`).
pub const AT_SYSINFO_EHDR: u64 = 33;

/// Largest total size of the argv and envp strings (NULs included). Like
/// Linux's `ARG_MAX` it bounds the kernel memory an `exec` can demand.
pub const MAX_STRINGS: usize = 128 * 1024;

/// Why a stack image could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// argv is empty (Linux refuses this too: programs assume `argv[0]`).
    NoArgv,
    /// An argv, envp or platform string contains a NUL byte.
    NulInString,
    /// The strings exceed [`MAX_STRINGS`].
    TooBig,
    /// `stack_top` is not 16-byte aligned.
    MisalignedTop(u64),
    /// `stack_top` is too low to hold the image below it.
    TooLow,
    /// The caller passed an auxv entry the builder owns (`AT_NULL`,
    /// `AT_RANDOM`, `AT_PLATFORM` or `AT_EXECFN`).
    ReservedAux(u64),
    /// No memory for the image (the kernel returns `ENOMEM`).
    OutOfMemory,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoArgv => write!(f, "stack: argv is empty"),
            Self::NulInString => write!(f, "stack: an argument or environment string contains NUL"),
            Self::TooBig => write!(
                f,
                "stack: arguments and environment exceed {MAX_STRINGS} bytes"
            ),
            Self::MisalignedTop(t) => write!(f, "stack: top {t:#x} is not 16-byte aligned"),
            Self::TooLow => write!(f, "stack: top is too low to hold the initial stack"),
            Self::OutOfMemory => write!(f, "stack: out of memory for the initial stack"),
            Self::ReservedAux(k) => write!(
                f,
                "stack: auxv entry {k} is added by the stack builder and must not be passed"
            ),
        }
    }
}

impl core::error::Error for StackError {}

/// The initial stack, ready to copy to user memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackImage {
    /// The bytes of `[start, stack_top)`.
    pub bytes: Vec<u8>,
    /// Lowest address of the image: `stack_top - bytes.len()`.
    pub start: u64,
    /// Initial `rsp`: points at argc, 16-byte aligned (equal to `start`).
    pub rsp: u64,
    /// Number of arguments.
    pub argc: u64,
    /// Address of `argv[0]`'s pointer (`rsp + 8`).
    pub argv_addr: u64,
    /// Address of `envp[0]`'s pointer.
    pub envp_addr: u64,
    /// Address of the first auxv pair.
    pub auxv_addr: u64,
    /// Address of the 16 `AT_RANDOM` bytes.
    pub random_addr: u64,
    /// The argument strings, NUL-terminated, one after the other:
    /// `[arg_start, arg_end)` (Linux's `mm->arg_start`/`arg_end`, what
    /// `/proc/PID/cmdline` reads), then the environment's up to `env_end`.
    pub arg_start: u64,
    /// One past the last argument's NUL: where the environment starts.
    pub arg_end: u64,
    /// One past the last environment string's NUL (the stack top).
    pub env_end: u64,
}

/// The auxv entries a static program expects, leaving out the ones
/// [`build`] adds itself. `phdr` is `LoadPlan::phdr_addr` (0 if absent);
/// uids and gids are 0, the clock ticks 100 per second.
pub fn basic_auxv(phdr: u64, phent: u64, phnum: u64, entry: u64) -> [(u64, u64); 15] {
    [
        (AT_PHDR, phdr),
        (AT_PHENT, phent),
        (AT_PHNUM, phnum),
        (AT_PAGESZ, crate::PAGE_SIZE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, entry),
        (AT_UID, 0),
        (AT_EUID, 0),
        (AT_GID, 0),
        (AT_EGID, 0),
        (AT_SECURE, 0),
        (AT_CLKTCK, 100),
        (AT_HWCAP, 0),
        (AT_HWCAP2, 0),
    ]
}

/// Lays out the initial stack below `stack_top` (16-byte aligned,
/// exclusive). `auxv` must not contain the entries the builder adds:
/// `AT_RANDOM` (pointing at `random`), `AT_PLATFORM` (pointing at
/// `platform`), `AT_EXECFN` (pointing at argv[0]) and the final `AT_NULL`.
pub fn build(
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    auxv: &[(u64, u64)],
    random: [u8; 16],
    platform: &str,
) -> Result<StackImage, StackError> {
    if !stack_top.is_multiple_of(16) {
        return Err(StackError::MisalignedTop(stack_top));
    }
    if argv.is_empty() {
        return Err(StackError::NoArgv);
    }
    let strings = || argv.iter().chain(envp);
    if strings().any(|s| s.contains(&0)) || platform.contains('\0') {
        return Err(StackError::NulInString);
    }
    if let Some(&(key, _)) = auxv
        .iter()
        .find(|(k, _)| matches!(*k, AT_NULL | AT_RANDOM | AT_PLATFORM | AT_EXECFN))
    {
        return Err(StackError::ReservedAux(key));
    }
    let mut strings_len: usize = 0;
    for s in strings() {
        strings_len = strings_len.saturating_add(s.len()).saturating_add(1);
    }
    if strings_len > MAX_STRINGS {
        return Err(StackError::TooBig);
    }

    // Everything below is bounded by MAX_STRINGS (argv and envp hold at
    // most one pointer per string byte) except auxv, which comes from the
    // kernel; stay checked anyway.
    let too_low = StackError::TooLow;
    let sub = |a: u64, b: usize| a.checked_sub(b as u64).ok_or(too_low);
    let strings_addr = sub(stack_top, strings_len)?;
    let platform_addr = sub(strings_addr, platform.len() + 1)?;
    let random_addr = sub(platform_addr, random.len())?;
    let aux_pairs = auxv.len().checked_add(4).ok_or(too_low)?;
    let words = aux_pairs
        .checked_mul(2)
        .and_then(|w| w.checked_add(argv.len() + envp.len() + 3))
        .ok_or(too_low)?;
    let rsp = sub(random_addr, words.checked_mul(8).ok_or(too_low)?)? & !15;

    let len = usize::try_from(stack_top - rsp).map_err(|_| too_low)?;
    // Fallible: the kernel builds this on behalf of execve (up to
    // MAX_STRINGS and the tables: a large, contiguous allocation).
    let oom = |_| StackError::OutOfMemory;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(oom)?;
    bytes.resize(len, 0);
    let mut image = Writer { bytes, base: rsp };

    // Strings: argv then envp, upwards from strings_addr.
    let mut at = strings_addr;
    let mut string_addrs = Vec::new();
    string_addrs
        .try_reserve_exact(argv.len() + envp.len())
        .map_err(oom)?;
    for s in strings() {
        string_addrs.push(at);
        image.put(at, s);
        at += s.len() as u64 + 1; // the NUL is already there
    }
    image.put(platform_addr, platform.as_bytes());
    image.put(random_addr, &random);

    // The table, upwards from rsp.
    let argc = argv.len() as u64;
    let mut table = Vec::new();
    table.try_reserve_exact(words).map_err(oom)?;
    table.push(argc);
    let (argv_strs, envp_strs) = string_addrs.split_at(argv.len());
    table.extend_from_slice(argv_strs);
    table.push(0);
    table.extend_from_slice(envp_strs);
    table.push(0);
    for &(key, value) in auxv {
        table.extend_from_slice(&[key, value]);
    }
    table.extend_from_slice(&[AT_RANDOM, random_addr]);
    table.extend_from_slice(&[AT_PLATFORM, platform_addr]);
    table.extend_from_slice(&[AT_EXECFN, argv_strs[0]]);
    table.extend_from_slice(&[AT_NULL, 0]);
    debug_assert_eq!(table.len(), words);
    for (i, word) in table.iter().enumerate() {
        image.put(rsp + 8 * i as u64, &word.to_le_bytes());
    }

    let arg_end = strings_addr + argv.iter().map(|s| s.len() as u64 + 1).sum::<u64>();
    let argv_addr = rsp + 8;
    let envp_addr = argv_addr + 8 * (argc + 1);
    let auxv_addr = envp_addr + 8 * (envp.len() as u64 + 1);
    Ok(StackImage {
        bytes: image.bytes,
        start: rsp,
        rsp,
        argc,
        argv_addr,
        envp_addr,
        auxv_addr,
        random_addr,
        arg_start: strings_addr,
        arg_end,
        env_end: strings_addr + strings_len as u64,
    })
}

/// The image under construction, addressed by user address.
struct Writer {
    bytes: Vec<u8>,
    base: u64,
}

impl Writer {
    fn put(&mut self, addr: u64, data: &[u8]) {
        let at = (addr - self.base) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use proptest::prelude::*;

    const TOP: u64 = 0x7fff_ffff_f000;
    const RANDOM: [u8; 16] = *b"0123456789abcdef";

    /// argv strings, envp strings, auxv pairs.
    type Decoded<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>, Vec<(u64, u64)>);

    /// Reads the image the way a C runtime's `_start` would.
    struct View<'a> {
        img: &'a StackImage,
        top: u64,
    }

    impl View<'_> {
        fn u64(&self, addr: u64) -> u64 {
            assert!(
                addr >= self.img.start && addr + 8 <= self.top,
                "{addr:#x} outside"
            );
            assert_eq!(addr % 8, 0, "unaligned pointer slot");
            let at = (addr - self.img.start) as usize;
            u64::from_le_bytes(self.img.bytes[at..at + 8].try_into().unwrap())
        }

        fn cstr(&self, addr: u64) -> &[u8] {
            assert!(
                addr >= self.img.start && addr < self.top,
                "{addr:#x} outside"
            );
            let at = (addr - self.img.start) as usize;
            let len = self.img.bytes[at..].iter().position(|&b| b == 0).unwrap();
            &self.img.bytes[at..at + len]
        }

        /// argv, envp and auxv decoded from rsp alone.
        fn decode(&self) -> Decoded<'_> {
            let mut p = self.img.rsp;
            let argc = self.u64(p);
            p += 8;
            let argv: Vec<_> = (0..argc).map(|i| self.cstr(self.u64(p + 8 * i))).collect();
            p += 8 * argc;
            assert_eq!(self.u64(p), 0, "argv not NULL-terminated");
            p += 8;
            let mut envp = Vec::new();
            while self.u64(p) != 0 {
                envp.push(self.cstr(self.u64(p)));
                p += 8;
            }
            p += 8;
            let mut auxv = Vec::new();
            loop {
                let (k, v) = (self.u64(p), self.u64(p + 8));
                p += 16;
                if k == AT_NULL {
                    break;
                }
                auxv.push((k, v));
            }
            (argv, envp, auxv)
        }

        fn getauxval(&self, key: u64) -> Option<u64> {
            self.decode()
                .2
                .iter()
                .find(|(k, _)| *k == key)
                .map(|&(_, v)| v)
        }
    }

    fn sample() -> StackImage {
        let auxv = basic_auxv(0x40_0040, 56, 6, 0x40_102b);
        build(
            TOP,
            &[b"/bin/hello", b"two words", b""],
            &[b"PATH=/bin", b"HOME=/"],
            &auxv,
            RANDOM,
            "x86_64",
        )
        .unwrap()
    }

    #[test]
    fn c_runtime_view() {
        let img = sample();
        let v = View {
            img: &img,
            top: TOP,
        };
        assert_eq!(img.rsp % 16, 0);
        assert_eq!(img.start, img.rsp);
        assert_eq!(img.start + img.bytes.len() as u64, TOP);
        assert_eq!(img.argc, 3);
        assert_eq!(img.argv_addr, img.rsp + 8);

        let (argv, envp, auxv) = v.decode();
        assert_eq!(argv, [&b"/bin/hello"[..], b"two words", b""]);
        assert_eq!(envp, [&b"PATH=/bin"[..], b"HOME=/"]);
        assert_eq!(v.u64(img.argv_addr), v.u64(img.rsp + 8));
        assert_eq!(v.cstr(v.u64(img.envp_addr)), b"PATH=/bin");
        assert_eq!(v.u64(img.auxv_addr), AT_PHDR);

        // Caller's entries come through in order, then the builder's.
        assert_eq!(&auxv[..15], &basic_auxv(0x40_0040, 56, 6, 0x40_102b)[..]);
        let keys: Vec<_> = auxv[15..].iter().map(|&(k, _)| k).collect();
        assert_eq!(keys, [AT_RANDOM, AT_PLATFORM, AT_EXECFN]);
        assert_eq!(v.getauxval(AT_PAGESZ), Some(4096));
        assert_eq!(v.getauxval(AT_ENTRY), Some(0x40_102b));

        let random = v.getauxval(AT_RANDOM).unwrap();
        assert_eq!(random, img.random_addr);
        let at = (random - img.start) as usize;
        assert_eq!(img.bytes[at..at + 16], RANDOM);
        assert_eq!(v.cstr(v.getauxval(AT_PLATFORM).unwrap()), b"x86_64");
        let execfn = v.getauxval(AT_EXECFN).unwrap();
        assert_eq!(v.cstr(execfn), b"/bin/hello");
        assert_eq!(execfn, v.u64(img.argv_addr));

        // Strings and random bytes sit above the table (after auxv's end).
        let table_end = img.auxv_addr + 16 * (auxv.len() as u64 + 1);
        assert!(table_end <= random);
        assert!(
            random - table_end < 16 + 8,
            "only alignment padding between"
        );
        for s in 0..3 {
            assert!(v.u64(img.argv_addr + 8 * s) > random);
        }
    }

    #[test]
    fn argument_and_environment_ranges() {
        let img = sample();
        let at = |a: u64| (a - img.start) as usize;
        // What /proc/PID/cmdline reads: every argument with its NUL.
        assert_eq!(
            &img.bytes[at(img.arg_start)..at(img.arg_end)],
            b"/bin/hello\0two words\0\0"
        );
        assert_eq!(
            &img.bytes[at(img.arg_end)..at(img.env_end)],
            b"PATH=/bin\0HOME=/\0"
        );
        assert_eq!(img.env_end, TOP);
    }

    #[test]
    fn minimal_stack() {
        let img = build(0x1000, &[b"init"], &[], &[], [7; 16], "").unwrap();
        let v = View {
            img: &img,
            top: 0x1000,
        };
        let (argv, envp, auxv) = v.decode();
        assert_eq!(argv, [b"init"]);
        assert!(envp.is_empty());
        assert_eq!(auxv.len(), 3);
        assert_eq!(v.cstr(v.getauxval(AT_PLATFORM).unwrap()), b"");
        assert_eq!(img.rsp % 16, 0);
    }

    #[test]
    fn rejections() {
        let ok: &[&[u8]] = &[b"a"];
        assert_eq!(
            build(TOP, &[], &[], &[], RANDOM, "x86_64"),
            Err(StackError::NoArgv)
        );
        assert_eq!(
            build(TOP + 8, ok, &[], &[], RANDOM, "x86_64"),
            Err(StackError::MisalignedTop(TOP + 8))
        );
        assert_eq!(
            build(TOP, &[b"a\0b"], &[], &[], RANDOM, "x86_64"),
            Err(StackError::NulInString)
        );
        assert_eq!(
            build(TOP, ok, &[b"X=\0"], &[], RANDOM, "x86_64"),
            Err(StackError::NulInString)
        );
        assert_eq!(
            build(TOP, ok, &[], &[], RANDOM, "x8\0"),
            Err(StackError::NulInString)
        );
        for key in [AT_NULL, AT_RANDOM, AT_PLATFORM, AT_EXECFN] {
            assert_eq!(
                build(
                    TOP,
                    ok,
                    &[],
                    &[(AT_PAGESZ, 4096), (key, 1)],
                    RANDOM,
                    "x86_64"
                ),
                Err(StackError::ReservedAux(key))
            );
        }
        assert_eq!(
            build(64, ok, &[], &[], RANDOM, "x86_64"),
            Err(StackError::TooLow)
        );

        // Exactly MAX_STRINGS fits; one byte more does not.
        let big = vec![b'x'; MAX_STRINGS - 2 - 1];
        assert!(build(TOP, ok, &[&big], &[], RANDOM, "x86_64").is_ok());
        let bigger = vec![b'x'; MAX_STRINGS - 2];
        assert_eq!(
            build(TOP, ok, &[&bigger], &[], RANDOM, "x86_64"),
            Err(StackError::TooBig)
        );
        assert_eq!(
            format!("{}", StackError::TooBig),
            "stack: arguments and environment exceed 131072 bytes"
        );
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn random_vectors_decode(
            argv in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 1..8),
            envp in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..8),
            auxn in 0usize..20,
            random in any::<[u8; 16]>(),
            top_pages in 1u64..0x7_ffff_ffff,
        ) {
            let top = top_pages * 4096;
            let argv: Vec<&[u8]> = argv.iter().map(|s| &s[..]).collect();
            let envp: Vec<&[u8]> = envp.iter().map(|s| &s[..]).collect();
            let auxv: Vec<(u64, u64)> = (0..auxn as u64).map(|i| (100 + i, i * 3)).collect();
            let img = build(top, &argv, &envp, &auxv, random, "x86_64").unwrap();
            prop_assert_eq!(img.rsp % 16, 0);
            prop_assert_eq!(img.start + img.bytes.len() as u64, top);
            let v = View { img: &img, top };
            let (a, e, x) = v.decode();
            prop_assert_eq!(a, argv);
            prop_assert_eq!(e, envp);
            prop_assert_eq!(&x[..auxn], &auxv[..]);
            let r = (v.getauxval(AT_RANDOM).unwrap() - img.start) as usize;
            prop_assert_eq!(img.bytes[r..r + 16].to_vec(), random.to_vec());
        }
    }
}
