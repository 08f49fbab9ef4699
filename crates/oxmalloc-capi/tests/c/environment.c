/* Settings through the environment, for programs that only link or preload
 * the library. Run with a mode argument; the test sets the variables.
 *
 *   memfs       OXMALLOC_MEMFS_PATH (or TCMALLOC_MEMFS_MALLOC_PATH): heap
 *               memory is a mapping of the memfs file
 *   memfs_cap   plus a limit and no fallback: past it malloc fails, ENOMEM
 *   heap_limit  TCMALLOC_HEAP_LIMIT_MB: past it malloc fails, ENOMEM
 *   background  OXMALLOC_BACKGROUND_RELEASE_MS: idle free pages go back
 */
#include "check.h"
#include "oxmalloc.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* The line of /proc/self/maps that holds p, or "" (static buffer). */
static const char *mapping_of(const void *p) {
    static char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi) {
            fclose(f);
            return line;
        }
    }
    fclose(f);
    return "";
}

static size_t property(const char *name) {
    size_t v = 0;
    CHECK(MallocExtension_GetNumericProperty(name, &v) == 1);
    return v;
}

int main(int argc, char **argv) {
    CHECK(argc == 2);
    const char *mode = argv[1];
    if (strcmp(mode, "memfs") == 0) {
        char *p = malloc(8 << 20);
        CHECK(p != NULL);
        memset(p, 1, 8 << 20);
        const char *m = mapping_of(p);
        printf("%s", m);
        /* memfd files show as /memfd:oxmalloc, directory files as
         * <dir>/oxmalloc.XXXXXX; both are shared file mappings. */
        CHECK(strstr(m, "oxmalloc") != NULL);
        CHECK(strstr(m, " rw-s ") != NULL);
        free(p);
    } else if (strcmp(mode, "memfs_cap") == 0) {
        char *small = malloc(4 << 20);
        CHECK(small != NULL);
        errno = 0;
        CHECK(malloc(64 << 20) == NULL);
        CHECK(errno == ENOMEM);
        free(small);
    } else if (strcmp(mode, "heap_limit") == 0) {
        CHECK(property("tcmalloc.heap_limit_mb") == 64);
        void *a = malloc(40 << 20);
        CHECK(a != NULL);
        errno = 0;
        CHECK(malloc(40 << 20) == NULL);
        CHECK(errno == ENOMEM);
        free(a);
        void *b = malloc(40 << 20);
        CHECK(b != NULL); /* the program carries on */
        free(b);
    } else if (strcmp(mode, "background") == 0) {
        void *p[4];
        for (int i = 0; i < 4; i++) {
            p[i] = malloc(16 << 20);
            CHECK(p[i] != NULL);
            memset(p[i], 1, 16 << 20);
        }
        for (int i = 0; i < 4; i++) free(p[i]);
        size_t free_bytes = property("tcmalloc.pageheap_free_bytes");
        CHECK(free_bytes >= (size_t)64 << 20);
        int waited = 0;
        while (property("tcmalloc.pageheap_free_bytes") != 0 && waited < 5000) {
            usleep(10000);
            waited += 10;
        }
        CHECK(property("tcmalloc.pageheap_free_bytes") == 0);
        CHECK(property("tcmalloc.pageheap_unmapped_bytes") >= (size_t)64 << 20);
    } else {
        CHECK(!"unknown mode");
    }
    done();
    return 0;
}
