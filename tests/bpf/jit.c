/* Runs code from an anonymous executable mapping, like a JIT, and describes it in
   /tmp/perf-PID.map the way JITs do for perf. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline)) void run_jitted(void (*code)(void)) { code(); }

int main(void)
{
    /* push rbp; mov rbp,rsp; loop: jmp loop */
    static const unsigned char spin[] = {0x55, 0x48, 0x89, 0xe5, 0xeb, 0xfe};
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 1;
    memcpy(code, spin, sizeof(spin));
    char path[64];
    snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
    FILE *map = fopen(path, "w");
    if (!map)
        return 1;
    fprintf(map, "%lx %zx jitted_spin_loop\n", (unsigned long)code, sizeof(spin));
    fclose(map);
    puts("ready");
    fflush(stdout);
    run_jitted((void (*)(void))code);
    return 0;
}
