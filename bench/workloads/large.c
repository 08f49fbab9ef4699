/*
 * large.c: large blocks. LIVE blocks of MIN..MAX bytes (log-uniform) are
 * kept; OPS times a random one is freed and replaced by a new one whose
 * every page is written. With `calloc`, blocks come from calloc and are
 * checked to read as zero first (a zero-filled buffer churn); with
 * `malloc`, from malloc.
 *
 *   large malloc|calloc OPS LIVE MIN MAX
 *
 * Prints ops=, final_rss_kib= (after the last free) and errors=.
 */
#include "common.h"

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "malloc";
    long ops = arg_long(argc, argv, 2, 2000);
    long live = arg_long(argc, argv, 3, 8);
    size_t min = (size_t)arg_long(argc, argv, 4, 256L << 10);
    size_t max = (size_t)arg_long(argc, argv, 5, 64L << 20);
    int zeroed = strcmp(mode, "calloc") == 0;
    if ((!zeroed && strcmp(mode, "malloc") != 0) || ops < 1 || live < 1 || min < 1 ||
        max < min) {
        fprintf(stderr, "usage: large malloc|calloc OPS LIVE MIN MAX\n");
        return 2;
    }
    unsigned char **p = check_alloc(calloc((size_t)live, sizeof *p), 1);
    size_t *size = check_alloc(calloc((size_t)live, sizeof *size), 1);
    uint64_t rng = rng_seed(11);
    unsigned long long errors = 0;
    for (long i = 0; i < ops; i++) {
        long k = (long)(rng_next(&rng) % (uint64_t)live);
        if (p[k] != NULL && p[k][size[k] - 1] != (unsigned char)((size[k] & 0xff) | 1))
            errors++;
        free(p[k]);
        size_t n = rng_log_range(&rng, min, max);
        p[k] = zeroed ? calloc(1, n) : malloc(n);
        check_alloc(p[k], n);
        size[k] = n;
        if (zeroed) {
            for (size_t off = 0; off < n; off += 4096)
                errors += p[k][off] != 0;
            errors += p[k][n - 1] != 0;
        }
        touch_pages(p[k], n, (unsigned char)((n & 0xff) | 1));
    }
    for (long k = 0; k < live; k++)
        free(p[k]);
    unsigned long long final = rss_kib();
    free(p);
    free(size);
    report("ops", (unsigned long long)ops);
    report("final_rss_kib", final);
    report("errors", errors);
    return 0;
}
