//! oxmalloc: a thread-caching memory allocator in the TCMalloc family, with
//! external memory injection.
//!
//! Use it as Rust's global allocator:
//!
//! ```
//! #[global_allocator]
//! static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
//! # fn main() { let s = String::from("hello"); assert_eq!(s.len(), 5); }
//! ```
//!
//! # Handing oxmalloc memory it did not obtain itself
//!
//! [`inject`] gives oxmalloc a range (a pre-reserved pool, a hugepage or
//! shared-memory mapping, device or pinned memory) with a [`Release`] policy;
//! [`set_system_allocator`] installs a [`SysAllocator`] that supplies fresh
//! memory ([`MmapSysAllocator`] by default, [`FileSysAllocator`] for
//! hugetlbfs, tmpfs and memfd files). Every span belongs to exactly one
//! region, coalescing never crosses regions, metadata never lives inside an
//! injected region, and injected memory is never unmapped.
//!
//! # Before the first allocation
//!
//! To have *all* of a program's memory come from an injected region or a
//! system allocator of its own, do it before anything allocates: from a
//! function in `.init_array`, which the loader runs before `main` and before
//! Rust's runtime allocates. A priority suffix runs it ahead of other
//! constructors of the executable:
//!
//! ```no_run
//! #[global_allocator]
//! static A: oxmalloc::OxMalloc = oxmalloc::OxMalloc;
//!
//! extern "C" fn early() {
//!     const LEN: usize = 1 << 30;
//!     // SAFETY: a fresh reservation, handed to oxmalloc for good.
//!     unsafe {
//!         let p = libc::mmap(core::ptr::null_mut(), LEN, libc::PROT_READ | libc::PROT_WRITE,
//!             libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0);
//!         let _ = oxmalloc::inject(p.cast(), LEN, oxmalloc::RegionOptions::new().label("pool"));
//!     }
//! }
//!
//! #[used]
//! #[link_section = ".init_array.00101"]
//! static EARLY: extern "C" fn() = early;
//! # fn main() {}
//! ```
//!
//! Programs that only preload the C library use the `OXMALLOC_MEMFS_*`
//! environment variables instead (see the README's table).
//!
//! Layers, bottom-up (each module uses only those above it in this list):
//! `os` (the kernel), `sync` (a lock that never allocates), `meta` (the
//! metadata arena), `size_class`, `span`, `publish` (records published once),
//! `pagemap`, `backing` (what kind of memory a range is), `address_map`
//! (every managed range), `release` (release policies and outcomes),
//! `sys_allocator`, `region` (where pages come from: system allocators and
//! injected ranges), `file_sys_allocator`, `config` (the environment),
//! `settings`, `page_heap`, `central` and `transfer` (per-class free lists
//! and batches), `heap` (a heap's back end), `cache_home` (where a thread
//! finds its cache of a heap), `thread_cache`, `fork`, `global`
//! ([`OxMalloc`], the entry points), `bound_heap`, then `stats`, `extension`,
//! `report` and `background`.
//!
//! The engine is `#![no_std]` and never allocates through the global
//! allocator: all its memory comes from the OS layer or from regions.

#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod address_map;
mod background;
mod backing;
mod bound_heap;
mod cache_home;
mod central;
mod config;
mod extension;
mod file_sys_allocator;
mod fork;
mod global;
mod hardened;
mod heap;
mod meta;
#[doc(hidden)]
pub mod os;
mod page_heap;
mod pagemap;
mod publish;
mod region;
mod release;
mod report;
mod settings;
#[doc(hidden)]
pub mod size_class;
mod span;
mod stats;
mod sync;
mod sys_allocator;
mod thread_cache;
mod transfer;

pub use background::{
    background_release_interval_ms, release_idle_memory, start_background_release,
};
pub use backing::Backing;
pub use bound_heap::{
    Heap, HeapError, HeapOptions, HeapRegionStats, HeapStats, RetireError, RetiredRange,
    RetiredRegions, MAX_HEAP_REGIONS,
};
pub use extension::{
    allocated_size, estimated_allocated_size, for_each_span, numeric_property, ownership,
    set_numeric_property, Ownership, RangeState, SpanRange,
};
pub use file_sys_allocator::{FileError, FileSource, FileSysAllocator};
pub use global::{raw, OxMalloc};
pub use heap::{GrowthHook, MAX_HEAPS};
pub use region::{
    inject, region_of, set_system_allocator, system_allocator, InjectError, RegionId, RegionInfo,
    RegionKind, RegionOptions, LABEL_LEN, MAX_REGIONS,
};
pub use release::{Release, ReleaseHook, ReleaseOutcome};
pub use report::{write_json, write_json_string, write_report};
pub use stats::{
    class_stats, for_each_metadata_mapping, for_each_region, mark_thread_idle, region_info,
    release_free_memory, release_to_system, stats, thread_cache_size, ClassStats, Stats,
};
pub use sys_allocator::{MmapSysAllocator, SysAllocator};
