/*
 * oxmalloc.h: the C interface of liboxmalloc.
 *
 * liboxmalloc replaces malloc, free, calloc, realloc, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, free_sized, free_aligned_sized and every C++
 * operator new / delete: link it (-loxmalloc, see `pkg-config oxmalloc`) or
 * preload it (LD_PRELOAD=liboxmalloc.so). Those functions are declared by
 * <stdlib.h> and <malloc.h>; this header declares what is particular to
 * oxmalloc:
 *
 *   - regions: hand oxmalloc memory it did not obtain itself (a pre-reserved
 *     pool, a hugepage or shared-memory mapping, device or pinned memory),
 *     with a release policy per region;
 *   - a system allocator written in C, which supplies fresh memory;
 *   - region records;
 *   - gperftools' MallocExtension_* functions and nallocx.
 *
 * Drop-in for gperftools 2.10 and glibc (declared by their own headers):
 *
 *   - every tc_* function of <gperftools/tcmalloc.h> (tc_malloc, tc_free,
 *     tc_new, tc_delete_sized_aligned, tc_version, tc_set_new_mode, ...);
 *   - every function of <gperftools/malloc_extension_c.h> (also declared
 *     below, identically: include the two headers in either order);
 *   - the C++ MallocExtension::instance() interface of
 *     <gperftools/malloc_extension.h>, and MallocExtension and SysAllocator
 *     as base classes;
 *   - glibc's mallinfo, mallinfo2, malloc_stats, malloc_info, malloc_trim and
 *     mallopt (<malloc.h>), answered with oxmalloc's figures:
 *       arena     heap size (bytes obtained from regions and system allocators)
 *       ordblks   free runs of pages
 *       smblks, hblks, hblkhd, usmblks   0 (no mmapped chunks: large
 *                 allocations are counted in uordblks)
 *       fsmblks   free bytes in thread caches, transfer caches, central lists
 *       uordblks  bytes in objects the program holds
 *       fordblks  arena - uordblks
 *       keepcost  free bytes backed by memory (what malloc_trim releases)
 *     mallinfo saturates its int fields at INT_MAX. malloc_trim releases
 *     every free page and returns 1 when it released some. mallopt accepts
 *     M_TRIM_THRESHOLD (0: release free pages at once; > 0: at the release
 *     rate; < 0: only on request) and returns 1; it returns 0 for every
 *     other parameter, which has no oxmalloc counterpart.
 *
 * Callbacks given to oxmalloc (release functions, system allocators, the
 * region walk) are called with oxmalloc's internal locks held, from any
 * thread: they must be thread-safe and must never call malloc, free or any
 * function that may (printf, for example).
 *
 * Environment: MALLOCSTATS=1 or 2 prints the allocator report to standard
 * error when the program exits (shared library).
 */
#ifndef OXMALLOC_H
#define OXMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Regions ------------------------------------------------------------ */

/* How the physical backing of free pages of an injected region goes back. */
enum oxmalloc_release {
    OXMALLOC_RELEASE_DONTNEED = 0, /* madvise(MADV_DONTNEED): private anonymous memory (default) */
    OXMALLOC_RELEASE_NEVER = 1,    /* never: pinned, registered or device memory */
    OXMALLOC_RELEASE_FREE = 2,     /* madvise(MADV_FREE): lazily reclaimed anonymous memory */
    OXMALLOC_RELEASE_REMOVE = 3,   /* madvise(MADV_REMOVE): shared, tmpfs, memfd, hugetlbfs */
    OXMALLOC_RELEASE_CUSTOM = 4    /* release_fn of the options */
};

/* Releases [ptr, ptr + len); returns non-zero when it did. */
typedef int (*oxmalloc_release_fn)(void *ctx, void *ptr, size_t len);

/* Options of oxmalloc_inject. All-zero (or a NULL pointer) means the
 * defaults: OXMALLOC_RELEASE_DONTNEED, not exclusive, contents not known to
 * be zero, no label. */
struct oxmalloc_region_options {
    int release;                    /* enum oxmalloc_release */
    oxmalloc_release_fn release_fn; /* OXMALLOC_RELEASE_CUSTOM: called with release_ctx */
    void *release_ctx;
    int exclusive;                  /* non-zero: used only by heaps bound to the region */
    int zeroed;                     /* non-zero: the memory is known to be zero-filled */
    const char *label;              /* a name for reports (cut at 31 bytes), or NULL */
};

