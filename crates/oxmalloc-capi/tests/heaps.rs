//! Heaps bound to regions through the C API (`tests/c/heaps.c`); and a free() into a retired range stops with "does not own".

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[test]
fn heaps_through_the_c_api() {
    let prog = support::compile_linked("heaps.c");
    support::run_ok(&mut Command::new(&prog));
}

#[test]
fn free_into_a_retired_range_stops() {
    let prog = support::compile_linked("heaps.c");
    let out = Command::new(&prog)
        .arg("freed-after-retire")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let addr = stdout
        .lines()
        .find_map(|l| l.strip_prefix("stale="))
        .expect("the program printed the address");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("free of a pointer oxmalloc does not own") && stderr.contains(addr),
        "{stderr}"
    );
}
