/*
 * footprint.c: a peak of many small objects, then dropped. COUNT objects of
 * 16..128 bytes are built and indexed by an open-addressing table that grows
 * by doubling (an interpreter building strings and a dict); then every
 * object and the table are freed and the program goes on with a small
 * working set (REST replacements of 1000 blocks), as a long-running program
 * after its peak. The figure that matters is final_rss_kib: how much of the
 * peak the allocator gave back without being asked.
 *
 *   footprint COUNT REST
 *
 * Prints peak_live_kib= (bytes requested at the peak), final_rss_kib= and
 * errors=.
 */
#include "common.h"

struct obj {
    size_t len;
    uint64_t hash;
    char text[];
};

int main(int argc, char **argv)
{
    long count = arg_long(argc, argv, 1, 2000000);
    long rest = arg_long(argc, argv, 2, 100000);
    if (count < 1) {
        fprintf(stderr, "usage: footprint COUNT REST\n");
        return 2;
    }
    uint64_t rng = rng_seed(1);
    size_t cap = 1024, used = 0;
    struct obj **table = check_alloc(calloc(cap, sizeof *table), cap);
    unsigned long long live = 0;
    for (long i = 0; i < count; i++) {
        size_t len = rng_range(&rng, 16, 128) - sizeof(struct obj);
        struct obj *o = xmalloc(sizeof *o + len);
        o->len = len;
        o->hash = rng_next(&rng);
        memset(o->text, 'a' + (int)(i % 26), len);
        live += sizeof *o + len;
        if (2 * (used + 1) > cap) {
            size_t ncap = cap * 2;
            struct obj **nt = check_alloc(calloc(ncap, sizeof *nt), ncap);
            for (size_t k = 0; k < cap; k++) {
                if (table[k] == NULL)
                    continue;
                size_t h = table[k]->hash & (ncap - 1);
                while (nt[h] != NULL)
                    h = (h + 1) & (ncap - 1);
                nt[h] = table[k];
            }
            free(table);
            table = nt;
            cap = ncap;
        }
        size_t h = o->hash & (cap - 1);
        while (table[h] != NULL)
            h = (h + 1) & (cap - 1);
        table[h] = o;
        used++;
    }
    live += cap * sizeof *table;

    unsigned long long errors = 0;
    for (size_t k = 0; k < cap; k++) {
        struct obj *o = table[k];
        if (o == NULL)
            continue;
        if (o->len > 0 && (o->text[0] != o->text[o->len - 1] || o->text[0] < 'a'))
            errors++;
        free(o);
    }
    free(table);

    void *small[1000] = {0};
    for (long i = 0; i < rest; i++) {
        int k = (int)(rng_next(&rng) % 1000);
        free(small[k]);
        small[k] = xmalloc(rng_range(&rng, 16, 256));
        escape(small[k]);
    }
    unsigned long long final = rss_kib();
    for (int k = 0; k < 1000; k++)
        free(small[k]);
    report("peak_live_kib", live / 1024);
    report("final_rss_kib", final);
    report("errors", errors);
    return 0;
}