/* Results of oxmalloc_inject. */
enum oxmalloc_inject_result {
    OXMALLOC_INJECT_OK = 0,
    OXMALLOC_INJECT_NULL = 1,             /* start is NULL */
    OXMALLOC_INJECT_TOO_SMALL = 2,        /* nothing left once trimmed to whole 8 KiB pages */
    OXMALLOC_INJECT_OVERLAP = 3,          /* overlaps a region or memory oxmalloc manages */
    OXMALLOC_INJECT_OUT_OF_RANGE = 4,     /* beyond the address space oxmalloc covers */
    OXMALLOC_INJECT_TOO_MANY_REGIONS = 5, /* the region table is full */
    OXMALLOC_INJECT_BAD_OPTIONS = 6,      /* unknown release, or CUSTOM without release_fn */
    OXMALLOC_INJECT_TOO_MANY_HOOKS = 7    /* too many regions with a release_fn */
};

/* Hands [start, start + len) to oxmalloc for good: the memory must stay
 * mapped for the rest of the process, and nothing else may use it. Unaligned
 * edges are trimmed to 8 KiB pages; no byte is touched. A non-exclusive
 * region feeds malloc before the system allocator is asked for more.
 * Returns OXMALLOC_INJECT_OK and the region's id in *id (if id is not NULL),
 * or another enum oxmalloc_inject_result. */
int oxmalloc_inject(void *start, size_t len, const struct oxmalloc_region_options *opts,
                    unsigned *id);

/* A static English description of an oxmalloc_inject result. */
const char *oxmalloc_inject_strerror(int result);

/* ---- System allocator ---------------------------------------------------- */

/* Returns at least size bytes aligned to align (a power of two, at least
 * 8 KiB), or NULL. *actual is preset to size; raise it if more was given. */
typedef void *(*oxmalloc_sys_alloc_fn)(void *ctx, size_t size, size_t align, size_t *actual);

/* Where fresh memory comes from. oxmalloc never unmaps what alloc returned. */
struct oxmalloc_sys_allocator {
    oxmalloc_sys_alloc_fn alloc;     /* required */
    oxmalloc_release_fn release;     /* NULL: madvise(MADV_DONTNEED) */
    oxmalloc_release_fn commit;      /* called before released memory is reused; NULL: nothing */
    int zeroed;                      /* non-zero: fresh and released memory reads as zero */
    void *ctx;                       /* passed to every function */
};

/* Installs a system allocator: fresh memory comes from it from now on
 * (memory the previous one gave stays in use). The struct is copied. Call it
 * before the first allocation to have all memory come from it. Returns 0, or
 * -1 when alloc is NULL or 16 allocators were already installed. */
int oxmalloc_set_system_allocator(const struct oxmalloc_sys_allocator *allocator);

/* ---- Region records ------------------------------------------------------- */

enum oxmalloc_region_kind {
    OXMALLOC_REGION_SYSTEM = 0,  /* chunks from a system allocator */
    OXMALLOC_REGION_INJECTED = 1 /* a range given to oxmalloc_inject */
};

typedef struct oxmalloc_region_info {
    unsigned id;
    int kind;                /* enum oxmalloc_region_kind */
    void *start;             /* injected regions; NULL for system regions */
    size_t len;              /* system regions: bytes obtained so far */
    int release;             /* enum oxmalloc_release */
    int exclusive;
    size_t carved_bytes;     /* carved into spans so far */
    size_t in_use_bytes;     /* in spans in use */
    size_t free_bytes;       /* in free spans backed by memory */
    size_t released_bytes;   /* in free spans whose backing was released */
    char label[32];          /* NUL-terminated ("system" for system regions) */
} oxmalloc_region_info;

/* Fills *info with region id's record; 0, or -1 when there is no such region. */
int oxmalloc_get_region_info(unsigned id, oxmalloc_region_info *info);

/* Stores the id of the region p lies in (if id is not NULL); 0, or -1 when
 * oxmalloc does not manage p. */
int oxmalloc_region_of(const void *p, unsigned *id);

/* Calls fn(info, ctx) for every region. fn must not allocate. */
void oxmalloc_for_each_region(void (*fn)(const oxmalloc_region_info *info, void *ctx),
                              void *ctx);

/* ---- gperftools' MallocExtension (malloc_extension_c.h) ------------------ */

/* gperftools 2.10's C interface, declared as <gperftools/malloc_extension_c.h>
 * declares it. Its include guard is set here, so that header adds nothing
 * when included after this one; when included before, this block is
 * skipped. */
#ifndef _MALLOC_EXTENSION_C_H_
#define _MALLOC_EXTENSION_C_H_

#define kMallocExtensionHistogramSize 64

