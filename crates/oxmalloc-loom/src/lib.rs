//! loom models of the parts of oxmalloc that threads share without (or
//! around) a lock, over the engine's own source files: `sync.rs` (the
//! futex lock every shared structure uses, the transfer caches and the
//! thread-cache registry included), `publish.rs` (how pagemap leaves are
//! published) and `cache_home.rs` (how a thread's cache of a heap is handed
//! over when the thread exits or the heap is retired). Those files use loom's atomics when compiled here
//! (`cfg(loom)`, set by `build.rs`); the tests in `tests/models.rs` run
//! every interleaving loom finds.

#[path = "../../oxmalloc/src/sync.rs"]
pub mod sync;

#[path = "../../oxmalloc/src/publish.rs"]
pub mod publish;

#[path = "../../oxmalloc/src/cache_home.rs"]
pub mod cache_home;
