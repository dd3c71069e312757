//! The three modules together, as a tiny kernel would use them: processes
//! with a `VmaSet` and `PageTables`, a frame table with reference counts
//! and contents, and a fault handler that does whatever `fault::decide`
//! says. Random touch / fork / exit sequences are checked against a model
//! that knows only "which page holds which content, shared by whom".

use std::collections::HashMap;

use proptest::prelude::*;
use vmcore::fault::{
    decide, fork_pte, leaf_flags, Fault, FaultAccess, FaultAction, FaultMode, FrameUse, PresentPage,
};
use vmcore::host::HostTables;
use vmcore::paging::{PageTables, Pte};
use vmcore::vma::{Prot, Sharing, Vma, VmaKind, VmaSet};
use vmcore::PAGE_SIZE;

const P: u64 = PAGE_SIZE;
const ZERO_PAGE: u64 = 0x1000;
const FILE_SHARED: u32 = 1;
const FILE_PRIVATE: u32 = 2;

/// The regions every process has (fork copies them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Region {
    /// Private anonymous, read-write.
    Anon,
    /// Shared mapping of FILE_SHARED, read-write.
    SharedFile,
    /// Private mapping of FILE_PRIVATE, read-write.
    PrivateFile,
}

const REGIONS: [(Region, u64, u64); 3] = [
    (Region::Anon, 0x40_0000, 6),
    (Region::SharedFile, 0x80_0000, 3),
    (Region::PrivateFile, 0xc0_0000, 3),
];

fn region_vma(region: Region) -> Vma {
    let &(_, base, pages) = REGIONS.iter().find(|r| r.0 == region).unwrap();
    let vma = Vma::anonymous(base, base + pages * P, Prot::RW);
    match region {
        Region::Anon => vma,
        Region::SharedFile => Vma {
            sharing: Sharing::Shared,
            kind: VmaKind::File {
                file: FILE_SHARED,
                offset: 0,
            },
            ..vma
        },
        Region::PrivateFile => Vma {
            kind: VmaKind::File {
                file: FILE_PRIVATE,
                offset: 0,
            },
            ..vma
        },
    }
}

fn va(region: Region, page: u64) -> u64 {
    region_vma(region).start + page * P
}

