/* A multi-threaded stress run of the malloc family: THREADS threads (first
 * argument, default 4) each make OPS random calls (second argument, default
 * 200000) of malloc, calloc, realloc, posix_memalign, aligned_alloc and free
 * on blocks of 1 byte to 300 KB, and pass blocks to each other through a
 * shared queue, so that many are freed by a thread other than the one that
 * allocated them. Every block holds a pattern (its tag's low byte) that is
 * checked when it is freed or reallocated, and calloc memory must read as
 * zero. It first prints whether oxmalloc serves the program's malloc
 * (`served by oxmalloc: yes`): under valgrind, that tells whether valgrind
 * replaced the allocator or let it run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "oxmalloc.h"

enum { SLOTS = 256, QUEUE = 1024 };

struct block {
    unsigned char *p;
    size_t n;
    unsigned char tag;
};

static struct {
    pthread_mutex_t lock;
    struct block items[QUEUE];
    size_t len;
} queue = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};

static long ops_per_thread = 200000;

static size_t next(size_t *seed) {
    *seed = *seed * 6364136223846793005u + 1442695040888963407u;
    return *seed >> 33;
}

static size_t pick_size(size_t *seed) {
    size_t r = next(seed) % 100;
    if (r < 80) return next(seed) % 512 + 1;
    if (r < 97) return next(seed) % 20000 + 1;
    return next(seed) % 300000 + 1;
}

static void fill(struct block *b) { memset(b->p, b->tag, b->n < 512 ? b->n : 512); }

static void check_block(const struct block *b) {
    for (size_t i = 0; i < (b->n < 512 ? b->n : 512); i++) CHECK(b->p[i] == b->tag);
}

static void release(struct block *b) {
    if (!b->p) return;
    check_block(b);
    free(b->p);
    b->p = NULL;
}

static void make(struct block *b, size_t *seed) {
    size_t n = pick_size(seed);
    b->n = n;
    b->tag = (unsigned char)next(seed);
    switch (next(seed) % 5) {
    case 0:
        b->p = calloc(1, n);
        CHECK(b->p != NULL);
        for (size_t i = 0; i < n; i++) CHECK(b->p[i] == 0);
        break;
    case 1: {
        void *p = NULL;
        size_t align = (size_t)16 << (next(seed) % 9);
        CHECK(posix_memalign(&p, align, n) == 0);
        CHECK((uintptr_t)p % align == 0);
        b->p = p;
        break;
    }
    case 2: {
        size_t align = (size_t)8 << (next(seed) % 6);
        b->p = aligned_alloc(align, (n + align - 1) / align * align);
        CHECK(b->p != NULL && (uintptr_t)b->p % align == 0);
        break;
    }
    default:
        b->p = malloc(n);
        CHECK(b->p != NULL);
    }
    fill(b);
}

static void *worker(void *arg) {
    size_t seed = (size_t)arg * 7919 + 1;
    struct block mine[SLOTS];
    memset(mine, 0, sizeof mine);
    for (long k = 0; k < ops_per_thread; k++) {
        struct block *b = &mine[next(&seed) % SLOTS];
        switch (next(&seed) % 8) {
        case 0:
        case 1:
        case 2:
            release(b);
            make(b, &seed);
            break;
        case 3:
            if (b->p) {
                check_block(b);
                size_t n = pick_size(&seed);
                unsigned char *q = realloc(b->p, n);
                CHECK(q != NULL);
                b->p = q;
                size_t keep = b->n < n ? b->n : n;
                b->n = n;
                for (size_t i = 0; i < (keep < 512 ? keep : 512); i++) CHECK(q[i] == b->tag);
                fill(b);
            }
            break;
        case 4:
            release(b);
            break;
        case 5: /* hand a block to whichever thread takes it */
            if (b->p) {
                pthread_mutex_lock(&queue.lock);
                if (queue.len < QUEUE) {
                    queue.items[queue.len++] = *b;
                    b->p = NULL;
                }
                pthread_mutex_unlock(&queue.lock);
            }
            break;
        default: { /* free a block another thread allocated */
            struct block got = {0};
            pthread_mutex_lock(&queue.lock);
            if (queue.len > 0) got = queue.items[--queue.len];
            pthread_mutex_unlock(&queue.lock);
            release(&got);
        }
        }
    }
    for (int i = 0; i < SLOTS; i++) release(&mine[i]);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2) ops_per_thread = atol(argv[2]);
    void *probe = malloc(100);
    printf("served by oxmalloc: %s\n",
           MallocExtension_GetOwnership(probe) == MallocExtension_kOwned ? "yes" : "no");
    free(probe);
    pthread_t t[64];
    CHECK(threads > 0 && threads <= 64);
    for (int i = 0; i < threads; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(size_t)i) == 0);
    for (int i = 0; i < threads; i++) CHECK(pthread_join(t[i], NULL) == 0);
    for (size_t i = 0; i < queue.len; i++) release(&queue.items[i]);
    printf("%d threads x %ld operations\n", threads, ops_per_thread);
    done();
    return 0;
}
