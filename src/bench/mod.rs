//! `oxmalloc bench`: the side-by-side benchmark suite.
//!
//! Builds the C workloads of `bench/workloads/` with the system compiler,
//! runs each one under oxmalloc, glibc, TCMalloc, jemalloc and mimalloc
//! (`LD_PRELOAD`), interleaved — for every repeat, every workload, every
//! allocator in turn, the order rotating from repeat to repeat — and reports
//! the median wall time, CPU time and peak RSS of each, each as a ratio to
//! the best peer; then counts instructions per malloc/free pair with
//! callgrind. Results: Markdown on standard output and in `results.md`,
//! `results.json` and the chart `bench.svg` in the output directory.
//!
//! - `workloads`: the suite and how it is built;
//! - `allocators`: finding (and installing) the peers;
//! - `measure`: one child, measured;
//! - `callgrind`: instruction counts;
//! - `results`: medians, ratios, gaps; `report`, `json`, `chart`: the outputs;
//! - `machine`: where the figures came from; `progress`: the bar.

mod allocators;
mod callgrind;
mod chart;
mod json;
mod machine;
mod measure;
mod progress;
mod report;
mod results;
mod workloads;

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use allocators::Allocator;
use measure::Outcome;
use progress::Progress;
use results::{Callgrind, CallgrindCase, Cell, Problem, Results, Subject, WorkloadResults};
use workloads::{Built, Workload, SUITE};

/// Options of `oxmalloc bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Smaller sizes and fewer repeats: the whole suite in about a minute
    /// (what CI runs).
    #[arg(long)]
    pub quick: bool,
    /// Runs of every workload under every allocator; medians are reported
    /// [default: 5, with --quick 3].
    #[arg(long, value_name = "N")]
    pub repeats: Option<usize>,
    /// Where results.md, results.json, bench.svg and the built workloads go
    /// [default: bench/ in the target directory this command was built in].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only these workloads (comma-separated; see --list).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = workload_name)]
    pub only: Vec<String>,
    /// Only these allocators (comma-separated: oxmalloc, glibc, tcmalloc,
    /// jemalloc, mimalloc).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = allocators::allocator_name)]
    pub allocators: Vec<String>,
    /// The liboxmalloc.so to measure [default: the one built with this
    /// command].
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,
    /// Install missing peers (Debian packages) with apt-get; needs root.
    #[arg(long)]
    pub install_peers: bool,
    /// Do not count instructions with callgrind.
    #[arg(long)]
    pub no_callgrind: bool,
    /// The C compiler.
    #[arg(long, value_name = "CC", default_value = "cc")]
    pub cc: String,
    /// Kill a run after this many seconds [default: 300, with --quick 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// A run slower than this many seconds is not repeated [default: 30,
    /// with --quick 10].
    #[arg(long, value_name = "SECONDS")]
    pub slow: Option<f64>,
    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    let quick = args.quick;
    if args.list {
        for w in SUITE {
            println!("{:<16} {}", w.name, w.about);
        }
        return Ok(());
    }
    let repeats = args.repeats.unwrap_or(if quick { 3 } else { 5 });
    if repeats == 0 {
        return Err("bench: --repeats must be at least 1".into());
    }
    let timeout = Duration::from_secs(args.timeout.unwrap_or(if quick { 60 } else { 300 }));
    let slow = args.slow.unwrap_or(if quick { 10.0 } else { 30.0 });
    let suite = select(&args.only)?;
    let out = args.out.clone().unwrap_or_else(default_out);
    fs::create_dir_all(&out).map_err(|e| format!("bench: cannot create {}: {e}", out.display()))?;
    let lib = match &args.lib {
        Some(l) => l.clone(),
        None => crate::library::find(None, crate::library::LIB_NAME)?,
    };
    let lib = lib
        .canonicalize()
        .map_err(|e| format!("bench: {}: {e}", lib.display()))?;
    let found = allocators::find(lib, &args.allocators, args.install_peers, |m| {
        eprintln!("bench: {m}")
    })
    .map_err(|e| format!("bench: {e}"))?;
    for m in &found.missing {
        eprintln!("bench: {} is missing: {}", m.name, m.reason);
    }
    let mut machine = machine::Machine::describe(&args.cc);
    let counting = !args.no_callgrind && callgrind::available();
    let cases = if counting {
        callgrind::cases(quick)
    } else {
        &[]
    };

    let runs: usize = suite
        .iter()
        .map(|w| subjects_of(w, &found.present).count())
        .sum::<usize>()
        * repeats;
    let mut progress = Progress::new(1 + runs + cases.len() * found.present.len());
    let built = workloads::build(&out.join("bin"), &args.cc, |file| {
        progress.start(&format!("compiling {file}"))
    })
    .map_err(|e| format!("bench: {e}"))?;
    progress.finish("build", &format!("{} C programs", workloads::c_sources()));

    let mut results = measure_all(
        &suite,
        &found.present,
        &built,
        quick,
        repeats,
        timeout,
        slow,
        &mut progress,
    );
    agree_on_checksums(&mut results);
    let callgrind = if counting {
        Callgrind::Counted(count_all(cases, &found.present, &built, &mut progress))
    } else if args.no_callgrind {
        Callgrind::Skipped("--no-callgrind".into())
    } else {
        Callgrind::Skipped("valgrind not found (install the Debian package valgrind)".into())
    };
    progress.close();
    machine.finish();

    let results = Results {
        command: command_line(),
        quick,
        repeats,
        machine,
        subjects: found
            .present
            .iter()
            .map(|a| Subject {
                name: a.name,
                version: a.version.clone(),
                library: a.preload.as_ref().map(|p| p.display().to_string()),
                peer: a.peer,
            })
            .collect(),
        missing: found.missing,
        workloads: results,
        callgrind,
    };
    let md = report::markdown(&results);
    let json = serde_json::to_string_pretty(&json::json(&results)).map_err(|e| e.to_string())?;
    let svg = chart::svg(&results);
    for (name, text) in [
        ("results.md", &md),
        ("results.json", &json),
        ("bench.svg", &svg),
    ] {
        let path = out.join(name);
        fs::write(&path, text)
            .map_err(|e| format!("bench: cannot write {}: {e}", path.display()))?;
    }
    print!("{md}");
    eprintln!(
        "bench: wrote {} (results.md, results.json, bench.svg)",
        out.display()
    );
    Ok(())
}

