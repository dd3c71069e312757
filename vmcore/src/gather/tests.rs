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

/// Unmapping through [`GatherTables`]: the tables left empty are freed
/// only by `finish`, after the flush.
#[test]
fn emptied_tables_wait_for_the_flush_too() {
    LOG.with(|l| l.borrow_mut().clear());
    let mut mem = HostTables::new();
    let mut pt = PageTables::new(&mut mem).unwrap();
    pt.map(
        &mut mem,
        0x40_0000,
        0x9000,
        PteFlags::WRITABLE | PteFlags::USER,
    )
    .unwrap();
    let live = mem.live();
    let mut g = Gather::new(Tlb);
    {
        let mut gm = GatherTables::new(&mut mem, &mut g);
        let mut take = |m: &mut GatherTables<'_, HostTables, Tlb>, va: u64, size: u64, pte: Pte| {
            m.gather.add_frame(va, size, Frame(pte.addr()))
        };
        pt.unmap_range(&mut gm, 0x40_0000, 0x40_1000, EmptyTables::Free, &mut take)
            .unwrap();
    }
    assert_eq!(mem.live(), live, "no table freed before the flush");
    assert!(log().is_empty());
    let stats = g.finish(&mut mem);
    assert_eq!(stats.tables_freed, 3, "PT, PD and PDPT went");
    assert_eq!(mem.live(), live - 3);
    assert_eq!(log(), [Event::FlushPage(0x40_0000), Event::Freed(0x9000)]);
}

use crate::paging::Pte;
