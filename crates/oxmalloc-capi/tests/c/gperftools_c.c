/* A gperftools C program, written against gperftools 2.10's own headers and
 * linked with -loxmalloc (not -ltcmalloc): every tc_* function of
 * <gperftools/tcmalloc.h> and every MallocExtension_* function of
 * <gperftools/malloc_extension_c.h>, with the figures they give (the C++-only
 * tc_* functions are in gperftools_cxx.cc). */
#define _GNU_SOURCE
#include <errno.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/tcmalloc.h>
#include <stdint.h>
#include <string.h>
#include "check.h"

static int owned(const void *p) {
    return MallocExtension_GetOwnership(p) == MallocExtension_kOwned;
}

/* gperftools 2.10's GetNumericProperty names (its src/tcmalloc.cc). */
static const char *const properties[] = {
    "generic.current_allocated_bytes",   "generic.heap_size",
    "generic.total_physical_bytes",      "tcmalloc.slack_bytes",
    "tcmalloc.central_cache_free_bytes", "tcmalloc.transfer_cache_free_bytes",
    "tcmalloc.thread_cache_free_bytes",  "tcmalloc.pageheap_free_bytes",
    "tcmalloc.pageheap_unmapped_bytes",  "tcmalloc.pageheap_committed_bytes",
    "tcmalloc.pageheap_scavenge_count",  "tcmalloc.pageheap_commit_count",
    "tcmalloc.pageheap_total_commit_bytes", "tcmalloc.pageheap_decommit_count",
    "tcmalloc.pageheap_total_decommit_bytes", "tcmalloc.pageheap_reserve_count",
    "tcmalloc.pageheap_total_reserve_bytes", "tcmalloc.max_total_thread_cache_bytes",
    "tcmalloc.current_total_thread_cache_bytes", "tcmalloc.aggressive_memory_decommit",
    "tcmalloc.heap_limit_mb",
};

static size_t prop(const char *name) {
    size_t v = 0;
    CHECK(MallocExtension_GetNumericProperty(name, &v) == 1);
    return v;
}

static void tc_functions(void) {
    int major = 0, minor = 0;
    const char *patch = NULL;
    const char *v = tc_version(&major, &minor, &patch);
    CHECK(major == TC_VERSION_MAJOR && minor == TC_VERSION_MINOR && patch && !*patch);
    CHECK(strstr(v, "oxmalloc") != NULL);
    printf("tc_version: %s\n", v);

    char *p = tc_malloc(100);
    CHECK(p && owned(p) && tc_malloc_size(p) >= 100);
    memset(p, 1, 100);
    p = tc_realloc(p, 5000);
    CHECK(p && p[99] == 1 && tc_malloc_size(p) >= 5000);
    tc_free(p);
    int *z = tc_calloc(1000, sizeof(int));
    CHECK(z && owned(z));
    for (int i = 0; i < 1000; i++) CHECK(z[i] == 0);
    tc_cfree(z);
    void *a = tc_memalign(4096, 100);
    CHECK(a && ((uintptr_t)a & 4095) == 0 && owned(a));
    tc_free_sized(a, 100);
    CHECK(tc_posix_memalign(&a, 256, 1000) == 0 && ((uintptr_t)a & 255) == 0);
    tc_free(a);
    CHECK(tc_posix_memalign(&a, 3, 10) == EINVAL);
    a = tc_valloc(10);
    CHECK(a && ((uintptr_t)a & 4095) == 0);
    tc_free(a);
    a = tc_pvalloc(10);
    CHECK(a && tc_malloc_size(a) >= 4096);
    tc_free(a);
    a = tc_malloc_skip_new_handler(64);
    CHECK(a && owned(a));
    tc_free(a);
    CHECK(tc_malloc_size(NULL) == 0);

    struct mallinfo mi = tc_mallinfo();
    CHECK(mi.arena > 0 && mi.uordblks > 0 && mi.arena == mi.uordblks + mi.fordblks);
    CHECK(tc_mallopt(M_MMAP_THRESHOLD, 1 << 20) == 0);
    tc_malloc_stats(); /* gperftools' report on stderr */
}

static void extension_functions(void) {
    for (size_t i = 0; i < sizeof properties / sizeof *properties; i++)
        printf("%s = %zu\n", properties[i], prop(properties[i]));
    size_t v;
    CHECK(MallocExtension_GetNumericProperty("tcmalloc.impl.thread_cache_count", &v) == 0);
    CHECK(MallocExtension_SetNumericProperty("tcmalloc.heap_limit_mb", 0) == 1);

    CHECK(MallocExtension_VerifyAllMemory() == 1);
    char *p = malloc(300);
    int local;
    CHECK(MallocExtension_VerifyMallocMemory(p) == 1 && MallocExtension_VerifyNewMemory(p) == 1 &&
          MallocExtension_VerifyArrayNewMemory(p) == 1);
    CHECK(MallocExtension_VerifyMallocMemory(&local) == 0);
    CHECK(MallocExtension_GetAllocatedSize(p) == MallocExtension_GetEstimatedAllocatedSize(300));
    CHECK(MallocExtension_GetOwnership(&local) == MallocExtension_kNotOwned);

    int blocks = 0, histogram[kMallocExtensionHistogramSize];
    size_t total = 0;
    char *big = malloc(3 << 20);
    CHECK(MallocExtension_MallocMemoryStats(&blocks, &total, histogram) == 1);
    long sum = 0;
    for (int i = 0; i < kMallocExtensionHistogramSize; i++) sum += histogram[i];
    CHECK(blocks > 0 && sum == blocks && total >= (3 << 20) + 300);
    CHECK(histogram[21] >= 1); /* the 3 MiB block: 2^21 <= 3 MiB < 2^22 */
    printf("MallocMemoryStats: %d blocks, %zu bytes\n", blocks, total);
    free(big);
    free(p);

    /* Thread caches. */
    void *objs[1000];
    for (int i = 0; i < 1000; i++) objs[i] = malloc(64);
    for (int i = 0; i < 1000; i++) free(objs[i]);
    size_t cached = MallocExtension_GetThreadCacheSize();
    CHECK(cached >= 64 && cached <= prop("tcmalloc.thread_cache_free_bytes"));
    MallocExtension_MarkThreadTemporarilyIdle();
    CHECK(MallocExtension_GetThreadCacheSize() == 0);
    MallocExtension_MarkThreadBusy();
    free(malloc(64));
    MallocExtension_MarkThreadIdle();
    CHECK(MallocExtension_GetThreadCacheSize() == 0);

    /* Release (of a block under the dirty cap, which releases more at
     * once). */
    free(malloc(8 << 20));
    size_t unmapped = prop("tcmalloc.pageheap_unmapped_bytes");
    MallocExtension_ReleaseToSystem(1 << 20);
    CHECK(prop("tcmalloc.pageheap_unmapped_bytes") >= unmapped + (1 << 20));
    MallocExtension_ReleaseFreeMemory();
    CHECK(prop("tcmalloc.pageheap_free_bytes") == 0);

    char stats[4096];
    MallocExtension_GetStats(stats, sizeof stats);
    CHECK(strstr(stats, "MALLOC:") != NULL && strlen(stats) < sizeof stats);
}

int main(void) {
    tc_functions();
    extension_functions();
    done();
    return 0;
}
