//! Failure injection, like Linux's `failslab` and `fail_page_alloc`: fail
//! every Nth, or a random 1 in N, of the heap allocations (`slab`) or frame
//! allocations (`page`) that are allowed to fail, optionally at most M times,
//! so tests can drive every error path.
//!
//! Only allocations whose caller handles failure are ever failed: for the
//! heap, those made through the fallible helpers in [`super::kalloc`] (Rust's
//! infallible `Vec`/`Box`/`String` would abort, so they are never chosen)
//! and the compressed swap device's buffer for a page being written out
//! ([`super::kalloc::injectable`]); for frames, the user-driven allocation
//! paths that call [`should_fail_page`] (user pages, page-cache pages, page
//! tables, pages swapped in and read ahead).
//!
//! Configuration comes from the shell (`failinject ...`) or at boot from
//! `/etc/cmdline` in the ramdisk (`failslab=every:7 fail_page_alloc=random:50,seed:3`),
//! read before the first user process starts.
//!
//! Nothing here allocates, and the state is only touched with interrupts
//! off, so the hooks may be called from inside the allocators' locks.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::sync::IrqMutex;

/// Which allocations a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The kernel heap (fallible `kalloc` allocations).
    Slab,
    /// Physical frames on user-driven paths.
    Page,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Slab => "failslab",
            Target::Page => "fail_page_alloc",
        }
    }
}

/// When to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// Fail the Nth, 2Nth, 3Nth, ... eligible allocation.
    Every(u64),
    /// Fail each eligible allocation with probability 1/N (seeded PRNG).
    Random {
        one_in: u64,
        seed: u64,
    },
}

/// A complete setting for one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub mode: Mode,
    /// Fail at most this many times (`None`: no limit).
    pub times: Option<u64>,
}

impl Rule {
    pub const OFF: Rule = Rule {
        mode: Mode::Off,
        times: None,
    };
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.mode {
            Mode::Off => return write!(f, "off"),
            Mode::Every(n) => write!(f, "every {n}")?,
            Mode::Random { one_in, seed } => write!(f, "random {one_in} seed {seed}")?,
        }
        if let Some(times) = self.times {
            write!(f, " times {times}")?;
        }
        Ok(())
    }
}

/// Counters for one target since it was last configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Eligible allocations seen while a rule was on.
    pub calls: u64,
    /// How many of them were failed.
    pub failed: u64,
}

#[derive(Clone, Copy)]
struct Injector {
    rule: Rule,
    stats: Stats,
    rng: u64,
}

impl Injector {
    const fn new() -> Injector {
        Injector {
            rule: Rule::OFF,
            stats: Stats {
                calls: 0,
                failed: 0,
            },
            rng: 0,
        }
    }

    fn set(&mut self, rule: Rule) {
        self.rule = rule;
        if rule.mode == Mode::Off {
            // Turning off keeps the counts readable.
            return;
        }
        self.stats = Stats::default();
        self.rng = match rule.mode {
            // xorshift needs a non-zero state; mix the seed so small seeds
            // give unrelated sequences.
            Mode::Random { seed, .. } => (seed ^ 0x9e37_79b9_7f4a_7c15).max(1),
            _ => 1,
        };
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn should_fail(&mut self) -> bool {
        if self.rule.mode == Mode::Off {
            return false;
        }
        if self.rule.times.is_some_and(|t| self.stats.failed >= t) {
            return false;
        }
        self.stats.calls += 1;
        let fail = match self.rule.mode {
            Mode::Off => false,
            Mode::Every(n) => n > 0 && self.stats.calls.is_multiple_of(n),
            Mode::Random { one_in, .. } => one_in > 0 && self.next_random().is_multiple_of(one_in),
        };
        if fail {
            self.stats.failed += 1;
        }
        fail
    }
}

struct State {
    slab: Injector,
    page: Injector,
}

static STATE: IrqMutex<State> = IrqMutex::new(State {
    slab: Injector::new(),
    page: Injector::new(),
});
/// Fast path: whether any rule is on (the hooks skip the lock otherwise).
static SLAB_ON: AtomicBool = AtomicBool::new(false);
static PAGE_ON: AtomicBool = AtomicBool::new(false);

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(f)
}

fn flag(target: Target) -> &'static AtomicBool {
    match target {
        Target::Slab => &SLAB_ON,
        Target::Page => &PAGE_ON,
    }
}

/// Sets the rule for `target` and resets its counters (turning it off keeps
/// them).
pub fn configure(target: Target, rule: Rule) {
    with(|s| {
        match target {
            Target::Slab => s.slab.set(rule),
            Target::Page => s.page.set(rule),
        }
        flag(target).store(rule.mode != Mode::Off, Ordering::SeqCst);
    })
}

