//! `oxmalloc-fuzz-explore`: fuzzing on a stable toolchain, without coverage
//! feedback. It runs inputs for a bounded time: random byte strings and
//! mutations (bit flips, byte changes, insertions, deletions, splices) of the
//! corpus inputs, through the same harness as the cargo-fuzz target. An
//! input that fails (a panic of the model, or a signal: oxmalloc's abort,
//! a segfault) is written to the artifacts directory before the process
//! dies.
//!
//! ```text
//! oxmalloc-fuzz-explore [--secs N] [--seed S] [--corpus DIR] [--artifacts DIR] [--save-every N]
//! ```
//!
//! `--save-every N` also writes every Nth input that ran clean into the
//! corpus directory (to seed a corpus where libFuzzer is not available).

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The input being run, for the signal handler.
static CURRENT: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static CURRENT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Where the handler writes it (a NUL-terminated path, leaked).
static CRASH_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// Writes the current input to the crash path, then dies of `sig`.
extern "C" fn on_fatal_signal(sig: libc::c_int) {
    save_current();
    // SAFETY: restoring the default action and re-raising are
    // async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Writes the current input to the crash path with open/write/close only
/// (async-signal-safe).
fn save_current() {
    let path = CRASH_PATH.load(Ordering::Acquire);
    let p = CURRENT.load(Ordering::Acquire);
    let n = CURRENT_LEN.load(Ordering::Acquire);
    if path.is_null() || p.is_null() {
        return;
    }
    // SAFETY: a NUL-terminated path; `p[..n]` is the input being run, alive
    // until the run ends.
    unsafe {
        let fd = libc::open(path, libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC, 0o644);
        if fd >= 0 {
            let _ = libc::write(fd, p.cast(), n);
            libc::close(fd);
        }
        let msg = b"oxmalloc-fuzz-explore: failing input saved\n";
        let _ = libc::write(2, msg.as_ptr().cast(), msg.len());
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if corpus.is_empty() || rng.below(4) == 0 {
        let n = 16 + rng.below(4096);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut v = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let len = v.len().max(1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let k = 1 + rng.below(32);
                for _ in 0..k {
                    v.insert(i.min(v.len()), rng.next() as u8);
                }
            }
            3 if v.len() > 8 => {
                let i = rng.below(v.len());
                let k = (1 + rng.below(32)).min(v.len() - i);
                v.drain(i..i + k);
            }
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let at = rng.below(v.len() + 1);
                    v.truncate(at);
                    v.extend_from_slice(&other[from..]);
                }
            }
        }
    }
    v
}

fn main() {
    let mut secs = 60u64;
    let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut corpus_dir = root.join("corpus/ops");
    let mut artifacts = root.join("artifacts/ops");
    let mut save_every = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--secs" => secs = val().parse().expect("--secs N"),
            "--seed" => seed = val().parse().expect("--seed S"),
            "--corpus" => corpus_dir = val().into(),
            "--artifacts" => artifacts = val().into(),
            "--save-every" => save_every = val().parse().expect("--save-every N"),
            _ => panic!("unknown argument {a}"),
        }
    }
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&corpus_dir)
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    let crash = artifacts.join(format!("crash-{}-{seed}", std::process::id()));
    let crash = CString::new(crash.to_str().expect("UTF-8 path")).expect("path");
    CRASH_PATH.store(crash.into_raw(), Ordering::Release);
    for sig in [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL] {
        // SAFETY: installing a handler that only makes async-signal-safe calls.
        unsafe {
            libc::signal(
                sig,
                on_fatal_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        save_current();
        hook(info);
        std::process::abort();
    }));
    println!(
        "exploring for {secs} s, seed {seed}, {} corpus inputs, failures to {}",
        corpus.len(),
        artifacts.display()
    );
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut ops, mut saved) = (0usize, 0usize, 0usize);
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &corpus);
        CURRENT_LEN.store(input.len(), Ordering::Release);
        CURRENT.store(input.as_ptr().cast_mut(), Ordering::Release);
        ops += oxmalloc_fuzz::ops::decode(&input).len();
        oxmalloc_fuzz::run(&input);
        CURRENT.store(std::ptr::null_mut(), Ordering::Release);
        runs += 1;
        if save_every > 0 && runs % save_every == 0 {
            let name = corpus_dir.join(format!("explore-{seed:x}-{runs}"));
            std::fs::write(&name, &input).expect("write a corpus input");
            saved += 1;
            corpus.push(input);
        }
    }
    println!("{runs} inputs, {ops} operations, no failure ({saved} saved to the corpus)");
}
