/*
 * posix_init.c - `luasvc run` as a container's entrypoint (PID 1 of its
 * PID namespace).
 *
 * PID 1 inherits every orphaned process of the namespace, and the kernel
 * delivers to it only the signals it has a handler for. A host that reaped
 * whatever exited (waitpid(-1)) would steal the exit statuses its services
 * wait for (io.popen's pclose, the event loop's child watchers). So, as
 * tini does, PID 1 splits in two: the parent stays PID 1, forwards SIGTERM,
 * SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the child, reaps every
 * process that exits, and exits with the child's status once it has gone;
 * the child goes on to be the ordinary host, whose own children are its
 * own. Anywhere but PID 1 this does nothing.
 *
 * Called first thing on the main thread, before any other thread exists.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/posix.h"

static volatile sig_atomic_t child_pid;

/* A signal sent to PID 1 (kill, the container runtime) goes on to the
 * host; one the terminal sent to the whole foreground group (Ctrl+C:
 * si_code SI_KERNEL) already reached the host too. */
static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (child_pid > 0 && (!si || si->si_code != SI_KERNEL))
        kill((pid_t)child_pid, sig);
}

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* The parent: forward signals, reap everything, leave with the host's
 * status (128 + N for a host killed by signal N, as a shell reports it). */
static int init_main(pid_t child)
{
    int status = 0;
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left */
        }
        if (p == child) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            child_pid = 0;
            /* orphans the host left behind: reap those already gone */
            while (waitpid(-1, &st, WNOHANG) > 0) {
            }
            break;
        }
    }
    return status;
}

int lsvc_init_if_pid1(void)
{
    if (getpid() != 1)
        return -1;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old); /* no signal lost between fork and handlers */
    pid_t child = fork();
    if (child < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "luasvc: as PID 1, cannot fork the host (%s): running without a reaper\n",
                strerror(errno));
        return -1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -1; /* the host */
    }
    child_pid = child;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++)
        sigaction(FORWARDED[i], &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* unblock what we forward, whatever mask we were started with */
    sigset_t fw;
    sigemptyset(&fw);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++)
        sigaddset(&fw, FORWARDED[i]);
    sigprocmask(SIG_UNBLOCK, &fw, NULL);
    return init_main(child);
}
