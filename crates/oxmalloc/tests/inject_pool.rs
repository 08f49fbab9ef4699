//! A pool injected before the first allocation feeds the global heap: every
//! allocation that fits lands inside it, then the system allocator takes over.

mod common;

use common::map;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, region_info, region_of, OxMalloc, RegionKind, RegionOptions, Release};

#[test]
fn pool_first_then_system() {
    const POOL: usize = 16 << 20;
    let base = map(POOL);
    let opts = RegionOptions::new()
        .release(Release::DontNeed)
        .zeroed(true)
        .label("pool");
    // SAFETY: the mapping is ours and handed over for good.
    let id = unsafe { inject(base, POOL, opts) }.expect("inject");
    let info = region_info(id).unwrap();
    assert_eq!(info.kind, RegionKind::Injected);
    assert_eq!((info.start, info.len), (base as usize, POOL));
    assert_eq!(info.carved_bytes, 0, "injection touches nothing");

    let inside = |p: *mut u8| (p as usize) >= base as usize && (p as usize) < base as usize + POOL;
    let layout = Layout::from_size_align(64 << 10, 16).unwrap();
    let mut blocks = Vec::new();
    let mut in_pool = 0;
    let mut outside = 0usize;
    for _ in 0..400 {
        // SAFETY: a valid non-zero layout.
        let p = unsafe { OxMalloc.alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: the block is ours, 64 KiB long.
        unsafe { p.write_bytes(0xAB, layout.size()) };
        if inside(p) {
            assert_eq!(region_of(p), Some(id));
            in_pool += 1;
        } else {
            // The pool is full before the system allocator is asked.
            assert_eq!(region_info(id).unwrap().carved_bytes, POOL);
            let r = region_of(p).expect("system memory has a region");
            assert_eq!(region_info(r).unwrap().kind, RegionKind::System);
            outside += 1;
        }
        blocks.push(p);
    }
    // 16 MiB holds 256 blocks of 64 KiB (fewer in the hardened build, whose
    // objects end in a canary); a few may sit in the thread cache.
    let stride =
        oxmalloc::size_class::CLASSES[oxmalloc::size_class::class_for(layout.size(), 1)].size;
    assert!(
        in_pool >= POOL / stride - 6,
        "only {in_pool} blocks landed in the pool"
    );
    assert!(outside > 0, "the system allocator took over");
    let info = region_info(id).unwrap();
    assert_eq!(info.carved_bytes, POOL, "the whole pool was used");
    assert!(info.in_use_bytes > POOL / 2);
    for p in blocks {
        // SAFETY: allocated above with `layout`.
        unsafe { OxMalloc.dealloc(p, layout) };
    }
}
