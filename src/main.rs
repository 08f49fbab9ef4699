//! The `oxmalloc` command.
//!
//! - `oxmalloc run [--stats] -- PROGRAM ARGS...`: runs a program on the C
//!   library (`run.rs`).
//! - `oxmalloc` or `oxmalloc demo`: a multi-threaded workload on `OxMalloc`
//!   as the global allocator, then its report (`demo.rs`).

use std::process::ExitCode;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

mod demo;
mod run;

const USAGE: &str = "usage: oxmalloc run [--stats[=1|2]] [--lib PATH] -- PROGRAM ARGS...\n       oxmalloc [demo [--threads N] [--rounds N] [--report text|json]]\n       oxmalloc help";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("demo", &[][..]),
    };
    let result = match cmd {
        "demo" => demo::run(rest),
        "run" => run::run(rest),
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
