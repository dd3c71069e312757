//! Device drivers: the two consoles every log line goes to.

pub mod fbcon;
pub mod keyboard;
pub mod serial;
