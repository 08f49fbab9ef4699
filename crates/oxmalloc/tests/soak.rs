//! The soak run: for `OXMALLOC_SOAK_SECS` seconds (default 10; the long
//! form, `scripts/long-tests.sh`, runs 600) a process with oxmalloc as its
//! global allocator creates and destroys threads (at most six alive, each
//! living 20–300 ms), which allocate (1 B to 1 MiB, alignments up to 4 KiB),
//! reallocate, free their own blocks and blocks other threads allocated
//! (through a shared exchange), and call `mark_thread_idle`; the main thread
//! calls `release_free_memory` every 100 ms and forks every 300 ms (each
//! child allocates, checks and frees blocks of its own, and checks the
//! blocks it inherited, then leaves with `_exit`). Every block carries a
//! pattern of its own, checked when it is freed or reallocated.
//!
//! At the end everything is freed, the main thread's cache is flushed and
//! free memory released, and the figures must come back near the baseline
//! taken before the run:
//! - `stats().allocated_bytes` within [`ALLOCATED_SLACK`] of the baseline:
//!   what the program holds is back where it was, up to what the Rust
//!   runtime and the test harness keep meanwhile (buffers, thread records);
//! - the free objects left in the transfer caches and central lists at most
//!   [`CACHED_SLACK`] above the baseline: `release_free_memory` moves the
//!   transfer caches' objects back to their spans, so the spans whose
//!   objects all came back are free pages again (a 10 s run: 0 B left in the
//!   transfer caches, the central lists back to their 323 KiB baseline);
//! - backed heap bytes (`heap_size - pageheap_unmapped_bytes`) within
//!   [`BACKED_SLACK`] of the baseline: every page freed went back to the
//!   page heap and was released (0.4 MiB before and after a 10 s run with a
//!   216 MiB peak);
//! - RSS within [`RSS_SLACK`] of the baseline (metadata — span records,
//!   pagemap leaves, caches — stays mapped, and RSS counts it), while the
//!   run's peak is many times that (2.8 -> 3.7 MiB after a 160 MiB peak);
//! - the figures add up: `heap_size` is the sum of its parts.

