//! Early injection: a program whose global allocator is `OxMalloc` injects a
//! pool from an `.init_array` hook, before the first allocation; every
//! allocation of the program (the test harness's included) lands in it.

use oxmalloc::{for_each_region, inject, OxMalloc, RegionId, RegionKind, RegionOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static A: OxMalloc = OxMalloc;

const POOL: usize = 1 << 30;
static POOL_ID: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Runs before `main` (and before Rust's runtime allocates anything).
extern "C" fn inject_pool() {
    // SAFETY: a fresh anonymous reservation.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            POOL,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return;
    }
    let opts = RegionOptions::new().zeroed(true).label("early pool");
    // SAFETY: ours, handed over for good.
    if let Ok(id) = unsafe { inject(p.cast(), POOL, opts) } {
        POOL_ID.store(id.index(), Ordering::Relaxed);
    }
}

#[used]
#[link_section = ".init_array.00101"]
static EARLY: extern "C" fn() = inject_pool;

#[test]
fn every_allocation_lands_in_the_early_pool() {
    let id = POOL_ID.load(Ordering::Relaxed);
    assert_ne!(id, usize::MAX, "the hook ran and injected the pool");
    let v: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    assert_eq!(v.len(), 10_000);
    let big = vec![1u8; 50 << 20];
    let mut system_bytes = 0;
    let mut pool_in_use = 0;
    for_each_region(|r| match r.kind {
        RegionKind::System => system_bytes += r.len,
        RegionKind::Injected if r.id.index() == id => pool_in_use = r.in_use_bytes,
        RegionKind::Injected => {}
    });
    assert_eq!(system_bytes, 0, "nothing came from the system allocator");
    assert!(
        pool_in_use >= 50 << 20,
        "the program's memory is in the pool"
    );
    assert_eq!(
        oxmalloc::region_of(big.as_ptr()).map(RegionId::index),
        Some(id)
    );
    assert_eq!(
        oxmalloc::region_info(oxmalloc::region_of(v[0].as_ptr()).unwrap())
            .unwrap()
            .label(),
        "early pool"
    );
}
