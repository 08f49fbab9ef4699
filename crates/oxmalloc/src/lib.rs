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

pub use extension::{
    allocated_size, estimated_allocated_size, for_each_span, numeric_property, ownership,
    set_numeric_property, Ownership, RangeState, SpanRange,
};
pub use file_sys_allocator::{FileError, FileSource, FileSysAllocator};
pub use global::{raw, OxMalloc};
pub use region::{
    for_each_region, inject, region_info, region_of, set_system_allocator, system_allocator,
    InjectError, MmapSysAllocator, RegionId, RegionInfo, RegionKind, RegionOptions, Release,
    ReleaseHook, SysAllocator,
};
pub use report::{write_json, write_report};
pub use stats::{mark_thread_idle, release_free_memory, release_to_system, stats, Stats};
