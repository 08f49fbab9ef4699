//! The `oxmalloc` command.
//!
//! - `oxmalloc run [--stats] -- PROGRAM ARGS...`: runs a program on the C
//!   library (`run.rs`).
//! - `oxmalloc` or `oxmalloc demo`: a multi-threaded workload on `OxMalloc`
//!   as the global allocator, then its report (`demo.rs`).
//! - `oxmalloc bench [--quick] ...`: the benchmark suite against glibc,
//!   TCMalloc, jemalloc and mimalloc (`bench/`).

use std::process::ExitCode;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

mod bench;
mod demo;
mod run;

const USAGE: &str = "usage: oxmalloc run [--stats[=1|2]] [--lib PATH] -- PROGRAM ARGS...\n       oxmalloc [demo [--threads N] [--rounds N] [--report text|json]]\n       oxmalloc bench [--quick] [--help]\n       oxmalloc help";

/// `oxmalloc bench` and its options.
#[derive(clap::Parser)]
#[command(name = "oxmalloc bench", about = "The side-by-side benchmark suite")]
struct BenchCommand {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("demo", &[][..]),
    };
    let result = match cmd {
        "demo" => demo::run(rest),
        "run" => run::run(rest),
        "bench" => {
            let words = std::iter::once("oxmalloc bench".to_string()).chain(rest.iter().cloned());
            match <BenchCommand as clap::Parser>::try_parse_from(words) {
                Ok(c) => bench::run(c.args),
                Err(e) => e.exit(),
            }
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
