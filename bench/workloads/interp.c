/*
 * interp.c: a single-threaded interpreter's allocation pattern, in the
 * manner of cfrac and espresso: many small, short-lived objects. An
 * environment of VARS big integers (arrays of 32-bit limbs, at most LIMBS
 * long) is updated STEPS times; every operation allocates its result and
 * frees the value it replaces, builds a short argument list of cons cells
 * for the "call" and frees it, and every eighth step prints a value into a
 * freshly allocated string.
 *
 *   interp STEPS VARS LIMBS
 *
 * Prints steps=, checksum= (the same for every correct allocator) and
 * errors=.
 */
#include "common.h"

struct num {
    uint32_t n; /* limbs in use */
    uint32_t d[];
};

struct cell {
    struct cell *next;
    uint64_t value;
};

static struct num *num_new(uint32_t n)
{
    struct num *x = xmalloc(sizeof *x + sizeof(uint32_t) * n);
    x->n = n;
    return x;
}

/* a + b, cut to `limit` limbs. */
static struct num *num_add(const struct num *a, const struct num *b, uint32_t limit)
{
    uint32_t n = (a->n > b->n ? a->n : b->n) + 1;
    if (n > limit)
        n = limit;
    struct num *r = num_new(n);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < n; i++) {
        carry += (uint64_t)(i < a->n ? a->d[i] : 0) + (i < b->n ? b->d[i] : 0);
        r->d[i] = (uint32_t)carry;
        carry >>= 32;
    }
    return r;
}

/* a * k + c, cut to `limit` limbs. */
static struct num *num_mul_small(const struct num *a, uint32_t k, uint32_t c, uint32_t limit)
{
    uint32_t n = a->n + 1 > limit ? limit : a->n + 1;
    struct num *r = num_new(n);
    uint64_t carry = c;
    for (uint32_t i = 0; i < n; i++) {
        carry += (uint64_t)(i < a->n ? a->d[i] : 0) * k;
        r->d[i] = (uint32_t)carry;
        carry >>= 32;
    }
    return r;
}

/* a * b through a temporary full product, then cut to `limit` limbs. */
static struct num *num_mul(const struct num *a, const struct num *b, uint32_t limit)
{
    struct num *full = num_new(a->n + b->n);
    memset(full->d, 0, sizeof(uint32_t) * full->n);
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            carry += (uint64_t)a->d[i] * b->d[j] + full->d[i + j];
            full->d[i + j] = (uint32_t)carry;
            carry >>= 32;
        }
        full->d[i + b->n] = (uint32_t)carry;
    }
    uint32_t n = full->n > limit ? limit : full->n;
    struct num *r = num_new(n);
    memcpy(r->d, full->d, sizeof(uint32_t) * n);
    free(full);
    return r;
}

static char *num_print(const struct num *a)
{
    char *s = xmalloc(8 * (size_t)a->n + 1);
    for (uint32_t i = 0; i < a->n; i++)
        snprintf(s + 8 * i, 9, "%08x", a->d[a->n - 1 - i]);
    s[8 * a->n] = '\0';
    return s;
}

int main(int argc, char **argv)
{
    long steps = arg_long(argc, argv, 1, 5000000);
    long vars = arg_long(argc, argv, 2, 64);
    uint32_t limbs = (uint32_t)arg_long(argc, argv, 3, 12);
    if (steps < 1 || vars < 2 || limbs < 2) {
        fprintf(stderr, "usage: interp STEPS VARS LIMBS\n");
        return 2;
    }
    struct num **v = xmalloc(sizeof *v * (size_t)vars);
    for (long i = 0; i < vars; i++) {
        v[i] = num_new(1);
        v[i]->d[0] = (uint32_t)i + 1;
    }
    uint64_t rng = rng_seed(7);
    unsigned long long errors = 0, printed = 0;
    for (long s = 0; s < steps; s++) {
        long dst = (long)(rng_next(&rng) % (uint64_t)vars);
        long a = (long)(rng_next(&rng) % (uint64_t)vars);
        long b = (long)(rng_next(&rng) % (uint64_t)vars);

        /* The call's argument list. */
        struct cell *args = NULL;
        int nargs = 2 + (int)(rng_next(&rng) % 6);
        for (int k = 0; k < nargs; k++) {
            struct cell *c = xmalloc(sizeof *c);
            c->next = args;
            c->value = (uint64_t)k;
            args = c;
        }

        struct num *r;
        switch (rng_next(&rng) % 4) {
        case 0:
            r = num_mul(v[a], v[b], limbs);
            break;
        case 1:
            r = num_add(v[a], v[b], limbs);
            break;
        default:
            r = num_mul_small(v[a], (uint32_t)rng_next(&rng) | 1, (uint32_t)s, limbs);
            break;
        }
        free(v[dst]);
        v[dst] = r;

        int counted = 0;
        while (args != NULL) {
            struct cell *next = args->next;
            counted++;
            free(args);
            args = next;
        }
        errors += counted != nargs;

        if ((s & 7) == 0) {
            char *text = num_print(v[dst]);
            printed += strlen(text) == 8 * (size_t)v[dst]->n ? 1 : 0;
            free(text);
        }
    }
    uint64_t checksum = 0;
    for (long i = 0; i < vars; i++) {
        for (uint32_t k = 0; k < v[i]->n; k++)
            checksum = checksum * 31 + v[i]->d[k];
        free(v[i]);
    }
    free(v);
    errors += printed != (unsigned long long)((steps + 7) / 8);
    report("steps", (unsigned long long)steps);
    report("checksum", checksum);
    report("errors", errors);
    return 0;
}
