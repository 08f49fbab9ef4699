/* glibc's behaviour at the edges, one function at a time (glibc 2.36). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "oxmalloc.h"

void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
void cfree(void *p);
void *__libc_malloc(size_t);
void __libc_free(void *);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void *__libc_valloc(size_t);
void *__libc_pvalloc(size_t);

static int owned(void *p) { return MallocExtension_GetOwnership(p) == MallocExtension_kOwned; }

static void fill(unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}
static int filled(const unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7)) return 0;
    return 1;
}

/* Sizes whose rounding to pages or classes would overflow. */
static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095, SIZE_MAX - 8191,
                              SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX, (size_t)1 << 62};
#define NHUGE (sizeof huge / sizeof huge[0])

static void test_malloc(void) {
    void *a = malloc(0), *b = malloc(0);
    CHECK(a && b && a != b && owned(a) && owned(b));
    free(a);
    free(b);
    for (size_t i = 0; i < NHUGE; i++) {
        errno = 0;
        CHECK(malloc(huge[i]) == NULL && errno == ENOMEM);
    }
    size_t sizes[] = {1, 7, 8, 15, 16, 17, 100, 1000, 4096, 100000, 262144, 262145, 1 << 20, 100 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = malloc(sizes[i]);
        CHECK(p && owned(p));
        CHECK(malloc_usable_size(p) >= sizes[i]);
        fill(p, malloc_usable_size(p), (unsigned char)i);
        CHECK(filled(p, malloc_usable_size(p), (unsigned char)i));
        free(p);
    }
}

static void test_free(void) {
    /* free keeps errno, for every size (large ones go back to the page heap,
       which may release memory with madvise). */
    size_t sizes[] = {0, 16, 5000, 300000, 8 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p);
        errno = EBADF;
        free(p);
        CHECK(errno == EBADF);
    }
    errno = EILSEQ;
    free(NULL);
    CHECK(errno == EILSEQ);
    /* The other functions that free keep it too. */
    void *p = malloc(10);
    errno = EBADF;
    cfree(p);
    CHECK(errno == EBADF);
    p = malloc(100);
    free_sized(p, 100);
    CHECK(errno == EBADF);
    p = aligned_alloc(64, 100);
    free_aligned_sized(p, 64, 100);
    CHECK(errno == EBADF);
    p = malloc(1 << 20);
    CHECK(realloc(p, 0) == NULL);
    CHECK(errno == EBADF);
}

static void test_calloc(void) {
    size_t sizes[] = {0, 1, 16, 100, 4000, 70000, 300000, 3 << 20};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            /* Dirty memory first, so a reused block must be cleared. */
            unsigned char *d = malloc(sizes[i]);
            CHECK(d);
            memset(d, 0xAB, sizes[i]);
            free(d);
            unsigned char *p = calloc(1, sizes[i]);
            CHECK(p);
            for (size_t j = 0; j < sizes[i]; j++) CHECK(p[j] == 0);
            free(p);
            p = calloc(sizes[i], 1);
            CHECK(p);
            for (size_t j = 0; j < sizes[i]; j++) CHECK(p[j] == 0);
            free(p);
        }
    }
    struct { size_t n, s; } over[] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX}, {3, SIZE_MAX / 3 + 1},
    };
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        errno = 0;
        CHECK(calloc(over[i].n, over[i].s) == NULL && errno == ENOMEM);
    }
    for (size_t i = 0; i < NHUGE; i++) {
        errno = 0;
        CHECK(calloc(1, huge[i]) == NULL && errno == ENOMEM);
    }
    void *z = calloc(0, 0);
    CHECK(z && owned(z));
    free(z);
}

static void test_realloc(void) {
    /* realloc(NULL, n) is malloc(n). */
    unsigned char *p = realloc(NULL, 40);
    CHECK(p && owned(p));
    fill(p, 40, 1);
    /* Growing and shrinking keep the contents, across small and large. */
    size_t steps[] = {41, 100, 5000, 300000, 2 << 20, 300000, 1000, 24, 3 << 20, 33};
    size_t kept = 40;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        p = realloc(p, steps[i]);
        CHECK(p && owned(p));
        size_t n = kept < steps[i] ? kept : steps[i];
        CHECK(filled(p, n, 1));
        fill(p, steps[i], 1);
        kept = steps[i];
        CHECK(malloc_usable_size(p) >= steps[i]);
    }
    /* Failure leaves the block alone. */
    for (size_t i = 0; i < NHUGE; i++) {
        errno = 0;
        CHECK(realloc(p, huge[i]) == NULL && errno == ENOMEM);
        CHECK(filled(p, kept, 1));
    }
    /* realloc(p, 0) frees and returns NULL. */
    CHECK(realloc(p, 0) == NULL);
    /* realloc(NULL, 0) is malloc(0): a unique pointer. */
    void *q = realloc(NULL, 0);
    CHECK(q && owned(q));
    free(q);
    /* realloc of aligned blocks. */
    unsigned char *a = memalign(4096, 100);
    CHECK(a && ((uintptr_t)a & 4095) == 0);
    fill(a, 100, 3);
    a = realloc(a, 50000);
    CHECK(a && filled(a, 100, 3));
    free(a);
}

