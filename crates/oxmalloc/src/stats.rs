//! Statistics: the figures gperftools users know, gathered without allocating.
//!
//! The figures add up exactly:
//! `heap_size = allocated + pageheap_free + pageheap_unmapped + central +
//! transfer + thread caches`. Bytes at the end of a small-object span that
//! are too few for one more object count as central-cache bytes (they are
//! held by the central lists, not by the program).

use crate::heap::global;
use crate::meta;
use crate::page_heap::MAX_EXACT_PAGES;
use crate::region::{self, RegionId, RegionInfo};
use crate::size_class::{CLASSES, PAGE_SIZE};

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
    /// Free objects in central lists (in spans), plus span tails too short
    /// for an object.
    pub central_cache_free_bytes: usize,
    /// Free objects parked in transfer caches.
    pub transfer_cache_free_bytes: usize,
    /// Free objects in thread caches.
    pub thread_cache_free_bytes: usize,
    /// Threads with a cache.
    pub thread_cache_count: usize,
    /// Total budget of the thread caches.
    pub max_total_thread_cache_bytes: usize,
    /// Floor of one thread cache's budget.
    pub min_per_thread_cache_bytes: usize,
    /// Spans handed out (large objects and small-object spans).
    pub spans_in_use: usize,
    /// Free spans in the page heap.
    pub free_spans: usize,
    /// Metadata written so far, in whole pages (span records, pagemap
    /// leaves, caches): what metadata costs in memory.
    pub metadata_bytes: usize,
    /// Metadata mapped from the OS: [`Stats::metadata_bytes`] plus
    /// reservations never written (most of each 3 MiB pagemap leaf, the
    /// rest of the current 1 MiB chunk).
    pub metadata_mapped_bytes: usize,
    /// Bytes released to the OS over the process's lifetime.
    pub total_released_bytes: usize,
    /// The heap limit in bytes (0: none).
    pub heap_limit_bytes: usize,
    /// The highest `heap_size` so far. The heap gives memory back to the OS
    /// by releasing pages, which keeps them in the heap (as
    /// `pageheap_unmapped_bytes`), so today this equals `heap_size`; it
    /// differs once memory leaves the heap for good.
    pub peak_heap_size: usize,
    /// The high-water mark of the bytes in spans handed out by the page heap
    /// (large objects and small-object spans): what the program held at its
    /// peak **plus** the free objects then cached in the thread caches,
    /// transfer caches and central lists, which live in those spans. An upper
    /// bound of the peak of `allocated_bytes`, updated whenever a span is
    /// handed out.
    pub peak_in_use_bytes: usize,
    /// Runs of the incremental scavenger (`tcmalloc.pageheap_scavenge_count`).
    pub pageheap_scavenge_count: usize,
    /// Commits: released spans reused, and growths of the heap
    /// (`tcmalloc.pageheap_commit_count`).
    pub pageheap_commit_count: usize,
    /// Bytes committed over the process's lifetime
    /// (`tcmalloc.pageheap_total_commit_bytes`).
    pub pageheap_total_commit_bytes: usize,
    /// Spans released to the OS (`tcmalloc.pageheap_decommit_count`); their
    /// bytes are [`Stats::total_released_bytes`].
    pub pageheap_decommit_count: usize,
    /// Growths of the heap (`tcmalloc.pageheap_reserve_count`); their bytes
    /// are [`Stats::heap_size`], which never shrinks.
    pub pageheap_reserve_count: usize,
}

impl Stats {
    /// Memory backed by RAM or swap: the heap less what was released, plus
    /// the metadata written (`generic.total_physical_bytes`).
    pub fn physical_bytes(&self) -> usize {
        self.heap_size - self.pageheap_unmapped_bytes + self.metadata_bytes
    }
}

/// Calls `f(start, len)` for every mapping that holds oxmalloc's metadata
/// (span records, pagemap leaves, thread caches, heap records), newest
/// first, without allocating or taking a lock, so `f` may allocate
/// (mappings made meanwhile may be missed). None of them is ever inside an
/// injected region; [`Stats::metadata_mapped_bytes`] is their total length.
pub fn for_each_metadata_mapping(f: impl FnMut(usize, usize)) {
    meta::for_each_mapping(f)
}

/// Free objects of one class in the shared caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Object size.
    pub size: usize,
    /// Spans of this class in use.
    pub spans: usize,
    /// Free objects in the central list (including never-used ones).
    pub central_objects: usize,
    /// Free objects in the transfer cache.
    pub transfer_objects: usize,
}

