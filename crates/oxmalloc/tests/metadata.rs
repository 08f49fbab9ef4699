//! The metadata figures count what metadata costs: `metadata_bytes` is the
//! pages oxmalloc wrote in its metadata mappings — what `mincore` finds
//! resident there — not the address space it reserved (each pagemap leaf
//! maps 3 MiB, of which a few pages are written), and the report's "Actual
//! memory used" adds that figure. Its own test binary, so no other test
//! moves the figures meanwhile.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// (bytes mapped, bytes resident) of oxmalloc's metadata mappings.
fn resident_metadata() -> (usize, usize) {
    let mut ranges = Vec::new();
    oxmalloc::for_each_metadata_mapping(|start, len| ranges.push((start, len)));
    let page = page_size();
    let (mut mapped, mut resident) = (0, 0);
    for (start, len) in ranges {
        assert_eq!(start % page, 0, "mappings start on a page");
        let mut v = vec![0u8; len.div_ceil(page)];
        // SAFETY: `start..start+len` is mapped (metadata is never unmapped);
        // `v` has a byte per page.
        let r = unsafe { libc::mincore(start as *mut libc::c_void, len, v.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore({start:#x}, {len})");
        mapped += len;
        resident += v.iter().filter(|&&b| b & 1 != 0).count() * page;
    }
    (mapped, resident)
}

fn churn() -> Vec<(usize, Layout)> {
    let mut keep = Vec::new();
    for i in 0..2_000usize {
        let l = Layout::from_size_align(8 + (i * 37) % 3000, 8).unwrap();
        // SAFETY: a non-zero size.
        let p = unsafe { OxMalloc.alloc(l) };
        assert!(!p.is_null());
        keep.push((p as usize, l));
    }
    for size in [300 << 10, 1 << 20, 8 << 20, 40 << 20] {
        let l = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: a non-zero size.
        let p = unsafe { OxMalloc.alloc(l) };
        assert!(!p.is_null());
        keep.push((p as usize, l));
    }
    keep
}

#[test]
fn metadata_counts_the_pages_written_not_the_mappings() {
    // Objects of many classes and large blocks, from four threads (each with
    // its cache), kept alive; then half of them freed.
    let kept: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(churn)).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for &(p, l) in kept.iter().step_by(2) {
        // SAFETY: allocated above with `l`.
        unsafe { OxMalloc.dealloc(p as *mut u8, l) };
    }
    let s = oxmalloc::stats();
    let (mapped, resident) = resident_metadata();
    eprintln!(
        "metadata: written {} KiB, resident {} KiB, mapped {} KiB",
        s.metadata_bytes >> 10,
        resident >> 10,
        mapped >> 10
    );
    assert_eq!(mapped, s.metadata_mapped_bytes);
    assert_eq!(
        oxmalloc::numeric_property("oxmalloc.metadata_mapped_bytes"),
        Some(mapped)
    );
    assert_eq!(
        oxmalloc::numeric_property("oxmalloc.metadata_bytes"),
        Some(s.metadata_bytes)
    );
    assert!(
        s.metadata_bytes * 8 < mapped,
        "written {} of {mapped} bytes mapped",
        s.metadata_bytes
    );
    // What was written is resident. Reading a page never written maps the
    // shared zero page, which `mincore` counts too (the pagemap reads the
    // entries next to a span when it coalesces): a few pages more.
    let slack = 16 * page_size();
    assert!(
        resident <= s.metadata_bytes + slack && s.metadata_bytes <= resident + slack,
        "written {} bytes, resident {resident}",
        s.metadata_bytes
    );
    assert_eq!(
        s.physical_bytes(),
        s.heap_size - s.pageheap_unmapped_bytes + s.metadata_bytes
    );
    let mut report = String::new();
    oxmalloc::write_report(&mut report, 1).unwrap();
    let line = |what: &str| -> usize {
        let l = report
            .lines()
            .find(|l| l.ends_with(what))
            .unwrap_or_else(|| panic!("no {what:?} line in\n{report}"));
        l.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert_eq!(line("Bytes in malloc metadata"), s.metadata_bytes);
    assert_eq!(
        line("Actual memory used (physical + swap)"),
        s.physical_bytes()
    );
    assert_eq!(
        line("Virtual address space used"),
        s.heap_size + s.metadata_mapped_bytes
    );
    for &(p, l) in kept.iter().skip(1).step_by(2) {
        // SAFETY: allocated above with `l`, not freed yet.
        unsafe { OxMalloc.dealloc(p as *mut u8, l) };
    }
}
