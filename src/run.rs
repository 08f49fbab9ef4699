//! `oxmalloc run [OPTIONS] PROGRAM ARGS...`: runs a program on oxmalloc by
//! preloading `liboxmalloc.so` (see `library.rs` for where it is found),
//! waits for it and exits as it did.
//!
//! The reports and the timeline are written by the library inside each
//! process, as the environment variables this command sets ask (the README's
//! table lists them): `MALLOCSTATS` and `OXMALLOC_STATS_CHILDREN` for the
//! report on standard error, `OXMALLOC_STATS_DIR` for one JSON file per
//! process, `OXMALLOC_TIMELINE` and `OXMALLOC_TIMELINE_MS` for the sampler,
//! and `OXMALLOC_PARENT_PID` (this command's pid) so that the library knows
//! the process this command started, the *main* one, from the others the
//! program starts in turn. After the program exits, this command draws the
//! timeline.

use crate::library;
use crate::timeline;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

/// Run a program on liboxmalloc.so (LD_PRELOAD), with the allocator's
/// reports at its exit and a memory timeline.
///
/// Every process of the program that keeps the environment (programs it
/// starts, forked copies) runs on oxmalloc too and can report.
#[derive(clap::Args)]
#[command(
    after_help = "`--stats` without a level is level 1; `--stats 2`, `--stats=2` and `--stats json` \
                  choose one. `--` before PROGRAM is optional.\n\
                  Examples:\n  \
                  oxmalloc run --stats python3 script.py\n  \
                  oxmalloc run --stats 2 --json reports/ make -j2\n  \
                  oxmalloc run --timeline memory.svg ./server --port 8080"
)]
pub struct RunArgs {
    /// Print the allocator report on standard error when the program exits:
    /// 1 the summary, 2 the details, json one line of JSON.
    #[arg(
        long,
        value_name = "LEVEL",
        num_args = 0..=1,
        default_missing_value = "1",
        value_parser = ["1", "2", "json"],
    )]
    stats: Option<String>,
    /// With --stats, what the other processes the program starts print:
    /// the whole report, one summary line each, or nothing. The program
    /// itself always prints the whole report.
    #[arg(long, value_name = "WHAT", default_value = "summary", value_parser = ["full", "summary", "none"])]
    children: String,
    /// Write the JSON report of every process into DIR (created if missing),
    /// as DIR/NAME.PID.json.
    #[arg(long, value_name = "DIR")]
    json: Option<PathBuf>,
    /// Sample the program's memory every few milliseconds and write the
    /// timeline to FILE when it exits: FILE.svg a chart, FILE.json the
    /// samples.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// Milliseconds between two samples of the timeline.
    #[arg(long, value_name = "MS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    timeline_ms: u64,
    /// Preload the hardened build, liboxmalloc-hardened.so: double frees,
    /// writes after free, overflows past a block's end and wrong sizes given
    /// to sized frees stop the program with a message (see docs/MISUSE.md).
    #[arg(long)]
    hardened: bool,
    /// The library to preload (default: $OXMALLOC_LIB, or the one built or
    /// installed with this command).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// The program to run.
    #[arg(value_name = "PROGRAM")]
    program: OsString,
    /// Its arguments.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<OsString>,
}

/// `--stats` takes an optional level, so in `oxmalloc run --stats ls -l` a
/// parser would take `ls` for a level. Before parsing, a bare `--stats`
/// among `run`'s options whose next word does not look like a level (a
/// number or `json`, which the parser then checks) is spelled `--stats=1`:
/// that word is the program. Which options take a value is asked from
/// [`RunArgs`]' own definition.
pub fn spell_bare_stats(args: &mut [OsString]) {
    use clap::Args;
    if args.get(1).is_none_or(|a| a != "run") {
        return;
    }
    let cmd = RunArgs::augment_args(clap::Command::new("run"));
    let takes_value = |name: &str| {
        cmd.get_arguments()
            .any(|a| a.get_long() == Some(name) && a.get_action().takes_values())
    };
    let mut i = 2;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a.strip_prefix("--") {
            Some("stats") => {
                let level = args.get(i + 1).and_then(|v| v.to_str()).is_some_and(|v| {
                    v.eq_ignore_ascii_case("json")
                        || !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
                });
                if !level {
                    args[i] = "--stats=1".into();
                }
                i += 1 + level as usize;
            }
            Some(name) if !name.is_empty() && !name.contains('=') && takes_value(name) => i += 2,
            // An option without a value (or with `=`), or a short one.
            Some(name) if !name.is_empty() => i += 1,
            _ if a.starts_with('-') && a != "-" => i += 1,
            // `--`, or the program.
            _ => return,
        }
    }
}

