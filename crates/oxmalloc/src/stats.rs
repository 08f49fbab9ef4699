//! Statistics: the figures gperftools users know, gathered without allocating.

use crate::heap::global;
use crate::meta;
use crate::size_class::{CLASSES, NUM_CLASSES};

/// A snapshot of the global heap's figures, in bytes unless named otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in objects handed to the program (at class granularity).
    pub allocated_bytes: usize,
    /// Bytes obtained from regions and system allocators (`generic.heap_size`).
    pub heap_size: usize,
    /// Free bytes in the page heap, backed by memory.
    pub pageheap_free_bytes: usize,
    /// Free bytes in the page heap whose memory was released to the OS.
    pub pageheap_unmapped_bytes: usize,
    /// Free objects in central lists (in spans).
    pub central_cache_free_bytes: usize,
    /// Free objects parked in transfer caches.
    pub transfer_cache_free_bytes: usize,
    /// Free objects in thread caches.
    pub thread_cache_free_bytes: usize,
    /// Threads with a cache.
    pub thread_cache_count: usize,
    /// Total budget of the thread caches.
    pub max_total_thread_cache_bytes: usize,
    /// Spans handed out (large objects and small-object spans).
    pub spans_in_use: usize,
    /// Free spans in the page heap.
    pub free_spans: usize,
    /// Metadata mapped from the OS (span records, pagemap, caches).
    pub metadata_bytes: usize,
    /// Bytes released to the OS over the process's lifetime.
    pub total_released_bytes: usize,
}

/// Gathers the figures of the global heap.
pub fn stats() -> Stats {
    let h = global();
    let ph = h.pages.lock().stats();
    let mut central = 0;
    let mut transfer_bytes = 0;
    for c in 1..NUM_CLASSES {
        let (free_objects, _) = h.central[c].counts();
        central += free_objects * CLASSES[c].size;
        transfer_bytes += h.transfer[c].batches() * CLASSES[c].batch * CLASSES[c].size;
    }
    let (mut tc_bytes, count, max_total) = {
        let r = h.caches.lock();
        let mut b = 0;
        r.for_each(|tc| b += tc.size());
        (b, r.count, r.max_total)
    };
    // A cache's size is updated without a lock; a concurrent snapshot may
    // catch one mid-update. Clamp so the derived figure never underflows.
    let in_spans = ph.in_use_bytes;
    let free_small = central + transfer_bytes;
    tc_bytes = tc_bytes.min(in_spans.saturating_sub(free_small));
    Stats {
        allocated_bytes: in_spans - free_small - tc_bytes,
        heap_size: ph.system_bytes,
        pageheap_free_bytes: ph.free_bytes,
        pageheap_unmapped_bytes: ph.unmapped_bytes,
        central_cache_free_bytes: central,
        transfer_cache_free_bytes: transfer_bytes,
        thread_cache_free_bytes: tc_bytes,
        thread_cache_count: count,
        max_total_thread_cache_bytes: max_total,
        spans_in_use: ph.spans_in_use,
        free_spans: ph.free_spans,
        metadata_bytes: meta::mapped_bytes(),
        total_released_bytes: ph.total_released_bytes,
    }
}

/// Gives every free page of the global heap back to the OS (as each region's
/// policy allows). Returns the bytes released.
pub fn release_free_memory() -> usize {
    release_to_system(usize::MAX)
}

/// Releases at least `bytes` of free pages to the OS if there are that many,
/// largest spans first. Returns the bytes released.
pub fn release_to_system(bytes: usize) -> usize {
    let pages = bytes.div_ceil(crate::size_class::PAGE_SIZE);
    let released = global().pages.lock().release_at_least(pages);
    released * crate::size_class::PAGE_SIZE
}

/// Gives the calling thread's cached objects back to the central lists
/// (gperftools' `MarkThreadIdle`).
pub fn mark_thread_idle() {
    crate::thread_cache::flush_current();
}
