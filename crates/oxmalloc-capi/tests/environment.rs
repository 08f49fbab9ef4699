//! Settings through the environment (`tests/c/environment.c`), under both
//! the `OXMALLOC_` names and gperftools' `TCMALLOC_` names.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn program() -> PathBuf {
    support::compile_linked("environment.c")
}

fn run(mode: &str, env: &[(&str, &str)]) -> String {
    let mut c = Command::new(program());
    c.arg(mode);
    for (k, v) in env {
        c.env(k, v);
    }
    support::run_ok(&mut c)
}

#[test]
fn memfs_path_puts_the_heap_in_a_file() {
    run("memfs", &[("OXMALLOC_MEMFS_PATH", "memfd")]);
    let dir = std::env::temp_dir();
    let out = run(
        "memfs",
        &[("TCMALLOC_MEMFS_MALLOC_PATH", dir.to_str().unwrap())],
    );
    assert!(
        out.contains("oxmalloc."),
        "a file in {}: {out}",
        dir.display()
    );
}

#[test]
fn memfs_limit_without_fallback_fails_with_enomem() {
    run(
        "memfs_cap",
        &[
            ("OXMALLOC_MEMFS_PATH", "memfd"),
            ("OXMALLOC_MEMFS_LIMIT_MB", "16"),
            ("OXMALLOC_MEMFS_DISABLE_FALLBACK", "1"),
        ],
    );
    run(
        "memfs_cap",
        &[
            ("TCMALLOC_MEMFS_MALLOC_PATH", "memfd"),
            ("TCMALLOC_MEMFS_LIMIT_MB", "16"),
            ("TCMALLOC_MEMFS_DISABLE_FALLBACK", "1"),
        ],
    );
}

#[test]
fn heap_limit_fails_with_enomem_and_the_program_continues() {
    run("heap_limit", &[("TCMALLOC_HEAP_LIMIT_MB", "64")]);
    run("heap_limit", &[("OXMALLOC_HEAP_LIMIT_MB", "64")]);
}

#[test]
fn background_release_gives_idle_pages_back() {
    run(
        "background",
        &[
            ("OXMALLOC_BACKGROUND_RELEASE_MS", "20"),
            ("OXMALLOC_RELEASE_RATE", "0"),
        ],
    );
}
