//! The region table is bounded: once full, injection says so.

use oxmalloc::{inject, InjectError, RegionOptions};

const PAGE: usize = 8192;

/// `n` 8 KiB pages of a fresh mapping, the first 8 KiB aligned.
fn map_aligned_pages(n: usize) -> *mut u8 {
    // SAFETY: a fresh anonymous mapping.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            (n + 1) * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    ((p as usize + PAGE - 1) & !(PAGE - 1)) as *mut u8
}

#[test]
fn too_many_regions() {
    // Fill the table with tiny exclusive regions; the last ones are refused.
    let p = map_aligned_pages(300);
    let mut refused = None;
    for i in 0..300 {
        // SAFETY: disjoint pages of our mapping, handed over for good.
        match unsafe { inject(p.add(i * PAGE), PAGE, RegionOptions::new().exclusive(true)) } {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused, Some(InjectError::TooManyRegions));
}
