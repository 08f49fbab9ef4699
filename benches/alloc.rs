//! oxmalloc against glibc (`std::alloc::System`), mimalloc and jemalloc, in
//! one run, each called through `GlobalAlloc` on an instance.
//!
//! Every case is one criterion group whose functions are the four
//! allocators, so the report (and `benches/ratios.py`) puts them side by
//! side; the single-threaded groups add `oxmalloc-heap`, an oxmalloc
//! [`Heap`](oxmalloc::Heap) bound to an exclusive region (its throughput
//! against the global heap's, `oxmalloc`, in the same run):
//!
//! - `pair-<size>`: one `alloc` + `dealloc` of `<size>` bytes on one thread
//!   (the layout goes through `black_box`, so no allocator gets its size
//!   class folded at compile time).
//! - `batch-<size>`: 1000 allocations, then 1000 frees (first in, first out),
//!   which walks the cache lists instead of reusing one hot slot. Times are
//!   per 1000 pairs.
//! - `mixed-<n>t`: `n` threads each do `MIXED_OPS` allocations of random,
//!   mostly small sizes; a live window of `WINDOW` objects per thread; every
//!   fourth object is freed by the next thread, handed over in batches of
//!   `HANDOFF` through a mutex-guarded queue (one lock per batch). Sizes are
//!   precomputed; the hand-off buffers are preallocated and swapped, so the
//!   timed loop calls no allocator but the one under test.
//!
//! Run: `cargo bench --bench alloc` (add `-- --warm-up-time 1
//! --measurement-time 2` on a busy machine), then
//! `python3 benches/ratios.py [target/criterion]`.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

#[path = "common/bound_heap.rs"]
mod bound_heap;
use bound_heap::bound_heap;

const SIZES: [usize; 6] = [16, 64, 256, 1024, 4096, 32768];
const BATCH: usize = 1000;

const MIXED_OPS: usize = 20_000;
const WINDOW: usize = 256;
const HANDOFF: usize = 256;
const SIZE_TABLE: usize = 4096;

/// Runs `f` once for each allocator, with the allocator's display name.
macro_rules! for_each_allocator {
    ($f:ident, $group:expr $(, $arg:expr)*) => {{
        $f(&mut $group, "oxmalloc", &oxmalloc::OxMalloc $(, $arg)*);
        $f(&mut $group, "glibc", &System $(, $arg)*);
        $f(&mut $group, "mimalloc", &mimalloc::MiMalloc $(, $arg)*);
        $f(&mut $group, "jemalloc", &tikv_jemallocator::Jemalloc $(, $arg)*);
    }};
}

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn pair<A: GlobalAlloc>(g: &mut Group<'_>, name: &str, a: &A, size: usize) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    g.bench_function(name, |b| {
        b.iter(|| {
            let l = black_box(layout);
            // SAFETY: `l` has a non-zero size; the block is freed with the
            // same layout right away.
            unsafe {
                let p = a.alloc(l);
                assert!(!p.is_null());
                a.dealloc(black_box(p), l);
            }
        })
    });
}

fn batch<A: GlobalAlloc>(g: &mut Group<'_>, name: &str, a: &A, size: usize) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    let mut ptrs: Vec<*mut u8> = Vec::with_capacity(BATCH);
    g.bench_function(name, |b| {
        b.iter(|| {
            let l = black_box(layout);
            // SAFETY: non-zero size; each block is freed once, with its
            // layout, below.
            unsafe {
                for _ in 0..BATCH {
                    let p = a.alloc(l);
                    assert!(!p.is_null());
                    ptrs.push(p);
                }
                for &p in ptrs.iter() {
                    a.dealloc(black_box(p), l);
                }
            }
            ptrs.clear();
        })
    });
}

fn single_thread(c: &mut Criterion) {
    let heap = bound_heap();
    for size in SIZES {
        let mut g = c.benchmark_group(format!("pair-{size}"));
        for_each_allocator!(pair, g, size);
        pair(&mut g, "oxmalloc-heap", &heap, size);
        g.finish();
    }
    for size in SIZES {
        let mut g = c.benchmark_group(format!("batch-{size}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        for_each_allocator!(batch, g, size);
        batch(&mut g, "oxmalloc-heap", &heap, size);
        g.finish();
    }
}

/// Precomputed sizes for thread `t`: 80 % in 8..=256, 15 % up to 4 KiB,
/// 5 % up to 32 KiB (xorshift, the same for every allocator).
fn size_table(t: usize) -> Vec<usize> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..SIZE_TABLE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x >> 8) as usize;
            match r % 100 {
                0..=79 => 8 + r / 100 % 249,
                80..=94 => 257 + r / 100 % 3840,
                _ => 4097 + r / 100 % 28672,
            }
        })
        .collect()
}

