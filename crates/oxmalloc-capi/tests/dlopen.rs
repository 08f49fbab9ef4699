//! Libraries and `dlopen`: a library loaded with `dlopen` allocates while the
//! program frees, and the reverse, from several threads, with allocations in
//! the library's constructor and destructor, loaded and unloaded three times
//! (`tests/c/dl_main.c`, `tests/c/dl_lib.c`); and `liboxmalloc.so` itself
//! loaded late into a program running on glibc's malloc
//! (`tests/c/dl_late.c`).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[test]
fn blocks_cross_a_dlopen_boundary_both_ways() {
    let dir = support::scratch("dlopen");
    let lib = support::compile_into(&dir, "dl_lib.c", "dl_lib.so", &["-shared", "-fPIC"]);
    let prog = support::compile_into(&dir, "dl_main.c", "dl_main", &["-ldl"]);
    support::run_ok(support::preloaded(&prog).arg(&lib));
}

/// Loaded late, the library interposes nothing, with `RTLD_LOCAL` or
/// `RTLD_GLOBAL`: the program and libraries loaded after it keep glibc's
/// malloc; the library's own functions work on threads that existed before
/// it; `dlclose` leaves it mapped (`-z nodelete`) for their exit.
#[test]
fn liboxmalloc_loads_late_without_taking_over_malloc() {
    let dir = support::scratch("dlopen-late");
    let dl_lib = support::compile_into(&dir, "dl_lib.c", "dl_lib.so", &["-shared", "-fPIC"]);
    let prog = support::compile_into(&dir, "dl_late.c", "dl_late", &["-ldl"]);
    for mode in ["local", "global"] {
        support::run_ok(
            Command::new(&prog)
                .arg(support::library())
                .arg(&dl_lib)
                .arg(mode)
                .env_remove("LD_PRELOAD"),
        );
    }
    // glibc's block handed to the library's free stops the program.
    let out = Command::new(&prog)
        .arg(support::library())
        .arg(&dl_lib)
        .arg("foreign")
        .env_remove("LD_PRELOAD")
        .output()
        .expect("run dl_late");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let addr = stdout
        .lines()
        .find_map(|l| l.strip_prefix("foreign="))
        .expect("the program printed the address");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "oxmalloc: fatal: free of a pointer oxmalloc does not own (address {addr})"
        )),
        "{stderr}"
    );
}