/// What a file page initially contains.
fn file_content(file: u32, offset: u64) -> u64 {
    1_000_000 * file as u64 + offset / P
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stats {
    zero_maps: u32,
    new_zeroed: u32,
    fills: u32,
    copies: u32,
    reuses: u32,
}

struct Frame {
    refs: u32,
    content: u64,
}

struct Proc {
    vmas: VmaSet,
    pt: PageTables,
}

/// The simulated kernel.
struct Kernel {
    mem: HostTables,
    frames: HashMap<u64, Frame>,
    page_cache: HashMap<(u32, u64), u64>,
    next_pa: u64,
    procs: Vec<Option<Proc>>,
    stats: Stats,
}

impl Kernel {
    fn new() -> Kernel {
        let mut mem = HostTables::new();
        let pt = PageTables::new(&mut mem).unwrap();
        let mut vmas = VmaSet::new();
        for (region, ..) in REGIONS {
            vmas.map(region_vma(region)).unwrap();
        }
        Kernel {
            mem,
            frames: HashMap::new(),
            page_cache: HashMap::new(),
            next_pa: 0x10_0000,
            procs: vec![Some(Proc { vmas, pt })],
            stats: Stats::default(),
        }
    }

    fn alloc_frame(&mut self, content: u64) -> u64 {
        self.next_pa += P;
        self.frames.insert(self.next_pa, Frame { refs: 1, content });
        self.next_pa
    }

    fn put_frame(frames: &mut HashMap<u64, Frame>, pa: u64) {
        if pa == ZERO_PAGE {
            return;
        }
        let frame = frames.get_mut(&pa).expect("reference to a freed frame");
        frame.refs -= 1;
        if frame.refs == 0 {
            frames.remove(&pa);
        }
    }

    fn frame_use(&self, pa: u64) -> FrameUse {
        if pa == ZERO_PAGE {
            FrameUse::ZeroPage
        } else if self.page_cache.values().any(|&c| c == pa) {
            FrameUse::PageCache
        } else {
            FrameUse::Anon {
                refs: self.frames[&pa].refs,
            }
        }
    }

    fn content(&self, pa: u64) -> u64 {
        if pa == ZERO_PAGE {
            0
        } else {
            self.frames[&pa].content
        }
    }

    /// A user access; returns the value read (or written).
    fn access(&mut self, pid: usize, va: u64, write: Option<u64>) -> u64 {
        for _ in 0..3 {
            let proc = self.procs[pid].as_mut().unwrap();
            let leaf = proc.pt.translate(&mut self.mem, va);
            if let Some((pa, pte, _)) = leaf {
                if write.is_none() || pte.is_writable() {
                    return match write {
                        Some(value) => {
                            assert_ne!(pa, ZERO_PAGE, "write to the zero page");
                            self.frames.get_mut(&pa).unwrap().content = value;
                            value
                        }
                        None => self.content(pa),
                    };
                }
            }
            let page = leaf.map(|(pa, pte, _)| PresentPage {
                pte,
                frame: self.frame_use(pa),
            });
            let proc = self.procs[pid].as_ref().unwrap();
            let vma = *proc.vmas.find_for_fault(va).unwrap();
            let access = if write.is_some() {
                FaultAccess::Write
            } else {
                FaultAccess::Read
            };
            let action = decide(&Fault {
                addr: va,
                access,
                mode: FaultMode::User,
                vma: Some(&vma),
                page,
            });
            self.resolve(pid, &vma, va, action, leaf.map(|(pa, pte, _)| (pa, pte)));
        }
        panic!("fault at {va:#x} not resolved");
    }

    fn resolve(
        &mut self,
        pid: usize,
        vma: &Vma,
        va: u64,
        action: FaultAction,
        old: Option<(u64, Pte)>,
    ) {
        let flags = leaf_flags(vma, &action).unwrap_or_else(|| panic!("unexpected {action:?}"));
        let new_pa = match action {
            FaultAction::MapZeroPage => {
                self.stats.zero_maps += 1;
                ZERO_PAGE
            }
            FaultAction::MapNewZeroed => {
                self.stats.new_zeroed += 1;
                self.alloc_frame(0)
            }
            FaultAction::FillFromFile {
                file,
                offset,
                private_copy,
            } => {
                self.stats.fills += 1;
                let cached = match self.page_cache.get(&(file, offset)) {
                    Some(&pa) => pa,
                    None => {
                        // The cache's own reference.
                        let pa = self.alloc_frame(file_content(file, offset));
                        self.page_cache.insert((file, offset), pa);
                        pa
                    }
                };
                if private_copy {
                    self.alloc_frame(self.frames[&cached].content)
                } else {
                    self.frames.get_mut(&cached).unwrap().refs += 1;
                    cached
                }
            }
            FaultAction::CopyOnWrite => {
                self.stats.copies += 1;
                let (old_pa, _) = old.unwrap();
                self.alloc_frame(self.content(old_pa))
            }
            FaultAction::ReuseWritable => {
                self.stats.reuses += 1;
                let (old_pa, old_pte) = old.unwrap();
                let proc = self.procs[pid].as_mut().unwrap();
                let new = proc
                    .pt
                    .update(&mut self.mem, va, |_| Pte::new(old_pa, flags))
                    .unwrap();
                assert!(new.is_writable() && !new.is_cow() && old_pte.is_present());
                return;
            }
            other => panic!("unexpected {other:?}"),
        };
        let proc = self.procs[pid].as_mut().unwrap();
        if let Some((old_pa, _)) = old {
            proc.pt.unmap(&mut self.mem, va).unwrap();
            Kernel::put_frame(&mut self.frames, old_pa);
        }
        proc.pt.map(&mut self.mem, va, new_pa, flags).unwrap();
    }

    fn fork(&mut self, pid: usize) -> usize {
        let mut child_pt = PageTables::new(&mut self.mem).unwrap();
        let parent = self.procs[pid].as_mut().unwrap();
        let vmas = parent.vmas.try_clone().unwrap();
        let frames = &mut self.frames;
        parent
            .pt
            .clone_user_for_fork(&mut child_pt, &mut self.mem, &mut |va, pte| {
                let (p, c, shares) = fork_pte(vmas.find(va).unwrap(), pte);
                if shares && pte.addr() != ZERO_PAGE {
                    frames.get_mut(&pte.addr()).unwrap().refs += 1;
                }
                Some((p, c))
            })
            .unwrap();
        self.procs.push(Some(Proc { vmas, pt: child_pt }));
        self.procs.len() - 1
    }

    fn exit(&mut self, pid: usize) {
        let proc = self.procs[pid].take().unwrap();
        let frames = &mut self.frames;
        proc.pt.destroy(&mut self.mem, &mut |_, pte| {
            Kernel::put_frame(frames, pte.addr())
        });
    }

    /// Reference counts equal the number of leaves (plus the page cache's
    /// own reference) for every frame, and no frame is orphaned.
    fn check_refcounts(&mut self) {
        let mut refs: HashMap<u64, u32> = self.page_cache.values().map(|&pa| (pa, 1)).collect();
        for proc in self.procs.iter().flatten() {
            for (region, base, pages) in REGIONS {
                let _ = region;
                for page in 0..pages {
                    if let Some((pa, _, _)) = proc.pt.translate(&mut self.mem, base + page * P) {
                        if pa != ZERO_PAGE {
                            *refs.entry(pa).or_default() += 1;
                        }
                    }
                }
            }
        }
        let actual: HashMap<u64, u32> = self.frames.iter().map(|(&pa, f)| (pa, f.refs)).collect();
        assert_eq!(actual, refs);
    }
}

/// The model: per process and page, what it maps, without page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MPage {
    Untouched,
    Zero,
    /// The file's page-cache page (shared file, or private before a write).
    Cache,
    /// A private frame (model id); writable unless shared COW since a fork.
    Frame {
        id: u32,
        writable: bool,
    },
}

