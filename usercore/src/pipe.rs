//! The bytes of a pipe and Linux's rules for reading and writing them,
//! as pure logic: the kernel wraps a [`Pipe`] in a lock, copies user data
//! through a bounce buffer outside that lock, and blocks or wakes on what
//! the steps here answer.
//!
//! - Capacity: [`PIPE_CAPACITY`] (64 KiB, Linux's default `F_GETPIPE_SZ`).
//!   Storage grows on demand from [`PIPE_BUF`] to the capacity, so an idle
//!   pipe holds one page, not sixteen; the kernel allocates the bigger
//!   buffer (fallibly, outside its lock) and hands it to [`Ring::grow`].
//! - Atomicity: a write of at most [`PIPE_BUF`] bytes goes in whole or not
//!   at all (POSIX), so writers sharing a pipe never interleave inside one
//!   such write; a larger write may be split.
//! - A read takes what is there (at least one byte), or says end of file
//!   once every write end is closed; a write to a pipe with no read end
//!   left is `EPIPE` (and `SIGPIPE`).

use alloc::vec::Vec;

/// POSIX's `PIPE_BUF`: writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// Bytes a pipe holds (Linux's default pipe size, 16 pages).
pub const PIPE_CAPACITY: usize = 65536;

/// A ring of bytes whose storage grows up to [`PIPE_CAPACITY`].
#[derive(Debug, Default)]
pub struct Ring {
    buf: Vec<u8>,
    /// Index of the oldest byte in `buf`.
    head: usize,
    /// Bytes held.
    len: usize,
}

impl Ring {
    /// An empty ring with no storage yet.
    pub const fn new() -> Ring {
        Ring {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of storage allocated now.
    pub fn storage(&self) -> usize {
        self.buf.len()
    }

    /// Room left before the pipe is full (whether or not the storage for
    /// it exists yet).
    pub fn room(&self) -> usize {
        PIPE_CAPACITY - self.len
    }

    /// The storage size needed to take `more` bytes now, if the present
    /// storage is too small: the next power of two, at least
    /// [`PIPE_BUF`], at most [`PIPE_CAPACITY`]. `None` if it fits.
    pub fn growth_for(&self, more: usize) -> Option<usize> {
        let want = (self.len + more.min(self.room())).max(1);
        if want <= self.buf.len() {
            return None;
        }
        Some(want.next_power_of_two().clamp(PIPE_BUF, PIPE_CAPACITY))
    }

    /// Moves the bytes into `bigger` (its length is the new storage size;
    /// its contents are overwritten) and returns the old storage, for the
    /// caller to free (outside its lock). If `bigger` is not larger than
    /// the present storage (another writer grew it meanwhile), it is
    /// returned unused.
    pub fn grow(&mut self, mut bigger: Vec<u8>) -> Vec<u8> {
        if bigger.len() <= self.buf.len() || bigger.len() > PIPE_CAPACITY {
            return bigger;
        }
        let n = self.peek_into(&mut bigger);
        debug_assert_eq!(n, self.len);
        self.head = 0;
        core::mem::replace(&mut self.buf, bigger)
    }

    /// Copies the held bytes, oldest first, into `out` (as many as fit)
    /// without taking them.
    fn peek_into(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        if n == 0 {
            return 0;
        }
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    /// Appends as much of `data` as the storage has room for; returns how
    /// much.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let cap = self.buf.len();
        let n = data.len().min(cap - self.len);
        if n == 0 {
            return 0;
        }
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        self.len += n;
        n
    }

    /// Takes up to `out.len()` bytes, oldest first; returns how many.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_into(out);
        if n > 0 {
            self.head = (self.head + n) % self.buf.len();
            self.len -= n;
        }
        if self.len == 0 {
            self.head = 0;
        }
        n
    }
}

/// What a read can do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// This many bytes were taken.
    Data(usize),
    /// Empty, and every write end is closed: end of file (read returns 0).
    Eof,
    /// Empty, a writer may still write: wait (or `EAGAIN`).
    Wait,
}

/// What a write can do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// This many bytes went in (at least one).
    Wrote(usize),
    /// No read end is open: `EPIPE` and `SIGPIPE`.
    Broken,
    /// Not enough room (for an atomic write, room for all of it): wait (or
    /// `EAGAIN`).
    Wait,
    /// There is room, but the storage must first grow to this size.
    Grow(usize),
}

