//! What the injection tests share: fresh mappings to hand to oxmalloc.

#![allow(dead_code)] // each test file uses a part of it

/// The allocator's page.
pub const PAGE: usize = 8192;

/// A fresh read-write mapping of `len` bytes with `flags` (and `fd` for a
/// file mapping, else -1).
pub fn map_with(len: usize, flags: i32, fd: i32) -> *mut u8 {
    // SAFETY: a new mapping at an address the kernel picks touches nothing.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap of {len} bytes");
    p.cast()
}

/// A fresh private anonymous reservation (no swap reserved).
pub fn map(len: usize) -> *mut u8 {
    map_with(
        len,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
        -1,
    )
}

/// A fresh reservation of `len` bytes starting on an 8 KiB boundary.
pub fn map_aligned(len: usize) -> *mut u8 {
    let p = map(len + PAGE) as usize;
    ((p + PAGE - 1) & !(PAGE - 1)) as *mut u8
}
