/* fork/exec churn: run /bin/true over and over, as fast as the machine allows, until killed;
   on SIGTERM print how many processes were started. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int signum) { (void)signum; stop = 1; }

int main(void)
{
    signal(SIGTERM, on_term);
    unsigned long started = 0;
    while (!stop) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (pid > 0) {
            started++;
            waitpid(pid, NULL, 0);
        }
    }
    printf("%lu\n", started);
    return 0;
}
