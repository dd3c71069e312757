//! File-system ABI logic shared by the kernel's VFS and its host tests:
//! `poll` event bits, file-type bits of `st_mode`, `linux_dirent64`
//! records (what `getdents64` writes) and path components.

/// `poll` event bits (`POLLIN`, ...), as Linux's `<asm-generic/poll.h>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PollEvents(pub u16);

impl PollEvents {
    /// Data to read (`POLLIN`).
    pub const IN: PollEvents = PollEvents(0x001);
    /// Urgent data (`POLLPRI`).
    pub const PRI: PollEvents = PollEvents(0x002);
    /// Room to write (`POLLOUT`).
    pub const OUT: PollEvents = PollEvents(0x004);
    /// An error (`POLLERR`).
    pub const ERR: PollEvents = PollEvents(0x008);
    /// Hung up: the other end is gone (`POLLHUP`).
    pub const HUP: PollEvents = PollEvents(0x010);
    /// Not an open descriptor (`POLLNVAL`).
    pub const NVAL: PollEvents = PollEvents(0x020);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits in both.
    pub const fn intersection(self, other: PollEvents) -> PollEvents {
        PollEvents(self.0 & other.0)
    }
}

impl core::ops::BitOr for PollEvents {
    type Output = PollEvents;
    fn bitor(self, rhs: PollEvents) -> PollEvents {
        PollEvents(self.0 | rhs.0)
    }
}

/// File-type bits of `st_mode`.
pub mod mode {
    /// Mask of the type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// A directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// A character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// A regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// A symbolic link.
    pub const S_IFLNK: u32 = 0o120000;
    /// A pipe.
    pub const S_IFIFO: u32 = 0o010000;
}

/// A node's type, as directories and `stat` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A character device.
    CharDevice,
    /// A symbolic link.
    Symlink,
    /// A pipe.
    Fifo,
}

impl FileType {
    /// The `S_IF*` bits.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => mode::S_IFREG,
            FileType::Directory => mode::S_IFDIR,
            FileType::CharDevice => mode::S_IFCHR,
            FileType::Symlink => mode::S_IFLNK,
            FileType::Fifo => mode::S_IFIFO,
        }
    }

    /// The `d_type` of a directory entry (`DT_*`).
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::Regular => 8,
            FileType::Symlink => 10,
        }
    }
}

/// Bytes of a `linux_dirent64` record for a name of `name_len` bytes:
/// the 19-byte header, the name, its NUL, rounded up to 8.
pub const fn dirent64_len(name_len: usize) -> usize {
    (19 + name_len + 1 + 7) & !7
}

/// Writes one `linux_dirent64` record (`d_ino`, `d_off`, `d_reclen`,
/// `d_type`, the NUL-terminated name, zero padding) at the start of `out`;
/// returns its length, or `None` if it does not fit.
pub fn put_dirent64(
    out: &mut [u8],
    ino: u64,
    off: i64,
    kind: FileType,
    name: &[u8],
) -> Option<usize> {
    let len = dirent64_len(name.len());
    if out.len() < len || len > u16::MAX as usize {
        return None;
    }
    let rec = &mut out[..len];
    rec.fill(0);
    rec[0..8].copy_from_slice(&ino.to_ne_bytes());
    rec[8..16].copy_from_slice(&off.to_ne_bytes());
    rec[16..18].copy_from_slice(&(len as u16).to_ne_bytes());
    rec[18] = kind.dirent_type();
    rec[19..19 + name.len()].copy_from_slice(name);
    Some(len)
}

/// The longest file name (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// The longest path (`PATH_MAX`, its NUL included).
pub const PATH_MAX: usize = 4096;

/// The components of `path`, with empty ones (repeated or trailing `/`)
/// left out; `.` and `..` are kept for the walker to judge.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

/// Whether a trailing `/` (or `/.`) asks for the last component to be a
/// directory (`mkdir("a/")` is fine, `open("file/")` is `ENOTDIR`).
pub fn wants_directory(path: &[u8]) -> bool {
    path.ends_with(b"/")
        || path.ends_with(b"/.")
        || path == b"."
        || path.ends_with(b"/..")
        || path == b".."
}

/// Splits `path` into its parent part and last component, for calls that
/// create or remove a name: `("a/b", "c")` for `a/b/c/`; the last component
/// is empty for `/` and `""`.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let trimmed = {
        let mut end = path.len();
        while end > 1 && path[end - 1] == b'/' {
            end -= 1;
        }
        &path[..end]
    };
    if trimmed == b"/" {
        return (b"/", b"");
    }
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (b"", trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn dirent_records_are_aligned_and_terminated() {
        let mut buf = [0xffu8; 64];
        let n = put_dirent64(&mut buf, 7, 3, FileType::Directory, b"abc").unwrap();
        assert_eq!(n, 24);
        assert_eq!(u64::from_ne_bytes(buf[0..8].try_into().unwrap()), 7);
        assert_eq!(i64::from_ne_bytes(buf[8..16].try_into().unwrap()), 3);
        assert_eq!(u16::from_ne_bytes(buf[16..18].try_into().unwrap()), 24);
        assert_eq!(buf[18], 4);
        assert_eq!(&buf[19..23], b"abc\0");
        assert!(buf[23..24].iter().all(|&b| b == 0));
        assert_eq!(
            put_dirent64(&mut buf[..23], 7, 3, FileType::Regular, b"abc"),
            None
        );
        assert_eq!(dirent64_len(4), 24);
        assert_eq!(dirent64_len(5), 32);
        assert_eq!(dirent64_len(0), 24);
    }

    #[test]
    fn components_skip_empty_parts() {
        let c: Vec<&[u8]> = components(b"//a/./b//c/").collect();
        assert_eq!(c, [&b"a"[..], b".", b"b", b"c"]);
        assert_eq!(components(b"/").count(), 0);
    }

    #[test]
    fn split_last_handles_slashes() {
        assert_eq!(split_last(b"a/b/c/"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"/c"), (&b"/"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_last(b"/"), (&b"/"[..], &b""[..]));
        assert_eq!(split_last(b"//"), (&b"/"[..], &b""[..]));
        assert_eq!(split_last(b""), (&b""[..], &b""[..]));
        assert!(wants_directory(b"a/"));
        assert!(!wants_directory(b"a"));
    }

    #[test]
    fn poll_bits_combine() {
        let e = PollEvents::IN | PollEvents::OUT;
        assert!(e.contains(PollEvents::IN));
        assert!(!e.contains(PollEvents::HUP));
        assert_eq!(e.intersection(PollEvents::OUT), PollEvents::OUT);
    }
}
