//! Boots (through BIOS and UEFI, see machines.txt) and checks what the boot
//! path promises: the address layout, section permissions, the CPU tables,
//! the timer, breakpoints and the serial port.

#![no_std]
#![no_main]

extern crate alloc;

use ferrite::mm::layout::{self, phys_to_virt};
use ferrite::mm::paging;
use vmcore::PteFlags as F;

ferrite::kernel_entry!(main);

fn main() -> ! {
    ferrite::testing::run(ferrite::tests![
        memory_map_has_usable_memory,
        kernel_is_linked_in_the_top_2_gib,
        direct_map_aliases_physical_memory,
        lower_half_is_empty,
        kernel_sections_are_never_writable_and_executable,
        kernel_stack_has_a_guard_page,
        breakpoint_returns,
        timer_ticks,
        serial_round_trips_in_loopback,
        heap_allocates,
        backtraces_have_symbol_names,
        no_kernel_page_is_writable_and_executable,
        smep_and_smap_are_on,
        no_swap_disk_without_one_attached,
    ])
}

fn memory_map_has_usable_memory() {
    let facts = ferrite::boot::facts();
    let summary = ferrite::boot::memory_summary(facts.memory_regions);
    assert!(
        summary.usable_bytes > 200 << 20,
        "only {} MiB usable on a 256 MiB machine",
        summary.usable_bytes >> 20
    );
    assert!(summary.usable_regions >= 1);
}

fn kernel_is_linked_in_the_top_2_gib() {
    let code = kernel_is_linked_in_the_top_2_gib as *const () as u64;
    assert!(code >= layout::KERNEL_BASE, "code at {code:#x}");
}

static MARKER: u64 = 0x5eed_f00d_cafe_babe;

fn direct_map_aliases_physical_memory() {
    let virt = &MARKER as *const u64 as u64;
    let phys = paging::translate(virt).expect("kernel rodata is mapped");
    // SAFETY: the direct map covers all physical memory; this reads the same
    // 8 bytes through their second mapping.
    let alias = unsafe { core::ptr::read_volatile(phys_to_virt(phys) as *const u64) };
    assert_eq!(alias, MARKER, "direct map of {phys:#x} disagrees");
}

fn lower_half_is_empty() {
    assert_eq!(
        paging::lower_half_entries(),
        0,
        "lower-half PML4 entries in use"
    );
    assert!(paging::translate(0x40_0000).is_none());
}

static mut WRITABLE: u64 = 1;

fn kernel_sections_are_never_writable_and_executable() {
    let text = kernel_sections_are_never_writable_and_executable as *const () as u64;
    let rodata = &MARKER as *const u64 as u64;
    let data = core::ptr::addr_of!(WRITABLE) as u64;
    let text_flags = paging::leaf_flags(text).expect("text mapped");
    assert!(
        !text_flags.contains(F::WRITABLE),
        "text is writable: {text_flags:?}"
    );
    assert!(
        !text_flags.contains(F::NO_EXECUTE),
        "text is not executable"
    );
    let ro_flags = paging::leaf_flags(rodata).expect("rodata mapped");
    assert!(
        !ro_flags.contains(F::WRITABLE),
        "rodata is writable: {ro_flags:?}"
    );
    assert!(
        ro_flags.contains(F::NO_EXECUTE),
        "rodata is executable: {ro_flags:?}"
    );
    let data_flags = paging::leaf_flags(data).expect("data mapped");
    assert!(data_flags.contains(F::WRITABLE), "data is read-only");
    assert!(
        data_flags.contains(F::NO_EXECUTE),
        "data is executable: {data_flags:?}"
    );
}

fn kernel_stack_has_a_guard_page() {
    let stack = ferrite::kernel_stack();
    let local = 0u64;
    let here = core::hint::black_box(&local) as *const u64 as u64;
    assert!(
        here < stack.end() && here >= stack.start,
        "not running on the kernel stack: rsp near {here:#x}, stack {stack:x?}"
    );
    assert!(
        (layout::VMALLOC_START..layout::VMALLOC_END).contains(&stack.start),
        "kernel stack outside the vmalloc area"
    );
    assert!(
        paging::translate(stack.guard).is_none(),
        "guard page mapped"
    );
    assert!(paging::translate(stack.start).is_some());
}

fn breakpoint_returns() {
    let before = ferrite::arch::exceptions::breakpoint_count();
    x86_64::instructions::interrupts::int3();
    assert_eq!(ferrite::arch::exceptions::breakpoint_count(), before + 1);
}

fn timer_ticks() {
    let start = ferrite::time::ticks();
    let deadline = ferrite::time::rdtsc() + 50_000_000_000;
    while ferrite::time::ticks() < start + 3 {
        assert!(
            ferrite::time::rdtsc() < deadline,
            "timer interrupt never came"
        );
        x86_64::instructions::hlt();
    }
}

fn serial_round_trips_in_loopback() {
    let sent: [u8; 256] = core::array::from_fn(|i| i as u8);
    let mut got = [0u8; 256];
    let n = ferrite::drivers::serial::loopback(&sent, &mut got);
    assert_eq!(n, sent.len(), "UART returned {n} of {} bytes", sent.len());
    assert_eq!(sent, got);
}

fn heap_allocates() {
    let v: alloc::vec::Vec<u64> = (0..1000).collect();
    assert_eq!(v.iter().sum::<u64>(), 999 * 1000 / 2);
}

fn backtraces_have_symbol_names() {
    let addr = backtraces_have_symbol_names as *const () as u64;
    let sym = ferrite::symbols::lookup(addr + 3).expect("symbol table loaded from the kernel ELF");
    let name = alloc::format!("{sym}");
    assert_eq!(name, "boot::backtraces_have_symbol_names+0x3");
}

fn no_kernel_page_is_writable_and_executable() {
    let (wx, leaves) = ferrite::mm::pgtable::kernel_wx_pages();
    assert!(leaves > 1000, "walked only {leaves} leaves");
    assert!(wx.is_empty(), "W+X kernel mappings: {wx:x?}");
    ferrite::kprintln!("  {leaves} kernel-half leaves walked, none writable and executable");
}

fn smep_and_smap_are_on() {
    // QEMU runs with `-cpu max`, which has both.
    assert!(ferrite::arch::cpu::smep_enabled(), "SMEP off");
    assert!(ferrite::arch::cpu::smap_enabled(), "SMAP off");
}

fn no_swap_disk_without_one_attached() {
    // These machines have no virtio disk: the boot probe found nothing,
    // and probing again finds nothing either (and does not panic).
    assert!(ferrite::drivers::virtio_blk::take().is_none());
    assert!(ferrite::drivers::virtio_blk::probe().is_none());
}
