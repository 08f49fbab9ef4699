//! 10,000 heaps created, used from 4 threads and retired in a loop:
//! metadata and the region table return to where they were (no leak). Its
//! own test binary, so no other test moves the figures meanwhile.

mod common;

use allocator_api2::vec::Vec as AVec;
use common::map_with;
use oxmalloc::{inject, Heap, RegionId, RegionOptions};

fn private(len: usize) -> *mut u8 {
    map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    )
}

fn region(p: *mut u8, len: usize) -> RegionId {
    // SAFETY: a fresh mapping of ours, handed over for good.
    unsafe {
        inject(
            p,
            len,
            RegionOptions::new().exclusive(true).label("test heap"),
        )
    }
    .unwrap()
}

fn inside(p: *const u8, base: *mut u8, len: usize) -> bool {
    (base as usize..base as usize + len).contains(&(p as usize))
}

#[test]
fn ten_thousand_heaps_leave_nothing_behind() {
    let len = 1 << 20;
    let mem = private(len * 4);
    let metadata = |when: &str| {
        let m = oxmalloc::numeric_property("oxmalloc.metadata_bytes").unwrap();
        eprintln!("{when}: metadata {m}");
        m
    };
    // Warm up (first heap records, thread tables).
    let run = |rounds: usize| {
        for round in 0..rounds {
            let i = round % 4;
            // The same four ranges again and again: injected, used from
            // four threads, retired.
            // SAFETY: one of the four ranges of our mapping.
            let p = unsafe { mem.add(i * len) };
            let heap = Heap::new_in(region(p, len)).unwrap();
            let base = p as usize;
            std::thread::scope(|s| {
                for t in 0..4 {
                    let heap = &heap;
                    s.spawn(move || {
                        let mut v: AVec<u32, &Heap> = AVec::new_in(heap);
                        v.extend(0..(100 + t as u32));
                        assert!(inside(v.as_ptr().cast(), base as *mut u8, len));
                    });
                }
            });
            heap.retire().unwrap();
        }
    };
    run(100);
    let before = metadata("after 100");
    let regions_before = oxmalloc::numeric_property("oxmalloc.region_count").unwrap();
    run(9_900);
    let after = metadata("after 10000");
    assert!(
        after <= before + (2 << 20),
        "metadata grew from {before} to {after}"
    );
    assert_eq!(
        oxmalloc::numeric_property("oxmalloc.region_count").unwrap(),
        regions_before
    );
}
