/*
 * common.h: what every workload of `oxmalloc bench` shares.
 *
 * A workload is one C program that takes its sizes as arguments, does a fixed
 * amount of work through malloc and friends, checks what it wrote into its
 * blocks, and prints its own figures on standard output as `key=value` lines
 * (the runner measures wall time, CPU time and peak RSS itself). A non-zero
 * `errors=` line, or a non-zero exit status, marks the run as failed: a block
 * that lost its contents means the allocator handed out overlapping memory.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- random numbers (xorshift64*, one state per thread) ---------------- */

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A state that is never zero, different for every seed. */
static inline uint64_t rng_seed(uint64_t seed)
{
    return (seed + 1) * 0x9E3779B97F4A7C15ULL | 1;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: as many sizes between 16 and 32 as between 1024
 * and 2048, the shape of real programs' size distributions. */
static inline size_t rng_log_range(uint64_t *s, size_t lo, size_t hi)
{
    unsigned lo_bits = 63 - (unsigned)__builtin_clzll(lo);
    unsigned hi_bits = 63 - (unsigned)__builtin_clzll(hi);
    unsigned bits = lo_bits + (unsigned)(rng_next(s) % (hi_bits - lo_bits + 1));
    size_t base = (size_t)1 << bits;
    size_t v = base + (size_t)(rng_next(s) % base);
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- arguments and results ----------------------------------------------- */

/* Argument i (1-based) as a number, or def when absent. */
static inline long arg_long(int argc, char **argv, int i, long def)
{
    if (i >= argc)
        return def;
    char *end;
    long v = strtol(argv[i], &end, 0);
    if (*end != '\0' || v < 0) {
        fprintf(stderr, "%s: argument %d (%s) is not a non-negative number\n", argv[0], i,
                argv[i]);
        exit(2);
    }
    return v;
}

static inline void report(const char *key, unsigned long long value)
{
    printf("%s=%llu\n", key, value);
}

static inline void report_f(const char *key, double value)
{
    printf("%s=%.6g\n", key, value);
}

/* Allocation failures are fatal: every workload stays far below the machine. */
static inline void *check_alloc(void *p, size_t size)
{
    if (p == NULL && size != 0) {
        fprintf(stderr, "allocation of %zu bytes failed\n", size);
        exit(3);
    }
    return p;
}

static inline void *xmalloc(size_t size)
{
    return check_alloc(malloc(size), size);
}

/* ---- contents checks ---------------------------------------------------- */

/* Every block starts (and, when it has room, ends) with a tag derived from
 * its size and its owner; check_tag finds blocks that were overwritten. */
static inline uint8_t tag_of(size_t size, uintptr_t salt)
{
    return (uint8_t)((size * 31u + salt * 17u) | 1u);
}

static inline void set_tag(void *p, size_t size, uintptr_t salt)
{
    uint8_t t = tag_of(size, salt);
    ((volatile uint8_t *)p)[0] = t;
    ((volatile uint8_t *)p)[size - 1] = t;
}

/* Returns 1 when the tag is intact. */
static inline int check_tag(const void *p, size_t size, uintptr_t salt)
{
    uint8_t t = tag_of(size, salt);
    return ((const volatile uint8_t *)p)[0] == t && ((const volatile uint8_t *)p)[size - 1] == t;
}

/* Keeps the compiler from removing a block nobody reads. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

/* ---- clocks and memory ------------------------------------------------- */

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size now, in KiB (from /proc/self/statm, without malloc). */
static inline unsigned long long rss_kib(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "size resident shared ...": skip the first field. */
    char *p = strchr(buf, ' ');
    if (p == NULL)
        return 0;
    return strtoull(p + 1, NULL, 10) * (unsigned long long)sysconf(_SC_PAGESIZE) / 1024;
}

/* Touches every page of [p, p + size), as a program filling its buffer would
 * (one store per 4 KiB page and the last byte). */
static inline void touch_pages(void *p, size_t size, uint8_t value)
{
    volatile uint8_t *b = p;
    for (size_t i = 0; i < size; i += 4096)
        b[i] = value;
    b[size - 1] = value;
}

static inline void start_threads(pthread_t *t, int n, void *(*fn)(void *), void *args,
                                 size_t arg_size)
{
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(3);
        }
    }
}

static inline void join_threads(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

#endif
