//! Injection rules: every `InjectError`, adjacent regions never sharing a
//! span, exclusive regions left alone by the global heap, injection racing
//! with allocation, and the O(1) cost of injecting a 1 TiB reservation.

mod common;

use common::{map, map_aligned, PAGE};
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    for_each_span, inject, region_info, region_of, InjectError, OxMalloc, RegionOptions,
};
use std::time::Instant;

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
fn every_error() {
    let opts = RegionOptions::new;
    // SAFETY: every call below is refused before the memory is used.
    unsafe {
        assert_eq!(
            inject(core::ptr::null_mut(), 1 << 20, opts()),
            Err(InjectError::Null)
        );
        let p = map_aligned(4 * PAGE);
        // Less than a whole 8 KiB page once trimmed.
        assert_eq!(inject(p.add(1), PAGE, opts()), Err(InjectError::TooSmall));
        assert_eq!(inject(p, PAGE - 1, opts()), Err(InjectError::TooSmall));
        // Beyond the 48-bit address space.
        assert_eq!(
            inject((1usize << 48) as *mut u8, 1 << 20, opts()),
            Err(InjectError::OutOfRange)
        );
        assert_eq!(
            inject((usize::MAX - PAGE) as *mut u8, 2 * PAGE, opts()),
            Err(InjectError::OutOfRange)
        );
        // Unaligned edges are trimmed: 1 byte in, 1 byte short.
        let id = inject(p.add(1), 4 * PAGE - 2, opts().exclusive(true)).unwrap();
        let info = region_info(id).unwrap();
        assert_eq!((info.start, info.len), (p as usize + PAGE, 2 * PAGE));
        // Overlap with an injected region, from either side.
        assert_eq!(inject(p, 2 * PAGE, opts()), Err(InjectError::Overlap));
        assert_eq!(
            inject(p.add(2 * PAGE), 2 * PAGE, opts()),
            Err(InjectError::Overlap)
        );
        // Overlap with memory oxmalloc already manages (a block it handed out).
        let layout = Layout::from_size_align(4 << 20, PAGE).unwrap();
        let q = OxMalloc.alloc(layout);
        assert!(!q.is_null());
        assert_eq!(inject(q, 1 << 20, opts()), Err(InjectError::Overlap));
        OxMalloc.dealloc(q, layout);
    }
    assert!(!InjectError::Overlap.to_string().is_empty());
    let _: &dyn std::error::Error = &InjectError::TooManyRegions;
}

#[test]
fn adjacent_regions_never_share_a_span() {
    let len = 4 << 20;
    let p = map_aligned(2 * len);
    // SAFETY: two halves of our mapping, handed over for good.
    let (a, b) = unsafe {
        (
            inject(p, len, RegionOptions::new().label("left")).unwrap(),
            inject(p.add(len), len, RegionOptions::new().label("right")).unwrap(),
        )
    };
    // Allocate until both regions are carved, then free everything.
    let layout = Layout::from_size_align(256 << 10, PAGE).unwrap();
    let mut blocks = Vec::new();
    while region_info(b).unwrap().carved_bytes < len || region_info(a).unwrap().carved_bytes < len {
        // SAFETY: non-zero layout.
        let q = unsafe { OxMalloc.alloc(layout) };
        assert!(!q.is_null());
        blocks.push(q);
        assert!(blocks.len() < 10_000, "regions never used");
    }
    for q in blocks {
        // SAFETY: allocated above.
        unsafe { OxMalloc.dealloc(q, layout) };
    }
    let boundary = p as usize + len;
    let mut seen = 0;
    for_each_span(|s| {
        if s.address < boundary && s.address + s.length > boundary {
            panic!(
                "span {:#x}+{:#x} crosses the region boundary",
                s.address, s.length
            );
        }
        if s.address >= p as usize && s.address < p as usize + 2 * len {
            assert_eq!(Some(s.region), region_of(s.address as *const u8));
            seen += s.length;
        }
    });
    assert_eq!(seen, 2 * len, "the walk covers both regions");
}

#[test]
fn exclusive_region_is_never_used_by_the_global_heap() {
    let len = 32 << 20;
    let p = map_aligned(len);
    // SAFETY: our mapping, handed over for good.
    let id = unsafe { inject(p, len, RegionOptions::new().exclusive(true)) }.unwrap();
    let layout = Layout::from_size_align(1 << 20, 16).unwrap();
    let blocks: Vec<_> = (0..64)
        // SAFETY: non-zero layout.
        .map(|_| unsafe { OxMalloc.alloc(layout) })
        .collect();
    for &q in &blocks {
        assert!(!q.is_null());
        assert!((q as usize) < p as usize || q as usize >= p as usize + len);
    }
    assert_eq!(region_info(id).unwrap().carved_bytes, 0);
    for q in blocks {
        // SAFETY: allocated above.
        unsafe { OxMalloc.dealloc(q, layout) };
    }
}

