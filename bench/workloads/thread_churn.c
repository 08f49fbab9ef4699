/*
 * thread_churn.c: short-lived threads that leave memory behind for others.
 * THREADS threads are started in waves of LANES; each allocates OBJECTS
 * blocks of 16..4096 bytes, frees half of them itself, frees everything the
 * thread of the previous wave left in its lane, leaves its other half there
 * and exits. Thread start-up and exit (thread caches made and flushed) and
 * frees of a dead thread's memory are what this measures.
 *
 *   thread_churn THREADS LANES OBJECTS
 *
 * Prints threads=, objects= and errors=.
 */
#include "common.h"

struct lane {
    void **left;      /* what the previous thread of this lane left, or NULL */
    size_t *left_size;
    long left_n;
    uint64_t rng;
    long objects;
    unsigned long long errors;
};

static void *work(void *arg)
{
    struct lane *l = arg;
    long n = l->objects;
    void **p = xmalloc(sizeof *p * (size_t)n);
    size_t *size = xmalloc(sizeof *size * (size_t)n);
    for (long i = 0; i < n; i++) {
        size[i] = rng_log_range(&l->rng, 16, 4096);
        p[i] = xmalloc(size[i]);
        set_tag(p[i], size[i], (uintptr_t)i);
    }
    /* Keep the odd ones for the next thread, free the even ones now. */
    long kept = 0;
    for (long i = 0; i < n; i++) {
        if (i & 1) {
            p[kept] = p[i];
            size[kept] = size[i];
            set_tag(p[kept], size[kept], (uintptr_t)kept);
            kept++;
        } else {
            free(p[i]);
        }
    }
    if (l->left != NULL) {
        for (long i = 0; i < l->left_n; i++) {
            if (!check_tag(l->left[i], l->left_size[i], (uintptr_t)i))
                l->errors++;
            free(l->left[i]);
        }
        free(l->left);
        free(l->left_size);
    }
    l->left = p;
    l->left_size = size;
    l->left_n = kept;
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = arg_long(argc, argv, 1, 4000);
    int lanes = (int)arg_long(argc, argv, 2, 4);
    long objects = arg_long(argc, argv, 3, 2000);
    if (threads < 1 || lanes < 1 || objects < 2) {
        fprintf(stderr, "usage: thread_churn THREADS LANES OBJECTS\n");
        return 2;
    }
    struct lane *lane = calloc((size_t)lanes, sizeof *lane);
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)lanes);
    check_alloc(lane, 1);
    for (int i = 0; i < lanes; i++) {
        lane[i].rng = rng_seed((uint64_t)i);
        lane[i].objects = objects;
    }
    long started = 0;
    while (started < threads) {
        int wave = threads - started < lanes ? (int)(threads - started) : lanes;
        start_threads(tid, wave, work, lane, sizeof *lane);
        join_threads(tid, wave);
        started += wave;
    }
    unsigned long long errors = 0;
    for (int i = 0; i < lanes; i++) {
        errors += lane[i].errors;
        for (long k = 0; k < lane[i].left_n; k++)
            free(lane[i].left[k]);
        free(lane[i].left);
        free(lane[i].left_size);
    }
    free(lane);
    free(tid);
    report("threads", (unsigned long long)threads);
    report("objects", (unsigned long long)threads * (unsigned long long)objects);
    report("errors", errors);
    return 0;
}
