//! A Rust `cdylib` whose global allocator is oxmalloc, for the tests of
//! loading oxmalloc late: C hosts and Python's `ctypes` load it with `dlopen`
//! into a process that already runs threads on glibc's malloc
//! (`tests/dlopen.rs`).
//!
//! The engine's static TLS is 25 bytes (its thread state and a re-entry
//! guard, initial-exec), which fits in the static TLS space glibc keeps for
//! libraries loaded late; `tests/dlopen.rs` checks the library's `PT_TLS`
//! size. The library is linked with `-z nodelete` (see `build.rs`): `dlclose`
//! leaves it mapped, because threads that allocated through it run oxmalloc's
//! thread-exit hook when they end.
//!
//! Exported functions (C ABI):
//!
//! | function | what |
//! |---|---|
//! | `oxmalloc_dlopen_test_work(threads, rounds)` | Rust collections on the calling thread and on `threads` more; a checksum, 0 on failure |
//! | `oxmalloc_dlopen_test_calls()` | how many times `work` and `pairs` were called since the library was first loaded |
//! | `oxmalloc_dlopen_test_thread_caches()` | threads with an oxmalloc cache now |
//! | `oxmalloc_dlopen_test_pairs(size, n)` | `n` allocations and frees of `size` bytes through the global allocator (for instruction counts) |

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

#[global_allocator]
static GLOBAL: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

static CALLS: AtomicU64 = AtomicU64::new(0);

/// True when `p` is inside a live allocation of oxmalloc's.
fn owned<T: ?Sized>(p: *const T) -> bool {
    matches!(
        oxmalloc::ownership(p.cast::<u8>()),
        oxmalloc::Ownership::Owned(_)
    )
}

/// One thread's share: vectors, strings, maps and boxes of many sizes
/// (small classes to large spans), each checked to come from oxmalloc.
/// `None` when a block was not oxmalloc's or its contents changed.
fn churn(seed: u64, rounds: u32) -> Option<u64> {
    let mut sum = 0u64;
    for r in 0..u64::from(rounds) {
        let k = seed.wrapping_mul(31).wrapping_add(r);
        let v: Vec<u64> = (0..(k % 500 + 1)).collect();
        let s: String = (0..(k % 40))
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let mut m: HashMap<u64, String> = HashMap::new();
        let mut t: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for i in 0..(k % 50) {
            m.insert(i, format!("{seed}:{r}:{i}"));
            t.insert(i, vec![i as u8; (i * 97 % 3000) as usize]);
        }
        let big = vec![(k % 251) as u8; 1000 + (k % 7) as usize * 50_000];
        if !(owned(v.as_ptr()) && owned(big.as_ptr()) && (s.is_empty() || owned(s.as_ptr()))) {
            return None;
        }
        if m.values().any(|x| !owned(x.as_ptr())) {
            return None;
        }
        let tsum: u64 = t
            .values()
            .map(|x| x.iter().map(|&b| u64::from(b)).sum::<u64>())
            .sum();
        let msum: u64 = m.values().map(|x| x.len() as u64).sum();
        if big.iter().any(|&b| u64::from(b) != k % 251) {
            return None;
        }
        sum = sum
            .wrapping_mul(1_000_003)
            .wrapping_add(v.iter().sum::<u64>() + s.len() as u64 + tsum + msum + big.len() as u64);
    }
    Some(sum)
}

fn work(threads: u32, rounds: u32) -> Option<u64> {
    let spawned: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("dlopen-test-{t}"))
                .spawn(move || churn(u64::from(t) + 1, rounds))
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let mut sum = churn(0, rounds)?;
    for h in spawned {
        sum = sum.wrapping_add(h.join().ok()??);
    }
    Some(sum)
}

/// Rust collections on the calling thread and on `threads` threads it
/// starts, `rounds` rounds each: a checksum that depends only on the
/// arguments, or 0 when a block did not come from oxmalloc, its contents
/// changed, or a thread failed.
#[no_mangle]
pub extern "C" fn oxmalloc_dlopen_test_work(threads: u32, rounds: u32) -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed);
    std::panic::catch_unwind(|| work(threads, rounds))
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// How many times [`oxmalloc_dlopen_test_work`] and
/// [`oxmalloc_dlopen_test_pairs`] were called since the library was first
/// loaded (it survives `dlclose`: the library is never unloaded).
#[no_mangle]
pub extern "C" fn oxmalloc_dlopen_test_calls() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

/// Threads with a cache of oxmalloc's global heap now.
#[no_mangle]
pub extern "C" fn oxmalloc_dlopen_test_thread_caches() -> usize {
    oxmalloc::stats().thread_cache_count
}

/// `n` pairs of `alloc` and `dealloc` of `size` bytes (alignment 8) through
/// the global allocator, as `Box` and `Vec` reach it. The layout goes
/// through `black_box`, so no size class is folded at compile time.
///
/// # Panics
/// If `size` is 0 or allocation fails.
#[inline(never)]
pub fn pairs(size: usize, n: u64) {
    let layout = Layout::from_size_align(size, 8).expect("a valid size");
    assert!(size > 0, "pairs: size must be non-zero");
    for _ in 0..n {
        let l = black_box(layout);
        // SAFETY: a non-zero size; the block is freed with the same layout.
        unsafe {
            let p = std::alloc::alloc(l);
            assert!(!p.is_null(), "allocation failed");
            std::alloc::dealloc(black_box(p), l);
        }
    }
}

/// [`pairs`] for C: nothing when `size` is 0.
#[no_mangle]
pub extern "C" fn oxmalloc_dlopen_test_pairs(size: usize, n: u64) {
    CALLS.fetch_add(1, Ordering::Relaxed);
    if size > 0 {
        let _ = std::panic::catch_unwind(|| pairs(size, n));
    }
}
