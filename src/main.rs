//! The `oxmalloc` command.
//!
//! - `oxmalloc` or `oxmalloc demo`: a multi-threaded workload on `OxMalloc`
//!   as the global allocator, then a short report.
//! - `oxmalloc stats`: this process's allocator report.
//! - `oxmalloc run [--stats] -- PROGRAM ARGS...`: runs a program on the C library (`run.rs`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

mod demo;
mod run;

const USAGE: &str = "usage: oxmalloc [demo [--threads N] [--rounds N]] | stats | help\n       oxmalloc run [--stats[=1|2]] [--lib PATH] -- PROGRAM ARGS...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("demo", &[][..]),
    };
    let result = match cmd {
        "demo" => demo::run(rest),
        "run" => run::run(rest),
        "stats" => {
            print_report();
            Ok(())
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxmalloc: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints the short report of this process's allocator.
fn print_report() {
    let s = oxmalloc::stats();
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let rows: BTreeMap<&str, String> = [
        (
            "1 bytes in use by the program",
            format!("{:>10.2} MiB", mib(s.allocated_bytes)),
        ),
        ("2 heap size", format!("{:>10.2} MiB", mib(s.heap_size))),
        (
            "3 page heap free",
            format!("{:>10.2} MiB", mib(s.pageheap_free_bytes)),
        ),
        (
            "4 released to the OS",
            format!("{:>10.2} MiB", mib(s.pageheap_unmapped_bytes)),
        ),
        (
            "5 central + transfer caches",
            format!(
                "{:>10.2} MiB",
                mib(s.central_cache_free_bytes + s.transfer_cache_free_bytes)
            ),
        ),
        (
            "6 thread caches",
            format!(
                "{:>10.2} MiB ({} threads)",
                mib(s.thread_cache_free_bytes),
                s.thread_cache_count
            ),
        ),
        (
            "7 spans in use / free",
            format!("{:>10} / {}", s.spans_in_use, s.free_spans),
        ),
        ("8 metadata", format!("{:>10.2} MiB", mib(s.metadata_bytes))),
    ]
    .into_iter()
    .collect();
    for (k, v) in rows {
        println!("{:<32}{v}", &k[2..]);
    }
}

/// Times a closure, returning its result and the seconds it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64())
}
