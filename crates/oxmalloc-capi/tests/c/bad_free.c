/* Freeing or reallocating memory oxmalloc never handed out stops the
 * program with a message naming the operation and the address (mode given
 * as the argument), instead of corrupting the heap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    void *foreign = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (foreign == MAP_FAILED) return 2;
    printf("foreign=%p\n", foreign);
    fflush(stdout);
    if (strcmp(argv[1], "free") == 0) {
        free(foreign);
    } else if (strcmp(argv[1], "realloc") == 0) {
        void *q = realloc(foreign, 100);
        printf("%p\n", q);
    } else if (strcmp(argv[1], "delete") == 0) {
        extern void _ZdlPv(void *);
        _ZdlPv(foreign);
    }
    return 0; /* not reached */
}
