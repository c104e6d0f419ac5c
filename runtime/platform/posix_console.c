/*
 * posix_console.c - `luasvc run` (and `luasvc check`): hosts services in
 * the foreground. It drives the same service path as every front end: the
 * control handler in service.c, one worker per script, the watchdog.
 * SIGINT and SIGTERM are STOP, SIGHUP is PARAMCHANGE; status changes are
 * log lines; the process exit status is 0 after clean stops.
 *
 * Under systemd ($NOTIFY_SOCKET set) every report and reload also goes to
 * systemd as sd_notify messages (posix_systemd.c).
 *
 * Threads: main (start, wait, exit), the endpoint thread (which also takes
 * the signals: their handlers only write to a pipe it polls), the
 * watchdog, the workers, and under a systemd watchdog the notifier.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../luasvc.h"
#include "posix.h"

typedef struct console_svc {
    atomic_int last_state;
    atomic_uint last_checkpoint;
} console_svc;

/* Set before any thread starts, then read-only: NULL when not under systemd. */
static lsvc_systemd *console_sd;

static void console_reloading(lsvc_service *svc, bool begin, void *ud)
{
    (void)ud;
    lsvc_systemd_reloading(console_sd, svc, begin);
}

/* The console's status report: a log line per state change, a debug line
 * per checkpoint. Called on any thread, with no lock held. */
static void console_report(lsvc_service *svc, const lsvc_status *st, void *ud)
{
    console_svc *c = ud;
    lsvc_systemd_report(console_sd, svc, st);
    int prev = atomic_exchange(&c->last_state, (int)st->state);
    unsigned prev_cp = atomic_exchange(&c->last_checkpoint, st->checkpoint);
    if (prev == (int)st->state) {
        if (st->checkpoint != prev_cp)
            lsvc_log(LSVC_LOG_INFO, svc->name, "%s checkpoint %u, wait hint %u ms",
                     lsvc_state_name(st->state), st->checkpoint, st->wait_hint);
        return;
    }
    if (st->state != LSVC_STOPPED) {
        lsvc_log(LSVC_LOG_INFO, svc->name, "%s", lsvc_state_name(st->state));
    } else if (st->exit.win32 == LSVC_NO_ERROR) {
        lsvc_log(LSVC_LOG_INFO, svc->name, "STOPPED");
    } else if (st->exit.win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "STOPPED with service-specific exit code %u",
                 st->exit.service_specific);
    } else {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "STOPPED with error %u: %s", st->exit.win32,
                 lsvc_win32_message(st->exit.win32));
    }
}

/* A stop asked for by a signal: the console's user means it even when the
 * service is still starting or does not accept STOP from the SCM. */
static void signal_stop(lsvc_service *svc, int sig)
{
    uint32_t rc = lsvc_service_control(svc, LSVC_CTRL_STOP, 0);
    if (rc == LSVC_NO_ERROR || rc == LSVC_ERROR_SERVICE_NOT_ACTIVE)
        return;
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    if (st.state == LSVC_STOP_PENDING) {
        lsvc_log(LSVC_LOG_WARNING, svc->name, "%s: already stopping (stop_timeout %u ms)",
                 strsignal(sig), svc->stop_timeout_ms);
        return;
    }
    lsvc_log(LSVC_LOG_NOTICE, svc->name, "%s while %s: stopping as soon as it can",
             strsignal(sig), lsvc_state_name(st.state));
    lsvc_service_request_stop(svc);
    lsvc_queue_wake(&svc->queue);
}

/* SIGINT/SIGTERM: STOP; SIGHUP: PARAMCHANGE, to every service. Called on
 * the endpoint thread, which takes the host's signals from their pipe. */
