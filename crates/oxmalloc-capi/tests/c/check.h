/* Shared by the C test programs: CHECK(cond) reports the failing line and
 * exits with status 1; checks counts what passed. */
#ifndef CHECK_H
#define CHECK_H
#include <stdio.h>
#include <stdlib.h>

static long checks;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            exit(1);                                                         \
        }                                                                    \
        __atomic_fetch_add(&checks, 1, __ATOMIC_RELAXED);                   \
    } while (0)

/* Prints the number of checks and the final "ok" line the tests look for. */
static inline void done(void) {
    printf("%ld checks\nok\n", checks);
}
#endif
