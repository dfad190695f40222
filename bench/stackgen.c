/* Many distinct call chains: chain c (0 <= c < N) walks six levels, taking function
   f<level>_<digit> for each base-8 digit of c, and spins briefly in the last one.
   Usage: stackgen N SECONDS. Built -O0 -fno-omit-frame-pointer so every frame is seen. */
#include <stdlib.h>
#include <time.h>

#define LEVELS 6
volatile unsigned long sink;
typedef void (*step_t)(unsigned long chain, int level);
static step_t steps[LEVELS][8];

static void next_step(unsigned long chain, int level)
{
    if (level == LEVELS) {
        for (int i = 0; i < 2000; i++)
            sink += i;
        return;
    }
    unsigned long digit = chain;
    for (int i = 0; i < level; i++)
        digit /= 8;
    steps[level][digit % 8](chain, level + 1);
}

#define STEP(L, D) \
    __attribute__((noinline)) void f##L##_##D(unsigned long chain, int level) \
    { next_step(chain, level); sink++; }
#define LEVEL(L) STEP(L, 0) STEP(L, 1) STEP(L, 2) STEP(L, 3) STEP(L, 4) STEP(L, 5) STEP(L, 6) STEP(L, 7)
LEVEL(0) LEVEL(1) LEVEL(2) LEVEL(3) LEVEL(4) LEVEL(5)
#define ROW(L) { f##L##_0, f##L##_1, f##L##_2, f##L##_3, f##L##_4, f##L##_5, f##L##_6, f##L##_7 }

int main(int argc, char **argv)
{
    step_t table[LEVELS][8] = { ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5) };
    for (int l = 0; l < LEVELS; l++)
        for (int d = 0; d < 8; d++)
            steps[l][d] = table[l][d];
    unsigned long chains = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    double seconds = argc > 2 ? atof(argv[2]) : 30;
    time_t end = time(NULL) + (time_t)seconds;
    for (unsigned long i = 0; time(NULL) < end; i++)
        next_step((i * 2654435761UL) % chains, 0);  /* scattered, so every chain recurs */
    return 0;
}
