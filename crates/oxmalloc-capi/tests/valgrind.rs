//! The C test programs and a multi-threaded stress run
//! (`tests/c/mt_stress.c`) linked against liboxmalloc.so, under valgrind's
//! memcheck with `--soname-synonyms=somalloc=no-such-library.so`; no error
//! may be reported inside oxmalloc (an error with a frame of liboxmalloc
//! among the top three of its stack).
//!
//! # Which mode this is
//!
//! Memcheck replaces the malloc family (with its own allocator, which tracks
//! every block) in libc *and, by default, in any library that exports
//! them*: a plain `valgrind prog` runs valgrind's malloc, not oxmalloc's.
//! `--soname-synonyms=somalloc=PATTERN` narrows that to libc and the
//! libraries whose soname matches PATTERN; a pattern that matches no
//! library (not `liboxmalloc*`, which matches the soname `liboxmalloc.so.0`)
//! leaves oxmalloc's own code serving every allocation, on valgrind's
//! simulated CPU. The stress program prints which allocator serves it, and
//! the test checks that it is oxmalloc with the flag and valgrind's without.
//!
//! So memcheck checks **oxmalloc's own memory accesses**: reads and writes
//! outside what is mapped (its metadata, pagemap, span records, thread
//! caches), uses of uninitialised values in its code (stack variables,
//! padding, `MaybeUninit`), overlapping `memcpy` in `realloc`, and bad
//! arguments to the system calls it makes (`mmap`, `madvise`, `write` of
//! its reports). It does not know oxmalloc's blocks, so it cannot report
//! the *program's* heap errors (use after free, leaks): for that, run
//! without the flag and memcheck replaces oxmalloc with its own allocator.
//!
//! The short form (every `cargo test`) runs the quick programs and the
//! stress program with 4 threads × 100,000 operations, about 30 s in all;
//! the long form (`scripts/long-tests.sh`) adds the alignment sweep, the
//! fork test and 4 × 1,000,000 stress operations.

mod support;

use std::path::Path;
use std::process::Command;

const SYNONYM: &str = "--soname-synonyms=somalloc=no-such-library.so";

/// One error of memcheck's XML output: its kind and the objects of its top
/// frames.
struct MemcheckError {
    kind: String,
    text: String,
    top_objects: Vec<String>,
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    s.split(open)
        .skip(1)
        .filter_map(|rest| rest.split(close).next())
        .collect()
}

fn parse_errors(xml: &str) -> Vec<MemcheckError> {
    between(xml, "<error>", "</error>")
        .into_iter()
        .map(|e| MemcheckError {
            kind: between(e, "<kind>", "</kind>")
                .first()
                .unwrap_or(&"?")
                .to_string(),
            text: e.to_string(),
            top_objects: between(e, "<frame>", "</frame>")
                .into_iter()
                .take(3)
                .map(|f| {
                    between(f, "<obj>", "</obj>")
                        .first()
                        .unwrap_or(&"")
                        .to_string()
                })
                .collect(),
        })
        .collect()
}

/// Runs `prog args` under memcheck (with `flags`): the program's standard
/// output and the errors memcheck reported inside oxmalloc and elsewhere.
fn memcheck_errors(
    prog: &Path,
    args: &[&str],
    flags: &[&str],
) -> (String, Vec<MemcheckError>, Vec<MemcheckError>) {
    let dir = support::scratch("valgrind");
    let xml = dir.join("memcheck.xml");
    let out = support::check(
        Command::new("valgrind")
            .args(["--tool=memcheck", "-q", "--error-exitcode=0", "--xml=yes"])
            .arg(format!("--xml-file={}", xml.display()))
            .args(flags)
            .arg(prog)
            .args(args),
    );
    let text = std::fs::read_to_string(&xml).expect("memcheck's XML output");
    let (ours, others) = parse_errors(&text)
        .into_iter()
        .partition(|e| e.top_objects.iter().any(|o| o.contains("liboxmalloc")));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        ours,
        others,
    )
}

/// [`memcheck_errors`] that fails on an error inside oxmalloc (and lists
/// the others); returns the program's standard output.
fn memcheck(prog: &Path, args: &[&str], flags: &[&str]) -> String {
    let (stdout, ours, others) = memcheck_errors(prog, args, flags);
    for e in &others {
        eprintln!(
            "{}: memcheck error outside oxmalloc: {}",
            prog.display(),
            e.kind
        );
    }
    assert!(
        ours.is_empty(),
        "{}: {} memcheck error(s) inside oxmalloc:\n{}",
        prog.display(),
        ours.len(),
        ours.iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    stdout
}

/// The programs of the short form: (source, arguments).
const SHORT: &[(&str, &[&str])] = &[
    ("c_api.c", &[]),
    ("glibc_semantics.c", &[]),
    ("heaps.c", &[]),
    ("json_report.c", &[]),
    ("thread_exit.c", &[]),
    ("operators.cc", &[]),
    ("mt_stress.c", &["4", "100000"]),
];

/// What the long form adds.
const LONG: &[(&str, &[&str])] = &[
    ("alignment.c", &[]),
    ("fork.c", &[]),
    ("mt_stress.c", &["4", "1000000"]),
];

fn run_all(programs: &[(&str, &[&str])]) {
    support::ensure_tool("valgrind", "valgrind");
    for &(source, args) in programs {
        let prog = support::compile_linked(source);
        let stdout = memcheck(&prog, args, &[SYNONYM]);
        assert!(
            stdout.trim_end().ends_with("ok"),
            "{source} did not finish under memcheck:\n{stdout}"
        );
        if source == "mt_stress.c" {
            assert!(
                stdout.contains("served by oxmalloc: yes"),
                "with {SYNONYM}, valgrind replaced oxmalloc: nothing of it was tested\n{stdout}"
            );
        }
    }
}

#[test]
fn memcheck_finds_no_error_inside_oxmalloc() {
    run_all(SHORT);
}

#[test]
fn without_the_synonym_valgrind_replaces_the_allocator() {
    support::ensure_tool("valgrind", "valgrind");
    let prog = support::compile_linked("mt_stress.c");
    let stdout = memcheck(&prog, &["2", "1000"], &[]);
    assert!(stdout.contains("served by oxmalloc: no"), "{stdout}");
}

/// The test bites: a program handing malloc an uninitialised size gets an
/// error reported inside oxmalloc (the branch on the size), and it is
/// recognised as one.
#[test]
fn an_error_inside_oxmalloc_is_recognised() {
    support::ensure_tool("valgrind", "valgrind");
    let prog = support::compile_linked("uninit_size.c");
    let (stdout, ours, _) = memcheck_errors(&prog, &[], &[SYNONYM]);
    assert!(stdout.contains("allocated"), "{stdout}");
    assert!(
        ours.iter().any(|e| e.kind == "UninitCondition"),
        "no uninitialised-value error inside oxmalloc: {:?}",
        ours.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
}

#[test]
#[ignore = "long form: scripts/long-tests.sh"]
fn memcheck_long_form() {
    run_all(LONG);
}
