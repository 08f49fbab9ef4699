/* Heaps bound to regions through the C API: allocation stays in the region,
 * plain free() works from any thread, exhaustion fails with ENOMEM without
 * falling back, retiring waits for the last object and hands the range
 * back, destroying frees everything at once. `heaps freed-after-retire`
 * frees a pointer into a retired range: it must stop with a message. */
#include "check.h"
#include <errno.h>
#include <oxmalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

/* A mapping of len bytes starting on an 8 KiB boundary (oxmalloc's page),
 * so the region is exactly [p, p + len). */
static void *map(size_t len, int flags) {
    char *p = mmap(NULL, len + 8192, PROT_READ | PROT_WRITE, flags, -1, 0);
    CHECK(p != MAP_FAILED);
    return (void *)(((uintptr_t)p + 8191) & ~(uintptr_t)8191);
}

static unsigned exclusive_region(void *p, size_t len) {
    struct oxmalloc_region_options o;
    memset(&o, 0, sizeof o);
    o.exclusive = 1;
    o.label = "c heap";
    unsigned id;
    CHECK(oxmalloc_inject(p, len, &o, &id) == OXMALLOC_INJECT_OK);
    return id;
}

static int inside(const void *q, const void *base, size_t len) {
    return (uintptr_t)q >= (uintptr_t)base && (uintptr_t)q < (uintptr_t)base + len;
}

#define N 20000
static void *objs[N];

static void *free_half(void *arg) {
    long k = (long)arg;
    for (long i = k; i < N; i += 2) free(objs[i]);
    return NULL;
}

int main(int argc, char **argv) {
    size_t len = 64 << 20;
    char *base = map(len, MAP_SHARED | MAP_ANONYMOUS);
    unsigned id = exclusive_region(base, len);

    /* Errors. */
    char *other = map(1 << 20, MAP_PRIVATE | MAP_ANONYMOUS);
    unsigned shared_id;
    CHECK(oxmalloc_inject(other, 1 << 20, NULL, &shared_id) == OXMALLOC_INJECT_OK);
    errno = 0;
    CHECK(oxmalloc_heap_new_in(shared_id) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(oxmalloc_heap_new_in(1000) == NULL && errno == ENOENT);

    struct oxmalloc_heap *h = oxmalloc_heap_new_in(id);
    CHECK(h != NULL);
    errno = 0;
    CHECK(oxmalloc_heap_new_in(id) == NULL && errno == EBUSY);

    if (argc > 1 && strcmp(argv[1], "freed-after-retire") == 0) {
        char *p = oxmalloc_heap_malloc(h, 100);
        free(p);
        size_t n;
        struct oxmalloc_range r;
        CHECK(oxmalloc_heap_retire(h, &r, 1, &n) == 0);
        printf("stale=%p\n", (void *)p);
        fflush(stdout);
        free(p); /* must stop: oxmalloc no longer owns the range */
        return 0;
    }

    /* Allocation stays in the region; free() from two threads. */
    for (int i = 0; i < N; i++) {
        size_t size = 8 + (size_t)(i % 50) * 37;
        objs[i] = (i % 3 == 0) ? oxmalloc_heap_calloc(h, 1, size) : oxmalloc_heap_malloc(h, size);
        CHECK(objs[i] && inside(objs[i], base, len));
        memset(objs[i], i & 0xff, size);
    }
    void *aligned = oxmalloc_heap_memalign(h, 4096, 10000);
    CHECK(aligned && ((uintptr_t)aligned & 4095) == 0 && inside(aligned, base, len));
    char *grown = oxmalloc_heap_malloc(h, 100);
    memset(grown, 7, 100);
    grown = oxmalloc_heap_realloc(h, grown, 100000);
    CHECK(grown && inside(grown, base, len) && grown[99] == 7);
    struct oxmalloc_heap_stats s;
    CHECK(oxmalloc_heap_stats(h, &s) == 0);
    CHECK(s.in_use_bytes > 0 && s.regions == 1);
    CHECK(s.carved_bytes == s.in_use_bytes + s.free_bytes + s.central_bytes + s.cached_bytes +
                                s.released_bytes);
    pthread_t t[2];
    for (long k = 0; k < 2; k++) CHECK(pthread_create(&t[k], NULL, free_half, (void *)k) == 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    oxmalloc_heap_free(h, aligned);

    /* Live object: retire refuses and says how much is live. */
    size_t n = 0;
    struct oxmalloc_range ranges[4];
    CHECK(oxmalloc_heap_retire(h, ranges, 4, &n) == EBUSY);
    CHECK(n >= 100000);
    free(grown);

    /* Exhaustion: NULL with ENOMEM, malloc goes on. */
    int got = 0;
    for (;;) {
        errno = 0;
        void *p = oxmalloc_heap_malloc(h, 1 << 20);
        if (!p) {
            CHECK(errno == ENOMEM);
            break;
        }
        CHECK(inside(p, base, len));
        got++;
        CHECK(got <= 64);
    }
    CHECK(got >= 55); /* 64 MiB less what small objects still pin */
    void *g = malloc(8 << 20);
    CHECK(g && !inside(g, base, len));
    free(g);

    /* Destroy frees everything at once; the heap is usable again. */
    oxmalloc_heap_destroy(h);
    CHECK(oxmalloc_heap_stats(h, &s) == 0 && s.in_use_bytes == 0);
    void *again = oxmalloc_heap_malloc(h, 1 << 20);
    CHECK(again && inside(again, base, len));
    free(again);

    /* Retire hands the range back; it can be unmapped. */
    CHECK(oxmalloc_heap_retire(h, ranges, 4, &n) == 0);
    CHECK(n == 1 && ranges[0].start == base && ranges[0].len == len);
    unsigned r;
    CHECK(oxmalloc_region_of(base, &r) == -1);
    CHECK(munmap(base, len) == 0);
    void *after = malloc(1000);
    CHECK(after);
    free(after);
    done();
    return 0;
}
