//! Fork against the locks around it: `tests/c/fork_deadlock.c` (one thread
//! forks 1,000 times while others run `fflush(NULL)` and `getline()` on
//! memory and file streams: glibc's tst-malloc-fork-deadlock pattern) and
//! `tests/c/fork_signal.c` (a signal handler forks while the main loop forks,
//! allocates and frees: glibc's tst-mallocfork2 pattern), each preloaded and
//! linked, each killed (with every process it forked) and failed when it has
//! not finished within 60 s. Both finish in seconds when fork is handled
//! right (under glibc: about 8 s and 2 s on a loaded 2-core machine).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn run(source: &str, linked: bool, arg: &str) {
    let prog = if linked {
        support::compile_linked(source)
    } else {
        let dir = support::scratch(source);
        support::compile_into(&dir, source, "prog", &[])
    };
    let mut cmd = if linked {
        Command::new(&prog)
    } else {
        support::preloaded(&prog)
    };
    cmd.arg(arg);
    let start = Instant::now();
    let out = support::run_with_timeout(&mut cmd, LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{source} ({}) failed: {:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        if linked { "linked" } else { "preloaded" },
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{source}: {:?}", start.elapsed());
}

// Before the fork protocol (12f18e4) this hung in 5 of 6 runs (preloaded,
// 1,000 forks; `LD_PRELOAD=.../liboxmalloc.so ./fork_deadlock 1000`).
#[test]
fn forks_against_stdio_locks_preloaded() {
    run("fork_deadlock.c", false, "1000");
}

#[test]
fn forks_against_stdio_locks_linked() {
    run("fork_deadlock.c", true, "1000");
}

// Before the fork protocol the nested fork self-deadlocked in 5 of 6 runs
// (`LD_PRELOAD=.../liboxmalloc.so ./fork_signal 2000`).
#[test]
fn fork_from_a_signal_handler_preloaded() {
    run("fork_signal.c", false, "2000");
}

#[test]
fn fork_from_a_signal_handler_linked() {
    run("fork_signal.c", true, "2000");
}
