/*
 * pairs.c: the fast path. Built with -fno-builtin so that the compiler
 * keeps every malloc and free.
 *
 *   pairs pair SIZE N    N times: malloc(SIZE), free it
 *   pairs batch SIZE N   N/100 times: 100 mallocs of SIZE, then the 100 frees
 *                        in the same order (glibc's bench-malloc-simple)
 *
 * SIZE 0 cycles through 16, 64, 256, 1024 and 4096 bytes, one size per
 * round of 100 pairs. Under callgrind, instructions per pair are
 * (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up.
 *
 * Prints pairs= and errors=.
 */
#include "common.h"

#define BATCH 100

static const size_t cycle[] = {16, 64, 256, 1024, 4096};

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "pair";
    size_t fixed = (size_t)arg_long(argc, argv, 2, 16);
    long n = arg_long(argc, argv, 3, 1000000);
    int batch = strcmp(mode, "batch") == 0;
    if (!batch && strcmp(mode, "pair") != 0) {
        fprintf(stderr, "usage: pairs pair|batch SIZE N\n");
        return 2;
    }
    void *p[BATCH];
    unsigned long long errors = 0;
    for (long round = 0; round < n / BATCH; round++) {
        size_t size = fixed != 0 ? fixed : cycle[round % 5];
        if (batch) {
            for (int i = 0; i < BATCH; i++)
                p[i] = malloc(size);
            for (int i = 0; i < BATCH; i++) {
                errors += p[i] == NULL;
                free(p[i]);
            }
        } else {
            for (int i = 0; i < BATCH; i++) {
                void *q = malloc(size);
                errors += q == NULL;
                free(q);
            }
        }
    }
    report("pairs", (unsigned long long)(n / BATCH * BATCH));
    report("errors", errors);
    return 0;
}
