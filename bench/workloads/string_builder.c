/*
 * string_builder.c: strings grown by realloc, one small piece at a time.
 * STRINGS strings are live at once; APPENDS times a random one gets a piece
 * of 1..64 bytes appended with realloc to exactly the new length (as naive
 * string builders do); a string that reaches MAX bytes is checked, freed
 * and started anew.
 *
 *   string_builder STRINGS APPENDS MAX
 *
 * Prints appends=, moves= (reallocs that changed the address) and errors=.
 */
#include "common.h"

struct str {
    char *p;
    size_t len;
};

/* The byte at offset i of every string. */
static char byte_at(size_t i)
{
    return (char)('a' + (i * 7) % 26);
}

static unsigned long long check(const struct str *s)
{
    unsigned long long bad = 0;
    for (size_t i = 0; i < s->len; i += 97)
        bad += s->p[i] != byte_at(i);
    return bad;
}

int main(int argc, char **argv)
{
    long strings = arg_long(argc, argv, 1, 64);
    long appends = arg_long(argc, argv, 2, 20000000);
    size_t max = (size_t)arg_long(argc, argv, 3, 1L << 20);
    if (strings < 1 || max < 64) {
        fprintf(stderr, "usage: string_builder STRINGS APPENDS MAX\n");
        return 2;
    }
    struct str *s = check_alloc(calloc((size_t)strings, sizeof *s), 1);
    uint64_t rng = rng_seed(5);
    unsigned long long moves = 0, errors = 0;
    for (long a = 0; a < appends; a++) {
        struct str *t = &s[rng_next(&rng) % (uint64_t)strings];
        size_t piece = rng_range(&rng, 1, 64);
        char *q = check_alloc(realloc(t->p, t->len + piece), t->len + piece);
        if (t->p != NULL && q != t->p)
            moves++;
        t->p = q;
        for (size_t i = 0; i < piece; i++)
            q[t->len + i] = byte_at(t->len + i);
        t->len += piece;
        if (t->len >= max) {
            errors += check(t);
            free(t->p);
            t->p = NULL;
            t->len = 0;
        }
    }
    for (long i = 0; i < strings; i++) {
        errors += check(&s[i]);
        free(s[i].p);
    }
    free(s);
    report("appends", (unsigned long long)appends);
    report("moves", moves);
    report("errors", errors);
    return 0;
}
