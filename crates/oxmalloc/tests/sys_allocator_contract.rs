//! The contract between oxmalloc and a system allocator (issue 9, items 7,
//! 12, 13): growth asks for the preferred chunk, then for exactly what the
//! request needs; chunks overlapping managed memory stop the program with a
//! message; a file allocator maps its chunks into one window. Each scenario
//! installs its own system allocator, so each runs in a child process.

mod common;

use common::{aborted, in_child, map_with, scenario};
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use oxmalloc::{
    inject, FileSource, FileSysAllocator, MmapSysAllocator, OxMalloc, RegionOptions, SysAllocator,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Hands out pieces of one mapping, `left` bytes in all.
struct Budget {
    base: AtomicUsize,
    left: AtomicUsize,
}

// SAFETY: disjoint, aligned pieces of a private mapping of ours.
unsafe impl SysAllocator for Budget {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        if size > self.left.load(Ordering::Relaxed) {
            return None;
        }
        self.left.fetch_sub(size, Ordering::Relaxed);
        let p = self
            .base
            .fetch_add(size.next_multiple_of(align), Ordering::Relaxed);
        NonNull::new(p as *mut u8).map(|p| NonNull::slice_from_raw_parts(p, size))
    }
    fn zeroed(&self) -> bool {
        true
    }
}

static BUDGET: Budget = Budget {
    base: AtomicUsize::new(0),
    left: AtomicUsize::new(0),
};

fn little_left() {
    let base = map_with(64 << 20, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1) as usize;
    BUDGET
        .base
        .store(base.next_multiple_of(8192), Ordering::Relaxed);
    BUDGET.left.store(512 << 10, Ordering::Relaxed);
    let id = oxmalloc::set_system_allocator(&BUDGET).unwrap();
    // 300 KiB needs 38 pages; the preferred 1 MiB chunk is refused, the
    // exact size fits what is left.
    let l = Layout::from_size_align(300 << 10, 8).unwrap();
    // SAFETY: non-zero layout.
    let p = unsafe { OxMalloc.alloc(l) };
    assert!(!p.is_null(), "malloc(300 KiB) with 512 KiB left");
    assert_eq!(oxmalloc::region_of(p), Some(id), "from the budget");
}

/// Fails every other call.
struct EveryOther(AtomicUsize);

// SAFETY: forwards to the mmap allocator.
unsafe impl SysAllocator for EveryOther {
    fn alloc(&self, size: usize, align: usize) -> Option<NonNull<[u8]>> {
        if self.0.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            return None;
        }
        MmapSysAllocator.alloc(size, align)
    }
}

static EVERY_OTHER: EveryOther = EveryOther(AtomicUsize::new(0));

fn flaky_every_other_call() {
    oxmalloc::set_system_allocator(&EVERY_OTHER).unwrap();
    let l = Layout::from_size_align(2 << 20, 8).unwrap();
    let mut nulls = 0;
    for _ in 0..60 {
        // SAFETY: non-zero layout; the blocks are left live (each needs a
        // fresh chunk).
        if unsafe { OxMalloc.alloc(l) }.is_null() {
            nulls += 1;
        }
    }
    assert_eq!(nulls, 0, "{nulls} NULLs in 60 calls");
}

/// Returns an injected region's memory.
struct Thief(AtomicUsize);

// SAFETY: deliberately broken: oxmalloc must refuse it.
unsafe impl SysAllocator for Thief {
    fn alloc(&self, size: usize, _align: usize) -> Option<NonNull<[u8]>> {
        NonNull::new(self.0.load(Ordering::Relaxed) as *mut u8)
            .map(|p| NonNull::slice_from_raw_parts(p, size))
    }
}

static THIEF: Thief = Thief(AtomicUsize::new(0));

fn returns_injected_memory() {
    let len = 64 << 20;
    let p = map_with(len + 8192, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1) as usize;
    let p = p.next_multiple_of(8192);
    // SAFETY: our mapping, handed over for good.
    unsafe { inject(p as *mut u8, len, RegionOptions::new().exclusive(true)) }.unwrap();
    THIEF.0.store(p, Ordering::Relaxed);
    oxmalloc::set_system_allocator(&THIEF).unwrap();
    let l = Layout::from_size_align(4 << 20, 8).unwrap();
    // SAFETY: non-zero layout.
    let q = unsafe { OxMalloc.alloc(l) };
    println!("not reached {q:p}");
}

fn same_chunk_twice() {
    let p = map_with(64 << 20, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1) as usize;
    THIEF.0.store(p.next_multiple_of(8192), Ordering::Relaxed);
    oxmalloc::set_system_allocator(&THIEF).unwrap();
    let l = Layout::from_size_align(4 << 20, 8).unwrap();
    // SAFETY: non-zero layouts.
    unsafe {
        let a = OxMalloc.alloc(l);
        assert!(!a.is_null());
        let b = OxMalloc.alloc(l);
        println!("not reached {b:p}");
    }
}

static FILE: FileSysAllocator = FileSysAllocator::new();

fn file_chunks_share_mappings() {
    FILE.open(FileSource::Memfd, 0, None).unwrap();
    oxmalloc::set_system_allocator(&FILE).unwrap();
    let l = Layout::from_size_align(1 << 20, 8).unwrap();
    for _ in 0..2000 {
        // SAFETY: non-zero layout; left live, untouched (the file stays
        // sparse).
        assert!(!unsafe { OxMalloc.alloc(l) }.is_null());
    }
    assert!(FILE.file_bytes() >= 2000 << 20);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let n = maps
        .lines()
        .filter(|l| l.contains("memfd:oxmalloc"))
        .count();
    assert!(n <= 4, "2000 chunks took {n} mappings");
}

#[test]
fn system_allocator_contract() {
    scenario(&[
        ("little-left", little_left),
        ("every-other", flaky_every_other_call),
        ("injected", returns_injected_memory),
        ("twice", same_chunk_twice),
        ("file-mappings", file_chunks_share_mappings),
    ]);
    for ok in ["little-left", "every-other", "file-mappings"] {
        let out = in_child("system_allocator_contract", ok);
        assert!(
            out.status.success(),
            "{ok}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for bad in ["injected", "twice"] {
        let out = in_child("system_allocator_contract", bad);
        let (abort, stderr) = aborted(&out);
        assert!(abort, "{bad}: {out:?}");
        assert!(
            stderr.contains(
                "oxmalloc: fatal: system allocator returned memory oxmalloc already manages"
            ),
            "{bad}: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("not reached"));
    }
}
