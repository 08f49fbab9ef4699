/*
 * remote_free.c: a storm of remote frees. The main thread allocates COUNT
 * tiny blocks of SIZE bytes and hands them out in batches of BATCH pointers;
 * WORKERS threads each take a batch and free every block in it (memory that
 * another thread allocated), and after every fourth free they replace one
 * block of their own working set of 4096 blocks of 16..2048 bytes (their own
 * allocation mix). At most WORKERS + 2 batches exist at once, so the main
 * thread waits when the workers fall behind.
 *
 *   remote_free COUNT SIZE BATCH WORKERS
 *
 * Prints frees= (remote frees), frees_per_s= (over the whole storm, measured
 * inside the program), own_ops= and errors=.
 */
#include "common.h"

#define OWN_SLOTS 4096

struct batch {
    void **p;
    long n;
    struct batch *next;
};

/* Batches full of blocks to free, and empty ones to fill, each a stack. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct batch *full, *empty;
static int done;

static void push(struct batch **list, struct batch *b)
{
    pthread_mutex_lock(&lock);
    b->next = *list;
    *list = b;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits for a batch; NULL once `done` is set and no batch is left. */
static struct batch *pop(struct batch **list)
{
    pthread_mutex_lock(&lock);
    while (*list == NULL && !(done && list == &full))
        pthread_cond_wait(&changed, &lock);
    struct batch *b = *list;
    if (b != NULL)
        *list = b->next;
    pthread_mutex_unlock(&lock);
    return b;
}

struct worker {
    size_t size;
    uint64_t rng;
    unsigned long long frees, own_ops, errors;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    void *own[OWN_SLOTS];
    size_t own_size[OWN_SLOTS];
    for (int k = 0; k < OWN_SLOTS; k++) {
        own_size[k] = rng_log_range(&w->rng, 16, 2048);
        own[k] = xmalloc(own_size[k]);
        set_tag(own[k], own_size[k], (uintptr_t)k);
    }
    struct batch *b;
    while ((b = pop(&full)) != NULL) {
        for (long i = 0; i < b->n; i++) {
            if (!check_tag(b->p[i], w->size, 0))
                w->errors++;
            free(b->p[i]);
            if ((i & 3) == 3) {
                int k = (int)(rng_next(&w->rng) % OWN_SLOTS);
                if (!check_tag(own[k], own_size[k], (uintptr_t)k))
                    w->errors++;
                free(own[k]);
                own_size[k] = rng_log_range(&w->rng, 16, 2048);
                own[k] = xmalloc(own_size[k]);
                set_tag(own[k], own_size[k], (uintptr_t)k);
                w->own_ops++;
            }
        }
        w->frees += (unsigned long long)b->n;
        b->n = 0;
        push(&empty, b);
    }
    for (int k = 0; k < OWN_SLOTS; k++)
        free(own[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    long count = arg_long(argc, argv, 1, 10000000);
    size_t size = (size_t)arg_long(argc, argv, 2, 8);
    long batch = arg_long(argc, argv, 3, 200000);
    int workers = (int)arg_long(argc, argv, 4, 3);
    if (count < 1 || size < 1 || batch < 1 || workers < 1) {
        fprintf(stderr, "usage: remote_free COUNT SIZE BATCH WORKERS\n");
        return 2;
    }
    int batches = workers + 2;
    struct batch *pool = xmalloc(sizeof *pool * (size_t)batches);
    for (int i = 0; i < batches; i++) {
        pool[i].p = xmalloc(sizeof(void *) * (size_t)batch);
        pool[i].n = 0;
        push(&empty, &pool[i]);
    }
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)workers);
    struct worker *w = xmalloc(sizeof *w * (size_t)workers);
    for (int i = 0; i < workers; i++)
        w[i] = (struct worker){size, rng_seed((uint64_t)i + 1), 0, 0, 0};

    double t0 = now_s();
    start_threads(tid, workers, work, w, sizeof *w);
    for (long made = 0; made < count;) {
        struct batch *b = pop(&empty);
        long n = count - made < batch ? count - made : batch;
        for (long i = 0; i < n; i++) {
            b->p[i] = xmalloc(size);
            set_tag(b->p[i], size, 0);
        }
        b->n = n;
        made += n;
        push(&full, b);
    }
    pthread_mutex_lock(&lock);
    done = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    join_threads(tid, workers);
    double elapsed = now_s() - t0;

    unsigned long long frees = 0, own_ops = 0, errors = 0;
    for (int i = 0; i < workers; i++) {
        frees += w[i].frees;
        own_ops += w[i].own_ops;
        errors += w[i].errors;
    }
    for (int i = 0; i < batches; i++)
        free(pool[i].p);
    free(pool);
    free(tid);
    free(w);
    report("frees", frees);
    report_f("frees_per_s", (double)frees / elapsed);
    report("own_ops", own_ops);
    report("errors", errors + (frees != (unsigned long long)count));
    return 0;
}
