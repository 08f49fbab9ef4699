/*
 * realloc_growth.c: one block grown with realloc in steps of STEP bytes up
 * to FINAL bytes, each new step filled (a log or a buffer being appended
 * to). An allocator that moves the block on every step copies O(n^2)
 * bytes; one that grows it in place, or remaps it, does not.
 *
 *   realloc_growth FINAL STEP
 *
 * Prints steps=, moves= (how often the address changed) and errors= (steps
 * whose contents did not survive the moves).
 */
#include "common.h"

int main(int argc, char **argv)
{
    size_t final = (size_t)arg_long(argc, argv, 1, 256L << 20);
    size_t step = (size_t)arg_long(argc, argv, 2, 64L << 10);
    if (step < 1 || final < step) {
        fprintf(stderr, "usage: realloc_growth FINAL STEP\n");
        return 2;
    }
    unsigned char *p = NULL;
    unsigned long long moves = 0, steps = 0;
    for (size_t size = step; size <= final; size += step) {
        unsigned char *q = check_alloc(realloc(p, size), size);
        if (p != NULL && q != p)
            moves++;
        p = q;
        memset(p + size - step, (int)(steps & 0xff), step);
        steps++;
    }
    unsigned long long errors = 0;
    for (unsigned long long i = 0; i < steps; i++) {
        const unsigned char *s = p + i * step;
        if (s[0] != (unsigned char)(i & 0xff) || s[step - 1] != (unsigned char)(i & 0xff))
            errors++;
    }
    free(p);
    report("steps", steps);
    report("moves", moves);
    report("errors", errors);
    return 0;
}
