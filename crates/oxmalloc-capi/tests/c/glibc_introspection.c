/* glibc's introspection answered with oxmalloc's figures (argv[1] picks the
 * part; tests/glibc_introspection.rs runs each):
 *   mallinfo2  tst-mallinfo2's check: uordblks grows by at least what was
 *              allocated and falls back after free, for several sizes
 *   mallinfo   the int form, saturating
 *   trim       malloc_trim lowers the resident set after a large free
 *   stats      malloc_stats prints glibc's lines (checked by the Rust test)
 *   info FILE  malloc_info writes its XML to FILE (parsed by the Rust test)
 *   mallopt    what maps is accepted, the rest refused */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "oxmalloc.h"

static size_t property(const char *name) {
    size_t v = 0;
    CHECK(MallocExtension_GetNumericProperty(name, &v) == 1);
    return v;
}

static void check_mallinfo2(void) {
    static const size_t sizes[] = {1, 16, 100, 1000, 4000, 33000, 200000, 1 << 20, 13 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        free(malloc(n)); /* a span of the class exists, as gperftools' test does */
        struct mallinfo2 before = mallinfo2();
        char *p = malloc(n);
        CHECK(p);
        memset(p, 1, n);
        struct mallinfo2 during = mallinfo2();
        CHECK(during.uordblks >= before.uordblks + n);
        CHECK(during.arena == during.uordblks + during.fordblks);
        CHECK(during.arena == property("generic.heap_size"));
        CHECK(during.uordblks == property("generic.current_allocated_bytes"));
        free(p);
        struct mallinfo2 after = mallinfo2();
        CHECK(after.uordblks == before.uordblks);
        CHECK(after.hblks == 0 && after.hblkhd == 0 && after.usmblks == 0);
    }
    /* The case: 13 MB held shows in arena and uordblks. */
    char *big = malloc(13 << 20);
    struct mallinfo2 m = mallinfo2();
    CHECK(m.arena >= (13 << 20) && m.uordblks >= (13 << 20));
    CHECK(m.keepcost == property("tcmalloc.pageheap_free_bytes"));
    CHECK(m.fsmblks == property("tcmalloc.thread_cache_free_bytes") +
                           property("tcmalloc.transfer_cache_free_bytes") +
                           property("tcmalloc.central_cache_free_bytes"));
    printf("mallinfo2: arena=%zu uordblks=%zu fordblks=%zu fsmblks=%zu keepcost=%zu ordblks=%zu\n",
           m.arena, m.uordblks, m.fordblks, m.fsmblks, m.keepcost, m.ordblks);
    free(big);
}

/* mallinfo is deprecated in glibc's header (its int fields overflow), but
 * programs still call it. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_mallinfo(void) {
    char *p = malloc(5 << 20);
    struct mallinfo m = mallinfo();
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m.uordblks >= (5 << 20) && (size_t)m.uordblks == m2.uordblks && (size_t)m.arena == m2.arena);
    free(p);
    /* More than INT_MAX in use saturates (address space only: never touched). */
    char *huge = malloc((size_t)3 << 30);
    CHECK(huge);
    m = mallinfo();
    CHECK(m.uordblks == __INT_MAX__ && m.arena == __INT_MAX__);
    CHECK(mallinfo2().uordblks >= (size_t)3 << 30);
    free(huge);
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    unsigned long size, resident;
    CHECK(fscanf(f, "%lu %lu", &size, &resident) == 2);
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static void check_trim(void) {
    /* Keep free pages in the heap until asked. */
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1);
    size_t n = 256 << 20;
    char *p = malloc(n);
    CHECK(p);
    memset(p, 1, n);
    free(p);
    size_t before = rss_bytes();
    CHECK(before >= n);
    CHECK(malloc_trim(0) == 1);
    CHECK(malloc_trim(0) == 0); /* nothing left to release */
    size_t after = rss_bytes();
    printf("malloc_trim: RSS %zu -> %zu bytes\n", before, after);
    CHECK(after + (n - (n >> 3)) <= before); /* at least 7/8 of it went back */
}

static void check_mallopt(void) {
    CHECK(mallopt(M_TRIM_THRESHOLD, 0) == 1);
    CHECK(property("tcmalloc.aggressive_memory_decommit") == 1);
    free(malloc(8 << 20));
    CHECK(property("tcmalloc.pageheap_free_bytes") == 0); /* released at once */
    CHECK(mallopt(M_TRIM_THRESHOLD, 128 << 10) == 1);
    CHECK(property("tcmalloc.aggressive_memory_decommit") == 0);
    CHECK(property("oxmalloc.release_rate_milli") > 0);
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1);
    CHECK(property("oxmalloc.release_rate_milli") == 0);
    CHECK(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 0);
    CHECK(mallopt(M_ARENA_MAX, 1) == 0);
    CHECK(mallopt(M_MXFAST, 0) == 0);
    CHECK(mallopt(M_TOP_PAD, 0) == 0);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "mallinfo2") == 0) {
        check_mallinfo2();
    } else if (strcmp(what, "mallinfo") == 0) {
        check_mallinfo();
    } else if (strcmp(what, "trim") == 0) {
        check_trim();
    } else if (strcmp(what, "stats") == 0) {
        char *p = malloc(3 << 20);
        fflush(stdout);
        malloc_stats();
        free(p);
    } else if (strcmp(what, "info") == 0 && argc > 2) {
        void *keep[100];
        for (int i = 0; i < 100; i++) keep[i] = malloc(i * 40 + 1);
        for (int i = 0; i < 100; i += 2) free(keep[i]);
        MallocExtension_MarkThreadIdle(); /* so the central lists hold some */
        FILE *f = fopen(argv[2], "w");
        CHECK(f);
        CHECK(malloc_info(0, f) == 0);
        CHECK(malloc_info(1, f) == EINVAL);
        fclose(f);
    } else if (strcmp(what, "mallopt") == 0) {
        check_mallopt();
    } else {
        fprintf(stderr, "unknown part %s\n", what);
        return 2;
    }
    done();
    return 0;
}
