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
    "MallocExtension_VerifyAllMemory",
    "MallocExtension_VerifyNewMemory",
    "MallocExtension_VerifyArrayNewMemory",
    "MallocExtension_VerifyMallocMemory",
    "MallocExtension_MallocMemoryStats",
    "MallocExtension_MarkThreadBusy",
    "MallocExtension_MarkThreadTemporarilyIdle",
    "MallocExtension_GetThreadCacheSize",
    "MallocExtension_SetMemoryReleaseRate",
    "MallocExtension_GetMemoryReleaseRate",
    "MallocExtension_GetFreeListSizes",
    "nallocx",
    // gperftools' <gperftools/tcmalloc.h>
    "tc_version",
    "tc_malloc",
    "tc_malloc_skip_new_handler",
    "tc_free",
    "tc_free_sized",
    "tc_realloc",
    "tc_calloc",
    "tc_cfree",
    "tc_memalign",
    "tc_posix_memalign",
    "tc_valloc",
    "tc_pvalloc",
    "tc_malloc_stats",
    "tc_mallopt",
    "tc_mallinfo",
    "tc_malloc_size",
    "tc_set_new_mode",
    "tc_query_new_mode",
    "tc_new",
    "tc_new_nothrow",
    "tc_delete",
    "tc_delete_sized",
    "tc_delete_nothrow",
    "tc_newarray",
    "tc_newarray_nothrow",
    "tc_deletearray",
    "tc_deletearray_sized",
    "tc_deletearray_nothrow",
    "tc_new_aligned",
    "tc_new_aligned_nothrow",
    "tc_delete_aligned",
    "tc_delete_sized_aligned",
    "tc_delete_aligned_nothrow",
    "tc_newarray_aligned",
    "tc_newarray_aligned_nothrow",
    "tc_deletearray_aligned",
    "tc_deletearray_sized_aligned",
    "tc_deletearray_aligned_nothrow",
    // gperftools' C++ MallocExtension and SysAllocator
    "_ZN15MallocExtension8instanceEv",
    "_ZN15MallocExtension8RegisterEPS_",
    "_ZN15MallocExtension10InitializeEv",
    "_ZN15MallocExtensionD0Ev",
    "_ZN15MallocExtensionD1Ev",
    "_ZN15MallocExtensionD2Ev",
    "_ZN15MallocExtension15VerifyAllMemoryEv",
    "_ZN15MallocExtension15VerifyNewMemoryEPKv",
    "_ZN15MallocExtension20VerifyArrayNewMemoryEPKv",
    "_ZN15MallocExtension18VerifyMallocMemoryEPKv",
    "_ZN15MallocExtension17MallocMemoryStatsEPiPmS0_",
    "_ZN15MallocExtension8GetStatsEPci",
    "_ZN15MallocExtension13GetHeapSampleEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
    "_ZN15MallocExtension19GetHeapGrowthStacksEPNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
    "_ZN15MallocExtension6RangesEPvPFvS0_PKN4base11MallocRangeEE",
    "_ZN15MallocExtension18GetNumericPropertyEPKcPm",
    "_ZN15MallocExtension18SetNumericPropertyEPKcm",
    "_ZN15MallocExtension14MarkThreadIdleEv",
    "_ZN15MallocExtension14MarkThreadBusyEv",
    "_ZN15MallocExtension18GetSystemAllocatorEv",
    "_ZN15MallocExtension18SetSystemAllocatorEP12SysAllocator",
    "_ZN15MallocExtension15ReleaseToSystemEm",
    "_ZN15MallocExtension17ReleaseFreeMemoryEv",
    "_ZN15MallocExtension20SetMemoryReleaseRateEd",
    "_ZN15MallocExtension20GetMemoryReleaseRateEv",
    "_ZN15MallocExtension25GetEstimatedAllocatedSizeEm",
    "_ZN15MallocExtension16GetAllocatedSizeEPKv",
    "_ZN15MallocExtension12GetOwnershipEPKv",
    "_ZN15MallocExtension16GetFreeListSizesEPSt6vectorINS_12FreeListInfoESaIS1_EE",
    "_ZN15MallocExtension15ReadStackTracesEPi",
    "_ZN15MallocExtension25ReadHeapGrowthStackTracesEv",
    "_ZN15MallocExtension18GetThreadCacheSizeEv",
    "_ZN15MallocExtension25MarkThreadTemporarilyIdleEv",
    "_ZN12SysAllocatorD0Ev",
    "_ZN12SysAllocatorD1Ev",
    "_ZN12SysAllocatorD2Ev",
    // glibc's <malloc.h> introspection
    "mallinfo",
    "mallinfo2",
    "malloc_stats",
    "malloc_info",
    "malloc_trim",
    "mallopt",
    "oxmalloc_inject",
    "oxmalloc_inject_strerror",
    "oxmalloc_set_system_allocator",
    "oxmalloc_get_region_info",
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

/// The C++ objects the library defines: virtual tables, type information
/// and type names of `MallocExtension` and `SysAllocator`.
const OBJECTS: &[&str] = &[
    "_ZTV15MallocExtension",
    "_ZTI15MallocExtension",
    "_ZTS15MallocExtension",
    "_ZTV12SysAllocator",
    "_ZTI12SysAllocator",
    "_ZTS12SysAllocator",
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
fn shared_library_exports_the_cxx_objects() {
    let out = support::check(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(support::library()),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<_> = OBJECTS
        .iter()
        .filter(|s| {
            !text.lines().any(|l| {
                let f: Vec<_> = l.split_whitespace().collect();
                matches!(f[..], [_, "D" | "R", name] if name == **s)
            })
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{text}");
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
    // Neither are the other libstdc++ symbols the C++ interface uses.
    let strong: Vec<_> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("U _Z"))
        .collect();
    assert!(strong.is_empty(), "strong C++ imports: {strong:?}");
}
