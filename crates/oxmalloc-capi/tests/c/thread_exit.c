/* Allocation from thread destructors that run after oxmalloc's own: pthread
 * key destructors created before and after the allocator's key (glibc runs
 * them in key order, for several rounds while values are set again), and
 * blocks freed by a thread other than the one that allocated them. */
#include <pthread.h>
#include <string.h>
#include "check.h"

static pthread_key_t early, late;
static void *handoff[64];
static int rounds[64];

static void destructor(void *value) {
    /* Allocate and free after the thread's cache may be gone, and hand a
       block to the main thread. */
    size_t slot = (size_t)value - 1;
    for (int i = 0; i < 100; i++) free(malloc((size_t)i * 31 + 1));
    void *big = malloc(1 << 20);
    if (big) memset(big, 2, 1 << 20);
    free(big);
    free(handoff[slot]);
    handoff[slot] = malloc(200);
    if (++rounds[slot] < 3) pthread_setspecific(slot % 2 ? late : early, value);
}

static void *thread(void *arg) {
    size_t slot = (size_t)arg;
    void *mine[100];
    for (int i = 0; i < 100; i++) mine[i] = malloc((size_t)i * 50 + 1);
    for (int i = 0; i < 100; i++) free(mine[i]);
    pthread_setspecific(early, (void *)(slot + 1));
    pthread_setspecific(late, (void *)(slot + 1));
    return NULL;
}

int main(void) {
    CHECK(pthread_key_create(&early, destructor) == 0); /* before the first malloc */
    free(malloc(1));
    CHECK(pthread_key_create(&late, destructor) == 0); /* after the allocator's */
    for (int wave = 0; wave < 4; wave++) {
        pthread_t t[16];
        for (size_t i = 0; i < 16; i++) CHECK(pthread_create(&t[i], NULL, thread, (void *)(wave * 16 + i)) == 0);
        for (int i = 0; i < 16; i++) CHECK(pthread_join(t[i], NULL) == 0);
    }
    for (int i = 0; i < 64; i++) {
        CHECK(handoff[i] != NULL && rounds[i] >= 2);
        memset(handoff[i], 1, 200);
        free(handoff[i]); /* freed by another thread than the one that made it */
    }
    done();
    return 0;
}
