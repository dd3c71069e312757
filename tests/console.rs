//! The console as programs use it (issue 13): `write` is binary-safe, from
//! the system call to the bytes the UART sends; the framebuffer decodes
//! UTF-8 across writes and draws exactly its text grid.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use ferrite::drivers::{fbcon, serial};
use ferrite::proc::user::UserExit;
use ferrite::testing::{run_program, run_program_bytes};

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        all_256_byte_values_reach_the_capture_exactly,
        all_256_byte_values_leave_through_the_uart_exactly,
        one_write_per_byte_too,
        a_long_burst_leaves_the_uart_complete_and_in_order,
        a_character_split_between_writes_is_one_cell,
        ill_formed_bytes_are_replacement_glyphs_on_screen_only,
        kernel_text_between_the_halves_keeps_the_character_whole,
        the_screen_shows_exactly_the_grid_after_scrolling,
        the_framebuffer_is_mapped_write_combining,
    ])
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Where `needle` starts in `hay`, if it occurs.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn all_256_byte_values_reach_the_capture_exactly() {
    let (exit, out) = run_program_bytes("/bin/conbytes", &["conbytes"]);
    assert_eq!(exit, UserExit::Exited(0));
    // Nothing but the program's bytes: the kernel printed nothing meanwhile.
    assert_eq!(out, all_bytes(), "captured {} bytes", out.len());
}

fn all_256_byte_values_leave_through_the_uart_exactly() {
    serial::tap_start();
    let (exit, _) = run_program("/bin/conbytes", &["conbytes"]);
    let tap = serial::tap_take().expect("tap was on");
    assert_eq!(exit, UserExit::Exited(0));
    let sent = tap.kept();
    let at = find(sent, &all_bytes()).unwrap_or_else(|| {
        panic!("the UART did not send 0..=255 in a row: {sent:x?}");
    });
    // No newline translation inside a program's bytes: 0x0a goes out alone.
    assert_eq!(sent[at + 0x0a], 0x0a);
    assert_eq!(sent[at + 0x09..at + 0x0c], [0x09, 0x0a, 0x0b]);
}

fn one_write_per_byte_too() {
    let (exit, out) = run_program_bytes("/bin/conbytes", &["conbytes", "split"]);
    assert_eq!(exit, UserExit::Exited(0));
    assert_eq!(out, all_bytes());
}

/// More than the serial ring holds (4 KiB), in writes of odd sizes: the
/// UART gets every byte once, in order (count and hash of the stream).
fn a_long_burst_leaves_the_uart_complete_and_in_order() {
    let mut text = Vec::new();
    for i in 0..700u32 {
        let line = alloc::format!(
            "burst {i:4}: {}\n",
            "0123456789abcdef".repeat(1 + i as usize % 3)
        );
        text.extend_from_slice(line.as_bytes());
    }
    assert!(text.len() > 3 * 4096);
    serial::tap_start();
    for piece in text.chunks(997) {
        ferrite::proc::console::write_bytes(piece);
    }
    let tap = serial::tap_take().expect("tap was on");
    let hash = text
        .iter()
        .fold(serial::FNV_OFFSET, |h, &b| serial::fnv1a(h, b));
    assert_eq!(tap.count, text.len(), "bytes sent");
    assert_eq!(tap.kept(), &text[..serial::TAP_KEEP]);
    assert_eq!(
        tap.hash, hash,
        "the stream's hash (order or content differs)"
    );
}

/// The screen row holding `needle`, if one does.
fn screen_row_with(needle: &str) -> Option<String> {
    fbcon::with_grid(|g| {
        let (_, rows) = g.size();
        (0..rows).map(|r| g.line(r)).find(|l| l.contains(needle))
    })
    .expect("a framebuffer (BIOS and UEFI machines have one)")
}

fn a_character_split_between_writes_is_one_cell() {
    // conbytes writes "<", 0xe2, 0x82 0xac, ">\n": the euro sign in two writes.
    let (exit, out) = run_program_bytes("/bin/conbytes", &["conbytes", "utf8"]);
    assert_eq!(exit, UserExit::Exited(0));
    assert_eq!(out, "<€>\n".as_bytes());
    let row = screen_row_with("<€>").expect("a row showing <€>");
    assert!(!row.contains('\u{FFFD}'), "row: {row:?}");
    // One cell: '>' is right after the euro sign.
    let cells = fbcon::with_grid(|g| {
        let (cols, rows) = g.size();
        (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .filter(|&(c, r)| g.cell(c, r) == '€')
            .map(|(c, r)| (g.cell(c - 1, r), g.cell(c + 1, r)))
            .collect::<Vec<_>>()
    })
    .unwrap();
    assert_eq!(cells, [('<', '>')]);
}

fn ill_formed_bytes_are_replacement_glyphs_on_screen_only() {
    // A lone continuation byte, a truncated 3-byte sequence, an invalid
    // lead: three replacement glyphs on screen; the bytes unchanged on the
    // serial side.
    let bytes = b"[bad\x80|\xe2\x82|\xffend]\n";
    serial::tap_start();
    ferrite::proc::console::write_bytes(bytes);
    let tap = serial::tap_take().unwrap();
    assert_eq!(tap.kept(), bytes);
    let row = screen_row_with("[bad").expect("the row");
    assert_eq!(row, "[bad\u{FFFD}|\u{FFFD}|\u{FFFD}end]");
}

fn kernel_text_between_the_halves_keeps_the_character_whole() {
    ferrite::proc::console::write_bytes(b"\n(");
    ferrite::proc::console::write_bytes(&[0xc3]);
    // Kernel text goes to the screen at once; the program's pending
    // character waits for its second byte.
    ferrite::kprint!("k");
    ferrite::proc::console::write_bytes(&[0xa9, b')', b'\n']);
    let row = screen_row_with("(k").expect("the row");
    assert_eq!(row, "(ké)");
}

fn the_screen_shows_exactly_the_grid_after_scrolling() {
    // Enough lines to scroll every row several times, with text of varying
    // length, then the framebuffer is read back cell by cell.
    let (exit, _) = run_program("/bin/catbench", &["catbench", "-q", "lines"]);
    assert_eq!(exit, UserExit::Exited(0));
    for i in 0..150 {
        ferrite::kprintln!("line {i} {}", "x".repeat(i % 97));
    }
    let checked = fbcon::check_screen().unwrap_or_else(|e| panic!("{e}"));
    assert!(checked > 1000, "only {checked} cells checked");
    ferrite::kprintln!("{checked} cells match their glyphs");
}

/// QEMU's `-cpu max` has PAT: every page of the framebuffer is a 4 KiB leaf
/// with PWT alone (PAT entry 1, made write-combining at boot), none
/// uncached.
fn the_framebuffer_is_mapped_write_combining() {
    use ferrite::mm::paging::leaf_flags;
    use vmcore::PteFlags;
    assert!(ferrite::arch::cpu::pat_write_combining(), "no PAT");
    let (va, len) = fbcon::buffer_range().expect("a framebuffer");
    let mut pages = 0;
    for page in (va & !0xfff..va + len).step_by(4096) {
        let flags = leaf_flags(page).expect("mapped");
        assert!(
            flags.contains(PteFlags::WRITE_THROUGH) && !flags.contains(PteFlags::NO_CACHE),
            "page {page:#x}: {flags:?}"
        );
        pages += 1;
    }
    ferrite::kprintln!("{pages} framebuffer pages write-combining");
}
