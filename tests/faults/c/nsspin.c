/* Spins in a library function resolved from its rpath, after giving itself a private /tmp
   and writing its JIT perf map there, under the PID it has in its own PID namespace. The
   library and the perf map exist only in its namespaces; the same paths on the host hold
   decoys with other names. The /tmp mount is made in a mount namespace of its own, so even
   run by hand on the host it never hides the host's /tmp. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>
#include <pthread.h>

void container_spin(void);

static void *run_jitted(void *code)
{
    ((void (*)(void))code)();
    return NULL;
}

int main(void)
{
    static const unsigned char spin[] = {0x55, 0x48, 0x89, 0xe5, 0xeb, 0xfe};
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("private mount namespace");
        return 1;
    }
    if (mount("none", "/tmp", "tmpfs", 0, NULL) != 0) {
        perror("mount /tmp");
        return 1;
    }
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
    fprintf(map, "%lx %zx container_jit\n", (unsigned long)code, sizeof(spin));
    fclose(map);
    printf("%d %lx %zx\n", getpid(), (unsigned long)code, sizeof(spin));
    fflush(stdout);
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_jitted, code) != 0)
        return 1;
    container_spin();
    return 0;
}
