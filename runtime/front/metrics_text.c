/*
 * metrics_text.c - what the host's metrics endpoint (metrics.c) answers,
 * pure: lsvc_metrics_render, the services' numbers in the Prometheus text
 * exposition format 0.0.4, and lsvc_metrics_health, the rule /healthz
 * applies (where each service is beside where it was asked to be). Any
 * thread; the caller brings the stats (lsvc_service_get_stats).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"

#define MS 1000000ull

/* ---- what the answers say (pure, any thread) --------------------------- */

/* A label value or HELP text, escaped as the exposition format wants:
 * backslash and newline, and in a label value the double quote too. */
static void put_escaped(lsvc_buf *b, const char *s, bool label)
{
    for (; *s; s++) {
        if (*s == '\\')
            lsvc_buf_add(b, "\\\\");
        else if (*s == '\n')
            lsvc_buf_add(b, "\\n");
        else if (*s == '"' && label)
            lsvc_buf_add(b, "\\\"");
        else
            lsvc_buf_printf(b, "%c", *s);
    }
}

/* One family's head: # HELP and # TYPE. */
static void family(lsvc_buf *b, const char *name, const char *type, const char *help)
{
    lsvc_buf_printf(b, "# HELP %s ", name);
    put_escaped(b, help, false);
    lsvc_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name{service="NAME"[,le="LE"]} */
static void series(lsvc_buf *b, const char *name, const lsvc_service_stats *s, const char *le)
{
    lsvc_buf_printf(b, "%s{service=\"", name);
    put_escaped(b, s->name, true);
    if (le)
        lsvc_buf_printf(b, "\",le=\"%s", le);
    lsvc_buf_add(b, "\"} ");
}

typedef struct metric_def {
    const char *name, *type, *help;
    uint64_t (*value)(const lsvc_service_stats *s);
} metric_def;

static uint64_t v_state(const lsvc_service_stats *s) { return (uint64_t)s->status.state; }
static uint64_t v_controls(const lsvc_service_stats *s) { return s->controls_delivered; }
static uint64_t v_reloads(const lsvc_service_stats *s) { return s->reloads; }
static uint64_t v_reload_errors(const lsvc_service_stats *s) { return s->reload_errors; }
static uint64_t v_lua_bytes(const lsvc_service_stats *s) { return s->gauges.lua_bytes; }
static uint64_t v_tasks(const lsvc_service_stats *s) { return s->gauges.tasks; }
static uint64_t v_children(const lsvc_service_stats *s) { return s->gauges.children; }

static const metric_def metric_defs[] = {
    {"luasvc_service_state", "gauge",
     "The service's state, numbered as the Windows SCM does: 1 STOPPED, 2 START_PENDING, "
     "3 STOP_PENDING, 4 RUNNING, 5 CONTINUE_PENDING, 6 PAUSE_PENDING, 7 PAUSED.",
     v_state},
    {"luasvc_controls_total", "counter",
     "Controls delivered to the service's handlers (or settled without one).", v_controls},
    {"luasvc_reloads_total", "counter", "Hot reloads the service took up.", v_reloads},
    {"luasvc_reload_errors_total", "counter",
     "Reloads refused (the new version failed to load or its reload() failed).", v_reload_errors},
    {"luasvc_lua_memory_bytes", "gauge", "Memory of the service's Lua state.", v_lua_bytes},
    {"luasvc_tasks", "gauge", "Live tasks of the service (run, handlers, spawned tasks, a load).",
     v_tasks},
    {"luasvc_children", "gauge", "Live child processes of the service.", v_children},
};
#define NMETRICS (sizeof metric_defs / sizeof metric_defs[0])

/* luasvc_control_latency_seconds: the supervisor's buckets made
 * cumulative, as Prometheus's histograms are. */
static void latency_histogram(lsvc_buf *b, const lsvc_service_stats *s, size_t n)
{
    const char *name = "luasvc_control_latency_seconds";
    family(b, name, "histogram",
           "Time from a control's arrival at the control handler to its Lua handler's start.");
    for (size_t k = 0; k < n; k++) {
        uint64_t cum = 0;
        for (size_t i = 0; i < LSVC_LATENCY_BUCKETS; i++) {
            char le[32];
            double bound = lsvc_latency_bounds_s[i];
            if (i + 1 == LSVC_LATENCY_BUCKETS) /* the supervisor's last bound is +Inf */
                snprintf(le, sizeof le, "+Inf");
            else
                snprintf(le, sizeof le, "%g", bound);
            cum += s[k].latency_buckets[i];
            series(b, "luasvc_control_latency_seconds_bucket", &s[k], le);
            lsvc_buf_printf(b, "%llu\n", (unsigned long long)cum);
        }
        series(b, "luasvc_control_latency_seconds_sum", &s[k], NULL);
        lsvc_buf_printf(b, "%.9f\n", (double)s[k].latency_sum_ns / 1e9);
        series(b, "luasvc_control_latency_seconds_count", &s[k], NULL);
        lsvc_buf_printf(b, "%llu\n", (unsigned long long)cum);
    }
}

void lsvc_metrics_render(lsvc_buf *b, const lsvc_service_stats *s, size_t n)
{
    for (size_t m = 0; m < NMETRICS; m++) {
        const metric_def *d = &metric_defs[m];
        family(b, d->name, d->type, d->help);
        for (size_t k = 0; k < n; k++) {
            series(b, d->name, &s[k], NULL);
            lsvc_buf_printf(b, "%llu\n", (unsigned long long)d->value(&s[k]));
        }
        if (m == 1) /* after the controls' count, their latency */
            latency_histogram(b, s, n);
    }
}

/*
 * Is the service where it was asked to be? RUNNING and PAUSED are (a
 * pause is asked for, and a liveness probe must not restart a paused
 * service); STOPPED is when it ended cleanly (asked to stop, or its run
 * returned), not with an error; START_PENDING and STOP_PENDING are not
 * (not serving yet, or going away: a readiness probe takes it out);
 * PAUSE_PENDING and CONTINUE_PENDING are on their way to where they were
 * asked to be while within their wait hint, and stuck past it. A service
 * that has not begun (its script still loading) is not. When not, why
 * says so in full ("STOPPED with error 1067: ...", "STOP_PENDING for
 * 12 ms").
 */
static bool where_asked(const lsvc_service_stats *s, uint64_t now_ns, char *why, size_t len)
{
    const lsvc_status *st = &s->status;
    uint64_t in_ms = s->moved_ns && now_ns > s->moved_ns ? (now_ns - s->moved_ns) / MS : 0;
    why[0] = '\0';
    switch (st->state) {
    case LSVC_RUNNING:
    case LSVC_PAUSED: return true;
    case LSVC_STOPPED:
        if (!s->moved_ns) {
            snprintf(why, len, "not started yet (its script loading)");
            return false;
        }
        if (st->exit.win32 == LSVC_NO_ERROR)
            return true;
        lsvc_exit_text(st->exit, NULL, why, len);
        return false;
    case LSVC_START_PENDING:
        snprintf(why, len, "START_PENDING for %llu ms (checkpoint %u)", (unsigned long long)in_ms,
                 st->checkpoint);
        return false;
    case LSVC_STOP_PENDING:
        snprintf(why, len, "STOP_PENDING for %llu ms", (unsigned long long)in_ms);
        return false;
    default:
        if (in_ms <= st->wait_hint)
            return true;
        snprintf(why, len, "%s for %llu ms, past its wait hint of %u ms",
                 lsvc_state_name(st->state), (unsigned long long)in_ms, st->wait_hint);
        return false;
    }
}

int lsvc_metrics_health(lsvc_buf *b, const lsvc_service_stats *s, size_t n, uint64_t now_ns)
{
    size_t bad = 0;
    char why[LSVC_EXIT_TEXT_MAX];
    for (size_t k = 0; k < n; k++)
        bad += !where_asked(&s[k], now_ns, why, sizeof why);
    if (bad)
        lsvc_buf_printf(b, "unhealthy: %zu of %zu service%s %s not where %s asked to be\n", bad, n,
                        n == 1 ? "" : "s", bad == 1 ? "is" : "are",
                        bad == 1 ? "it was" : "they were");
    else
        lsvc_buf_printf(b, "ok: %s is where it was asked to be\n",
                        n == 1 ? "the service" : "every service");
    for (size_t k = 0; k < n; k++) {
        bool ok = where_asked(&s[k], now_ns, why, sizeof why);
        lsvc_buf_printf(b, "%s: %s\n", s[k].name, ok ? lsvc_state_name(s[k].status.state) : why);
    }
    return bad ? 503 : 200;
}
