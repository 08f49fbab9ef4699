//! Time-based release: free pages left alone for an interval go back to the
//! OS without any further allocator activity.

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{numeric_property, OxMalloc};
use std::time::{Duration, Instant};

#[test]
fn idle_free_pages_are_released_by_the_background_thread() {
    // The activity-driven scavenger must not do the work for us.
    assert!(oxmalloc::set_numeric_property(
        "oxmalloc.release_rate_milli",
        0
    ));
    let layout = Layout::from_size_align(16 << 20, 16).unwrap();
    // SAFETY: non-zero layouts; freed right away.
    let blocks: Vec<_> = (0..4).map(|_| unsafe { OxMalloc.alloc(layout) }).collect();
    for p in blocks {
        assert!(!p.is_null());
        // SAFETY: ours; allocated with `layout`.
        unsafe {
            p.write_bytes(1, layout.size());
            OxMalloc.dealloc(p, layout);
        }
    }
    let free = numeric_property("tcmalloc.pageheap_free_bytes").unwrap();
    assert!(
        free >= 64 << 20,
        "64 MiB sit free in the page heap ({free})"
    );
    let unmapped0 = numeric_property("tcmalloc.pageheap_unmapped_bytes").unwrap();

    assert_eq!(oxmalloc::background_release_interval_ms(), None);
    assert!(oxmalloc::start_background_release(20));
    assert_eq!(oxmalloc::background_release_interval_ms(), Some(20));
    let t = Instant::now();
    while numeric_property("tcmalloc.pageheap_free_bytes").unwrap() != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nothing was released"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let unmapped = numeric_property("tcmalloc.pageheap_unmapped_bytes").unwrap();
    assert!(unmapped >= unmapped0 + (64 << 20));
    // Starting again only changes the interval.
    assert!(oxmalloc::start_background_release(1000));
    assert_eq!(oxmalloc::background_release_interval_ms(), Some(1000));
}

#[test]
fn one_tick_at_a_time() {
    // A program with its own timer calls release_idle_memory() per tick.
    let layout = Layout::from_size_align(1 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(layout) };
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(p, layout) };
    // The background thread of the other test may tick in between; over two
    // ticks of ours the block has been idle for at least one.
    let released = oxmalloc::release_idle_memory() + oxmalloc::release_idle_memory();
    let free = numeric_property("tcmalloc.pageheap_free_bytes").unwrap();
    assert!(
        released >= 1 << 20 || free == 0,
        "released {released}, free {free}"
    );
}
