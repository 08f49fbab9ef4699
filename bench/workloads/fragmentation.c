/*
 * fragmentation.c: random sizes, most of them freed, then allocated again.
 * Phase 1 allocates TOTAL bytes in blocks of 16..MAX bytes (log-uniform);
 * phase 2 frees nine in ten of them at random, leaving the survivors
 * scattered over the whole heap; phase 3 allocates TOTAL/2 bytes again in
 * blocks of 2x the sizes, which the holes between survivors fit badly. An
 * allocator that reuses its holes and returns what it cannot reuse keeps
 * the peak RSS near TOTAL; one that cannot grows towards 1.5x TOTAL.
 *
 *   fragmentation TOTAL MAX
 *
 * Prints blocks=, rss_after_free_kib= (after phase 2), final_rss_kib= (after
 * phase 3) and errors=.
 */
#include "common.h"

struct block {
    void *p;
    size_t size;
};

/* Allocates blocks of [lo, hi] bytes into b[*n..] until `bytes` are taken. */
static void fill(struct block *b, long *n, long cap, size_t bytes, size_t lo, size_t hi,
                 uint64_t *rng)
{
    size_t taken = 0;
    while (taken < bytes && *n < cap) {
        size_t size = rng_log_range(rng, lo, hi);
        b[*n].p = xmalloc(size);
        b[*n].size = size;
        touch_pages(b[*n].p, size, 1);
        set_tag(b[*n].p, size, (uintptr_t)*n);
        taken += size;
        (*n)++;
    }
}

int main(int argc, char **argv)
{
    size_t total = (size_t)arg_long(argc, argv, 1, 512L << 20);
    size_t max = (size_t)arg_long(argc, argv, 2, 16384);
    if (total < 1 || max < 32) {
        fprintf(stderr, "usage: fragmentation TOTAL MAX\n");
        return 2;
    }
    /* A block is at least 16 bytes: this bounds how many there can be. */
    long cap = (long)(total / 16 + total / 32 + 16);
    struct block *b = xmalloc(sizeof *b * (size_t)cap);
    uint64_t rng = rng_seed(3);
    long n = 0;
    fill(b, &n, cap, total, 16, max, &rng);
    long first = n;

    unsigned long long errors = 0;
    long kept = 0;
    for (long i = 0; i < first; i++) {
        if (!check_tag(b[i].p, b[i].size, (uintptr_t)i))
            errors++;
        if (rng_next(&rng) % 10 != 0) {
            free(b[i].p);
        } else {
            b[kept] = b[i];
            set_tag(b[kept].p, b[kept].size, (uintptr_t)kept);
            kept++;
        }
    }
    unsigned long long after_free = rss_kib();

    n = kept;
    fill(b, &n, cap, total / 2, 32, 2 * max, &rng);
    unsigned long long final = rss_kib();
    for (long i = 0; i < n; i++) {
        if (!check_tag(b[i].p, b[i].size, (uintptr_t)i))
            errors++;
        free(b[i].p);
    }
    free(b);
    report("blocks", (unsigned long long)(first + n - kept));
    report("rss_after_free_kib", after_free);
    report("final_rss_kib", final);
    report("errors", errors);
    return 0;
}
