//! The command's parser: `--help` and `--version` on every subcommand,
//! `run PROGRAM ARGS` without `--`, `--stats` with and without a level, and
//! clear errors with status 2 for bad usage.

use std::process::{Command, Output};

fn oxmalloc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
        .args(args)
        .env_remove("MALLOCSTATS")
        .output()
        .expect("run oxmalloc")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version_everywhere() {
    let version = format!("{}\n", env!("CARGO_PKG_VERSION"));
    for sub in [&[][..], &["run"], &["demo"], &["install"]] {
        for flag in ["--help", "-h"] {
            let out = oxmalloc(&[sub, &[flag]].concat());
            assert_eq!(out.status.code(), Some(0), "{sub:?} {flag}");
            let help = text(&out.stdout);
            assert!(help.contains("Usage: oxmalloc"), "{sub:?}: {help}");
            if let Some(s) = sub.first() {
                assert!(help.contains(&format!("oxmalloc {s}")), "{help}");
            }
        }
        for flag in ["--version", "-V"] {
            let out = oxmalloc(&[sub, &[flag]].concat());
            assert_eq!(out.status.code(), Some(0), "{sub:?} {flag}");
            assert!(text(&out.stdout).ends_with(&version), "{sub:?} {flag}");
        }
    }
    let out = oxmalloc(&["help", "run"]);
    assert!(text(&out.stdout).contains("--timeline <FILE>"));
    for option in [
        "--stats",
        "--children",
        "--json",
        "--timeline",
        "--hardened",
        "--lib",
    ] {
        assert!(
            text(&oxmalloc(&["run", "--help"]).stdout).contains(option),
            "{option}"
        );
    }
}

#[test]
fn run_takes_the_program_without_a_double_dash() {
    // The program's own options stay its own.
    let out = oxmalloc(&["run", "/bin/echo", "-n", "--stats", "x"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "--stats x");
    assert_eq!(text(&out.stderr), "");
    let out = oxmalloc(&["run", "--", "/bin/echo", "-n", "y"]);
    assert_eq!(text(&out.stdout), "y");
}

/// The report level `run` passed on for these options, and the program's
/// output.
fn level_of(options: &[&str]) -> (String, String) {
    let out = oxmalloc(&[&["run"], options, &["/bin/echo", "-n", "ok"]].concat());
    assert!(out.status.success(), "{options:?}: {}", text(&out.stderr));
    let err = text(&out.stderr);
    let level = if err.starts_with('{') {
        "json"
    } else if err.contains("PageHeap: free spans") {
        "2"
    } else if err.contains("(MALLOCSTATS=1)") {
        "1"
    } else {
        "none"
    };
    (level.to_string(), text(&out.stdout))
}

#[test]
fn stats_with_and_without_a_level() {
    for (options, level) in [
        (&["--stats"][..], "1"),
        (&["--stats", "2"], "2"),
        (&["--stats=2"], "2"),
        (&["--stats", "1"], "1"),
        (&["--stats=json"], "json"),
        (&["--stats", "json"], "json"),
        (&["--stats", "--children", "full"], "1"),
        (&["--lib", lib(), "--stats"], "1"),
        (&["--stats", "--"], "1"),
        (&[], "none"),
    ] {
        assert_eq!(
            level_of(options),
            (level.to_string(), "ok".into()),
            "{options:?}"
        );
    }
}

/// The library the command finds by itself.
fn lib() -> &'static str {
    static LIB: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_oxmalloc"));
        let p = exe.parent().unwrap().join("deps/liboxmalloc.so");
        p.to_str().unwrap().to_string()
    })
}

#[test]
fn bad_usage_is_a_clear_error_with_status_2() {
    for (args, says) in [
        (&["run"][..], "<PROGRAM>"),
        (&["run", "--"], "<PROGRAM>"),
        (&["run", "--bogus", "true"], "unexpected argument '--bogus'"),
        (&["run", "--lib"], "a value is required for '--lib <PATH>'"),
        (
            &["run", "--stats", "3", "true"],
            "invalid value '3' for '--stats [<LEVEL>]'",
        ),
        (
            &["run", "--children", "some", "true"],
            "invalid value 'some'",
        ),
        (&["run", "--timeline-ms", "0", "true"], "invalid value '0'"),
        (&["demo", "--threads", "0"], "a positive number is needed"),
        (
            &["demo", "--report", "xml"],
            "invalid value 'xml' for '--report <FORMAT>'",
        ),
        (&["demo", "--bogus"], "unexpected argument '--bogus'"),
        (&["install"], "--prefix <DIR>"),
        (&["install", "--prefix"], "a value is required"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["--bogus"], "unexpected argument '--bogus'"),
    ] {
        let out = oxmalloc(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains("Usage:") || err.contains("--help"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn run_errors_name_what_failed() {
    let out = oxmalloc(&["run", "--lib", "/nonexistent/liboxmalloc.so", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/liboxmalloc.so does not exist"));
    let out = oxmalloc(&["run", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot run /nonexistent/program"));
    let out = oxmalloc(&["run", "--timeline", "chart.png", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("must end in .svg"));
}

#[test]
fn run_hardened_preloads_the_hardened_build() {
    let out = oxmalloc(&["run", "--hardened", "sh", "-c", "echo \"$LD_PRELOAD\""]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let preload = text(&out.stdout);
    assert!(preload.contains("liboxmalloc-hardened.so"), "{preload}");
    let out = oxmalloc(&["run", "sh", "-c", "echo \"$LD_PRELOAD\""]);
    assert!(!text(&out.stdout).contains("hardened"));
    // The hardened build stops a double free; the normal one does not see it.
    let prog =
        std::env::temp_dir().join(format!("oxmalloc-cli-double-free-{}", std::process::id()));
    let src = prog.with_extension("c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <stdlib.h>\n\
         int main(void) { void *volatile p = malloc(64); free(p); free(p); \
         puts(\"survived\"); return 0; }\n",
    )
    .unwrap();
    let cc = Command::new("cc")
        .arg("-o")
        .arg(&prog)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(cc.success());
    let p = prog.to_str().unwrap();
    let out = oxmalloc(&["run", "--hardened", p]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("oxmalloc: fatal: free of a block that is not allocated"));
    let out = oxmalloc(&["run", p]);
    assert!(text(&out.stdout).contains("survived"));
    let _ = std::fs::remove_file(&prog);
    let _ = std::fs::remove_file(&src);
}
