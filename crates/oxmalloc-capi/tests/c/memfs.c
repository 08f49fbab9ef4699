/* Under OXMALLOC_MEMFS_PATH the heap is a MAP_SHARED file mapping.
 *   fork      parent and child each see their own copy of every object after
 *             fork(), as with anonymous memory (the child gets private
 *             copies); repeated forks, from several threads' heap state
 *   calloc    with OXMALLOC_MEMFS_LIMIT_MB=4 and the fallback: blocks mixing
 *             file and fallback memory read zero from calloc after reuse
 *   shared    calloc on an injected MAP_SHARED region after a release */
#include "check.h"
#include <oxmalloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void test_fork(void) {
    enum { N = 1000 };
    char *objs[N];
    for (int i = 0; i < N; i++) {
        objs[i] = malloc(100 + i * 50);
        memset(objs[i], 'P', 100 + i * 50);
    }
    char *big = malloc(8 << 20);
    memset(big, 'P', 8 << 20);
    for (int round = 0; round < 20; round++) {
        int pipefd[2];
        CHECK(pipe(pipefd) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* The child writes its own copy and allocates more. */
            for (int i = 0; i < N; i++) {
                if (objs[i][0] != 'P') _exit(10);
                memset(objs[i], 'C', 100 + i * 50);
            }
            memset(big, 'C', 8 << 20);
            for (int i = 0; i < 200; i++) {
                char *q = malloc(5000);
                memset(q, 'C', 5000);
                free(q);
            }
            char c = 'x';
            if (write(pipefd[1], &c, 1) != 1) _exit(11);
            _exit(0);
        }
        close(pipefd[1]);
        char c;
        CHECK(read(pipefd[0], &c, 1) == 1);
        close(pipefd[0]);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* The parent's objects are untouched by the child. */
        for (int i = 0; i < N; i++) CHECK(objs[i][0] == 'P' && objs[i][99 + i * 50] == 'P');
        CHECK(big[0] == 'P' && big[(8 << 20) - 1] == 'P');
        /* And the parent allocates on. */
        char *q = malloc(123456);
        memset(q, 'Q', 123456);
        free(q);
    }
    for (int i = 0; i < N; i++) free(objs[i]);
    free(big);
}

static void test_calloc(void) {
    for (int round = 0; round < 3; round++) {
        unsigned char *a = malloc(3 << 20), *b = malloc(3 << 20);
        memset(a, 0x5A, 3 << 20);
        memset(b, 0x5A, 3 << 20);
        free(a);
        free(b);
        MallocExtension_ReleaseFreeMemory();
        /* 5 MiB reuse the freed 3 + 3 MiB (file and fallback chunks, often
         * adjacent in the address space). */
        unsigned char *z = calloc(1, 5 << 20);
        CHECK(z && zero(z, 5 << 20));
        memset(z, 0x5A, 5 << 20);
        free(z);
        z = calloc(1, 7 << 20);
        CHECK(z && zero(z, 7 << 20));
        free(z);
    }
}

static void test_shared(void) {
    size_t len = 32 << 20;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    unsigned id;
    CHECK(oxmalloc_inject(p, len, NULL, &id) == OXMALLOC_INJECT_OK);
    unsigned char *a = malloc(8 << 20);
    unsigned r;
    CHECK(oxmalloc_region_of(a, &r) == 0 && r == id);
    memset(a, 0xEE, 8 << 20);
    free(a);
    MallocExtension_ReleaseFreeMemory();
    unsigned char *z = calloc(8 << 20, 1);
    CHECK(oxmalloc_region_of(z, &r) == 0 && r == id);
    CHECK(zero(z, 8 << 20));
    free(z);
}

int main(int argc, char **argv) {
    CHECK(argc > 1);
    if (!strcmp(argv[1], "fork")) test_fork();
    else if (!strcmp(argv[1], "calloc")) test_calloc();
    else if (!strcmp(argv[1], "shared")) test_shared();
    else CHECK(0);
    done();
    return 0;
}
