/*
 * console.c - `luasvc run` and `luasvc check` on every platform: hosts
 * services in the foreground through the same service path as every front
 * end (service.c's control handler, one worker per script, the watchdog).
 * Status changes are log lines; the process exit status is 0 after clean
 * stops. What differs between platforms (signals or the Ctrl handler, the
 * control endpoint, systemd) is the platform's half, lsvc_console_os_* in
 * posix/posix_console.c and win32/win32_console.c.
 *
 * Threads: main (parse, start, wait, exit); the report callback runs on
 * whichever thread changed a status; stop_all, which the platform's half
 * is given (lsvc_console_os_begin), on the thread that takes the user's
 * stop (signals, Ctrl events).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

typedef struct console_opts {
    char **scripts;
    int nscripts;
    char **args; /* after "--": the start arguments */
    int nargs;
    uint32_t watch_ms;
    bool watch_poll; /* an interval was asked for: poll on it */
    bool level_set;
    bool allow_insecure;
    const char *log_file; /* --log-file: the log there instead of stderr */
    uint64_t log_max;     /* --log-max-size (0: never rotate) */
    unsigned log_keep;    /* --log-keep */
    bool log_rotation_set;
    const char *metrics; /* --metrics ADDR:PORT: the health and metrics endpoint */
} console_opts;

#define LOG_KEEP_DEFAULT 5
#define LOG_KEEP_MAX 1000

/* One per service: what its last report said, for news-only log lines. */
typedef struct console_svc {
    atomic_int last_state;
    atomic_uint last_checkpoint;
} console_svc;

/* The option at argv[*i], and its value (*i moves past it): 0, or 2
 * after the usage error. Only the options usage.c lists for the verb. */
static int parse_option(const char *verb, int argc, char **argv, int *i, console_opts *o)
{
    const char *a = argv[*i];
    bool takes = false;
    if (!lsvc_usage_has_option(verb, a, &takes))
        return lsvc_usage_error(verb, "unknown option '%s'", a);
    const char *v = takes && *i + 1 < argc ? argv[++*i] : NULL;
    if (strcmp(a, "--log-level") == 0) {
        if (!v || lsvc_level_from_name(v) < 0)
            return lsvc_usage_error(verb, "--log-level needs one of debug, info, notice, "
                                          "warning, error");
        lsvc_log_set_level((lsvc_level)lsvc_level_from_name(v));
        o->level_set = true;
    } else if (strcmp(a, "--no-watch") == 0) {
        o->watch_ms = 0;
    } else if (strcmp(a, "--watch-interval") == 0) {
        char *end = NULL;
        long ms = v ? strtol(v, &end, 10) : 0;
        if (!v || *end || ms < 10 || ms > 60000)
            return lsvc_usage_error(verb, "--watch-interval needs a number of ms in 10..60000");
        o->watch_ms = (uint32_t)ms;
        o->watch_poll = true;
    } else if (strcmp(a, "--allow-insecure-script") == 0) {
        o->allow_insecure = true;
    } else if (strcmp(a, "--log-file") == 0) {
        if (!v || !*v)
            return lsvc_usage_error(verb, "--log-file needs a PATH");
        o->log_file = v;
    } else if (strcmp(a, "--log-max-size") == 0) {
        if (!v || lsvc_parse_size(v, &o->log_max) != 0 || o->log_max == 0)
            return lsvc_usage_error(verb, "--log-max-size needs a size above 0: bytes, or a "
                                          "number with k, M or G (512k, 10M)");
        o->log_rotation_set = true;
    } else if (strcmp(a, "--log-keep") == 0) {
        char *end = NULL;
        long n = v ? strtol(v, &end, 10) : -1;
        if (!v || !*v || *end || n < 0 || n > LOG_KEEP_MAX)
            return lsvc_usage_error(verb, "--log-keep needs a number of files in 0..%d",
                                    LOG_KEEP_MAX);
        o->log_keep = (unsigned)n;
        o->log_rotation_set = true;
    } else if (strcmp(a, "--metrics") == 0) {
        char err[256];
        if (!v || lsvc_metrics_check_addr(v, err, sizeof err) != 0)
            return lsvc_usage_error(verb, "--metrics needs ADDR:PORT: %s", v ? err : "none given");
        o->metrics = v;
    }
    return 0;
}

/* OPTIONS... SCRIPT... [-- ARGS]: 0, or 2 after the usage error. */
static int parse(const char *verb, int argc, char **argv, console_opts *o)
{
    *o = (console_opts){.watch_ms = LSVC_WATCH_DEFAULT_MS, .log_keep = LOG_KEEP_DEFAULT};
    int first = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            o->args = argv + i + 1;
            o->nargs = argc - i - 1;
            break;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            if (parse_option(verb, argc, argv, &i, o) != 0)
                return 2;
            continue;
        }
        if (!o->nscripts)
            first = i;
        else if (first + o->nscripts != i)
            return lsvc_usage_error(verb, "options must come before the scripts");
        o->nscripts++;
    }
    if (o->nscripts == 0)
        return lsvc_usage_error(verb, "no script given");
    if (o->log_rotation_set && !o->log_file)
        return lsvc_usage_error(verb, "--log-max-size and --log-keep go with --log-file");
    o->scripts = argv + first;
    return 0;
}

