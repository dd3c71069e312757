//! The ramdisk archive: cpio "newc" (the format Linux uses for initramfs).
//!
//! Each entry is a 110-byte ASCII header (magic `070701` followed by thirteen
//! 8-digit hex fields), the NUL-terminated name padded so that header + name is
//! a multiple of 4 bytes, then the data padded to a multiple of 4. An entry
//! named `TRAILER!!!` ends the archive; anything after it (such as the block
//! padding `cpio -o` adds) is ignored.
//!
//! newc was chosen because it is trivial to parse without allocation, is
//! what Linux's initramfs uses, and the host `cpio` tool reads and writes it.
//!
//! [`Archive::parse`] checks every header up front, so the kernel gets one
//! clear error for a corrupt ramdisk instead of surprises during lookups.
//! [`Builder`] writes archives (used by the host boot tool).

use alloc::vec::Vec;
use core::fmt;

/// Magic of the newc format (no checksum).
const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Magic of the newc-with-checksum format; the `check` field is the sum of the
/// data bytes, which is verified.
const MAGIC_CRC: &[u8; 6] = b"070702";
/// Length of the fixed header: the magic plus 13 fields of 8 hex digits.
const HEADER_LEN: usize = 110;
/// Name of the entry that ends the archive.
const TRAILER: &str = "TRAILER!!!";

/// Mask of the file-type bits in `mode` (`S_IFMT`).
pub const S_IFMT: u32 = 0o170_000;
/// File type: directory.
pub const S_IFDIR: u32 = 0o040_000;
/// File type: regular file.
pub const S_IFREG: u32 = 0o100_000;
/// File type: symbolic link (the data is the link target).
pub const S_IFLNK: u32 = 0o120_000;

/// Field indices within the header, after the magic.
const F_INO: usize = 0;
const F_MODE: usize = 1;
const F_NLINK: usize = 4;
const F_FILESIZE: usize = 6;
const F_NAMESIZE: usize = 11;
const F_CHECK: usize = 12;
const FIELD_NAMES: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// Why an archive could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpioError {
    /// The archive ended inside the header, name or data of the entry at
    /// this byte offset.
    Truncated {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// The entry at this offset does not start with `070701` (or `070702`).
    BadMagic {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// A header field is not 8 hex digits.
    BadField {
        /// Offset of the entry's header.
        offset: usize,
        /// Name of the field (`"filesize"`, `"namesize"`, ...).
        field: &'static str,
    },
    /// The name is empty, lacks its terminating NUL or contains a NUL.
    BadName {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// The name is not UTF-8 (paths are `&str` in Ferrite).
    NonUtf8Name {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// A `070702` entry's data does not sum to its `check` field.
    BadChecksum {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// The data ended without a `TRAILER!!!` entry.
    MissingTrailer,
    /// [`Builder`]: the path is empty (after removing leading `/` and `./`),
    /// contains a NUL byte, or is `TRAILER!!!`.
    InvalidPath,
    /// [`Builder`]: the name or data does not fit a 32-bit size field.
    TooLarge,
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { offset } => {
                write!(f, "cpio: entry at offset {offset} is truncated")
            }
            Self::BadMagic { offset } => write!(
                f,
                "cpio: entry at offset {offset} has a bad magic (expected newc \"070701\")"
            ),
            Self::BadField { offset, field } => write!(
                f,
                "cpio: entry at offset {offset}: field {field} is not 8 hex digits"
            ),
            Self::BadName { offset } => write!(
                f,
                "cpio: entry at offset {offset} has an empty or malformed name"
            ),
            Self::NonUtf8Name { offset } => {
                write!(
                    f,
                    "cpio: entry at offset {offset} has a name that is not UTF-8"
                )
            }
            Self::BadChecksum { offset } => {
                write!(f, "cpio: entry at offset {offset} fails its checksum")
            }
            Self::MissingTrailer => write!(f, "cpio: archive has no TRAILER!!! entry"),
            Self::InvalidPath => write!(
                f,
                "cpio: path is empty, contains a NUL byte, or is the reserved TRAILER!!!"
            ),
            Self::TooLarge => write!(f, "cpio: name or data is larger than 4 GiB"),
        }
    }
}

impl core::error::Error for CpioError {}

/// Strips leading `/` and `./` and trailing `/`, so `/bin/hello`,
/// `./bin/hello` and `bin/hello` all name the same entry. The archive root
/// (`.` or `/`) becomes `""`.
pub fn normalize(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    if p == "." {
        return "";
    }
    p.trim_end_matches('/')
}

/// One entry of an archive, borrowing the archive's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The path, normalised (see [`normalize`]): no leading `./` or `/`.
    pub path: &'a str,
    /// File type and permission bits, as in `st_mode`.
    pub mode: u32,
    /// The contents (for a symlink: the target).
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether this entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this entry is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// A validated newc archive.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    /// Number of entries before the trailer.
    len: usize,
}

/// A header decoded and bounds-checked, plus where the next entry starts.
struct RawEntry<'a> {
    entry: Entry<'a>,
    /// The name exactly as stored (before normalisation).
    raw_name: &'a str,
    next: usize,
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

fn hex_field(header: &[u8], index: usize, offset: usize) -> Result<u32, CpioError> {
    let start = 6 + index * 8;
    let digits = &header[start..start + 8];
    let mut value: u32 = 0;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => {
                return Err(CpioError::BadField {
                    offset,
                    field: FIELD_NAMES[index],
                })
            }
        };
        // Eight hex digits always fit in 32 bits, so this cannot overflow.
        value = (value << 4) | u32::from(nibble);
    }
    Ok(value)
}

