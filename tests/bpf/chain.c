/* A busy program with a known call chain: main -> outer -> middle -> leaf_spin.
   Built with -O0 -fno-omit-frame-pointer so every frame-pointer unwinder sees each caller. */
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void leaf_spin(void)
{
    for (unsigned long i = 0; i < 1000000; i++)
        sink += i;
}

__attribute__((noinline)) void middle(void) { leaf_spin(); }

__attribute__((noinline)) void outer(double seconds)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        middle();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
}

int main(int argc, char **argv)
{
    outer(argc > 1 ? atof(argv[1]) : 30.0);
    return 0;
}
