//! Each release policy observed from outside: `DontNeed` drops residency,
//! `Never` keeps contents and residency, `Remove` gives a memfd's pages back.
//!
//! One test, scenarios in a fixed order with growing block sizes, so each
//! block must come from the region injected for it.

mod common;

use common::map_with;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    inject, region_info, region_of, release_free_memory, OxMalloc, RegionOptions, Release,
};

const PAGE: usize = 4096;

/// Resident pages of `[p, p + len)`, by `mincore`.
fn resident_pages(p: *mut u8, len: usize) -> usize {
    let mut v = vec![0u8; len.div_ceil(PAGE)];
    // SAFETY: a mapped, page-aligned range and a vector of one byte per page.
    assert_eq!(unsafe { libc::mincore(p.cast(), len, v.as_mut_ptr()) }, 0);
    v.iter().filter(|&&b| b & 1 != 0).count()
}

/// Allocates a large block that must land in region `id`, fills it, frees it,
/// releases free memory, and returns the block (now free) for inspection.
fn use_and_release(id: oxmalloc::RegionId, size: usize) -> *mut u8 {
    let layout = Layout::from_size_align(size, 4096).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(layout) };
    assert!(!p.is_null());
    assert_eq!(
        region_of(p),
        Some(id),
        "block comes from the injected region"
    );
    // SAFETY: the block is ours.
    unsafe { p.write_bytes(0x5A, size) };
    assert_eq!(resident_pages(p, size), size / PAGE);
    // SAFETY: allocated above with `layout`.
    unsafe { OxMalloc.dealloc(p, layout) };
    release_free_memory();
    p
}

#[test]
fn policies() {
    // DontNeed: residency drops.
    let len = 16 << 20;
    let base = map_with(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1);
    // SAFETY: our mapping, handed over for good.
    let id = unsafe { inject(base, len, RegionOptions::new().release(Release::DontNeed)) }.unwrap();
    let p = use_and_release(id, 12 << 20);
    assert_eq!(
        resident_pages(p, 12 << 20),
        0,
        "DontNeed released the pages"
    );
    assert!(region_info(id).unwrap().released_bytes >= 12 << 20);

    // Never: contents and residency stay.
    let len = 24 << 20;
    let base = map_with(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1);
    // SAFETY: as above.
    let id = unsafe { inject(base, len, RegionOptions::new().release(Release::Never)) }.unwrap();
    let p = use_and_release(id, 20 << 20);
    assert_eq!(
        resident_pages(p, 20 << 20),
        (20 << 20) / PAGE,
        "Never keeps residency"
    );
    // SAFETY: the pages stay mapped (injected memory is never unmapped).
    let s = unsafe { std::slice::from_raw_parts(p, 20 << 20) };
    assert!(s.iter().all(|&b| b == 0x5A), "Never keeps contents");
    assert_eq!(region_info(id).unwrap().released_bytes, 0);

    // Remove: a memfd's blocks go back.
    let len = 40 << 20;
    // SAFETY: a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"oxmalloc-test".as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: our fd.
    assert_eq!(unsafe { libc::ftruncate(fd, len as libc::off_t) }, 0);
    let base = map_with(len, libc::MAP_SHARED, fd);
    // SAFETY: as above.
    let id = unsafe {
        inject(
            base,
            len,
            RegionOptions::new().release(Release::Remove).label("memfd"),
        )
    }
    .unwrap();
    let blocks = || {
        // SAFETY: a zeroed stat is a valid out-buffer; our fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        st.st_blocks as usize * 512
    };
    let layout = Layout::from_size_align(32 << 20, 4096).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(layout) };
    assert_eq!(region_of(p), Some(id));
    // SAFETY: the block is ours.
    unsafe { p.write_bytes(1, layout.size()) };
    let before = blocks();
    assert!(
        before >= 32 << 20,
        "the file holds the written pages ({before})"
    );
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(p, layout) };
    release_free_memory();
    let after = blocks();
    assert!(
        after + (32 << 20) <= before,
        "Remove punched holes: st_blocks {before} -> {after}"
    );
}