/// Decodes and checks the entry whose header starts at `offset`.
fn read_entry(bytes: &[u8], offset: usize) -> Result<RawEntry<'_>, CpioError> {
    let truncated = CpioError::Truncated { offset };
    let header_end = offset.checked_add(HEADER_LEN).ok_or(truncated)?;
    let header = bytes.get(offset..header_end).ok_or(truncated)?;
    let magic = &header[..6];
    let crc = if magic == MAGIC_NEWC {
        false
    } else if magic == MAGIC_CRC {
        true
    } else {
        return Err(CpioError::BadMagic { offset });
    };
    let mut fields = [0u32; 13];
    for (i, field) in fields.iter_mut().enumerate() {
        *field = hex_field(header, i, offset)?;
    }

    let namesize = fields[F_NAMESIZE] as usize;
    if namesize == 0 {
        return Err(CpioError::BadName { offset });
    }
    let name_end = header_end.checked_add(namesize).ok_or(truncated)?;
    let name = bytes.get(header_end..name_end).ok_or(truncated)?;
    let (last, name) = name.split_last().ok_or(CpioError::BadName { offset })?;
    if *last != 0 || name.is_empty() || name.contains(&0) {
        return Err(CpioError::BadName { offset });
    }
    let name = core::str::from_utf8(name).map_err(|_| CpioError::NonUtf8Name { offset })?;

    let data_start = align4(name_end).ok_or(truncated)?;
    let data_end = data_start
        .checked_add(fields[F_FILESIZE] as usize)
        .ok_or(truncated)?;
    let data = bytes.get(data_start..data_end).ok_or(truncated)?;
    // The padding after the data is only needed if another entry follows;
    // that entry's own bounds check covers it.
    if crc {
        let sum = data
            .iter()
            .fold(0u32, |acc, &b| acc.wrapping_add(u32::from(b)));
        if sum != fields[F_CHECK] {
            return Err(CpioError::BadChecksum { offset });
        }
    }
    let next = align4(data_end).ok_or(truncated)?;
    Ok(RawEntry {
        entry: Entry {
            path: normalize(name),
            mode: fields[F_MODE],
            data,
        },
        raw_name: name,
        next,
    })
}

