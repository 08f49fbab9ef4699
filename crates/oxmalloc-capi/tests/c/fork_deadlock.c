/* Fork against stdio locks (the pattern of glibc's
 * malloc/tst-malloc-fork-deadlock): the main thread forks FORKS times (the
 * argument, default 1000) while two threads run fflush(NULL) in a loop (it
 * takes the stream-list lock, then every stream's lock) and two threads read
 * one 50,000-byte line with getline() from an fmemopen stream and from a
 * file, write into an open_memstream stream and malloc/realloc/free: both
 * allocate while holding a stream's lock. fork() itself takes the stream-list
 * lock, so an allocator whose fork handler holds its own locks across that
 * point can deadlock with them. Every child allocates, frees and leaves with
 * _exit at once; a child that does not finish within 10 s is killed by its
 * alarm and fails the program. A parent that hangs is killed by the test. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

enum { LINE = 50000 };

static atomic_int stop;
static char *line_buf; /* LINE 'x' and a newline, for fmemopen */
static char file_path[] = "/tmp/oxmalloc-fork-deadlock-XXXXXX";

static void *flusher(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        CHECK(fflush(NULL) == 0);
        /* A pause, or two flushers keep the stream-list lock for themselves
         * and starve fork() (1,000 forks took 70 s under glibc without it). */
        usleep(50);
    }
    return NULL;
}

static void *reader(void *arg) {
    int from_file = (int)(size_t)arg;
    FILE *in = from_file ? fopen(file_path, "r") : fmemopen(line_buf, LINE + 1, "r");
    CHECK(in != NULL);
    char *mem = NULL;
    size_t mem_len = 0;
    FILE *out = open_memstream(&mem, &mem_len);
    CHECK(out != NULL);
    size_t seed = (size_t)arg + 1;
    while (!atomic_load(&stop)) {
        rewind(in);
        char *line = NULL;
        size_t cap = 0;
        CHECK(getline(&line, &cap, in) == LINE + 1);
        free(line);
        CHECK(fprintf(out, "%zu\n", seed) > 0);
        CHECK(fflush(out) == 0);
        if (mem_len > 100000) {
            rewind(out); /* keeps the buffer, writes from the start */
        }
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        char *p = malloc((seed >> 40) % 5000 + 1);
        CHECK(p != NULL);
        p = realloc(p, (seed >> 20) % 300000 + 1);
        CHECK(p != NULL);
        free(p);
    }
    fclose(out);
    free(mem);
    fclose(in);
    return NULL;
}

int main(int argc, char **argv) {
    int forks = argc > 1 ? atoi(argv[1]) : 1000;
    line_buf = malloc(LINE + 1);
    CHECK(line_buf != NULL);
    memset(line_buf, 'x', LINE);
    line_buf[LINE] = '\n';
    int fd = mkstemp(file_path);
    CHECK(fd >= 0);
    CHECK(write(fd, line_buf, LINE + 1) == LINE + 1);
    CHECK(close(fd) == 0);

    pthread_t t[4];
    for (size_t i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, flusher, NULL) == 0);
    for (size_t i = 0; i < 2; i++) CHECK(pthread_create(&t[2 + i], NULL, reader, (void *)i) == 0);

    for (int k = 0; k < forks; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            alarm(10);
            void *p = malloc((size_t)k % 1000 + 1);
            free(p);
            _exit(17);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 17) {
            fprintf(stderr, "child %d: status %#x (signal %d)\n", k, status,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            CHECK(0);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
    unlink(file_path);
    free(line_buf);
    printf("%d forks\n", forks);
    done();
    return 0;
}
