/* Built against an installed oxmalloc through pkg-config: malloc is
 * oxmalloc's, and the header's functions are there. */
#include <oxmalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t before = 0, after = 0;
    if (!MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &before))
        return 1;
    void *p = malloc(1 << 20);
    memset(p, 1, 1 << 20);
    MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &after);
    if (after < before + (1 << 20))
        return 2;
    char buf[64];
    if (oxmalloc_write_json(buf, sizeof buf) <= (int)sizeof buf)
        return 3;
    free(p);
    printf("ok\n");
    return 0;
}
