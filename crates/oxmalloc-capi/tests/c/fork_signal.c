/* fork() from a signal handler that interrupted fork(), malloc() or free()
 * (the situation of glibc's malloc/tst-mallocfork2). The process stays
 * single-threaded, where POSIX makes fork async-signal-safe: its SIGUSR1
 * handler forks (the child leaves with _exit at once) and reaps the child.
 * Three sender processes send SIGUSR1 in step with the main loop (a
 * process-shared barrier before and after each step), so the signals land
 * while the main loop frees, allocates (up to 70,000 bytes, 1,000 live
 * blocks) and, every seventh step, forks. STEPS is the argument (default
 * 2000). A child that does not finish within 10 s is killed by its alarm and
 * fails the program; a parent that deadlocks is killed by the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

enum { SENDERS = 3, SLOTS = 1000, MAX_SIZE = 70000 };

static pthread_barrier_t *barrier;
static volatile sig_atomic_t handler_forks, handler_errors;

static void put(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid < 0) {
        put("fork in the handler failed\n");
        handler_errors = 1;
    } else if (pid == 0) {
        _exit(0);
    } else {
        int status;
        pid_t r;
        while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        if (r != pid || status != 0) {
            put("the handler's child failed\n");
            handler_errors = 1;
        }
        handler_forks++;
    }
    errno = saved;
}

static void sender(pid_t target) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (;;) {
        pthread_barrier_wait(barrier);
        if (kill(target, SIGUSR1) != 0) _exit(3);
        pthread_barrier_wait(barrier);
    }
}

/* waitpid for a child of the main loop, retried when a signal interrupts. */
static int reap(pid_t pid) {
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    CHECK(r == pid);
    return status;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 2000;
    barrier = mmap(NULL, sizeof *barrier, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(barrier != MAP_FAILED);
    pthread_barrierattr_t attr;
    CHECK(pthread_barrierattr_init(&attr) == 0);
    CHECK(pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0);
    CHECK(pthread_barrier_init(barrier, &attr, SENDERS + 1) == 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    pid_t self = getpid();
    pid_t senders[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        senders[i] = fork();
        CHECK(senders[i] >= 0);
        if (senders[i] == 0) sender(self);
    }

    static void *slots[SLOTS];
    unsigned seed = 1;
    int loop_forks = 0;
    for (int i = 0; i < steps; i++) {
        int slot = rand_r(&seed) % SLOTS;
        size_t size = (size_t)rand_r(&seed) % MAX_SIZE + 1;
        int do_fork = rand_r(&seed) % 7 == 0;
        pthread_barrier_wait(barrier);
        if (do_fork) {
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0) {
                alarm(10);
                free(malloc(size));
                _exit(0);
            }
            CHECK(reap(pid) == 0);
            loop_forks++;
        }
        free(slots[slot]);
        slots[slot] = malloc(size);
        CHECK(slots[slot] != NULL);
        memset(slots[slot], i, size < 64 ? size : 64);
        pthread_barrier_wait(barrier);
        CHECK(!handler_errors);
    }
    for (int i = 0; i < SENDERS; i++) {
        kill(senders[i], SIGKILL);
        reap(senders[i]);
    }
    for (int i = 0; i < SLOTS; i++) free(slots[i]);
    printf("%d steps, %d forks in the loop, %d in the handler\n", steps, loop_forks,
           (int)handler_forks);
    CHECK(handler_forks > 0);
    done();
    return 0;
}
