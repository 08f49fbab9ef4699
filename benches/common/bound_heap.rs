//! A heap bound to a fresh exclusive region, for the benchmarks that put an
//! oxmalloc `Heap` beside the global heap (`benches/alloc.rs`,
//! `examples/pair.rs`).

/// A heap bound to a fresh exclusive region of 1 GiB of anonymous memory.
pub fn bound_heap() -> oxmalloc::Heap {
    const LEN: usize = 1 << 30;
    // SAFETY: a fresh anonymous reservation.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "mmap of the region");
    let options = oxmalloc::RegionOptions::new().exclusive(true);
    // SAFETY: the mapping is ours and handed over for good.
    let id = unsafe { oxmalloc::inject(p.cast(), LEN, options) }.expect("inject the region");
    oxmalloc::Heap::new_in(id).expect("bind a heap")
}
