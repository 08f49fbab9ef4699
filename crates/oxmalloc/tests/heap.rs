//! Heaps bound to regions: everything comes from their regions, objects are
//! freed from any thread through any entry point, exhaustion fails without
//! falling back, growth hooks add regions, retiring hands the ranges back,
//! destroying frees everything at once.

mod common;

use allocator_api2::vec::Vec as AVec;
use common::{map_with, PAGE};
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, Heap, HeapError, HeapOptions, OxMalloc, RegionId, RegionOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

fn shared(len: usize) -> *mut u8 {
    map_with(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
}

fn private(len: usize) -> *mut u8 {
    map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    )
}

/// An exclusive region over a fresh mapping.
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
fn hash_map_of_vectors_lives_in_a_shared_mapping() {
    let len = 64 << 20;
    let base = shared(len);
    let heap = Heap::new_in(region(base, len)).unwrap();
    let mut map = hashbrown::HashMap::with_capacity_and_hasher_in(
        16,
        hashbrown::DefaultHashBuilder::default(),
        &heap,
    );
    for i in 0..2000u32 {
        let mut v = AVec::new_in(&heap);
        for j in 0..(i % 300) {
            v.push(i.wrapping_mul(31).wrapping_add(j));
        }
        map.insert(i, v);
    }
    for (k, v) in map.iter() {
        assert!(
            inside(k as *const u32 as *const u8, base, len),
            "key outside"
        );
        if v.capacity() > 0 {
            assert!(inside(v.as_ptr().cast(), base, len), "vector outside");
        }
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, k.wrapping_mul(31).wrapping_add(j as u32));
        }
    }
    let s = heap.stats();
    assert!(s.in_use_bytes > 0);
    assert_eq!(
        s.carved_bytes,
        s.in_use_bytes + s.free_bytes + s.central_bytes + s.cached_bytes + s.released_bytes,
        "{s:?}"
    );
    drop(map);
    assert_eq!(heap.stats().in_use_bytes, 0);
    heap.retire().unwrap();
}

#[test]
fn objects_are_freed_from_other_threads_through_any_entry_point() {
    let len = 512 << 20;
    let base = private(len);
    let heap = Heap::new_in(region(base, len)).unwrap();
    let sizes = [8usize, 24, 100, 1000, 5000, 40_000, 300_000];
    let blocks: Vec<(usize, usize)> = (0..3000)
        .map(|i| {
            let size = sizes[i % sizes.len()];
            let l = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: non-zero layout.
            let p = unsafe { heap.alloc(l) };
            assert!(!p.is_null());
            assert!(inside(p, base, len));
            // SAFETY: a fresh block of `size` bytes.
            unsafe { p.write_bytes(i as u8, size) };
            (p as usize, size)
        })
        .collect();
    std::thread::scope(|s| {
        for (t, chunk) in blocks.chunks(1000).enumerate() {
            let heap = &heap;
            s.spawn(move || {
                for (k, &(p, size)) in chunk.iter().enumerate() {
                    let p = p as *mut u8;
                    let l = Layout::from_size_align(size, 8).unwrap();
                    // SAFETY: live blocks, each freed once.
                    unsafe {
                        assert_eq!(*p.add(size - 1), (t * 1000 + k) as u8);
                        match k % 2 {
                            0 => heap.dealloc(p, l),
                            _ => OxMalloc.dealloc(p, l),
                        }
                    }
                }
            });
        }
    });
    assert_eq!(heap.stats().in_use_bytes, 0, "{:?}", heap.stats());
    // The freed memory is reused by the heap.
    let l = Layout::from_size_align(1000, 8).unwrap();
    // SAFETY: non-zero layout; freed right after.
    unsafe {
        let p = heap.alloc(l);
        assert!(inside(p, base, len));
        heap.dealloc(p, l);
    }
    heap.retire().unwrap();
}

#[test]
fn an_exhausted_heap_fails_and_the_global_heap_goes_on() {
    let len = 4 << 20;
    let base = private(len);
    let heap = Heap::new_in(region(base, len)).unwrap();
    let l = Layout::from_size_align(256 << 10, 8).unwrap();
    let mut got = Vec::new();
    loop {
        // SAFETY: non-zero layout.
        let p = unsafe { heap.alloc(l) };
        if p.is_null() {
            break;
        }
        assert!(inside(p, base, len), "no fallback to other memory");
        got.push(p);
        assert!(got.len() <= 16, "more than the region holds");
    }
    assert!(
        got.len() >= 14,
        "only {} blocks of 256 KiB in 4 MiB",
        got.len()
    );
    let v = vec![1u8; 8 << 20];
    assert_eq!(v[100], 1, "the global heap still works");
    assert!(AVec::<u8, &Heap>::new_in(&heap)
        .try_reserve(1 << 20)
        .is_err());
    for p in got.drain(..) {
        // SAFETY: live blocks of `l`.
        unsafe { heap.dealloc(p, l) };
    }
    let mut again = AVec::<u8, &Heap>::new_in(&heap);
    again.try_reserve(1 << 20).unwrap();
    assert!(
        inside(again.as_ptr(), base, len),
        "freeing restored the heap"
    );
    drop(again);
    heap.retire().unwrap();
}

