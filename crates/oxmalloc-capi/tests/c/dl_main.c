/* A program that loads dl_lib.so with dlopen: blocks allocated in the library
 * are freed by the program and the reverse, from several threads, then the
 * library is unloaded and loaded again. Run with liboxmalloc preloaded. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include "check.h"

typedef void *(*alloc_fn)(size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef const char *(*block_fn)(void);
typedef int (*owner_fn)(const void *);

static alloc_fn lib_alloc;
static realloc_fn lib_realloc;
static free_fn lib_free;
static owner_fn ownership;

static void *worker(void *arg) {
    size_t seed = (size_t)arg;
    void *mine[64];
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 64; i++) {
            size_t n = (seed * 7919 + (size_t)i * 104729 + (size_t)round) % 20000 + 1;
            if (i % 2) {
                mine[i] = lib_alloc(n); /* library allocates, program frees */
                CHECK(mine[i] && ((unsigned char *)mine[i])[n - 1] == 0x6C);
            } else {
                mine[i] = malloc(n); /* program allocates, library frees */
                CHECK(mine[i]);
                memset(mine[i], 1, n);
                mine[i] = lib_realloc(mine[i], n + 100);
                CHECK(mine[i]);
            }
            CHECK(ownership(mine[i]) == 1);
        }
        for (int i = 0; i < 64; i++) {
            if (i % 2) free(mine[i]);
            else lib_free(mine[i]);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    ownership = (owner_fn)dlsym(RTLD_DEFAULT, "MallocExtension_GetOwnership");
    CHECK(ownership != NULL); /* liboxmalloc is preloaded */
    for (int load = 0; load < 3; load++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) fprintf(stderr, "dlopen: %s\n", dlerror());
        CHECK(h != NULL);
        lib_alloc = (alloc_fn)dlsym(h, "lib_alloc");
        lib_realloc = (realloc_fn)dlsym(h, "lib_realloc");
        lib_free = (free_fn)dlsym(h, "lib_free");
        block_fn block = (block_fn)dlsym(h, "lib_constructor_block");
        CHECK(lib_alloc && lib_realloc && lib_free && block);
        CHECK(strcmp(block(), "made in the library's constructor") == 0);
        CHECK(ownership(block()) == 1);
        pthread_t t[4];
        for (size_t i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
        worker((void *)99);
        for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
        CHECK(dlclose(h) == 0);
    }
    done();
    return 0;
}
