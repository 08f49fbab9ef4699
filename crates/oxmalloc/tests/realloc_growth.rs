//! Growing a block with `realloc`: large blocks grow in place into the free
//! pages after them, else move to a span with room to grow (so a run of
//! growing reallocs copies O(n) bytes, not O(n^2)); big blocks of plain
//! mmap memory move with `mremap`; the old copy of a moved block never stays
//! resident; contents and alignment survive every step.

mod common;

use common::{in_child, map_aligned, scenario};
use core::alloc::{GlobalAlloc, Layout};
use oxmalloc::{inject, raw, stats, Heap, OxMalloc, RegionOptions};

const STEP: usize = 64 << 10;

/// The process's resident memory (`/proc/self/statm`).
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Resident bytes of `[base, base + len)` (`mincore`).
fn resident_in(base: *mut u8, len: usize) -> usize {
    let page = 4096;
    let mut v = vec![0u8; len / page];
    // SAFETY: a mapping of ours of `len` bytes; `v` has one byte per page.
    assert_eq!(
        unsafe { libc::mincore(base.cast(), len, v.as_mut_ptr()) },
        0
    );
    v.iter().filter(|&&b| b & 1 != 0).count() * page
}

/// Grows a block from `STEP` to `total` bytes in `STEP` steps through
/// `realloc`, filling each new step with its number; checks every step at
/// the end and returns the final block and how often it moved once large
/// (a small object moves from class to class).
fn grow(total: usize, mut realloc: impl FnMut(*mut u8, usize) -> *mut u8) -> (*mut u8, usize) {
    let mut p: *mut u8 = core::ptr::null_mut();
    let mut moves = 0;
    let mut size = STEP;
    while size <= total {
        let q = realloc(p, size);
        assert!(!q.is_null(), "realloc to {size} bytes failed");
        if size - STEP > 256 << 10 && q != p {
            moves += 1;
        }
        p = q;
        // SAFETY: the block holds `size` bytes.
        unsafe { core::ptr::write_bytes(p.add(size - STEP), (size / STEP) as u8, STEP) };
        size += STEP;
    }
    for i in 1..=total / STEP {
        // SAFETY: inside the final block.
        let s = unsafe { core::slice::from_raw_parts(p.add((i - 1) * STEP), STEP) };
        assert!(
            s.iter().all(|&b| b == i as u8),
            "step {i} lost its bytes after {moves} moves"
        );
    }
    (p, moves)
}

fn global_block_grows_with_few_moves_and_no_resident_copies() {
    let before = stats();
    let rss_before = resident_bytes();
    let (p, moves) = grow(128 << 20, |p, n| {
        if p.is_null() {
            return raw::malloc(n);
        }
        // SAFETY: realloc of our own block.
        unsafe { raw::realloc(p, n) }
    });
    // 2048 steps; a quarter more room on each move means about 25 moves.
    assert!(moves <= 40, "{moves} moves for 2048 steps");
    // The old copies were moved away (mremap) or released: the process
    // holds the block, not the block and its old copies.
    let grew = resident_bytes().saturating_sub(rss_before);
    assert!(
        grew <= 144 << 20,
        "resident memory grew by {} MiB to grow one block to 128 MiB",
        grew >> 20
    );
    // Pages that held moved copies are reused, and read as zero.
    let z = raw::zeroed(32 << 20, 1);
    assert!(!z.is_null());
    // SAFETY: 32 MiB just allocated.
    let zs = unsafe { core::slice::from_raw_parts(z, 32 << 20) };
    assert!(
        zs.iter().all(|&b| b == 0),
        "calloc over moved pages is not zero"
    );
    // SAFETY: our blocks.
    unsafe {
        raw::free(z);
        let q = raw::realloc(p, 4 << 20);
        assert!(!q.is_null());
        raw::free(q);
    }
    let end = stats();
    assert!(
        end.allocated_bytes <= before.allocated_bytes + (1 << 20),
        "{} bytes still in use after freeing everything (before: {})",
        end.allocated_bytes,
        before.allocated_bytes
    );
}

