//! Alignment and in-place `realloc` through `OxMalloc`'s `GlobalAlloc`.
//!
//! Every power-of-two alignment from 1 byte to 1 MiB, at sizes around 0,
//! small, a page, just above the largest small class (256 KiB) and several
//! MiB: the pointer is aligned, the memory writable over its whole length,
//! `usable_size` covers it, `alloc_zeroed` reads as zero, and a block
//! survives a neighbour's life. `realloc` keeps the pointer when the new size
//! lands in the same class and when a large block shrinks or grows within its
//! pages.

use oxmalloc::OxMalloc;
use std::alloc::{GlobalAlloc, Layout};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

const SIZES: &[usize] = &[
    0,
    1,
    8,
    15,
    16,
    17,
    100,
    1000,
    4096,
    8191,
    8192,
    8193,
    64 * KIB,
    256 * KIB,
    256 * KIB + 1,
    300 * KIB,
    MIB + 3,
    3 * MIB + 5,
];

fn alignments() -> impl Iterator<Item = usize> {
    (0..=20).map(|s| 1usize << s)
}

/// # Safety
/// `p` is valid for `len` bytes.
unsafe fn fill(p: *mut u8, len: usize, seed: u8) {
    for i in 0..len {
        // SAFETY: `i < len` (caller).
        unsafe { *p.add(i) = seed ^ (i as u8) ^ (i >> 9) as u8 };
    }
}

/// # Safety
/// `p` is valid for `len` bytes.
unsafe fn holds(p: *const u8, len: usize, seed: u8) -> bool {
    // SAFETY: `i < len` (caller).
    (0..len).all(|i| unsafe { *p.add(i) } == seed ^ (i as u8) ^ (i >> 9) as u8)
}

fn alloc_checked(layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: a valid layout; oxmalloc supports size 0.
    let p = unsafe {
        if zeroed {
            OxMalloc.alloc_zeroed(layout)
        } else {
            OxMalloc.alloc(layout)
        }
    };
    assert!(!p.is_null(), "{layout:?} (zeroed {zeroed}): null");
    assert_eq!(
        p as usize % layout.align(),
        0,
        "{layout:?} (zeroed {zeroed}): {p:p} misaligned"
    );
    if layout.size() >= 16 {
        assert_eq!(p as usize % 16, 0, "{layout:?}: {p:p} not 16-aligned");
    }
    let usable = oxmalloc::raw::usable_size(p);
    assert!(
        usable.is_some_and(|u| u >= layout.size()),
        "{layout:?}: usable_size {usable:?}"
    );
    if zeroed {
        // SAFETY: a fresh block of `size` bytes.
        let s = unsafe { std::slice::from_raw_parts(p, layout.size()) };
        let nz = s.iter().position(|&b| b != 0);
        assert!(
            nz.is_none(),
            "alloc_zeroed {layout:?}: byte {nz:?} not zero"
        );
    }
    p
}

#[test]
fn every_alignment_at_many_sizes() {
    for align in alignments() {
        for &size in SIZES {
            let layout = Layout::from_size_align(size, align).unwrap();
            for zeroed in [false, true] {
                let a = alloc_checked(layout, zeroed);
                let b = alloc_checked(layout, zeroed);
                assert_ne!(a, b, "{layout:?}: two live blocks at the same address");
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                assert!(
                    lo as usize + size <= hi as usize,
                    "{layout:?}: {a:p} and {b:p} overlap"
                );
                // SAFETY: both blocks are live and `size` bytes long.
                unsafe {
                    fill(a, size, 0x5a);
                    fill(b, size, 0xa5);
                    assert!(holds(a, size, 0x5a), "{layout:?}: {a:p} lost its contents");
                    OxMalloc.dealloc(b, layout);
                    assert!(
                        holds(a, size, 0x5a),
                        "{layout:?}: freeing a neighbour hurt {a:p}"
                    );
                    OxMalloc.dealloc(a, layout);
                }
            }
        }
    }
}

#[test]
fn many_small_aligned_objects_are_distinct() {
    // Enough objects per class to span several spans.
    for align in [32, 64, 256, 1024, 4096, 8192, 16384] {
        let layout = Layout::from_size_align(align / 2 + 1, align).unwrap();
        let ptrs: Vec<*mut u8> = (0..300).map(|_| alloc_checked(layout, false)).collect();
        let mut sorted: Vec<usize> = ptrs.iter().map(|&p| p as usize).collect();
        sorted.sort_unstable();
        for w in sorted.windows(2) {
            assert!(w[0] + layout.size() <= w[1], "{layout:?}: overlap");
        }
        for (i, &p) in ptrs.iter().enumerate() {
            // SAFETY: live blocks of `layout.size()` bytes.
            unsafe { fill(p, layout.size(), i as u8) };
        }
        for (i, &p) in ptrs.iter().enumerate() {
            // SAFETY: live blocks of `layout.size()` bytes, allocated with
            // `layout`.
            unsafe {
                assert!(holds(p, layout.size(), i as u8), "{layout:?}: {p:p}");
                OxMalloc.dealloc(p, layout);
            }
        }
    }
}

