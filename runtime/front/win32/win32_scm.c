/*
 * win32_scm.c - the process the Windows service control manager starts:
 * `luasvc.exe service [--log-file PATH [--log-max-size SIZE] [--log-keep N]]
 * [--no-watch] NAME SCRIPT [NAME SCRIPT]...`, as `luasvc install` writes
 * it. Scripts are watched for hot
 * reload as under `luasvc run` unless --no-watch. StartServiceCtrlDispatcherW comes first, with a table entry
 * per hosted script; each ServiceMain registers HandlerEx, reports
 * START_PENDING at once and then drives one host (its own watchdog and
 * worker) through the same service path as `luasvc run`.
 *
 * Threads: main (the dispatcher; HandlerEx runs on it and only calls
 * lsvc_service_control_event, which never touches Lua), one ServiceMain
 * thread per service (waits for its service to stop), the watchdogs and
 * workers.
 * Status reports come from any of them, one at a time and in order
 * (service.c); scm_report's lock orders them with this file's own
 * START_PENDING and early STOPPED.
 */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <windows.h>

#include "win32.h"

typedef struct scm_entry {
    wchar_t *wname;
    char *script;
    DWORD type;
    SERVICE_STATUS_HANDLE handle;
    CRITICAL_SECTION report_mu; /* one SetServiceStatus at a time, in order */
    bool stopped_sent;
    DWORD last_state; /* the last state reported, under report_mu */
    /* Set by ServiceMain once START_PENDING is reported and the service
     * exists; read by HandlerEx on the dispatcher thread. */
    _Atomic(lsvc_service *) svc;
} scm_entry;

static scm_entry *g_entries;
static int g_n;
/* The hot-reload file watch of every hosted service (0: off). */
static uint32_t g_watch_ms = LSVC_WATCH_DEFAULT_MS;

static void set_status(scm_entry *e, const lsvc_status *st)
{
    SERVICE_STATUS ss = {
        .dwServiceType = e->type,
        .dwCurrentState = (DWORD)st->state,
        .dwControlsAccepted = st->controls_accepted,
        .dwWin32ExitCode = st->exit.win32,
        .dwServiceSpecificExitCode =
            st->exit.win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR ? st->exit.service_specific : 0,
        .dwCheckPoint = st->checkpoint,
        .dwWaitHint = st->wait_hint,
    };
    lsvc_service *svc = atomic_load(&e->svc);
    if (!SetServiceStatus(e->handle, &ss))
        lsvc_log(LSVC_LOG_ERROR, svc ? lsvc_service_name(svc) : NULL, "SetServiceStatus: error %lu",
                 (unsigned long)GetLastError());
}

/* The lifecycle line of a report, for the log file and the event log:
 * NOTICE for RUNNING, PAUSED and a clean STOPPED, ERROR for a STOPPED with
 * an exit code. */
static void log_report(lsvc_service *svc, const lsvc_status *st, bool changed)
{
    char text[LSVC_EXIT_TEXT_MAX];
    if (st->state == LSVC_STOPPED && st->exit.win32 != LSVC_NO_ERROR)
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s",
                 lsvc_exit_text(st->exit, NULL, text, sizeof text));
    else if (changed &&
             (st->state == LSVC_RUNNING || st->state == LSVC_PAUSED || st->state == LSVC_STOPPED))
        lsvc_log(LSVC_LOG_NOTICE, lsvc_service_name(svc), "%s", lsvc_state_name(st->state));
}

/*
 * The front end's report callback: any thread, no lock of the service held.
 * service.c hands reports over one at a time and in the order of the
 * changes (a stale one never arrives), so the status given is the one to
 * send. STOPPED goes out once, and nothing after it.
 */
