/* A different program for the PID-reuse test: other function names, same non-PIE load
   address as chain.c, so a stale symbol table would give these addresses the old names. */
volatile unsigned long sink;

__attribute__((noinline)) void reused_pid_spin(void)
{
    for (;;)
        sink++;
}

__attribute__((noinline)) void reused_pid_caller(void) { reused_pid_spin(); }

int main(void)
{
    reused_pid_caller();
    return 0;
}
