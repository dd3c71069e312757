//! The structures of Linux's x86_64 user ABI that system calls read and
//! write, laid out as user programs see them (`#[repr(C)]`, LP64).
//!
//! Each is declared through [`pod_struct!`], which checks at compile time
//! that it has no padding and only [`Pod`] fields before it implements
//! [`Pod`]: so `mm::uaccess` may copy it to and from user memory whole.

use crate::mm::uaccess::Pod;

/// Declares a `#[repr(C)]` struct and implements [`Pod`] for it, after
/// compile-time checks that its size is the sum of its fields' (no padding
/// anywhere) and that every field is `Pod` itself.
macro_rules! pod_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        const _: () = assert!(
            core::mem::size_of::<$name>() == 0 $(+ core::mem::size_of::<$ty>())*,
            concat!(stringify!($name), " has padding"),
        );
        const _: fn() = || {
            fn field_is_pod<T: Pod>() {}
            $(field_is_pod::<$ty>();)*
        };

        // SAFETY: `#[repr(C)]`, no padding (the size assertion above), and
        // every field is `Pod` (the bound check above): any bytes are a
        // valid value, and every byte of a value is initialised.
        unsafe impl Pod for $name {}
    };
}

pod_struct! {
    /// `struct timespec`: `nanosleep`'s request, `clock_gettime`'s answer.
    pub struct Timespec {
        pub tv_sec: i64,
        pub tv_nsec: i64,
    }
}

pod_struct! {
    /// `struct iovec`: one segment of a `readv`/`writev` array.
    pub struct Iovec {
        pub iov_base: u64,
        pub iov_len: u64,
    }
}

/// Bytes in each `utsname` field (`__NEW_UTS_LEN + 1`), NUL included.
pub const UTS_FIELD: usize = 65;

pod_struct! {
    /// `struct new_utsname`: `uname`'s answer, NUL-padded strings.
    pub struct Utsname {
        pub sysname: [u8; UTS_FIELD],
        pub nodename: [u8; UTS_FIELD],
        pub release: [u8; UTS_FIELD],
        pub version: [u8; UTS_FIELD],
        pub machine: [u8; UTS_FIELD],
        pub domainname: [u8; UTS_FIELD],
    }
}

pod_struct! {
    /// `struct winsize`: the terminal size `TIOCGWINSZ` reports.
    pub struct Winsize {
        pub ws_row: u16,
        pub ws_col: u16,
        pub ws_xpixel: u16,
        pub ws_ypixel: u16,
    }
}

pod_struct! {
    /// The kernel's `struct sigaction` on x86_64 (what `rt_sigaction`
    /// reads and writes, not libc's): handler, flags, restorer, mask.
    pub struct Sigaction {
        pub sa_handler: u64,
        pub sa_flags: u64,
        pub sa_restorer: u64,
        pub sa_mask: u64,
    }
}

pod_struct! {
    /// `struct stat` on x86_64 (`stat`, `fstat`, `lstat`, `newfstatat`).
    pub struct Stat {
        pub st_dev: u64,
        pub st_ino: u64,
        pub st_nlink: u64,
        pub st_mode: u32,
        pub st_uid: u32,
        pub st_gid: u32,
        pub pad0: u32,
        pub st_rdev: u64,
        pub st_size: i64,
        pub st_blksize: i64,
        pub st_blocks: i64,
        pub st_atime: i64,
        pub st_atime_nsec: i64,
        pub st_mtime: i64,
        pub st_mtime_nsec: i64,
        pub st_ctime: i64,
        pub st_ctime_nsec: i64,
        pub unused: [i64; 3],
    }
}

pod_struct! {
    /// `struct statx_timestamp`.
    pub struct StatxTimestamp {
        pub tv_sec: i64,
        pub tv_nsec: u32,
        pub reserved: i32,
    }
}

pod_struct! {
    /// `struct statx` (256 bytes).
    pub struct Statx {
        pub stx_mask: u32,
        pub stx_blksize: u32,
        pub stx_attributes: u64,
        pub stx_nlink: u32,
        pub stx_uid: u32,
        pub stx_gid: u32,
        pub stx_mode: u16,
        pub spare0: u16,
        pub stx_ino: u64,
        pub stx_size: u64,
        pub stx_blocks: u64,
        pub stx_attributes_mask: u64,
        pub stx_atime: StatxTimestamp,
        pub stx_btime: StatxTimestamp,
        pub stx_ctime: StatxTimestamp,
        pub stx_mtime: StatxTimestamp,
        pub stx_rdev_major: u32,
        pub stx_rdev_minor: u32,
        pub stx_dev_major: u32,
        pub stx_dev_minor: u32,
        pub spare2: [u64; 14],
    }
}