/// Runs the program; its exit status becomes ours (a program killed by a
/// signal kills this command with the same signal).
pub fn run(a: RunArgs) -> Result<ExitCode, String> {
    let name = if a.hardened {
        library::HARDENED_NAME
    } else {
        library::LIB_NAME
    };
    let lib = library::find(a.lib.as_deref(), name).map_err(|e| format!("run: {e}"))?;
    let timeline_format = match &a.timeline {
        Some(t) => Some(timeline::Format::of(t).map_err(|e| format!("run: {e}"))?),
        None => None,
    };
    let mut cmd = Command::new(&a.program);
    cmd.args(&a.args)
        .env("LD_PRELOAD", preload_value(&lib))
        .env("OXMALLOC_PARENT_PID", std::process::id().to_string());
    if let Some(level) = &a.stats {
        cmd.env("MALLOCSTATS", level)
            .env("OXMALLOC_STATS_CHILDREN", &a.children);
    }
    if let Some(dir) = &a.json {
        std::fs::create_dir_all(dir).map_err(|e| format!("run: {}: {e}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("run: {}: {e}", dir.display()))?;
        cmd.env("OXMALLOC_STATS_DIR", dir);
    }
    let samples = timeline_format.map(|_| SampleFile::new());
    if let Some(f) = &samples {
        cmd.env("OXMALLOC_TIMELINE", &f.0)
            .env("OXMALLOC_TIMELINE_MS", a.timeline_ms.to_string());
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("run: cannot run {}: {e}", Path::new(&a.program).display()))?;
    // Ctrl-C and Ctrl-\ reach the program (same process group); this
    // command stays to draw the timeline and pass the status on.
    let ignored = IgnoreTerminalSignals::new();
    let status = child.wait().map_err(|e| format!("run: waiting: {e}"))?;
    drop(ignored);
    if let (Some(out), Some(format), Some(f)) = (&a.timeline, timeline_format, &samples) {
        let t = timeline::Timeline::read(&f.0, child.id(), a.timeline_ms)
            .map_err(|e| format!("run: timeline: {e}"))?;
        let program = Path::new(&a.program).display().to_string();
        t.write(out, format, &program)
            .map_err(|e| format!("run: timeline: {}: {e}", out.display()))?;
        eprintln!(
            "oxmalloc: timeline of {} ({} samples over {:.2} s) in {}",
            program,
            t.samples.len(),
            t.duration_ms() / 1000.0,
            out.display()
        );
    }
    Ok(exit_as(status))
}

/// `LD_PRELOAD` with the library first, keeping what was already preloaded.
fn preload_value(lib: &Path) -> OsString {
    let mut v = lib.as_os_str().to_owned();
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
        v.push(":");
        v.push(old);
    }
    v
}

/// The file the sampler appends to, removed when done.
struct SampleFile(PathBuf);

impl SampleFile {
    fn new() -> Self {
        let name = format!("oxmalloc-timeline-{}.txt", std::process::id());
        let p = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&p);
        Self(p)
    }
}

impl Drop for SampleFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// SIGINT and SIGQUIT ignored while it lives (as `system(3)` does while it
/// waits).
struct IgnoreTerminalSignals([libc::sighandler_t; 2]);

const TERMINAL_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGQUIT];

impl IgnoreTerminalSignals {
    fn new() -> Self {
        // SAFETY: SIG_IGN is a valid disposition for these signals.
        Self(TERMINAL_SIGNALS.map(|s| unsafe { libc::signal(s, libc::SIG_IGN) }))
    }
}

impl Drop for IgnoreTerminalSignals {
    fn drop(&mut self) {
        for (s, old) in TERMINAL_SIGNALS.into_iter().zip(self.0) {
            // SAFETY: restoring the disposition `signal` returned.
            unsafe { libc::signal(s, old) };
        }
    }
}

/// Our exit status for the program's: the same code, or death by the same
/// signal (128 + the signal if that fails).
fn exit_as(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitCode::from(code as u8);
    }
    let sig = status.signal().unwrap_or(0);
    if sig != 0 {
        // SAFETY: the default disposition, then the signal to ourselves.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
    ExitCode::from(128u8.wrapping_add(sig as u8))
}
