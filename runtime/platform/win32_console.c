/*
 * win32_console.c - `luasvc run` and `luasvc check` on Windows: hosts
 * services in the foreground through the same service path as the SCM
 * front end (service.c's control handler, one worker per script, the
 * watchdog). Ctrl+C, Ctrl+Break and closing the console are STOP; status
 * changes are log lines; the exit status is 0 after clean stops.
 *
 * Threads: main (start, wait, exit), the console control thread the system
 * creates for each Ctrl event (it only calls the control handler), the
 * watchdog, the workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win32.h"

typedef struct console_svc {
    atomic_int last_state;
    atomic_uint last_checkpoint;
} console_svc;

static lsvc_host *g_host; /* set before the Ctrl handler is installed */

/* A log line per state change, one per checkpoint. Any thread, no lock held. */
static void console_report(lsvc_service *svc, const lsvc_status *st, void *ud)
{
    console_svc *c = ud;
    int prev = atomic_exchange(&c->last_state, (int)st->state);
    unsigned prev_cp = atomic_exchange(&c->last_checkpoint, st->checkpoint);
    if (prev == (int)st->state) {
        if (st->checkpoint != prev_cp)
            lsvc_log(LSVC_LOG_INFO, svc->name, "%s checkpoint %u, wait hint %u ms",
                     lsvc_state_name(st->state), st->checkpoint, st->wait_hint);
        return;
    }
    if (st->state != LSVC_STOPPED)
        lsvc_log(LSVC_LOG_INFO, svc->name, "%s", lsvc_state_name(st->state));
    else if (st->exit.win32 == LSVC_NO_ERROR)
        lsvc_log(LSVC_LOG_INFO, svc->name, "STOPPED");
    else if (st->exit.win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR)
        lsvc_log(LSVC_LOG_ERROR, svc->name, "STOPPED with service-specific exit code %u",
                 st->exit.service_specific);
    else
        lsvc_log(LSVC_LOG_ERROR, svc->name, "STOPPED with error %u: %s", st->exit.win32,
                 lsvc_win32_message(st->exit.win32));
}

/* A stop from the console's user: meant even while the service is starting
 * or does not accept STOP from a service manager. */
static void console_stop(lsvc_service *svc, const char *why)
{
    uint32_t rc = lsvc_service_control(svc, LSVC_CTRL_STOP, 0);
    if (rc == LSVC_NO_ERROR || rc == LSVC_ERROR_SERVICE_NOT_ACTIVE)
        return;
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    if (st.state == LSVC_STOP_PENDING) {
        lsvc_log(LSVC_LOG_WARNING, svc->name, "%s: already stopping (stop_timeout %u ms)", why,
                 svc->stop_timeout_ms);
        return;
    }
    lsvc_log(LSVC_LOG_NOTICE, svc->name, "%s while %s: stopping as soon as it can", why,
             lsvc_state_name(st.state));
    lsvc_service_request_stop(svc);
    lsvc_queue_wake(&svc->queue);
}

/* On the thread the system creates for a console event: never touches Lua. */
static BOOL WINAPI ctrl_handler(DWORD ev)
{
    const char *why = ev == CTRL_C_EVENT       ? "Ctrl+C"
                      : ev == CTRL_BREAK_EVENT ? "Ctrl+Break"
                      : ev == CTRL_CLOSE_EVENT ? "console closed"
                                               : "logoff or shutdown";
    for (size_t i = 0; i < g_host->n; i++)
        console_stop(g_host->svcs[i], why);
    /* After a close the process ends when this returns (the system allows
     * a few seconds): let the services stop first. */
    if (ev == CTRL_CLOSE_EVENT || ev == CTRL_LOGOFF_EVENT || ev == CTRL_SHUTDOWN_EVENT)
        lsvc_host_wait_stopped(g_host);
    return TRUE;
}

static int usage(const char *msg)
{
    fprintf(stderr,
            "luasvc run: %s\nusage: luasvc run [--log-level LEVEL] [--no-watch] "
            "[--watch-interval MS]\n                  [--allow-insecure-script] SCRIPT... "
            "[-- ARGS...]\n",
            msg);
    return 2;
}

