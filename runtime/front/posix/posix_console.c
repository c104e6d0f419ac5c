/*
 * posix_console.c - the POSIX half of `luasvc run` and `luasvc check`
 * (console.c): SIGINT and SIGTERM are STOP, SIGHUP is PARAMCHANGE; each
 * host opens its control endpoint (posix_endpoint.c), and under systemd
 * ($NOTIFY_SOCKET set) every report and reload also goes to systemd as
 * sd_notify messages (posix_systemd.c).
 *
 * Threads: main (start, wait, exit), the endpoint thread (which also takes
 * the signals: their handlers only write to a pipe it polls), the
 * watchdog, the workers, and under a systemd watchdog the notifier.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../frontend.h"
#include "posix.h"

/* Set before any thread starts, then read-only: NULL when not under systemd. */
static lsvc_systemd *console_sd;
/* The signals the endpoint thread takes; set by os_begin. */
static sigset_t console_sigs;
/* The endpoint: its sockets bound while the scripts load, then served. */
static lsvc_endpoint *console_pre, *console_ep;
/* The user's stop, console.c's (set by os_begin, before any thread). */
static lsvc_console_stop_fn console_stop;

void lsvc_console_os_reloading(lsvc_service *svc, bool begin)
{
    lsvc_systemd_reloading(console_sd, svc, begin);
}

void lsvc_console_os_report(lsvc_service *svc, const lsvc_status *st)
{
    lsvc_systemd_report(console_sd, svc, st);
}

/* SIGINT/SIGTERM: STOP; SIGHUP: PARAMCHANGE, to every service. Called on
 * the endpoint thread, which takes the host's signals from their pipe. */
static void console_signal(lsvc_host *h, int sig)
{
    bool accepted = false;
    if (sig == SIGHUP)
        lsvc_log_reopen_file(); /* --log-file moved away by logrotate: a new one */
    lsvc_systemd_signal(console_sd, sig, true, false);
    if (sig != SIGHUP)
        console_stop(h, strsignal(sig));
    for (size_t i = 0; sig == SIGHUP && i < lsvc_host_count(h); i++) {
        lsvc_service *svc = lsvc_host_service(h, i);
        uint32_t rc = lsvc_service_control(svc, LSVC_CTRL_PARAMCHANGE);
        accepted = accepted || rc == LSVC_NO_ERROR;
        if (rc != LSVC_NO_ERROR && rc != LSVC_ERROR_SERVICE_NOT_ACTIVE)
            lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc), "SIGHUP: paramchange refused: %u %s",
                     rc, lsvc_win32_message(rc));
    }
    lsvc_systemd_signal(console_sd, sig, false, accepted);
}

/* The signals: caught, taken by the endpoint's thread. 0 or -1. */
static int catch_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    /* Caught (a shell's ignored SIGINT for background jobs too), never
     * blocked or ignored: children start clean (posix_endpoint.c). */
    return lsvc_signals_catch(set);
}

int lsvc_console_os_begin(lsvc_host *h, bool check_only, lsvc_console_stop_fn stop)
{
    console_stop = stop;
    if (catch_signals(&console_sigs) != 0) {
        lsvc_log(LSVC_LOG_ERROR, NULL, "cannot catch signals: %s", strerror(errno));
        return 1;
    }
    if (!check_only) {
        console_sd = lsvc_systemd_open(h); /* before any thread: it unsets variables */
        if (lsvc_systemd_start(console_sd) != 0)
            return 1;
    }
    /* The time zone, for the log's time stamps, read once here before any
     * thread logs: glibc's tzset() beside another thread's localtime_r is
     * safe only by a lock ThreadSanitizer cannot see. */
    tzset();
    return 0;
}

void lsvc_console_os_loading(lsvc_host *h, bool check_only)
{
    /* The sockets, bound under temporary names, are named once the
     * scripts have loaded. */
    console_pre = check_only ? NULL : lsvc_endpoint_prepare(h);
}

size_t lsvc_console_os_open(lsvc_host *h, bool check_only, size_t failed)
{
    if (failed) {
        lsvc_endpoint_close(console_pre);
    } else if (!check_only) {
        char err[512];
        console_ep = lsvc_endpoint_open(h, console_pre, err, sizeof err);
        if (!console_ep) {
            lsvc_log(LSVC_LOG_ERROR, NULL, "control endpoint: %s", err);
            failed = 1;
        }
    }
    console_pre = NULL;
    return failed;
}

int lsvc_console_os_serve(lsvc_host *h)
{
    /* The endpoint's socket listens already: a client's connection waits
     * in its backlog, and a signal stays pending, until the endpoint's
     * thread takes them. Started after the release, that thread is off the
     * path to RUNNING. */
    int rc = lsvc_endpoint_start(console_ep, &console_sigs, console_signal);
    if (rc == 0)
        return 0;
    lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start the control endpoint's thread: %s", strerror(rc));
    console_stop(h, strsignal(SIGTERM));
    return 1;
}

void lsvc_console_os_end(lsvc_host *h)
{
    (void)h;
    lsvc_endpoint_close(console_ep);
    lsvc_systemd_close(console_sd);
}
