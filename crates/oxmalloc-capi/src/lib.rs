//! oxmalloc as a C library: `liboxmalloc.so` (drop-in for `LD_PRELOAD` or
//! linking) and `liboxmalloc.a`.
//!
//! | module | exports |
//! |---|---|
//! | [`malloc`] | the C and POSIX allocation functions, glibc's `__libc_*` and gperftools' `tc_*` names for them |
//! | [`cxx`] | every standard C++ `operator new` / `operator delete`, by Itanium name, and their `tc_*` names |
//! | [`tc`] | the rest of gperftools' `tc_*` functions: version, new mode, `tc_malloc_stats` |
//! | [`mallinfo`] | glibc's introspection: `mallinfo`, `mallinfo2`, `malloc_stats`, `malloc_info`, `malloc_trim`, `mallopt` |
//! | [`extension`] | gperftools' `MallocExtension_*` functions and `nallocx` |
//! | [`malloc_extension_cxx`] | gperftools' C++ `MallocExtension::instance()`: object, virtual table, mangled members |
//! | [`regions`] | the region API of `include/oxmalloc.h` (`oxmalloc_inject`, …) |
//! | [`heaps`] | heaps bound to regions (`oxmalloc_heap_new_in`, …) |
//! | [`exit_report`] | `MALLOCSTATS=1\|2\|json`, `OXMALLOC_STATS_DIR`: the allocator report at exit |
//! | [`json_report`] | `oxmalloc_write_json`, `oxmalloc_write_json_fd`: the JSON report for C |
//! | [`timeline`] | `OXMALLOC_TIMELINE`: a thread sampling the figures into a file |
//! | [`process`] | the pid and command line the reports name; the main process of a run |
//! | `slice_writer` | text into a caller's buffer, `snprintf`-style |
//! | `fatal` | stopping the program with a message, never allocating (and the panic hook) |
//!
//! # Why this crate links `std`
//! A `cdylib` or `staticlib` built without `std` must be compiled with
//! `panic = "abort"`, which Cargo sets only per profile, not per crate (and
//! never for `cargo test`). So the library links `std`, but nothing in it uses
//! `std`'s allocating parts: every path is written against `core`, the engine
//! and `libc`. Panics are not reachable by construction (no indexing that can
//! fail, no `unwrap`); should one happen anyway, [`panic`]'s hook, installed
//! when the library is loaded, prints a fixed line and aborts before `std`'s
//! default hook could allocate.
//!
//! # Load-time and exit-time hooks
//! The library's constructor (an `.init_array` entry, run before `main` and
//! before the constructors of the libraries that depend on it) installs the
//! panic hook, completes the C++ type information, reads the report variables (`MALLOCSTATS`, `OXMALLOC_STATS_*`,
//! `OXMALLOC_PARENT_PID`), and starts the background release thread and the
//! timeline's sampler when `OXMALLOC_BACKGROUND_RELEASE_MS` and
//! `OXMALLOC_TIMELINE` ask for them; its `.fini_array` destructor takes the
//! timeline's last sample and writes the reports. Neither uses `atexit`,
//! which may allocate.

mod alias;
pub mod cxx;
pub mod exit_report;
pub mod extension;
mod fatal;
pub mod heaps;
pub mod json_report;
pub mod mallinfo;
pub mod malloc;
pub mod malloc_extension_cxx;
pub mod process;
pub mod regions;
mod slice_writer;
mod slots;
pub mod tc;
pub mod timeline;

/// Runs when the library is loaded (or, for the static library, when the
/// program starts).
extern "C" fn on_load() {
    fatal::install_panic_hook();
    process::arm();
    malloc_extension_cxx::bind_type_info();
    exit_report::arm();
    start_background_release();
    timeline::start();
}

/// `OXMALLOC_BACKGROUND_RELEASE_MS=N` (or `TCMALLOC_…`): a thread gives idle
/// free pages back to the OS every N milliseconds. Started here, never from
/// inside an allocation.
fn start_background_release() {
    use engine::os::{getenv, parse_usize};
    let ms = getenv(c"OXMALLOC_BACKGROUND_RELEASE_MS")
        .or_else(|| getenv(c"TCMALLOC_BACKGROUND_RELEASE_MS"))
        .and_then(parse_usize);
    if let Some(ms) = ms.filter(|&ms| ms > 0) {
        engine::start_background_release(ms as u64);
    }
}

/// Runs when the library is unloaded, after `atexit` handlers.
extern "C" fn on_unload() {
    timeline::finish();
    exit_report::print();
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static ON_UNLOAD: extern "C" fn() = on_unload;
