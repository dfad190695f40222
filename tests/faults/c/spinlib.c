/* A shared library with one hot function, built twice under two names (SPIN_NAME) with the
   same code and layout: the copy a container sees and a decoy at the same path on the host. */
volatile unsigned long spinlib_sink;

__attribute__((noinline)) void SPIN_NAME(void)
{
    for (;;)
        spinlib_sink++;
}
