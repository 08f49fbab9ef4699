//! Giving memory back to the OS: after ~64 MiB of large blocks are allocated,
//! touched and freed, `release_free_memory()` releases them, the process's
//! resident set shrinks by about that much, and the statistics move the bytes
//! from free to unmapped. Released pages are used again, reading as zero.
//!
//! One test in this binary: it compares process-wide figures (RSS and the
//! global heap's counters). The test harness keeps the system allocator, so
//! the only oxmalloc calls are the ones made here.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

const MIB: usize = 1 << 20;
const BLOCK: usize = 2 * MIB;
const BLOCKS: usize = 32;

/// Resident set size of this process in bytes, from `/proc/self/statm`.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .expect("statm has a resident field")
        .parse()
        .expect("resident pages");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

fn alloc_blocks(zeroed: bool) -> Vec<*mut u8> {
    let layout = Layout::from_size_align(BLOCK, 16).unwrap();
    (0..BLOCKS)
        .map(|i| {
            // SAFETY: a valid non-zero layout.
            let p = unsafe {
                if zeroed {
                    OxMalloc.alloc_zeroed(layout)
                } else {
                    OxMalloc.alloc(layout)
                }
            };
            assert!(!p.is_null());
            // SAFETY: a fresh block of BLOCK bytes.
            let s = unsafe { std::slice::from_raw_parts_mut(p, BLOCK) };
            if zeroed {
                assert!(s.iter().all(|&b| b == 0), "alloc_zeroed block {i} not zero");
            }
            // Touch every page so that it is resident.
            s.fill(i as u8 | 1);
            p
        })
        .collect()
}

fn free_blocks(v: Vec<*mut u8>) {
    let layout = Layout::from_size_align(BLOCK, 16).unwrap();
    for p in v {
        // SAFETY: live blocks allocated with `layout`.
        unsafe { OxMalloc.dealloc(p, layout) };
    }
}

fn released_by_regions() -> usize {
    let mut total = 0;
    oxmalloc::for_each_region(|r| total += r.released_bytes);
    total
}

#[test]
fn release_free_memory_gives_pages_back() {
    let total = BLOCKS * BLOCK;
    // Only explicit releases here: no incremental scavenging meanwhile.
    assert!(oxmalloc::set_numeric_property(
        "oxmalloc.release_rate_milli",
        0
    ));
    // Start from a heap with nothing left to release.
    oxmalloc::release_free_memory();

    let rss0 = rss();
    let blocks = alloc_blocks(false);
    let rss1 = rss();
    assert!(
        rss1 >= rss0 + total * 3 / 4,
        "touching {total} bytes raised RSS only from {rss0} to {rss1}"
    );
    free_blocks(blocks);
    let before = oxmalloc::stats();
    let rss2 = rss();
    assert!(
        before.pageheap_free_bytes >= total,
        "freed blocks are free in the page heap: {before:?}"
    );

    let released = oxmalloc::release_free_memory();
    let after = oxmalloc::stats();
    let rss3 = rss();

    assert!(released >= total, "released {released} < {total}");
    assert_eq!(
        after.pageheap_unmapped_bytes - before.pageheap_unmapped_bytes,
        released,
        "unmapped bytes rise by what was released: {before:?} -> {after:?}"
    );
    assert_eq!(
        before.pageheap_free_bytes - after.pageheap_free_bytes,
        released,
        "free bytes fall by what was released"
    );
    assert_eq!(
        after.total_released_bytes - before.total_released_bytes,
        released
    );
    assert_eq!(after.allocated_bytes, before.allocated_bytes);
    assert_eq!(
        after.heap_size, before.heap_size,
        "nothing unmapped or added"
    );
    assert_eq!(
        released_by_regions(),
        after.pageheap_unmapped_bytes,
        "regions' released bytes add up to the page heap's"
    );
    assert!(
        rss2 >= rss3 + total * 3 / 4,
        "RSS did not drop: {rss2} before release, {rss3} after (released {released})"
    );
    // Nothing more to release.
    assert_eq!(oxmalloc::release_free_memory(), 0);

    // Released pages are used again and read as zero.
    let again = alloc_blocks(true);
    let reused = oxmalloc::stats();
    assert_eq!(
        reused.heap_size, after.heap_size,
        "the released pages were reused, not new memory"
    );
    assert!(
        reused.pageheap_unmapped_bytes + total <= after.pageheap_unmapped_bytes,
        "the blocks came from released pages: {after:?} -> {reused:?}"
    );
    let rss4 = rss();
    assert!(
        rss4 >= rss3 + total * 3 / 4,
        "reused pages are resident again"
    );
    free_blocks(again);
    assert!(oxmalloc::release_free_memory() >= total);
    assert!(rss() + total * 3 / 4 <= rss4, "second release dropped RSS");
}
