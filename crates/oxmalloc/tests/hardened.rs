//! The hardened build through the Rust interfaces (`cargo test --features
//! hardened`; without the feature this file is empty): each misuse stops a
//! child process with its message, and correct use runs (the model and
//! stress tests run on the hardened build too, in CI).
#![cfg(feature = "hardened")]

mod common;

use common::{aborted, in_child, scenario};
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{raw, OxMalloc};

// The harness and the collections below run on the hardened build too, so
// every Rust `dealloc` and `realloc` checks its layout.
#[global_allocator]
static A: OxMalloc = OxMalloc;

fn l(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn double_free() {
    let p = raw::malloc(64);
    // SAFETY: the first free is right; the second is the misuse.
    unsafe {
        raw::free(p);
        raw::free(core::hint::black_box(p));
    }
}

fn delayed_double_free() {
    let p = raw::malloc(64);
    // SAFETY: as above, with traffic between the two frees.
    unsafe {
        raw::free(p);
        let held: Vec<_> = (0..5000).map(|i| raw::malloc(16 + i % 200)).collect();
        for q in held {
            raw::free(q);
        }
        raw::free(core::hint::black_box(p));
    }
}

fn overflow() {
    let p = raw::malloc(24);
    let usable = raw::usable_size(p).unwrap();
    // SAFETY: the write past the end is the misuse.
    unsafe {
        core::hint::black_box(p).add(usable).write_bytes(0x41, 8);
        raw::free(p);
    }
}

fn write_after_free() {
    let b: Vec<_> = (0..16).map(|_| raw::malloc(64)).collect();
    // SAFETY: the write into a freed block is the misuse.
    unsafe {
        for &p in &b {
            raw::free(p);
        }
        core::hint::black_box(b[4]).write_bytes(0x41, 64);
        for _ in 0..100 {
            raw::malloc(64).write_bytes(0x5a, 64);
        }
    }
}

fn wrong_layout() {
    // SAFETY: a 64-byte block deallocated as 4096 bytes is the misuse.
    unsafe {
        let p = OxMalloc.alloc(l(64));
        OxMalloc.dealloc(core::hint::black_box(p), l(4096));
    }
}

fn wrong_free_sized() {
    let p = raw::malloc(100);
    // SAFETY: the wrong size is the misuse.
    unsafe { raw::free_sized("free_sized", p, 1000, 1) };
}

#[test]
fn each_misuse_stops_with_its_message() {
    scenario(&[
        ("double-free", double_free),
        ("delayed-double-free", delayed_double_free),
        ("overflow", overflow),
        ("write-after-free", write_after_free),
        ("wrong-layout", wrong_layout),
        ("wrong-free-sized", wrong_free_sized),
    ]);
    for (name, message) in [
        ("double-free", "free of a block that is not allocated"),
        (
            "delayed-double-free",
            "free of a block that is not allocated",
        ),
        ("overflow", "written past its end"),
        ("write-after-free", "was written to after it was freed"),
        ("wrong-layout", "dealloc of a"),
        ("wrong-free-sized", "free_sized of a"),
    ] {
        let out = in_child("each_misuse_stops_with_its_message", name);
        let (abort, stderr) = aborted(&out);
        assert!(abort, "{name}: not stopped: {:?}\n{stderr}", out.status);
        assert!(
            stderr.contains("oxmalloc: fatal: ") && stderr.contains(message),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn correct_use_runs_and_objects_keep_a_canary_word() {
    // A zero-byte block is still a block of its own, with room for a link.
    let zeros: Vec<_> = (0..64).map(|_| raw::malloc(0)).collect();
    for p in zeros {
        // SAFETY: ours.
        unsafe { raw::free(p) };
    }
    for size in [1, 8, 24, 64, 1000, 5000, 100_000] {
        let p = raw::malloc(size);
        let usable = raw::usable_size(p).unwrap();
        assert!(usable >= size);
        // The object's last word is the canary, outside the usable bytes.
        let class = oxmalloc::size_class::class_for(size, 1);
        assert_eq!(usable + 8, oxmalloc::size_class::CLASSES[class].size);
        // SAFETY: every usable byte is ours; sized frees with the right size.
        unsafe {
            p.write_bytes(0xab, usable);
            let q = raw::realloc(p, usable);
            assert_eq!(q, p, "the usable size is the size in place");
            raw::free_sized("free_sized", q, size, 1);
        }
    }
    // Sized deallocation of blocks whose alignment made them large.
    for (size, align) in [(868, 8192), (100, 4096), (5000, 16384), (1 << 20, 64)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a non-zero layout; freed with the same layout.
        unsafe {
            let p = OxMalloc.alloc(layout);
            assert_eq!(p as usize % align, 0);
            OxMalloc.dealloc(p, layout);
        }
    }
    let mut v = Vec::new();
    for i in 0..10_000u32 {
        v.push(vec![i; (i % 50) as usize]);
    }
    assert_eq!(v.iter().map(|x| x.len()).sum::<usize>(), 245_000);
}
