/*
 * ring.c: rings of small blocks on several threads, in the manner of
 * sh6bench. Each of THREADS threads keeps a ring of SLOTS blocks of 1..MAX
 * bytes and, for ROUNDS rounds: walks the ring replacing every block, frees
 * the second half in reverse order and refills it, then frees every other
 * block and refills those (three orders of freeing, all on one thread).
 *
 *   ring THREADS SLOTS MAX ROUNDS
 *
 * Prints ops= (blocks replaced) and errors=.
 */
#include "common.h"

struct worker {
    long slots, rounds;
    size_t max;
    uint64_t rng;
    unsigned long long ops, errors;
};

struct ring {
    void **p;
    size_t *size;
};

static void replace(struct worker *w, struct ring *r, long k)
{
    if (r->p[k] != NULL) {
        if (!check_tag(r->p[k], r->size[k], (uintptr_t)k))
            w->errors++;
        free(r->p[k]);
    }
    r->size[k] = rng_range(&w->rng, 1, w->max);
    r->p[k] = xmalloc(r->size[k]);
    set_tag(r->p[k], r->size[k], (uintptr_t)k);
    w->ops++;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    long n = w->slots;
    struct ring r = {check_alloc(calloc((size_t)n, sizeof(void *)), 1),
                     xmalloc(sizeof(size_t) * (size_t)n)};
    for (long round = 0; round < w->rounds; round++) {
        for (long k = 0; k < n; k++)
            replace(w, &r, k);
        for (long k = n - 1; k >= n / 2; k--) {
            free(r.p[k]);
            r.p[k] = NULL;
        }
        for (long k = n / 2; k < n; k++)
            replace(w, &r, k);
        for (long k = 0; k < n; k += 2) {
            free(r.p[k]);
            r.p[k] = NULL;
        }
        for (long k = 0; k < n; k += 2)
            replace(w, &r, k);
    }
    for (long k = 0; k < n; k++)
        free(r.p[k]);
    free(r.p);
    free(r.size);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)arg_long(argc, argv, 1, 4);
    long slots = arg_long(argc, argv, 2, 10000);
    size_t max = (size_t)arg_long(argc, argv, 3, 1000);
    long rounds = arg_long(argc, argv, 4, 100);
    if (threads < 1 || slots < 2 || max < 1) {
        fprintf(stderr, "usage: ring THREADS SLOTS MAX ROUNDS\n");
        return 2;
    }
    struct worker *w = xmalloc(sizeof *w * (size_t)threads);
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (struct worker){slots, rounds, max, rng_seed((uint64_t)i), 0, 0};
    start_threads(tid, threads, work, w, sizeof *w);
    join_threads(tid, threads);
    unsigned long long ops = 0, errors = 0;
    for (int i = 0; i < threads; i++) {
        ops += w[i].ops;
        errors += w[i].errors;
    }
    free(w);
    free(tid);
    report("ops", ops);
    report("errors", errors);
    return 0;
}
