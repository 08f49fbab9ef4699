//! `FileSysAllocator` on a memfd as the system allocator: memory comes from
//! the file, and releasing free memory punches holes in it.

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{
    region_info, region_of, FileError, FileSource, FileSysAllocator, OxMalloc, RegionKind,
};

static FILE: FileSysAllocator = FileSysAllocator::new();
static CAPPED: FileSysAllocator = FileSysAllocator::new();

#[test]
fn memfd_backed_heap() {
    FILE.open(FileSource::Memfd, 0, None).unwrap();
    assert_eq!(
        FILE.open(FileSource::Memfd, 0, None),
        Err(FileError::AlreadyOpen)
    );
    oxmalloc::set_system_allocator(&FILE).unwrap();

    let layout = Layout::from_size_align(16 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(layout) };
    assert!(!p.is_null());
    let r = region_of(p).unwrap();
    assert_eq!(region_info(r).unwrap().kind, RegionKind::System);
    assert!(FILE.file_bytes() >= 16 << 20, "the file grew");
    // SAFETY: the block is ours.
    unsafe { p.write_bytes(3, layout.size()) };
    let written = FILE.file_resident_bytes();
    assert!(written >= 16 << 20, "the file holds the pages ({written})");
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(p, layout) };
    oxmalloc::release_free_memory();
    let after = FILE.file_resident_bytes();
    assert!(
        after + (16 << 20) <= written,
        "release punched holes: {written} -> {after}"
    );

    // A capped file with no fallback: allocation fails past the limit.
    CAPPED.open(FileSource::Memfd, 4 << 20, None).unwrap();
    oxmalloc::set_system_allocator(&CAPPED).unwrap();
    let big = Layout::from_size_align(64 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    assert!(unsafe { OxMalloc.alloc(big) }.is_null());
    assert_eq!(CAPPED.file_bytes(), 0);
}

#[test]
fn bad_path_is_a_typed_error() {
    static F: FileSysAllocator = FileSysAllocator::new();
    let e = F
        .open(FileSource::Path(c"/nonexistent-dir/x/y"), 0, None)
        .unwrap_err();
    assert!(matches!(e, FileError::Create(libc::ENOENT)), "{e:?}");
    assert!(e.to_string().contains("errno"));
}
