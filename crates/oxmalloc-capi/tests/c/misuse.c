/* The misuse suite (docs/MISUSE.md): one scenario per run, named by the
 * argument. Each scenario prints the address(es) it misuses as `addr=%p`
 * lines, misuses the allocator the way a real bug does, gives the allocator
 * the chance to notice (further frees or allocations), then prints
 * `survived <scenario>` and leaves with _exit(0).
 *
 * An allocator *catches* a scenario when the process stops (abort or an error
 * exit) with a message on standard error before the `survived` line. The
 * `clean` scenario does everything right and must survive everywhere.
 * Exit status 77: the allocator lacks the function the scenario needs
 * (free_sized before C23 libraries). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Hides a pointer's origin from the compiler, which would otherwise warn
 * about (or optimise) the misuse it can see. */
static void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void addr(const void *p) {
    printf("addr=%p\n", p);
    fflush(stdout);
}

static void survived(const char *scenario) {
    printf("survived %s\n", scenario);
    fflush(stdout);
    _exit(0);
}

typedef void (*free_sized_fn)(void *, size_t);

/* free_sized from whichever library provides it (the allocator under test or
 * the C library), or exit 77. */
static free_sized_fn find_free_sized(void) {
    free_sized_fn f = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
    if (!f) {
        printf("unsupported: no free_sized\n");
        fflush(stdout);
        _exit(77);
    }
    return f;
}

/* Allocates and frees `n` blocks of mixed sizes (all held, then all freed):
 * enough traffic to move freed objects out of a thread cache. */
static void churn(size_t n) {
    void **held = malloc(n * sizeof *held);
    if (!held) _exit(2);
    for (size_t i = 0; i < n; i++) {
        held[i] = malloc(i % 3 == 0 ? 64 : (i * 37) % 2000 + 1);
        if (!held[i]) _exit(2);
        memset(held[i], 0x5a, 8);
    }
    for (size_t i = 0; i < n; i++) free(held[i]);
    free(held);
}

static char big_static[1 << 20] __attribute__((aligned(4096)));

static void clean(void) {
    /* Zero-byte blocks, several at once (the hardened build gives them room
     * for a free list's link and a canary). */
    void *zero[64];
    for (int i = 0; i < 64; i++) zero[i] = malloc(0);
    for (int i = 0; i < 64; i++) free(zero[i]);
    for (int i = 0; i < 64; i++) free(malloc(0));
    void *small[100];
    for (int i = 0; i < 100; i++) {
        small[i] = malloc((size_t)i * 7 + 1);
        if (!small[i]) _exit(2);
        memset(small[i], 1, (size_t)i * 7 + 1);
    }
    for (int i = 0; i < 100; i++) free(small[i]);
    char *z = calloc(100, 10);
    if (!z || z[999] != 0) _exit(2);
    z = realloc(z, 100000);
    if (!z) _exit(2);
    free(z);
    void *a = NULL;
    if (posix_memalign(&a, 4096, 100) != 0 || (uintptr_t)a % 4096) _exit(2);
    free(a);
    a = aligned_alloc(64, 640);
    if (!a) _exit(2);
    free(a);
    char *large = malloc(1 << 20);
    if (!large) _exit(2);
    memset(large, 2, 1 << 20);
    free(large);
    free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
    if (fs) {
        void *p = malloc(64);
        fs(p, 64);
    }
    churn(10000);
}

/* Finds, among `n` blocks, one whose nearest block above it starts within
 * `gap` bytes of its end (its neighbour); returns its index, the neighbour's
 * in *next. */
