//! loom models: the interleavings of a few threads on the engine's lock, on
//! the publication of pagemap leaves and on the hand-over of a thread's
//! cache. A data race (an access loom cannot order after the last write) or
//! a failed assertion fails the test.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use oxmalloc_loom::cache_home::CacheHome;
use oxmalloc_loom::publish::Published;
use oxmalloc_loom::sync::Mutex;
use std::ptr::NonNull;

/// Runs `f` under loom, exploring every interleaving with up to three
/// preemptions (the usual bound: bugs that need more are rare, and a waiter
/// yielding on a lock word multiplies the unbounded search).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Data guarded by a `Mutex<()>` of the engine's, in a cell loom watches.
struct Guarded {
    lock: Mutex<()>,
    count: UnsafeCell<usize>,
}

// SAFETY: `count` is only touched while `lock` is held.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Self {
        Self {
            lock: Mutex::new(()),
            count: UnsafeCell::new(0),
        }
    }

    /// One increment under the lock: a read and a write of the cell.
    fn increment(&self) {
        let _g = self.lock.lock();
        // SAFETY: the lock is held.
        self.count.with_mut(|c| unsafe { *c += 1 });
    }
}

#[test]
fn the_lock_excludes_and_hands_over_what_it_guards() {
    model(|| {
        let g = Arc::new(Guarded::new());
        let other = {
            let g = g.clone();
            thread::spawn(move || {
                g.increment();
                g.increment();
            })
        };
        g.increment();
        other.join().unwrap();
        // SAFETY: the other thread has been joined.
        assert_eq!(g.count.with(|c| unsafe { *c }), 3);
    });
}

#[test]
fn raw_locking_as_fork_and_statistics_do_excludes_too() {
    use oxmalloc_loom::sync::RawLock;
    model(|| {
        let g = Arc::new(Guarded::new());
        let g2 = g.clone();
        // A thread that only takes the lock if it is free at once (the
        // statistics' try), beside one that takes and releases it raw (the
        // fork handlers).
        let t = thread::spawn(move || {
            if g2.lock.try_raw_lock() {
                // SAFETY: the lock is held.
                g2.count.with_mut(|c| unsafe { *c += 1 });
                // SAFETY: taken just above by this thread.
                unsafe { RawLock::raw_unlock(&g2.lock) };
            }
        });
        RawLock::raw_lock(&g.lock);
        // SAFETY: the lock is held.
        g.count.with_mut(|c| unsafe { *c += 10 });
        // SAFETY: taken just above by this thread.
        unsafe { RawLock::raw_unlock(&g.lock) };
        t.join().unwrap();
        // SAFETY: the other thread has been joined.
        let n = g.count.with(|c| unsafe { *c });
        assert!(n == 10 || n == 11, "{n}");
    });
}

/// A record as a pagemap leaf is: written by its maker, then only read.
struct Record {
    value: UnsafeCell<u64>,
}

// SAFETY: `value` is written only before the record is published.
unsafe impl Sync for Record {}

struct Shared {
    slot: Published<Record>,
    lock: Mutex<()>,
    made: AtomicUsize,
}

impl Shared {
    /// `get_or_make` with a maker that writes the record and counts itself.
    fn get_or_make(&self) -> &Record {
        let make = || {
            self.made.fetch_add(1, Ordering::Relaxed);
            let r = Box::new(Record {
                value: UnsafeCell::new(0),
            });
            // SAFETY: ours until published.
            r.value.with_mut(|v| unsafe { *v = 42 });
            Some(NonNull::from(Box::leak(r)))
        };
        // SAFETY: the record is initialised, leaked until the model's end,
        // used by nothing else; one lock for the slot.
        unsafe { self.slot.get_or_make(&self.lock, make) }.expect("the maker never fails")
    }
}

/// Reads a published record's value (loom checks that its write happened
/// before).
fn value(r: &Record) -> u64 {
    // SAFETY: only read after publication.
    r.value.with(|v| unsafe { *v })
}

