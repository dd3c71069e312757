//! The swap disk: a virtio block device on PCI, driven through the
//! `virtio-drivers` crate (`make run SWAP=512M` attaches one in QEMU).
//!
//! [`probe`] scans PCI configuration space (bus 0 and every bus behind a
//! bridge) for a virtio-blk function (vendor 0x1af4, device 0x1001
//! transitional or 0x1042 modern), maps its memory BARs uncached
//! (`mm::dma::map_mmio`), enables memory decoding and bus mastering, and
//! sets the device up with one request queue. Boot runs it once
//! ([`init`]) and parks the device; the swap code [`take`]s it.
//!
//! Requests are polled (the device's interrupt stays masked): a request is
//! posted, the device notified, and the CPU spins on the used ring. Data
//! moves in pages: [`VirtioBlk::write_pages`] and [`VirtioBlk::read_pages`]
//! take any whole number of pages and send up to [`MAX_REQUEST_PAGES`] per
//! request. A buffer in the direct map (page frames, heap memory) is handed
//! to the device as it is; any other (a kernel stack, a static) is copied
//! through the device's own DMA buffer. [`VirtioBlk`] is a
//! [`swapcore::SwapDevice`] (slot n = page n), so `mm::swap::swapon` takes it.

use core::sync::atomic::{AtomicBool, Ordering};

use swapcore::SwapIoError;