/// `--only`'s values: names of the suite (a usage error otherwise).
fn workload_name(name: &str) -> Result<String, String> {
    if SUITE.iter().any(|w| w.name == name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "unknown workload {name:?} (see `oxmalloc bench --list`)"
        ))
    }
}

/// The workloads named in `only` (all when empty), in suite order; a
/// variant brings its base along, which it is compared with.
fn select(only: &[String]) -> Result<Vec<&'static Workload>, String> {
    for name in only {
        workload_name(name)?;
    }
    let named = |w: &Workload| only.is_empty() || only.iter().any(|n| n == w.name);
    let wanted = |w: &Workload| {
        named(w)
            || SUITE
                .iter()
                .any(|v| v.oxmalloc_vs == Some(w.name) && named(v))
    };
    Ok(SUITE.iter().filter(|w| wanted(w)).collect())
}

/// Next to the target directory this executable was built in
/// (`target/bench`), else in the temporary directory.
fn default_out() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.to_path_buf()))
        .filter(|t| t.join("CACHEDIR.TAG").is_file());
    match target {
        Some(t) => t.join("bench"),
        None => std::env::temp_dir().join("oxmalloc-bench"),
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("oxmalloc {}", args.join(" "))
}

/// The allocators that run `w`: all, or oxmalloc alone for its variants.
fn subjects_of<'a>(w: &Workload, all: &'a [Allocator]) -> impl Iterator<Item = &'a Allocator> {
    let only_ox = w.oxmalloc_vs.is_some();
    all.iter().filter(move |a| !only_ox || a.name == "oxmalloc")
}

