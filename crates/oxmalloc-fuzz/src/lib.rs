//! Differential fuzzing of oxmalloc through its public Rust API.
//!
//! A fuzz input is a byte string that [`ops::decode`] turns into a sequence
//! of operations with `arbitrary` (every byte string is valid): allocations
//! with sizes up to 2 MiB and alignments up to 64 KiB (`alloc`,
//! `alloc_zeroed`), `realloc`, frees, cross-thread frees and allocations
//! (a second thread), injection of fresh mappings into the global heap, and
//! heaps bound to exclusive injected regions ([`oxmalloc::Heap::new_in`],
//! `add_region`, allocation through `&Heap` as an
//! `allocator_api2::alloc::Allocator` including `grow` and `shrink`, frees
//! through the heap or the global entry point, `retire`, `destroy`), and
//! release calls. [`run`] executes them against oxmalloc and checks every
//! step against a model ([`model`]): alignment, `allocated_size` covering
//! the request, no overlap with any live block, zeroed memory, a heap's
//! blocks inside its regions and global blocks outside them, contents (a
//! per-block pattern checked on every free, `realloc` and release),
//! `retire` refusing exactly while blocks are live. At the end everything is
//! freed, every heap retires, and the global heap's allocated bytes are back
//! where they started.
//!
//! Three drivers use it: the cargo-fuzz target in `fuzz/` (libFuzzer, needs
//! a nightly toolchain), the replay test of this crate (`tests/replay.rs`,
//! every file of `fuzz/corpus/ops/`, part of `cargo test`), and the stable
//! random explorer `oxmalloc-fuzz-explore` (see `docs/TESTING.md`).
//!
//! The process keeps the system allocator as its global allocator: the
//! model's own memory never comes from oxmalloc, so a bug in oxmalloc cannot
//! corrupt the model that is to find it.

mod exec;
pub mod mapping;
pub mod model;
pub mod ops;
pub mod pattern;
mod worker;

/// Decodes `data` and runs it (panics on the first discrepancy; oxmalloc
/// itself aborts on the misuse it detects).
pub fn run(data: &[u8]) {
    exec::run_ops(&ops::decode(data));
}

/// Runs decoded operations.
pub fn run_ops(ops: &[ops::Op]) {
    exec::run_ops(ops);
}
