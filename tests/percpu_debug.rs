//! The slab's debug checks on the per-CPU magazines' fast path, through
//! the kernel's own allocator (tests build with `slab-debug`): an object
//! freed a second time while the first free sits in this CPU's magazine
//! (not on top, where even a release build would see it) panics at once,
//! naming the magazine (mmcore's host tests cover poison, red zones and
//! the other cases; here the kernel's path is shown to run them).

#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::Layout;
use core::fmt::Write;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        a_double_free_into_a_magazine_panics_at_once
    ])
}

/// The panic message, formatted without allocating (the judge runs on the
/// panic path).
struct Buf {
    bytes: [u8; 256],
    len: usize,
}

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn a_double_free_into_a_magazine_panics_at_once() {
    ferrite::testing::expect_panic(|report| {
        let mut buf = Buf {
            bytes: [0; 256],
            len: 0,
        };
        let _ = write!(buf, "{}", report.info.message());
        let msg = core::str::from_utf8(&buf.bytes[..buf.len]).unwrap_or("");
        if !msg.contains("kernel heap: slab:") || !msg.contains("double free") {
            return Err("not the heap's double-free report");
        }
        if !msg.contains("per-CPU magazine") {
            return Err("not caught in the magazine");
        }
        Ok(())
    });
    let l = Layout::from_size_align(48, 8).unwrap();
    // SAFETY: deliberately wrong: `a` is freed twice (the heap must catch
    // it before touching anything); everything else is allocated and
    // freed by the rules.
    unsafe {
        let a = alloc::alloc::alloc(l);
        let b = alloc::alloc::alloc(l);
        assert!(!a.is_null() && !b.is_null());
        alloc::alloc::dealloc(a, l);
        alloc::alloc::dealloc(b, l);
        alloc::alloc::dealloc(a, l);
    }
    panic!("the double free went unnoticed");
}
