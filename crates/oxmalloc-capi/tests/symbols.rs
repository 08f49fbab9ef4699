//! `nm -D` of the library lists every symbol the C library promises.

mod support;

use std::process::Command;

const SYMBOLS: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "cfree",
    "free_sized",
    "free_aligned_sized",
    "__libc_malloc",
    "__libc_free",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    "MallocExtension_GetNumericProperty",
    "MallocExtension_SetNumericProperty",
    "MallocExtension_GetStats",
    "MallocExtension_ReleaseFreeMemory",
    "MallocExtension_ReleaseToSystem",
    "MallocExtension_MarkThreadIdle",
    "MallocExtension_GetAllocatedSize",
    "MallocExtension_GetEstimatedAllocatedSize",
    "MallocExtension_GetOwnership",
    "nallocx",
    "oxmalloc_inject",
    "oxmalloc_inject_strerror",
    "oxmalloc_set_system_allocator",
    "oxmalloc_region_info",
    "oxmalloc_region_of",
    "oxmalloc_for_each_region",
    "oxmalloc_heap_new_in",
    "oxmalloc_heap_add_region",
    "oxmalloc_heap_malloc",
    "oxmalloc_heap_calloc",
    "oxmalloc_heap_memalign",
    "oxmalloc_heap_realloc",
    "oxmalloc_heap_free",
    "oxmalloc_heap_stats",
    "oxmalloc_heap_retire",
    "oxmalloc_heap_destroy",
];

/// The defined, exported function symbols of an ELF file.
fn exported_functions(path: &std::path::Path) -> Vec<String> {
    let out = support::check(Command::new("nm").args(["-D", "--defined-only"]).arg(path));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then(|| name.to_string())
        })
        .collect()
}

#[test]
fn shared_library_exports_every_symbol() {
    let found = exported_functions(&support::library());
    let missing: Vec<_> = SYMBOLS
        .iter()
        .filter(|s| !found.iter().any(|f| f == *s))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

#[test]
fn get_new_handler_is_a_weak_reference() {
    // C programs without libstdc++ must load the library.
    let out = support::check(Command::new("nm").arg("-D").arg(support::library()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.trim() == "w _ZSt15get_new_handlerv"),
        "std::get_new_handler is not a weak import:\n{text}"
    );
}
