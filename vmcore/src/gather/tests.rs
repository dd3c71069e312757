//! The gather's one promise: nothing it holds is released before the flush
//! that covers it.

use std::cell::RefCell;
use std::vec::Vec;

use super::*;
use crate::host::HostTables;
use crate::paging::{EmptyTables, PageTables, PteFlags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    FlushPage(u64),
    FlushAll,
    /// `tables_unlinked`: this flush must reach lazy CPUs too.
    Tables,
    Freed(u64),
}

std::thread_local! {
    static LOG: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
}

fn log() -> Vec<Event> {
    LOG.with(|l| l.borrow().clone())
}

/// A frame whose drop is logged.
struct Frame(u64);

impl FrameHandle for Frame {
    fn addr(&self) -> u64 {
        self.0
    }
    fn into_raw(self) -> u64 {
        let a = self.0;
        core::mem::forget(self);
        a
    }
    unsafe fn from_raw(addr: u64) -> Self {
        Frame(addr)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        LOG.with(|l| l.borrow_mut().push(Event::Freed(self.0)));
    }
}

struct Tlb;

impl TlbFlush for Tlb {
    type Frame = Frame;
    fn flush_page(&mut self, va: u64) {
        LOG.with(|l| l.borrow_mut().push(Event::FlushPage(va)));
    }
    fn flush_all(&mut self) {
        LOG.with(|l| l.borrow_mut().push(Event::FlushAll));
    }
    fn release_swap(&mut self, _: crate::swap::SwapEntry) {
        unreachable!("no swap entries in these tests")
    }
    fn tables_unlinked(&mut self) {
        LOG.with(|l| l.borrow_mut().push(Event::Tables));
    }
}

/// Checks that every frame freed in `events` was preceded by a flush of
/// its page (`va_of` maps frame to page) or a full flush.
fn freed_after_flush(events: &[Event], va_of: impl Fn(u64) -> u64) {
    for (i, e) in events.iter().enumerate() {
        if let Event::Freed(pa) = *e {
            let va = va_of(pa);
            assert!(
                events[..i]
                    .iter()
                    .any(|e| *e == Event::FlushAll || *e == Event::FlushPage(va)),
                "frame {pa:#x} (page {va:#x}) freed before any flush of it: {events:?}"
            );
        }
    }
}

#[test]
fn frames_wait_for_the_flush() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::new(Tlb);
    g.add_frame(0x1000, PAGE_SIZE, Frame(0xa000));
    g.add_frame(0x3000, PAGE_SIZE, Frame(0xb000));
    assert!(log().is_empty(), "nothing released or flushed yet");
    let stats = g.finish(&mut HostTables::new());
    let events = log();
    assert_eq!(
        events,
        [
            Event::FlushPage(0x1000),
            Event::FlushPage(0x2000),
            Event::FlushPage(0x3000),
            Event::Freed(0xa000),
            Event::Freed(0xb000),
        ]
    );
    assert_eq!(stats.frames_released, 2);
}

#[test]
fn a_dropped_gather_still_flushes_first() {
    LOG.with(|l| l.borrow_mut().clear());
    {
        let mut g = Gather::new(Tlb);
        g.add_frame(0x5000, PAGE_SIZE, Frame(0xc000));
        drop(g);
    }
    assert_eq!(log(), [Event::FlushPage(0x5000), Event::Freed(0xc000)]);
}

#[test]
fn a_full_batch_flushes_before_it_releases() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::new(Tlb);
    let n = FRAME_BATCH as u64 * 2 + 3;
    for i in 0..n {
        g.add_frame(i * PAGE_SIZE, PAGE_SIZE, Frame(0x100_0000 + i * PAGE_SIZE));
    }
    let _ = g.finish(&mut HostTables::new());
    let events = log();
    freed_after_flush(&events, |pa| pa - 0x100_0000);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Freed(_)))
            .count() as u64,
        n
    );
}

#[test]
fn big_ranges_flush_everything_once() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::new(Tlb);
    g.add_range(0, (FLUSH_ALL_THRESHOLD + 1) * PAGE_SIZE);
    let stats = g.finish(&mut HostTables::new());
    assert_eq!(log(), [Event::FlushAll]);
    assert_eq!((stats.full_flushes, stats.pages_flushed), (1, 0));
}

