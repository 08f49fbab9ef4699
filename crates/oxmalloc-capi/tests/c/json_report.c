/* oxmalloc_write_json and oxmalloc_write_json_fd: snprintf-style lengths,
 * cutting with a NUL, and the whole report through a descriptor. Prints the
 * report from the buffer and from the descriptor, one line each, for the
 * Rust side to parse. */
#include "check.h"
#include <errno.h>
#include <oxmalloc.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    void *keep = malloc(3 << 20); /* something in the report */
    CHECK(keep != NULL);

    int need = oxmalloc_write_json(NULL, 0);
    CHECK(need > 100);

    char small[16];
    memset(small, 'x', sizeof small);
    int n = oxmalloc_write_json(small, sizeof small);
    CHECK(n >= need - 64 && n > (int)sizeof small);
    CHECK(small[sizeof small - 1] == '\0');
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(strncmp(small, "{\"summary\":{", 12) == 0);

    size_t len = (size_t)n + 4096;
    char *buf = malloc(len);
    CHECK(buf != NULL);
    n = oxmalloc_write_json(buf, len);
    CHECK(n > 0 && (size_t)n < len);
    CHECK(strlen(buf) == (size_t)n);
    CHECK(buf[0] == '{' && buf[n - 1] == '}');
    printf("%s\n", buf);
    fflush(stdout);

    /* Through a descriptor: standard output. */
    CHECK(oxmalloc_write_json_fd(1) == 0);
    CHECK(write(1, "\n", 1) == 1);

    /* A closed descriptor: -1 and errno. */
    errno = 0;
    CHECK(oxmalloc_write_json_fd(-1) == -1);
    CHECK(errno == EBADF);

    free(buf);
    free(keep);
    done();
    return 0;
}
