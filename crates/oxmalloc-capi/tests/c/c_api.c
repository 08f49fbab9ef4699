/* The API of oxmalloc.h: injection (with every error), custom release
 * functions, a system allocator written in C, region records, and the
 * MallocExtension functions. Built with the flags of oxmalloc.pc. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "check.h"
#include "oxmalloc.h"

/* A fresh mapping of len bytes that starts on an 8 KiB boundary (oxmalloc's
 * page), so that injecting it trims nothing: mmap aligns to 4 KiB only (and
 * under valgrind even large mappings often start off 8 KiB). */
static void *map(size_t len) {
    const size_t page = 8192;
    char *p = mmap(NULL, len + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(p != MAP_FAILED);
    char *a = (char *)(((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1));
    if (a > p) CHECK(munmap(p, (size_t)(a - p)) == 0);
    if (p + page > a) CHECK(munmap(a + len, (size_t)(p + page - a)) == 0);
    return a;
}

static long released_calls;
static size_t released_bytes;
static int my_release(void *ctx, void *ptr, size_t len) {
    CHECK(ctx == &released_calls);
    released_calls++;
    released_bytes += len;
    int ok = madvise(ptr, len, MADV_DONTNEED) == 0;
    errno = EIO; /* a hook may clobber errno: free must not show it */
    return ok;
}

static long sys_calls;
static void *my_sys_alloc(void *ctx, size_t size, size_t align, size_t *actual) {
    CHECK(ctx == &sys_calls && *actual == size && (align & (align - 1)) == 0);
    sys_calls++;
    size_t len = size + align;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    *actual = len - (a - (uintptr_t)p);
    return (void *)a;
}

static int count_regions;
static void count(const struct oxmalloc_region_info *info, void *ctx) {
    CHECK(ctx == &count_regions && info->label[31] == 0);
    count_regions++;
}

static void test_inject(void) {
    size_t len = 64 << 20;
    char *pool = map(len);
    struct oxmalloc_region_options o;
    memset(&o, 0, sizeof o);
    o.release = OXMALLOC_RELEASE_CUSTOM;
    o.release_fn = my_release;
    o.release_ctx = &released_calls;
    o.zeroed = 1;
    o.label = "c pool";
    unsigned id = 12345;
    int r = oxmalloc_inject(pool, len, &o, &id);
    if (r) fprintf(stderr, "inject: %s\n", oxmalloc_inject_strerror(r));
    CHECK(r == OXMALLOC_INJECT_OK && id != 12345);

    struct oxmalloc_region_info info;
    CHECK(oxmalloc_get_region_info(id, &info) == 0);
    CHECK(info.id == id && info.kind == OXMALLOC_REGION_INJECTED);
    CHECK(info.start == pool && info.len == len);
    CHECK(info.release == OXMALLOC_RELEASE_CUSTOM && !info.exclusive);
    CHECK(strcmp(info.label, "c pool") == 0);
    CHECK(oxmalloc_get_region_info(100000, &info) == -1);

    /* Refusals, each with its code and message. */
    CHECK(oxmalloc_inject(pool + 8192, 1 << 20, NULL, NULL) == OXMALLOC_INJECT_OVERLAP);
    CHECK(oxmalloc_inject(NULL, 1 << 20, NULL, NULL) == OXMALLOC_INJECT_NULL);
    char *small = map(1 << 20);
    CHECK(oxmalloc_inject(small + 1, 100, NULL, NULL) == OXMALLOC_INJECT_TOO_SMALL);
    o.release = 99;
    CHECK(oxmalloc_inject(small, 1 << 20, &o, NULL) == OXMALLOC_INJECT_BAD_OPTIONS);
    o.release = OXMALLOC_RELEASE_CUSTOM;
    o.release_fn = NULL;
    CHECK(oxmalloc_inject(small, 1 << 20, &o, NULL) == OXMALLOC_INJECT_BAD_OPTIONS);
    CHECK(oxmalloc_inject((void *)((uintptr_t)1 << 60), 1 << 20, NULL, NULL) == OXMALLOC_INJECT_OUT_OF_RANGE);
    for (int code = 0; code <= 8; code++) CHECK(strlen(oxmalloc_inject_strerror(code)) > 0);
    /* A refused custom region gives its hook slot back: many refusals later,
       a custom region is still accepted. */
    o.release_fn = my_release;
    for (int i = 0; i < 200; i++) CHECK(oxmalloc_inject(pool, 1 << 20, &o, NULL) == OXMALLOC_INJECT_OVERLAP);

    /* malloc carves from the injected region before asking the system. */
    void *big[16];
    int in_pool = 0;
    for (int i = 0; i < 16; i++) {
        big[i] = malloc(1 << 20);
        CHECK(big[i]);
        memset(big[i], 7, 1 << 20);
        unsigned rid;
        if (oxmalloc_region_of(big[i], &rid) == 0 && rid == id) in_pool++;
        if ((char *)big[i] >= pool && (char *)big[i] < pool + len) CHECK(oxmalloc_region_of(big[i], &rid) == 0 && rid == id);
    }
    CHECK(in_pool == 16);
    size_t v = 0;
    CHECK(MallocExtension_GetNumericProperty("oxmalloc.injected_in_use_bytes", &v) == 1 && v >= (16u << 20));
    for (int i = 0; i < 16; i++) free(big[i]);
    MallocExtension_ReleaseFreeMemory();
    CHECK(released_calls > 0 && released_bytes >= (16u << 20));
    CHECK(oxmalloc_get_region_info(id, &info) == 0 && info.released_bytes > 0);
    int x;
    CHECK(oxmalloc_region_of(&x, NULL) == -1);

    /* free keeps errno even when it ends in a release hook that changes it:
       with aggressive decommit every freed span is released at once, both a
       large block (freed straight to the page heap) and small objects (whose
       spans empty through the thread cache's overflow path). */
    CHECK(MallocExtension_SetNumericProperty("tcmalloc.aggressive_memory_decommit", 1) == 1);
    long calls = released_calls;
    void *b = malloc(1 << 20);
    unsigned rid;
    CHECK(b && oxmalloc_region_of(b, &rid) == 0 && rid == id);
    errno = EBADF;
    free(b);
    CHECK(errno == EBADF && released_calls > calls);
    enum { N = 20000 };
    static void *objs[N];
    for (int i = 0; i < N; i++) CHECK((objs[i] = malloc(1000)) != NULL);
    calls = released_calls;
    errno = EBADF;
    for (int i = 0; i < N; i++) free(objs[i]);
    CHECK(errno == EBADF);
    CHECK(MallocExtension_SetNumericProperty("tcmalloc.aggressive_memory_decommit", 0) == 1);
}

static void test_system_allocator(void) {
    struct oxmalloc_sys_allocator a;
    memset(&a, 0, sizeof a);
    CHECK(oxmalloc_set_system_allocator(&a) == OXMALLOC_INJECT_BAD_OPTIONS); /* alloc is required */
    CHECK(oxmalloc_set_system_allocator(NULL) == OXMALLOC_INJECT_BAD_OPTIONS);
    a.alloc = my_sys_alloc;
    a.zeroed = 1;
    a.ctx = &sys_calls;
    CHECK(oxmalloc_set_system_allocator(&a) == 0);
    /* More than the injected pool holds: fresh memory must come from us. */
    void *blocks[40];
    for (int i = 0; i < 40; i++) {
        blocks[i] = malloc(4 << 20);
        CHECK(blocks[i]);
        memset(blocks[i], 1, 4 << 20);
    }
    CHECK(sys_calls > 0);
    unsigned rid;
    struct oxmalloc_region_info info;
    CHECK(oxmalloc_region_of(blocks[39], &rid) == 0);
    CHECK(oxmalloc_get_region_info(rid, &info) == 0 && info.kind == OXMALLOC_REGION_SYSTEM && info.len > 0);
    for (int i = 0; i < 40; i++) free(blocks[i]);
    oxmalloc_for_each_region(count, &count_regions);
    CHECK(count_regions >= 2); /* the pool and ours (and the default system region, if used) */
    oxmalloc_for_each_region(NULL, NULL);
}

static void test_extension(void) {
    size_t v = 0;
    const char *props[] = {"generic.current_allocated_bytes", "generic.heap_size", "tcmalloc.pageheap_free_bytes",
                           "tcmalloc.pageheap_unmapped_bytes", "tcmalloc.slack_bytes", "oxmalloc.region_count"};
    for (size_t i = 0; i < sizeof props / sizeof *props; i++)
        CHECK(MallocExtension_GetNumericProperty(props[i], &v) == 1);
    CHECK(MallocExtension_GetNumericProperty("no.such.property", &v) == 0);
    CHECK(MallocExtension_GetNumericProperty(NULL, &v) == 0);
    CHECK(MallocExtension_GetNumericProperty("generic.heap_size", NULL) == 0);
    CHECK(MallocExtension_SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", 16 << 20) == 1);
    CHECK(MallocExtension_GetNumericProperty("tcmalloc.max_total_thread_cache_bytes", &v) == 1 && v == (16u << 20));
    CHECK(MallocExtension_SetNumericProperty("generic.heap_size", 1) == 0);
    CHECK(MallocExtension_SetNumericProperty("no.such.property", 1) == 0);

    size_t before = 0, after = 0;
    CHECK(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &before) == 1);
    void *p = malloc(10 << 20);
    CHECK(MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &after) == 1);
    CHECK(after >= before + (10u << 20));
    CHECK(MallocExtension_GetAllocatedSize(p) >= (10u << 20));
    CHECK(MallocExtension_GetOwnership(p) == MallocExtension_kOwned);
    /* Large blocks are known by their first and last pages. */
    CHECK(MallocExtension_GetOwnership((char *)p + 1234) == MallocExtension_kOwned);
    CHECK(MallocExtension_GetOwnership((char *)p + (10 << 20) - 1) == MallocExtension_kOwned);
    free(p);
    int local;
    CHECK(MallocExtension_GetOwnership(&local) == MallocExtension_kNotOwned);
    CHECK(MallocExtension_GetOwnership(NULL) == MallocExtension_kNotOwned);

    static char big[1 << 16];
    MallocExtension_GetStats(big, sizeof big);
    CHECK(strstr(big, "MALLOC:") != NULL && strstr(big, "c pool") != NULL);
    char small[10];
    memset(small, 'x', sizeof small);
    MallocExtension_GetStats(small, sizeof small);
    CHECK(small[9] == 0 && strlen(small) == 9);
    MallocExtension_GetStats(small, 0);
    MallocExtension_GetStats(NULL, 100);

    for (size_t n = 0; n < 300000; n = n * 3 / 2 + 1) {
        void *q = malloc(n);
        CHECK(MallocExtension_GetEstimatedAllocatedSize(n) == malloc_usable_size(q));
        CHECK(nallocx(n, 0) == malloc_usable_size(q));
        free(q);
        for (int lg = 4; lg <= 16; lg += 3) {
            void *a = aligned_alloc((size_t)1 << lg, n);
            CHECK(a && nallocx(n, lg) == malloc_usable_size(a));
            free(a);
        }
    }
    MallocExtension_ReleaseToSystem(1 << 20);
    MallocExtension_MarkThreadIdle();
    size_t unmapped = 0;
    CHECK(MallocExtension_GetNumericProperty("tcmalloc.pageheap_unmapped_bytes", &unmapped) == 1);
}

int main(void) {
    test_inject();
    test_system_allocator();
    test_extension();
    done();
    return 0;
}
