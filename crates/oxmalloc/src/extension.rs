//! gperftools' `MallocExtension`, in Rust: numeric properties by name,
//! ownership and size queries, and a walk over all spans.
//!
//! gperftools 2.10 answers every name below that does not start with
//! `oxmalloc.`; oxmalloc answers all of them (and no other `tcmalloc.` or
//! `generic.` name).
//!
//! | property | writable | meaning |
//! |---|---|---|
//! | `generic.current_allocated_bytes` | | bytes in objects the program holds |
//! | `generic.heap_size` | | bytes obtained from regions and system allocators |
//! | `generic.total_physical_bytes` | | heap less released bytes, plus metadata written |
//! | `tcmalloc.pageheap_free_bytes` | | free page-heap bytes backed by memory |
//! | `tcmalloc.pageheap_unmapped_bytes` | | free page-heap bytes released to the OS |
//! | `tcmalloc.pageheap_committed_bytes` | | heap less released bytes |
//! | `tcmalloc.pageheap_scavenge_count` | | runs of the incremental scavenger |
//! | `tcmalloc.pageheap_commit_count` | | released spans reused, plus heap growths |
//! | `tcmalloc.pageheap_total_commit_bytes` | | bytes those committed |
//! | `tcmalloc.pageheap_decommit_count` | | spans released to the OS |
//! | `tcmalloc.pageheap_total_decommit_bytes` | | bytes those released |
//! | `tcmalloc.pageheap_reserve_count` | | heap growths |
//! | `tcmalloc.pageheap_total_reserve_bytes` | | bytes those obtained (the heap never shrinks) |
//! | `tcmalloc.central_cache_free_bytes` | | free bytes in central lists |
//! | `tcmalloc.transfer_cache_free_bytes` | | free bytes in transfer caches |
//! | `tcmalloc.thread_cache_free_bytes` | | free bytes in thread caches |
//! | `tcmalloc.current_total_thread_cache_bytes` | | the same |
//! | `tcmalloc.slack_bytes` | | page-heap free + unmapped bytes |
//! | `tcmalloc.max_total_thread_cache_bytes` | yes | total thread-cache budget |
//! | `tcmalloc.heap_limit_mb` | yes | heap limit in MiB (0: none) |
//! | `tcmalloc.aggressive_memory_decommit` | yes | 1: release every free span at once |
//! | `oxmalloc.thread_cache_count` | | threads with a cache |
//! | `oxmalloc.min_per_thread_cache_bytes` | yes | floor of one thread's budget |
//! | `oxmalloc.metadata_bytes` | | metadata written (whole pages): what it costs in memory |
//! | `oxmalloc.metadata_mapped_bytes` | | metadata mapped from the OS, written or not |
//! | `oxmalloc.region_count` | | regions (system allocators and injected) |
//! | `oxmalloc.injected_bytes` | | bytes of injected regions |
//! | `oxmalloc.injected_in_use_bytes` | | bytes of injected regions in spans in use |
//! | `oxmalloc.total_released_bytes` | | bytes released over the process's life |
//! | `oxmalloc.release_rate_milli` | yes | release rate in thousandths (1000 = 1.0) |
//! | `oxmalloc.peak_heap_size` | | the highest `generic.heap_size` so far |
//! | `oxmalloc.peak_in_use_bytes` | | high-water mark of the bytes in spans in use (objects the program held plus free objects cached in those spans) |

use crate::global::{self as front, init};
use crate::heap::global;
use crate::pagemap::PAGEMAP;
use crate::region::{self, RegionId, RegionKind};
use crate::size_class::{self, PAGE_SHIFT};
use crate::span::{Span, SpanState};
use crate::stats::stats;

/// The value of a numeric property (see the module docs for the names), or
/// `None` for an unknown name.
pub fn numeric_property(name: &str) -> Option<usize> {
    let s = stats();
    let mut injected = 0;
    let mut injected_in_use = 0;
    let mut regions = 0;
    if name.starts_with("oxmalloc.") {
        crate::stats::for_each_region(|r| {
            regions += 1;
            if r.kind == RegionKind::Injected {
                injected += r.len;
                injected_in_use += r.in_use_bytes;
            }
        });
    }
    Some(match name {
        "generic.current_allocated_bytes" => s.allocated_bytes,
        "generic.heap_size" => s.heap_size,
        "generic.total_physical_bytes" => s.physical_bytes(),
        "tcmalloc.pageheap_free_bytes" => s.pageheap_free_bytes,
        "tcmalloc.pageheap_unmapped_bytes" => s.pageheap_unmapped_bytes,
        "tcmalloc.pageheap_committed_bytes" => s.heap_size - s.pageheap_unmapped_bytes,
        "tcmalloc.pageheap_scavenge_count" => s.pageheap_scavenge_count,
        "tcmalloc.pageheap_commit_count" => s.pageheap_commit_count,
        "tcmalloc.pageheap_total_commit_bytes" => s.pageheap_total_commit_bytes,
        "tcmalloc.pageheap_decommit_count" => s.pageheap_decommit_count,
        "tcmalloc.pageheap_total_decommit_bytes" => s.total_released_bytes,
        "tcmalloc.pageheap_reserve_count" => s.pageheap_reserve_count,
        "tcmalloc.pageheap_total_reserve_bytes" => s.heap_size,
        "tcmalloc.central_cache_free_bytes" => s.central_cache_free_bytes,
        "tcmalloc.transfer_cache_free_bytes" => s.transfer_cache_free_bytes,
        "tcmalloc.thread_cache_free_bytes" | "tcmalloc.current_total_thread_cache_bytes" => {
            s.thread_cache_free_bytes
        }
        "tcmalloc.slack_bytes" => s.pageheap_free_bytes + s.pageheap_unmapped_bytes,
        "tcmalloc.max_total_thread_cache_bytes" => s.max_total_thread_cache_bytes,
        "oxmalloc.thread_cache_count" => s.thread_cache_count,
        "oxmalloc.min_per_thread_cache_bytes" => s.min_per_thread_cache_bytes,
        "tcmalloc.heap_limit_mb" => s.heap_limit_bytes >> 20,
        "tcmalloc.aggressive_memory_decommit" => global().settings.aggressive() as usize,
        "oxmalloc.metadata_bytes" => s.metadata_bytes,
        "oxmalloc.metadata_mapped_bytes" => s.metadata_mapped_bytes,
        "oxmalloc.region_count" => regions,
        "oxmalloc.injected_bytes" => injected,
        "oxmalloc.injected_in_use_bytes" => injected_in_use,
        "oxmalloc.total_released_bytes" => s.total_released_bytes,
        "oxmalloc.release_rate_milli" => global().settings.release_rate_milli(),
        "oxmalloc.peak_heap_size" => s.peak_heap_size,
        "oxmalloc.peak_in_use_bytes" => s.peak_in_use_bytes,
        _ => return None,
    })
}