static GROWN: AtomicUsize = AtomicUsize::new(0);

fn grow(bytes: usize) -> Option<RegionId> {
    GROWN.fetch_add(1, Ordering::Relaxed);
    let len = bytes.max(8 << 20).next_multiple_of(PAGE);
    let p = private(len);
    // SAFETY: a fresh mapping of ours, handed over for good.
    unsafe { inject(p, len, RegionOptions::new().exclusive(true).label("grown")) }.ok()
}

#[test]
fn a_growth_hook_adds_regions() {
    let len = 2 << 20;
    let base = private(len);
    let heap = Heap::with_options(region(base, len), HeapOptions::new().growth(&grow)).unwrap();
    let mut v: AVec<u64, &Heap> = AVec::new_in(&heap);
    for i in 0..3_000_000u64 {
        v.push(i);
    }
    assert!(GROWN.load(Ordering::Relaxed) >= 1, "the hook was called");
    assert!(
        !inside(v.as_ptr().cast(), base, len),
        "24 MiB cannot be in 2 MiB"
    );
    let r = oxmalloc::region_of(v.as_ptr().cast()).unwrap();
    assert_eq!(oxmalloc::region_info(r).unwrap().label(), "grown");
    assert_eq!(v[2_999_999], 2_999_999);
    let regions = heap.stats().regions().count();
    assert!(regions >= 2, "{regions} regions");
    drop(v);
    assert_eq!(heap.retire().unwrap().iter().count(), regions);

    // Small objects too: their spans come from the hook's regions.
    let before = GROWN.load(Ordering::Relaxed);
    let base = private(1 << 20);
    let heap = Heap::with_options(region(base, 1 << 20), HeapOptions::new().growth(&grow)).unwrap();
    let boxes: Vec<allocator_api2::boxed::Box<[u64; 8], &Heap>> = (0..200_000u64)
        .map(|i| allocator_api2::boxed::Box::new_in([i; 8], &heap))
        .collect();
    assert!(
        GROWN.load(Ordering::Relaxed) > before,
        "the hook was called for small objects"
    );
    assert!(boxes.iter().enumerate().all(|(i, b)| b[7] == i as u64));
    drop(boxes);
    heap.retire().unwrap();
}

#[test]
fn binding_errors_are_typed() {
    let base = private(1 << 20);
    // SAFETY: a fresh mapping of ours.
    let shared_id = unsafe { inject(base, 1 << 20, RegionOptions::new()) }.unwrap();
    assert_eq!(
        Heap::new_in(shared_id).unwrap_err(),
        HeapError::NotExclusive
    );
    let id = region(private(1 << 20), 1 << 20);
    let heap = Heap::new_in(id).unwrap();
    assert_eq!(Heap::new_in(id).unwrap_err(), HeapError::AlreadyBound);
    assert_eq!(heap.add_region(id), Err(HeapError::AlreadyBound));
    assert!(!HeapError::AlreadyBound.to_string().is_empty());
    let _: &dyn std::error::Error = &HeapError::NotExclusive;
    heap.retire().unwrap();
    assert_eq!(Heap::new_in(id).unwrap_err(), HeapError::RetiredRegion);
    let unknown = RegionId::from_index(oxmalloc::MAX_REGIONS - 1);
    assert!(unknown.is_none());
}

