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
//! [`os`] (the kernel), `sync` (a lock that never allocates), `meta` (the
//! metadata arena), [`size_class`], `pagemap`, `span`, `region` (where pages
//! come from: system allocators and injected ranges), `page_heap`, `central`
//! and `transfer` (per-class free lists and batches), `thread_cache`, `heap`,
//! `global` ([`OxMalloc`]) and `stats`.
//!
//! The engine is `#![no_std]` and never allocates through the global
//! allocator: all its memory comes from the OS layer or from regions.

#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod background;
mod central;
mod config;
mod extension;
mod file_sys_allocator;
mod global;
mod heap;
mod meta;
pub mod os;
mod page_heap;
mod pagemap;
mod region;
mod report;
pub mod size_class;
mod span;
mod stats;
mod sync;
mod thread_cache;
mod transfer;

pub use background::{
    background_release_interval_ms, release_idle_memory, start_background_release,
};
pub use extension::{
    allocated_size, estimated_allocated_size, for_each_span, numeric_property, ownership,
    set_numeric_property, Ownership, RangeState, SpanRange,
};
pub use file_sys_allocator::{FileError, FileSource, FileSysAllocator};
pub use global::{raw, OxMalloc};
pub use region::{
    for_each_region, inject, region_info, region_of, set_system_allocator, system_allocator,
    InjectError, MmapSysAllocator, RegionId, RegionInfo, RegionKind, RegionOptions, Release,
    ReleaseHook, SysAllocator, LABEL_LEN, MAX_REGIONS,
};
pub use report::{write_json, write_report};
pub use stats::{
    class_stats, mark_thread_idle, release_free_memory, release_to_system, stats,
    thread_cache_size, ClassStats, Stats,
};
