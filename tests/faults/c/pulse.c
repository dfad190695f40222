/* Busy a tenth of the time: spins in pulse_spin for 10 ms, then sleeps 90 ms, until killed.
   Something for a filtered perftop to sample, at little cost to a shared machine. */
#include <time.h>

volatile unsigned long sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void pulse_spin(double seconds)
{
    double end = now() + seconds;
    while (now() < end)
        sink++;
}

int main(void)
{
    struct timespec pause = {0, 90 * 1000 * 1000};
    for (;;) {
        pulse_spin(0.010);
        nanosleep(&pause, NULL);
    }
}