/* Create the host and start a worker per script. NULL on failure. */
static uint32_t g_watch_ms = LSVC_WATCH_DEFAULT_MS;
static bool g_allow_insecure;

static lsvc_host *host_start(int n, char **scripts, int nargs, char **args, console_svc *cs)
{
    lsvc_host *h = lsvc_host_new();
    if (!h)
        return NULL;
    for (int k = 0; k < n; k++) {
        lsvc_service *svc = lsvc_service_new(h, scripts[k], nargs, args);
        if (!svc || lsvc_host_add(h, svc) != 0)
            return NULL;
        if (cs) { /* running, not checking: watched for hot reload */
            atomic_init(&cs[k].last_state, LSVC_STOPPED);
            svc->report = console_report;
            svc->report_ud = &cs[k];
            svc->watch_interval_ms = g_watch_ms;
        }
        svc->allow_insecure = g_allow_insecure;
    }
    if (lsvc_watchdog_start(h) != 0)
        return NULL;
    for (size_t k = 0; k < h->n; k++)
        if (lsvc_worker_start(h->svcs[k]) != 0) {
            lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start a worker thread");
            return NULL;
        }
    return h;
}

size_t lsvc_win32_check_scripts(int n, char **scripts, char (*names)[128], char (*display)[256])
{
    /* Quiet: the workers' "not started" lines are not news here. */
    lsvc_log_set_level(LSVC_LOG_WARNING);
    lsvc_host *h = host_start(n, scripts, 0, NULL, NULL);
    if (!h)
        return (size_t)n;
    size_t failed = lsvc_host_wait_loaded(h);
    lsvc_host_release(h, false);
    lsvc_host_wait_stopped(h);
    lsvc_host_join(h);
    lsvc_log_set_level(LSVC_LOG_INFO);
    for (int k = 0; k < n; k++) {
        lsvc_service *svc = h->svcs[k];
        pthread_mutex_lock(&svc->mu);
        if (names)
            memcpy(names[k], svc->name, sizeof names[k]);
        if (display)
            memcpy(display[k], svc->display_name, sizeof display[k]);
        pthread_mutex_unlock(&svc->mu);
    }
    return failed;
}

int lsvc_win32_console_run(int argc, char **argv, bool check_only)
{
    int first = 0, nscripts = 0, nargs = 0;
    char **args = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            args = argv + i + 1;
            nargs = argc - i - 1;
            break;
        }
        if (strcmp(argv[i], "--log-level") == 0) {
            if (i + 1 >= argc || lsvc_level_from_name(argv[i + 1]) < 0)
                return usage("--log-level needs one of debug, info, notice, warning, error");
            lsvc_log_set_level((lsvc_level)lsvc_level_from_name(argv[++i]));
            continue;
        }
        if (strcmp(argv[i], "--no-watch") == 0) {
            g_watch_ms = 0;
            continue;
        }
        if (strcmp(argv[i], "--watch-interval") == 0) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 10 || v > 60000)
                return usage("--watch-interval needs a number of ms in 10..60000");
            g_watch_ms = (uint32_t)v;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--allow-insecure-script") == 0) {
            g_allow_insecure = true;
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

    if (check_only) {
        char (*names)[128] = calloc((size_t)nscripts, sizeof *names);
        if (!names)
            return 1;
        size_t failed = lsvc_win32_check_scripts(nscripts, argv + first, names, NULL);
        if (!failed)
            for (int k = 0; k < nscripts; k++)
                printf("%s: ok (service '%s')\n", argv[first + k], names[k]);
        free(names);
        return failed ? 2 : 0;
    }

    console_svc *cs = calloc((size_t)nscripts, sizeof *cs);
    lsvc_host *h = cs ? host_start(nscripts, argv + first, nargs, args, cs) : NULL;
    if (!h)
        return 1;
    size_t failed = lsvc_host_wait_loaded(h);
    if (failed) {
        lsvc_host_release(h, false);
        lsvc_host_wait_stopped(h);
        lsvc_host_join(h);
        return 2;
    }
    g_host = h;
    SetConsoleCtrlHandler(ctrl_handler, TRUE);
    lsvc_host_release(h, true);
    lsvc_host_wait_stopped(h);
    int status = lsvc_host_exit_status(h);
    lsvc_host_join(h);
    return status;
}
