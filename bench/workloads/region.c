/*
 * region.c: one mixed workload on three kinds of memory, to compare
 * oxmalloc's injected regions and region-bound heaps with its OS memory.
 * Each of THREADS threads keeps LIVE blocks and replaces a random one OPS
 * times; sizes are 90 % 8..519 bytes, 9 % 1..9 KiB and 1 % 64..128 KiB, and
 * every block is filled.
 *
 *   region os|inject|heap THREADS OPS LIVE
 *
 * os      plain malloc (any allocator).
 * inject  first hands oxmalloc a 4 GiB MAP_NORESERVE mapping with
 *         oxmalloc_inject (non-exclusive), then plain malloc: the blocks come
 *         from the region.
 * heap    injects the mapping as an exclusive region, binds a heap to it with
 *         oxmalloc_heap_new_in and allocates with oxmalloc_heap_malloc;
 *         blocks are freed with plain free.
 *
 * The oxmalloc functions are looked up with dlsym: when they are missing
 * (another allocator) the program prints `unavailable=NAME` and exits with
 * status 0.
 *
 * Prints ops=, in_region_pct= (inject and heap: the share of sampled blocks
 * that lie in the region) and errors=.
 */
#include "common.h"
#include "oxmalloc.h"
#include <dlfcn.h>
#include <sys/mman.h>

#define REGION_BYTES (4UL << 30)

typedef __typeof__(oxmalloc_heap_new_in) heap_new_in_fn;
typedef __typeof__(oxmalloc_heap_malloc) heap_malloc_fn;

static struct oxmalloc_heap *heap;
static heap_malloc_fn *heap_malloc;
static __typeof__(oxmalloc_region_of) *region_of;
static unsigned region_id;

static void *allocate(size_t size)
{
    return check_alloc(heap != NULL ? heap_malloc(heap, size) : malloc(size), size);
}

struct worker {
    long ops, live;
    uint64_t rng;
    unsigned long long errors, sampled, in_region;
};

static size_t pick_size(uint64_t *rng)
{
    unsigned r = (unsigned)(rng_next(rng) % 100);
    if (r < 90)
        return rng_range(rng, 8, 519);
    if (r < 99)
        return rng_range(rng, 1024, 9 * 1024);
    return rng_range(rng, 64 * 1024, 128 * 1024);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    void **p = check_alloc(calloc((size_t)w->live, sizeof *p), 1);
    size_t *size = check_alloc(calloc((size_t)w->live, sizeof *size), 1);
    for (long i = 0; i < w->ops; i++) {
        long k = (long)(rng_next(&w->rng) % (uint64_t)w->live);
        if (p[k] != NULL && !check_tag(p[k], size[k], (uintptr_t)k))
            w->errors++;
        free(p[k]);
        size[k] = pick_size(&w->rng);
        p[k] = allocate(size[k]);
        memset(p[k], (int)(i & 0xff), size[k]);
        set_tag(p[k], size[k], (uintptr_t)k);
        if (region_of != NULL && (i & 255) == 0) {
            unsigned id;
            w->sampled++;
            w->in_region += region_of(p[k], &id) == 0 && id == region_id;
        }
    }
    for (long k = 0; k < w->live; k++)
        free(p[k]);
    free(p);
    free(size);
    return NULL;
}

/* The oxmalloc function `name`, or exit after saying it is unavailable. */
static void *need(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (f == NULL) {
        printf("unavailable=%s\n", name);
        exit(0);
    }
    return f;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "os";
    int threads = (int)arg_long(argc, argv, 2, 1);
    long ops = arg_long(argc, argv, 3, 2000000);
    long live = arg_long(argc, argv, 4, 4096);
    int inject = strcmp(mode, "inject") == 0, bound = strcmp(mode, "heap") == 0;
    if ((!inject && !bound && strcmp(mode, "os") != 0) || threads < 1 || live < 1) {
        fprintf(stderr, "usage: region os|inject|heap THREADS OPS LIVE\n");
        return 2;
    }
    if (inject || bound) {
        __typeof__(oxmalloc_inject) *inject_fn = need("oxmalloc_inject");
        region_of = need("oxmalloc_region_of");
        heap_new_in_fn *new_in = bound ? need("oxmalloc_heap_new_in") : NULL;
        heap_malloc = bound ? need("oxmalloc_heap_malloc") : NULL;
        void *base = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) {
            perror("mmap");
            return 3;
        }
        struct oxmalloc_region_options opts = {0};
        opts.release = OXMALLOC_RELEASE_DONTNEED;
        opts.exclusive = bound;
        opts.label = "bench";
        int r = inject_fn(base, REGION_BYTES, &opts, &region_id);
        if (r != OXMALLOC_INJECT_OK) {
            fprintf(stderr, "oxmalloc_inject failed: %d\n", r);
            return 3;
        }
        if (bound) {
            heap = new_in(region_id);
            if (heap == NULL) {
                fprintf(stderr, "oxmalloc_heap_new_in(%u) failed\n", region_id);
                return 3;
            }
        }
    }
    struct worker *w = xmalloc(sizeof *w * (size_t)threads);
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (struct worker){ops, live, rng_seed((uint64_t)i), 0, 0, 0};
    start_threads(tid, threads, work, w, sizeof *w);
    join_threads(tid, threads);
    unsigned long long errors = 0, sampled = 0, in_region = 0;
    for (int i = 0; i < threads; i++) {
        errors += w[i].errors;
        sampled += w[i].sampled;
        in_region += w[i].in_region;
    }
    free(w);
    free(tid);
    report("ops", (unsigned long long)threads * (unsigned long long)ops);
    if (region_of != NULL)
        report("in_region_pct", sampled ? in_region * 100 / sampled : 0);
    report("errors", errors);
    return 0;
}
