//! Futexes: sleeping on a user word until another thread (or process)
//! wakes it (`futex(2)`: WAIT, WAKE, REQUEUE, CMP_REQUEUE; the system call
//! is `syscall::futex`).
//!
//! Keys, as Linux's `get_futex_key`: a word in a private mapping (or any
//! word with `FUTEX_PRIVATE_FLAG`) is named by (address space, address);
//! a word in a shared mapping by its physical address (the frame of the
//! shared object's page, made present first), so processes that map the
//! same object at different addresses meet on it. A shared page that is
//! swapped out and back in between a wait and a wake changes frames: that
//! wake is lost (Linux keys on the object and offset instead).
//!
//! No wait queue of its own: a waiter records its key (and a sequence
//! number, for FIFO order) in its own thread record ([`Waiting`], in
//! `ThreadInfo`), and a wake scans the process table under the scheduler
//! lock, takes the record away and makes the sleeper runnable. Nothing is
//! allocated, so a wait never fails for memory. A waiter records itself
//! *before* it reads the word: a wake that comes between the read and the
//! sleep finds the record and takes it, and the sleep does not begin.
//!
//! Child module of `sched` (it reaches the table's private parts).

use alloc::sync::Arc;

use super::*;
use crate::mm::uaccess::read_user;
use crate::proc::syscall::Errno;

/// What names a futex word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A private word: (address space, user address).
    Private { space: usize, addr: u64 },
    /// A word in shared memory: its physical address.
    Shared { phys: u64 },
}

/// A thread's wait: on `key`, queued as number `seq`.
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    key: Key,
    seq: u64,
}

/// Wait order (oldest is woken first).
static SEQ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The key of the current thread's word at `addr` (4-byte aligned):
/// `EINVAL` unaligned, `EFAULT` if nothing is mapped there.
pub fn key_of(addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let space = with_current(|p| p.aspace.clone()).ok_or(Errno::EFAULT)?;
    let private_key = Key::Private {
        space: Arc::as_ptr(&space) as *const () as usize,
        addr,
    };
    if private {
        return Ok(private_key);
    }
    let sharing = space.lock().vmas().find(addr).map(|v| v.sharing);
    match sharing {
        None => Err(Errno::EFAULT),
        Some(vmcore::Sharing::Private) => Ok(private_key),
        Some(vmcore::Sharing::Shared) => {
            // Made present (a read fault), then looked up; reclaim may
            // take the page in between, so try again a few times.
            for _ in 0..8 {
                read_user::<u32>(addr)?;
                if let Some((phys, _)) = space.lock().translate(addr) {
                    return Ok(Key::Shared { phys });
                }
            }
            Err(Errno::EAGAIN)
        }
    }
}

fn waiting() -> bool {
    with_current(|p| p.thread.futex.is_some())
}

/// FUTEX_WAIT: sleeps while the word at `addr` holds `expected`, until a
/// wake (Ok), the TSC clock reaching `deadline` (`ETIMEDOUT`) or a signal
/// (`ERESTARTSYS` without a timeout, `ERESTARTNOHAND` with one: `EINTR`
/// when a handler runs). `EAGAIN` if the word differs.
pub fn wait(addr: u64, expected: u32, deadline: Option<u64>, private: bool) -> Result<(), Errno> {
    let key = key_of(addr, private)?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    with_current(|p| p.thread.futex = Some(Waiting { key, seq }));
    let result = match read_user::<u32>(addr) {
        Err(_) => Err(Errno::EFAULT),
        Ok(v) if v != expected => Err(Errno::EAGAIN),
        Ok(_) => loop {
            if !waiting() {
                break Ok(());
            }
            if crate::proc::signal::interrupted() {
                break Err(if deadline.is_some() {
                    Errno::ERESTARTNOHAND
                } else {
                    Errno::ERESTARTSYS
                });
            }
            let until = deadline.unwrap_or(u64::MAX);
            if crate::time::uptime_ns() >= until {
                break Err(Errno::ETIMEDOUT);
            }
            sleep_until_ns_unless(until, || !waiting() || crate::proc::signal::interrupted());
        },
    };
    // Off the wait, if no waker took us; a wake that came with the
    // timeout or the signal counts (as Linux's: it was consumed).
    let woken = with_current(|p| p.thread.futex.take().is_none());
    match result {
        Err(e) if e != Errno::EAGAIN && e != Errno::EFAULT && woken => Ok(()),
        other => other,
    }
}

/// The oldest live waiter on `key`.
fn oldest(s: &Scheduler, key: Key) -> Option<Pid> {
    s.procs
        .values()
        .filter(|p| !matches!(p.state, State::Zombie(_)))
        .filter_map(|p| {
            p.thread
                .futex
                .filter(|w| w.key == key)
                .map(|w| (w.seq, p.pid))
        })
        .min()
        .map(|(_, pid)| pid)
}

/// Wakes up to `n` waiters on `key`; how many.
fn wake_key(s: &mut Scheduler, key: Key, n: u32) -> u32 {
    let mut woken = 0;
    while woken < n {
        let Some(pid) = oldest(s, key) else { break };
        let p = s.procs.get_mut(&pid).expect("found above");
        p.thread.futex = None;
        if matches!(p.state, State::Blocked(Block::Sleep(_))) {
            p.state = State::Runnable;
            enqueue(&mut s.queue, pid);
            crate::mm::psi::wake(pid);
        }
        woken += 1;
    }
    woken
}

/// FUTEX_WAKE: wakes up to `n` waiters on the word at `addr`; how many.
pub fn wake(addr: u64, n: u32, private: bool) -> Result<u32, Errno> {
    let key = key_of(addr, private)?;
    Ok(with(|s| wake_key(s, key, n)))
}

/// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE: wakes up to `n_wake` waiters on
/// `addr` and moves up to `n_move` more to `addr2` (if `cmp` is given,
/// only while the word at `addr` still holds it: else `EAGAIN`). Returns
/// (woken, moved).
pub fn requeue(
    addr: u64,
    n_wake: u32,
    n_move: u32,
    addr2: u64,
    cmp: Option<u32>,
    private: bool,
) -> Result<(u32, u32), Errno> {
    let (from, to) = (key_of(addr, private)?, key_of(addr2, private)?);
    if let Some(cmp) = cmp {
        if read_user::<u32>(addr)? != cmp {
            return Err(Errno::EAGAIN);
        }
    }
    Ok(with(|s| {
        let woken = wake_key(s, from, n_wake);
        let mut moved = 0;
        while moved < n_move && from != to {
            let Some(pid) = oldest(s, from) else { break };
            let p = s.procs.get_mut(&pid).expect("found above");
            if let Some(w) = p.thread.futex.as_mut() {
                w.key = to;
            }
            moved += 1;
        }
        (woken, moved)
    }))
}
