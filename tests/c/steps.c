/* Allocates 100 MiB in 10 MiB steps, touching every page, sleeping between
 * steps, then frees it in steps: a staircase up and down for the timeline. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void pause_ms(long ms) {
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

int main(void) {
    enum { STEPS = 10, STEP = 10 << 20 };
    char *blocks[STEPS];
    for (int i = 0; i < STEPS; i++) {
        blocks[i] = malloc(STEP);
        if (!blocks[i])
            return 1;
        memset(blocks[i], i + 1, STEP);
        pause_ms(50);
    }
    for (int i = STEPS - 1; i >= 0; i--) {
        free(blocks[i]);
        pause_ms(50);
    }
    return 0;
}
