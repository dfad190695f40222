/* The annotate tests' workload: one -O1 function whose loop is dominated by one `div`.
   noipa: gcc would find hot() pure and call it once, outside main's loop. */

__attribute__((noinline, noipa)) unsigned long hot(unsigned long n, unsigned long d) {
    unsigned long acc = 1;
    for (unsigned long i = 1; i < n; i++) {
        acc += (acc * 2654435761UL + i) / (d + (i & 7)); /* the hot line */
    }
    return acc;
}

int main(int argc, char **argv) {
    unsigned long d = argc > 5 ? 3 : 7;
    for (;;) {
        volatile unsigned long r = hot(100000000UL, d);
        (void)r;
    }
}
