//! What the heap limit covers (issue 9, item 8): memory from system
//! allocators, checked with what is really carved (no overshoot); injected
//! regions do not count, and have limits of their own.

mod common;

use common::map_with;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    inject, numeric_property, region_info, region_of, Heap, OxMalloc, RegionOptions, Release,
};

fn held_from_system() -> usize {
    let mut injected = 0;
    oxmalloc::for_each_region(|r| {
        if r.kind == oxmalloc::RegionKind::Injected && !r.exclusive {
            injected += r.carved_bytes - r.released_bytes;
        }
    });
    numeric_property("generic.heap_size").unwrap()
        - numeric_property("tcmalloc.pageheap_unmapped_bytes").unwrap()
        - injected
}

#[test]
fn the_limit_covers_system_memory_only_and_regions_have_their_own() {
    // Only explicit releases, so the figures stay put.
    assert!(oxmalloc::set_numeric_property(
        "oxmalloc.release_rate_milli",
        0
    ));
    let base = held_from_system();
    let limit_mb = base.div_ceil(1 << 20) + 32;
    assert!(oxmalloc::set_numeric_property(
        "tcmalloc.heap_limit_mb",
        limit_mb
    ));
    // A 64 MiB region that is never released, feeding the global heap.
    let len = 64 << 20;
    let pool = map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    );
    // SAFETY: our fresh mapping, handed over for good.
    let id = unsafe { inject(pool, len, RegionOptions::new().release(Release::Never)) }.unwrap();
    let l = Layout::from_size_align(2 << 20, 8).unwrap();
    let mut in_pool = 0;
    let mut from_system = 0;
    loop {
        // SAFETY: non-zero layout; the blocks stay live.
        let p = unsafe { OxMalloc.alloc(l) };
        if p.is_null() {
            break;
        }
        if region_of(p) == Some(id) {
            in_pool += 1;
        } else {
            from_system += 1;
        }
        assert!(in_pool + from_system <= 64, "no limit at all");
    }
    assert!(
        in_pool >= 31,
        "the pool gave only {in_pool} × 2 MiB: injected memory counted"
    );
    assert!(
        from_system >= 14,
        "the system gave only {from_system} × 2 MiB of 32 MiB"
    );
    let held = held_from_system();
    assert!(
        held <= limit_mb << 20,
        "system memory {held} over the {limit_mb} MiB limit (overshoot)"
    );
    assert!(oxmalloc::set_numeric_property("tcmalloc.heap_limit_mb", 0));

    // A region's own limit: at most 16 MiB of a 1 GiB reservation is used.
    let big = 1 << 30;
    let r = map_with(
        big,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    );
    let opts = RegionOptions::new().exclusive(true).limit(16 << 20);
    // SAFETY: as above.
    let rid = unsafe { inject(r, big, opts) }.unwrap();
    assert_eq!(region_info(rid).unwrap().limit, 16 << 20);
    let heap = Heap::new_in(rid).unwrap();
    let mut n = 0;
    // SAFETY: non-zero layout; the blocks stay live until the heap is destroyed.
    while !unsafe { heap.alloc(l) }.is_null() {
        n += 1;
        assert!(n <= 8, "more than the region's limit");
    }
    assert!(n >= 7, "{n} blocks of 2 MiB under a 16 MiB limit");
    assert!(region_info(rid).unwrap().carved_bytes <= 16 << 20);
    let mut heap = heap;
    heap.destroy();
    heap.retire().unwrap();
}
