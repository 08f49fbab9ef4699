//! Multi-threaded stress with `OxMalloc` as the global allocator of this test
//! binary.
//!
//! - Producer/consumer: objects of many sizes allocated on one thread and
//!   freed on another, some handed back to be freed by their producer.
//! - Thousands of short-lived threads, each allocating and freeing, and
//!   leaving objects behind for the main thread to free after they exited;
//!   then the number of thread caches is back to what it was.
//! - Frees (and allocations) after a thread's cache is gone: from a
//!   `thread_local!` destructor and from a pthread key destructor that runs
//!   after oxmalloc's own thread-exit hook.
//!
//! Every object carries a pattern derived from its address and size, checked
//! before it is freed. The tests of this binary take `SERIAL` so that global
//! figures (the thread-cache count) are not disturbed by each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;

#[global_allocator]
static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An object stamped with a pattern derived from its address and size.
struct Stamped(Box<[u8]>);

fn key(p: *const u8, len: usize) -> u64 {
    ((p as u64) ^ (len as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)]
fn byte(k: u64, i: usize) -> u8 {
    (k >> ((i & 7) * 8)) as u8 ^ (i >> 3) as u8
}

impl Stamped {
    fn new(len: usize) -> Self {
        let mut b = vec![0u8; len].into_boxed_slice();
        let k = key(b.as_ptr(), len);
        for (i, x) in b.iter_mut().enumerate() {
            *x = byte(k, i);
        }
        Stamped(b)
    }

    /// Panics naming the object if its pattern changed.
    fn check(&self) {
        let k = key(self.0.as_ptr(), self.0.len());
        if let Some(i) = self
            .0
            .iter()
            .enumerate()
            .position(|(i, &x)| x != byte(k, i))
        {
            panic!(
                "object {:p} of {} bytes corrupted at offset {i}",
                self.0.as_ptr(),
                self.0.len()
            );
        }
    }
}

impl Drop for Stamped {
    fn drop(&mut self) {
        self.check();
    }
}

/// A small xorshift generator (no allocation, deterministic per seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Mostly small, some medium, a few large (beyond the small classes).
    fn size(&mut self) -> usize {
        let r = self.next();
        match r % 100 {
            0..=79 => (r >> 8) as usize % 512,
            80..=97 => (r >> 8) as usize % (32 << 10),
            _ => 200_000 + (r >> 8) as usize % 200_000,
        }
    }

    /// Mostly tiny, some up to 8 KiB; one call in 256 large.
    fn size_small(&mut self) -> usize {
        let r = self.next();
        match r % 256 {
            0 => 260_000 + (r >> 8) as usize % 100_000,
            1..=50 => (r >> 8) as usize % (8 << 10),
            _ => (r >> 8) as usize % 512,
        }
    }
}

#[test]
fn producer_consumer_cross_thread_frees() {
    let _g = serial();
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 40_000;
    let (to_consumer, from_producers) = mpsc::sync_channel::<Vec<Stamped>>(64);
    let from_producers = std::sync::Arc::new(Mutex::new(from_producers));
    let checked = std::sync::Arc::new(AtomicUsize::new(0));

    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = from_producers.clone();
            let checked = checked.clone();
            thread::spawn(move || loop {
                let msg = rx.lock().unwrap().recv();
                let Ok(batch) = msg else { break };
                for o in &batch {
                    o.check();
                }
                checked.fetch_add(batch.len(), Ordering::Relaxed);
                drop(batch);
            })
        })
        .collect();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|t| {
            let tx = to_consumer.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + t as u64 * 7919);
                // Objects kept for a while on the producer, freed here.
                let mut kept: Vec<Stamped> = Vec::new();
                let mut sent = 0;
                while sent < PER_PRODUCER {
                    let n = 1 + rng.next() as usize % 64;
                    let batch: Vec<Stamped> = (0..n).map(|_| Stamped::new(rng.size())).collect();
                    kept.push(Stamped::new(rng.size()));
                    if kept.len() > 256 {
                        let i = rng.next() as usize % kept.len();
                        kept.swap_remove(i);
                    }
                    sent += n;
                    tx.send(batch).unwrap();
                }
                for o in &kept {
                    o.check();
                }
                sent
            })
        })
        .collect();
    drop(to_consumer);
    let sent: usize = producers.into_iter().map(|h| h.join().unwrap()).sum();
    for c in consumers {
        c.join().unwrap();
    }
    assert_eq!(checked.load(Ordering::Relaxed), sent);
    assert!(sent >= PRODUCERS * PER_PRODUCER);
}

