/* liboxmalloc.so loaded late with dlopen into a program that is running on
 * glibc's malloc, with threads that hold glibc blocks: it does not take over
 * malloc (not with RTLD_GLOBAL either: the program, libc.so.6 and what they
 * need come first in the global scope), glibc's blocks are freed by glibc's
 * free as before, and a library loaded afterwards still gets glibc's malloc.
 * The library's own functions, reached through dlsym, work on every thread
 * (its static TLS fits in the space glibc keeps for late libraries). Not run
 * with the library preloaded.
 *
 *   dl_late LIBOXMALLOC DL_LIB local|global   the above, dlopen mode as named
 *   dl_late LIBOXMALLOC DL_LIB foreign        frees a glibc block with the
 *                                             library's free: stops the program */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include "check.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef int (*owner_fn)(const void *);

enum { OWNED = 1, NOT_OWNED = 2, THREADS = 3 };

static malloc_fn ox_malloc;
static free_fn ox_free;
static owner_fn ownership;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stage; /* 0 started, 1 loaded, 2 closed */
static int finished;

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

static void *thread(void *arg) {
    size_t seed = (size_t)arg;
    char *glibc[50];
    for (int i = 0; i < 50; i++) {
        glibc[i] = malloc((size_t)i * 1013 + seed);
        CHECK(glibc[i] != NULL);
        glibc[i][0] = (char)i;
    }
    wait_for(1);
    /* A thread that existed before the library: its static TLS for the
     * library was set up at dlopen time. */
    for (int round = 0; round < 200; round++) {
        void *ox[32];
        for (int i = 0; i < 32; i++) {
            ox[i] = ox_malloc((size_t)(i * 331 + round) % 40000 + 1);
            CHECK(ox[i] != NULL && ownership(ox[i]) == OWNED);
        }
        for (int i = 0; i < 32; i++) ox_free(ox[i]);
    }
    for (int i = 0; i < 50; i++) CHECK(ownership(glibc[i]) == NOT_OWNED);
    pthread_mutex_lock(&lock);
    finished++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    wait_for(2);
    for (int i = 0; i < 50; i++) {
        CHECK(glibc[i][0] == (char)i);
        free(glibc[i]);
    }
    return NULL; /* after dlclose: the library's thread-exit hook runs */
}

int main(int argc, char **argv) {
    CHECK(argc == 4);
    int global = strcmp(argv[3], "global") == 0;
    int foreign = strcmp(argv[3], "foreign") == 0;
    CHECK(global || foreign || strcmp(argv[3], "local") == 0);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc != NULL);
    void *glibc_malloc = dlsym(libc, "malloc"), *glibc_free = dlsym(libc, "free");
    CHECK(dlsym(RTLD_DEFAULT, "malloc") == glibc_malloc);
    CHECK(dlsym(RTLD_DEFAULT, "MallocExtension_GetOwnership") == NULL); /* not preloaded */

    char *before[100];
    for (int i = 0; i < 100; i++) {
        before[i] = malloc((size_t)i * 700 + 1);
        CHECK(before[i] != NULL);
        before[i][0] = 'b';
    }
    pthread_t t[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, thread, (void *)(i + 1)) == 0);

    void *h = dlopen(argv[1], RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL));
    if (!h) fprintf(stderr, "dlopen: %s\n", dlerror());
    CHECK(h != NULL);
    ox_malloc = (malloc_fn)dlsym(h, "malloc");
    ox_free = (free_fn)dlsym(h, "free");
    ownership = (owner_fn)dlsym(h, "MallocExtension_GetOwnership");
    CHECK(ox_malloc && ox_free && ownership);
    CHECK((void *)ox_malloc != glibc_malloc && (void *)ox_free != glibc_free);
    /* Nothing was interposed: the program's malloc and free are glibc's. */
    CHECK(dlsym(RTLD_DEFAULT, "malloc") == glibc_malloc);
    CHECK(dlsym(RTLD_DEFAULT, "free") == glibc_free);
    char *after = malloc(100);
    CHECK(after != NULL && ownership(after) == NOT_OWNED);

    if (foreign) {
        printf("foreign=%p\n", (void *)before[1]);
        fflush(stdout);
        ox_free(before[1]); /* stops the program with a message */
        printf("not stopped\n");
        return 1;
    }

    /* A library loaded now binds malloc to glibc too. */
    void *dl = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    CHECK(dl != NULL);
    malloc_fn lib_alloc = (malloc_fn)dlsym(dl, "lib_alloc");
    CHECK(lib_alloc != NULL);
    void *from_lib = lib_alloc(100);
    CHECK(from_lib != NULL && ownership(from_lib) == NOT_OWNED);
    free(from_lib);
    CHECK(dlclose(dl) == 0);

    advance(1);
    for (int i = 0; i < 1000; i++) {
        void *p = ox_malloc((size_t)i * 97 + 1);
        CHECK(p != NULL && ownership(p) == OWNED);
        ox_free(p);
    }
    /* glibc's blocks of before the load go back to glibc. */
    for (int i = 0; i < 100; i++) {
        CHECK(before[i][0] == 'b' && ownership(before[i]) == NOT_OWNED);
        free(before[i]);
    }
    free(after);
    pthread_mutex_lock(&lock);
    while (finished < THREADS) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    /* The library is linked with -z nodelete: dlclose keeps it mapped, so
     * the thread-exit hooks of the threads that used it still have their
     * code when the threads end, after it. */
    CHECK(dlclose(h) == 0);
    advance(2);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    done();
    return 0;
}
