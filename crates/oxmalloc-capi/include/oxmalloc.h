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
 * Environment (shared library): MALLOCSTATS=1, 2 or json prints the
 * allocator report to standard error when the program exits;
 * OXMALLOC_STATS_DIR=DIR writes it as JSON into DIR, one file per process;
 * OXMALLOC_TIMELINE=FILE samples the figures every few milliseconds into
 * FILE. The README's table lists every variable.
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
    OXMALLOC_RELEASE_AUTO = 0,    /* chosen from the memory: DONTNEED for private, REMOVE for shared (default) */
    OXMALLOC_RELEASE_NEVER = 1,   /* never: pinned, registered or device memory */
    OXMALLOC_RELEASE_FREE = 2,    /* madvise(MADV_FREE): lazily reclaimed private anonymous memory */
    OXMALLOC_RELEASE_REMOVE = 3,  /* madvise(MADV_REMOVE): shared, tmpfs, memfd, hugetlbfs (holes read as zero) */
    OXMALLOC_RELEASE_CUSTOM = 4,  /* release_fn (and commit_fn) of the options */
    OXMALLOC_RELEASE_DONTNEED = 5 /* madvise(MADV_DONTNEED): private memory; does nothing on shared memory */
};

/* What a release function achieved. Only OXMALLOC_RELEASED_ZEROED lets
 * calloc skip clearing the memory when it is used again. */
enum oxmalloc_released {
    OXMALLOC_RELEASED_KEPT = 0,      /* nothing was released */
    OXMALLOC_RELEASED_UNDEFINED = 1, /* released; the contents are now undefined */
    OXMALLOC_RELEASED_ZEROED = 2     /* released; the range reads as zero */
};

/* Releases [ptr, ptr + len); returns an enum oxmalloc_released. */
typedef int (*oxmalloc_release_fn)(void *ctx, void *ptr, size_t len);

/* Makes a released [ptr, ptr + len) usable again before oxmalloc hands any
 * of it out (e.g. mprotect back to read-write); non-zero on success (on
 * failure the allocation that needed it fails). */
typedef int (*oxmalloc_commit_fn)(void *ctx, void *ptr, size_t len);

/* Options of oxmalloc_inject. All-zero (or a NULL pointer) means the
 * defaults: OXMALLOC_RELEASE_AUTO, not exclusive, contents not known to be
 * zero, no label, no limit, the page size read from the mapping. */
struct oxmalloc_region_options {
    int release;                    /* enum oxmalloc_release */
    oxmalloc_release_fn release_fn; /* OXMALLOC_RELEASE_CUSTOM: called with release_ctx */
    void *release_ctx;
    int exclusive;                  /* non-zero: used only by heaps bound to the region */
    int zeroed;                     /* non-zero: the memory is known to be zero-filled */
    const char *label;              /* a name for reports (cut at 31 bytes), or NULL */
    oxmalloc_commit_fn commit_fn;   /* OXMALLOC_RELEASE_CUSTOM: called with release_ctx; NULL: nothing */
    size_t limit;                   /* at most this many bytes are ever carved (0: all) */
    size_t page_size;               /* release granularity, a power of two >= 8 KiB (0: from the mapping) */
};

/* Results of oxmalloc_inject (and oxmalloc_set_system_allocator). */
enum oxmalloc_inject_result {
    OXMALLOC_INJECT_OK = 0,
    OXMALLOC_INJECT_NULL = 1,             /* start is NULL */
    OXMALLOC_INJECT_TOO_SMALL = 2,        /* nothing left once trimmed to whole 8 KiB pages */
    OXMALLOC_INJECT_OVERLAP = 3,          /* overlaps a region or memory oxmalloc manages */
    OXMALLOC_INJECT_OUT_OF_RANGE = 4,     /* beyond the user address space */
    OXMALLOC_INJECT_TOO_MANY_REGIONS = 5, /* the region table is full (1024 regions) */
    OXMALLOC_INJECT_BAD_OPTIONS = 6,      /* unknown release, CUSTOM without release_fn, no alloc */
    OXMALLOC_INJECT_TOO_MANY_HOOKS = 7,   /* too many release functions or C system allocators */
    OXMALLOC_INJECT_UNMAPPED = 8,         /* part of the range is not mapped */
    OXMALLOC_INJECT_NOT_WRITABLE = 9,     /* part of the range is not readable and writable */
    OXMALLOC_INJECT_MIXED_BACKING = 10,   /* the range spans private and shared mappings */
    OXMALLOC_INJECT_BAD_PAGE_SIZE = 11,   /* page_size is not a power of two >= 8 KiB */
    OXMALLOC_INJECT_NO_MEMORY = 12        /* out of metadata memory */
};