/// A block in flight: address and size (alignment is always 8).
type Block = (usize, usize);

/// One thread's part of the mixed workload, repeated `rounds` times; the
/// time from the start barrier to the end of its last round.
fn mixed_thread<A: GlobalAlloc>(
    a: &A,
    t: usize,
    queues: &[Mutex<Vec<Block>>],
    start: &Barrier,
    sizes: &[usize],
    rounds: u64,
) -> Duration {
    let n = queues.len();
    let mut window: Vec<Block> = vec![(0, 0); WINDOW];
    let mut out: Vec<Block> = Vec::with_capacity(HANDOFF);
    let mut spare: Vec<Block> = Vec::with_capacity(4 * HANDOFF * (MIXED_OPS / HANDOFF + 2));
    let free = |(p, s): Block| {
        // SAFETY: `p` came from `a.alloc` with size `s`, alignment 8, and is
        // freed exactly once.
        unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(s, 8)) }
    };
    let drain = |spare: &mut Vec<Block>| {
        std::mem::swap(&mut *queues[t].lock().unwrap(), spare);
        for &b in spare.iter() {
            free(b);
        }
        spare.clear();
    };
    start.wait();
    let t0 = Instant::now();
    for _ in 0..rounds {
        for i in 0..MIXED_OPS {
            let s = sizes[i % SIZE_TABLE];
            // SAFETY: non-zero size, alignment 8; freed once below.
            let p = unsafe { a.alloc(Layout::from_size_align_unchecked(s, 8)) };
            assert!(!p.is_null());
            // SAFETY: at least 8 bytes were allocated at `p`.
            unsafe { p.write(i as u8) };
            let old = std::mem::replace(&mut window[i % WINDOW], (p as usize, s));
            if old.0 != 0 {
                if i % 4 == 0 {
                    out.push(old);
                    if out.len() == HANDOFF {
                        queues[(t + 1) % n].lock().unwrap().append(&mut out);
                    }
                } else {
                    free(old);
                }
            }
            if i % HANDOFF == HANDOFF - 1 {
                drain(&mut spare);
            }
        }
        for b in window.iter_mut() {
            if b.0 != 0 {
                free(std::mem::take(b));
            }
        }
        queues[(t + 1) % n].lock().unwrap().append(&mut out);
        drain(&mut spare);
    }
    t0.elapsed()
}

fn mixed<A: GlobalAlloc + Sync>(g: &mut Group<'_>, name: &str, a: &A, threads: usize) {
    let tables: Vec<Vec<usize>> = (0..threads).map(size_table).collect();
    // Each queue can hold everything its neighbour hands over in a round.
    let queues: Vec<Mutex<Vec<Block>>> = (0..threads)
        .map(|_| Mutex::new(Vec::with_capacity(4 * HANDOFF * (MIXED_OPS / HANDOFF + 2))))
        .collect();
    g.bench_function(name, |b| {
        b.iter_custom(|rounds| {
            let start = Barrier::new(threads);
            let elapsed = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let (q, st, sz) = (&queues, &start, &tables[t]);
                        s.spawn(move || mixed_thread(a, t, q, st, sz, rounds))
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
            });
            // What a thread handed over after its neighbour's last drain.
            for q in queues.iter() {
                for &(p, s) in q.lock().unwrap().iter() {
                    // SAFETY: allocated by `a` with this size, not yet freed.
                    unsafe { a.dealloc(p as *mut u8, Layout::from_size_align_unchecked(s, 8)) };
                }
                q.lock().unwrap().clear();
            }
            elapsed
        })
    });
}

fn multi_thread(c: &mut Criterion) {
    for threads in [2, 4] {
        let mut g = c.benchmark_group(format!("mixed-{threads}t"));
        g.throughput(Throughput::Elements((threads * MIXED_OPS) as u64));
        g.sample_size(20);
        for_each_allocator!(mixed, g, threads);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = single_thread, multi_thread
}
criterion_main!(benches);
