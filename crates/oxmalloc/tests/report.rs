//! The reports: the text report has the gperftools layout and a section per
//! region; the JSON report parses and its totals add up.

mod common;

use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, write_json, write_report, OxMalloc, RegionOptions};

#[test]
fn text_and_json_agree_and_add_up() {
    let len = 8 << 20;
    let base = common::map_with(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1);
    // SAFETY: ours, handed over for good.
    unsafe {
        inject(
            base.cast(),
            len,
            RegionOptions::new().label("quote\"d pool"),
        )
    }
    .unwrap();
    let layouts: Vec<_> = (0..500)
        .map(|i| Layout::from_size_align(1 + i * 97 % 300_000, 16).unwrap())
        .collect();
    // SAFETY: non-zero layouts.
    let blocks: Vec<_> = layouts
        .iter()
        .map(|&l| unsafe { OxMalloc.alloc(l) })
        .collect();
    for (i, (&p, &l)) in blocks.iter().zip(&layouts).enumerate() {
        if i % 2 == 0 {
            // SAFETY: allocated above with `l`.
            unsafe { OxMalloc.dealloc(p, l) };
        }
    }

    let mut text = String::new();
    write_report(&mut text, 2).unwrap();
    for needle in [
        "Bytes in use by application",
        "Bytes in page heap freelist",
        "Bytes in central cache freelist",
        "Bytes in transfer cache freelist",
        "Bytes in thread cache freelists",
        "Bytes in malloc metadata",
        "Actual memory used (physical + swap)",
        "Bytes released to OS (aka unmapped)",
        "Virtual address space used",
        "Peak bytes in spans in use",
        "Peak heap size",
        "Spans in use",
        "Thread heaps in use",
        "Tcmalloc page size",
        "class ",
        "PageHeap",
        "REGION",
        "quote\"d pool",
    ] {
        assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
    }
    assert!(text.lines().filter(|l| l.starts_with("MALLOC:")).count() >= 14);

    let mut json = String::new();
    write_json(&mut json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).expect("the JSON report parses");
    let s = &v["summary"];
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("summary.{k}"));
    assert_eq!(
        n("heap_size"),
        n("allocated_bytes")
            + n("pageheap_free_bytes")
            + n("pageheap_unmapped_bytes")
            + n("central_cache_free_bytes")
            + n("transfer_cache_free_bytes")
            + n("thread_cache_free_bytes")
    );
    assert_eq!(n("page_size"), 8192);
    assert!(n("peak_heap_size") >= n("heap_size"));
    assert!(
        n("peak_in_use_bytes")
            >= n("heap_size") - n("pageheap_free_bytes") - n("pageheap_unmapped_bytes")
    );
    let regions = v["regions"].as_array().unwrap();
    assert!(regions.iter().any(|r| r["label"] == "quote\"d pool"));
    let region_in_use: u64 = regions
        .iter()
        .map(|r| r["in_use_bytes"].as_u64().unwrap())
        .sum();
    let spans_total: u64 = n("heap_size") - n("pageheap_free_bytes") - n("pageheap_unmapped_bytes");
    assert_eq!(
        region_in_use, spans_total,
        "regions' in-use bytes add up to the spans in use"
    );
    assert!(!v["classes"].as_array().unwrap().is_empty());
    assert!(!v["page_heap"].as_array().unwrap().is_empty());

    for (i, (&p, &l)) in blocks.iter().zip(&layouts).enumerate() {
        if i % 2 == 1 {
            // SAFETY: allocated above with `l`.
            unsafe { OxMalloc.dealloc(p, l) };
        }
    }
}

#[test]
fn report_fits_a_fixed_buffer_without_allocating() {
    let mut buf = oxmalloc::os::FixedBuf::<256>::new();
    write_report(&mut buf, 1).unwrap();
    assert_eq!(
        buf.as_bytes().len(),
        256,
        "text past the capacity is dropped"
    );
    assert!(buf.as_bytes().starts_with(b"-----"));
}
