//! A panic while the panic report is being printed (here: the panic
//! message's own `Display` panics) ends the run with one short line, instead
//! of re-entering the report until the stack runs out.

#![no_std]
#![no_main]

use core::fmt;

use ferrite::panic::Stage;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![panic_inside_the_panic_message])
}

struct PanicsWhenPrinted;

impl fmt::Display for PanicsWhenPrinted {
    fn fmt(&self, _: &mut fmt::Formatter) -> fmt::Result {
        panic!("Display of the panic message panics");
    }
}

fn panic_inside_the_panic_message() {
    // Only the nested panic, while the first report prints its message,
    // ends the run with success.
    ferrite::testing::expect_nested_failure(Stage::Message);
    panic!("outer panic: {}", PanicsWhenPrinted);
}
