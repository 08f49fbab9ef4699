/* Calls malloc with a size memcheck knows to be uninitialised (read from
 * stack memory never written): memcheck reports the branch on it inside the
 * allocator, which is how the valgrind test makes sure that it recognises
 * errors inside oxmalloc. */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t *box = alloca(sizeof *box); /* never written */
    __asm__ volatile("" : "+r"(box)); /* hides that from the compiler */
    size_t n = (*box & 0xfff) + 1;
    void *p = malloc(n);
    printf("%s\n", p ? "allocated" : "null");
    free(p);
    return 0;
}