/// Per-class figures of class `c`, taking only that class's locks.
///
/// # Panics
/// If `c` is not below [`NUM_CLASSES`](crate::size_class::NUM_CLASSES).
pub fn class_stats(c: usize) -> ClassStats {
    let h = global();
    let (central_objects, spans) = h.central[c].counts();
    ClassStats {
        size: CLASSES[c].size,
        spans,
        central_objects,
        transfer_objects: h.transfer.len(c),
    }
}

/// Gathers the figures of the global heap: a consistent snapshot, taken with
/// every lock of the heap held (only the threads' own fast paths run on).
pub fn stats() -> Stats {
    // The environment's settings (heap limit, budgets) show even before the
    // first allocation.
    crate::global::init();
    let h = global();
    let t = h.totals(crate::thread_cache::cached_bytes);
    let ph = t.pages;
    Stats {
        allocated_bytes: t.allocated,
        heap_size: ph.system_bytes,
        pageheap_free_bytes: ph.free_bytes,
        pageheap_unmapped_bytes: ph.unmapped_bytes,
        central_cache_free_bytes: t.central,
        transfer_cache_free_bytes: t.transfer,
        thread_cache_free_bytes: t.thread_caches,
        thread_cache_count: t.caches,
        max_total_thread_cache_bytes: h.settings.max_total_thread_cache(),
        min_per_thread_cache_bytes: h.settings.min_per_thread_cache(),
        spans_in_use: ph.spans_in_use,
        free_spans: ph.free_spans,
        metadata_bytes: meta::touched_bytes(),
        metadata_mapped_bytes: meta::mapped_bytes(),
        total_released_bytes: ph.total_released_bytes,
        heap_limit_bytes: h.settings.limit(),
        peak_heap_size: ph.peak_system_bytes,
        peak_in_use_bytes: ph.peak_in_use_bytes,
        pageheap_scavenge_count: ph.scavenge_count,
        pageheap_commit_count: ph.commit_count,
        pageheap_total_commit_bytes: ph.total_commit_bytes,
        pageheap_decommit_count: ph.decommit_count,
        pageheap_reserve_count: ph.reserve_count,
    }
}

/// Free spans of the page heap by length: `f(pages, backed, released)` for
/// every length 1..=128 pages, then once for all longer spans with
/// `pages = 129`. The counts are copied out under the lock and `f` runs
/// after it is released, so `f` may allocate.
pub(crate) fn free_span_lengths(mut f: impl FnMut(usize, usize, usize)) {
    let mut counts = [(0usize, 0usize); MAX_EXACT_PAGES + 2];
    {
        let p = global().pages.lock();
        for (n, c) in counts.iter_mut().enumerate().skip(1) {
            *c = p.free_span_counts(n);
        }
    }
    for (n, &(a, b)) in counts.iter().enumerate().skip(1) {
        f(n, a, b);
    }
}

/// A snapshot of region `id`: consistent (carved = in use + free + released),
/// taken under the lock of the heap the region feeds.
pub fn region_info(id: RegionId) -> Option<RegionInfo> {
    if !id.is_live() {
        return None;
    }
    let slot = region::heap_slot(id.slot());
    match crate::heap::by_slot(slot) {
        Some(h) => {
            let _g = h.pages.lock();
            region::info_of(id.index())
        }
        // An exclusive region no heap is bound to: nothing changes it.
        None => region::info_of(id.index()),
    }
}

/// Calls `f` for every region with a consistent snapshot of it, without
/// allocating. No lock is held while `f` runs, so it may allocate.
pub fn for_each_region(mut f: impl FnMut(&RegionInfo)) {
    for i in 0..region::high() {
        let Some(id) = RegionId::from_index(i) else {
            continue;
        };
        if let Some(info) = region_info(id) {
            f(&info);
        }
    }
}

/// Gives every free page of the global heap back to the OS (as each region's
/// policy allows), the pages of spans whose objects sat in the transfer
/// caches included. Returns the bytes released.
pub fn release_free_memory() -> usize {
    global().release_free_memory() * PAGE_SIZE
}

/// Releases at least `bytes` of free pages to the OS if there are that many,
/// largest spans first. Returns the bytes released (whole spans, so possibly
/// more than asked).
pub fn release_to_system(bytes: usize) -> usize {
    let pages = bytes.div_ceil(PAGE_SIZE);
    let released = global().pages.lock().release_at_least(pages);
    released * PAGE_SIZE
}

/// Gives the calling thread's cached objects back to the central lists
/// (gperftools' `MarkThreadIdle`).
pub fn mark_thread_idle() {
    crate::thread_cache::flush_current();
}

/// Free bytes in the calling thread's cache (gperftools'
/// `GetThreadCacheSize`); 0 when the thread has none.
pub fn thread_cache_size() -> usize {
    crate::thread_cache::current_size()
}
