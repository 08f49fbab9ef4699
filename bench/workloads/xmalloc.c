/*
 * xmalloc.c: producers and consumers, in the manner of the xmalloc test.
 * PAIRS producer threads each allocate COUNT blocks of 16..MAX bytes and push
 * them through a bounded single-producer single-consumer ring (RING slots)
 * to their consumer thread, which frees them: every free is of memory another
 * thread allocated, and every allocation must be refilled because the
 * allocating thread never frees.
 *
 *   xmalloc PAIRS COUNT MAX RING
 *
 * Prints frees=, frees_per_s= (measured inside the program) and errors=.
 */
#include "common.h"
#include <sched.h>
#include <stdatomic.h>

struct pair {
    void **ring;
    long ring_len;
    _Atomic long head; /* next slot the producer fills */
    char pad1[64];
    _Atomic long tail; /* next slot the consumer empties */
    char pad2[64];
    long count;
    size_t max;
    uint64_t rng;
    unsigned long long errors;
};

static void *produce(void *arg)
{
    struct pair *p = arg;
    for (long i = 0; i < p->count; i++) {
        size_t n = rng_log_range(&p->rng, 16, p->max);
        void *b = xmalloc(n);
        set_tag(b, n, 0);
        /* The size travels in the first word, the tag in the last byte. */
        *(size_t *)b = n;
        while (i - atomic_load_explicit(&p->tail, memory_order_acquire) >= p->ring_len)
            sched_yield();
        p->ring[i % p->ring_len] = b;
        atomic_store_explicit(&p->head, i + 1, memory_order_release);
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct pair *p = arg;
    for (long i = 0; i < p->count; i++) {
        while (atomic_load_explicit(&p->head, memory_order_acquire) <= i)
            sched_yield();
        void *b = p->ring[i % p->ring_len];
        atomic_store_explicit(&p->tail, i + 1, memory_order_release);
        size_t n = *(size_t *)b;
        if (n < 16 || n > p->max || ((uint8_t *)b)[n - 1] != tag_of(n, 0))
            p->errors++;
        free(b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int pairs = (int)arg_long(argc, argv, 1, 2);
    long count = arg_long(argc, argv, 2, 5000000);
    size_t max = (size_t)arg_long(argc, argv, 3, 1024);
    long ring = arg_long(argc, argv, 4, 4096);
    if (pairs < 1 || count < 1 || max < 16 || ring < 1) {
        fprintf(stderr, "usage: xmalloc PAIRS COUNT MAX RING\n");
        return 2;
    }
    struct pair *p = check_alloc(calloc((size_t)pairs, sizeof *p), 1);
    for (int i = 0; i < pairs; i++) {
        p[i].ring = xmalloc(sizeof(void *) * (size_t)ring);
        p[i].ring_len = ring;
        p[i].count = count;
        p[i].max = max;
        p[i].rng = rng_seed((uint64_t)i);
    }
    pthread_t *tid = xmalloc(sizeof *tid * 2 * (size_t)pairs);
    double t0 = now_s();
    for (int i = 0; i < pairs; i++) {
        start_threads(&tid[2 * i], 1, produce, &p[i], 0);
        start_threads(&tid[2 * i + 1], 1, consume, &p[i], 0);
    }
    join_threads(tid, 2 * pairs);
    double elapsed = now_s() - t0;
    unsigned long long errors = 0;
    for (int i = 0; i < pairs; i++) {
        errors += p[i].errors;
        free(p[i].ring);
    }
    free(p);
    free(tid);
    unsigned long long frees = (unsigned long long)pairs * (unsigned long long)count;
    report("frees", frees);
    report_f("frees_per_s", (double)frees / elapsed);
    report("errors", errors);
    return 0;
}
