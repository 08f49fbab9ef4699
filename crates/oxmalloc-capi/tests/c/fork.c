/* A multi-threaded program that forks 100 times while its other threads keep
 * allocating and hold stdio locks; each child allocates (small and large
 * blocks, from a new thread too), prints, and exits. A child that deadlocks
 * is killed by its alarm and fails the test. */
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

static void *child_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 13 + 1));
    return malloc(77);
}

static int child(int k) {
    alarm(20);
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
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(i + 1)) == 0);
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
    for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
    done();
    return 0;
}
