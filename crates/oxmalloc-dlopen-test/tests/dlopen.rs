//! Loading oxmalloc late: this crate's cdylib (a Rust library whose global
//! allocator is oxmalloc) loads with `dlopen` into a running C program and
//! into Python through `ctypes`, its static TLS stays small, and its fast
//! path costs the same number of instructions as when linked into an
//! executable.

#[path = "../../oxmalloc-capi/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cdylib, built with this test (the package's library is a dependency
/// of its integration tests).
fn cdylib() -> PathBuf {
    let p = support::profile_dir().join("deps/liboxmalloc_dlopen_test.so");
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// `tests/c/host.c`: threads on glibc's malloc are running when the library
/// is loaded; they use it, it is closed, they exit, it is opened again.
#[test]
fn loads_into_a_running_c_program() {
    let dir = support::scratch("dlopen-host");
    let host = support::compile_into(&dir, "host.c", "host", &["-ldl"]);
    // Rust collections and threads: std registers thread-local destructors,
    // which would keep the library loaded past `dlclose` anyway.
    let out = support::run_ok(Command::new(&host).arg(cdylib()).arg("work"));
    assert!(out.contains("checksum "), "{out}");
    // Only allocation: nothing but `-z nodelete` keeps the library mapped
    // for oxmalloc's thread-exit hook, which runs after `dlclose`.
    support::run_ok(Command::new(&host).arg(cdylib()).arg("alloc"));
}

/// Python's threads are started (and glibc's heap in use) before the
/// library is loaded; they call it at once, while the main thread does too.
const PYTHON: &str = r#"
import ctypes, sys, threading
go = threading.Event()
results = []
def run():
    go.wait()
    results.append(lib.oxmalloc_dlopen_test_work(2, 40))
threads = [threading.Thread(target=run) for _ in range(4)]
for t in threads:
    t.start()
keep = [bytes(n) for n in range(0, 100000, 997)]
lib = ctypes.CDLL(sys.argv[1])
lib.oxmalloc_dlopen_test_work.restype = ctypes.c_uint64
lib.oxmalloc_dlopen_test_work.argtypes = [ctypes.c_uint32, ctypes.c_uint32]
lib.oxmalloc_dlopen_test_calls.restype = ctypes.c_uint64
go.set()
expected = lib.oxmalloc_dlopen_test_work(2, 40)
for t in threads:
    t.join()
assert expected != 0, "the library failed"
assert results == [expected] * 4, (results, expected)
assert lib.oxmalloc_dlopen_test_calls() == 5
print(expected)
print("ok")
"#;

#[test]
fn loads_into_python_with_ctypes() {
    support::ensure_tool("python3", "python3");
    support::run_ok(
        Command::new("python3")
            .args(["-c", PYTHON])
            .arg(cdylib())
            .env_remove("LD_PRELOAD"),
    );
}

/// `p_memsz` of the `PT_TLS` program header of a 64-bit little-endian ELF
/// file, or `None` when it has none.
fn tls_size(elf: &[u8]) -> Option<u64> {
    let word = |at: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&elf[at..at + n]);
        u64::from_le_bytes(b)
    };
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(
        (elf[4], elf[5]),
        (2, 1),
        "not a 64-bit little-endian ELF file"
    );
    let (phoff, phentsize, phnum) = (word(32, 8) as usize, word(54, 2) as usize, word(56, 2));
    (0..phnum as usize)
        .map(|i| phoff + i * phentsize)
        .find(|&h| word(h, 4) == 7) // PT_TLS
        .map(|h| word(h + 40, 8)) // p_memsz
}

/// A library with initial-exec TLS takes its whole TLS block from the
/// static TLS space glibc keeps for libraries loaded late (1,664 bytes by
/// default, shared by all of them); before the engine moved its thread
/// caches out of TLS, this library's block was 2,512 bytes and `dlopen`
/// failed with "cannot allocate memory in static TLS block".
#[test]
fn static_tls_stays_small() {
    let elf = std::fs::read(cdylib()).expect("read the cdylib");
    let size = tls_size(&elf).expect("a PT_TLS header");
    eprintln!("PT_TLS MemSiz of the cdylib: {size} bytes");
    // oxmalloc's 25 bytes plus Rust std's own thread-locals (about 130).
    assert!(size <= 256, "the cdylib's TLS block is {size} bytes");
}

const N1: u64 = 100_000;
const N2: u64 = 200_000;

/// Instructions of `oxmalloc-dlopen-pairs ARGS... 16 N` under callgrind,
/// with `preload` in `LD_PRELOAD`.
fn instructions(args: &[&str], preload: Option<&Path>, n: u64) -> u64 {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(env!("CARGO_BIN_EXE_oxmalloc-dlopen-pairs"))
        .args(args)
        .args(["16", &n.to_string()])
        .env_remove("LD_PRELOAD");
    if let Some(p) = preload {
        cmd.env("LD_PRELOAD", p);
    }
    let out = support::check(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.split_once("Collected :"))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in valgrind's output: {err}"))
}

/// Instructions per pair: (Ir(N2) − Ir(N1)) / (N2 − N1) cancels start-up,
/// loading and first-call set-up.
fn per_pair(args: &[&str], preload: Option<&Path>) -> f64 {
    let (i1, i2) = (
        instructions(args, preload, N1),
        instructions(args, preload, N2),
    );
    (i2 - i1) as f64 / (N2 - N1) as f64
}

/// The initial-exec TLS access works in a library loaded late: a pair of
/// `alloc` and `dealloc` through the global allocator of the cdylib costs
/// what it costs linked into an executable (where the linker turns the
/// access into local-exec), and C's `malloc` and `free` of
/// `liboxmalloc.so` cost the same loaded with `dlopen` as preloaded: not a
/// `__tls_get_addr` call more.
#[test]
fn fast_path_costs_the_same_when_loaded_late() {
    support::ensure_tool("valgrind", "valgrind");
    let lib = cdylib();
    let liboxmalloc = support::library();
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    let linked = per_pair(&["linked"], None);
    let late = per_pair(&["dlopen", &path(&lib)], None);
    let preloaded = per_pair(&["c-default"], Some(&liboxmalloc));
    let c_late = per_pair(&["c-dlopen", &path(&liboxmalloc)], None);
    eprintln!(
        "instructions per 16-byte pair: Rust global allocator linked {linked:.1}, \
         in a cdylib loaded with dlopen {late:.1}; C malloc/free of liboxmalloc.so \
         preloaded {preloaded:.1}, loaded with dlopen {c_late:.1}"
    );
    for (what, v) in [("linked", linked), ("preloaded", preloaded)] {
        assert!(v < 150.0, "{what}: {v:.1} instructions per pair");
    }
    assert!(
        (late - linked).abs() <= 2.0,
        "cdylib loaded with dlopen: {late:.1} instructions per pair, linked: {linked:.1}"
    );
    assert!(
        (c_late - preloaded).abs() <= 2.0,
        "liboxmalloc.so loaded with dlopen: {c_late:.1} instructions per pair, \
         preloaded: {preloaded:.1}"
    );
}