/// Maps frame 0x9000 at 0x40_0000 in fresh tables in `mem`, then unmaps
/// it through a [`GatherTables`] into `g`: the frame and the three tables
/// the unmap emptied (PT, PD, PDPT) wait in the gather. Returns how many
/// tables were live before the unmap.
fn unmap_one_page_into(mem: &mut HostTables, g: &mut Gather<Tlb>) -> usize {
    let mut pt = PageTables::new(mem).unwrap();
    pt.map(mem, 0x40_0000, 0x9000, PteFlags::WRITABLE | PteFlags::USER)
        .unwrap();
    let live = mem.live();
    let mut gm = GatherTables::new(mem, g);
    let mut take = |m: &mut GatherTables<'_, HostTables, Tlb>, va: u64, size: u64, pte: Pte| {
        m.gather.add_frame(va, size, Frame(pte.addr()))
    };
    pt.unmap_range(&mut gm, 0x40_0000, 0x40_1000, EmptyTables::Free, &mut take)
        .unwrap();
    live
}

/// Unmapping through [`GatherTables`]: the tables left empty are freed
/// only by `finish`, after the flush.
#[test]
fn emptied_tables_wait_for_the_flush_too() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut mem = HostTables::new();
    let mut g = Gather::new(Tlb);
    let live = unmap_one_page_into(&mut mem, &mut g);
    assert_eq!(mem.live(), live, "no table freed before the flush");
    assert!(log().is_empty());
    let stats = g.finish(&mut mem);
    assert_eq!(stats.tables_freed, 3, "PT, PD and PDPT went");
    assert_eq!(mem.live(), live - 3);
    assert_eq!(
        log(),
        [
            Event::FlushPage(0x40_0000),
            Event::Tables,
            Event::Freed(0x9000)
        ]
    );
}

/// `flush_keep_frames` flushes and frees the emptied tables at once, but
/// the frames stay held (a caller gives them back after dropping its
/// lock) until the gather is dropped; a second flush has nothing to do.
#[test]
fn flush_keep_frames_holds_frames_until_dropped() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut mem = HostTables::new();
    let mut g = Gather::new(Tlb);
    let live = unmap_one_page_into(&mut mem, &mut g);
    g.add_frame(0x7000, PAGE_SIZE, Frame(0xd000));
    let stats = g.flush_keep_frames(&mut mem);
    assert_eq!(stats.tables_freed, 3);
    assert_eq!(stats.frames_released, 0);
    assert_eq!(mem.live(), live - 3, "tables freed after the flush");
    assert_eq!(g.held(), (2, 0), "frames still held");
    let held: Vec<u64> = g.held_frames().map(|f| f.0).collect();
    assert_eq!(held, [0x9000, 0xd000]);
    let flushed = log();
    assert!(!flushed.iter().any(|e| matches!(e, Event::Freed(_))));
    assert!(flushed.contains(&Event::Tables));
    drop(g);
    let events = log();
    assert_eq!(
        &events[flushed.len()..],
        [Event::Freed(0x9000), Event::Freed(0xd000)],
        "the drop only releases: nothing is flushed twice"
    );
    freed_after_flush(&events, |pa| if pa == 0x9000 { 0x40_0000 } else { 0x7000 });
}

/// A big unmap (4096 pages, 16 MiB) is one flush: on several CPUs one
/// shootdown round, not one per in-place batch; a whole-TLB flush since
/// it is past the ceiling; and every frame still goes only after it.
#[test]
fn a_big_unmap_is_one_flush() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::new(Tlb);
    let n = 4096u64;
    for i in 0..n {
        g.add_frame(i * PAGE_SIZE, PAGE_SIZE, Frame(0x1000_0000 + i * PAGE_SIZE));
    }
    assert_eq!(g.held().0 as u64, n);
    assert!(log().is_empty(), "nothing flushed or freed before finish");
    let stats = g.finish(&mut HostTables::new());
    let events = log();
    assert_eq!(events[0], Event::FlushAll);
    assert_eq!(events.len() as u64, n + 1, "one flush, then every frame");
    assert_eq!(
        (stats.flushes, stats.early_flushes, stats.full_flushes),
        (1, 0, 1)
    );
    assert_eq!(stats.frames_released, n);
}

