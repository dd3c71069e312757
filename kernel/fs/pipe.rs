//! Pipes: `pipe`/`pipe2` make two open file descriptions, a read end and a
//! write end, over one [`usercore::pipe::Pipe`] (64 KiB, storage growing
//! from one page as it fills; Linux's rules for `PIPE_BUF` atomicity, end
//! of file and `EPIPE` are there, tested on the host).
//!
//! Locking and copies: the pipe's state sits behind an [`IrqMutex`] that
//! is never held across a user copy. A read takes bytes into a bounce
//! buffer on the stack under the lock, then copies them out; a write
//! copies up to `PIPE_BUF` bytes in first, then puts them in under the
//! lock (all at once for an atomic write). Bigger storage is allocated
//! outside the lock and swapped in under it.
//!
//! Waiting: a reader of an empty pipe or a writer of a full one blocks on
//! [`Block::Pipe`] with the pipe's id, through `sched::block_unless`: the
//! check of the pipe and the block happen with interrupts off, so a wake
//! between them (on one CPU, only an interrupt or a switch could make one)
//! is never lost. Every change that may let a waiter on (bytes in, bytes
//! out, an end closed) wakes the pipe's waiters and `poll` waiters
//! ([`super::poll::notify`]). A signal to take (or a pending SIGKILL from
//! the OOM killer) ends the wait: `ERESTARTSYS` if nothing was moved yet
//! (`EINTR` with a handler, else the call restarts), or the count so far;
//! a process killed outright never runs again, and its ends close when its
//! descriptor table goes.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use usercore::pipe::{Pipe, ReadStep, WriteStep, PIPE_BUF};

use super::file::{flags, File, FileOps, FileType, PollEvents, Stat};
use crate::arch::sync::IrqMutex;
use crate::mm::kalloc;
use crate::mm::uaccess::{access_ok, copy_from_user, copy_to_user, write_user};
use crate::proc::sched::{self, Block};
use crate::proc::syscall::Errno;

/// Bytes a read moves per step (a stack buffer; a read returns what is
/// there, so the step size only sets how often the lock is taken).
const READ_STEP: usize = 2048;

/// Pipe ids: the key waiters block on, and the inode number `fstat` shows.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `st_dev` of pipes (Linux's pipefs is an anonymous device too).
const PIPEFS_DEV: u64 = 12;

/// What both ends share.
struct Shared {
    id: u64,
    pipe: IrqMutex<Pipe>,
}

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Pipe) -> R) -> R {
        self.pipe.with(f)
    }

    /// Lets every waiter of this pipe (and every `poll`) look again.
    fn wake(&self) {
        sched::wake_all(Block::Pipe(self.id));
        super::poll::notify();
    }

    fn stat(&self) -> Stat {
        super::vfs::stat_for(PIPEFS_DEV, self.id, FileType::Fifo, 0o600, 0, 0)
    }
}

/// The read end.
pub struct ReadEnd(Arc<Shared>);
/// The write end.
pub struct WriteEnd(Arc<Shared>);

impl Drop for ReadEnd {
    fn drop(&mut self) {
        self.0.with(|p| p.readers -= 1);
        self.0.wake();
    }
}

impl Drop for WriteEnd {
    fn drop(&mut self) {
        self.0.with(|p| p.writers -= 1);
        self.0.wake();
    }
}

/// `pipe2` flags a pipe keeps: `O_NONBLOCK` on both descriptions
/// (`O_CLOEXEC` belongs to the descriptors).
pub const PIPE2_FLAGS: u32 = flags::O_NONBLOCK | flags::O_CLOEXEC;

/// A new pipe: its read end and write end, as open file descriptions with
/// `O_NONBLOCK` if `flags` has it.
pub fn create(open_flags: u32) -> Result<(Arc<File>, Arc<File>), Errno> {
    let shared = kalloc::try_arc(Shared {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        pipe: IrqMutex::new(Pipe::new()),
    })?;
    let status = open_flags & flags::O_NONBLOCK;
    // Each end is made whole before the next: if one allocation fails,
    // what was made drops and the counts stay right.
    let read: Arc<dyn FileOps> = kalloc::try_arc(ReadEnd(shared.clone()))?;
    let read = File::new(read, flags::O_RDONLY | status)?;
    let write: Arc<dyn FileOps> = kalloc::try_arc(WriteEnd(shared))?;
    let write = File::new(write, flags::O_WRONLY | status)?;
    Ok((read, write))
}

/// A wait should end early: a signal is to be taken, or a SIGKILL is
/// pending (the OOM killer chose this process; it dies on its way out of
/// the kernel). Sending a signal wakes a process blocked on
/// `Block::Pipe` or `Block::Poll` (`sched::with_process_wake`).
pub fn interrupted() -> bool {
    sched::kill_pending() || crate::proc::signal::interrupted()
}

