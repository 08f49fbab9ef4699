/*
 * larson.c: a server simulation in the manner of Larson and Krishnan's
 * benchmark. Each of THREADS workers owns an array of SLOTS blocks of random
 * sizes in [MIN, MAX] and replaces random ones (free, then malloc a new
 * size) OPS times. Then the workers exit and a new generation of threads
 * takes over the arrays, each one the array of a *different* worker of the
 * previous generation: most frees release memory another thread allocated,
 * as in a server whose connections migrate between threads.
 *
 *   larson THREADS SLOTS MIN MAX GENERATIONS OPS
 *
 * Prints ops= (replacements done) and errors= (blocks found overwritten).
 */
#include "common.h"

struct worker {
    void **slot;
    size_t *size;
    long slots, ops;
    size_t min, max;
    uint64_t rng;
    unsigned long long errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (long i = 0; i < w->ops; i++) {
        long k = (long)(rng_next(&w->rng) % (uint64_t)w->slots);
        if (!check_tag(w->slot[k], w->size[k], (uintptr_t)k))
            w->errors++;
        free(w->slot[k]);
        size_t n = rng_range(&w->rng, w->min, w->max);
        w->slot[k] = xmalloc(n);
        w->size[k] = n;
        set_tag(w->slot[k], n, (uintptr_t)k);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)arg_long(argc, argv, 1, 4);
    long slots = arg_long(argc, argv, 2, 5000);
    size_t min = (size_t)arg_long(argc, argv, 3, 8);
    size_t max = (size_t)arg_long(argc, argv, 4, 1000);
    long generations = arg_long(argc, argv, 5, 20);
    long ops = arg_long(argc, argv, 6, 100000);
    if (threads < 1 || slots < 1 || min < 1 || max < min) {
        fprintf(stderr, "usage: larson THREADS SLOTS MIN MAX GENERATIONS OPS\n");
        return 2;
    }

    /* Array t is worked on by thread (t + g) % threads in generation g. */
    void ***slot = xmalloc(sizeof *slot * (size_t)threads);
    size_t **size = xmalloc(sizeof *size * (size_t)threads);
    uint64_t rng = rng_seed(0);
    for (int t = 0; t < threads; t++) {
        slot[t] = xmalloc(sizeof **slot * (size_t)slots);
        size[t] = xmalloc(sizeof **size * (size_t)slots);
        for (long k = 0; k < slots; k++) {
            size[t][k] = rng_range(&rng, min, max);
            slot[t][k] = xmalloc(size[t][k]);
            set_tag(slot[t][k], size[t][k], (uintptr_t)k);
        }
    }

    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    struct worker *w = xmalloc(sizeof *w * (size_t)threads);
    unsigned long long errors = 0;
    for (long g = 0; g < generations; g++) {
        for (int i = 0; i < threads; i++) {
            int t = (int)((i + g) % threads);
            w[i] = (struct worker){slot[t], size[t], slots, ops, min, max,
                                   rng_seed((uint64_t)(g * threads + i)), 0};
        }
        start_threads(tid, threads, work, w, sizeof *w);
        join_threads(tid, threads);
        for (int i = 0; i < threads; i++)
            errors += w[i].errors;
    }

    for (int t = 0; t < threads; t++) {
        for (long k = 0; k < slots; k++)
            free(slot[t][k]);
        free(slot[t]);
        free(size[t]);
    }
    free(slot);
    free(size);
    free(tid);
    free(w);
    report("ops", (unsigned long long)generations * (unsigned long long)threads *
                      (unsigned long long)ops);
    report("errors", errors);
    return 0;
}
