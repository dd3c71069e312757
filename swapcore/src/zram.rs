//! Compressed RAM: a swap device that keeps pages LZ4-compressed in memory
//! (Linux's zram).
//!
//! Each written page is stored in one of three ways, like zram:
//!
//! - **same-filled**: every 8-byte word of the page is the same (zero pages
//!   above all): only the word is kept, no buffer (`same_pages`);
//! - **compressed**: LZ4 (block format, `lz4_flex`) when the result is
//!   smaller than [`Zram::MAX_COMPRESSED`] (3/4 of a page);
//! - **raw**: otherwise the page is kept as it is (`huge_pages`): storing
//!   an incompressible page compressed would cost more to read back and save
//!   little.
//!
//! Buffers are allocated fallibly per page ([`SwapIoError::NoMemory`]), and a
//! memory limit (Linux's `mem_limit`) caps what the device may hold. The
//! compressor's hash table and output buffer (21 KiB) are allocated once
//! with the device, so a write, which may run deep in direct reclaim on a
//! 32 KiB kernel stack, puts no buffer on the stack and allocates nothing
//! but the stored copy (Linux's zram keeps per-CPU streams for the same
//! reason).

use alloc::vec::Vec;
use core::fmt;

use lz4_flex::block::{
    compress_into_with_table, decompress_into, get_maximum_output_size, CompressTable,
};

use crate::device::{SwapDevice, SwapIoError};
use crate::{NoMemory, Page, PAGE_SIZE};

/// Bytes of compressor output a page can need in the worst case.
const SCRATCH: usize = get_maximum_output_size(PAGE_SIZE);

/// How one slot is stored.
#[derive(Debug, Default)]
enum Entry {
    /// Never written, or discarded: reads as zeros.
    #[default]
    Empty,
    /// Every 8-byte word of the page is this value (native byte order).
    Same(u64),
    /// LZ4 block of the page.
    Lz4(Vec<u8>),
    /// The page itself (it did not compress well enough).
    Raw(Vec<u8>),
}

impl Entry {
    /// Heap bytes this entry holds.
    fn mem(&self) -> u64 {
        match self {
            Entry::Lz4(buf) | Entry::Raw(buf) => buf.capacity() as u64,
            Entry::Empty | Entry::Same(_) => 0,
        }
    }

    /// Bytes of stored data (`compr_data_size`'s share).
    fn data(&self) -> u64 {
        match self {
            Entry::Lz4(buf) | Entry::Raw(buf) => buf.len() as u64,
            Entry::Empty | Entry::Same(_) => 0,
        }
    }
}

/// A zram device's figures, named and measured as Linux's
/// `/sys/block/zramN/mm_stat` and `io_stat`/`stat` have them (bytes unless
/// said otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZramStats {
    /// Size of the device (`disksize`).
    pub disksize: u64,
    /// Uncompressed size of the pages stored (same-filled ones included).
    pub orig_data_size: u64,
    /// Compressed size of the pages stored (raw pages count whole,
    /// same-filled ones not at all).
    pub compr_data_size: u64,
    /// Memory the stored pages occupy (their buffers' allocated sizes).
    pub mem_used_total: u64,
    /// The memory limit (0: none).
    pub mem_limit: u64,
    /// The most `mem_used_total` has been.
    pub mem_used_max: u64,
    /// Pages stored as one repeated word, with no buffer.
    pub same_pages: u64,
    /// Pages stored (all kinds).
    pub pages_stored: u64,
    /// Pages stored uncompressed because they did not compress enough.
    pub huge_pages: u64,
    /// Pages read (successfully or not).
    pub num_reads: u64,
    /// Pages written (successfully or not).
    pub num_writes: u64,
    /// Reads that failed (stored data that did not decode).
    pub failed_reads: u64,
    /// Writes that failed (no memory, or over the limit).
    pub failed_writes: u64,
    /// Requests for slots outside the device.
    pub invalid_io: u64,
    /// Slots discarded while they held a page.
    pub notify_free: u64,
}

impl fmt::Display for ZramStats {
    /// The `mm_stat` line: `orig_data_size compr_data_size mem_used_total
    /// mem_limit mem_used_max same_pages pages_compacted huge_pages` (no
    /// compaction here, so `pages_compacted` is 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} 0 {}",
            self.orig_data_size,
            self.compr_data_size,
            self.mem_used_total,
            self.mem_limit,
            self.mem_used_max,
            self.same_pages,
            self.huge_pages
        )
    }
}

/// The compressor's hash table in its empty state, built at compile time
/// so that placing it on the heap copies it there rather than building its
/// 16 KiB on the stack first.
const EMPTY_TABLE: CompressTable = CompressTable::small();