static void test_reallocarray(void) {
    unsigned char *p = reallocarray(NULL, 10, 10);
    CHECK(p && owned(p));
    fill(p, 100, 9);
    p = reallocarray(p, 1000, 10);
    CHECK(p && filled(p, 100, 9));
    errno = 0;
    CHECK(reallocarray(p, SIZE_MAX, 2) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(p, (size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM);
    CHECK(filled(p, 100, 9));
    CHECK(reallocarray(p, 0, 10) == NULL); /* realloc(p, 0): freed */
}

static void test_posix_memalign(void) {
    size_t bad[] = {0, 1, 2, 4, 3, 24, 48, 100, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *out = (void *)0x1234;
        errno = EILSEQ;
        CHECK(posix_memalign(&out, bad[i], 64) == EINVAL);
        CHECK(out == (void *)0x1234 && errno == EILSEQ);
    }
    for (size_t align = sizeof(void *); align <= ((size_t)1 << 24); align <<= 1) {
        size_t sizes[] = {0, 1, align - 1, align, align + 1, 3 * align, 100000};
        for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
            void *out = NULL;
            errno = EILSEQ;
            CHECK(posix_memalign(&out, align, sizes[j]) == 0 && errno == EILSEQ);
            CHECK(out && ((uintptr_t)out & (align - 1)) == 0 && owned(out));
            CHECK(malloc_usable_size(out) >= sizes[j]);
            memset(out, 0x5A, sizes[j]);
            free(out);
        }
    }
    for (size_t i = 0; i < NHUGE; i++) {
        void *out = (void *)0x1234;
        errno = EILSEQ;
        CHECK(posix_memalign(&out, 64, huge[i]) == ENOMEM);
        /* glibc sets errno too (tst-malloc-thread-fail checks it). */
        CHECK(out == (void *)0x1234 && errno == ENOMEM);
        errno = EILSEQ;
        CHECK(posix_memalign(&out, 1 << 16, huge[i]) == ENOMEM && errno == ENOMEM);
    }
}

static void test_aligned_alloc_memalign(void) {
    /* Non-power-of-two alignments round up. */
    struct { size_t ask, got; } odd[] = {{3, 4}, {24, 32}, {48, 64}, {100, 128}, {4097, 8192}, {12288, 16384}};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        void *a = aligned_alloc(odd[i].ask, 10);
        void *m = memalign(odd[i].ask, 1000);
        void *l = __libc_memalign(odd[i].ask, 300000);
        CHECK(a && m && l);
        CHECK(((uintptr_t)a & (odd[i].got - 1)) == 0);
        CHECK(((uintptr_t)m & (odd[i].got - 1)) == 0);
        CHECK(((uintptr_t)l & (odd[i].got - 1)) == 0);
        free(a);
        free(m);
        free(l);
    }
    /* Alignment 0 and 1 are fine; size need not be a multiple. */
    void *p = memalign(0, 10), *q = aligned_alloc(1, 3), *r = aligned_alloc(256, 1);
    CHECK(p && q && r && ((uintptr_t)r & 255) == 0);
    free(p);
    free(q);
    free(r);
    /* An alignment that cannot be rounded up is EINVAL. */
    errno = 0;
    CHECK(memalign(SIZE_MAX / 2 + 2, 10) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(aligned_alloc(SIZE_MAX, 10) == NULL && errno == EINVAL);
    for (size_t i = 0; i < NHUGE; i++) {
        errno = 0;
        CHECK(memalign(64, huge[i]) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(aligned_alloc(1 << 20, huge[i]) == NULL && errno == ENOMEM);
    }
}

static void test_valloc_pvalloc(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {0, 1, 100, page - 1, page, page + 1, 5 * page + 3, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *v = valloc(sizes[i]), *lv = __libc_valloc(sizes[i]);
        void *pv = pvalloc(sizes[i]), *lpv = __libc_pvalloc(sizes[i]);
        CHECK(v && lv && pv && lpv);
        CHECK(((uintptr_t)v & (page - 1)) == 0 && ((uintptr_t)lv & (page - 1)) == 0);
        CHECK(((uintptr_t)pv & (page - 1)) == 0 && ((uintptr_t)lpv & (page - 1)) == 0);
        size_t rounded = (sizes[i] + page - 1) & ~(page - 1);
        CHECK(malloc_usable_size(v) >= sizes[i]);
        CHECK(malloc_usable_size(pv) >= rounded);
        memset(pv, 1, rounded); /* pvalloc gives whole pages */
        free(v);
        free(lv);
        free(pv);
        free(lpv);
    }
    /* Rounding that overflows must fail, never wrap into a small block. */
    size_t over[] = {SIZE_MAX, SIZE_MAX - page + 2, SIZE_MAX - 1};
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        errno = 0;
        CHECK(pvalloc(over[i]) == NULL && errno == ENOMEM);
        errno = 0;
        CHECK(valloc(over[i]) == NULL && errno == ENOMEM);
    }
}

static void test_usable_size(void) {
    CHECK(malloc_usable_size(NULL) == 0);
    for (size_t n = 0; n < 70000; n += (n < 512 ? 1 : n / 8)) {
        unsigned char *p = malloc(n);
        CHECK(p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= n);
        CHECK(u == MallocExtension_GetAllocatedSize(p));
        memset(p, 0xEE, u); /* the whole usable size is ours */
        free(p);
    }
}

static void test_libc_aliases(void) {
    void *a = __libc_malloc(100);
    void *b = __libc_calloc(10, 10);
    CHECK(a && b && owned(a) && owned(b));
    for (int i = 0; i < 100; i++) CHECK(((unsigned char *)b)[i] == 0);
    a = __libc_realloc(a, 100000);
    CHECK(a && owned(a));
    errno = EBADF;
    __libc_free(a);
    __libc_free(b);
    CHECK(errno == EBADF);
}

int main(void) {
    test_malloc();
    test_free();
    test_calloc();
    test_realloc();
    test_reallocarray();
    test_posix_memalign();
    test_aligned_alloc_memalign();
    test_valloc_pvalloc();
    test_usable_size();
    test_libc_aliases();
    done();
    return 0;
}
