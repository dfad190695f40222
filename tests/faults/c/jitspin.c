/* Runs code from an anonymous executable mapping, like a JIT, but leaves writing
   /tmp/perf-PID.map to the test (which plants hostile ones). Prints the code's address and
   size, then spins in it. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void)
{
    /* push rbp; mov rbp,rsp; loop: jmp loop */
    static const unsigned char spin[] = {0x55, 0x48, 0x89, 0xe5, 0xeb, 0xfe};
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 1;
    memcpy(code, spin, sizeof(spin));
    printf("%lx %zx\n", (unsigned long)code, sizeof(spin));
    fflush(stdout);
    ((void (*)(void))code)();
    return 0;
}
