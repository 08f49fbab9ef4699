/*
 * malloc_thread.c: a working set replaced at random on each of THREADS
 * threads, in the manner of glibc's bench-malloc-thread. Each thread keeps
 * 1024 blocks and replaces a random one ITERATIONS times; sizes are drawn
 * so that small ones dominate (1/size-like: log-uniform over 8..32768), as
 * in that benchmark.
 *
 *   malloc_thread THREADS ITERATIONS
 *
 * Prints ops= and errors=.
 */
#include "common.h"

#define SLOTS 1024

struct worker {
    long iterations;
    uint64_t rng;
    unsigned long long errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    void *p[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    for (long i = 0; i < w->iterations; i++) {
        int k = (int)(rng_next(&w->rng) % SLOTS);
        if (p[k] != NULL && !check_tag(p[k], size[k], (uintptr_t)k))
            w->errors++;
        free(p[k]);
        size[k] = rng_log_range(&w->rng, 8, 32768);
        p[k] = xmalloc(size[k]);
        set_tag(p[k], size[k], (uintptr_t)k);
    }
    for (int k = 0; k < SLOTS; k++)
        free(p[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)arg_long(argc, argv, 1, 1);
    long iterations = arg_long(argc, argv, 2, 10000000);
    if (threads < 1) {
        fprintf(stderr, "usage: malloc_thread THREADS ITERATIONS\n");
        return 2;
    }
    struct worker *w = xmalloc(sizeof *w * (size_t)threads);
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (struct worker){iterations, rng_seed((uint64_t)i), 0};
    start_threads(tid, threads, work, w, sizeof *w);
    join_threads(tid, threads);
    unsigned long long errors = 0;
    for (int i = 0; i < threads; i++)
        errors += w[i].errors;
    free(w);
    free(tid);
    report("ops", (unsigned long long)threads * (unsigned long long)iterations);
    report("errors", errors);
    return 0;
}