/// Readiness as `poll` reports it for one end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// `POLLIN`: there is data to read. (An empty pipe without writers
    /// reads end of file at once, but Linux reports that as `POLLHUP`
    /// alone.)
    pub readable: bool,
    /// `POLLOUT`: a write of [`PIPE_BUF`] bytes would not wait (Linux:
    /// the pipe is not full; also with no readers left, alongside
    /// `POLLERR`).
    pub writable: bool,
    /// `POLLHUP` (read end: no writers left) or `POLLERR` (write end: no
    /// readers left).
    pub hangup: bool,
}

/// A pipe: its bytes and how many read and write ends are open.
#[derive(Debug, Default)]
pub struct Pipe {
    /// The bytes in flight.
    pub ring: Ring,
    /// Open read ends (file descriptions, not descriptors).
    pub readers: usize,
    /// Open write ends.
    pub writers: usize,
}

impl Pipe {
    /// A new pipe with one read end and one write end.
    pub const fn new() -> Pipe {
        Pipe {
            ring: Ring::new(),
            readers: 1,
            writers: 1,
        }
    }

    /// One step of `read` into `out` (non-empty).
    pub fn read(&mut self, out: &mut [u8]) -> ReadStep {
        if !self.ring.is_empty() {
            ReadStep::Data(self.ring.pop(out))
        } else if self.writers == 0 {
            ReadStep::Eof
        } else {
            ReadStep::Wait
        }
    }

    /// One step of `write` of `data` (non-empty); `atomic` if `data` is
    /// the whole of a write of at most [`PIPE_BUF`] bytes, which must go
    /// in whole.
    pub fn write(&mut self, data: &[u8], atomic: bool) -> WriteStep {
        if self.readers == 0 {
            return WriteStep::Broken;
        }
        let room = self.ring.room();
        let take = if atomic {
            if room < data.len() {
                return WriteStep::Wait;
            }
            data.len()
        } else {
            data.len().min(room)
        };
        if take == 0 {
            return WriteStep::Wait;
        }
        if let Some(size) = self.ring.growth_for(take) {
            return WriteStep::Grow(size);
        }
        WriteStep::Wrote(self.ring.push(&data[..take]))
    }

    /// `poll`'s view of the read end.
    pub fn read_ready(&self) -> Ready {
        Ready {
            readable: !self.ring.is_empty(),
            writable: false,
            hangup: self.writers == 0,
        }
    }

