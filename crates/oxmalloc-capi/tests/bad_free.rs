//! Bad input gets a clear error: freeing, reallocating or deleting memory
//! oxmalloc never handed out aborts with a message that names the operation
//! and the address (`tests/c/bad_free.c`).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[test]
fn foreign_pointers_abort_with_a_message() {
    let prog = support::compile_linked("bad_free.c");
    for (mode, what) in [
        ("free", "free of a pointer oxmalloc does not own"),
        ("delete", "free of a pointer oxmalloc does not own"),
        ("realloc", "realloc of a pointer oxmalloc does not own"),
    ] {
        let out = Command::new(&prog).arg(mode).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "{mode}: {:?}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let addr = stdout
            .lines()
            .find_map(|l| l.strip_prefix("foreign="))
            .expect("the program printed the address");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("oxmalloc: fatal: {what}")),
            "{mode}: {stderr}"
        );
        assert!(
            stderr.contains(addr),
            "{mode}: the message names {addr}: {stderr}"
        );
    }
}