/* --log-file: from here on the log's lines go to the file (log.c), which
 * stays open until the process ends (a thread abandoned in a C call may
 * still log). 0, or the exit status after saying why. */
static int open_log_file(const char *verb, const console_opts *o)
{
    if (!o->log_file)
        return 0;
    char err[600];
    lsvc_logfile *lf = lsvc_logfile_open(o->log_file, o->log_max, o->log_keep, err, sizeof err);
    if (!lf) {
        fprintf(stderr, "luasvc %s: %s\n", verb, err);
        return 1;
    }
    lsvc_log_set_file(lf);
    return 0;
}

/* The console's status report: a log line per state change (info), one
 * per checkpoint (debug: a long drain makes many). Called on any thread,
 * with no lock held. */
static void console_report(lsvc_service *svc, const lsvc_status *st, void *ud)
{
    console_svc *c = ud;
    lsvc_console_os_report(svc, st);
    int prev = atomic_exchange(&c->last_state, (int)st->state);
    unsigned prev_cp = atomic_exchange(&c->last_checkpoint, st->checkpoint);
    const char *name = lsvc_service_name(svc);
    if (prev == (int)st->state) {
        if (st->checkpoint != prev_cp)
            lsvc_log(LSVC_LOG_DEBUG, name, "%s checkpoint %u, wait hint %u ms",
                     lsvc_state_name(st->state), st->checkpoint, st->wait_hint);
        return;
    }
    char text[LSVC_EXIT_TEXT_MAX];
    if (st->state != LSVC_STOPPED)
        lsvc_log(LSVC_LOG_INFO, name, "%s", lsvc_state_name(st->state));
    else
        lsvc_log(st->exit.win32 == LSVC_NO_ERROR ? LSVC_LOG_INFO : LSVC_LOG_ERROR, name, "%s",
                 lsvc_exit_text(st->exit, NULL, text, sizeof text));
}

static void console_reloading(lsvc_service *svc, bool begin, void *ud)
{
    (void)ud;
    lsvc_console_os_reloading(svc, begin);
}

/* A stop from the console's user for one service. */
static void user_stop(lsvc_service *svc, const char *why)
{
    uint32_t rc = lsvc_service_control(svc, LSVC_CTRL_STOP);
    if (rc == LSVC_NO_ERROR || rc == LSVC_ERROR_SERVICE_NOT_ACTIVE)
        return;
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    if (st.state == LSVC_STOP_PENDING) {
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc),
                 "%s: already stopping (stop_timeout %u ms)", why, lsvc_service_stop_timeout(svc));
        return;
    }
    lsvc_log(LSVC_LOG_NOTICE, lsvc_service_name(svc), "%s while %s: stopping as soon as it can",
             why, lsvc_state_name(st.state));
    lsvc_service_request_stop(svc);
    lsvc_service_wake(svc);
}

/* The user's stop (lsvc_console_stop_fn), given to the platform's half. */
static void stop_all(lsvc_host *h, const char *why)
{
    for (size_t i = 0; i < lsvc_host_count(h); i++)
        user_stop(lsvc_host_service(h, i), why);
}

/* A host with a service per script. cs: the console's report state, one
 * per script (NULL: no reports, as for an inspection). NULL on failure. */
static lsvc_host *host_new(const console_opts *o, console_svc *cs)
{
    lsvc_host *h = lsvc_host_new();
    for (int k = 0; h && k < o->nscripts; k++) {
        lsvc_service_opts so = {
            .script = o->scripts[k],
            .argc = o->nargs,
            .argv = o->args,
            .allow_insecure = o->allow_insecure,
            .watch_interval_ms = o->watch_ms,
            .watch_poll = o->watch_poll,
        };
        if (cs) {
            atomic_init(&cs[k].last_state, LSVC_STOPPED);
            so.report = console_report;
            so.reloading = console_reloading;
            so.report_ud = &cs[k];
        }
        lsvc_service *svc = lsvc_service_new(h, &so);
        if (!svc || lsvc_host_add(h, svc) != 0)
            return NULL;
    }
    return h;
}

static int start_workers(lsvc_host *h)
{
    for (size_t k = 0; k < lsvc_host_count(h); k++)
        if (lsvc_worker_start(lsvc_host_service(h, k)) != 0) {
            lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start a worker thread");
            return -1;
        }
    return 0;
}

/* Let none start, and wait for all to end. */
static void abort_all(lsvc_host *h)
{
    lsvc_host_release(h, false);
    lsvc_host_wait_stopped(h);
}

static void finish(lsvc_host *h)
{
    lsvc_console_os_end(h);
    lsvc_host_join(h);
    lsvc_fswatch_shutdown(); /* after the workers ended */
}

