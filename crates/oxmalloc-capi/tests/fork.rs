//! A multi-threaded program forks 100 times while its other threads allocate,
//! hold stdio locks and free blocks other threads allocated; every child
//! frees the blocks left in flight, allocates and exits (`tests/c/fork.c`),
//! with the library preloaded and linked.

mod support;

use std::process::Command;
use std::time::Duration;

fn check(out: std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn children_of_a_multithreaded_parent_can_allocate() {
    let dir = support::scratch("fork");
    let prog = support::compile_into(&dir, "fork.c", "fork", &[]);
    let out = support::run_with_timeout(&mut support::preloaded(&prog), Duration::from_secs(120));
    check(out.unwrap_or_else(|e| panic!("{e}")));
}

#[test]
fn children_of_a_multithreaded_parent_can_allocate_linked() {
    let prog = support::compile_linked("fork.c");
    let out = support::run_with_timeout(&mut Command::new(&prog), Duration::from_secs(120));
    check(out.unwrap_or_else(|e| panic!("{e}")));
}
