/*
 * posix_init.c - `luasvc run` as a container's entrypoint (PID 1 of its
 * PID namespace).
 *
 * PID 1 inherits every orphaned process of the namespace, and the kernel
 * delivers to it only the signals it has a handler for. A host that reaped
 * whatever exited (waitpid(-1)) would steal the exit statuses its services
 * wait for (io.popen's pclose, the event loop's child watchers). So, as
 * tini does, PID 1 splits in two: the parent stays PID 1, forwards SIGTERM,
 * SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the child (taken with
 * sigwaitinfo: blocked signals reach PID 1 without a handler, and no
 * handler runs), reaps every process that exits, and exits with the
 * child's status once it has gone; the child goes on to be the ordinary
 * host, whose own children are its own. Anywhere but PID 1 this does
 * nothing.
 *
 * Called first thing on the main thread, before any other thread exists.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posix.h"

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* The parent: wait for signals (no handler runs: they stay blocked and are
 * taken with sigwaitinfo), forward those sent to PID 1 to the host, reap
 * every child that exits, and leave with the host's status (128 + N for a
 * host killed by signal N, as a shell reports it) once it has gone. A
 * signal the terminal sent to the whole foreground group (Ctrl+C:
 * si_code SI_KERNEL) reached the host already and is not sent again. */
static int init_main(pid_t child, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            if (si.si_code != SI_KERNEL)
                kill(child, sig);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
            if (p != child)
                continue; /* an orphan, reaped */
            while (waitpid(-1, &st, WNOHANG) > 0) {
            }
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (p < 0 && errno == ECHILD)
            return 1; /* cannot happen: the host is our child */
    }
}

int lsvc_init_if_pid1(void)
{
    if (getpid() != 1)
        return -1;
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof *FORWARDED; i++)
        sigaddset(&set, FORWARDED[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old); /* before the fork: no signal lost */
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
    return init_main(child, &set);
}
