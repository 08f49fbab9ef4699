//! `oxmalloc run [--stats[=1|2]] [--lib PATH] -- PROGRAM ARGS...`: runs a
//! program on oxmalloc by preloading `liboxmalloc.so`; with `--stats`, the
//! allocator report is printed to standard error when it exits (through
//! `MALLOCSTATS`, which the library reads; every process of the program that
//! keeps the environment prints its own).
//!
//! The library is the one built with this command: the command's package
//! depends on `oxmalloc-capi`, so Cargo builds `liboxmalloc.so` into
//! `target/<profile>/deps` next to the executable's directory (and copies it
//! to `target/<profile>` when the library is built as a package of its own).
//! An installed command finds it in `../lib` instead.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The name of the shared library.
const LIB_NAME: &str = "liboxmalloc.so";

/// Parses the arguments after `run` and replaces this process by the program.
/// Returns only on error.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut stats = None;
    let mut lib = None;
    let mut it = args.iter();
    let program = loop {
        let Some(a) = it.next() else {
            return Err("run: missing `-- PROGRAM`".into());
        };
        match a.as_str() {
            "--" => match it.next() {
                Some(p) => break p,
                None => return Err("run: missing PROGRAM after `--`".into()),
            },
            "--stats" | "--stats=1" => stats = Some("1"),
            "--stats=2" => stats = Some("2"),
            "--lib" => match it.next() {
                Some(p) => lib = Some(PathBuf::from(p)),
                None => return Err("run: --lib needs a PATH".into()),
            },
            other => return Err(format!("run: unknown option {other:?}")),
        }
    };
    let lib = match lib {
        Some(l) => l,
        None => find_library()?,
    };
    if !lib.is_file() {
        return Err(format!("run: {} does not exist", lib.display()));
    }
    let lib = lib
        .canonicalize()
        .map_err(|e| format!("run: {}: {e}", lib.display()))?;
    let mut cmd = Command::new(program);
    cmd.args(it).env("LD_PRELOAD", preload_value(&lib));
    if let Some(level) = stats {
        cmd.env("MALLOCSTATS", level);
    }
    let err = cmd.exec();
    Err(format!("run: cannot run {program:?}: {err}"))
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

/// The library built with this executable.
pub fn find_library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("run: cannot locate myself: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    // deps/ first: it is rebuilt with the executable, the copy may be older.
    let candidates = [
        dir.join("deps").join(LIB_NAME),
        dir.join(LIB_NAME),
        dir.join("../lib").join(LIB_NAME),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "run: {LIB_NAME} not found (looked at {}); build it with \
                 `cargo build --release` or pass --lib PATH",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}