static int adjacent_pair(void **b, int n, size_t usable, size_t gap, int *next) {
    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if ((char *)b[j] > (char *)b[i] &&
                (best < 0 || (char *)b[j] < (char *)b[best]))
                best = j;
        if (best >= 0 && (size_t)((char *)b[best] - (char *)b[i]) <= usable + gap) {
            *next = best;
            return i;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: misuse SCENARIO\n");
        return 2;
    }
    const char *s = argv[1];
    /* Warm the allocator up (and stdio's buffer) before the misuse. */
    free(malloc(1));

    if (strcmp(s, "clean") == 0) {
        clean();
    } else if (strcmp(s, "double-free") == 0) {
        void *p = malloc(64);
        addr(p);
        free(p);
        free(opaque(p));
        free(malloc(64));
    } else if (strcmp(s, "delayed-double-free") == 0) {
        void *p = malloc(64);
        addr(p);
        free(p);
        churn(10000);
        free(opaque(p));
        churn(10000);
    } else if (strcmp(s, "interleaved-double-free") == 0) {
        void *a = malloc(64), *b = malloc(64);
        addr(a);
        free(a);
        free(b);
        free(opaque(a));
        for (int i = 0; i < 4; i++) memset(malloc(64), 0x5a, 64);
    } else if (strcmp(s, "invalid-free") == 0) {
        char *p = big_static + 4096 * 16;
        addr(p);
        free(opaque(p));
    } else if (strcmp(s, "stack-free") == 0) {
        char buf[256] __attribute__((aligned(64)));
        memset(buf, 0, sizeof buf);
        addr(buf + 64);
        free(opaque(buf + 64));
    } else if (strcmp(s, "unaligned-free") == 0) {
        char *p = malloc(64);
        addr(p + 1);
        free(opaque(p + 1));
        for (int i = 0; i < 4; i++) memset(malloc(64), 0x5a, 64);
    } else if (strcmp(s, "interior-free") == 0) {
        char *p = malloc(64);
        addr(p + 16);
        free(opaque(p + 16));
        for (int i = 0; i < 4; i++) memset(malloc(64), 0x5a, 64);
    } else if (strcmp(s, "interior-free-large") == 0) {
        char *p = malloc(1 << 20);
        memset(p, 1, 1 << 20);
        addr(p + 4096);
        free(opaque(p + 4096));
        free(malloc(1 << 20));
    } else if (strcmp(s, "uaf-write") == 0) {
        /* Sixteen blocks freed in order: the victim, fifth, sits inside the
         * free list, so allocating reads the link the write destroyed. */
        char *b[16];
        for (int i = 0; i < 16; i++) b[i] = malloc(64);
        char *p = b[4];
        addr(p);
        for (int i = 0; i < 16; i++) free(b[i]);
        memset(opaque(p), 0x41, 64); /* the write after free */
        for (int i = 0; i < 100; i++) {
            char *q = malloc(64);
            if (q) memset(q, 0x5a, 64);
        }
    } else if (strcmp(s, "overflow") == 0) {
        enum { N = 64 };
        void *b[N];
        for (int i = 0; i < N; i++) b[i] = malloc(24);
        size_t usable = malloc_usable_size(b[0]);
        int j, i = adjacent_pair(b, N, usable, 32, &j);
        if (i < 0) {
            fprintf(stderr, "no two adjacent blocks\n");
            return 2;
        }
        addr(b[i]);
        addr(b[j]);
        memset((char *)opaque(b[i]) + usable, 0x41, 8); /* 8 bytes too far */
        free(b[i]);
        free(b[j]);
        for (int k = 0; k < N; k++)
            if (k != i && k != j) free(b[k]);
        for (int k = 0; k < N; k++) memset(malloc(24), 0x5a, 24);
    } else if (strcmp(s, "wrong-size-free-sized") == 0) {
        free_sized_fn fs = find_free_sized();
        void *p = malloc(64);
        addr(p);
        fs(opaque(p), 4096); /* a 64-byte block freed as 4096 bytes */
        for (int i = 0; i < 4; i++) {
            memset(malloc(64), 0x5a, 64);
            memset(malloc(4096), 0x5a, 4096);
        }
    } else {
        fprintf(stderr, "unknown scenario %s\n", s);
        return 2;
    }
    survived(s);
}
