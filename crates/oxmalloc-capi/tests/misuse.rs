//! The misuse suite of docs/MISUSE.md against liboxmalloc.so and
//! liboxmalloc-hardened.so: every scenario of `tests/c/misuse.c` and
//! `tests/c/misuse_cxx.cc` runs in a child process with the library
//! preloaded, and its outcome must be the one the table below expects.
//!
//! *Caught* is strict: the child dies of SIGABRT before printing `survived`,
//! and its standard error holds `oxmalloc: fatal:` and one of the addresses
//! the program printed (`addr=` lines). A scenario expected *not caught*
//! must print no `oxmalloc: fatal:` at all (it may survive or crash): when
//! detection improves, this test fails until the table says `Caught`.
//! `scripts/misuse-table.py` runs the same programs under glibc, gperftools,
//! jemalloc and mimalloc for the comparison.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Stops with SIGABRT and a message naming the address.
    Caught,
    /// Not detected (yet): no `oxmalloc: fatal:` message.
    NotCaught,
    /// The control: runs to the end and exits 0.
    Clean,
}
use Expect::*;

/// (program, scenario, expected outcome with the normal build, with the
/// hardened build).
const SCENARIOS: &[(&str, &str, Expect, Expect)] = &[
    ("misuse", "clean", Clean, Clean),
    ("misuse", "double-free", NotCaught, Caught),
    ("misuse", "delayed-double-free", NotCaught, Caught), // segfaults normally
    ("misuse", "interleaved-double-free", NotCaught, Caught),
    ("misuse", "invalid-free", Caught, Caught),
    ("misuse", "stack-free", Caught, Caught),
    ("misuse", "unaligned-free", Caught, Caught),
    ("misuse", "interior-free", Caught, Caught),
    ("misuse", "interior-free-large", Caught, Caught),
    ("misuse", "uaf-write", NotCaught, Caught), // segfaults normally
    ("misuse", "overflow", NotCaught, Caught),
    ("misuse", "wrong-size-free-sized", NotCaught, Caught),
    ("misuse_cxx", "clean", Clean, Clean),
    ("misuse_cxx", "wrong-size-sized-delete", NotCaught, Caught),
];

/// Compiles both programs once into a scratch directory.
fn programs() -> (PathBuf, PathBuf) {
    let dir = support::scratch("misuse");
    let c = support::compile_into(&dir, "misuse.c", "misuse", &["-ldl"]);
    let cxx = support::compile_into(&dir, "misuse_cxx.cc", "misuse_cxx", &[]);
    (c, cxx)
}

/// Runs one scenario with `lib` preloaded and checks its outcome; returns a
/// description of the mismatch, if any.
fn check(lib: &Path, prog: &Path, scenario: &str, expect: Expect) -> Option<String> {
    let out = Command::new(prog)
        .arg(scenario)
        .env("LD_PRELOAD", lib)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", prog.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let survived = stdout.contains(&format!("survived {scenario}"));
    let addrs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("addr="))
        .collect();
    let fatal = stderr.contains("oxmalloc: fatal:");
    let what = format!(
        "{scenario}: {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
    match expect {
        Clean if !(survived && out.status.success()) => Some(format!("the control failed: {what}")),
        Caught if survived => Some(format!("not caught: {what}")),
        Caught if out.status.signal() != Some(libc::SIGABRT) => {
            Some(format!("did not abort: {what}"))
        }
        Caught if !fatal => Some(format!("no `oxmalloc: fatal:` message: {what}")),
        Caught if addrs.is_empty() => Some(format!("the program printed no address: {what}")),
        Caught if !addrs.iter().any(|a| stderr.contains(a)) => {
            Some(format!("the message does not name {addrs:?}: {what}"))
        }
        NotCaught if fatal => Some(format!(
            "detected now (make it `Caught` in the table if the message is right): {what}"
        )),
        _ => None,
    }
}

/// Every scenario against `lib`, each expected outcome picked by `expect`.
fn run_suite(lib: &Path, expect: impl Fn(Expect, Expect) -> Expect) {
    let (c, cxx) = programs();
    let failures: Vec<String> = SCENARIOS
        .iter()
        .filter_map(|&(prog, scenario, normal, hardened)| {
            let p = if prog == "misuse" { &c } else { &cxx };
            check(lib, p, scenario, expect(normal, hardened))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{}: {}",
        lib.display(),
        failures.join("\n")
    );
}

#[test]
fn each_misuse_has_the_expected_outcome() {
    run_suite(&support::library(), |normal, _| normal);
}

#[test]
fn the_hardened_build_catches_every_misuse() {
    run_suite(&support::hardened_library(), |_, hardened| hardened);
}