impl<'a> Archive<'a> {
    /// Validates every entry of `bytes` up to the `TRAILER!!!` entry.
    ///
    /// Offsets in the format are relative to the start of `bytes`, so the
    /// archive must start at a 4-byte boundary of the slice (it always does
    /// when the slice is the whole ramdisk).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CpioError> {
        let mut offset = 0;
        let mut len = 0;
        loop {
            if offset >= bytes.len() {
                return Err(CpioError::MissingTrailer);
            }
            let raw = read_entry(bytes, offset)?;
            if raw.raw_name == TRAILER {
                return Ok(Self { bytes, len });
            }
            len += 1;
            offset = raw.next;
        }
    }

    /// Number of entries (files, directories, links; not the trailer).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the archive has no entries besides the trailer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All entries in archive order (directories and links included, the
    /// trailer excluded).
    pub fn files(&self) -> Files<'a> {
        Files {
            bytes: self.bytes,
            offset: 0,
            remaining: self.len,
        }
    }

    /// Looks up `path`, written as `/bin/hello`, `bin/hello` or
    /// `./bin/hello`. If an archive holds the same path twice the last one
    /// wins, as when the archive is extracted.
    pub fn find(&self, path: &str) -> Option<Entry<'a>> {
        let path = normalize(path);
        self.files().filter(|e| e.path == path).last()
    }
}

/// Iterator over an [`Archive`]'s entries.
#[derive(Debug, Clone)]
pub struct Files<'a> {
    bytes: &'a [u8],
    offset: usize,
    remaining: usize,
}

impl<'a> Iterator for Files<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // `Archive::parse` already validated these entries, so this cannot
        // fail; stopping is the safe answer if it somehow did.
        let raw = read_entry(self.bytes, self.offset).ok()?;
        self.offset = raw.next;
        self.remaining -= 1;
        Some(raw.entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Writes a newc archive in memory.
///
/// The output is deterministic: inode numbers count up from 1, owner,
/// group and mtime are 0, so the same inputs always give the same bytes.
/// Parent directories are not added implicitly; add them first with
/// [`Builder::add_dir`] so `cpio -i` (without `-d`) and the kernel see them.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    out: Vec<u8>,
    next_ino: u32,
}

impl Builder {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            next_ino: 1,
        }
    }

    /// Adds a regular file. `mode` gives the permission bits (e.g. `0o755`);
    /// any file-type bits in it are replaced by `S_IFREG`.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<&mut Self, CpioError> {
        self.add(path, S_IFREG | (mode & 0o7777), 1, data)
    }

    /// Adds a directory with mode `0o755`.
    pub fn add_dir(&mut self, path: &str) -> Result<&mut Self, CpioError> {
        self.add(path, S_IFDIR | 0o755, 2, &[])
    }

    /// Adds a symbolic link to `target`.
    pub fn add_symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, CpioError> {
        self.add(path, S_IFLNK | 0o777, 1, target.as_bytes())
    }

    fn add(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        data: &[u8],
    ) -> Result<&mut Self, CpioError> {
        let path = normalize(path);
        if path.is_empty() || path.contains('\0') || path == TRAILER {
            return Err(CpioError::InvalidPath);
        }
        let ino = self.next_ino;
        self.next_ino = self.next_ino.checked_add(1).ok_or(CpioError::TooLarge)?;
        self.write_entry(ino, mode, nlink, path, data)?;
        Ok(self)
    }

    fn write_entry(
        &mut self,
        ino: u32,
        mode: u32,
        nlink: u32,
        name: &str,
        data: &[u8],
    ) -> Result<(), CpioError> {
        let namesize = u32::try_from(name.len() + 1).map_err(|_| CpioError::TooLarge)?;
        let filesize = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge)?;
        let mut fields = [0u32; 13];
        fields[F_INO] = ino;
        fields[F_MODE] = mode;
        fields[F_NLINK] = nlink;
        fields[F_FILESIZE] = filesize;
        fields[F_NAMESIZE] = namesize;
        self.out.extend_from_slice(MAGIC_NEWC);
        for field in fields {
            push_hex(&mut self.out, field);
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad4();
        self.out.extend_from_slice(data);
        self.pad4();
        Ok(())
    }

    fn pad4(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer cannot fail: its name and data are tiny.
        let _ = self.write_entry(0, 0, 1, TRAILER, &[]);
        self.out
    }
}

fn push_hex(out: &mut Vec<u8>, value: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for shift in (0..8).rev() {
        out.push(DIGITS[((value >> (shift * 4)) & 0xF) as usize]);
    }
}

