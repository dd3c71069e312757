//! Swap space as pure logic: slots, their counts, and where pages go.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;
