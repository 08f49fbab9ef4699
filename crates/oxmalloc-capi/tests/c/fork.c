/* A multi-threaded program that forks 100 times while its other threads keep
 * allocating and hold stdio locks, and two more hand blocks from one to the
 * other (allocated by one thread, freed by another) through a table of
 * slots; each child frees the blocks left in the slots by the parent's
 * threads (checking their contents), allocates (small and large blocks, from
 * a new thread too), prints, and exits. A child that deadlocks is killed by
 * its alarm and fails the test. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

static atomic_int stop;
static FILE *sink;

static void *churn(void *arg) {
    size_t seed = (size_t)arg;
    void *held[32] = {0};
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 32; i++) {
            free(held[i]);
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            size_t n = (seed >> 33) % (i == 0 ? 600000 : 3000) + 1;
            held[i] = malloc(n);
            if (held[i]) memset(held[i], 3, n < 64 ? n : 64);
        }
        /* Hold the stdio lock while allocating inside it. */
        flockfile(sink);
        fprintf(sink, "%zu\n", seed);
        void *p = malloc(100);
        free(p);
        funlockfile(sink);
    }
    for (int i = 0; i < 32; i++) free(held[i]);
    return NULL;
}

/* Blocks in flight from the producer to the consumer: each starts with its
 * size and a tag, and holds the tag's low byte after them. */
enum { SLOTS = 64 };
static _Atomic(size_t *) slots[SLOTS];

static size_t *make_block(size_t seed) {
    size_t n = (seed >> 33) % 20000 + 2 * sizeof(size_t);
    size_t *b = malloc(n);
    if (!b) return NULL;
    b[0] = n;
    b[1] = seed;
    memset(b + 2, (int)(seed & 0xff), (n - 2 * sizeof(size_t)) < 256 ? n - 2 * sizeof(size_t) : 256);
    return b;
}

/* Checks a block made by make_block, then frees it; 0 when it was damaged. */
static int check_and_free(size_t *b) {
    size_t n = b[0], body = n - 2 * sizeof(size_t);
    const unsigned char *c = (const unsigned char *)(b + 2);
    for (size_t i = 0; i < (body < 256 ? body : 256); i++)
        if (c[i] != (b[1] & 0xff)) return 0;
    free(b);
    return 1;
}

static void *producer(void *arg) {
    size_t seed = (size_t)arg, i = 0;
    while (!atomic_load(&stop)) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t *b = make_block(seed);
        CHECK(b != NULL);
        size_t *empty = NULL;
        while (!atomic_compare_exchange_weak(&slots[i % SLOTS], &empty, b)) {
            empty = NULL;
            i++;
            if (atomic_load(&stop)) {
                free(b);
                return NULL;
            }
        }
        i++;
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    size_t i = 0;
    while (!atomic_load(&stop)) {
        size_t *b = atomic_exchange(&slots[i++ % SLOTS], NULL);
        if (b) CHECK(check_and_free(b));
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 13 + 1));
    return malloc(77);
}

static int child(int k) {
    alarm(20);
    /* The blocks the parent's producer left in flight: this process's only
     * copy of them, freed here. */
    for (int i = 0; i < SLOTS; i++) {
        size_t *b = atomic_exchange(&slots[i], NULL);
        if (b && !check_and_free(b)) return 6;
    }
    void *blocks[200];
    for (int i = 0; i < 200; i++) {
        blocks[i] = malloc((size_t)(i * 997 + k) % 5000 + 1);
        if (!blocks[i]) return 2;
    }
    void *big = malloc((size_t)1 << 21);
    if (!big) return 3;
    memset(big, 1, (size_t)1 << 21);
    pthread_t t;
    void *from_thread;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0) return 4;
    if (pthread_join(t, &from_thread) != 0 || !from_thread) return 5;
    free(from_thread);
    for (int i = 0; i < 200; i++) free(blocks[i]);
    free(big);
    fprintf(sink, "child %d done\n", k);
    fflush(sink);
    return 0;
}

int main(void) {
    sink = fopen("/dev/null", "w");
    CHECK(sink != NULL);
    pthread_t t[6];
    for (size_t i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
    CHECK(pthread_create(&t[4], NULL, producer, (void *)99) == 0);
    CHECK(pthread_create(&t[5], NULL, consumer, NULL) == 0);
    for (int k = 0; k < 100; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) exit(child(k));
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "child %d: status %#x (signal %d)\n", k, status,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        void *p = malloc((size_t)k * 100 + 1); /* the parent keeps allocating too */
        CHECK(p);
        free(p);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 6; i++) CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < SLOTS; i++) {
        size_t *b = atomic_exchange(&slots[i], NULL);
        if (b) CHECK(check_and_free(b));
    }
    done();
    return 0;
}
