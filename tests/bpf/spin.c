/* A busy program for the pprof reader tests: c_spin counts in user space and calls into the
   kernel every 64 steps, so both halves are sampled. Built with -g (line info) in the tests. */
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) void c_spin(double seconds) {
    volatile unsigned long sink = 0;
    unsigned long steps = (unsigned long)(seconds * 2e8);
    for (unsigned long i = 0; i < steps; i++) {
        sink += i;
        if (i % 64 == 0)
            getppid();
    }
}

int main(int argc, char **argv) {
    c_spin(argc > 1 ? atof(argv[1]) : 30.0);
    return 0;
}
