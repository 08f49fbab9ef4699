//! Release hooks (issue 9, items 6 and 14): a hook that decommits
//! (`mprotect(PROT_NONE)`) gets its commit called before the pages are
//! handed out again; what a hook reports is what the statistics say; a hook
//! that allocates through oxmalloc is stopped with a message instead of
//! deadlocking.

mod common;

use common::{aborted, in_child, map_with, scenario};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use oxmalloc::{inject, Heap, RegionOptions, Release, ReleaseHook, ReleaseOutcome};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decommits on release, recommits on commit.
struct Decommit {
    released: AtomicUsize,
    committed: AtomicUsize,
}

impl ReleaseHook for Decommit {
    fn release(&self, ptr: NonNull<u8>, len: usize) -> ReleaseOutcome {
        self.released.fetch_add(len, Ordering::Relaxed);
        // SAFETY: a free range of our region.
        let ok = unsafe {
            libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTNEED) == 0
                && libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_NONE) == 0
        };
        if ok {
            ReleaseOutcome::Zeroed
        } else {
            ReleaseOutcome::Kept
        }
    }
    fn commit(&self, ptr: NonNull<u8>, len: usize) -> bool {
        self.committed.fetch_add(len, Ordering::Relaxed);
        // SAFETY: a released range of our region.
        unsafe { libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_WRITE) == 0 }
    }
}

static DECOMMIT: Decommit = Decommit {
    released: AtomicUsize::new(0),
    committed: AtomicUsize::new(0),
};

fn heap_with(release: Release, len: usize) -> Heap {
    let p = map_with(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1);
    let opts = RegionOptions::new().exclusive(true).release(release);
    // SAFETY: our fresh mapping, handed over for good.
    let id = unsafe { inject(p, len, opts) }.unwrap();
    Heap::new_in(id).unwrap()
}

fn allocating_hook(_p: NonNull<u8>, _len: usize) -> bool {
    // Forbidden: oxmalloc holds its locks while a hook runs.
    let l = Layout::from_size_align(300_000, 8).unwrap();
    // SAFETY: non-zero layout (never reached: oxmalloc stops first).
    let p = unsafe { oxmalloc::OxMalloc.alloc(l) };
    std::hint::black_box(p);
    true
}

fn reentrant_release() {
    let heap = heap_with(Release::Custom(&allocating_hook), 8 << 20);
    let l = Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: non-zero layout.
    unsafe {
        let p = heap.alloc(l);
        heap.dealloc(p, l);
    }
    heap.release_free_memory();
    println!("not reached");
}

#[test]
fn a_decommitting_hook_is_recommitted_before_reuse() {
    scenario(&[("reentrant-release", reentrant_release)]);
    let heap = heap_with(Release::Custom(&DECOMMIT), 16 << 20);
    let l = Layout::from_size_align(4 << 20, 8).unwrap();
    for round in 0..3 {
        // SAFETY: non-zero layout; the block is written, freed, released.
        unsafe {
            let p = heap.alloc(l);
            assert!(!p.is_null(), "round {round}");
            p.write_bytes(round as u8, 4 << 20); // faults if not recommitted
            heap.dealloc(p, l);
        }
        heap.release_free_memory();
        let s = heap.stats();
        assert!(s.released_bytes >= 4 << 20, "{s:?}");
    }
    assert!(DECOMMIT.released.load(Ordering::Relaxed) >= 12 << 20);
    assert!(
        DECOMMIT.committed.load(Ordering::Relaxed) >= 8 << 20,
        "released pages were committed before reuse"
    );
    // A hook that reports Zeroed lets alloc_zeroed skip clearing, and the
    // memory is indeed zero.
    // SAFETY: non-zero layout.
    unsafe {
        let z = heap.alloc_zeroed(l);
        assert!(core::slice::from_raw_parts(z, 4 << 20)
            .iter()
            .all(|&b| b == 0));
        heap.dealloc(z, l);
    }
    heap.retire().unwrap();
}

#[test]
fn a_hook_that_allocates_is_stopped_with_a_message() {
    let out = in_child(
        "a_decommitting_hook_is_recommitted_before_reuse",
        "reentrant-release",
    );
    let (abort, stderr) = aborted(&out);
    assert!(abort, "{out:?}");
    assert!(
        stderr.contains(
            "oxmalloc: fatal: a release function called malloc while oxmalloc held its locks"
        ),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not reached"));
}