/* check: what loaded, once nothing failed. */
static int report_checked(lsvc_host *h, size_t failed)
{
    for (size_t k = 0; !failed && k < lsvc_host_count(h); k++) {
        lsvc_service *svc = lsvc_host_service(h, k);
        printf("%s: ok (service '%s')\n", lsvc_service_script(svc), lsvc_service_name(svc));
    }
    return failed ? 2 : 0;
}

/* How a run's start went, for the thread that learns it. */
typedef struct console_start {
    bool check_only;
    size_t failed;
} console_start;

/* The front end's preparation (lsvc_host_on_ready): the platform's part
 * (the endpoint's sockets, bound under temporary names). On this thread,
 * or on the last worker to load when it gets there first. */
static void console_prepare(lsvc_host *h, void *ud)
{
    console_start *s = ud;
    lsvc_console_os_loading(h, s->check_only);
}

/* The host's ready (lsvc_host_on_ready): every script has loaded and the
 * endpoint's sockets are bound. On the last thread to get there, most
 * often the last worker to load: it names the endpoint's sockets and
 * releases the services, then passes its own gate at once (a hand-over to
 * this thread and back would cost two wake-ups on the way to RUNNING). */
static void console_ready(lsvc_host *h, size_t failed, void *ud)
{
    console_start *s = ud;
    s->failed = lsvc_console_os_open(h, s->check_only, failed);
    if (!s->failed && !s->check_only)
        lsvc_host_release(h, true);
}

/*
 * Run (or check) the scripts. While the workers make their Lua states and
 * load, this thread opens the log's output and does the platform's part
 * (console_prepare: unless the last worker to load gets there first, as
 * when the workers took the CPU this thread was on); then the watchdog's
 * thread starts (a deadline set before it runs is seen when it does): on
 * two cores, no third thread runs beside a loading worker. The last to be
 * done, this thread or a worker, names the endpoint and releases the
 * services (console_ready).
 */
int lsvc_console_run(const char *verb, int argc, char **argv)
{
    bool check_only = strcmp(verb, "check") == 0;
    console_opts o;
    if (parse(verb, argc, argv, &o) != 0)
        return 2;
    if (open_log_file(verb, &o) != 0)
        return 1;
    char err[512];
    lsvc_metrics *metrics = o.metrics ? lsvc_metrics_open(o.metrics, err, sizeof err) : NULL;
    if (o.metrics && !metrics) {
        fprintf(stderr, "luasvc %s: --metrics %s\n", verb, err);
        return 1;
    }
    if (check_only) {
        o.watch_ms = 0;
        if (!o.level_set) /* the states of a load that starts nothing are not news */
            lsvc_log_set_level(LSVC_LOG_WARNING);
    }
    console_svc *cs = calloc((size_t)o.nscripts, sizeof *cs);
    lsvc_host *h = cs ? host_new(&o, cs) : NULL;
    int rc = h ? lsvc_console_os_begin(h, check_only, stop_all) : 1;
    console_start start = {.check_only = check_only};
    if (h)
        lsvc_host_on_ready(h, console_prepare, console_ready, &start);
    if (rc != 0 || start_workers(h) != 0)
        return rc ? rc : 1;
    /* The log's output, which the workers' first line (START_PENDING)
     * would otherwise open on their way to RUNNING. */
    lsvc_log_prepare();
    lsvc_host_prepare(h);
    if (lsvc_watchdog_start(h) != 0)
        return 1;
    /* Served from the start, so that a probe learns START_PENDING too. */
    int mrc = lsvc_metrics_start(metrics, h);
    if (mrc != 0)
        lsvc_log(LSVC_LOG_ERROR, NULL, "cannot start the metrics thread: %s", strerror(mrc));
    lsvc_host_wait_ready(h);
    size_t failed = start.failed;
    if (failed || check_only) {
        abort_all(h);
        lsvc_metrics_close(metrics);
        finish(h);
        return report_checked(h, failed);
    }
    int serve_rc = mrc ? 1 : lsvc_console_os_serve(h);
    if (mrc)
        stop_all(h, "no metrics thread");
    lsvc_host_wait_stopped(h);
    int status = serve_rc ? serve_rc : lsvc_host_exit_status(h);
    lsvc_metrics_close(metrics);
    finish(h);
    return status;
}

size_t lsvc_console_inspect(int n, char **scripts, lsvc_service_info *out)
{
    console_opts o = {.scripts = scripts, .nscripts = n};
    lsvc_log_set_level(LSVC_LOG_WARNING); /* a load's own chatter is not news here */
    lsvc_host *h = host_new(&o, NULL);
    if (!h || lsvc_watchdog_start(h) != 0 || start_workers(h) != 0)
        return (size_t)n;
    size_t failed = lsvc_host_wait_loaded(h);
    abort_all(h);
    lsvc_host_join(h);
    lsvc_log_set_level(LSVC_LOG_INFO);
    for (int k = 0; k < n; k++)
        lsvc_service_get_info(lsvc_host_service(h, (size_t)k), &out[k]);
    return failed;
}
