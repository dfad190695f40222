/* A fixed amount of CPU-bound work: ROUNDS times down an eight-deep call chain to a loop.
   Prints its own wall time in seconds, so only the work is timed, not exec or the exit.
   Usage: fixedwork ROUNDS. Built -O0 -fno-omit-frame-pointer, so profilers walk every frame. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) static void leaf(unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        sink += i;
}

__attribute__((noinline)) static void descend(int depth, unsigned long n)
{
    if (depth == 0)
        leaf(n);
    else
        descend(depth - 1, n);
    sink++;
}

int main(int argc, char **argv)
{
    unsigned long rounds = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned long r = 0; r < rounds; r++)
        descend(8, 100000);
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
    return 0;
}
