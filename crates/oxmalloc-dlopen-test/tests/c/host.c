/* A C program on glibc's malloc that loads a Rust cdylib whose global
 * allocator is oxmalloc late: three threads are running and holding glibc
 * blocks when the main thread dlopens the library. Then the library's Rust
 * collections run on the main thread, on those three threads (their static
 * TLS for the library was set up by the loader at dlopen time) and on
 * threads the library starts; the library is dlclosed while the threads
 * still hold their oxmalloc caches, the threads exit (oxmalloc's thread-exit
 * hook runs: the library is linked with -z nodelete, so it stays mapped),
 * and it is opened again: the same instance, still working.
 *
 *   host LIB work    Rust collections and threads (std's thread-locals too)
 *   host LIB alloc   only allocation and free on the host's threads: nothing
 *                    but -z nodelete keeps the library mapped for their exit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "../../../oxmalloc-capi/tests/c/check.h"

typedef uint64_t (*work_fn)(uint32_t, uint32_t);
typedef void (*pairs_fn)(size_t, uint64_t);
typedef uint64_t (*calls_fn)(void);
typedef size_t (*caches_fn)(void);

enum { THREADS = 3, LIB_THREADS = 2, ROUNDS = 60 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage; /* 0 started, 1 loaded, 2 closed */
static int worked;
static int alloc_only;
static work_fn work;
static pairs_fn pairs;
static uint64_t sums[THREADS];

static void wait_for(int s) {
    pthread_mutex_lock(&lock);
    while (stage < s) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

static void advance(int s) {
    pthread_mutex_lock(&lock);
    stage = s;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* glibc blocks of many sizes, filled with a pattern. */
static void fill(char **blocks, int n, int tag) {
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(i * 977 % 70000) + 1;
        blocks[i] = malloc(len);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], tag, len);
    }
}

static void release(char **blocks, int n, int tag) {
    for (int i = 0; i < n; i++) {
        size_t len = (size_t)(i * 977 % 70000) + 1;
        CHECK(blocks[i][0] == (char)tag && blocks[i][len - 1] == (char)tag);
        free(blocks[i]);
    }
}

static void *thread(void *arg) {
    int me = (int)(intptr_t)arg;
    char *blocks[100];
    fill(blocks, 100, me + 1);
    wait_for(1);
    if (alloc_only) {
        pairs(16, 1000);
        pairs(3000, 1000);
    } else {
        sums[me] = work(LIB_THREADS, ROUNDS);
    }
    pthread_mutex_lock(&lock);
    worked++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    wait_for(2);
    /* After dlclose: glibc's blocks are still glibc's. */
    release(blocks, 100, me + 1);
    return NULL; /* oxmalloc's thread-exit hook runs in the library */
}

int main(int argc, char **argv) {
    CHECK(argc == 3);
    alloc_only = strcmp(argv[2], "alloc") == 0;
    CHECK(alloc_only || strcmp(argv[2], "work") == 0);
    char *mine[200];
    fill(mine, 200, 'm');
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, thread, (void *)(intptr_t)i) == 0);

    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) fprintf(stderr, "dlopen: %s\n", dlerror());
    CHECK(h != NULL);
    work = (work_fn)dlsym(h, "oxmalloc_dlopen_test_work");
    pairs = (pairs_fn)dlsym(h, "oxmalloc_dlopen_test_pairs");
    calls_fn calls = (calls_fn)dlsym(h, "oxmalloc_dlopen_test_calls");
    caches_fn caches = (caches_fn)dlsym(h, "oxmalloc_dlopen_test_thread_caches");
    CHECK(work && pairs && calls && caches);
    /* The library did not take over malloc: it is glibc's still. */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc != NULL);
    CHECK(dlsym(RTLD_DEFAULT, "malloc") == dlsym(libc, "malloc"));
    dlclose(libc);

    advance(1);
    uint64_t sum = 0;
    if (!alloc_only) {
        sum = work(LIB_THREADS, ROUNDS);
        CHECK(sum != 0);
    }
    pthread_mutex_lock(&lock);
    while (worked < THREADS) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < THREADS && !alloc_only; i++) CHECK(sums[i] == sum);
    /* Each host thread that called the library has its oxmalloc cache (the
     * fast path through the library's static TLS); the library's own
     * threads have ended, and their caches with them. */
    size_t users = THREADS + (alloc_only ? 0 : 1);
    uint64_t called = alloc_only ? 2 * THREADS : THREADS + 1;
    CHECK(caches() == users);
    CHECK(calls() == called);

    CHECK(dlclose(h) == 0);
    advance(2);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);

    /* -z nodelete: the same instance, its state kept, the exited threads'
     * caches retired. */
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    CHECK(calls() == called);
    CHECK(caches() == users - THREADS);
    if (!alloc_only) CHECK(work(LIB_THREADS, ROUNDS) == sum);
    release(mine, 200, 'm');
    printf("checksum %llu\n", (unsigned long long)sum);
    done();
    return 0;
}
