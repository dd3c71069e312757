//! Running user code. For now: one ring-3 context at a time, run to
//! completion by [`user::run`]; the scheduler and processes build on it.

pub mod syscall;
pub mod user;