#[test]
fn a_leaf_is_made_once_and_seen_whole() {
    model(|| {
        let s = Arc::new(Shared {
            slot: Published::new(),
            lock: Mutex::new(()),
            made: AtomicUsize::new(0),
        });
        let makers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    let r = s.get_or_make();
                    assert_eq!(value(r), 42);
                    r as *const Record as usize
                })
            })
            .collect();
        // A reader that never makes: what it finds is whole.
        if let Some(r) = s.slot.get() {
            assert_eq!(value(r), 42);
        }
        let addrs: Vec<usize> = makers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(addrs[0], addrs[1], "both threads use the same leaf");
        assert_eq!(s.made.load(Ordering::Relaxed), 1, "made exactly once");
        assert!(s.slot.is_published());
        // SAFETY: leaked by the one maker; no thread uses it any more.
        drop(unsafe { Box::from_raw(addrs[0] as *mut Record) });
    });
}

/// A thread cache as the hand-over sees it: the heap it serves (read by an
/// exiting thread without a lock, so atomic), and whether it is registered
/// (the registry's, changed only under that heap's lock).
struct Cache {
    heap: AtomicUsize,
    registered: UnsafeCell<bool>,
    retired: AtomicUsize,
}

// SAFETY: `registered` is only touched under the lock of the heap the cache
// serves (or before the cache is shared).
unsafe impl Sync for Cache {}

struct World {
    /// The registry locks of two heaps.
    heaps: [Mutex<()>; 2],
    /// The exiting thread's home of its cache of heap 0.
    home: CacheHome<Cache>,
    empty: Cache,
    cache: Cache,
}

impl World {
    fn empty(&self) -> *mut Cache {
        &self.empty as *const Cache as *mut Cache
    }

    /// Retires `c` under the lock of its heap (held by the caller):
    /// unregisters it, counts the retirement, points its home at the
    /// sentinel.
    fn retire_locked(&self, c: &Cache) {
        // SAFETY: the lock of the cache's heap is held.
        let was = c
            .registered
            .with_mut(|r| unsafe { std::mem::replace(&mut *r, false) });
        assert!(was, "a cache retired twice");
        c.retired.fetch_add(1, Ordering::Relaxed);
        self.home.clear(self.empty());
    }
}

#[test]
fn a_cache_is_retired_once_by_its_thread_or_by_its_heap() {
    model(|| {
        let w = Arc::new(World {
            heaps: [Mutex::new(()), Mutex::new(())],
            home: CacheHome::new(std::ptr::null_mut()),
            empty: Cache {
                heap: AtomicUsize::new(0),
                registered: UnsafeCell::new(false),
                retired: AtomicUsize::new(0),
            },
            cache: Cache {
                heap: AtomicUsize::new(0),
                registered: UnsafeCell::new(true),
                retired: AtomicUsize::new(0),
            },
        });
        w.home.clear(w.empty());
        w.home.set(&w.cache as *const Cache as *mut Cache);
        // Heap 0 is retired while its thread exits: it retires every
        // registered cache of its own under its lock, then the record is
        // reused for heap 1 (as the record pool would hand it out again).
        let heap = {
            let w = w.clone();
            thread::spawn(move || {
                {
                    let _g = w.heaps[0].lock();
                    // SAFETY: heap 0's lock is held and the cache serves it.
                    if w.cache.registered.with(|r| unsafe { *r }) {
                        w.retire_locked(&w.cache);
                    }
                }
                let _g = w.heaps[1].lock();
                w.cache.heap.store(1, Ordering::Relaxed);
            })
        };
        // The exiting thread: claims its cache under the lock of the heap
        // the record says it serves.
        let lock_of = |c: *mut Cache| {
            // SAFETY: records stay valid; `heap` is atomic.
            let h = unsafe { &*c }.heap.load(Ordering::Relaxed);
            w.heaps[h].lock()
        };
        if let Some((c, _g)) = w.home.claim(w.empty(), lock_of) {
            // SAFETY: the claim holds the lock of the heap `c` serves.
            w.retire_locked(unsafe { &*c });
        }
        heap.join().unwrap();
        assert_eq!(
            w.cache.retired.load(Ordering::Relaxed),
            1,
            "retired exactly once"
        );
        assert_eq!(w.home.get(), w.empty(), "the home points at the sentinel");
    });
}
