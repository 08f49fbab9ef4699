/* Alignment of every allocation function at many sizes; every block is
 * filled with its own pattern while all of a round are live, so overlapping
 * blocks would be caught too. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

/* The alignment malloc(size) promises: max_align_t (16) from 16 bytes up,
 * else the largest power of two not above the size. */
static size_t natural(size_t size) {
    size_t a = 1;
    while (a * 2 <= size && a < 16) a *= 2;
    return a;
}

enum { MALLOC, CALLOC, REALLOC, REALLOCARRAY, MEMALIGN, ALIGNED_ALLOC, POSIX_MEMALIGN, VALLOC,
       PVALLOC, NFUNCS };

static void *alloc_with(int f, size_t size, size_t align) {
    void *p = NULL;
    switch (f) {
    case MALLOC: return malloc(size);
    case CALLOC: return calloc(1, size);
    case REALLOC: return size ? realloc(malloc(size / 2 + 1), size) : realloc(NULL, 0);
    case REALLOCARRAY: return reallocarray(NULL, 1, size);
    case MEMALIGN: return memalign(align, size);
    case ALIGNED_ALLOC: return aligned_alloc(align, size);
    case POSIX_MEMALIGN: return posix_memalign(&p, align, size) == 0 ? p : NULL;
    case VALLOC: return valloc(size);
    default: return pvalloc(size);
    }
}

static size_t expected(int f, size_t size, size_t align, size_t page) {
    switch (f) {
    case MEMALIGN: case ALIGNED_ALLOC: case POSIX_MEMALIGN: return align;
    case VALLOC: case PVALLOC: return page;
    default: return natural(size);
    }
}

#define MAXLIVE 4096
static unsigned char *live[MAXLIVE];
static size_t live_size[MAXLIVE];

int main(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[512];
    size_t n = 0;
    for (size_t s = 0; s <= 256; s++) sizes[n++] = s;
    for (size_t p2 = 512; p2 <= ((size_t)4 << 20); p2 *= 2) {
        sizes[n++] = p2 - 1;
        sizes[n++] = p2;
        sizes[n++] = p2 + 1;
        sizes[n++] = p2 + p2 / 2;
    }
    for (int f = 0; f < NFUNCS; f++) {
        for (size_t align = sizeof(void *); align <= ((size_t)1 << 21); align *= 4) {
            if (f != MEMALIGN && f != ALIGNED_ALLOC && f != POSIX_MEMALIGN && align > sizeof(void *))
                break; /* one round for the functions without an alignment */
            size_t nlive = 0;
            for (size_t i = 0; i < n; i++) {
                if (sizes[i] > ((size_t)1 << 20) && align > 4096) continue; /* keep memory modest */
                unsigned char *p = alloc_with(f, sizes[i], align);
                if (!p) fprintf(stderr, "function %d size %zu align %zu -> NULL\n", f, sizes[i], align);
                CHECK(p != NULL);
                size_t want = expected(f, sizes[i], align, page);
                if (((uintptr_t)p & (want - 1)) != 0)
                    fprintf(stderr, "function %d size %zu align %zu -> %p\n", f, sizes[i], align, (void *)p);
                CHECK(((uintptr_t)p & (want - 1)) == 0);
                CHECK(malloc_usable_size(p) >= sizes[i]);
                memset(p, (int)(i & 0xff), sizes[i]);
                live[nlive] = p;
                live_size[nlive++] = i;
            }
            for (size_t k = 0; k < nlive; k++) {
                size_t i = live_size[k];
                for (size_t j = 0; j < sizes[i]; j++) CHECK(live[k][j] == (unsigned char)(i & 0xff));
                free(live[k]);
            }
        }
    }
    done();
    return 0;
}