/// Sends SIGPIPE to the current process (a write found no reader): it is
/// delivered as the call returns (`EPIPE`), killing by default.
fn sigpipe() {
    crate::proc::signal::send_to_current(usercore::signal::num::SIGPIPE);
}

/// Linux's `FIONREAD`: bytes waiting in the pipe.
const FIONREAD: u64 = 0x541b;

impl FileOps for ReadEnd {
    fn read(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        // Checked before waiting, so a bad buffer fails at once and no
        // bytes are taken only to be lost.
        if !access_ok(buf, len, vmcore::Prot::WRITE) {
            return Err(Errno::EFAULT);
        }
        let shared = &self.0;
        let mut kbuf = [0u8; READ_STEP];
        let mut total = 0;
        let result = loop {
            let want = (len - total).min(READ_STEP);
            match shared.with(|p| p.read(&mut kbuf[..want])) {
                ReadStep::Data(n) => {
                    if copy_to_user(buf + total as u64, &kbuf[..n]).is_err() {
                        break if total == 0 {
                            Err(Errno::EFAULT)
                        } else {
                            Ok(total)
                        };
                    }
                    total += n;
                    if total == len {
                        break Ok(total);
                    }
                }
                ReadStep::Eof => break Ok(total),
                ReadStep::Wait if total > 0 => break Ok(total),
                ReadStep::Wait if file.nonblocking() => break Err(Errno::EAGAIN),
                ReadStep::Wait if interrupted() => break Err(Errno::ERESTARTSYS),
                ReadStep::Wait => sched::block_unless(Block::Pipe(shared.id), || {
                    interrupted() || shared.with(|p| !p.ring.is_empty() || p.writers == 0)
                }),
            }
        };
        if total > 0 {
            // Room was made: writers may go on.
            shared.wake();
        }
        result
    }

    fn write(&self, _file: &File, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn poll(&self, _file: &File) -> PollEvents {
        let ready = self.0.with(|p| p.read_ready());
        let mut events = PollEvents(0);
        if ready.readable {
            events = events | PollEvents::IN;
        }
        if ready.hangup {
            events = events | PollEvents::HUP;
        }
        events
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(self.0.stat())
    }

    fn ioctl(&self, _file: &File, request: u64, arg: u64) -> Result<u64, Errno> {
        match request {
            FIONREAD => {
                let n = self.0.with(|p| p.ring.len()) as i32;
                write_user(arg, &n)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

impl FileOps for WriteEnd {
    fn read(&self, _file: &File, _buf: u64, _len: usize) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    fn write(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let shared = &self.0;
        // POSIX: a write of at most PIPE_BUF bytes is never split.
        let atomic = len <= PIPE_BUF;
        let mut kbuf = [0u8; PIPE_BUF];
        let mut done = 0;
        // What a write that ends early returns: the bytes already in, or
        // the error if none are.
        let partial = |done: usize, e: Errno| if done > 0 { Ok(done) } else { Err(e) };
        while done < len {
            let n = (len - done).min(PIPE_BUF);
            if copy_from_user(&mut kbuf[..n], buf + done as u64).is_err() {
                return partial(done, Errno::EFAULT);
            }
            let mut off = 0;
            while off < n {
                match shared.with(|p| p.write(&kbuf[off..n], atomic)) {
                    WriteStep::Wrote(k) => {
                        off += k;
                        shared.wake();
                    }
                    WriteStep::Broken => {
                        sigpipe();
                        return partial(done + off, Errno::EPIPE);
                    }
                    WriteStep::Grow(size) => {
                        let Ok(bigger) = kalloc::try_zeroed(size) else {
                            return partial(done + off, Errno::ENOMEM);
                        };
                        let old = shared.with(|p| p.ring.grow(bigger));
                        drop(old);
                    }
                    WriteStep::Wait if file.nonblocking() => {
                        return partial(done + off, Errno::EAGAIN)
                    }
                    WriteStep::Wait if interrupted() => return partial(done + off, Errno::EINTR),
                    WriteStep::Wait => {
                        let need = if atomic { n - off } else { 1 };
                        sched::block_unless(Block::Pipe(shared.id), || {
                            interrupted()
                                || shared.with(|p| p.readers == 0 || p.ring.room() >= need)
                        })
                    }
                }
            }
            done += n;
        }
        Ok(done)
    }

    fn poll(&self, _file: &File) -> PollEvents {
        let ready = self.0.with(|p| p.write_ready());
        let mut events = PollEvents(0);
        if ready.writable {
            events = events | PollEvents::OUT;
        }
        if ready.hangup {
            events = events | PollEvents::ERR;
        }
        events
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(self.0.stat())
    }
}