/// Turns `rule` on for `target` again after [`off`], keeping the counters
/// (and the random sequence) where they were.
pub fn resume(target: Target, rule: Rule) {
    with(|s| {
        match target {
            Target::Slab => s.slab.rule = rule,
            Target::Page => s.page.rule = rule,
        }
        flag(target).store(rule.mode != Mode::Off, Ordering::SeqCst);
    })
}

/// Turns both targets off (their counters stay readable).
pub fn off() {
    with(|s| {
        s.slab.rule = Rule::OFF;
        s.page.rule = Rule::OFF;
        SLAB_ON.store(false, Ordering::SeqCst);
        PAGE_ON.store(false, Ordering::SeqCst);
    })
}

/// The rule and counters of `target`.
pub fn status(target: Target) -> (Rule, Stats) {
    with(|s| match target {
        Target::Slab => (s.slab.rule, s.slab.stats),
        Target::Page => (s.page.rule, s.page.stats),
    })
}

/// Whether the heap allocation being made (one the caller handles failing)
/// must fail now. Called by the heap's `GlobalAlloc` for `kalloc`
/// allocations only.
pub fn should_fail_slab() -> bool {
    SLAB_ON.load(Ordering::Relaxed) && with(|s| s.slab.should_fail())
}

/// Whether the frame allocation being made on a user-driven path must fail
/// now ("no frame"). For the frame allocator; never allocates.
pub fn should_fail_page() -> bool {
    PAGE_ON.load(Ordering::Relaxed) && with(|s| s.page.should_fail())
}

/// Why a setting was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// `123` or `0x7b`.
fn parse_u64(word: &str) -> Option<u64> {
    match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

fn number(word: Option<&str>, what: &'static str) -> Result<u64, ParseError> {
    word.and_then(parse_u64).ok_or(ParseError(what))
}

/// Parses a rule from words: `off`, `every N`, `random N [seed S]`, each
/// optionally followed by `times M` (in any order after the mode).
pub fn parse_rule<'a>(mut words: impl Iterator<Item = &'a str>) -> Result<Rule, ParseError> {
    let mode = match words.next() {
        Some("off") => Mode::Off,
        Some("every") => {
            let n = number(words.next(), "`every` needs a number N >= 1")?;
            if n == 0 {
                return Err(ParseError("`every` needs a number N >= 1"));
            }
            Mode::Every(n)
        }
        Some("random") => {
            let n = number(words.next(), "`random` needs a number N >= 1")?;
            if n == 0 {
                return Err(ParseError("`random` needs a number N >= 1"));
            }
            Mode::Random { one_in: n, seed: 1 }
        }
        Some(_) => return Err(ParseError("expected `off`, `every N` or `random N`")),
        None => return Err(ParseError("missing `off`, `every N` or `random N`")),
    };
    let mut rule = Rule { mode, times: None };
    while let Some(word) = words.next() {
        match (word, &mut rule.mode) {
            ("seed", Mode::Random { seed, .. }) => {
                *seed = number(words.next(), "`seed` needs a number")?;
            }
            ("times", _) => {
                rule.times = Some(number(words.next(), "`times` needs a number")?);
            }
            ("seed", _) => return Err(ParseError("`seed` only goes with `random`")),
            _ => {
                return Err(ParseError(
                    "unexpected word (expected `seed S` or `times M`)",
                ))
            }
        }
    }
    if rule.mode == Mode::Off && rule.times.is_some() {
        return Err(ParseError("`off` takes no `times`"));
    }
    Ok(rule)
}

/// The target named `word`: `slab`/`failslab` or `page`/`fail_page_alloc`.
pub fn parse_target(word: &str) -> Option<Target> {
    match word {
        "slab" | "failslab" => Some(Target::Slab),
        "page" | "fail_page_alloc" => Some(Target::Page),
        _ => None,
    }
}

/// Applies a boot command line: whitespace-separated `failslab=SPEC` and
/// `fail_page_alloc=SPEC` words (or the short `slab=`, `page=`), SPEC being
/// a rule with `:` or `,` between its words (`every:7`,
/// `random:50,seed:3,times:100`, `off`). Other words are
/// left for others and ignored; `#` starts a comment to the end of the
/// line. Returns how many settings were applied; a malformed one is logged
/// and skipped.
pub fn apply_cmdline(text: &str) -> usize {
    let mut applied = 0;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split_whitespace() {
            let Some((key, spec)) = word.split_once('=') else {
                continue;
            };
            let Some(target) = parse_target(key) else {
                continue;
            };
            match parse_rule(spec.split([':', ',']).filter(|w| !w.is_empty())) {
                Ok(rule) => {
                    configure(target, rule);
                    log::info!("{}: {rule} (from the boot command line)", target.name());
                    applied += 1;
                }
                Err(e) => log::warn!("boot command line: `{word}`: {e}; ignored"),
            }
        }
    }
    applied
}