    /// `poll`'s view of the write end.
    pub fn write_ready(&self) -> Ready {
        Ready {
            readable: false,
            writable: self.ring.room() >= PIPE_BUF,
            hangup: self.readers == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;
    use proptest::prelude::*;

    /// Writes `data` in full, growing storage as asked.
    fn write_all(p: &mut Pipe, data: &[u8], atomic: bool) -> WriteStep {
        loop {
            match p.write(data, atomic) {
                WriteStep::Grow(n) => drop(p.ring.grow(vec![0; n])),
                step => return step,
            }
        }
    }

    #[test]
    fn storage_starts_empty_and_grows_by_powers_of_two() {
        let mut p = Pipe::new();
        assert_eq!(p.ring.storage(), 0);
        assert_eq!(p.write(b"hi", true), WriteStep::Grow(PIPE_BUF));
        assert_eq!(write_all(&mut p, b"hi", true), WriteStep::Wrote(2));
        assert_eq!(p.ring.storage(), PIPE_BUF);
        let big = vec![7u8; 5000];
        assert_eq!(p.write(&big, false), WriteStep::Grow(8192));
        assert_eq!(write_all(&mut p, &big, false), WriteStep::Wrote(5000));
        let mut out = vec![0u8; 6000];
        assert_eq!(p.read(&mut out), ReadStep::Data(5002));
        assert_eq!(&out[..2], b"hi");
        assert!(out[2..5002].iter().all(|&b| b == 7));
    }

    #[test]
    fn fills_to_64k_then_waits() {
        let mut p = Pipe::new();
        let chunk = vec![1u8; 1000];
        let mut total = 0;
        loop {
            match write_all(&mut p, &chunk, false) {
                WriteStep::Wrote(n) => total += n,
                WriteStep::Wait => break,
                s => panic!("{s:?}"),
            }
        }
        assert_eq!(total, PIPE_CAPACITY);
        assert_eq!(p.ring.storage(), PIPE_CAPACITY);
        assert!(!p.write_ready().writable);
        let mut out = [0u8; 100];
        assert_eq!(p.read(&mut out), ReadStep::Data(100));
        // 100 bytes of room: a non-atomic write takes them, an atomic
        // write of 101 waits.
        assert_eq!(p.write(&[2; 101], true), WriteStep::Wait);
        assert_eq!(p.write(&[2; 101], false), WriteStep::Wrote(100));
    }

    #[test]
    fn atomic_writes_go_in_whole_or_wait() {
        let mut p = Pipe::new();
        write_all(&mut p, &vec![0u8; PIPE_CAPACITY - 10], false);
        assert_eq!(p.write(&[1; 11], true), WriteStep::Wait);
        assert_eq!(p.write(&[1; 10], true), WriteStep::Wrote(10));
        assert_eq!(p.write(&[1; 1], true), WriteStep::Wait);
    }

    #[test]
    fn eof_only_when_empty_and_no_writers() {
        let mut p = Pipe::new();
        write_all(&mut p, b"abc", true);
        p.writers = 0;
        assert!(p.read_ready().readable && p.read_ready().hangup);
        let mut empty = Pipe::new();
        empty.writers = 0;
        assert_eq!(
            empty.read_ready(),
            Ready {
                readable: false,
                writable: false,
                hangup: true
            }
        );
        let mut out = [0u8; 2];
        assert_eq!(p.read(&mut out), ReadStep::Data(2));
        assert_eq!(p.read(&mut out), ReadStep::Data(1));
        assert_eq!(p.read(&mut out), ReadStep::Eof);
        let mut q = Pipe::new();
        assert_eq!(q.read(&mut out), ReadStep::Wait);
        assert!(!q.read_ready().readable);
    }

    #[test]
    fn broken_without_readers() {
        let mut p = Pipe::new();
        p.readers = 0;
        assert_eq!(p.write(b"x", true), WriteStep::Broken);
        assert!(p.write_ready().writable && p.write_ready().hangup);
    }

    #[test]
    fn grow_keeps_order_across_the_wrap() {
        let mut r = Ring::new();
        assert!(r.grow(vec![0; 8]).is_empty());
        assert_eq!(r.push(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.pop(&mut out), 4);
        assert_eq!(r.push(b"ghijk"), 5); // wraps
        assert_eq!(r.grow(vec![0; 16]).len(), 8);
        let mut all = [0u8; 16];
        assert_eq!(r.pop(&mut all), 7);
        assert_eq!(&all[..7], b"efghijk");
        // A smaller or equal buffer is ignored.
        assert_eq!(r.grow(vec![0; 4]).len(), 4);
        assert_eq!(r.storage(), 16);
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]
        /// Against a plain queue: random atomic and plain writes and reads
        /// keep every byte, in order, and never exceed the capacity.
        #[test]
        fn matches_a_queue(ops in proptest::collection::vec((0u8..3, 1usize..9000), 1..80)) {
            let mut p = Pipe::new();
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut next = 0u8;
            for (op, n) in ops {
                match op {
                    0 | 1 => {
                        let atomic = op == 0 && n <= PIPE_BUF;
                        let data: Vec<u8> = (0..n).map(|i| next.wrapping_add(i as u8)).collect();
                        match write_all(&mut p, &data, atomic) {
                            WriteStep::Wrote(k) => {
                                prop_assert!(!atomic || k == n);
                                model.extend(&data[..k]);
                                next = next.wrapping_add(k as u8);
                            }
                            WriteStep::Wait => {
                                let full = if atomic {
                                    model.len() + n > PIPE_CAPACITY
                                } else {
                                    model.len() == PIPE_CAPACITY
                                };
                                prop_assert!(full);
                            }
                            s => prop_assert!(false, "{:?}", s),
                        }
                    }
                    _ => {
                        let mut out = vec![0u8; n];
                        match p.read(&mut out) {
                            ReadStep::Data(k) => {
                                prop_assert_eq!(k, n.min(model.len()));
                                for b in &out[..k] {
                                    prop_assert_eq!(Some(*b), model.pop_front());
                                }
                            }
                            ReadStep::Wait => prop_assert!(model.is_empty()),
                            ReadStep::Eof => prop_assert!(false, "eof with writers"),
                        }
                    }
                }
                prop_assert!(p.ring.len() == model.len() && p.ring.len() <= PIPE_CAPACITY);
                prop_assert!(p.ring.storage() <= PIPE_CAPACITY);
            }
        }
    }
}
