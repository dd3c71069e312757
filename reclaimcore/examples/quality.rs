//! Prints the replacement-quality table: misses per policy and trace, and
//! each policy's misses divided by OPT's (geometric means at the end), in
//! both simulation modes (`sim::Mode`): every hit a touch (the issue's
//! targets apply here), and accessed bits seen only at reclaim (as the
//! kernel sees them). Then Ferrite's summary on the same traces drawn with
//! other seeds.
//!
//! `cargo run --release -p reclaimcore --example quality --target x86_64-unknown-linux-gnu [-- MEMORY_PAGES...]`

use reclaimcore::quality::{geomean, ratio, rows_for, Row};
use reclaimcore::sim::Mode;

/// The other seeds the summary is drawn with (0 is the standard table's).
const SEEDS: [u64; 3] = [10, 20, 30];

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Trace => "every hit a touch",
        Mode::Bits => "accessed bits, seen at reclaim",
    }
}

/// The row where Ferrite does worst against LRU.
fn worst(rows: &[Row]) -> &Row {
    rows.iter()
        .max_by(|a, b| (a.ferrite * b.lru).cmp(&(b.ferrite * a.lru)))
        .expect("traces")
}

fn loop_ratio(rows: &[Row]) -> f64 {
    rows.iter()
        .filter(|r| r.trace.starts_with("loop"))
        .map(|r| r.ferrite as f64 / r.lru as f64)
        .fold(0.0, f64::max)
}

fn table(memory: usize, mode: Mode) {
    let rows = rows_for(memory, mode, 0);
    println!(
        "replacement quality, memory {memory} pages, {}: misses (x OPT)",
        mode_name(mode)
    );
    println!();
    println!("| trace | accesses | OPT | FIFO | LRU | CLOCK | Ferrite | Ferrite / LRU |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let cell = |m: u64| format!("{m} ({:.2})", ratio(m, r.opt));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            r.trace,
            r.accesses,
            r.opt,
            cell(r.fifo),
            cell(r.lru),
            cell(r.clock),
            cell(r.ferrite),
            r.ferrite as f64 / r.lru as f64
        );
    }
    let g = |pick: fn(&Row) -> u64| geomean(&rows, pick);
    println!(
        "| geometric mean | | 1.00 | {:.2} | {:.2} | {:.2} | {:.2} | |",
        g(|r| r.fifo),
        g(|r| r.lru),
        g(|r| r.clock),
        g(|r| r.ferrite)
    );
    let ferrite = g(|r| r.ferrite);
    let worst = worst(&rows);
    let worst_ratio = worst.ferrite as f64 / worst.lru as f64;
    let loops = loop_ratio(&rows);
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!();
    let scope = if mode == Mode::Trace {
        "targets"
    } else {
        "for reference (the targets are for every hit a touch)"
    };
    println!(
        "{scope}: geometric mean <= 1.3 x OPT: {ferrite:.2} {}",
        verdict(ferrite <= 1.3)
    );
    println!(
        "{scope}: never > 1.05 x LRU: worst {worst_ratio:.2} ({}) {}",
        worst.trace,
        verdict(worst.ferrite * 100 <= worst.lru * 105)
    );
    println!(
        "{scope}: loops <= 0.5 x LRU: {loops:.2} {}",
        verdict(loops <= 0.5)
    );
    println!();
}

fn seeds(memory: usize) {
    println!("Ferrite with other seeds, memory {memory} pages");
    println!();
    println!("| mode | seed | geometric mean x OPT | worst x LRU | loops x LRU |");
    println!("|---|---|---|---|---|");
    for mode in [Mode::Trace, Mode::Bits] {
        for seed in SEEDS {
            let rows = rows_for(memory, mode, seed);
            let worst = worst(&rows);
            println!(
                "| {} | {seed} | {:.2} | {:.2} ({}) | {:.2} |",
                mode_name(mode),
                geomean(&rows, |r| r.ferrite),
                worst.ferrite as f64 / worst.lru as f64,
                worst.trace,
                loop_ratio(&rows)
            );
        }
    }
    println!();
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("memory size in pages"))
        .collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    for memory in sizes {
        table(memory, Mode::Trace);
        table(memory, Mode::Bits);
        seeds(memory);
    }
}