/// `realloc` through `GlobalAlloc`, checking the contents moved along.
///
/// # Safety
/// `p` is live with `layout` and holds the pattern `seed` over `layout.size()`.
unsafe fn realloc_checked(p: *mut u8, layout: Layout, new_size: usize, seed: u8) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    let q = unsafe { OxMalloc.realloc(p, layout, new_size) };
    assert!(!q.is_null());
    assert_eq!(q as usize % layout.align(), 0, "realloc lost the alignment");
    // SAFETY: `q` holds at least min(old, new) bytes of the old contents.
    assert!(
        unsafe { holds(q, layout.size().min(new_size), seed) },
        "realloc {layout:?} -> {new_size} lost the contents"
    );
    q
}

#[test]
fn realloc_within_a_class_stays_in_place() {
    for (from, to, align) in [
        (100, 110, 1),
        (110, 100, 8),
        (100, 112, 16),
        (1, 8, 1),
        (129, 144, 16),
        (100, 110, 64),
        (1000, 1024, 1),
        (3000, 3072, 1),
        (250 * KIB, 256 * KIB, 16),
    ] {
        let layout = Layout::from_size_align(from, align).unwrap();
        let p = alloc_checked(layout, false);
        // SAFETY: `p` is live with `layout`.
        unsafe {
            fill(p, from, 7);
            let q = realloc_checked(p, layout, to, 7);
            assert_eq!(q, p, "realloc {from} -> {to} (align {align}) moved");
            OxMalloc.dealloc(q, Layout::from_size_align(to, align).unwrap());
        }
    }
}

#[test]
fn realloc_across_classes_moves_and_keeps_contents() {
    for (from, to, align) in [
        (100, 200, 1),
        (200, 100, 1),
        (1000, 300 * KIB, 16),
        (300 * KIB, 1000, 16),
        (100, 110, 16 * KIB),
        (8, 2 * MIB, MIB),
    ] {
        let layout = Layout::from_size_align(from, align).unwrap();
        let p = alloc_checked(layout, false);
        // SAFETY: `p` is live with `layout`.
        unsafe {
            fill(p, from, 9);
            let q = realloc_checked(p, layout, to, 9);
            if from < to {
                fill(q, to, 9);
            }
            OxMalloc.dealloc(q, Layout::from_size_align(to, align).unwrap());
        }
    }
}

#[test]
fn large_realloc_shrinks_and_grows_in_place() {
    // 75 pages of 8 KiB hold both SHRUNK and SHRUNK + 100 bytes.
    const SHRUNK: usize = 600 * KIB - 5000;
    for align in [1, 16, 8 * KIB, 64 * KIB, MIB] {
        // Shrink: fewer pages, same start.
        let layout = Layout::from_size_align(2 * MIB, align).unwrap();
        let p = alloc_checked(layout, false);
        // SAFETY: `p` is live with `layout`, then with the new sizes.
        unsafe {
            fill(p, 2 * MIB, 3);
            let q = realloc_checked(p, layout, SHRUNK, 3);
            assert_eq!(q, p, "shrinking a large block (align {align}) moved it");
            let l2 = Layout::from_size_align(SHRUNK, align).unwrap();
            assert!(oxmalloc::raw::usable_size(q).unwrap() >= SHRUNK);
            assert!(
                oxmalloc::raw::usable_size(q).unwrap() < 2 * MIB,
                "the tail was not given back"
            );
            // Grow within the pages it has: same start.
            let r = realloc_checked(q, l2, SHRUNK + 100, 3);
            assert_eq!(r, q, "growing within the same pages moved it");
            let l3 = Layout::from_size_align(SHRUNK + 100, align).unwrap();
            fill(r, l3.size(), 4);
            // The freed tail is usable: allocate around it while `r` lives.
            let others: Vec<*mut u8> = (0..4)
                .map(|_| alloc_checked(Layout::from_size_align(400 * KIB, 1).unwrap(), false))
                .collect();
            for &o in &others {
                fill(o, 400 * KIB, 5);
            }
            assert!(
                holds(r, l3.size(), 4),
                "a block allocated later overwrote {r:p}"
            );
            for &o in &others {
                assert!(holds(o, 400 * KIB, 5));
                OxMalloc.dealloc(o, Layout::from_size_align(400 * KIB, 1).unwrap());
            }
            OxMalloc.dealloc(r, l3);
        }
    }
}

#[test]
fn alloc_zeroed_clears_reused_dirty_memory() {
    for (size, align) in [
        (300 * KIB, 1),
        (MIB, 16),
        (MIB, 64 * KIB),
        (100, 1),
        (5000, 4096),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        for _ in 0..4 {
            let p = alloc_checked(layout, false);
            // SAFETY: `p` is live with `layout`.
            unsafe {
                std::ptr::write_bytes(p, 0xff, size);
                OxMalloc.dealloc(p, layout);
            }
            // Likely the same block again: it must be cleared.
            let z = alloc_checked(layout, true);
            // SAFETY: `z` is live with `layout`.
            unsafe { OxMalloc.dealloc(z, layout) };
        }
        // A large block shrunk in place leaves a dirty tail behind.
        let big = Layout::from_size_align(2 * MIB, align).unwrap();
        let p = alloc_checked(big, false);
        // SAFETY: `p` is live with `big`, then with the shrunk layout.
        unsafe {
            std::ptr::write_bytes(p, 0xee, 2 * MIB);
            let q = OxMalloc.realloc(p, big, 300 * KIB);
            let zs: Vec<*mut u8> = (0..4).map(|_| alloc_checked(layout, true)).collect();
            for z in zs {
                OxMalloc.dealloc(z, layout);
            }
            OxMalloc.dealloc(q, Layout::from_size_align(300 * KIB, align).unwrap());
        }
    }
}
