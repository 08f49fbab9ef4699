//! `region_info` is a snapshot (issue 9, item 11): under load, every reading
//! adds up (carved = in use + free + released), because it is taken under
//! the lock of the heap the region feeds.

mod common;

use common::map_with;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, region_info, Heap, RegionOptions};
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn every_reading_adds_up_under_load() {
    let len = 256 << 20;
    let p = map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    );
    // SAFETY: our fresh reservation, handed over for good.
    let id = unsafe { inject(p, len, RegionOptions::new().exclusive(true)) }.unwrap();
    let heap = Heap::new_in(id).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (heap, stop) = (&heap, &stop);
            s.spawn(move || {
                let mut live = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let size = [300 << 10, 1 << 20, 3 << 20][(i + t) % 3];
                    let l = Layout::from_size_align(size, 8).unwrap();
                    // SAFETY: non-zero layout.
                    let q = unsafe { heap.alloc(l) };
                    if !q.is_null() {
                        live.push((q, l));
                    }
                    if live.len() > 20 || q.is_null() {
                        let (q, l) = live.swap_remove(i % live.len());
                        // SAFETY: a live block of `l`.
                        unsafe { heap.dealloc(q, l) };
                    }
                    if i.is_multiple_of(50) {
                        heap.release_free_memory();
                    }
                    i += 1;
                }
                for (q, l) in live {
                    // SAFETY: live blocks.
                    unsafe { heap.dealloc(q, l) };
                }
            });
        }
        let mut bad = 0;
        for _ in 0..20_000 {
            let r = region_info(id).unwrap();
            if r.carved_bytes != r.in_use_bytes + r.free_bytes + r.released_bytes {
                bad += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(bad, 0, "{bad} of 20,000 readings did not add up");
    });
    heap.retire().unwrap();
}
