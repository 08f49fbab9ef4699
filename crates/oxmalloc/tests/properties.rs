//! Numeric properties against known sequences of allocations, including the
//! cases gperftools' own tests check.

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{numeric_property as get, set_numeric_property as set, OxMalloc};
use std::sync::Mutex;

/// Tests here read process-wide figures: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The serialising lock, usable after another test failed while holding it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn alloc(size: usize) -> *mut u8 {
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(Layout::from_size_align(size, 8).unwrap()) };
    assert!(!p.is_null());
    p
}

fn free(p: *mut u8, size: usize) {
    // SAFETY: allocated by `alloc(size)`.
    unsafe { OxMalloc.dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
}

fn allocated() -> usize {
    get("generic.current_allocated_bytes").unwrap()
}

/// Every name gperftools 2.10's `GetNumericProperty` answers (its
/// `src/tcmalloc.cc`).
const GPERFTOOLS_2_10: &[&str] = &[
    "generic.current_allocated_bytes",
    "generic.heap_size",
    "generic.total_physical_bytes",
    "tcmalloc.slack_bytes",
    "tcmalloc.central_cache_free_bytes",
    "tcmalloc.transfer_cache_free_bytes",
    "tcmalloc.thread_cache_free_bytes",
    "tcmalloc.pageheap_free_bytes",
    "tcmalloc.pageheap_unmapped_bytes",
    "tcmalloc.pageheap_committed_bytes",
    "tcmalloc.pageheap_scavenge_count",
    "tcmalloc.pageheap_commit_count",
    "tcmalloc.pageheap_total_commit_bytes",
    "tcmalloc.pageheap_decommit_count",
    "tcmalloc.pageheap_total_decommit_bytes",
    "tcmalloc.pageheap_reserve_count",
    "tcmalloc.pageheap_total_reserve_bytes",
    "tcmalloc.max_total_thread_cache_bytes",
    "tcmalloc.current_total_thread_cache_bytes",
    "tcmalloc.aggressive_memory_decommit",
    "tcmalloc.heap_limit_mb",
];

#[test]
fn every_name_answers_and_unknown_names_do_not() {
    let _g = serial();
    let ours = [
        "oxmalloc.thread_cache_count",
        "oxmalloc.min_per_thread_cache_bytes",
        "oxmalloc.metadata_bytes",
        "oxmalloc.metadata_mapped_bytes",
        "oxmalloc.region_count",
        "oxmalloc.injected_bytes",
        "oxmalloc.injected_in_use_bytes",
        "oxmalloc.total_released_bytes",
        "oxmalloc.release_rate_milli",
        "oxmalloc.peak_heap_size",
        "oxmalloc.peak_in_use_bytes",
    ];
    for name in GPERFTOOLS_2_10.iter().chain(&ours) {
        assert!(get(name).is_some(), "{name}");
    }
    assert_eq!(get("tcmalloc.no_such_thing"), None);
    // Names that are neither gperftools' nor oxmalloc's are not answered.
    for name in [
        "tcmalloc.impl.thread_cache_count",
        "tcmalloc.min_per_thread_cache_bytes",
    ] {
        assert_eq!(get(name), None, "{name}");
        assert!(!set(name, 1), "{name}");
    }
    assert!(!set("generic.heap_size", 1), "read-only");
    assert!(!set("no.such", 1));
}

#[test]
fn page_heap_counters_follow_growth_release_and_reuse() {
    let _g = serial();
    let g = |name: &str| get(name).unwrap();
    // More than every free page the heap holds (earlier tests leave free and
    // released spans behind), so the block cannot be served without growth.
    let n = (g("generic.heap_size") - allocated() + (24 << 20)).next_multiple_of(1 << 20);
    let reserves = g("tcmalloc.pageheap_reserve_count");
    let p = alloc(n);
    assert!(
        g("tcmalloc.pageheap_reserve_count") > reserves,
        "a block larger than every free page grows the heap"
    );
    assert_eq!(
        g("tcmalloc.pageheap_total_reserve_bytes"),
        g("generic.heap_size")
    );
    // Freed, then released (by the dirty cap at once, or by the call).
    let (decommits, decommitted, unmapped) = (
        g("tcmalloc.pageheap_decommit_count"),
        g("tcmalloc.pageheap_total_decommit_bytes"),
        g("tcmalloc.pageheap_unmapped_bytes"),
    );
    free(p, n);
    oxmalloc::release_free_memory();
    let released = g("tcmalloc.pageheap_unmapped_bytes") - unmapped;
    assert!(released >= n);
    assert!(g("tcmalloc.pageheap_decommit_count") > decommits);
    assert_eq!(
        g("tcmalloc.pageheap_total_decommit_bytes"),
        decommitted + released
    );
    assert_eq!(
        g("tcmalloc.pageheap_committed_bytes"),
        g("generic.heap_size") - g("tcmalloc.pageheap_unmapped_bytes")
    );
    // Reusing released pages commits them again, without growing the heap.
    let (commits, committed, reserves) = (
        g("tcmalloc.pageheap_commit_count"),
        g("tcmalloc.pageheap_total_commit_bytes"),
        g("tcmalloc.pageheap_reserve_count"),
    );
    let p = alloc(n);
    assert!(g("tcmalloc.pageheap_commit_count") > commits);
    assert!(g("tcmalloc.pageheap_total_commit_bytes") >= committed + n);
    assert_eq!(g("tcmalloc.pageheap_reserve_count"), reserves);
    free(p, n);
    // The scavenger runs once enough pages were freed: at most its longest
    // delay, 2^20 pages (8 GiB), of frees (the pages are never touched).
    let scavenges = g("tcmalloc.pageheap_scavenge_count");
    for _ in 0..(8usize << 30) / n + 1 {
        free(alloc(n), n);
    }
    assert!(g("tcmalloc.pageheap_scavenge_count") > scavenges);
}

#[test]
fn allocated_bytes_are_exact() {
    let _g = serial();
    for n in [1, 8, 100, 1000, 5000, 40_000, 300_000, 5 << 20] {
        // Warm the class so a span exists, as gperftools' test does.
        free(alloc(n), n);
        let before = allocated();
        let p = alloc(n);
        let during = allocated();
        assert!(during >= before + n, "malloc({n}): {before} -> {during}");
        free(p, n);
        assert_eq!(allocated(), before, "free after malloc({n})");
    }
}

#[test]
fn peaks_are_high_water_marks() {
    let _g = serial();
    let spans_in_use =
        |s: &oxmalloc::Stats| s.heap_size - s.pageheap_free_bytes - s.pageheap_unmapped_bytes;
    let before = oxmalloc::stats();
    assert!(before.peak_in_use_bytes >= spans_in_use(&before));
    assert!(before.peak_heap_size >= before.heap_size);
    // Above any peak so far: a new high-water mark of this size.
    let n = before.peak_in_use_bytes + (8 << 20);
    let p = alloc(n);
    let during = oxmalloc::stats();
    assert!(
        during.peak_in_use_bytes >= spans_in_use(&before) + n,
        "{during:?}"
    );
    assert_eq!(
        during.peak_in_use_bytes,
        spans_in_use(&during).max(during.peak_in_use_bytes)
    );
    assert!(during.peak_heap_size >= during.heap_size);
    free(p, n);
    let after = oxmalloc::stats();
    // The peak stays when the memory goes.
    assert!(spans_in_use(&after) < spans_in_use(&during) - n / 2);
    assert!(after.peak_in_use_bytes >= during.peak_in_use_bytes);
    assert_eq!(
        get("oxmalloc.peak_in_use_bytes"),
        Some(after.peak_in_use_bytes)
    );
    assert_eq!(get("oxmalloc.peak_heap_size"), Some(after.peak_heap_size));
}

#[test]
fn figures_add_up() {
    let _g = serial();
    let keep: Vec<_> = (0..1000).map(|i| (alloc(i * 37 + 1), i * 37 + 1)).collect();
    let s = oxmalloc::stats();
    assert_eq!(
        s.heap_size,
        s.allocated_bytes
            + s.pageheap_free_bytes
            + s.pageheap_unmapped_bytes
            + s.central_cache_free_bytes
            + s.transfer_cache_free_bytes
            + s.thread_cache_free_bytes
    );
    assert_eq!(
        get("tcmalloc.slack_bytes").unwrap(),
        s.pageheap_free_bytes + s.pageheap_unmapped_bytes
    );
    assert_eq!(
        get("generic.total_physical_bytes").unwrap(),
        s.heap_size - s.pageheap_unmapped_bytes + s.metadata_bytes
    );
    for (p, n) in keep {
        free(p, n);
    }
}

#[test]
fn mark_thread_idle_empties_the_thread_cache() {
    let _g = serial();
    std::thread::spawn(|| {
        let v: Vec<_> = (0..2000).map(|_| alloc(64)).collect();
        for p in v {
            free(p, 64);
        }
        let mine = |f: &dyn Fn() -> usize| f();
        let before = mine(&|| get("tcmalloc.thread_cache_free_bytes").unwrap());
        assert!(before >= 64, "freed objects sit in this thread's cache");
        let mine = oxmalloc::thread_cache_size();
        assert!((64 * 100..=before).contains(&mine), "{mine} of {before}");
        oxmalloc::mark_thread_idle();
        let after = get("tcmalloc.thread_cache_free_bytes").unwrap();
        assert!(after + 64 * 100 <= before, "{before} -> {after}");
        assert_eq!(oxmalloc::thread_cache_size(), 0);
    })
    .join()
    .unwrap();
}

#[test]
fn thread_cache_count_returns_after_short_lived_threads() {
    let _g = serial();
    let base = get("oxmalloc.thread_cache_count").unwrap();
    for _ in 0..1000 {
        std::thread::spawn(|| free(alloc(100), 100)).join().unwrap();
    }
    // Joined threads have retired their caches. The thread of a test that
    // just finished may still be exiting, so the count can only drop.
    let after = get("oxmalloc.thread_cache_count").unwrap();
    assert!(after <= base, "{base} -> {after}");
    assert!(after <= 2, "{after} caches left after 1000 threads");
}

#[test]
fn release_to_system_moves_bytes_to_unmapped() {
    let _g = serial();
    let p = alloc(32 << 20);
    free(p, 32 << 20);
    let before = get("tcmalloc.pageheap_unmapped_bytes").unwrap();
    let released = oxmalloc::release_to_system(1 << 20);
    assert!(released >= 1 << 20);
    let after = get("tcmalloc.pageheap_unmapped_bytes").unwrap();
    assert_eq!(after - before, released);
    assert!(get("oxmalloc.total_released_bytes").unwrap() >= released);
}

#[test]
fn writable_properties_take_effect() {
    let _g = serial();
    let old = get("tcmalloc.max_total_thread_cache_bytes").unwrap();
    assert!(set("tcmalloc.max_total_thread_cache_bytes", 64 << 20));
    assert_eq!(get("tcmalloc.max_total_thread_cache_bytes"), Some(64 << 20));
    assert!(set("tcmalloc.max_total_thread_cache_bytes", old));
    assert!(set("oxmalloc.min_per_thread_cache_bytes", 128 << 10));
    assert_eq!(get("oxmalloc.min_per_thread_cache_bytes"), Some(128 << 10));
    assert!(set("oxmalloc.release_rate_milli", 2500));
    assert_eq!(get("oxmalloc.release_rate_milli"), Some(2500));
    assert!(set("oxmalloc.release_rate_milli", 1000));

    // Aggressive decommit: a freed large block is released at once.
    assert!(set("tcmalloc.aggressive_memory_decommit", 1));
    assert_eq!(get("tcmalloc.aggressive_memory_decommit"), Some(1));
    let p = alloc(8 << 20);
    free(p, 8 << 20);
    assert_eq!(get("tcmalloc.pageheap_free_bytes"), Some(0));
    assert!(set("tcmalloc.aggressive_memory_decommit", 0));
}

#[test]
fn ownership_and_sizes() {
    let _g = serial();
    use oxmalloc::Ownership;
    let p = alloc(100);
    assert!(matches!(oxmalloc::ownership(p), Ownership::Owned(Some(_))));
    // SAFETY: inside the 100-byte block.
    assert!(matches!(
        oxmalloc::ownership(unsafe { p.add(50) }),
        Ownership::Owned(_)
    ));
    let local = 5u64;
    assert_eq!(
        oxmalloc::ownership((&local as *const u64).cast()),
        Ownership::NotOwned
    );
    assert_eq!(
        oxmalloc::allocated_size(p),
        Some(oxmalloc::estimated_allocated_size(100))
    );
    assert!(oxmalloc::estimated_allocated_size(100) >= 100);
    assert_eq!(oxmalloc::estimated_allocated_size(300_000), 303_104); // 37 pages
    free(p, 100);
}