#[allow(clippy::too_many_arguments)]
fn measure_all(
    suite: &[&'static Workload],
    present: &[Allocator],
    built: &Built,
    quick: bool,
    repeats: usize,
    timeout: Duration,
    slow: f64,
    progress: &mut Progress,
) -> Vec<WorkloadResults> {
    let python = workloads::have_python();
    let mut results: Vec<WorkloadResults> = suite
        .iter()
        .map(|&w| WorkloadResults {
            workload: w,
            cells: subjects_of(w, present)
                .map(|a| {
                    let problem = (w.source.is_python() && !python)
                        .then(|| Problem::Unavailable("python3 not found".into()));
                    (
                        a.name,
                        Cell {
                            problem,
                            ..Cell::default()
                        },
                    )
                })
                .collect(),
        })
        .collect();
    let mut too_slow: HashSet<(&str, &str)> = HashSet::new();
    for rep in 0..repeats {
        for wr in &mut results {
            let w = wr.workload;
            let order: Vec<&Allocator> = subjects_of(w, present).collect();
            for k in 0..order.len() {
                let a = order[(k + rep) % order.len()];
                let what = format!("{} on {} (repeat {}/{repeats})", w.name, a.name, rep + 1);
                let Some((_, cell)) = wr.cells.iter_mut().find(|(n, _)| *n == a.name) else {
                    continue;
                };
                if cell.problem.is_some() {
                    progress.finish(&what, "skipped");
                    continue;
                }
                if too_slow.contains(&(w.name, a.name)) {
                    cell.skipped += 1;
                    progress.finish(&what, "skipped (slow)");
                    continue;
                }
                progress.start(&what);
                let outcome = measure::run(built.command(w, quick), a.preload.as_deref(), timeout);
                let said = match outcome {
                    Outcome::Done(s) => {
                        let said = format!(
                            "{}, {:.1} MiB",
                            results::format_seconds(s.wall_s),
                            s.peak_rss_kib / 1024.0
                        );
                        if s.wall_s > slow {
                            too_slow.insert((w.name, a.name));
                        }
                        cell.samples.push(s);
                        said
                    }
                    Outcome::Unavailable(why) => {
                        cell.problem = Some(Problem::Unavailable(why.clone()));
                        why
                    }
                    Outcome::Failed(why) => {
                        progress.note(&format!("bench: {what} failed: {why}"));
                        cell.problem = Some(Problem::Failed(why.clone()));
                        format!("FAILED: {why}")
                    }
                };
                progress.finish(&what, &said);
            }
        }
    }
    results
}

/// A workload that prints `checksum=` computes the same value under every
/// correct allocator: a run that differs from the most common value failed.
fn agree_on_checksums(results: &mut [WorkloadResults]) {
    for wr in results {
        let sums: Vec<f64> = wr
            .cells
            .iter()
            .flat_map(|(_, c)| c.samples.iter())
            .filter_map(|s| s.reported.get("checksum").copied())
            .collect();
        let Some(&common) = sums
            .iter()
            .max_by_key(|v| sums.iter().filter(|w| w == v).count())
        else {
            continue;
        };
        for (_, c) in &mut wr.cells {
            let bad = c
                .samples
                .iter()
                .filter_map(|s| s.reported.get("checksum"))
                .find(|&&v| v != common);
            if let Some(v) = bad {
                c.problem = Some(Problem::Failed(format!(
                    "checksum {v} differs from the other runs' {common}"
                )));
            }
        }
    }
}

fn count_all(
    cases: &'static [callgrind::Case],
    present: &[Allocator],
    built: &Built,
    progress: &mut Progress,
) -> Vec<CallgrindCase> {
    cases
        .iter()
        .map(|case| CallgrindCase {
            name: case.name,
            counts: present
                .iter()
                .map(|a| {
                    let what = format!("callgrind {} on {}", case.name, a.name);
                    progress.start(&what);
                    let c = callgrind::count(built, a, case);
                    let said = match &c {
                        Ok(n) => format!("{n:.1} instructions per pair"),
                        Err(e) => format!("FAILED: {e}"),
                    };
                    progress.finish(&what, &said);
                    (a.name, c)
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_brings_its_base() {
        let names = |only: &[&str]| {
            let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
            select(&only)
                .unwrap()
                .iter()
                .map(|w| w.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["region-heap"]), ["region-os", "region-heap"]);
        assert_eq!(names(&["larson", "ring"]), ["larson", "ring"]);
        assert_eq!(names(&[]).len(), SUITE.len());
        assert!(select(&["nope".into()]).is_err());
    }

    #[test]
    fn differing_checksums_fail_the_odd_run() {
        let mut r = results::tests::results(vec![
            ("oxmalloc", vec![results::tests::sample(1.0, 1.0)]),
            ("glibc", vec![results::tests::sample(1.0, 1.0)]),
            ("mimalloc", vec![results::tests::sample(1.0, 1.0)]),
        ]);
        let sums = [7.0, 7.0, 8.0];
        for ((_, c), v) in r.workloads[0].cells.iter_mut().zip(sums) {
            c.samples[0].reported.insert("checksum".into(), v);
        }
        agree_on_checksums(&mut r.workloads);
        let failed: Vec<&str> = r.workloads[0]
            .cells
            .iter()
            .filter(|(_, c)| c.problem.is_some())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(failed, ["mimalloc"]);
    }
}