/// Sets a writable numeric property; false for an unknown or read-only name.
pub fn set_numeric_property(name: &str, value: usize) -> bool {
    // Settings from the environment first, so they never override this one.
    init();
    let h = global();
    match name {
        "tcmalloc.max_total_thread_cache_bytes" => h.set_max_total_thread_cache(value),
        "oxmalloc.min_per_thread_cache_bytes" => h.settings.set_min_per_thread_cache(value),
        "tcmalloc.heap_limit_mb" => h.settings.set_limit(value.saturating_mul(1 << 20)),
        "tcmalloc.aggressive_memory_decommit" => {
            let mut p = h.pages.lock();
            h.settings.set_aggressive(value != 0);
            if value != 0 {
                p.release_at_least(usize::MAX);
            }
        }
        "oxmalloc.release_rate_milli" => h.settings.set_release_rate_milli(value),
        _ => return false,
    }
    true
}

/// Whether oxmalloc handed out a pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Inside a live allocation of oxmalloc's, in this region (`None` only
    /// when the region could not be determined).
    Owned(Option<RegionId>),
    /// Not inside a live allocation of oxmalloc's.
    NotOwned,
}

/// Whether `ptr` points into a live allocation of oxmalloc's (any byte of a
/// small object's span or of a large allocation's pages).
pub fn ownership(ptr: *const u8) -> Ownership {
    let page = ptr as usize >> PAGE_SHIFT;
    let owned = PAGEMAP.class(page) != 0 || {
        let s = PAGEMAP.get(page);
        // SAFETY: pagemap entries point at span records, never unmapped.
        !s.is_null()
            && unsafe {
                (*s).state == SpanState::InUse && (*s).start <= page && page < (*s).end_page()
            }
    };
    if owned {
        Ownership::Owned(region::region_of(ptr))
    } else {
        Ownership::NotOwned
    }
}

/// Bytes usable at `ptr`, which must be the start of a live allocation of
/// oxmalloc's (else `None`).
pub fn allocated_size(ptr: *const u8) -> Option<usize> {
    front::usable_size(ptr)
}

/// The bytes a request of `size` would really get (`nallocx`).
pub fn estimated_allocated_size(size: usize) -> usize {
    size_class::allocation_size(size, 1).unwrap_or(usize::MAX)
}

/// The state of a span in a [`for_each_span`] walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeState {
    /// A large allocation, or a span carved into small objects.
    InUse,
    /// Free, backed by memory.
    Free,
    /// Free, its memory released to the OS.
    Released,
}

/// One span, as [`for_each_span`] reports it (gperftools' `Ranges`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRange {
    /// First byte.
    pub address: usize,
    /// Length in bytes.
    pub length: usize,
    /// In use, free or released.
    pub state: RangeState,
    /// Size class (0: large allocation or free span).
    pub class: usize,
    /// Small-object spans: objects carved out of it and not returned to it
    /// (held by the program or by caches); 0 otherwise.
    pub objects: usize,
    /// The region the span belongs to.
    pub region: RegionId,
}

/// Calls `f` for every span of the global heap, in address order within each
/// pagemap leaf, without allocating. The heap is locked during the walk: `f`
/// must not allocate through oxmalloc.
pub fn for_each_span(mut f: impl FnMut(&SpanRange)) {
    let _g = global().pages.lock();
    PAGEMAP.for_each_registered(|page, s: &Span| {
        if s.start != page || !core::ptr::eq(PAGEMAP.get(s.end_page() - 1), s) {
            return 0;
        }
        f(&SpanRange {
            address: s.addr(),
            length: s.bytes(),
            state: match s.state {
                SpanState::InUse => RangeState::InUse,
                SpanState::Free => RangeState::Free,
                SpanState::Released => RangeState::Released,
            },
            class: s.class as usize,
            objects: s.allocated as usize,
            region: RegionId::current(s.region),
        });
        s.npages
    });
}