static void scm_report(lsvc_service *svc, const lsvc_status *st, void *ud)
{
    scm_entry *e = ud;
    EnterCriticalSection(&e->report_mu);
    if (!e->stopped_sent) {
        if (st->state == LSVC_STOPPED)
            e->stopped_sent = true;
        /* The lifecycle, for the log file and the event log (NOTICE),
         * logged before the report: once the last service of the process
         * is reported STOPPED, StartServiceCtrlDispatcherW returns and the
         * process ends, this thread with it. */
        bool changed = e->last_state != (DWORD)st->state;
        e->last_state = (DWORD)st->state;
        log_report(svc, st, changed);
        set_status(e, st);
    }
    LeaveCriticalSection(&e->report_mu);
}

/* HandlerEx, on the dispatcher thread: the foundation's control handler,
 * bounded time, no Lua. The event data (SESSIONCHANGE's session id,
 * POWEREVENT's power setting) is copied into the event here: it lives only
 * for this call. */
static DWORD WINAPI handler_ex(DWORD control, DWORD event_type, LPVOID data, LPVOID ctx)
{
    scm_entry *e = ctx;
    lsvc_service *svc = atomic_load(&e->svc);
    if (!svc) /* still setting up, START_PENDING reported: the SCM knows it */
        return control == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
    lsvc_event ev;
    lsvc_event_from_scm(&ev, control, event_type, data);
    uint32_t rc = lsvc_service_control_event(svc, &ev);
    return rc == LSVC_NO_ERROR ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

static void stopped_early(scm_entry *e, uint32_t win32)
{
    lsvc_status st = {.state = LSVC_STOPPED, .exit = {win32, 0}};
    lsvc_service *svc = atomic_load(&e->svc);
    char text[LSVC_EXIT_TEXT_MAX];
    lsvc_log(LSVC_LOG_ERROR, svc ? lsvc_service_name(svc) : NULL, "%s",
             lsvc_exit_text(st.exit, NULL, text, sizeof text));
    EnterCriticalSection(&e->report_mu);
    e->stopped_sent = true;
    set_status(e, &st);
    LeaveCriticalSection(&e->report_mu);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    scm_entry *e = NULL;
    for (int i = 0; i < g_n && argc > 0; i++)
        if (_wcsicmp(g_entries[i].wname, argv[0]) == 0)
            e = &g_entries[i];
    if (!e && g_n == 1)
        e = &g_entries[0]; /* an own-process service may be started by any name */
    if (!e)
        return;

    /* START_PENDING at once, before anything that takes time. */
    e->handle = RegisterServiceCtrlHandlerExW(argv[0], handler_ex, e);
    if (!e->handle)
        return;
    lsvc_status st = {.state = LSVC_START_PENDING, .wait_hint = LSVC_START_WAIT_HINT_MS};
    EnterCriticalSection(&e->report_mu);
    set_status(e, &st);
    LeaveCriticalSection(&e->report_mu);

    /* Start arguments after the service's name, UTF-8 for Lua. */
    int nargs = argc > 1 ? (int)argc - 1 : 0;
    char **args = calloc((size_t)nargs + 1, sizeof *args);
    bool args_ok = args != NULL;
    for (int i = 0; args_ok && i < nargs; i++)
        args_ok = (args[i] = lsvc_utf8(argv[i + 1])) != NULL;

    lsvc_service_opts so = {
        .script = e->script,
        .argc = args_ok ? nargs : 0,
        .argv = args,
        .report = scm_report,
        .report_ud = e,
        .watch_interval_ms = g_watch_ms,
    };
    lsvc_host *h = lsvc_host_new();
    lsvc_service *svc = h ? lsvc_service_new(h, &so) : NULL;
    if (svc && lsvc_host_add(h, svc) != 0)
        svc = NULL;
    atomic_store(&e->svc, svc);
    if (!svc || !args_ok) {
        stopped_early(e, ERROR_NOT_ENOUGH_MEMORY);
        return;
    }
    if (lsvc_watchdog_start(h) != 0 || lsvc_worker_start(svc) != 0) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "cannot start a thread");
        stopped_early(e, ERROR_NOT_ENOUGH_MEMORY);
        return;
    }
    /* A load failure is reported STOPPED by the worker itself. */
    size_t failed = lsvc_host_wait_loaded(h);
    lsvc_pipe *pipe = failed ? NULL : lsvc_win32_pipe_start(h); /* luasvc eval */
    lsvc_host_release(h, failed == 0);
    lsvc_host_wait_stopped(h);
    lsvc_win32_pipe_stop(pipe);
    lsvc_host_join(h);
}

