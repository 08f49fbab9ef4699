//! The tunable settings of one heap, in one place.
//!
//! Every heap owns a [`Settings`]: the release rate, the heap limit,
//! aggressive decommit and the thread-cache budgets. They are atomics, read
//! without a lock on the paths that consult them and written through the
//! functions below (numeric properties, environment variables at start-up).
//! The thread-cache budgets are applied by the heap's cache registry, which
//! owns the budget arithmetic; this record only holds the numbers.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Default total thread-cache budget of a heap (32 MiB).
pub const DEFAULT_MAX_TOTAL_THREAD_CACHE: usize = 32 << 20;
/// Most one thread's cache may hold (4 MiB).
pub const MAX_THREAD_CACHE: usize = 4 << 20;
/// What a new thread's cache starts with, and the step budgets move by.
pub const MIN_THREAD_CACHE: usize = 64 << 10;
/// The default release rate, in thousandths (gperftools' 1.0).
pub const DEFAULT_RELEASE_RATE_MILLI: usize = 1000;

/// The settings of one heap.
pub(crate) struct Settings {
    /// Release rate in thousandths (gperftools' `TCMALLOC_RELEASE_RATE` ×
    /// 1000): after releasing `n` pages the scavenger waits for
    /// `n × 1000 / rate` more pages to be freed. 0 turns it off.
    release_rate_milli: AtomicUsize,
    /// Bytes of memory obtained from system allocators the heap may hold
    /// (not counting released bytes or injected regions); 0 = no limit.
    limit: AtomicUsize,
    /// Release every span as soon as it is freed.
    aggressive: AtomicBool,
    /// Total budget of the heap's thread caches.
    max_total_thread_cache: AtomicUsize,
    /// Floor of one thread cache's budget when budget is stolen.
    min_per_thread_cache: AtomicUsize,
    /// The interval of time-based release in milliseconds (0: off). Only the
    /// global heap has a background release thread.
    background_ms: AtomicU64,
}

impl Settings {
    /// The defaults.
    pub(crate) const fn new() -> Self {
        Self {
            release_rate_milli: AtomicUsize::new(DEFAULT_RELEASE_RATE_MILLI),
            limit: AtomicUsize::new(0),
            aggressive: AtomicBool::new(false),
            max_total_thread_cache: AtomicUsize::new(DEFAULT_MAX_TOTAL_THREAD_CACHE),
            min_per_thread_cache: AtomicUsize::new(MIN_THREAD_CACHE),
            background_ms: AtomicU64::new(0),
        }
    }

    /// The defaults, with the incremental scavenger off (for tests that count
    /// free spans).
    #[cfg(test)]
    pub(crate) const fn without_scavenger() -> Self {
        let mut s = Self::new();
        s.release_rate_milli = AtomicUsize::new(0);
        s
    }

    /// The release rate in thousandths.
    pub(crate) fn release_rate_milli(&self) -> usize {
        self.release_rate_milli.load(Ordering::Relaxed)
    }

    /// Sets the release rate in thousandths.
    pub(crate) fn set_release_rate_milli(&self, v: usize) {
        self.release_rate_milli.store(v, Ordering::Relaxed);
    }

    /// The heap limit in bytes (0: none).
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the heap limit in bytes (0: none).
    pub(crate) fn set_limit(&self, v: usize) {
        self.limit.store(v, Ordering::Relaxed);
    }

    /// Whether every freed span is released at once.
    pub(crate) fn aggressive(&self) -> bool {
        self.aggressive.load(Ordering::Relaxed)
    }

    /// Turns aggressive decommit on or off.
    pub(crate) fn set_aggressive(&self, v: bool) {
        self.aggressive.store(v, Ordering::Relaxed);
    }

    /// Total budget of the thread caches.
    pub(crate) fn max_total_thread_cache(&self) -> usize {
        self.max_total_thread_cache.load(Ordering::Relaxed)
    }

    /// Records a new total budget; returns the old one. Only the cache
    /// registry calls this, under its lock, so budget and record agree.
    pub(crate) fn swap_max_total_thread_cache(&self, v: usize) -> usize {
        self.max_total_thread_cache.swap(v, Ordering::Relaxed)
    }

    /// Floor of one thread's budget.
    pub(crate) fn min_per_thread_cache(&self) -> usize {
        self.min_per_thread_cache.load(Ordering::Relaxed)
    }

    /// Sets the floor of one thread's budget.
    pub(crate) fn set_min_per_thread_cache(&self, v: usize) {
        self.min_per_thread_cache.store(v, Ordering::Relaxed);
    }

    /// The background release interval in milliseconds (0: off).
    pub(crate) fn background_ms(&self) -> u64 {
        self.background_ms.load(Ordering::Acquire)
    }

    /// Sets the background release interval; returns the previous one.
    pub(crate) fn swap_background_ms(&self, v: u64) -> u64 {
        self.background_ms.swap(v, Ordering::AcqRel)
    }
}
