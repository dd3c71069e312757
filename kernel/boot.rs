//! What the bootloader hands over, and the boot banner.

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use bootloader_api::BootInfo;
use spin::Once;

use crate::mm::layout;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        }
    }
}

/// The parts of `BootInfo` the rest of the kernel reads, copied once.
#[derive(Clone, Copy)]
pub struct BootFacts {
    pub firmware: Firmware,
    pub memory_regions: &'static [MemoryRegion],
    pub physical_memory_offset: u64,
    /// Physical address and length of the kernel ELF file in memory.
    pub kernel_file: (u64, u64),
    /// Virtual address (the bootloader maps it in its dynamic range) and
    /// length of the ramdisk; its frames are `Bootloader` memory, never
    /// handed to the frame allocator.
    pub ramdisk: Option<(u64, u64)>,
    /// Virtual address and length of the framebuffer, if any.
    pub framebuffer: Option<(u64, u64)>,
    /// Physical address of the ACPI RSDP (BIOS and UEFI both give it).
    pub rsdp: Option<u64>,
}

impl BootFacts {
    /// The ramdisk's bytes, if the bootloader loaded one.
    pub fn ramdisk_bytes(&self) -> Option<&'static [u8]> {
        let (virt, len) = self.ramdisk?;
        // SAFETY: the bootloader mapped the ramdisk at `virt..virt+len` in
        // its dynamic range; those mappings and frames (Bootloader memory)
        // are never reused, and nothing writes the ramdisk.
        Some(unsafe { core::slice::from_raw_parts(virt as *const u8, len as usize) })
    }
}

static FACTS: Once<BootFacts> = Once::new();

/// The bootloader only tells the firmware apart through the memory map: a
/// BIOS E820 map has BIOS type codes for its non-usable entries, a UEFI map
/// has UEFI memory types.
fn detect_firmware(regions: &[MemoryRegion]) -> Firmware {
    if regions
        .iter()
        .any(|r| matches!(r.kind, MemoryRegionKind::UnknownUefi(_)))
    {
        Firmware::Uefi
    } else {
        Firmware::Bios
    }
}

pub struct Boot {
    pub framebuffer: Option<&'static mut bootloader_api::info::FrameBuffer>,
}

/// Records the boot facts and gives back the framebuffer for the console.
pub fn take(info: &'static mut BootInfo) -> &'static mut Boot {
    let regions: &'static [MemoryRegion] = {
        let r: &'static mut [MemoryRegion] = &mut info.memory_regions;
        r
    };
    let framebuffer = info.framebuffer.as_mut();
    let fb_range = framebuffer.as_ref().map(|fb| {
        let virt = fb.buffer().as_ptr() as u64;
        (virt, fb.info().byte_len as u64)
    });
    let physical_memory_offset = info
        .physical_memory_offset
        .into_option()
        .expect("bootloader config asks for the physical memory map");
    assert_eq!(
        physical_memory_offset,
        layout::PAGE_OFFSET,
        "direct map must sit at PAGE_OFFSET"
    );
    FACTS.call_once(|| BootFacts {
        firmware: detect_firmware(regions),
        memory_regions: regions,
        physical_memory_offset,
        kernel_file: (info.kernel_addr, info.kernel_len),
        ramdisk: info
            .ramdisk_addr
            .into_option()
            .map(|a| (a, info.ramdisk_len)),
        framebuffer: fb_range,
        rsdp: info.rsdp_addr.into_option(),
    });
    // On the boot heap, which keeps its blocks valid for good.
    alloc::boxed::Box::leak(alloc::boxed::Box::new(Boot { framebuffer }))
}

pub fn facts() -> &'static BootFacts {
    FACTS.get().expect("boot::take runs first")
}

pub struct MemorySummary {
    pub usable_bytes: u64,
    pub usable_regions: usize,
    pub regions: usize,
    pub highest_address: u64,
}

pub fn memory_summary(regions: &[MemoryRegion]) -> MemorySummary {
    let usable = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable);
    MemorySummary {
        usable_bytes: usable.clone().map(|r| r.end - r.start).sum(),
        usable_regions: usable.count(),
        regions: regions.len(),
        highest_address: regions.iter().map(|r| r.end).max().unwrap_or(0),
    }
}

pub fn print_banner(_: &Boot) {
    let facts = facts();
    let mem = memory_summary(facts.memory_regions);
    log::info!(
        "Ferrite {} (x86_64), booted through {}",
        crate::VERSION,
        facts.firmware.name()
    );
    log::info!(
        "memory map: {} MiB usable in {} of {} regions, highest address {:#x}",
        mem.usable_bytes >> 20,
        mem.usable_regions,
        mem.regions,
        mem.highest_address
    );
    log::info!(
        "kernel image at {:#x} (ELF file at phys {:#x}, {} KiB); direct map of physical memory at {:#x}",
        layout::KERNEL_BASE,
        facts.kernel_file.0,
        facts.kernel_file.1 / 1024,
        facts.physical_memory_offset
    );
    if let Some(fb) = crate::drivers::fbcon::info() {
        log::info!(
            "framebuffer {}x{}, {} bytes per pixel, {:?}",
            fb.width,
            fb.height,
            fb.bytes_per_pixel,
            fb.pixel_format
        );
    } else {
        log::info!("no framebuffer: serial console only");
    }
}
