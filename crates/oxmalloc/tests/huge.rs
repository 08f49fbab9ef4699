//! Requests far beyond what the machine has: they fail cleanly with null, or,
//! when the OS hands out the address space, they cost bounded metadata.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

#[test]
fn impossible_requests_return_null() {
    for size in [usize::MAX, usize::MAX - 8191, usize::MAX / 2, 1 << 60] {
        let p = oxmalloc::raw::malloc(size);
        assert!(p.is_null(), "malloc({size:#x}) = {p:p}");
        let p = oxmalloc::raw::aligned(size, 1 << 20);
        assert!(p.is_null(), "aligned({size:#x}, 1 MiB) = {p:p}");
    }
    for size in [1 << 62, 1 << 60, 1 << 50] {
        let l = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: a valid layout.
        let p = unsafe { OxMalloc.alloc(l) };
        assert!(p.is_null(), "alloc({l:?}) = {p:p}");
        // SAFETY: a valid layout.
        let p = unsafe { OxMalloc.alloc_zeroed(l) };
        assert!(p.is_null(), "alloc_zeroed({l:?}) = {p:p}");
    }
}

/// Regression: a 1 TiB request used to succeed (mappings made with
/// `MAP_NORESERVE`) and `region::carve` then tagged every 8 KiB page of the
/// chunk in the pagemap (2 bytes per page): 256 MiB of resident metadata and
/// about a second, kept for the life of the process. Whether such a request
/// succeeds depends on the machine; what it costs in metadata must not.
#[test]
fn huge_request_costs_bounded_metadata() {
    const TIB: usize = 1 << 40;
    let l = Layout::from_size_align(TIB, 16).unwrap();
    let rss0 = rss();
    let meta0 = oxmalloc::stats().metadata_bytes;
    let t = std::time::Instant::now();
    // SAFETY: a valid layout.
    let p = unsafe { OxMalloc.alloc(l) };
    let took = t.elapsed();
    let grown = rss().saturating_sub(rss0);
    let meta = oxmalloc::stats().metadata_bytes - meta0;
    if !p.is_null() {
        // SAFETY: live with `l`.
        unsafe { OxMalloc.dealloc(p, l) };
    }
    assert!(
        grown < 32 << 20,
        "alloc(1 TiB) returned {p:p} after {took:?}, RSS grew by {} MiB \
         (metadata written: {} MiB)",
        grown >> 20,
        meta >> 20
    );
}
