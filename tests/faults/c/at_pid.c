/* at_pid PID PROGRAM [ARGS...]: run PROGRAM as process PID (clone3 with set_tid, root only),
   to reuse the PID of a process that just exited. Prints the child's PID, waits for it. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    pid_t wanted = (pid_t)atoi(argv[1]);
    struct clone_args args;
    memset(&args, 0, sizeof(args));
    args.exit_signal = SIGCHLD;
    args.set_tid = (uint64_t)(uintptr_t)&wanted;
    args.set_tid_size = 1;
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0) {
        perror("clone3");
        return 1;
    }
    if (pid == 0) {
        execv(argv[2], argv + 2);
        _exit(127);
    }
    printf("%ld\n", pid);
    fflush(stdout);
    int status;
    waitpid((pid_t)pid, &status, 0);
    return 0;
}