static void console_signal(lsvc_host *h, int sig)
{
    bool accepted = false;
    lsvc_systemd_signal(console_sd, sig, true, false);
    for (size_t i = 0; i < h->n; i++) {
        lsvc_service *svc = h->svcs[i];
        if (sig == SIGHUP) {
            uint32_t rc = lsvc_service_control(svc, LSVC_CTRL_PARAMCHANGE, 0);
            accepted = accepted || rc == LSVC_NO_ERROR;
            if (rc != LSVC_NO_ERROR && rc != LSVC_ERROR_SERVICE_NOT_ACTIVE)
                lsvc_log(LSVC_LOG_WARNING, svc->name, "SIGHUP: paramchange refused: %u %s", rc,
                         lsvc_win32_message(rc));
        } else {
            signal_stop(svc, sig);
        }
    }
    lsvc_systemd_signal(console_sd, sig, false, accepted);
}

static int usage(const char *msg)
{
    fprintf(stderr, "luasvc run: %s\nusage: luasvc run [--log-level LEVEL] [--no-watch] [--watch-interval MS]\n"
            "                  [--allow-insecure-script] SCRIPT... [-- ARGS...]\n",
            msg);
    return 2;
}

int lsvc_console_run(int argc, char **argv, bool check_only)
{
    int first = 0, nscripts = 0, nargs = 0;
    uint32_t watch_ms = LSVC_WATCH_DEFAULT_MS;
    bool watch_poll = false; /* an interval was asked for: poll on it */
    bool level_set = false;
    bool allow_insecure = false;
    char **args = NULL;
    int i = 0;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            args = argv + i + 1;
            nargs = argc - i - 1;
            break;
        }
        if (strcmp(argv[i], "--log-level") == 0) {
            if (i + 1 >= argc || lsvc_level_from_name(argv[i + 1]) < 0)
                return usage("--log-level needs one of debug, info, notice, warning, error");
            lsvc_log_set_level((lsvc_level)lsvc_level_from_name(argv[++i]));
            level_set = true;
            continue;
        }
        if (strcmp(argv[i], "--no-watch") == 0) {
            watch_ms = 0;
            continue;
        }
        if (strcmp(argv[i], "--watch-interval") == 0) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 10 || v > 60000)
                return usage("--watch-interval needs a number of ms in 10..60000");
            watch_ms = (uint32_t)v;
            watch_poll = true;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--allow-insecure-script") == 0) {
            allow_insecure = true;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return usage("unknown option");
        if (!nscripts)
            first = i;
        else if (first + nscripts != i)
            return usage("options must come before the scripts");
        nscripts++;
    }
    if (nscripts == 0)
        return usage("no script given");
    /* check: the states of a load that starts nothing are not news */
    if (check_only && !level_set)
        lsvc_log_set_level(LSVC_LOG_WARNING);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Caught (a shell's ignored SIGINT for background jobs too), never
     * blocked or ignored: children start clean (posix_endpoint.c). */
    if (lsvc_signals_catch(&set) != 0) {
        lsvc_log(LSVC_LOG_ERROR, NULL, "cannot catch signals: %s", strerror(errno));
        return 1;
    }

    lsvc_host *h = lsvc_host_new();
    console_svc *cs = calloc((size_t)nscripts, sizeof *cs);
    if (!h || !cs)
        return 1;
    for (int k = 0; k < nscripts; k++) {
        lsvc_service *svc = lsvc_service_new(h, argv[first + k], nargs, args);
        if (!svc || lsvc_host_add(h, svc) != 0)
            return 1;
        atomic_init(&cs[k].last_state, LSVC_STOPPED);
        svc->report = console_report;
        svc->reloading = console_reloading;
        svc->report_ud = &cs[k];
        svc->watch_interval_ms = check_only ? 0 : watch_ms;
        svc->watch_poll = watch_poll;
        svc->allow_insecure = allow_insecure;
    }
    if (!check_only) {
        console_sd = lsvc_systemd_open(h); /* before any thread: it unsets variables */
        if (lsvc_systemd_start(console_sd) != 0)
            return 1;
    }
    /* The time zone, for the log's time stamps, read once here before any
     * thread logs: glibc's tzset() beside another thread's localtime_r is
     * safe only by a lock ThreadSanitizer cannot see. Then the workers.
     * While they make their Lua states and load, this thread binds the
     * sockets, named once the scripts have loaded; then the watchdog's
     * thread starts (a deadline set before it runs is seen when it does):
     * on two cores, no third thread runs beside a loading worker. */
    tzset();
    for (size_t k = 0; k < h->n; k++)
        if (lsvc_worker_start(h->svcs[k]) != 0) {
            lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start a worker thread");
            return 1;
        }
    lsvc_endpoint *pre = check_only ? NULL : lsvc_endpoint_prepare(h);
    if (lsvc_watchdog_start(h) != 0)
        return 1;

    size_t failed = lsvc_host_wait_loaded(h);
    lsvc_endpoint *ep = NULL;
    if (failed)
        lsvc_endpoint_close(pre);
    if (!failed && !check_only) {
        char err[512];
        ep = lsvc_endpoint_open(h, pre, err, sizeof err);
        if (!ep) {
            lsvc_log(LSVC_LOG_ERROR, NULL, "control endpoint: %s", err);
            failed = 1;
        }
    }
    if (failed || check_only) {
        lsvc_host_release(h, false);
        lsvc_host_wait_stopped(h);
        lsvc_host_join(h);
        lsvc_endpoint_close(ep);
        lsvc_systemd_close(console_sd);
        if (check_only && !failed)
            for (size_t k = 0; k < h->n; k++)
                printf("%s: ok (service '%s')\n", h->svcs[k]->script_path, h->svcs[k]->name);
        return failed ? 2 : 0;
    }

    lsvc_host_release(h, true);
    /* The endpoint's socket listens already: a client's connection waits
     * in its backlog, and a signal stays pending, until the endpoint's
     * thread takes them. Started after the release, that thread is off the
     * path to RUNNING. */
    int ep_rc = lsvc_endpoint_start(ep, &set, console_signal);
    if (ep_rc != 0) {
        lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start the control endpoint's thread: %s",
                 strerror(ep_rc));
        for (size_t k = 0; k < h->n; k++)
            signal_stop(h->svcs[k], SIGTERM);
    }
    lsvc_host_wait_stopped(h);
    int status = ep_rc ? 1 : lsvc_host_exit_status(h);
    lsvc_endpoint_close(ep);
    lsvc_host_join(h);
    lsvc_fswatch_shutdown();
    lsvc_systemd_close(console_sd);
    return status;
}

/* Load a script as `luasvc check` does, without starting it, and tell what
 * it declares (for install). Returns 0, or 2 with the error logged. Main
 * thread, before any other host runs in this process. */
int lsvc_console_inspect(const char *script, lsvc_script_info *out)
{
    lsvc_host *h = lsvc_host_new();
    lsvc_service *svc = h ? lsvc_service_new(h, script, 0, NULL) : NULL;
    if (!svc || lsvc_host_add(h, svc) != 0 || lsvc_watchdog_start(h) != 0 ||
        lsvc_worker_start(svc) != 0)
        return 1;
    size_t failed = lsvc_host_wait_loaded(h);
    lsvc_host_release(h, false);
    lsvc_host_wait_stopped(h);
    lsvc_host_join(h);
    if (failed)
        return 2;
    pthread_mutex_lock(&svc->mu);
    snprintf(out->name, sizeof out->name, "%s", svc->name);
    snprintf(out->description, sizeof out->description, "%s",
             svc->description[0] ? svc->description
                                 : svc->display_name[0] ? svc->display_name : svc->name);
    out->stop_timeout_ms = svc->stop_timeout_ms;
    out->watchdog_ms = svc->watchdog_ms;
    pthread_mutex_unlock(&svc->mu);
    return 0;
}