/* Hands [start, start + len) to oxmalloc for good: the memory must stay
 * mapped for the rest of the process (or until its heap is retired), and
 * nothing else may use it. Unaligned edges are trimmed to 8 KiB pages; no
 * byte is touched. The range is checked against /proc/self/maps: it must be
 * mapped readable and writable and of one kind (private or shared), which
 * decides what releasing it does. A non-exclusive region feeds malloc before
 * the system allocator is asked for more. Returns OXMALLOC_INJECT_OK and the
 * region's id in *id (if id is not NULL), or another enum
 * oxmalloc_inject_result. */
int oxmalloc_inject(void *start, size_t len, const struct oxmalloc_region_options *opts,
                    unsigned *id);

/* A static English description of an oxmalloc_inject result. */
const char *oxmalloc_inject_strerror(int result);

/* ---- System allocator ---------------------------------------------------- */

/* Returns at least size bytes aligned to align (a power of two, at least
 * 8 KiB), or NULL. *actual is preset to size; raise it if more was given.
 * oxmalloc asks for a preferred size first, then for exactly what the
 * request needs. */
typedef void *(*oxmalloc_sys_alloc_fn)(void *ctx, size_t size, size_t align, size_t *actual);

/* Where fresh memory comes from. oxmalloc never unmaps what alloc returned;
 * a chunk overlapping memory oxmalloc already manages stops the program. */
struct oxmalloc_sys_allocator {
    oxmalloc_sys_alloc_fn alloc;     /* required */
    oxmalloc_release_fn release;     /* NULL: madvise(MADV_DONTNEED) (nothing when shared) */
    oxmalloc_commit_fn commit;       /* called before released memory is reused; NULL: nothing */
    int zeroed;                      /* non-zero: fresh memory reads as zero */
    void *ctx;                       /* passed to every function */
    int shared;                      /* non-zero: chunks are shared mappings (copied in a forked child) */
    size_t page_size;                /* release granularity (0: 8 KiB) */
};

/* Installs a system allocator: fresh memory comes from it from now on
 * (memory the previous one gave stays in use). The struct is copied. Call it
 * before the first allocation to have all memory come from it. Returns 0,
 * OXMALLOC_INJECT_BAD_OPTIONS when allocator or its alloc is NULL,
 * OXMALLOC_INJECT_TOO_MANY_HOOKS when 16 allocators were already installed,
 * or OXMALLOC_INJECT_TOO_MANY_REGIONS when the region table is full; on
 * failure the previous allocator stays. */
int oxmalloc_set_system_allocator(const struct oxmalloc_sys_allocator *allocator);

/* ---- Region records ------------------------------------------------------- */

enum oxmalloc_region_kind {
    OXMALLOC_REGION_SYSTEM = 0,  /* chunks from a system allocator */
    OXMALLOC_REGION_INJECTED = 1 /* a range given to oxmalloc_inject */
};

/* The memory behind a region. */
enum oxmalloc_backing {
    OXMALLOC_BACKING_PRIVATE_ANONYMOUS = 0,
    OXMALLOC_BACKING_PRIVATE_FILE = 1,
    OXMALLOC_BACKING_SHARED = 2,    /* MAP_SHARED, memfd, tmpfs, hugetlbfs */
    OXMALLOC_BACKING_UNKNOWN = 3    /* /proc/self/maps could not be read */
};

