//! A stack overflow while the panic report is being printed (the panic
//! message's `Display` recurses without end) becomes a double fault on its
//! own IST stack, which ends the run: no triple fault, no second report.

#![no_std]
#![no_main]

use core::fmt;

use ferrite::panic::Stage;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![stack_overflow_inside_the_panic_message])
}

struct RecursesWhenPrinted(u64);

impl fmt::Display for RecursesWhenPrinted {
    #[allow(unconditional_recursion)]
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let frame = [self.0; 64];
        core::hint::black_box(&frame);
        write!(
            f,
            "{}",
            RecursesWhenPrinted(core::hint::black_box(frame[3]) + 1)
        )
    }
}

fn stack_overflow_inside_the_panic_message() {
    ferrite::testing::expect_nested_failure(Stage::Message);
    panic!("outer panic: {}", RecursesWhenPrinted(0));
}