#[test]
fn global_block_grows_with_few_moves() {
    scenario(&[(
        "global",
        global_block_grows_with_few_moves_and_no_resident_copies,
    )]);
    let out = in_child("global_block_grows_with_few_moves", "global");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn block_alone_in_a_region_grows_in_place() {
    let len = 64 << 20;
    let base = map_aligned(len);
    // SAFETY: a fresh mapping of ours, handed over for good.
    let id = unsafe { inject(base, len, RegionOptions::new().exclusive(true)) }.unwrap();
    let heap = Heap::new_in(id).unwrap();
    let first = heap.alloc_raw(STEP, 1);
    let mut prev_size = STEP;
    let (p, moves) = grow(32 << 20, |p, n| {
        if p.is_null() {
            return first;
        }
        let old = Layout::from_size_align(prev_size, 1).unwrap();
        prev_size = n;
        // SAFETY: `p` is the heap's block with layout `old`.
        unsafe { heap.realloc(p, old, n) }
    });
    assert_eq!(moves, 0, "a large block with free pages after it moved");
    // SAFETY: the heap's block.
    unsafe { raw::free(p) };
}

const FENCE: usize = 64 << 10;

#[test]
fn injected_block_moves_by_copy_and_releases_the_old_copy() {
    let len = 1 << 30;
    let base = map_aligned(len);
    // SAFETY: a fresh mapping of ours, handed over for good.
    let id = unsafe { inject(base, len, RegionOptions::new().exclusive(true)) }.unwrap();
    let heap = Heap::new_in(id).unwrap();
    // Small blocks carved after the growing one, so that it cannot grow in
    // place for long.
    let mut fences = Vec::new();
    let (p, moves) = grow(64 << 20, |p, n| {
        fences.push(heap.alloc_raw(FENCE, 1));
        if p.is_null() {
            return heap.alloc_raw(n, 1);
        }
        // SAFETY: the heap's block.
        unsafe { heap.realloc_unsized(p, n) }
    });
    let inside = |q: *mut u8| (base as usize..base as usize + len).contains(&(q as usize));
    assert!(inside(p), "the block left its heap's region");
    assert!(
        (10..=40).contains(&moves),
        "{moves} moves for 1024 steps with a fence at every step"
    );
    // Resident: the block, the fences and a few not yet released copies
    // below the release size; not the block's old copies.
    let resident = resident_in(base, len);
    assert!(
        resident <= (64 << 20) + fences.len() * FENCE + (8 << 20),
        "{} MiB resident in the region: old copies stayed",
        resident >> 20
    );
    // SAFETY: the heap's blocks.
    unsafe {
        raw::free(p);
        for f in fences {
            assert!(inside(f));
            raw::free(f);
        }
    }
}

#[test]
fn aligned_block_keeps_its_alignment_while_growing() {
    let align = 1 << 20;
    let mut old = Layout::from_size_align(STEP, align).unwrap();
    // SAFETY: a nonzero layout.
    let first = unsafe { OxMalloc.alloc(old) };
    let mut fences = Vec::new();
    let (p, _) = grow(16 << 20, |p, n| {
        if p.is_null() {
            return first;
        }
        // SAFETY: our block with layout `old`.
        let q = unsafe { OxMalloc.realloc(p, old, n) };
        assert_eq!(
            q as usize % align,
            0,
            "realloc to {n} bytes lost the alignment"
        );
        old = Layout::from_size_align(n, align).unwrap();
        fences.push(raw::malloc(n / 2));
        q
    });
    // SAFETY: our blocks.
    unsafe {
        OxMalloc.dealloc(p, old);
        for f in fences {
            raw::free(f);
        }
    }
}

/// Grows a block from 16 bytes to `total` one byte at a time through
/// `realloc`, checking the contents kept; returns how often it moved.
fn grow_bytewise(total: usize, realloc: impl Fn(*mut u8, usize) -> *mut u8) -> usize {
    let mut p = realloc(core::ptr::null_mut(), 16);
    for i in 0..16 {
        // SAFETY: `p` holds 16 bytes.
        unsafe { *p.add(i) = (i % 251) as u8 };
    }
    let mut moves = 0;
    for n in 17..=total {
        let q = realloc(p, n);
        assert!(!q.is_null());
        if q != p {
            moves += 1;
        }
        // SAFETY: `q` holds `n` bytes; bytes below `n - 1` were written.
        unsafe {
            assert_eq!(*q.add(n / 2 - 1), ((n / 2 - 1) % 251) as u8);
            *q.add(n - 1) = ((n - 1) % 251) as u8;
        }
        p = q;
    }
    // SAFETY: from `realloc`, freed once.
    unsafe { raw::free(p) };
    moves
}

#[test]
fn c_realloc_leaves_small_blocks_room_to_grow() {
    // SAFETY: `p` is null or the block the previous call returned.
    let c_realloc = |p: *mut u8, n: usize| unsafe {
        if p.is_null() {
            raw::malloc(n)
        } else {
            raw::realloc(p, n)
        }
    };
    // 16 B to 64 KiB: a move at every size class boundary would be about
    // 95 moves; a quarter more room at each move makes it about 40.
    let moves = grow_bytewise(64 << 10, c_realloc);
    assert!(moves <= 45, "{moves} moves growing 16 B to 64 KiB");
    // A Rust caller frees with the layout it asked for, so its block keeps
    // the class of its size: no room left, and dealloc with the new layout
    // stays right.
    let layout = |n| Layout::from_size_align(n, 1).unwrap();
    // SAFETY: `p` is null or the live block of the previous size `n - 1`.
    let rust_realloc = |p: *mut u8, n: usize| unsafe {
        if p.is_null() {
            OxMalloc.alloc(layout(n))
        } else {
            let q = OxMalloc.realloc(p, layout(n - 1), n);
            assert_eq!(
                raw::usable_size(q),
                Some(oxmalloc::estimated_allocated_size(n))
            );
            q
        }
    };
    let moves = grow_bytewise(4096, rust_realloc);
    assert!(moves > 20, "{moves}: Rust reallocs move at each class");
}

/// A big block moved with `mremap` never leaves a hole in the heap's memory,
/// not even for an instant: a mapping another thread makes meanwhile must
/// not land there (the heap would then map over it, or hand it out). One
/// thread moves 2 MiB blocks (a live block right behind each stops it from
/// growing in place) while others map, fill and check pages of their own.
#[test]
fn moving_a_big_block_leaves_no_hole_for_other_threads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    let mappers: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let len = 1 << 20;
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: a fresh anonymous mapping of ours, unmapped below.
                    let p = unsafe {
                        libc::mmap(
                            core::ptr::null_mut(),
                            len,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                            -1,
                            0,
                        )
                    };
                    assert_ne!(p, libc::MAP_FAILED);
                    let words = p.cast::<u64>();
                    let tag = (t as u64) << 56 | rounds;
                    for i in (0..len / 8).step_by(512) {
                        // SAFETY: inside the mapping.
                        unsafe { words.add(i).write_volatile(tag) };
                    }
                    std::thread::yield_now();
                    for i in (0..len / 8).step_by(512) {
                        // SAFETY: inside the mapping.
                        let w = unsafe { words.add(i).read_volatile() };
                        assert_eq!(w, tag, "a mapping of this thread was overwritten at {p:?}");
                    }
                    // SAFETY: ours, mapped above.
                    unsafe { libc::munmap(p, len) };
                    rounds += 1;
                }
            })
        })
        .collect();
    let t = std::time::Instant::now();
    let mut moves = 0;
    while t.elapsed() < std::time::Duration::from_millis(1500) {
        // SAFETY: fresh blocks, resized and freed once.
        unsafe {
            let p = raw::malloc(2 << 20);
            let behind = raw::malloc(2 << 20);
            assert!(!p.is_null() && !behind.is_null());
            p.write(7);
            let q = raw::realloc(p, 8 << 20);
            assert!(!q.is_null());
            assert_eq!(q.read(), 7);
            if q != p {
                moves += 1;
            }
            raw::free(q);
            raw::free(behind);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for m in mappers {
        m.join().unwrap();
    }
    eprintln!("{moves} moves");
    assert!(moves > 100, "only {moves} moves");
}