/// The slot table in chunks of [`Table::CHUNK`] entries, so a large
/// device never asks the allocator for one block bigger than a chunk
/// (a kernel heap's largest block is a few MiB).
#[derive(Debug)]
struct Table {
    chunks: Vec<Vec<Entry>>,
    len: usize,
}

impl Table {
    /// Entries per chunk (512 KiB of table).
    const CHUNK: usize = 16384;

    fn try_new(len: usize) -> Result<Table, NoMemory> {
        let mut chunks = Vec::new();
        chunks
            .try_reserve_exact(len.div_ceil(Self::CHUNK))
            .map_err(|_| NoMemory)?;
        let mut left = len;
        while left > 0 {
            let n = left.min(Self::CHUNK);
            let mut chunk = Vec::new();
            chunk.try_reserve_exact(n).map_err(|_| NoMemory)?;
            chunk.resize_with(n, Entry::default);
            chunks.push(chunk);
            left -= n;
        }
        Ok(Table { chunks, len })
    }

    fn len(&self) -> usize {
        self.len
    }
}

impl core::ops::Index<usize> for Table {
    type Output = Entry;
    fn index(&self, i: usize) -> &Entry {
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

impl core::ops::IndexMut<usize> for Table {
    fn index_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }
}

/// A compressed-RAM swap device of a fixed number of page slots.
pub struct Zram {
    name: &'static str,
    slots: Table,
    /// The compressor's hash table (one element: a `Vec` so it can be
    /// allocated fallibly) and output buffer, allocated once per device.
    table: Vec<CompressTable>,
    out: Vec<u8>,
    stats: ZramStats,
}

impl fmt::Debug for Zram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zram")
            .field("name", &self.name)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Zram {
    /// The largest compressed size stored compressed; a page needing this
    /// much or more is stored raw (Linux's `huge_class_size` plays this
    /// role).
    pub const MAX_COMPRESSED: usize = PAGE_SIZE * 3 / 4;

    /// A device named `name` (e.g. `zram0`) of `pages` empty slots. Fails
    /// if the slot table (32 bytes per slot) or the compressor's workspace
    /// (about 21 KiB: LZ4's hash table and output buffer) cannot be allocated.
    pub fn try_new(name: &'static str, pages: u64) -> Result<Self, NoMemory> {
        let n = usize::try_from(pages).map_err(|_| NoMemory)?;
        let slots = Table::try_new(n)?;
        let mut table = Vec::new();
        table.try_reserve_exact(1).map_err(|_| NoMemory)?;
        table.push(EMPTY_TABLE);
        let mut out = Vec::new();
        out.try_reserve_exact(SCRATCH).map_err(|_| NoMemory)?;
        out.resize(SCRATCH, 0);
        Ok(Zram {
            name,
            slots,
            table,
            out,
            stats: ZramStats {
                disksize: pages.saturating_mul(PAGE_SIZE as u64),
                ..ZramStats::default()
            },
        })
    }

    /// Caps the memory stored pages may occupy (`mem_limit`; 0: no limit).
    /// A write that would go over it fails with
    /// [`SwapIoError::NoMemory`]; pages already stored stay.
    pub fn set_mem_limit(&mut self, bytes: u64) {
        self.stats.mem_limit = bytes;
    }

    /// The device's figures.
    pub fn stats(&self) -> ZramStats {
        self.stats
    }

    fn index(&mut self, slot: u64) -> Result<usize, SwapIoError> {
        match usize::try_from(slot) {
            Ok(i) if i < self.slots.len() => Ok(i),
            _ => {
                self.stats.invalid_io += 1;
                Err(SwapIoError::OutOfRange)
            }
        }
    }

    /// Encodes `page` as a new entry, allocating its buffer (within the
    /// memory limit, counting the `old_mem` bytes the entry replaces).
    fn encode(&mut self, page: &Page, old_mem: u64) -> Result<Entry, SwapIoError> {
        if let Some(word) = same_filled(page) {
            return Ok(Entry::Same(word));
        }
        let Some(table) = self.table.first_mut() else {
            return Err(SwapIoError::NoMemory);
        };
        let compressed = compress_into_with_table(page, &mut self.out, table)
            .ok()
            .filter(|&len| len < Self::MAX_COMPRESSED);
        let (bytes, raw) = match compressed {
            Some(len) => (&self.out[..len], false),
            None => (&page[..], true),
        };
        let limit = self.stats.mem_limit;
        let after = self.stats.mem_used_total.saturating_sub(old_mem) + bytes.len() as u64;
        if limit != 0 && after > limit {
            return Err(SwapIoError::NoMemory);
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(bytes.len())
            .map_err(|_| SwapIoError::NoMemory)?;
        buf.extend_from_slice(bytes);
        Ok(if raw {
            Entry::Raw(buf)
        } else {
            Entry::Lz4(buf)
        })
    }

    /// Replaces slot `i`'s entry, keeping the figures in step.
    fn replace(&mut self, i: usize, new: Entry) {
        let old = core::mem::replace(&mut self.slots[i], new);
        account(&mut self.stats, &old, u64::saturating_sub);
        account(&mut self.stats, &self.slots[i], u64::saturating_add);
        self.stats.mem_used_max = self.stats.mem_used_max.max(self.stats.mem_used_total);
    }
}

/// Adds (or subtracts) `entry`'s share of the figures. An entry is only
/// subtracted after it was added, so saturation never happens; it only
/// keeps a figure from wrapping should that ever be wrong.
fn account(stats: &mut ZramStats, entry: &Entry, op: fn(u64, u64) -> u64) {
    let (pages, same, huge) = match entry {
        Entry::Empty => (0, 0, 0),
        Entry::Same(_) => (1, 1, 0),
        Entry::Lz4(_) => (1, 0, 0),
        Entry::Raw(_) => (1, 0, 1),
    };
    stats.pages_stored = op(stats.pages_stored, pages);
    stats.orig_data_size = op(stats.orig_data_size, pages * PAGE_SIZE as u64);
    stats.compr_data_size = op(stats.compr_data_size, entry.data());
    stats.mem_used_total = op(stats.mem_used_total, entry.mem());
    stats.same_pages = op(stats.same_pages, same);
    stats.huge_pages = op(stats.huge_pages, huge);
}

/// The word every 8-byte word of `page` equals, if there is one.
fn same_filled(page: &Page) -> Option<u64> {
    let mut words = page
        .as_chunks::<8>()
        .0
        .iter()
        .map(|&w| u64::from_ne_bytes(w));
    let first = words.next()?;
    words.all(|w| w == first).then_some(first)
}

impl SwapDevice for Zram {
    fn name(&self) -> &str {
        self.name
    }

    fn pages(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Stores `page`; on failure (no memory, over the limit) the slot keeps
    /// what it held.
    fn write_page(&mut self, slot: u64, page: &Page) -> Result<(), SwapIoError> {
        let i = self.index(slot)?;
        self.stats.num_writes += 1;
        match self.encode(page, self.slots[i].mem()) {
            Ok(entry) => {
                self.replace(i, entry);
                Ok(())
            }
            Err(e) => {
                self.stats.failed_writes += 1;
                Err(e)
            }
        }
    }

    /// Reads the slot; an empty slot reads as zeros.
    fn read_page(&mut self, slot: u64, page: &mut Page) -> Result<(), SwapIoError> {
        let i = self.index(slot)?;
        self.stats.num_reads += 1;
        match &self.slots[i] {
            Entry::Empty => page.fill(0),
            Entry::Same(word) => {
                page.as_chunks_mut::<8>().0.fill(word.to_ne_bytes());
            }
            Entry::Raw(buf) => page.copy_from_slice(buf),
            Entry::Lz4(buf) => {
                if !matches!(decompress_into(buf, page), Ok(PAGE_SIZE)) {
                    self.stats.failed_reads += 1;
                    return Err(SwapIoError::Io);
                }
            }
        }
        Ok(())
    }

    fn discard(&mut self, slot: u64) {
        let Ok(i) = self.index(slot) else {
            return;
        };
        if !matches!(self.slots[i], Entry::Empty) {
            self.stats.notify_free += 1;
            self.replace(i, Entry::Empty);
        }
    }

    fn mem_used(&self) -> u64 {
        self.stats.mem_used_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn page_of(f: impl Fn(usize) -> u8) -> Page {
        core::array::from_fn(f)
    }

    /// A xorshift stream: incompressible bytes.
    fn random_page(mut seed: u64) -> Page {
        let mut page = [0; PAGE_SIZE];
        for b in page.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        page
    }

    #[test]
    fn three_kinds_of_page_round_trip() {
        let mut z = Zram::try_new("zram0", 8).unwrap();
        assert_eq!((z.name(), z.pages()), ("zram0", 8));
        let zero = [0u8; PAGE_SIZE];
        let same = page_of(|i| [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4][i % 8]);
        let text = page_of(|i| {
            b"the quick brown fox jumps over the lazy dog "[i % 44].wrapping_add((i / 512) as u8)
        });
        let noise = random_page(7);
        for (slot, page) in [&zero, &same, &text, &noise].into_iter().enumerate() {
            z.write_page(slot as u64, page).unwrap();
        }
        let s = z.stats();
        assert_eq!((s.pages_stored, s.same_pages, s.huge_pages), (4, 2, 1));
        assert_eq!(s.orig_data_size, 4 * PAGE_SIZE as u64);
        assert!(
            s.compr_data_size > PAGE_SIZE as u64,
            "the raw page counts whole"
        );
        assert!(s.compr_data_size < PAGE_SIZE as u64 + Zram::MAX_COMPRESSED as u64);
        for (slot, page) in [&zero, &same, &text, &noise].into_iter().enumerate() {
            let mut back = [0x55; PAGE_SIZE];
            z.read_page(slot as u64, &mut back).unwrap();
            assert!(back == *page, "slot {slot}");
        }
        for slot in 0..4 {
            z.discard(slot);
        }
        let s = z.stats();
        assert_eq!(
            (
                s.pages_stored,
                s.mem_used_total,
                s.compr_data_size,
                s.orig_data_size
            ),
            (0, 0, 0, 0)
        );
        assert_eq!((s.same_pages, s.huge_pages, s.notify_free), (0, 0, 4));
        assert!(s.mem_used_max >= PAGE_SIZE as u64);
    }

    #[test]
    fn empty_slots_read_as_zeros_and_overwrite_replaces() {
        let mut z = Zram::try_new("zram0", 2).unwrap();
        let mut back = [1u8; PAGE_SIZE];
        z.read_page(1, &mut back).unwrap();
        assert!(back == [0; PAGE_SIZE]);
        z.write_page(1, &random_page(1)).unwrap();
        let used = z.mem_used();
        assert!(used >= PAGE_SIZE as u64);
        z.write_page(1, &[9; PAGE_SIZE]).unwrap();
        assert_eq!(z.mem_used(), 0, "a same-filled page replaced the raw one");
        assert_eq!(z.stats().pages_stored, 1);
        z.read_page(1, &mut back).unwrap();
        assert!(back == [9; PAGE_SIZE]);
    }

    #[test]
    fn out_of_range_is_refused() {
        let mut z = Zram::try_new("zram0", 2).unwrap();
        let mut page = [0; PAGE_SIZE];
        assert_eq!(z.write_page(2, &page), Err(SwapIoError::OutOfRange));
        assert_eq!(
            z.read_page(u64::MAX, &mut page),
            Err(SwapIoError::OutOfRange)
        );
        z.discard(5);
        assert_eq!(z.stats().invalid_io, 3);
        assert_eq!(z.stats().num_writes, 0);
    }

    #[test]
    fn memory_limit_refuses_and_keeps_the_old_page() {
        let mut z = Zram::try_new("zram0", 4).unwrap();
        z.set_mem_limit(PAGE_SIZE as u64 + 100);
        let a = random_page(3);
        z.write_page(0, &a).unwrap();
        assert_eq!(z.write_page(1, &random_page(4)), Err(SwapIoError::NoMemory));
        // Replacing slot 0's page fits: its old buffer goes.
        let b = random_page(5);
        z.write_page(0, &b).unwrap();
        // Same-filled pages need no memory.
        z.write_page(2, &[0; PAGE_SIZE]).unwrap();
        let s = z.stats();
        assert_eq!((s.failed_writes, s.num_writes, s.pages_stored), (1, 4, 2));
        let mut back = [0; PAGE_SIZE];
        z.read_page(0, &mut back).unwrap();
        assert!(back == b);
        z.read_page(1, &mut back).unwrap();
        assert!(back == [0; PAGE_SIZE], "the failed write left slot 1 empty");
        assert_eq!(
            s.to_string(),
            std::format!(
                "{} {} {} {} {} 1 0 1",
                2 * 4096,
                s.compr_data_size,
                s.mem_used_total,
                PAGE_SIZE + 100,
                s.mem_used_max
            )
        );
    }

    #[test]
    fn corrupt_data_is_an_io_error_not_a_panic() {
        let mut z = Zram::try_new("zram0", 1).unwrap();
        let text = page_of(|i| (i % 13) as u8);
        z.write_page(0, &text).unwrap();
        let Entry::Lz4(buf) = &mut z.slots[0] else {
            panic!("expected a compressed page")
        };
        buf.truncate(buf.len() / 2);
        let mut back = [0; PAGE_SIZE];
        assert_eq!(z.read_page(0, &mut back), Err(SwapIoError::Io));
        assert_eq!(z.stats().failed_reads, 1);
    }

    #[test]
    fn same_filled_detection() {
        assert_eq!(same_filled(&[0; PAGE_SIZE]), Some(0));
        assert_eq!(same_filled(&[0xab; PAGE_SIZE]), Some(0xabab_abab_abab_abab));
        let mut p = [0; PAGE_SIZE];
        p[PAGE_SIZE - 1] = 1;
        assert_eq!(same_filled(&p), None);
    }
}
