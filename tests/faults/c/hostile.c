/* A process whose every visible string is hostile: its name (comm) carries an OSC title
   sequence, markup, a right-to-left override and invalid UTF-8; its hot function's symbol too
   (an assembler label may hold any byte); its argv is chosen by the test. A second thread runs
   JIT-like code from an anonymous mapping whose perf map the test plants. Prints the JIT
   code's address and size, then spins. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

volatile unsigned long sink;

void hostile_function(void) __asm__("\"\x1b[31mevil[red]\xe2\x80\xae\xff\x1b]0;PWN4\x07\"");

__attribute__((noinline)) void hostile_function(void)
{
    for (;;)
        sink++;
}

static void *run_jitted(void *code)
{
    ((void (*)(void))code)();
    return NULL;
}

int main(void)
{
    /* push rbp; mov rbp,rsp; loop: jmp loop */
    static const unsigned char spin[] = {0x55, 0x48, 0x89, 0xe5, 0xeb, 0xfe};
    /* 15 bytes, the most a comm holds; threads created after this inherit it. */
    prctl(PR_SET_NAME, "\x1b]0;PWN\x07[b]\xe2\x80\xae\xff", 0, 0, 0);
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 1;
    memcpy(code, spin, sizeof(spin));
    printf("%lx %zx\n", (unsigned long)code, sizeof(spin));
    fflush(stdout);
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_jitted, code) != 0)
        return 1;
    hostile_function();
    return 0;
}
