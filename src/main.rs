//! The `oxmalloc` command.
//!
//! - `oxmalloc run [OPTIONS] PROGRAM ARGS...`: runs a program on the C
//!   library, with reports and a memory timeline (`run.rs`, `timeline.rs`).
//! - `oxmalloc` or `oxmalloc demo`: a multi-threaded workload on `OxMalloc`
//!   as the global allocator, then its report (`demo.rs`).
//! - `oxmalloc install --prefix DIR`: installs the library, its header, its
//!   pkg-config file and the command (`install.rs`).
//! - `oxmalloc bench [--quick] ...`: the benchmark suite against glibc,
//!   TCMalloc, jemalloc and mimalloc (`bench/`).
//!
//! Each subcommand's options are a `clap::Args` struct in its own module;
//! `oxmalloc help SUBCOMMAND` or `--help` anywhere shows them.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

mod bench;
mod demo;
mod install;
mod library;
mod run;
mod timeline;

/// oxmalloc: a thread-caching memory allocator with external memory
/// injection. Without a command, runs the demonstration.
#[derive(Parser)]
#[command(name = "oxmalloc", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Demo(demo::DemoArgs),
    Install(install::InstallArgs),
    Bench(bench::BenchArgs),
}

/// Parses the command line; exits with clap's message (status 2) on a usage
/// error, or 0 after `--help` / `--version`.
fn parse() -> Cli {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    run::spell_bare_stats(&mut args);
    Cli::parse_from(args)
}

fn main() -> ExitCode {
    let result = match parse().command {
        Some(Command::Run(a)) => run::run(a),
        Some(Command::Demo(a)) => demo::run(a).map(|()| ExitCode::SUCCESS),
        None => demo::run(demo::DemoArgs::default()).map(|()| ExitCode::SUCCESS),
        Some(Command::Install(a)) => install::run(a).map(|()| ExitCode::SUCCESS),
        Some(Command::Bench(a)) => bench::run(a).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("oxmalloc: {e}");
        ExitCode::FAILURE
    })
}