use oxmalloc::OxMalloc;
use std::alloc::{alloc, dealloc, realloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[global_allocator]
static A: OxMalloc = OxMalloc;

const MIB: usize = 1 << 20;
/// How far `allocated_bytes` may end above the baseline.
const ALLOCATED_SLACK: usize = 256 << 10;
/// How far the free objects in the transfer caches and central lists may
/// end above the baseline.
const CACHED_SLACK: usize = MIB;
/// How far backed heap bytes may end above the baseline.
const BACKED_SLACK: usize = 4 * MIB;
/// How far RSS may end above the baseline.
const RSS_SLACK: usize = 16 * MIB;
/// Threads alive at once.
const THREADS: usize = 6;
/// Blocks waiting in the exchange at most.
const EXCHANGE_CAP: usize = 4096;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A live block and the seed of its pattern (byte `i` is `seed + i * 7`,
/// truncated).
struct Block {
    ptr: *mut u8,
    layout: Layout,
    seed: u8,
}

// SAFETY: a block is owned by one thread at a time (it moves through the
// exchange under its lock).
unsafe impl Send for Block {}

impl Block {
    fn new(rng: &mut Rng) -> Block {
        let size = match rng.below(100) {
            0..=79 => rng.below(1024) + 1,
            80..=96 => rng.below(64 << 10) + 1,
            _ => rng.below(MIB as u64) + 1,
        } as usize;
        let align = match rng.below(50) {
            0 => 4096,
            1..=3 => 64,
            _ => 8,
        };
        let layout = Layout::from_size_align(size, align).expect("layout");
        // SAFETY: a non-zero size.
        let ptr = unsafe { alloc(layout) };
        assert!(!ptr.is_null(), "allocation of {size} bytes failed");
        assert_eq!(ptr as usize % align, 0, "{ptr:p} not aligned to {align}");
        let b = Block {
            ptr,
            layout,
            seed: rng.next() as u8,
        };
        b.fill(0);
        b
    }

    fn fill(&self, from: usize) {
        // SAFETY: the block's own bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) };
        for (i, b) in bytes.iter_mut().enumerate().skip(from) {
            *b = self.seed.wrapping_add((i as u8).wrapping_mul(7));
        }
    }

    fn check(&self, what: &str) {
        // SAFETY: the block's own bytes.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) };
        if let Some(i) = (0..bytes.len())
            .find(|&i| bytes[i] != self.seed.wrapping_add((i as u8).wrapping_mul(7)))
        {
            panic!(
                "{what}: block {:p} ({} bytes) changed at offset {i}",
                self.ptr,
                self.layout.size()
            );
        }
    }

    /// Checks the pattern, then resizes (the kept part is checked again and
    /// the rest filled).
    fn resize(&mut self, rng: &mut Rng) {
        self.check("before realloc");
        let old = self.layout.size();
        let new = (rng.below(4 * old as u64 + 64) + 1) as usize;
        // SAFETY: a live block with this layout, a non-zero size.
        let p = unsafe { realloc(self.ptr, self.layout, new) };
        assert!(!p.is_null(), "realloc to {new} bytes failed");
        self.ptr = p;
        self.layout = Layout::from_size_align(new, self.layout.align()).expect("layout");
        assert_eq!(
            p as usize % self.layout.align(),
            0,
            "realloc lost the alignment"
        );
        let kept = Block {
            ptr: p,
            layout: Layout::from_size_align(old.min(new), 1).expect("layout"),
            seed: self.seed,
        };
        kept.check("after realloc");
        std::mem::forget(kept);
        self.fill(old.min(new));
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.check("free");
        // SAFETY: a live block with this layout.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

static EXCHANGE: Mutex<Vec<Block>> = Mutex::new(Vec::new());
static CROSS_FREES: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn exchange() -> std::sync::MutexGuard<'static, Vec<Block>> {
    EXCHANGE.lock().unwrap_or_else(|e| e.into_inner())
}

/// One short-lived thread's work.
fn worker(seed: u64, life: Duration) {
    let mut rng = Rng(seed | 1);
    let mut mine: Vec<Block> = Vec::new();
    let mut bytes = 0usize;
    let end = Instant::now() + life;
    let mut n = 0usize;
    while Instant::now() < end {
        n += 1;
        match rng.below(100) {
            0..=44 if bytes < 32 * MIB && mine.len() < 3000 => {
                let b = Block::new(&mut rng);
                bytes += b.layout.size();
                mine.push(b);
            }
            45..=69 if !mine.is_empty() => {
                let i = rng.below(mine.len() as u64) as usize;
                let b = mine.swap_remove(i);
                bytes -= b.layout.size();
            }
            70..=77 if !mine.is_empty() => {
                let i = rng.below(mine.len() as u64) as usize;
                bytes -= mine[i].layout.size();
                mine[i].resize(&mut rng);
                bytes += mine[i].layout.size();
            }
            78..=87 if !mine.is_empty() => {
                let i = rng.below(mine.len() as u64) as usize;
                let mut x = exchange();
                if x.len() < EXCHANGE_CAP {
                    let b = mine.swap_remove(i);
                    bytes -= b.layout.size();
                    x.push(b);
                }
            }
            88..=98 => {
                let b = exchange().pop();
                if b.is_some() {
                    CROSS_FREES.fetch_add(1, Ordering::Relaxed);
                }
                drop(b);
            }
            99 => oxmalloc::mark_thread_idle(),
            _ => {}
        }
    }
    BLOCKS.fetch_add(n, Ordering::Relaxed);
    // Half of what is left goes to other threads, the rest is freed here.
    let half = mine.len() / 2;
    let mut x = exchange();
    for b in mine.drain(..half) {
        if x.len() < EXCHANGE_CAP {
            x.push(b);
        }
    }
}

/// In a forked child: allocate, check and free blocks, check the inherited
/// blocks of the exchange when its lock is free, leave with `_exit`.
fn child(seed: u64) -> ! {
    // SAFETY: alarm has no preconditions.
    unsafe { libc::alarm(10) };
    let mut rng = Rng(seed | 1);
    let blocks: Vec<Block> = (0..200).map(|_| Block::new(&mut rng)).collect();
    drop(blocks);
    // A lock another thread held at the fork stays held here: skip then.
    if let Ok(x) = EXCHANGE.try_lock() {
        for b in x.iter() {
            b.check("inherited by a child");
        }
    }
    // SAFETY: leaves at once, without running exit handlers.
    unsafe { libc::_exit(0) }
}

fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

fn backed(s: &oxmalloc::Stats) -> usize {
    s.heap_size - s.pageheap_unmapped_bytes
}

#[test]
fn soak() {
    let secs: u64 = std::env::var("OXMALLOC_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    oxmalloc::mark_thread_idle();
    oxmalloc::release_free_memory();
    let base = oxmalloc::stats();
    let base_rss = rss();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut rng = Rng(0x5eed);
    let mut alive: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let (mut threads, mut forks, mut releases) = (0usize, 0usize, 0usize);
    let (mut peak_rss, mut peak_heap) = (0usize, 0usize);
    let mut next_release = start;
    let mut next_fork = start;
    while Instant::now() < deadline {
        let (done, running): (Vec<_>, Vec<_>) = alive.into_iter().partition(|h| h.is_finished());
        alive = running;
        for h in done {
            h.join().expect("a worker thread failed");
        }
        while alive.len() < THREADS {
            let seed = rng.next();
            let life = Duration::from_millis(20 + rng.below(280));
            alive.push(std::thread::spawn(move || worker(seed, life)));
            threads += 1;
        }
        let now = Instant::now();
        if now >= next_release {
            oxmalloc::release_free_memory();
            releases += 1;
            next_release = now + Duration::from_millis(100);
            peak_rss = peak_rss.max(rss());
            peak_heap = peak_heap.max(oxmalloc::stats().heap_size);
        }
        if now >= next_fork {
            let seed = rng.next();
            // SAFETY: the child only allocates, checks and leaves with _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                child(seed);
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "fork child {forks}: status {status:#x}"
            );
            forks += 1;
            next_fork = now + Duration::from_millis(300);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for h in alive {
        h.join().expect("a worker thread failed");
    }
    let leftover = std::mem::take(&mut *exchange());
    drop(leftover);
    oxmalloc::mark_thread_idle();
    oxmalloc::release_free_memory();
    let end = oxmalloc::stats();
    let end_rss = rss();

    let mib = |b: usize| b as f64 / MIB as f64;
    println!(
        "soak {secs} s: {threads} threads, {} operations, {} cross-thread frees, {forks} forks, \
         {releases} releases; peak heap {:.1} MiB, peak RSS {:.1} MiB",
        BLOCKS.load(Ordering::Relaxed),
        CROSS_FREES.load(Ordering::Relaxed),
        mib(peak_heap),
        mib(peak_rss)
    );
    println!(
        "baseline / end: allocated {} / {} B, backed {:.1} / {:.1} MiB, RSS {:.1} / {:.1} MiB, \
         thread caches {} / {} B, central {} / {} B, transfer {} / {} B",
        base.allocated_bytes,
        end.allocated_bytes,
        mib(backed(&base)),
        mib(backed(&end)),
        mib(base_rss),
        mib(end_rss),
        base.thread_cache_free_bytes,
        end.thread_cache_free_bytes,
        base.central_cache_free_bytes,
        end.central_cache_free_bytes,
        base.transfer_cache_free_bytes,
        end.transfer_cache_free_bytes
    );
    assert!(threads > 10 && forks > 0 && CROSS_FREES.load(Ordering::Relaxed) > 0);
    assert!(
        end.allocated_bytes <= base.allocated_bytes + ALLOCATED_SLACK,
        "allocated bytes did not come back: {} -> {}",
        base.allocated_bytes,
        end.allocated_bytes
    );
    let cached = |s: &oxmalloc::Stats| s.central_cache_free_bytes + s.transfer_cache_free_bytes;
    assert_eq!(
        end.transfer_cache_free_bytes, 0,
        "release left transfer caches"
    );
    assert!(
        cached(&end) <= cached(&base) + CACHED_SLACK,
        "{:.1} MiB of free objects left in transfer caches and central lists",
        mib(cached(&end))
    );
    assert!(
        backed(&end) <= backed(&base) + BACKED_SLACK,
        "backed heap bytes did not come back: {:.1} -> {:.1} MiB",
        mib(backed(&base)),
        mib(backed(&end))
    );
    assert!(
        end_rss <= base_rss + RSS_SLACK,
        "RSS did not come back: {:.1} -> {:.1} MiB",
        mib(base_rss),
        mib(end_rss)
    );
    assert_eq!(
        end.heap_size,
        end.allocated_bytes
            + end.pageheap_free_bytes
            + end.pageheap_unmapped_bytes
            + end.central_cache_free_bytes
            + end.transfer_cache_free_bytes
            + end.thread_cache_free_bytes,
        "the figures do not add up: {end:?}"
    );
}