use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::{BarInfo, Command, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;

use crate::arch::pci::{config_ports, for_each_function, ConfigPorts};
use crate::arch::sync::IrqMutex;
use crate::mm::dma::{self, DmaBuffer, FrameHal};
use crate::time::rdtsc;

/// Bytes per page (the unit of every request here).
pub const PAGE: usize = 4096;
const SECTORS_PER_PAGE: u64 = (PAGE / SECTOR_SIZE) as u64;
/// Pages sent to the device in one request at most (256 KiB).
pub const MAX_REQUEST_PAGES: usize = 64;
/// Pages of the bounce buffer for data outside the direct map.
const STAGING_PAGES: usize = 16;

/// Set while a [`VirtioBlk`] exists: a second probe must not set the same
/// device up again under the first one's feet.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// A virtio block device, set up and ready for page-sized I/O. Dropping it
/// resets the device (a later [`probe`] finds it again).
pub struct VirtioBlk {
    blk: VirtIOBlk<FrameHal, PciTransport>,
    location: DeviceFunction,
    pages: u64,
    staging: DmaBuffer,
}

/// Why a request was refused or failed. None of these is fatal: the device
/// stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// `start + pages` runs past the end of the disk.
    OutOfRange {
        start: u64,
        pages: u64,
        capacity: u64,
    },
    /// The buffer is not a whole number of pages.
    BadLength(usize),
    /// The device is read-only (a write was asked for).
    ReadOnly,
    /// The device (or the queue) reported an error.
    Io(virtio_drivers::Error),
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            BlkError::OutOfRange {
                start,
                pages,
                capacity,
            } => write!(
                f,
                "pages {start}..{} are past the end of the disk ({capacity} pages)",
                start.saturating_add(*pages)
            ),
            BlkError::BadLength(len) => write!(f, "{len} bytes is not a whole number of pages"),
            BlkError::ReadOnly => write!(f, "the disk is read-only"),
            BlkError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl VirtioBlk {
    /// The disk's size in 4 KiB pages (a partial last page is not counted).
    pub fn capacity_pages(&self) -> u64 {
        self.pages
    }

    /// Where the device is on PCI (prints as `00:04.0`).
    pub fn location(&self) -> DeviceFunction {
        self.location
    }

    pub fn readonly(&self) -> bool {
        self.blk.readonly()
    }

    /// The number of pages `len` bytes at page `start` cover, if they are
    /// whole pages inside the disk.
    fn check(&self, start: u64, len: usize) -> Result<u64, BlkError> {
        if !len.is_multiple_of(PAGE) {
            return Err(BlkError::BadLength(len));
        }
        let pages = (len / PAGE) as u64;
        match start.checked_add(pages) {
            Some(end) if end <= self.pages => Ok(pages),
            _ => Err(BlkError::OutOfRange {
                start,
                pages,
                capacity: self.pages,
            }),
        }
    }

    /// Writes `data` (whole pages) to the disk from page `start` on.
    pub fn write_pages(&mut self, start: u64, data: &[u8]) -> Result<(), BlkError> {
        self.check(start, data.len())?;
        if self.readonly() {
            return Err(BlkError::ReadOnly);
        }
        let direct = dma::direct_phys(data).is_some();
        let chunk = if direct {
            MAX_REQUEST_PAGES
        } else {
            STAGING_PAGES
        };
        for (i, part) in data.chunks(chunk * PAGE).enumerate() {
            let sector = (start + (i * chunk) as u64) * SECTORS_PER_PAGE;
            let result = if direct {
                self.blk.write_blocks(sector as usize, part)
            } else {
                let staged = &mut self.staging.as_mut_slice()[..part.len()];
                staged.copy_from_slice(part);
                self.blk.write_blocks(sector as usize, staged)
            };
            result.map_err(BlkError::Io)?;
        }
        Ok(())
    }

    /// Reads pages from page `start` on into `data` (whole pages).
    pub fn read_pages(&mut self, start: u64, data: &mut [u8]) -> Result<(), BlkError> {
        self.check(start, data.len())?;
        let direct = dma::direct_phys(data).is_some();
        let chunk = if direct {
            MAX_REQUEST_PAGES
        } else {
            STAGING_PAGES
        };
        for (i, part) in data.chunks_mut(chunk * PAGE).enumerate() {
            let sector = (start + (i * chunk) as u64) * SECTORS_PER_PAGE;
            if direct {
                self.blk
                    .read_blocks(sector as usize, part)
                    .map_err(BlkError::Io)?;
            } else {
                let staged = &mut self.staging.as_mut_slice()[..part.len()];
                self.blk
                    .read_blocks(sector as usize, staged)
                    .map_err(BlkError::Io)?;
                part.copy_from_slice(staged);
            }
        }
        Ok(())
    }

    /// Asks the device to make written data durable (a no-op if it does
    /// not offer the flush command).
    pub fn flush(&mut self) -> Result<(), BlkError> {
        self.blk.flush().map_err(BlkError::Io)
    }
}

/// The disk as a swap backend: slot `n` is page `n` of the disk. A run of
/// slots is one request (up to [`MAX_REQUEST_PAGES`] pages; the swap code's
/// runs are in heap memory, so in the direct map and handed to the device
/// as they are).
impl swapcore::SwapDevice for VirtioBlk {
    fn name(&self) -> &str {
        "vda"
    }

    fn pages(&self) -> u64 {
        self.pages
    }

    fn write_page(&mut self, slot: u64, page: &swapcore::Page) -> Result<(), SwapIoError> {
        self.write_pages(slot, page).map_err(swap_error)
    }

    fn read_page(&mut self, slot: u64, page: &mut swapcore::Page) -> Result<(), SwapIoError> {
        self.read_pages(slot, page).map_err(swap_error)
    }

    fn write_run(&mut self, first: u64, pages: &[swapcore::Page]) -> Result<(), SwapIoError> {
        self.write_pages(first, pages.as_flattened())
            .map_err(swap_error)
    }

    fn read_run(&mut self, first: u64, pages: &mut [swapcore::Page]) -> Result<(), SwapIoError> {
        self.read_pages(first, pages.as_flattened_mut())
            .map_err(swap_error)
    }

    /// A disk keeps the old bytes (virtio-drivers has no discard request).
    fn discard(&mut self, _slot: u64) {}
}

fn swap_error(e: BlkError) -> SwapIoError {
    match e {
        BlkError::OutOfRange { .. } => SwapIoError::OutOfRange,
        BlkError::Io(virtio_drivers::Error::DmaError) => SwapIoError::NoMemory,
        BlkError::BadLength(_) | BlkError::ReadOnly | BlkError::Io(_) => SwapIoError::Io,
    }
}

impl Drop for VirtioBlk {
    fn drop(&mut self) {
        // The transport, dropped right after, resets the device.
        IN_USE.store(false, Ordering::SeqCst);
    }
}

/// Raw sequential speed of the disk: writes `pages` pages from page 0 on,
/// then reads them back, [`MAX_REQUEST_PAGES`] per request, and returns
/// the TSC cycles of each pass `(write_cycles, read_cycles)`. A first,
/// unmeasured write pass comes before: the blank disk is a sparse file on
/// the host, whose first write to a block also allocates it, which swap
/// writing the same pages later would not pay. What it writes overwrites
/// the disk: run it before the disk holds swap.
pub fn raw_throughput(disk: &mut VirtioBlk, pages: u64) -> Result<(u64, u64), BlkError> {
    raw_throughput_in(disk, pages, MAX_REQUEST_PAGES)
}

/// [`raw_throughput`] with `per_request` pages per request (1 is what
/// swapping one page at a time asks of the disk), at most
/// [`MAX_REQUEST_PAGES`].
pub fn raw_throughput_in(
    disk: &mut VirtioBlk,
    pages: u64,
    per_request: usize,
) -> Result<(u64, u64), BlkError> {
    let per_request = per_request.clamp(1, MAX_REQUEST_PAGES);
    disk.check(0, (pages as usize).saturating_mul(PAGE))?;
    let mut buffer =
        DmaBuffer::new(per_request).ok_or(BlkError::Io(virtio_drivers::Error::DmaError))?;
    for (i, word) in buffer.as_mut_slice().chunks_mut(8).enumerate() {
        word.copy_from_slice(&(i as u64 ^ 0x5a5a_5a5a).to_le_bytes());
    }
    let step = per_request as u64;
    let requests = pages.div_ceil(step);
    let bytes = |r: u64| (pages - r * step).min(step) as usize * PAGE;

    let mut write_cycles = 0;
    for _pass in 0..2 {
        let start = rdtsc();
        for r in 0..requests {
            disk.write_pages(r * step, &buffer.as_slice()[..bytes(r)])?;
        }
        write_cycles = rdtsc() - start;
    }

    let start = rdtsc();
    for r in 0..requests {
        disk.read_pages(r * step, &mut buffer.as_mut_slice()[..bytes(r)])?;
    }
    let read_cycles = rdtsc() - start;
    Ok((write_cycles, read_cycles))
}

/// Candidates looked at, at most (the first found win).
const MAX_CANDIDATES: usize = 4;

/// The virtio-blk functions on the PCI buses reachable from bus 0 (the
/// first [`MAX_CANDIDATES`]). Allocates nothing: probing works however
/// short of memory the heap is.
fn find_block_devices(root: &PciRoot<ConfigPorts>) -> ([DeviceFunction; MAX_CANDIDATES], usize) {
    let none = DeviceFunction {
        bus: 0,
        device: 0,
        function: 0,
    };
    let mut found = [none; MAX_CANDIDATES];
    let mut count = 0;
    for_each_function(root, |df, info| {
        if virtio_device_type(info) == Some(DeviceType::Block) && count < MAX_CANDIDATES {
            found[count] = df;
            count += 1;
        }
    });
    (found, count)
}

/// Finds the first virtio block device on PCI and sets it up. Logs what it
/// found (`virtio-blk: 512 MiB at 00:04.0`) or why it could not use it.
pub fn probe() -> Option<VirtioBlk> {
    if IN_USE.swap(true, Ordering::SeqCst) {
        log::warn!("virtio-blk: the disk is already in use");
        return None;
    }
    let mut root = PciRoot::new(config_ports());
    let (candidates, count) = find_block_devices(&root);
    if count == 0 {
        log::info!("virtio-blk: no disk (`make run SWAP=512M` attaches one)");
    }
    for &df in &candidates[..count] {
        match set_up(&mut root, df) {
            Ok(disk) => {
                log::info!(
                    "virtio-blk: {} MiB at {df}{}",
                    (disk.pages * PAGE as u64) >> 20,
                    if disk.readonly() { " (read-only)" } else { "" }
                );
                return Some(disk);
            }
            Err(why) => log::warn!("virtio-blk at {df}: {why}"),
        }
    }
    IN_USE.store(false, Ordering::SeqCst);
    None
}

fn set_up(root: &mut PciRoot<ConfigPorts>, df: DeviceFunction) -> Result<VirtioBlk, &'static str> {
    if !dma::init_bounce() {
        return Err("no memory for its bounce page");
    }
    // Map every memory BAR first: the transport finds its register blocks
    // in them and must not have to allocate to reach one.
    let bars = root.bars(df).map_err(|_| "cannot read its BARs")?;
    for bar in bars.iter().flatten() {
        if let BarInfo::Memory { address, size, .. } = *bar {
            if address != 0 && size != 0 {
                dma::map_mmio(address, size).map_err(|_| "cannot map its registers")?;
            }
        }
    }
    let (_, command) = root.get_status_command(df);
    root.set_command(
        df,
        command | Command::MEMORY_SPACE | Command::BUS_MASTER | Command::INTERRUPT_DISABLE,
    );
    let transport = PciTransport::new::<FrameHal, _>(root, df)
        .map_err(|_| "no modern virtio interface (common/notify/ISR capabilities)")?;
    let mut blk = VirtIOBlk::<FrameHal, _>::new(transport).map_err(|_| "device set-up failed")?;
    blk.disable_interrupts();
    let staging = DmaBuffer::new(STAGING_PAGES).ok_or("no memory for its staging buffer")?;
    Ok(VirtioBlk {
        pages: blk.capacity() / SECTORS_PER_PAGE,
        blk,
        location: df,
        staging,
    })
}

/// The disk found at boot, until the swap code takes it.
static DISK: IrqMutex<Option<VirtioBlk>> = IrqMutex::new(None);

/// Boot: probes once and keeps the disk (if any) for [`take`].
pub fn init() {
    if let Some(disk) = probe() {
        put_back(disk);
    }
}

/// The disk found at boot, handed over once (`None` if there is none or
/// someone has it).
pub fn take() -> Option<VirtioBlk> {
    DISK.lock().take()
}

/// Gives the disk back (e.g. at `swapoff`), for the next [`take`].
pub fn put_back(disk: VirtioBlk) {
    // A disk already parked (there is only one device, so only after a
    // stray probe) is dropped, and so reset, with the lock released.
    let old = DISK.lock().replace(disk);
    drop(old);
}
