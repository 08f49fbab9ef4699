//! The heap in a shared file (`OXMALLOC_MEMFS_PATH`) and shared regions,
//! through the C library (issue 9, items 1-3): a forked child and its parent
//! each read their own objects; real programs that fork (`bash -c`, Python
//! `multiprocessing`) run under it; `calloc` is zero on shared memory and on
//! file memory mixed with the fallback.

mod support;

use std::process::Command;

fn prog() -> std::path::PathBuf {
    support::compile_linked("memfs.c")
}

#[test]
fn a_forked_child_has_its_own_copy_of_a_memfs_heap() {
    support::run_ok(
        Command::new(prog())
            .arg("fork")
            .env("OXMALLOC_MEMFS_PATH", "memfd"),
    );
    // Under a file in a directory too (tmpfs), preloaded.
    let dir = support::scratch("memfs_dir");
    support::run_ok(
        support::preloaded(prog())
            .arg("fork")
            .env("OXMALLOC_MEMFS_PATH", &dir),
    );
}

#[test]
fn calloc_is_zero_on_file_memory_mixed_with_the_fallback() {
    support::run_ok(
        Command::new(prog())
            .arg("calloc")
            .env("OXMALLOC_MEMFS_PATH", "memfd")
            .env("OXMALLOC_MEMFS_LIMIT_MB", "4"),
    );
}

#[test]
fn calloc_is_zero_on_an_injected_shared_region() {
    support::run_ok(Command::new(prog()).arg("shared"));
}

#[test]
fn forking_programs_run_on_a_memfs_heap() {
    support::ensure_tool("python3", "python3");
    let out = support::check(
        support::preloaded("bash")
            .args([
                "-c",
                "for i in 1 2 3 4 5; do x=$(echo $i | tr 1-5 a-e); echo -n $x; done; \
                 (echo sub; echo shell) | sort | tr -d '\\n'",
            ])
            .env("OXMALLOC_MEMFS_PATH", "memfd"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abcdeshellsub");
    let script = "import multiprocessing as mp\n\
        def sq(x):\n    return [i * i for i in range(x)][-1]\n\
        if __name__ == '__main__':\n\
        \x20   mp.set_start_method('fork')\n\
        \x20   with mp.Pool(4) as p:\n\
        \x20       print(sum(p.map(sq, range(1, 2000))))\n";
    let out = support::check(
        support::preloaded("python3")
            .args(["-c", script])
            .env("OXMALLOC_MEMFS_PATH", "memfd"),
    );
    let plain = support::check(Command::new("python3").args(["-c", script]));
    assert_eq!(out.stdout, plain.stdout);
}