/// Past its limit (or when its extra storage cannot be allocated: a limit
/// of the in-place batch is the same), a gather flushes early, and what
/// it freed was covered by a flush each time.
#[test]
fn a_gather_at_its_limit_flushes_early() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::with_limits(Tlb, 2 * FRAME_BATCH, TABLE_BATCH);
    let n = 4 * FRAME_BATCH as u64 + 44;
    for i in 0..n {
        // Far apart, so each flush is of whole TLBs and the check below
        // needs a flush after the frame was added.
        g.add_frame(i * PAGE_SIZE, PAGE_SIZE, Frame(0x1000_0000 + i * PAGE_SIZE));
        assert!(g.held().0 <= 2 * FRAME_BATCH);
    }
    let stats = g.finish(&mut HostTables::new());
    assert_eq!((stats.flushes, stats.early_flushes), (3, 2));
    let events = log();
    // Each frame is freed after the first full flush that follows its add:
    // the k-th flush frees exactly the frames added before it.
    let mut flushes = 0;
    let mut freed = 0u64;
    for e in &events {
        match e {
            Event::FlushAll => flushes += 1,
            Event::Freed(_) => {
                freed += 1;
                assert!(freed <= (flushes * 2 * FRAME_BATCH) as u64);
            }
            _ => {}
        }
    }
    assert_eq!(freed, n);
    // With no room beyond the in-place batch: the old behaviour, a flush
    // per batch.
    LOG.with(|l| l.borrow_mut().clear());
    let mut g = Gather::with_limits(Tlb, 0, 0);
    for i in 0..n {
        g.add_frame(i * PAGE_SIZE, PAGE_SIZE, Frame(0x1000_0000 + i * PAGE_SIZE));
        assert!(g.held().0 <= FRAME_BATCH);
    }
    let stats = g.finish(&mut HostTables::new());
    assert_eq!(stats.flushes, n.div_ceil(FRAME_BATCH as u64));
}

/// Unmapping 64 MiB of pages frees 32 page tables and more: still one
/// flush, told that tables went (so lazy CPUs get it), and the tables
/// are freed after it.
#[test]
fn many_tables_one_flush() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut mem = HostTables::new();
    let mut pt = PageTables::new(&mut mem).unwrap();
    let base = 0x4000_0000u64;
    let tables = 40u64;
    for t in 0..tables {
        let va = base + t * 0x20_0000;
        pt.map(
            &mut mem,
            va,
            0x9000 + t * PAGE_SIZE,
            PteFlags::WRITABLE | PteFlags::USER,
        )
        .unwrap();
    }
    let live = mem.live();
    let mut g = Gather::new(Tlb);
    {
        let mut gm = GatherTables::new(&mut mem, &mut g);
        let mut take = |m: &mut GatherTables<'_, HostTables, Tlb>, va: u64, size: u64, pte: Pte| {
            m.gather.add_frame(va, size, Frame(pte.addr()))
        };
        pt.unmap_range(
            &mut gm,
            base,
            base + tables * 0x20_0000,
            EmptyTables::Free,
            &mut take,
        )
        .unwrap();
    }
    assert_eq!(mem.live(), live, "no table freed before the flush");
    assert!(g.held().1 as u64 > tables);
    let stats = g.finish(&mut mem);
    assert_eq!((stats.flushes, stats.early_flushes), (1, 0));
    assert!(stats.tables_freed > tables);
    let events = log();
    assert_eq!(&events[..2], [Event::FlushAll, Event::Tables]);
}

#[test]
fn flush_policy() {
    assert!(!flush_whole(1));
    assert!(!flush_whole(FLUSH_ALL_THRESHOLD));
    assert!(flush_whole(FLUSH_ALL_THRESHOLD + 1));
    // Doubling up to the limit, at least the step.
    assert_eq!(grown_capacity(0, 64, 8128), Some(64));
    assert_eq!(grown_capacity(64, 64, 8128), Some(128));
    assert_eq!(grown_capacity(4096, 64, 8128), Some(8128));
    assert_eq!(grown_capacity(8100, 64, 8128), None);
    assert_eq!(grown_capacity(0, 64, 0), None);
    assert_eq!(grown_capacity(usize::MAX, 1, usize::MAX), None);
}

use crate::paging::Pte;
