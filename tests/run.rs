//! `oxmalloc run`: runs a program with the C library preloaded and, with
//! `--stats`, the allocator report at its exit.

use std::process::Command;

fn oxmalloc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxmalloc"))
}

#[test]
fn runs_the_program_on_the_library() {
    let out = oxmalloc()
        .args(["run", "--", "sh", "-c", "echo \"$LD_PRELOAD\"; exit 3"])
        .env_remove("MALLOCSTATS")
        .output()
        .expect("run oxmalloc");
    // The program's exit status comes through.
    assert_eq!(out.status.code(), Some(3));
    let preload = String::from_utf8_lossy(&out.stdout);
    assert!(preload.trim_end().ends_with("liboxmalloc.so"), "{preload}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stats_prints_the_report_at_exit() {
    for (flag, detail) in [("--stats", false), ("--stats=2", true)] {
        let out = oxmalloc()
            .args(["run", flag, "--", "/bin/echo", "hello"])
            .output()
            .expect("run oxmalloc");
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Bytes in use by application"), "{err}");
        assert_eq!(err.contains("PageHeap: free spans"), detail, "{err}");
    }
}

#[test]
fn bad_usage_is_refused() {
    for args in [
        &["run"][..],
        &["run", "--"],
        &["run", "--bogus", "--", "true"],
        &["run", "--lib"],
    ] {
        let out = oxmalloc().args(args).output().expect("run oxmalloc");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("run:"),
            "{args:?}"
        );
    }
    let out = oxmalloc()
        .args(["run", "--lib", "/nonexistent/liboxmalloc.so", "--", "true"])
        .output()
        .expect("run oxmalloc");
    assert_eq!(out.status.code(), Some(2));
}
