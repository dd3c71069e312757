//! The kswapd kernel thread: sleeps until an allocation leaves free memory
//! below the low watermark, then runs `mm::kswapd::balance` (reclaim up to
//! the high watermark) and sleeps again. Shown by `ps` as `[kswapd0]`.

use super::sched::{self, Block, Pid, SpawnError};
use crate::mm::kswapd;

/// Its name (Linux's, for node 0).
pub const NAME: &str = "kswapd0";

static PID: spin::Once<Pid> = spin::Once::new();

/// kswapd's pid, once started.
pub fn pid() -> Option<Pid> {
    PID.get().copied()
}

fn main() -> ! {
    loop {
        sched::block_unless(Block::Kswapd, kswapd::wanted);
        kswapd::balance();
    }
}

/// Starts kswapd (once; later calls return the same pid) and lets the
/// allocator wake it.
pub fn start() -> Result<Pid, SpawnError> {
    if let Some(pid) = pid() {
        return Ok(pid);
    }
    let pid = sched::spawn_kthread(NAME, main)?;
    PID.call_once(|| pid);
    kswapd::set_wake_hook(sched::wake_from_anywhere);
    // A wake that came before the hook was there.
    if kswapd::wanted() {
        sched::wake_from_anywhere();
    }
    Ok(pid)
}