#[test]
fn injection_races_with_allocation() {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2 {
            let stop = &stop;
            s.spawn(move || {
                let mut live = Vec::new();
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let size = 16 + (i * 7919 + t) % 70_000;
                    let layout = Layout::from_size_align(size, 16).unwrap();
                    // SAFETY: non-zero layout.
                    let q = unsafe { OxMalloc.alloc(layout) };
                    assert!(!q.is_null());
                    // SAFETY: the block is ours.
                    unsafe { q.write_bytes(t as u8, size) };
                    live.push((q, layout));
                    if live.len() > 200 {
                        let (q, l) = live.swap_remove(i % live.len());
                        // SAFETY: allocated above with `l`.
                        unsafe {
                            assert_eq!(*q, t as u8);
                            OxMalloc.dealloc(q, l)
                        };
                    }
                    i += 1;
                }
                for (q, l) in live {
                    // SAFETY: allocated above with `l`.
                    unsafe { OxMalloc.dealloc(q, l) };
                }
            });
        }
        let injectors: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut ids = Vec::new();
                    for _ in 0..8 {
                        let p = map_aligned(2 << 20);
                        // SAFETY: our mapping, handed over for good.
                        ids.push(unsafe { inject(p, 2 << 20, RegionOptions::new()) }.unwrap());
                    }
                    ids
                })
            })
            .collect();
        let mut all: Vec<_> = injectors
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 32, "every injection got its own id");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

#[test]
fn one_tebibyte_is_injected_in_constant_time() {
    // The best of three, so a busy machine does not make it flaky.
    let len = 1usize << 40;
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let p = map(len + PAGE);
        let before = rss_kib();
        let t = Instant::now();
        // SAFETY: a NORESERVE reservation of ours, handed over for good.
        let id =
            unsafe { inject(p, len, RegionOptions::new().exclusive(true).label("1 TiB")) }.unwrap();
        best = best.min(t.elapsed());
        let grew = rss_kib().saturating_sub(before);
        assert!(grew < 1024, "injecting 1 TiB raised RSS by {grew} KiB");
        assert!(region_info(id).unwrap().len >= len - PAGE);
    }
    assert!(best.as_micros() < 1000, "injecting 1 TiB took {best:?}");
}

#[test]
fn ranges_that_cannot_be_used_are_refused() {
    let opts = RegionOptions::new;
    // Beyond the user address space (x86-64: 47 bits): the next allocation
    // would fault.
    let high = (1usize << 47) as *mut u8;
    // SAFETY: refused before anything is touched.
    assert_eq!(
        unsafe { inject(high, 1 << 30, opts()) },
        Err(InjectError::OutOfRange)
    );
    // Not mapped.
    let p = map(4 << 20);
    // SAFETY: part of our mapping.
    unsafe { libc::munmap(p.add(1 << 20).cast(), 1 << 20) };
    // SAFETY: refused; nothing is touched.
    assert_eq!(
        unsafe { inject(p, 4 << 20, opts()) },
        Err(InjectError::Unmapped)
    );
    // PROT_NONE, and read-only.
    let q = map(2 << 20);
    // SAFETY: our mapping.
    unsafe { libc::mprotect(q.cast(), 1 << 20, libc::PROT_NONE) };
    // SAFETY: refused.
    assert_eq!(
        unsafe { inject(q, 2 << 20, opts()) },
        Err(InjectError::NotWritable)
    );
    let r = map(1 << 20);
    // SAFETY: our mapping.
    unsafe { libc::mprotect(r.cast(), 1 << 20, libc::PROT_READ) };
    // SAFETY: refused.
    assert_eq!(
        unsafe { inject(r, 1 << 20, opts()) },
        Err(InjectError::NotWritable)
    );
    // Private and shared memory side by side.
    let m = map(2 << 20);
    // SAFETY: MAP_FIXED over the second half of our own mapping.
    let s = unsafe {
        libc::mmap(
            m.add(1 << 20).cast(),
            1 << 20,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    assert_ne!(s, libc::MAP_FAILED);
    // SAFETY: refused.
    assert_eq!(
        unsafe { inject(m, 2 << 20, opts()) },
        Err(InjectError::MixedBacking)
    );
    // A page size that is not a power of two.
    let t = map(1 << 20);
    // SAFETY: refused.
    assert_eq!(
        unsafe { inject(t, 1 << 20, opts().page_size(3 << 20)) },
        Err(InjectError::BadPageSize)
    );
    for e in [
        InjectError::Unmapped,
        InjectError::NotWritable,
        InjectError::MixedBacking,
        InjectError::BadPageSize,
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn injecting_next_to_memory_in_use_costs_no_more_than_elsewhere() {
    // The overlap check follows the managed ranges, not the pages: a range
    // inside a 2 GiB pagemap leaf full of spans is checked as fast as one in
    // untouched address space (it used to scan 262,144 per-page tags).
    let busy: Vec<u8> = vec![1; 64 << 20];
    let near = |len: usize| {
        // A reservation right below the heap's memory, in its leaf.
        let want = (busy.as_ptr() as usize - (256 << 20)) & !(PAGE - 1);
        // SAFETY: a hint only; the kernel may place it elsewhere.
        let p = unsafe {
            libc::mmap(
                want as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        p.cast::<u8>()
    };
    let time = |p: *mut u8, len: usize| {
        let t = Instant::now();
        // SAFETY: a reservation of ours, handed over for good.
        unsafe { inject(p, len, RegionOptions::new().exclusive(true)) }.unwrap();
        t.elapsed()
    };
    let mut best_near = std::time::Duration::MAX;
    let mut best_far = std::time::Duration::MAX;
    for _ in 0..5 {
        best_near = best_near.min(time(near(16 << 20), 16 << 20));
        best_far = best_far.min(time(map(16 << 20), 16 << 20));
    }
    eprintln!("inject near the heap {best_near:?}, elsewhere {best_far:?}");
    assert!(
        best_near <= best_far * 3 + std::time::Duration::from_micros(20),
        "near {best_near:?} vs elsewhere {best_far:?}"
    );
    drop(busy);
}