#[test]
fn short_lived_threads_give_their_caches_back() {
    let _g = serial();
    const THREADS: usize = 3000;
    const WAVE: usize = 8;
    let caches_before = oxmalloc::stats().thread_cache_count;
    let mut left_behind: Vec<Stamped> = Vec::new();
    let mut max_seen = 0;
    for wave in 0..THREADS / WAVE {
        let hs: Vec<_> = (0..WAVE)
            .map(|i| {
                thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9 ^ (((wave * WAVE + i) as u64 + 1) * 104_729));
                    let mut v: Vec<Stamped> =
                        (0..64).map(|_| Stamped::new(rng.size_small())).collect();
                    // Churn: free and reallocate some of them.
                    for _ in 0..64 {
                        let j = rng.next() as usize % v.len();
                        v[j] = Stamped::new(rng.size_small());
                    }
                    // Half is freed here, half by the main thread after this
                    // thread exited.
                    let rest = v.split_off(v.len() / 2);
                    drop(v);
                    rest
                })
            })
            .collect();
        max_seen = max_seen.max(oxmalloc::stats().thread_cache_count);
        for h in hs {
            left_behind.extend(h.join().unwrap());
        }
        if left_behind.len() > 4096 {
            left_behind.clear();
        }
    }
    drop(left_behind);
    let caches_after = oxmalloc::stats().thread_cache_count;
    assert!(
        max_seen > caches_before,
        "threads registered caches ({caches_before} before, {max_seen} at most)"
    );
    // Tolerance 1: a test thread the harness starts meanwhile has a cache.
    assert!(
        caches_after <= caches_before + 1,
        "{THREADS} threads exited but thread_cache_count went from {caches_before} to {caches_after}"
    );
    assert!(caches_after <= 8, "thread_cache_count {caches_after}");
}

static TLS_DTOR_CHECKED: AtomicUsize = AtomicUsize::new(0);

struct FreesOnExit(Vec<Stamped>);