/* Heap consistency is not checked: 1. */
int MallocExtension_VerifyAllMemory(void);
/* 1 when p is NULL or lies in a live allocation of oxmalloc's, else 0. */
int MallocExtension_VerifyNewMemory(const void *p);
int MallocExtension_VerifyArrayNewMemory(const void *p);
int MallocExtension_VerifyMallocMemory(const void *p);
/* Blocks handed out (objects carved from spans and not returned to them,
 * cached ones included, and large allocations), their bytes, and
 * histogram[i] = blocks of 2^i to 2^(i+1)-1 bytes. Returns 1. */
int MallocExtension_MallocMemoryStats(int *blocks, size_t *total,
                                      int histogram[kMallocExtensionHistogramSize]);
/* The detailed report, NUL-terminated, cut to buffer_length bytes. */
void MallocExtension_GetStats(char *buffer, int buffer_length);

/* Properties: every name gperftools 2.10 answers --
 * generic.current_allocated_bytes, generic.heap_size,
 * generic.total_physical_bytes, tcmalloc.slack_bytes,
 * tcmalloc.central_cache_free_bytes, tcmalloc.transfer_cache_free_bytes,
 * tcmalloc.thread_cache_free_bytes, tcmalloc.pageheap_free_bytes,
 * tcmalloc.pageheap_unmapped_bytes, tcmalloc.pageheap_committed_bytes,
 * tcmalloc.pageheap_scavenge_count, tcmalloc.pageheap_commit_count,
 * tcmalloc.pageheap_total_commit_bytes, tcmalloc.pageheap_decommit_count,
 * tcmalloc.pageheap_total_decommit_bytes, tcmalloc.pageheap_reserve_count,
 * tcmalloc.pageheap_total_reserve_bytes,
 * tcmalloc.current_total_thread_cache_bytes,
 * tcmalloc.max_total_thread_cache_bytes (w), tcmalloc.heap_limit_mb (w),
 * tcmalloc.aggressive_memory_decommit (w) -- and oxmalloc's own:
 * oxmalloc.thread_cache_count, oxmalloc.min_per_thread_cache_bytes (w),
 * oxmalloc.metadata_bytes, oxmalloc.region_count, oxmalloc.injected_bytes,
 * oxmalloc.injected_in_use_bytes, oxmalloc.total_released_bytes,
 * oxmalloc.release_rate_milli (w). Return 1 on success, 0 for an unknown
 * (or, to set, read-only) name. */
int MallocExtension_GetNumericProperty(const char *property, size_t *value);
int MallocExtension_SetNumericProperty(const char *property, size_t value);
/* Both return the calling thread's cached objects to the central lists. */
void MallocExtension_MarkThreadIdle(void);
/* Makes sure the calling thread has a cache. */
void MallocExtension_MarkThreadBusy(void);
void MallocExtension_ReleaseToSystem(size_t num_bytes);
void MallocExtension_ReleaseFreeMemory(void);
/* Bytes malloc(size) would really get. */
size_t MallocExtension_GetEstimatedAllocatedSize(size_t size);
/* Bytes usable at p (the start of a live allocation), else 0. */
size_t MallocExtension_GetAllocatedSize(const void *p);
/* Free bytes in the calling thread's cache. */
size_t MallocExtension_GetThreadCacheSize(void);
void MallocExtension_MarkThreadTemporarilyIdle(void);

typedef enum {
    MallocExtension_kUnknownOwnership = 0,
    MallocExtension_kOwned,
    MallocExtension_kNotOwned
} MallocExtension_Ownership;

/* kOwned when p lies in a live allocation of oxmalloc's, else kNotOwned. */
MallocExtension_Ownership MallocExtension_GetOwnership(const void *p);

#endif /* _MALLOC_EXTENSION_C_H_ */

/* C forms of C++ MallocExtension methods that gperftools' C header lacks. */

/* The release rate (TCMALLOC_RELEASE_RATE; 0: only on request; 1.0 default). */
void MallocExtension_SetMemoryReleaseRate(double rate);
double MallocExtension_GetMemoryReleaseRate(void);

/* One free list, laid out as gperftools' MallocExtension::FreeListInfo. */
typedef struct {
    size_t min_object_size;
    size_t max_object_size;
    size_t total_bytes_free;
    const char *type; /* "tcmalloc.central", ".transfer", ".thread", ".page",
                         ".page_unmapped", ".large", ".large_unmapped" */
} MallocExtension_FreeListInfo;

/* Stores up to n free-list records in out and returns how many there are
 * (call it with out = NULL, n = 0 to size the array). */
size_t MallocExtension_GetFreeListSizes(MallocExtension_FreeListInfo *out, size_t n);

/* The usable size of an allocation of size bytes aligned to
 * 1 << (flags & 63) (jemalloc's MALLOCX_LG_ALIGN); 0 if impossible. */
size_t nallocx(size_t size, int flags);

#ifdef __cplusplus
}
#endif

#endif /* OXMALLOC_H */
