/* A library loaded with dlopen by dl_main.c: it allocates for the program and
 * frees what the program allocated, from its constructor and destructor too. */
#include <stdlib.h>
#include <string.h>

static char *from_constructor;

__attribute__((constructor)) static void lib_init(void) {
    from_constructor = malloc(1000);
    if (from_constructor) strcpy(from_constructor, "made in the library's constructor");
}

__attribute__((destructor)) static void lib_fini(void) { free(from_constructor); }

const char *lib_constructor_block(void) { return from_constructor; }

void *lib_alloc(size_t n) {
    unsigned char *p = malloc(n);
    if (p) memset(p, 0x6C, n);
    return p;
}

void *lib_realloc(void *p, size_t n) { return realloc(p, n); }

void lib_free(void *p) { free(p); }
