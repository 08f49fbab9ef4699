//! `oxmalloc demo`: a multi-threaded workload on oxmalloc, then a report.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

/// The built-in demonstration: worker threads build and free strings, maps
/// and vectors of many sizes, passing half of them to each other, on
/// oxmalloc as the global allocator; then its report.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Worker threads.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = positive)]
    threads: usize,
    /// Rounds per worker.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = positive)]
    rounds: usize,
    /// Print the allocator's full report instead of the short table: text
    /// (level 2) or json (only the JSON report on standard output).
    #[arg(long, value_name = "FORMAT")]
    report: Option<Report>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            threads: 4,
            rounds: 200,
            report: None,
        }
    }
}

/// `--report`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Report {
    Text,
    Json,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("a positive number is needed".into()),
    }
}

/// One worker's share: strings, maps, vectors of many sizes; half of what it
/// builds is sent to the next worker to be freed there.
fn work(
    id: usize,
    rounds: usize,
    tx: mpsc::Sender<Vec<String>>,
    rx: mpsc::Receiver<Vec<String>>,
) -> u64 {
    let mut check = 0u64;
    for r in 0..rounds {
        let words: Vec<String> = (0..500)
            .map(|i| format!("w{id}-{r}-{i}-{}", "x".repeat(i % 64)))
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for w in &words {
            *counts.entry(&w[..w.len().min(6)]).or_default() += 1;
        }
        let tree: BTreeMap<usize, Vec<u8>> = (0..200)
            .map(|i| (i * 7 % 199, vec![i as u8; i * 13 % 4000]))
            .collect();
        let big: Vec<u64> = (0..(r % 16 + 1) * 40_000).map(|x| x as u64).collect();
        check = check
            .wrapping_add(counts.len() as u64)
            .wrapping_add(tree.values().map(|v| v.len() as u64).sum::<u64>())
            .wrapping_add(big.iter().sum::<u64>());
        let _ = tx.send(words);
        if let Ok(theirs) = rx.try_recv() {
            check = check.wrapping_add(theirs.iter().map(|s| s.len() as u64).sum::<u64>());
        }
    }
    drop(tx);
    while let Ok(theirs) = rx.recv() {
        check = check.wrapping_add(theirs.len() as u64);
    }
    check
}

/// Runs the demonstration.
pub fn run(o: DemoArgs) -> Result<(), String> {
    let (mut txs, mut rxs): (Vec<_>, Vec<_>) = (0..o.threads).map(|_| mpsc::channel()).unzip();
    txs.rotate_left(1);
    let start = Instant::now();
    let check = {
        let handles: Vec<_> = txs
            .into_iter()
            .zip(rxs.drain(..))
            .enumerate()
            .map(|(id, (tx, rx))| {
                let rounds = o.rounds;
                thread::spawn(move || work(id, rounds, tx, rx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .fold(0u64, u64::wrapping_add)
    };
    let secs = start.elapsed().as_secs_f64();
    if o.report == Some(Report::Json) {
        // Only the JSON on standard output, for tools to read.
        oxmalloc::release_free_memory();
        let mut s = String::new();
        oxmalloc::write_json(&mut s).map_err(|e| e.to_string())?;
        println!("{s}");
        return Ok(());
    }
    println!(
        "oxmalloc demo: {} threads x {} rounds in {:.3} s (checksum {check:#x})",
        o.threads, o.rounds, secs
    );
    print_summary();
    let released = oxmalloc::release_free_memory();
    println!("release_free_memory() released {:.2} MiB", mib(released));
    if o.report == Some(Report::Text) {
        let mut s = String::new();
        oxmalloc::write_report(&mut s, 2).map_err(|e| e.to_string())?;
        print!("{s}");
    } else {
        print_summary();
    }
    Ok(())
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// The short report: what the program holds, where the rest is.
fn print_summary() {
    let s = oxmalloc::stats();
    let rows = [
        (
            "bytes in use by the program",
            format!("{:>10.2} MiB", mib(s.allocated_bytes)),
        ),
        (
            "peak in spans / peak heap",
            format!(
                "{:>10.2} MiB / {:.2} MiB",
                mib(s.peak_in_use_bytes),
                mib(s.peak_heap_size)
            ),
        ),
        ("heap size", format!("{:>10.2} MiB", mib(s.heap_size))),
        (
            "page heap free",
            format!("{:>10.2} MiB", mib(s.pageheap_free_bytes)),
        ),
        (
            "released to the OS",
            format!("{:>10.2} MiB", mib(s.pageheap_unmapped_bytes)),
        ),
        (
            "central + transfer caches",
            format!(
                "{:>10.2} MiB",
                mib(s.central_cache_free_bytes + s.transfer_cache_free_bytes)
            ),
        ),
        (
            "thread caches",
            format!(
                "{:>10.2} MiB ({} threads)",
                mib(s.thread_cache_free_bytes),
                s.thread_cache_count
            ),
        ),
        (
            "spans in use / free",
            format!("{:>10} / {}", s.spans_in_use, s.free_spans),
        ),
        (
            "metadata written / mapped",
            format!(
                "{:>10.2} MiB / {:.2} MiB",
                mib(s.metadata_bytes),
                mib(s.metadata_mapped_bytes)
            ),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<32}{v}");
    }
}
