//! The heap limit: allocation past it fails (after trying to release free
//! memory), and the program carries on.

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{numeric_property, set_numeric_property, OxMalloc};

#[test]
fn allocation_past_the_limit_fails_and_the_program_continues() {
    assert!(set_numeric_property("tcmalloc.heap_limit_mb", 64));
    assert_eq!(numeric_property("tcmalloc.heap_limit_mb"), Some(64));
    let layout = Layout::from_size_align(4 << 20, 16).unwrap();
    let mut held = Vec::new();
    loop {
        // SAFETY: non-zero layout.
        let p = unsafe { OxMalloc.alloc(layout) };
        if p.is_null() {
            break;
        }
        held.push(p);
        assert!(held.len() <= 16, "the 64 MiB limit was not enforced");
    }
    assert!(
        held.len() >= 14,
        "only {} blocks of 4 MiB under a 64 MiB limit",
        held.len()
    );
    let physical = numeric_property("generic.heap_size").unwrap()
        - numeric_property("tcmalloc.pageheap_unmapped_bytes").unwrap();
    assert!(physical <= 64 << 20);

    // Freeing makes room again; free memory is released to stay under it.
    for p in held.drain(..4) {
        // SAFETY: allocated above with `layout`.
        unsafe { OxMalloc.dealloc(p, layout) };
    }
    let big = Layout::from_size_align(12 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(big) };
    assert!(!p.is_null(), "freed memory is reused under the limit");
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(p, big) };

    // Lifting the limit lets the heap grow again.
    assert!(set_numeric_property("tcmalloc.heap_limit_mb", 0));
    let huge = Layout::from_size_align(128 << 20, 16).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(huge) };
    assert!(!p.is_null());
    // SAFETY: allocated above.
    unsafe { OxMalloc.dealloc(p, huge) };
    for p in held {
        // SAFETY: allocated above with `layout`.
        unsafe { OxMalloc.dealloc(p, layout) };
    }
}