#[derive(Default)]
struct Model {
    procs: Vec<Option<HashMap<(Region, u64), MPage>>>,
    /// id -> (refs, content)
    frames: HashMap<u32, (u32, u64)>,
    shared_file: HashMap<u64, u64>,
    next_id: u32,
    stats: Stats,
}

impl Model {
    fn new_frame(&mut self, content: u64) -> MPage {
        self.next_id += 1;
        self.frames.insert(self.next_id, (1, content));
        MPage::Frame {
            id: self.next_id,
            writable: true,
        }
    }

    fn put(&mut self, id: u32) {
        let frame = self.frames.get_mut(&id).unwrap();
        frame.0 -= 1;
        if frame.0 == 0 {
            self.frames.remove(&id);
        }
    }

    fn file_content(&self, region: Region, page: u64) -> u64 {
        match region {
            Region::SharedFile => self
                .shared_file
                .get(&page)
                .copied()
                .unwrap_or(file_content(FILE_SHARED, page * P)),
            _ => file_content(FILE_PRIVATE, page * P),
        }
    }

    fn read(&self, pid: usize, region: Region, page: u64) -> u64 {
        match self.procs[pid]
            .as_ref()
            .unwrap()
            .get(&(region, page))
            .copied()
            .unwrap_or(MPage::Untouched)
        {
            MPage::Untouched | MPage::Zero if region == Region::Anon => 0,
            MPage::Untouched | MPage::Cache => self.file_content(region, page),
            MPage::Zero => unreachable!(),
            MPage::Frame { id, .. } => self.frames[&id].1,
        }
    }

    fn touch(&mut self, pid: usize, region: Region, page: u64, write: Option<u64>) {
        let state = self.procs[pid]
            .as_ref()
            .unwrap()
            .get(&(region, page))
            .copied()
            .unwrap_or(MPage::Untouched);
        let new = match (region, state, write) {
            (Region::Anon, MPage::Untouched, None) => {
                self.stats.zero_maps += 1;
                MPage::Zero
            }
            (Region::Anon, MPage::Untouched | MPage::Zero, Some(v)) => {
                self.stats.new_zeroed += 1;
                self.new_frame(v)
            }
            (Region::SharedFile, MPage::Untouched, _)
            | (Region::PrivateFile, MPage::Untouched, None) => {
                self.stats.fills += 1;
                MPage::Cache
            }
            (Region::PrivateFile, MPage::Untouched, Some(v)) => {
                self.stats.fills += 1;
                self.new_frame(v)
            }
            (Region::PrivateFile, MPage::Cache, Some(v)) => {
                self.stats.copies += 1;
                self.new_frame(v)
            }
            (
                _,
                MPage::Frame {
                    id,
                    writable: false,
                },
                Some(v),
            ) => {
                if self.frames[&id].0 > 1 {
                    self.stats.copies += 1;
                    self.put(id);
                    self.new_frame(v)
                } else {
                    self.stats.reuses += 1;
                    MPage::Frame { id, writable: true }
                }
            }
            (_, state, _) => state,
        };
        if let (Some(v), MPage::Frame { id, .. }) = (write, new) {
            self.frames.get_mut(&id).unwrap().1 = v;
        }
        if let (Some(v), Region::SharedFile) = (write, region) {
            self.shared_file.insert(page, v);
        }
        self.procs[pid]
            .as_mut()
            .unwrap()
            .insert((region, page), new);
    }

    fn fork(&mut self, pid: usize) {
        let mut pages = self.procs[pid].clone().unwrap();
        for state in pages.values_mut() {
            if let MPage::Frame { id, writable } = state {
                *writable = false;
                self.frames.get_mut(id).unwrap().0 += 1;
            }
        }
        self.procs[pid] = Some(pages.clone());
        self.procs.push(Some(pages));
    }

