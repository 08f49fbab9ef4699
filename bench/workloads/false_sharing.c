/*
 * false_sharing.c: does the allocator put different threads' small blocks
 * on one cache line? THREADS threads each allocate a SIZE-byte block, write
 * it WRITES times, free it, ITERATIONS times.
 *
 *   false_sharing scratch|thrash THREADS ITERATIONS WRITES SIZE
 *
 * thrash (cache-thrash): every thread allocates its own blocks from the
 *   start; an allocator that hands neighbouring blocks to different threads
 *   makes their writes fight over a cache line.
 * scratch (cache-scratch): the main thread first allocates one block per
 *   thread, side by side, and each thread starts by freeing the one it was
 *   given; an allocator that gives that block back to the freeing thread
 *   makes every thread write inside one shared cache line.
 *
 * Prints writes= and errors=.
 */
#include "common.h"

struct worker {
    void *given; /* scratch: a block the main thread allocated, or NULL */
    long iterations, writes;
    size_t size;
    unsigned long long errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    free(w->given);
    for (long i = 0; i < w->iterations; i++) {
        volatile unsigned char *b = xmalloc(w->size);
        for (long k = 0; k < w->writes; k++)
            for (size_t j = 0; j < w->size; j++)
                b[j] = (unsigned char)(b[j] + 1);
        b[0] = (unsigned char)w->writes;
        if (b[0] != (unsigned char)w->writes)
            w->errors++;
        free((void *)b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "thrash";
    int threads = (int)arg_long(argc, argv, 2, 4);
    long iterations = arg_long(argc, argv, 3, 10000);
    long writes = arg_long(argc, argv, 4, 1000);
    size_t size = (size_t)arg_long(argc, argv, 5, 8);
    int scratch = strcmp(mode, "scratch") == 0;
    if ((!scratch && strcmp(mode, "thrash") != 0) || threads < 1 || size < 1) {
        fprintf(stderr, "usage: false_sharing scratch|thrash THREADS ITERATIONS WRITES SIZE\n");
        return 2;
    }
    struct worker *w = xmalloc(sizeof *w * (size_t)threads);
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    for (int i = 0; i < threads; i++)
        w[i] = (struct worker){scratch ? xmalloc(size) : NULL, iterations, writes, size, 0};
    start_threads(tid, threads, work, w, sizeof *w);
    join_threads(tid, threads);
    unsigned long long errors = 0;
    for (int i = 0; i < threads; i++)
        errors += w[i].errors;
    free(w);
    free(tid);
    report("writes", (unsigned long long)threads * (unsigned long long)iterations *
                         (unsigned long long)writes);
    report("errors", errors);
    return 0;
}