#[cfg(feature = "std")]
mod host {
    use super::{normalize, Builder};
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use std::io;
    use std::path::Path;

    impl Builder {
        /// Host only: adds the directory tree at `host_dir` under
        /// `archive_dir` (`""` or `"/"` for the archive root), including
        /// `archive_dir` itself unless it is the root. Entries are added in
        /// sorted order so the archive is reproducible; symlinks are stored
        /// as links, permissions are taken from the host (on Unix).
        pub fn add_host_tree(&mut self, host_dir: &Path, archive_dir: &str) -> io::Result<()> {
            let archive_dir = normalize(archive_dir);
            if !archive_dir.is_empty() {
                self.add_dir(archive_dir).map_err(invalid)?;
            }
            self.add_tree_contents(host_dir, archive_dir)
        }

        fn add_tree_contents(&mut self, host_dir: &Path, archive_dir: &str) -> io::Result<()> {
            let mut children: Vec<_> = std::fs::read_dir(host_dir)?.collect::<Result<_, _>>()?;
            children.sort_by_key(|c| c.file_name());
            for child in children {
                let name = child.file_name();
                let name = name.to_str().ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("cpio: {:?} is not a UTF-8 name", child.path()),
                    )
                })?;
                let path: String = if archive_dir.is_empty() {
                    name.into()
                } else {
                    format!("{archive_dir}/{name}")
                };
                let meta = std::fs::symlink_metadata(child.path())?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(child.path())?;
                    let target = target.to_str().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "cpio: non-UTF-8 symlink target")
                    })?;
                    self.add_symlink(&path, target).map_err(invalid)?;
                } else if meta.is_dir() {
                    self.add_dir(&path).map_err(invalid)?;
                    self.add_tree_contents(&child.path(), &path)?;
                } else if meta.is_file() {
                    let data = std::fs::read(child.path())?;
                    self.add_file(&path, permissions(&meta), &data)
                        .map_err(invalid)?;
                }
                // Devices, FIFOs and sockets have no place in a ramdisk: skipped.
            }
            Ok(())
        }
    }

    #[cfg(unix)]
    fn permissions(meta: &std::fs::Metadata) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o7777
    }

    #[cfg(not(unix))]
    fn permissions(meta: &std::fs::Metadata) -> u32 {
        if meta.permissions().readonly() {
            0o444
        } else {
            0o644
        }
    }

    fn invalid(e: super::CpioError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds the expected header for the golden test, field by field.
    fn header(fields: [u32; 13]) -> Vec<u8> {
        let mut v = b"070701".to_vec();
        for f in fields {
            v.extend_from_slice(alloc::format!("{f:08X}").as_bytes());
        }
        v
    }

    #[test]
    fn golden_bytes_of_tiny_archive() {
        let mut b = Builder::new();
        b.add_file("/a", 0o644, b"hi").unwrap();
        let bytes = b.finish();

        // Entry "a": header (110) + "a\0" (2) = 112, already aligned; data
        // "hi" + 2 bytes of padding. Trailer: 110 + 11 = 121 -> 3 padding.
        let mut want = header([1, 0o100_644, 0, 0, 1, 0, 2, 0, 0, 0, 0, 2, 0]);
        want.extend_from_slice(b"a\0");
        want.extend_from_slice(b"hi\0\0");
        want.extend_from_slice(&header([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0]));
        want.extend_from_slice(b"TRAILER!!!\0\0\0\0");
        assert_eq!(bytes, want);
        assert_eq!(bytes.len(), 240);
        // Spot-check the text by hand: mode 0o100644 is 0x81A4.
        assert_eq!(
            &bytes[..30],
            concat!("070701", "00000001", "000081A4", "00000000").as_bytes()
        );
    }

    #[test]
    fn round_trip_and_lookup() {
        let mut b = Builder::new();
        b.add_dir("bin").unwrap();
        b.add_file("bin/hello", 0o755, b"\x7fELF...").unwrap();
        b.add_file("./etc/motd", 0o644, b"").unwrap();
        b.add_symlink("/sh", "bin/hello").unwrap();
        let bytes = b.finish();
        let a = Archive::parse(&bytes).unwrap();
        assert_eq!(a.len(), 4);
        let paths: Vec<_> = a.files().map(|e| e.path).collect();
        assert_eq!(paths, ["bin", "bin/hello", "etc/motd", "sh"]);

        for q in ["/bin/hello", "bin/hello", "./bin/hello", "//bin/hello"] {
            let e = a.find(q).unwrap();
            assert!(e.is_file() && !e.is_dir());
            assert_eq!(e.data, b"\x7fELF...");
            assert_eq!(e.permissions(), 0o755);
        }
        let d = a.find("/bin/").unwrap();
        assert!(d.is_dir() && !d.is_file());
        assert!(a.find("sh").unwrap().is_symlink());
        assert_eq!(a.find("sh").unwrap().data, b"bin/hello");
        assert!(a.find("etc/motd").unwrap().data.is_empty());
        assert!(a.find("bin/hell").is_none());
        assert!(a.find("missing").is_none());
    }

    #[test]
    fn empty_archive_is_just_a_trailer() {
        let bytes = Builder::new().finish();
        let a = Archive::parse(&bytes).unwrap();
        assert!(a.is_empty());
        assert_eq!(a.files().count(), 0);
    }

    #[test]
    fn later_duplicate_wins() {
        let mut b = Builder::new();
        b.add_file("x", 0o644, b"old").unwrap();
        b.add_file("x", 0o644, b"new").unwrap();
        let bytes = b.finish();
        assert_eq!(
            Archive::parse(&bytes).unwrap().find("x").unwrap().data,
            b"new"
        );
    }

    #[test]
    fn trailing_block_padding_is_ignored() {
        let mut b = Builder::new();
        b.add_file("f", 0o600, b"abc").unwrap();
        let mut bytes = b.finish();
        bytes.resize(512, 0);
        assert_eq!(
            Archive::parse(&bytes).unwrap().find("f").unwrap().data,
            b"abc"
        );
    }

    #[test]
    fn dot_entries_normalise() {
        assert_eq!(normalize("."), "");
        assert_eq!(normalize("./"), "");
        assert_eq!(normalize("/"), "");
        assert_eq!(normalize("././a/b/"), "a/b");
        assert_eq!(normalize("a"), "a");
    }

    #[test]
    fn builder_rejects_bad_paths() {
        let mut b = Builder::new();
        assert_eq!(b.add_file("", 0, b"").unwrap_err(), CpioError::InvalidPath);
        assert_eq!(b.add_dir("./").unwrap_err(), CpioError::InvalidPath);
        assert_eq!(
            b.add_file("a\0b", 0, b"").unwrap_err(),
            CpioError::InvalidPath
        );
        assert_eq!(
            b.add_file("TRAILER!!!", 0, b"").unwrap_err(),
            CpioError::InvalidPath
        );
    }

    fn sample() -> Vec<u8> {
        let mut b = Builder::new();
        b.add_dir("bin").unwrap();
        b.add_file("bin/hello", 0o755, b"hello world").unwrap();
        b.finish()
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let good = sample();

        let mut bad = good.clone();
        bad[5] = b'9';
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::BadMagic { offset: 0 }
        );

        let mut bad = good.clone();
        bad[6 + 6 * 8] = b'g'; // filesize
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::BadField {
                offset: 0,
                field: "filesize"
            }
        );

        // namesize 0.
        let mut bad = good.clone();
        bad[6 + 11 * 8..6 + 12 * 8].copy_from_slice(b"00000000");
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::BadName { offset: 0 }
        );

        // Name not NUL-terminated: "bin\0" -> "bin!".
        let mut bad = good.clone();
        bad[113] = b'!';
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::BadName { offset: 0 }
        );

        // Non-UTF-8 name.
        let mut bad = good.clone();
        bad[110] = 0xFF;
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::NonUtf8Name { offset: 0 }
        );

        // filesize pointing far past the end.
        let mut bad = good.clone();
        bad[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"FFFFFFFF");
        assert_eq!(
            Archive::parse(&bad).unwrap_err(),
            CpioError::Truncated { offset: 0 }
        );

        assert_eq!(Archive::parse(&[]).unwrap_err(), CpioError::MissingTrailer);
        // Cut off right after the second entry: no trailer.
        let second_end = 112 + 124 + 12;
        assert_eq!(
            Archive::parse(&good[..second_end]).unwrap_err(),
            CpioError::MissingTrailer
        );
        assert_eq!(
            Archive::parse(&good[..good.len() - 4]).unwrap_err(),
            CpioError::Truncated { offset: second_end }
        );
    }

    #[test]
    fn crc_variant_checksum_is_verified() {
        let mut b = Builder::new();
        b.add_file("f", 0o644, b"\x01\x02\x03").unwrap();
        let mut bytes = b.finish();
        bytes[5] = b'2';
        // check field = 0 but the data sums to 6.
        assert_eq!(
            Archive::parse(&bytes).unwrap_err(),
            CpioError::BadChecksum { offset: 0 }
        );
        bytes[6 + 12 * 8..6 + 13 * 8].copy_from_slice(b"00000006");
        assert_eq!(
            Archive::parse(&bytes).unwrap().find("f").unwrap().data,
            b"\x01\x02\x03"
        );
    }

    #[test]
    fn errors_display_clearly() {
        let msg = alloc::format!("{}", CpioError::Truncated { offset: 12 });
        assert_eq!(msg, "cpio: entry at offset 12 is truncated");
        let msg = alloc::format!(
            "{}",
            CpioError::BadField {
                offset: 0,
                field: "mode"
            }
        );
        assert_eq!(
            msg,
            "cpio: entry at offset 0: field mode is not 8 hex digits"
        );
    }

    #[cfg(not(miri))]
    #[test]
    fn host_tree_is_added_sorted_with_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(alloc::format!("usercore-cpio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/hello"), b"ELF").unwrap();
        std::fs::set_permissions(
            dir.join("bin/hello"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::fs::write(dir.join("a.txt"), b"text").unwrap();
        std::os::unix::fs::symlink("bin/hello", dir.join("link")).unwrap();

        let mut b = Builder::new();
        b.add_host_tree(&dir, "/").unwrap();
        let bytes = b.finish();
        std::fs::remove_dir_all(&dir).unwrap();

        let a = Archive::parse(&bytes).unwrap();
        let paths: Vec<_> = a.files().map(|e| e.path).collect();
        assert_eq!(paths, ["a.txt", "bin", "bin/hello", "link"]);
        let hello = a.find("/bin/hello").unwrap();
        assert_eq!((hello.data, hello.permissions()), (&b"ELF"[..], 0o751));
        assert!(a.find("bin").unwrap().is_dir());
        assert!(a.find("link").unwrap().is_symlink());
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn random_file_sets_round_trip(
            files in proptest::collection::btree_map(
                "[a-z]{1,8}(/[a-z0-9._-]{1,12}){0,3}",
                (0u32..0o7777, proptest::collection::vec(any::<u8>(), 0..300)),
                0..12,
            )
        ) {
            let mut b = Builder::new();
            for (path, (mode, data)) in &files {
                b.add_file(path, *mode, data).unwrap();
            }
            let bytes = b.finish();
            prop_assert_eq!(bytes.len() % 4, 0);
            let a = Archive::parse(&bytes).unwrap();
            prop_assert_eq!(a.len(), files.len());
            for ((path, (mode, data)), e) in files.iter().zip(a.files()) {
                prop_assert_eq!(e.path, path.as_str());
                prop_assert_eq!(e.mode, S_IFREG | mode);
                prop_assert_eq!(e.data, &data[..]);
                let found = a.find(&alloc::format!("/{path}")).unwrap();
                prop_assert_eq!(found.data, &data[..]);
            }
        }

        #[test]
        fn mutations_and_truncations_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = sample();
            for (i, v) in edits {
                let i = i.index(bytes.len());
                bytes[i] = v;
            }
            let cut = cut.index(bytes.len() + 1);
            if let Ok(a) = Archive::parse(&bytes[..cut]) {
                // Whatever parsed must be fully iterable and searchable.
                prop_assert_eq!(a.files().count(), a.len());
                let _ = a.find("bin/hello");
            }
        }
    }
}
