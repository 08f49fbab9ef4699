//! Released is not zero (issue 9, item 1): memory is treated as reading zero
//! after a release only where the backing guarantees it. `MADV_DONTNEED`
//! zero-fills private anonymous memory only; on a `MAP_SHARED` or memfd
//! region the default policy punches holes (`MADV_REMOVE`), and an explicit
//! `DontNeed` releases nothing and says so. In every case `alloc_zeroed`
//! returns zeros, checked byte by byte, through the global heap (which skips
//! clearing spans it believes zero) and through a bound heap.
//!
//! One test: the scenarios run in order in one process (the global heap's
//! non-exclusive regions are used before the system allocator, and each
//! scenario's block must come from its own region).

mod common;

use common::map_with;
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, region_info, region_of, Backing, Heap, OxMalloc, RegionOptions, Release};

const BLOCK: usize = 8 << 20;
const OS_PAGE: usize = 4096;

fn resident_pages(p: *mut u8, len: usize) -> usize {
    let mut v = vec![0u8; len.div_ceil(OS_PAGE)];
    // SAFETY: a mapped, page-aligned range and a byte per page.
    assert_eq!(unsafe { libc::mincore(p.cast(), len, v.as_mut_ptr()) }, 0);
    v.iter().filter(|&&b| b & 1 != 0).count()
}

fn memfd(len: usize) -> i32 {
    // SAFETY: a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"zeroing".as_ptr(), 0) };
    assert!(fd >= 0);
    // SAFETY: our new file.
    assert_eq!(unsafe { libc::ftruncate(fd, len as i64) }, 0);
    fd
}

fn all_zero(p: *const u8, len: usize) -> bool {
    // SAFETY: a live block of `len` bytes.
    unsafe { core::slice::from_raw_parts(p, len) }
        .iter()
        .all(|&b| b == 0)
}

/// Fills a block of `size` from region `id` (through the global heap),
/// frees it, releases, and returns its address.
fn dirty_and_release(id: oxmalloc::RegionId, size: usize) -> *mut u8 {
    let l = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(l) };
    assert_eq!(region_of(p), Some(id), "the block comes from the region");
    // SAFETY: the block is ours.
    unsafe {
        p.write_bytes(0xAB, size);
        OxMalloc.dealloc(p, l);
    }
    oxmalloc::release_free_memory();
    p
}

fn zeroed_again(id: oxmalloc::RegionId, size: usize) {
    let l = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: non-zero layout.
    let q = unsafe { OxMalloc.alloc_zeroed(l) };
    assert_eq!(region_of(q), Some(id), "the zeroed block reuses the region");
    assert!(all_zero(q, size), "alloc_zeroed returned stale bytes");
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(q, l) };
}

#[test]
fn alloc_zeroed_is_zero_whatever_the_backing() {
    // A shared anonymous region with the default policy: released by
    // punching holes (the pages really go back), and zero afterwards.
    // Each region is exactly as large as its block, so that block (and its
    // reuse) cannot come from anywhere else.
    let len = BLOCK;
    let shared = common::map_aligned_with(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS);
    // SAFETY: our fresh mapping, handed over for good.
    let id = unsafe { inject(shared, len, RegionOptions::new().label("shared")) }.unwrap();
    let info = region_info(id).unwrap();
    assert_eq!(info.backing, Backing::Shared);
    let p = dirty_and_release(id, BLOCK);
    assert_eq!(
        resident_pages(p, BLOCK),
        0,
        "released pages left the page cache"
    );
    assert!(region_info(id).unwrap().released_bytes >= BLOCK);
    zeroed_again(id, BLOCK);

    // A shared region told to use MADV_DONTNEED: that frees nothing on shared
    // memory, so nothing is counted released, and calloc clears.
    let len2 = BLOCK + (1 << 20);
    let shared2 = common::map_aligned_with(len2, libc::MAP_SHARED | libc::MAP_ANONYMOUS);
    let opts = RegionOptions::new()
        .release(Release::DontNeed)
        .label("shared dontneed");
    // SAFETY: as above.
    let id2 = unsafe { inject(shared2, len2, opts) }.unwrap();
    let p2 = dirty_and_release(id2, BLOCK + (1 << 20));
    assert_eq!(
        region_info(id2).unwrap().released_bytes,
        0,
        "DONTNEED on shared memory is not a release"
    );
    assert_eq!(
        resident_pages(p2, BLOCK),
        BLOCK / OS_PAGE,
        "the pages stayed"
    );
    zeroed_again(id2, BLOCK + (1 << 20));

    // A memfd region: holes punched in the file, zero afterwards.
    let flen = BLOCK + (2 << 20);
    let fd = memfd(flen);
    let at = common::map_aligned(flen);
    // SAFETY: MAP_FIXED over a reservation of ours, 8 KiB aligned.
    let file = unsafe {
        libc::mmap(
            at.cast(),
            flen,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            0,
        )
    }
    .cast::<u8>();
    assert_eq!(file, at);
    // SAFETY: as above.
    let id3 = unsafe { inject(file, flen, RegionOptions::new().label("memfd")) }.unwrap();
    let p3 = dirty_and_release(id3, BLOCK + (2 << 20));
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: our descriptor.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    assert!(
        (st.st_blocks as usize) * 512 < 2 << 20,
        "the file's pages were freed ({} bytes left)",
        st.st_blocks * 512
    );
    let _ = p3;
    zeroed_again(id3, BLOCK + (2 << 20));

    // Through a bound heap on a shared region.
    let hl = 16 << 20;
    let hmem = map_with(hl, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1);
    // SAFETY: as above.
    let hid = unsafe { inject(hmem, hl, RegionOptions::new().exclusive(true)) }.unwrap();
    let heap = Heap::new_in(hid).unwrap();
    let l = Layout::from_size_align(BLOCK, 8).unwrap();
    // SAFETY: non-zero layout; the block is freed, then reused zeroed.
    unsafe {
        let a = heap.alloc(l);
        a.write_bytes(0xCD, BLOCK);
        heap.dealloc(a, l);
        heap.release_free_memory();
        let b = heap.alloc_zeroed(l);
        assert!(all_zero(b, BLOCK), "a bound heap's alloc_zeroed");
        heap.dealloc(b, l);
    }
    heap.retire().unwrap();
}