impl Drop for FreesOnExit {
    fn drop(&mut self) {
        for o in &self.0 {
            o.check();
        }
        let n = self.0.len();
        self.0.clear();
        // Allocate and free again during thread teardown.
        let again: Vec<Stamped> = (0..32).map(|i| Stamped::new(i * 40)).collect();
        drop(again);
        TLS_DTOR_CHECKED.fetch_add(n, Ordering::Relaxed);
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<FreesOnExit> =
        const { std::cell::RefCell::new(FreesOnExit(Vec::new())) };
}

#[test]
fn frees_from_thread_local_destructor() {
    let _g = serial();
    let before = TLS_DTOR_CHECKED.load(Ordering::Relaxed);
    let caches_before = oxmalloc::stats().thread_cache_count;
    let hs: Vec<_> = (0..16)
        .map(|t| {
            thread::spawn(move || {
                let mut rng = Rng(77 + t);
                ON_EXIT.with(|c| {
                    c.borrow_mut()
                        .0
                        .extend((0..100).map(|_| Stamped::new(rng.size())))
                });
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(TLS_DTOR_CHECKED.load(Ordering::Relaxed) - before, 1600);
    let after = oxmalloc::stats().thread_cache_count;
    assert!(
        after <= caches_before + 1,
        "caches {caches_before} -> {after}"
    );
}

/// What the pthread key destructor saw.
static KEY_DTOR_RUNS: AtomicUsize = AtomicUsize::new(0);
static KEY_DTOR_CACHES: AtomicUsize = AtomicUsize::new(usize::MAX);

struct LateFree {
    /// Destructor rounds still to wait (so that oxmalloc's own thread-exit
    /// hook, whatever its key's index, has run before we free).
    rounds: usize,
    objects: Vec<Stamped>,
    key: libc::pthread_key_t,
}

unsafe extern "C" fn late_free(p: *mut libc::c_void) {
    // SAFETY: the value set by the test: a leaked `Box<LateFree>`.
    let mut b = unsafe { Box::from_raw(p.cast::<LateFree>()) };
    if b.rounds > 0 {
        b.rounds -= 1;
        let key = b.key;
        // SAFETY: re-arms the key for the next destructor round; glibc runs
        // up to PTHREAD_DESTRUCTOR_ITERATIONS (4) rounds.
        unsafe { libc::pthread_setspecific(key, Box::into_raw(b).cast()) };
        return;
    }
    // Here oxmalloc has retired this thread's cache.
    KEY_DTOR_CACHES.store(oxmalloc::stats().thread_cache_count, Ordering::SeqCst);
    for o in &b.objects {
        o.check();
    }
    let n = b.objects.len();
    drop(b);
    // Allocate and free after the cache is gone, across size classes.
    let mut again: Vec<Stamped> = (0..200).map(|i| Stamped::new(i * 13)).collect();
    again.push(Stamped::new(300_000));
    for o in &again {
        o.check();
    }
    drop(again);
    KEY_DTOR_RUNS.fetch_add(n, Ordering::SeqCst);
}

/// One thread whose objects are freed, and which allocates again, from a
/// pthread key destructor that runs after oxmalloc's thread-exit hook.
/// Returns (caches while the destructor ran, caches before the thread).
fn late_free_once(key: libc::pthread_key_t) -> (usize, usize) {
    let caches_before = oxmalloc::stats().thread_cache_count;
    KEY_DTOR_RUNS.store(0, Ordering::SeqCst);
    thread::spawn(move || {
        let mut rng = Rng(4242);
        let objects: Vec<Stamped> = (0..500).map(|_| Stamped::new(rng.size())).collect();
        let v = Box::new(LateFree {
            rounds: 1,
            objects,
            key,
        });
        // SAFETY: the key was created by the caller; the value is a leaked
        // box the destructor takes back.
        unsafe { libc::pthread_setspecific(key, Box::into_raw(v).cast()) };
    })
    .join()
    .unwrap();
    assert_eq!(KEY_DTOR_RUNS.load(Ordering::SeqCst), 500, "destructor ran");
    (KEY_DTOR_CACHES.load(Ordering::SeqCst), caches_before)
}

#[test]
fn frees_after_the_thread_cache_is_gone() {
    let _g = serial();
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: a valid out-pointer and an extern "C" destructor.
    assert_eq!(
        unsafe { libc::pthread_key_create(&mut key, Some(late_free)) },
        0
    );
    // The cache count is global: a test thread the harness starts meanwhile
    // adds one. A real leak shows in every attempt.
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let (seen, before) = late_free_once(key);
        attempts.push((seen, before));
        if seen <= before {
            break;
        }
    }
    let &(seen, before) = attempts.last().unwrap();
    assert!(
        seen <= before,
        "the exiting thread's cache was still registered when the late destructor \
         ran, or its frees registered a new one: (caches seen, before) = {attempts:?}"
    );
    // Frees after a thread's cache is gone must not register a new one: ten
    // more such threads leave the count where it was, give or take the
    // harness's own threads starting other tests meanwhile (at most two).
    let base = oxmalloc::stats().thread_cache_count;
    for _ in 0..10 {
        late_free_once(key);
    }
    let now = oxmalloc::stats().thread_cache_count;
    assert!(
        now <= base + 2,
        "frees after thread exit left caches: {base} -> {now} after 10 threads"
    );
    // SAFETY: no thread uses the key any more.
    unsafe { libc::pthread_key_delete(key) };
}

static STOP_ALLOCATING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn fork_while_other_threads_allocate() {
    let _g = serial();
    STOP_ALLOCATING.store(false, Ordering::SeqCst);
    let workers: Vec<_> = (0..3u64)
        .map(|t| {
            thread::spawn(move || {
                let mut rng = Rng(99 + t);
                let mut rounds = 0u64;
                while !STOP_ALLOCATING.load(Ordering::Relaxed) {
                    let v: Vec<Stamped> = (0..50).map(|_| Stamped::new(rng.size())).collect();
                    drop(v);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for _ in 0..40 {
        // SAFETY: the child only allocates, checks and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let mut rng = Rng(5);
            let v: Vec<Stamped> = (0..300).map(|_| Stamped::new(rng.size())).collect();
            let ok = v.len() == 300;
            drop(v);
            // SAFETY: ends the child without running the parent's atexit work.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "forked child failed to allocate (status {status:#x})"
        );
    }
    STOP_ALLOCATING.store(true, Ordering::SeqCst);
    for w in workers {
        assert!(w.join().unwrap() > 0);
    }
}
