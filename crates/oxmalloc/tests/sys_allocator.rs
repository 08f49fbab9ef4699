//! A custom `SysAllocator`: it is used, its failure makes allocation fail
//! cleanly, and allocation works again once it recovers.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use oxmalloc::{system_allocator, MmapSysAllocator, OxMalloc, SysAllocator};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Flaky {
    allocs: AtomicUsize,
    releases: AtomicUsize,
    failing: AtomicBool,
}

// SAFETY: forwards to the mmap allocator, which keeps the contract.
unsafe impl SysAllocator for Flaky {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) {
            return None;
        }
        MmapSysAllocator.alloc(size, align)
    }
    unsafe fn release(&self, ptr: NonNull<u8>, len: usize) -> oxmalloc::ReleaseOutcome {
        self.releases.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded from the caller.
        unsafe { MmapSysAllocator.release(ptr, len) }
    }
}

static FLAKY: Flaky = Flaky {
    allocs: AtomicUsize::new(0),
    releases: AtomicUsize::new(0),
    failing: AtomicBool::new(false),
};

#[test]
fn custom_allocator_is_used_fails_cleanly_and_recovers() {
    oxmalloc::set_system_allocator(&FLAKY).unwrap();
    assert!(std::ptr::addr_eq(
        system_allocator(),
        &FLAKY as &dyn SysAllocator
    ));

    let big = Layout::from_size_align(8 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(big) };
    assert!(!p.is_null());
    assert!(
        FLAKY.allocs.load(Ordering::Relaxed) >= 1,
        "memory came from FLAKY"
    );

    FLAKY.failing.store(true, Ordering::Relaxed);
    let huge = Layout::from_size_align(64 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let q = unsafe { OxMalloc.alloc(huge) };
    assert!(
        q.is_null(),
        "allocation fails when the system allocator does"
    );
    // Memory already held still serves requests that fit.
    // SAFETY: allocated above with `big`.
    unsafe { OxMalloc.dealloc(p, big) };
    // SAFETY: non-zero layout.
    let small = unsafe { OxMalloc.alloc(Layout::from_size_align(100, 8).unwrap()) };
    assert!(!small.is_null());

    FLAKY.failing.store(false, Ordering::Relaxed);
    // SAFETY: non-zero layout.
    let q = unsafe { OxMalloc.alloc(huge) };
    assert!(!q.is_null(), "allocation works again once it recovers");
    // SAFETY: the block is ours.
    unsafe { q.write_bytes(7, huge.size()) };

    // SAFETY: allocated above with these layouts.
    unsafe {
        OxMalloc.dealloc(q, huge);
        OxMalloc.dealloc(small, Layout::from_size_align(100, 8).unwrap());
    }
    assert!(oxmalloc::release_free_memory() > 0);
    assert!(
        FLAKY.releases.load(Ordering::Relaxed) >= 1,
        "release goes through FLAKY"
    );
}
