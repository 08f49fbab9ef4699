//! Every C++ operator new / delete (`tests/c/operators.cc`): the symbols
//! resolve to the library, blocks are oxmalloc's and aligned, a throwing
//! new_handler unwinds through the library, and with no handler a failing
//! `operator new` stops the program with a message.

mod support;

use std::os::unix::process::ExitStatusExt;

/// SIGABRT on Linux.
const SIGABRT: i32 = 6;

#[test]
fn every_operator_form_is_ours() {
    let prog = support::compile_linked("operators.cc");
    support::run_ok(&mut std::process::Command::new(&prog));
    support::run_ok(&mut support::preloaded(&prog));
}

#[test]
fn failing_new_without_handler_aborts_with_a_message() {
    let prog = support::compile_linked("operators.cc");
    let out = std::process::Command::new(&prog)
        .arg("abort")
        .output()
        .expect("run operators");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains("oxmalloc: fatal: operator new: out of memory")
            && stderr.contains("no std::new_handler"),
        "stderr: {stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not reached"));
}
