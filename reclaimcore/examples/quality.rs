//! Prints the replacement-quality table: misses per policy and trace, and
//! each policy's misses divided by OPT's (geometric means at the end).
//!
//! `cargo run --release -p reclaimcore --example quality --target x86_64-unknown-linux-gnu [-- MEMORY_PAGES...]`

use reclaimcore::quality::{geomean, ratio, rows, Row};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("memory size in pages"))
        .collect();
    let sizes = if sizes.is_empty() { vec![1000] } else { sizes };
    for memory in sizes {
        let rows = rows(memory);
        println!("replacement quality, memory {memory} pages: misses (x OPT)");
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
        let worst = rows
            .iter()
            .max_by(|a, b| (a.ferrite * b.lru).cmp(&(b.ferrite * a.lru)))
            .expect("traces");
        let worst_ratio = worst.ferrite as f64 / worst.lru as f64;
        let loops = rows.iter().filter(|r| r.trace.starts_with("loop"));
        let loop_ratio = loops
            .map(|r| r.ferrite as f64 / r.lru as f64)
            .fold(0.0, f64::max);
        let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
        println!();
        println!(
            "targets: geometric mean <= 1.3 x OPT: {ferrite:.2} {}",
            verdict(ferrite <= 1.3)
        );
        println!(
            "targets: never > 1.05 x LRU: worst {worst_ratio:.2} ({}) {}",
            worst.trace,
            verdict(worst.ferrite * 100 <= worst.lru * 105)
        );
        println!(
            "targets: loops <= 0.5 x LRU: {loop_ratio:.2} {}",
            verdict(loop_ratio <= 0.5)
        );
        println!();
    }
}