/* Log lines go to stderr, which a service does not have: --log-file PATH
 * sends them to the file instead (UTF-8 path, appended), rotated as
 * `luasvc run --log-file` rotates it (logfile.c). 0, or 1 after saying why. */
static int log_to(const char *path, const char *max_size, const char *keep)
{
    uint64_t max = 0;
    char *end = NULL;
    long k = keep ? strtol(keep, &end, 10) : 5;
    if ((max_size && (lsvc_parse_size(max_size, &max) != 0 || max == 0)) ||
        (keep && (!*keep || *end || k < 0 || k > 1000))) {
        fprintf(stderr, "luasvc service: bad --log-max-size or --log-keep\n");
        return 1;
    }
    char err[600];
    lsvc_logfile *lf = lsvc_logfile_open(path, max, (unsigned)k, err, sizeof err);
    if (!lf) {
        fprintf(stderr, "luasvc service: %s\n", err);
        return 1;
    }
    lsvc_log_set_file(lf); /* open until the process ends */
    return 0;
}

int lsvc_win32_service_main(int argc, char **argv)
{
    const char *log_file = NULL, *log_max = NULL, *log_keep = NULL;
    for (;;) {
        const char **v = argc < 2                                 ? NULL
                         : strcmp(argv[0], "--log-file") == 0     ? &log_file
                         : strcmp(argv[0], "--log-max-size") == 0 ? &log_max
                         : strcmp(argv[0], "--log-keep") == 0     ? &log_keep
                                                                  : NULL;
        if (v) {
            *v = argv[1];
            argc -= 2;
            argv += 2;
        } else if (argc >= 1 && strcmp(argv[0], "--no-watch") == 0) {
            g_watch_ms = 0;
            argc--;
            argv++;
        } else {
            break;
        }
    }
    if (log_file && log_to(log_file, log_max, log_keep) != 0)
        return 1;
    if (argc < 2 || argc % 2) {
        fprintf(stderr, "usage: luasvc service [--log-file PATH [--log-max-size SIZE] "
                        "[--log-keep N]] [--no-watch] NAME SCRIPT [NAME SCRIPT]...\n"
                        "(the command line `luasvc install` gives the service manager)\n");
        return 2;
    }
    g_n = argc / 2;
    g_entries = calloc((size_t)g_n, sizeof *g_entries);
    SERVICE_TABLE_ENTRYW *table = calloc((size_t)g_n + 1, sizeof *table);
    if (!g_entries || !table)
        return 1;
    for (int i = 0; i < g_n; i++) {
        scm_entry *e = &g_entries[i];
        e->wname = lsvc_wide(argv[2 * i]);
        e->script = argv[2 * i + 1];
        e->type = g_n > 1 ? SERVICE_WIN32_SHARE_PROCESS : SERVICE_WIN32_OWN_PROCESS;
        InitializeCriticalSection(&e->report_mu);
        atomic_init(&e->svc, NULL);
        if (!e->wname) {
            fprintf(stderr, "luasvc service: invalid name '%s'\n", argv[2 * i]);
            return 2;
        }
        table[i].lpServiceName = e->wname;
        table[i].lpServiceProc = service_main;
    }
    char **names = calloc((size_t)g_n, sizeof *names);
    if (!names)
        return 1;
    for (int i = 0; i < g_n; i++)
        names[i] = argv[2 * i];
    lsvc_win32_eventlog_open(g_n, names);
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD err = GetLastError();
        char text[512];
        lsvc_win32_error_text(err, text, sizeof text);
        fprintf(stderr, "luasvc service: StartServiceCtrlDispatcher: error %lu: %s\n%s",
                (unsigned long)err, text,
                err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
                    ? "this command is for the service manager; use `luasvc run SCRIPT` in a "
                      "console\n"
                    : "");
        return 1;
    }
    return 0;
}