typedef struct oxmalloc_region_info {
    unsigned id;
    int kind;                /* enum oxmalloc_region_kind */
    void *start;             /* injected regions; NULL for system regions */
    size_t len;              /* system regions: bytes obtained so far */
    int release;             /* enum oxmalloc_release */
    int exclusive;
    int backing;             /* enum oxmalloc_backing */
    size_t page_size;        /* release granularity */
    size_t limit;            /* at most this many bytes carved (0: no limit) */
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

/* ---- Heaps bound to regions ---------------------------------------------- */

/* A heap that allocates only from the exclusive regions bound to it: when
 * they are full, allocation fails (no fallback to the OS or to malloc's
 * heap). Its objects are freed with plain free(), from any thread (through
 * that thread's cache of the heap: no lock). Allocation is thread-safe;
 * retiring and destroying a heap must not race with anything else using
 * it, frees of its objects included. */
struct oxmalloc_heap;

/* A heap bound to exclusive region `region`; NULL with errno = ENOENT (no
 * such region, or retired), EINVAL (not exclusive), EBUSY (another heap is
 * bound to it) or ENOMEM (too many heaps). */
struct oxmalloc_heap *oxmalloc_heap_new_in(unsigned region);

/* Gives the heap another exclusive region: 0, or an errno value as above
 * (ENOMEM: the heap has 64 regions). */
int oxmalloc_heap_add_region(struct oxmalloc_heap *heap, unsigned region);

/* malloc, calloc, memalign and realloc within the heap: NULL with
 * errno = ENOMEM when its regions are full. realloc(heap, NULL, n) allocates,
 * realloc(heap, p, 0) frees and returns NULL; a block that must move moves
 * to a new block of this heap. */
void *oxmalloc_heap_malloc(struct oxmalloc_heap *heap, size_t size);
void *oxmalloc_heap_calloc(struct oxmalloc_heap *heap, size_t n, size_t size);
void *oxmalloc_heap_memalign(struct oxmalloc_heap *heap, size_t alignment, size_t size);
void *oxmalloc_heap_realloc(struct oxmalloc_heap *heap, void *p, size_t size);

/* free(p), by another name (the heap is found through p). */
void oxmalloc_heap_free(struct oxmalloc_heap *heap, void *p);

/* A consistent snapshot of a heap: carved_bytes = in_use_bytes + free_bytes
 * + central_bytes + cached_bytes + released_bytes. */
struct oxmalloc_heap_stats {
    size_t in_use_bytes;   /* in objects the program holds */
    size_t free_bytes;     /* free pages backed by memory */
    size_t central_bytes;  /* free objects in the heap's shared lists */
    size_t cached_bytes;   /* free objects in threads' caches of the heap */
    size_t released_bytes; /* free pages whose memory was released */
    size_t carved_bytes;   /* carved from the heap's regions */
    size_t thread_caches;  /* threads with a cache of the heap */
    size_t regions;        /* regions bound to the heap */
};

/* Fills *stats; 0, or EINVAL when stats is NULL. */
int oxmalloc_heap_stats(struct oxmalloc_heap *heap, struct oxmalloc_heap_stats *stats);

/* A range handed back by oxmalloc_heap_retire: the caller may unmap it. */
struct oxmalloc_range {
    void *start;
    size_t len;
};

/* Retires the heap once nothing in it is live: every thread's cached
 * objects of the heap are drained, its regions leave oxmalloc (their slots
 * are reused) and their ranges are written to ranges[0..cap) (*count, if
 * not NULL, gets how many there are); the heap is gone. Returns 0, or EBUSY
 * when objects are live: *count then gets the live bytes, and the heap stays
 * usable. Afterwards free() of a pointer into the ranges stops the program
 * ("does not own"). */
int oxmalloc_heap_retire(struct oxmalloc_heap *heap, struct oxmalloc_range *ranges, size_t cap,
                         size_t *count);

/* Frees every object of the heap at once, in time proportional to its
 * spans; the heap stays usable, on the same pages. */
void oxmalloc_heap_destroy(struct oxmalloc_heap *heap);

/* ---- Reports ------------------------------------------------------------ */

/* The allocator report as JSON, one line: {"summary": {...}, "classes": [...],
 * "page_heap": [...], "regions": [...]} (the summary has the figures of
 * MallocExtension_GetNumericProperty, their peaks peak_heap_size and
 * peak_in_use_bytes, and page_size).
 *
 * oxmalloc_write_json writes it into buf, cut to len - 1 bytes and
 * NUL-terminated (buf may be NULL when len is 0), and returns the length of
 * the whole report, as snprintf does: a return value >= len means it was cut.
 * The figures move as the program allocates, so a second call may need a
 * few more bytes than the first one said: leave some room.
 *
 * oxmalloc_write_json_fd writes it to a file descriptor with write(2) and
 * returns 0, or -1 when a write failed (errno says why).
 *
 * Neither allocates; neither may be called from an oxmalloc callback. */
int oxmalloc_write_json(char *buf, size_t len);
int oxmalloc_write_json_fd(int fd);

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
 * oxmalloc.metadata_bytes (written), oxmalloc.metadata_mapped_bytes,
 * oxmalloc.region_count, oxmalloc.injected_bytes,
 * oxmalloc.injected_in_use_bytes, oxmalloc.total_released_bytes,
 * oxmalloc.release_rate_milli (w), oxmalloc.peak_heap_size,
 * oxmalloc.peak_in_use_bytes. Return 1 on success, 0 for an unknown
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
