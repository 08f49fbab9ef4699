//! Releasing is one pass over what can be released (issue 9, item 10):
//! spans of a `Release::Never` region are not on the release path, so
//! 10,000 of them beside 10,000 releasable ones do not make
//! `release_free_memory` quadratic (it took 583 ms under the page-heap lock,
//! against 3.4 ms without the `Never` spans).

mod common;

use common::map_with;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, Heap, RegionOptions, Release};

const BIG: usize = 300 << 10;

/// 20,000 blocks of 300 KiB (38 pages); every other one is returned, to be
/// freed once all are allocated (10,000 free spans between live ones).
fn blocks(heap: &Heap) -> Vec<*mut u8> {
    let big = Layout::from_size_align(BIG, 8).unwrap();
    (0..20_000)
        .filter_map(|i| {
            // SAFETY: non-zero layout; the block stays live or is freed by
            // the caller.
            let p = unsafe { heap.alloc(big) };
            assert!(!p.is_null(), "block {i}");
            (i % 2 == 0).then_some(p)
        })
        .collect()
}

#[test]
fn never_spans_do_not_slow_release_down() {
    let mk = |len: usize, release: Release| {
        let p = map_with(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
        );
        let opts = RegionOptions::new().exclusive(true).release(release);
        // SAFETY: our fresh reservation, handed over for good.
        unsafe { inject(p, len, opts) }.unwrap()
    };
    // One page heap: a `Never` region exactly as large as the first 20,000
    // blocks, then a releasable one for the next 20,000.
    let pinned_len = 20_000 * 38 * 8192;
    let heap = Heap::new_in(mk(pinned_len, Release::Never)).unwrap();
    heap.add_region(mk(pinned_len + (64 << 20), Release::DontNeed))
        .unwrap();
    let mut to_free = blocks(&heap);
    to_free.extend(blocks(&heap));
    let big = Layout::from_size_align(BIG, 8).unwrap();
    for p in to_free {
        // SAFETY: live blocks of `big`.
        unsafe { heap.dealloc(p, big) };
    }
    let s = heap.stats();
    assert!(
        s.regions().all(|r| r.carved_bytes > 0),
        "both regions in use: {s:?}"
    );
    let t = std::time::Instant::now();
    let released = heap.release_free_memory();
    let took = t.elapsed();
    eprintln!("release_free_memory, 10k pinned + 10k releasable spans: {took:?}, {released} bytes");
    // (The incremental scavenger released some spans as they were freed.)
    let s = heap.stats();
    assert!(s.released_bytes >= 10_000 * BIG, "released {s:?}");
    assert!(took.as_millis() < 150, "release took {took:?}");
    let t = std::time::Instant::now();
    assert_eq!(
        heap.release_free_memory(),
        0,
        "nothing left; Never keeps its pages"
    );
    let took = t.elapsed();
    assert!(
        took.as_millis() < 5,
        "a walk past 10k pinned spans took {took:?}"
    );
}