#[test]
fn retire_waits_for_every_object_then_hands_the_range_back() {
    let len = 16 << 20;
    let base = private(len);
    let id = region(base, len);
    let heap = Heap::new_in(id).unwrap();
    let l = Layout::from_size_align(48, 8).unwrap();
    // Objects freed on another thread sit in that thread's cache of the heap.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let heap = &heap;
        s.spawn(move || {
            for _ in 0..100 {
                // SAFETY: non-zero layout; freed at once into this thread's
                // cache of the heap.
                unsafe {
                    let p = heap.alloc(l);
                    heap.dealloc(p, l);
                }
            }
            done_tx.send(()).unwrap();
            rx.recv().unwrap(); // stays alive (its cache too) until told
        });
        done_rx.recv().unwrap();
        // SAFETY: non-zero layout.
        let live = unsafe { heap.alloc(l) } as usize;
        tx.send(()).unwrap();
        // The scope ends the thread; the object stays live.
        LIVE.store(live, Ordering::Relaxed);
    });
    let heap = match heap.retire() {
        Ok(_) => panic!("retired with a live object"),
        Err((h, e)) => {
            // The object's class (48 bytes; more in the hardened build,
            // whose objects end in a canary).
            let stride = oxmalloc::size_class::CLASSES[oxmalloc::size_class::class_for(48, 8)].size;
            assert_eq!(e.live_bytes(), stride);
            assert!(e.to_string().contains(&stride.to_string()));
            h
        }
    };
    // SAFETY: the one live object, freed through the global entry point.
    unsafe { OxMalloc.dealloc(LIVE.load(Ordering::Relaxed) as *mut u8, l) };
    // A thread still alive holds freed objects of the heap in its cache.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let heap_addr = &heap as *const Heap as usize;
    let waiter = std::thread::spawn(move || {
        // SAFETY: main keeps the heap alive and does not retire it before
        // `ready`; this thread stops using it before sending `ready`.
        let h = unsafe { &*(heap_addr as *const Heap) };
        for _ in 0..100 {
            // SAFETY: non-zero layout; freed at once into this thread's cache.
            unsafe {
                let p = h.alloc(l);
                h.dealloc(p, l);
            }
        }
        ready_tx.send(()).unwrap();
        go_rx.recv().unwrap();
    });
    ready_rx.recv().unwrap();
    let s = heap.stats();
    assert!(
        s.cached_bytes >= 48,
        "the waiter's cache holds objects: {s:?}"
    );
    assert_eq!(s.in_use_bytes, 0, "{s:?}");
    let retired = heap.retire().unwrap();
    let r: Vec<_> = retired.iter().copied().collect();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].start, r[0].len), (base, len));
    assert!(oxmalloc::region_of(base).is_none());
    assert!(oxmalloc::region_info(id).is_none());
    // SAFETY: the range is ours again.
    assert_eq!(unsafe { libc::munmap(base.cast(), len) }, 0);
    go_tx.send(()).unwrap();
    waiter.join().unwrap();
    // The program goes on, and the slot is reused by a later injection.
    let v = vec![5u8; 1 << 20];
    assert_eq!(v[7], 5);
    let again = private(len);
    let new_id = region(again, len);
    assert_eq!(new_id.index(), id.index(), "the slot is reused");
    assert_ne!(new_id, id, "but the id is not");
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

#[test]
fn destroy_frees_a_million_objects_at_once() {
    let len = 256 << 20;
    let base = private(len);
    let mut heap = Heap::new_in(region(base, len)).unwrap();
    let l = Layout::from_size_align(64, 8).unwrap();
    let fill = |heap: &Heap, n: usize| {
        for i in 0..n {
            // SAFETY: non-zero layout; the objects are left live.
            let p = unsafe { heap.alloc(l) };
            assert!(!p.is_null(), "object {i}");
        }
    };
    let time = |heap: &mut Heap| {
        let t = std::time::Instant::now();
        heap.destroy();
        t.elapsed()
    };
    fill(&heap, 100_000);
    let small = time(&mut heap);
    fill(&heap, 1_000_000);
    let s = heap.stats();
    assert!(s.in_use_bytes >= 64_000_000, "{s:?}");
    let big = time(&mut heap);
    eprintln!("destroy: 100k objects {small:?}, 1M objects {big:?}");
    let s = heap.stats();
    assert_eq!(s.in_use_bytes, 0, "{s:?}");
    assert_eq!(s.cached_bytes + s.central_bytes, 0, "{s:?}");
    assert!(big.as_millis() < 200, "destroying 1M objects took {big:?}");
    // The heap is usable again, on the same pages.
    let carved = s.carved_bytes;
    fill(&heap, 1_000_000);
    assert_eq!(heap.stats().carved_bytes, carved, "pages reused");
    heap.destroy();
    heap.retire().unwrap();
}

/// C `free` finds a bound heap's small objects from the pagemap word (the
/// first 63 heap slots) or through their span (the later ones), and a page
/// that held small objects before `destroy` frees as whatever it holds now.
#[test]
fn c_free_finds_every_heap_and_forgets_destroyed_pages() {
    let len = 8 << 20;
    let small = Layout::from_size_align(48, 8).unwrap();
    // More heaps than the pagemap word can name.
    let heaps: Vec<Heap> = (0..80)
        .map(|_| Heap::new_in(region(private(len), len)).unwrap())
        .collect();
    let objs: Vec<*mut u8> = heaps
        .iter()
        // SAFETY: a non-zero layout.
        .map(|h| unsafe { h.alloc(small) })
        .collect();
    for (h, &p) in heaps.iter().zip(&objs) {
        assert!(!p.is_null());
        assert!(h.stats().in_use_bytes >= 48);
        // SAFETY: a live object, freed once.
        unsafe { oxmalloc::raw::free(p) };
        assert_eq!(h.stats().in_use_bytes, 0, "freed into its own heap");
    }
    // A page of small objects, destroyed, then part of a large block.
    let mut h = heaps.into_iter().next().unwrap();
    for _ in 0..10_000 {
        // SAFETY: a non-zero layout; left live for destroy.
        assert!(!unsafe { h.alloc(small) }.is_null());
    }
    h.destroy();
    let big = Layout::from_size_align(4 << 20, 8).unwrap();
    // SAFETY: a non-zero layout.
    let p = unsafe { h.alloc(big) };
    assert!(!p.is_null());
    assert!(h.stats().in_use_bytes >= 4 << 20);
    // SAFETY: live, freed once.
    unsafe { oxmalloc::raw::free(p) };
    let s = h.stats();
    assert_eq!((s.in_use_bytes, s.cached_bytes), (0, 0), "{s:?}");
}