    fn exit(&mut self, pid: usize) {
        for state in self.procs[pid].take().unwrap().into_values() {
            if let MPage::Frame { id, .. } = state {
                self.put(id);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Touch {
        proc: usize,
        region: usize,
        page: u64,
        write: bool,
    },
    Fork(usize),
    Exit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..8usize, 0..3usize, 0..6u64, any::<bool>())
            .prop_map(|(proc, region, page, write)| Op::Touch { proc, region, page, write }),
        2 => (0..8usize).prop_map(Op::Fork),
        1 => (0..8usize).prop_map(Op::Exit),
    ]
}

/// Picks the `n`-th live process (modulo their number).
fn live(procs: &[Option<Proc>], n: usize) -> usize {
    let live: Vec<usize> = procs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_some())
        .map(|(i, _)| i)
        .collect();
    live[n % live.len()]
}

fn check(kernel: &mut Kernel, model: &Model) {
    assert_eq!(kernel.stats, model.stats);
    kernel.check_refcounts();
    let anon_frames = kernel.frames.len() - kernel.page_cache.len();
    assert_eq!(
        anon_frames,
        model.frames.len(),
        "anonymous frames leaked or lost"
    );
    for pid in 0..kernel.procs.len() {
        let Some(proc) = kernel.procs[pid].as_ref() else {
            continue;
        };
        for (region, base, pages) in REGIONS {
            for page in 0..pages {
                let state = model.procs[pid]
                    .as_ref()
                    .unwrap()
                    .get(&(region, page))
                    .copied();
                let leaf = proc.pt.translate(&mut kernel.mem, base + page * P);
                match (state.unwrap_or(MPage::Untouched), leaf) {
                    (MPage::Untouched, None) => {}
                    (MPage::Zero, Some((pa, pte, _))) => {
                        assert!(pa == ZERO_PAGE && !pte.is_writable())
                    }
                    (MPage::Cache, Some((pa, pte, _))) => {
                        assert!(kernel.page_cache.values().any(|&c| c == pa));
                        assert_eq!(pte.is_writable(), region == Region::SharedFile);
                    }
                    (MPage::Frame { id, writable }, Some((pa, pte, _))) => {
                        assert_eq!(pte.is_writable(), writable, "{region:?} page {page}");
                        assert_eq!(pte.is_cow(), !writable);
                        assert_eq!(kernel.frames[&pa].refs, model.frames[&id].0);
                    }
                    (state, leaf) => {
                        panic!("pid {pid} {region:?} page {page}: model {state:?}, leaf {leaf:?}")
                    }
                }
                if let Some((pa, ..)) = leaf {
                    assert_eq!(
                        kernel.content(pa),
                        model.read(pid, region, page),
                        "pid {pid} {region:?} {page}"
                    );
                }
            }
        }
    }
}

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(if cfg!(miri) { 3 } else { cases });
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn faults_and_fork_match_model(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 12 } else { 80 })) {
        let mut kernel = Kernel::new();
        let mut model = Model { procs: vec![Some(HashMap::new())], ..Model::default() };
        let mut next_value = 1;
        for op in &ops {
            match *op {
                Op::Touch { proc, region, page, write } => {
                    let pid = live(&kernel.procs, proc);
                    let (region, _, pages) = REGIONS[region];
                    let page = page % pages;
                    let value = write.then(|| {
                        next_value += 1;
                        next_value
                    });
                    model.touch(pid, region, page, value);
                    let got = kernel.access(pid, va(region, page), value);
                    prop_assert_eq!(got, model.read(pid, region, page));
                }
                Op::Fork(n) => {
                    let pid = live(&kernel.procs, n);
                    let child = kernel.fork(pid);
                    model.fork(pid);
                    prop_assert_eq!(child, model.procs.len() - 1);
                }
                Op::Exit(n) => {
                    let pid = live(&kernel.procs, n);
                    if kernel.procs.iter().flatten().count() > 1 {
                        kernel.exit(pid);
                        model.exit(pid);
                    }
                }
            }
            check(&mut kernel, &model);
        }
        // Everyone exits: only the page cache is left, and no tables.
        for pid in 0..kernel.procs.len() {
            if kernel.procs[pid].is_some() {
                kernel.exit(pid);
                model.exit(pid);
            }
        }
        prop_assert_eq!(kernel.frames.len(), kernel.page_cache.len());
        prop_assert!(kernel.frames.values().all(|f| f.refs == 1));
        prop_assert!(model.frames.is_empty());
        prop_assert_eq!(kernel.mem.live(), 0);
    }
}
