//! `FileSysAllocator` with a fallback (issue 9, item 3): chunks of the file
//! and of the fallback are different regions, so their spans never merge;
//! a block reused across them reads zero when asked, and the file's pages
//! really go back on release. Its own test binary (it installs a system
//! allocator).

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    region_info, region_of, Backing, FileSource, FileSysAllocator, MmapSysAllocator, OxMalloc,
    RegionKind,
};

static FILE: FileSysAllocator = FileSysAllocator::new();

#[test]
fn file_and_fallback_memory_never_share_a_span() {
    // Only explicit releases here.
    assert!(oxmalloc::set_numeric_property(
        "oxmalloc.release_rate_milli",
        0
    ));
    FILE.open(FileSource::Memfd, 4 << 20, Some(&MmapSysAllocator))
        .unwrap();
    let file_region = oxmalloc::set_system_allocator(&FILE).unwrap();
    assert_eq!(region_info(file_region).unwrap().backing, Backing::Shared);
    assert_eq!(region_info(file_region).unwrap().release.name(), "remove");

    // 3 MiB fit the file; the next 3 MiB do not and come from the fallback.
    let l3 = Layout::from_size_align(3 << 20, 8).unwrap();
    // SAFETY: non-zero layouts; freed below.
    let (a, b) = unsafe { (OxMalloc.alloc(l3), OxMalloc.alloc(l3)) };
    let (ra, rb) = (region_of(a).unwrap(), region_of(b).unwrap());
    assert_eq!(ra, file_region);
    assert_ne!(rb, ra, "the fallback is a region of its own");
    let fb = region_info(rb).unwrap();
    assert_eq!(fb.kind, RegionKind::System);
    assert_eq!(fb.backing, Backing::PrivateAnonymous);
    // SAFETY: live blocks of `l3`.
    unsafe {
        a.write_bytes(0x77, 3 << 20);
        b.write_bytes(0x77, 3 << 20);
        OxMalloc.dealloc(a, l3);
        OxMalloc.dealloc(b, l3);
    }
    let held = FILE.file_resident_bytes();
    assert!(held >= 3 << 20, "the file holds the pages: {held}");
    oxmalloc::release_free_memory();
    let after = FILE.file_resident_bytes();
    assert!(
        after < 1 << 20,
        "the file's pages went back: {held} -> {after}"
    );

    // 7 MiB, zeroed: wherever it lands, it reads zero.
    let l7 = Layout::from_size_align(7 << 20, 8).unwrap();
    // SAFETY: non-zero layout.
    let z = unsafe { OxMalloc.alloc_zeroed(l7) };
    // SAFETY: a live block of 7 MiB.
    let bytes = unsafe { core::slice::from_raw_parts(z, 7 << 20) };
    let dirty = bytes.iter().filter(|&&x| x != 0).count();
    assert_eq!(dirty, 0, "{dirty} non-zero bytes");
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(z, l7) };
    // No span crosses the file's regions and the fallback's.
    oxmalloc::for_each_span(|s| {
        let first = region_of(s.address as *const u8);
        let last = region_of((s.address + s.length - 1) as *const u8);
        assert_eq!(first, last, "span {s:?} crosses regions");
    });
}
