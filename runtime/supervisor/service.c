/*
 * service.c - one hosted service: its status, its control handler and its
 * state changes.
 *
 * lsvc_service_control is the control handler every front end calls (the
 * SCM's HandlerEx, the endpoint thread, the signal thread): it never touches
 * Lua, holds the service mutex only for a few comparisons, reports the
 * pending state at once, queues the control for the worker and returns.
 * The set_state/progress functions are for the worker thread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service_impl.h"

lsvc_service *lsvc_service_new(lsvc_host *host, const lsvc_service_opts *o)
{
    const char *script = o->script;
    lsvc_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->opts = *o;
    svc->opts.script = strdup(script);
    svc->host = host;
    svc->status.state = LSVC_STOPPED;
    svc->stop_timeout_ms = LSVC_STOP_TIMEOUT_DEFAULT_MS;
    svc->created_ns = lsvc_now_ns();
    atomic_init(&svc->interrupt, 0);
    pthread_mutex_init(&svc->mu, NULL);
    pthread_mutex_init(&svc->report_mu, NULL);
    lsvc_cond_init(&svc->load_cv); /* monotonic: lsvc_service_wait_worker's deadline */
    if (!svc->opts.script || lsvc_queue_init(&svc->queue) != 0) {
        free((char *)svc->opts.script);
        free(svc);
        return NULL;
    }
    /* A provisional name from the file, until the script names itself. */
    const char *base = script;
    for (const char *p = script; *p; p++)
        if (LSVC_IS_SEP(*p))
            base = p + 1;
    snprintf(svc->name, sizeof svc->name, "%s", base);
    char *dot = strrchr(svc->name, '.');
    if (dot && strcmp(dot, ".lua") == 0)
        *dot = '\0';
    return svc;
}

static void drop_consoles(lsvc_service *svc);

void lsvc_service_free(lsvc_service *svc)
{
    if (!svc)
        return;
    drop_consoles(svc);
    lsvc_queue_destroy(&svc->queue);
    pthread_mutex_destroy(&svc->mu);
    pthread_mutex_destroy(&svc->report_mu);
    pthread_cond_destroy(&svc->load_cv);
    free((char *)svc->opts.script);
    free(svc);
}

/* The mask as reported: a service takes no control while starting,
 * stopping or stopped, as real services report it. */
static uint32_t reported_mask(lsvc_state st, uint32_t accepts)
{
    return (st == LSVC_START_PENDING || st == LSVC_STOP_PENDING || st == LSVC_STOPPED) ? 0
                                                                                       : accepts;
}

/* Under mu: enter state st, as every change does: checkpoint 0, the wait
 * hint and the mask as reported in st. The script's status text stays
 * (shown beside the new state) until the script changes it. */
static void enter(lsvc_service *svc, lsvc_state st, uint32_t wait_hint)
{
    svc->status.state = st;
    svc->status.checkpoint = 0;
    svc->status.wait_hint = wait_hint;
    svc->status.controls_accepted = reported_mask(st, svc->accepts);
    svc->moved_ns = lsvc_now_ns();
}

/* Under mu: the watchdog's next deadline (at_ns 0: none). */
static void arm(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind, uint32_t code)
{
    svc->deadline_ns = at_ns;
    svc->deadline_kind = at_ns ? kind : LSVC_DEADLINE_NONE;
    svc->deadline_code = code;
}

/* Under mu: a stop was asked for (a control, or the service itself). */
static void stop_requested(lsvc_service *svc, uint32_t code, uint64_t from_ns)
{
    svc->stop_requested = true;
    svc->stop_code = code;
    enter(svc, LSVC_STOP_PENDING, svc->stop_timeout_ms);
    arm(svc, from_ns + (uint64_t)svc->stop_timeout_ms * 1000000u, LSVC_DEADLINE_STOP, code);
}

static _Atomic(const lsvc_observer *) observer;

void lsvc_service_observe(const lsvc_observer *obs) { atomic_store(&observer, obs); }

void lsvc_service_released(lsvc_service *svc, bool go)
{
    const lsvc_observer *obs = atomic_load(&observer);
    if (obs && obs->release)
        obs->release(svc, go);
}

/* Under svc->mu: the status to report, numbered in the order of the
 * changes. */
static lsvc_status snapshot(lsvc_service *svc)
{
    svc->status.seq = ++svc->snapshot_seq;
    return svc->status;
}

/* Reports leave in the order of their snapshots: a thread that took its
 * snapshot before another's but reaches here after it (the control
 * handler's PAUSE_PENDING behind the worker's PAUSED) reports nothing, so
 * no manager and no log ever sees a status older than one already seen. */
static void report(lsvc_service *svc, const lsvc_status *st)
{
    pthread_mutex_lock(&svc->report_mu);
    if (st->seq > svc->reported_seq) {
        svc->reported_seq = st->seq;
        const lsvc_observer *obs = atomic_load(&observer);
        if (obs)
            obs->report(svc, st); /* a script's status_slot */
        if (obs && obs->front_end)
            obs->front_end(true);
        if (svc->opts.report)
            svc->opts.report(svc, st, svc->opts.report_ud);
        if (obs && obs->front_end)
            obs->front_end(false);
    }
    pthread_mutex_unlock(&svc->report_mu);
}

/* Under mu, which it releases: number the status as of now and, when
 * tell, report it. Every change of the status goes out through here. */
static void unlock_and_report(lsvc_service *svc, bool tell)
{
    lsvc_status snap = snapshot(svc);
    pthread_mutex_unlock(&svc->mu);
    if (tell)
        report(svc, &snap);
}

static bool user_handled(const lsvc_service *svc, uint32_t code)
{
    if (code < LSVC_CTRL_USER_MIN || code > LSVC_CTRL_USER_MAX)
        return false;
    uint32_t i = code - LSVC_CTRL_USER_MIN;
    return svc->user_handled[i / 8] & (1u << (i % 8));
}

uint32_t lsvc_service_control(lsvc_service *svc, uint32_t code)
{
    lsvc_event ev = {.code = code};
    return lsvc_service_control_event(svc, &ev);
}

uint32_t lsvc_service_control_event(lsvc_service *svc, const lsvc_event *in)
{
    uint32_t code = in->code;
    pthread_mutex_lock(&svc->mu);
    uint32_t err =
        lsvc_control_check(svc->status.state, svc->accepts, code, user_handled(svc, code));
    if (err != LSVC_NO_ERROR || code == LSVC_CTRL_INTERROGATE) {
        /* INTERROGATE: report the current status again */
        unlock_and_report(svc, err == LSVC_NO_ERROR);
        return err;
    }
    lsvc_event ev = *in;
    ev.arrived_ns = lsvc_now_ns();
    lsvc_state pending = lsvc_control_pending_state(code);
    /* PAUSE while PAUSED, CONTINUE while RUNNING: nothing to do. */
    if ((code == LSVC_CTRL_PAUSE && svc->status.state == LSVC_PAUSED) ||
        (code == LSVC_CTRL_CONTINUE && svc->status.state == LSVC_RUNNING)) {
        unlock_and_report(svc, true);
        return LSVC_NO_ERROR;
    }
    /* The worker is woken below, once svc->mu is released: it takes it at
     * once. A stop needs no queue slot: the worker sees stop_requested. */
    int qrc = lsvc_queue_push_quiet(&svc->queue, &ev);
    if (qrc != 0 && code != LSVC_CTRL_STOP && code != LSVC_CTRL_SHUTDOWN) {
        pthread_mutex_unlock(&svc->mu);
        /* -2: LSVC_QUEUE_MAX controls wait already; -1: out of memory */
        return qrc == -2 ? LSVC_ERROR_NOT_ENOUGH_QUOTA : LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
    }
    /* Every pending state resolves within stop_timeout, or the code
     * holding it up is interrupted: no path stays pending. */
    if (pending == LSVC_STOP_PENDING) {
        stop_requested(svc, code, ev.arrived_ns);
    } else if (pending) {
        enter(svc, pending, svc->stop_timeout_ms);
        arm(svc, ev.arrived_ns + (uint64_t)svc->stop_timeout_ms * 1000000u, LSVC_DEADLINE_CONTROL,
            code);
    }
    lsvc_status snap = snapshot(svc);
    pthread_mutex_unlock(&svc->mu);
    /* a pending state is reported before the worker is woken: woken first,
     * it could reach the state after it (STOPPED) and be reported first,
     * and the pending one, older, would then be dropped (report) */
    if (pending)
        report(svc, &snap);
    lsvc_queue_notify(&svc->queue);
    if (pending)
        lsvc_watchdog_kick(svc->host);
    return LSVC_NO_ERROR;
}

uint32_t lsvc_service_console(lsvc_service *svc, lsvc_console *c)
{
    pthread_mutex_lock(&svc->mu);
    lsvc_state st = svc->status.state;
    if (st == LSVC_STOPPED || st == LSVC_START_PENDING || st == LSVC_STOP_PENDING ||
        svc->stop_requested) {
        pthread_mutex_unlock(&svc->mu);
        return st == LSVC_STOPPED ? LSVC_ERROR_SERVICE_NOT_ACTIVE
                                  : LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
    }
    lsvc_event ev = {.code = LSVC_CTRL_CONSOLE, .arrived_ns = lsvc_now_ns(), .console = c};
    int qrc = lsvc_queue_push_quiet(&svc->queue, &ev);
    pthread_mutex_unlock(&svc->mu);
    if (qrc != 0)
        return qrc == -2 ? LSVC_ERROR_NOT_ENOUGH_QUOTA : LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL;
    lsvc_queue_notify(&svc->queue);
    return LSVC_NO_ERROR;
}

/* Under nothing: the consoles still queued when the service stopped are
 * answered (nobody takes them now; the state refuses new ones). */
static void drop_consoles(lsvc_service *svc)
{
    lsvc_queue *q = &svc->queue;
    size_t n = lsvc_queue_len(q);
    for (lsvc_event ev; n-- && lsvc_queue_pop(q, &ev);) {
        if (!ev.console)
            continue;
        static const char msg[] = "the service stopped before the eval ran\n";
        lsvc_console_put(ev.console, LSVC_CON_ERROR, msg, sizeof msg - 1);
        lsvc_console_put(ev.console, LSVC_CON_DONE, "1", 1);
        lsvc_console_end(ev.console);
        lsvc_console_unref(ev.console);
    }
}

void lsvc_service_get_status(lsvc_service *svc, lsvc_status *out)
{
    pthread_mutex_lock(&svc->mu);
    *out = svc->status;
    pthread_mutex_unlock(&svc->mu);
}

void lsvc_service_set_state(lsvc_service *svc, lsvc_state st, uint32_t wait_hint)
{
    pthread_mutex_lock(&svc->mu);
    lsvc_state from = svc->status.state;
    if (from == st || svc->abandoned || !lsvc_transition_valid(from, st)) {
        pthread_mutex_unlock(&svc->mu);
        if (from != st && !svc->abandoned)
            lsvc_log(LSVC_LOG_DEBUG, svc->name, "ignored transition %s -> %s",
                     lsvc_state_name(from), lsvc_state_name(st));
        return;
    }
    enter(svc, st, lsvc_state_is_pending(st) ? wait_hint : 0);
    if (!lsvc_state_is_pending(st) && !svc->stop_requested)
        arm(svc, 0, LSVC_DEADLINE_NONE, svc->deadline_code);
    unlock_and_report(svc, true);
    lsvc_watchdog_kick(svc->host);
}

/* Report STOPPED exactly once: the worker at the end, or the thread that
 * gave the worker up (lsvc_service_given_up); whichever comes second does
 * nothing. */
static void report_stopped(lsvc_service *svc, lsvc_exit ex)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->stopped_reported) {
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    enter(svc, LSVC_STOPPED, 0);
    svc->status.exit = ex;
    arm(svc, 0, LSVC_DEADLINE_NONE, svc->deadline_code);
    svc->stopped_reported = true;
    unlock_and_report(svc, true);
    drop_consoles(svc);
    lsvc_host_notify(svc->host);
}

/* A worker given up reports nothing: its STOPPED is the one given_up
 * reports (1067), also when its C call returns while its tree is ended. */
void lsvc_service_set_stopped(lsvc_service *svc, lsvc_exit ex)
{
    if (!lsvc_service_abandoned(svc))
        report_stopped(svc, ex);
}

bool lsvc_service_progress(lsvc_service *svc, uint32_t wait_hint)
{
    pthread_mutex_lock(&svc->mu);
    lsvc_state st = svc->status.state;
    if (!lsvc_state_is_pending(st)) {
        pthread_mutex_unlock(&svc->mu);
        return false;
    }
    svc->status.checkpoint++;
    svc->status.wait_hint = wait_hint;
    svc->moved_ns = lsvc_now_ns();
    /* While starting, progress is what keeps the start alive: the next
     * checkpoint is due within the wait hint, as the SCM expects. */
    if (st == LSVC_START_PENDING)
        arm(svc, lsvc_now_ns() + (uint64_t)wait_hint * 1000000u, LSVC_DEADLINE_START,
            svc->deadline_code);
    unlock_and_report(svc, true);
    lsvc_watchdog_kick(svc->host);
    return true;
}

bool lsvc_service_stopping(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    bool s = svc->stop_requested;
    pthread_mutex_unlock(&svc->mu);
    return s;
}

/* The service winds down on its own (run returned, ctx:exit): STOP_PENDING
 * with the same stop deadline a STOP control would have set. */
void lsvc_service_request_stop(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->stop_requested) {
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    stop_requested(svc, LSVC_CTRL_STOP, lsvc_now_ns());
    unlock_and_report(svc, true);
    lsvc_watchdog_kick(svc->host);
}

const char *lsvc_deadline_name(lsvc_deadline kind, uint32_t code)
{
    switch (kind) {
    case LSVC_DEADLINE_START: return "start";
    case LSVC_DEADLINE_STOP: return "stop";
    case LSVC_DEADLINE_CONTROL:
        return lsvc_control_name(code) ? lsvc_control_name(code) : "control";
    case LSVC_DEADLINE_RELOAD: return "reload";
    case LSVC_DEADLINE_FINAL: return "stop after interrupt";
    case LSVC_DEADLINE_HANDLER: return "handler";
    default: return "";
    }
}

void lsvc_service_set_deadline(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind)
{
    pthread_mutex_lock(&svc->mu);
    arm(svc, at_ns, kind, 0);
    pthread_mutex_unlock(&svc->mu);
    lsvc_watchdog_kick(svc->host);
}

void lsvc_service_abandon(lsvc_service *svc, lsvc_exit ex)
{
    pthread_mutex_lock(&svc->mu);
    svc->abandoned = true; /* first: the host, woken by STOPPED, must not join it */
    lsvc_irq_unbind(&svc->irq);
    pthread_mutex_unlock(&svc->mu);
    lsvc_service_given_up(svc, ex);
}

bool lsvc_service_abandoned(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    bool given_up = svc->abandoned;
    pthread_mutex_unlock(&svc->mu);
    return given_up;
}

void lsvc_service_on_abandon(lsvc_service *svc, void (*fn)(void *ud), void *ud)
{
    pthread_mutex_lock(&svc->mu);
    svc->on_abandon = fn;
    svc->on_abandon_ud = ud;
    pthread_mutex_unlock(&svc->mu);
}

/* The worker is given up: it will not end its tree, report STOPPED or
 * end its load itself. Its load, if it had not ended (a top level stuck in
 * a C call), ends here, neither loaded nor failed: without that the host's
 * barrier would wait for it for ever (the front end in
 * lsvc_host_wait_ready, before it takes any signal, the other services at
 * their gate). STOPPED before the count: the last count may release the
 * others, and the host then finds this one stopped. */
void lsvc_service_given_up(lsvc_service *svc, lsvc_exit ex)
{
    pthread_mutex_lock(&svc->mu);
    void (*fn)(void *) = svc->on_abandon;
    void *ud = svc->on_abandon_ud;
    svc->on_abandon = NULL; /* once */
    bool loading = !svc->loaded && !svc->load_failed && !svc->load_given_up;
    if (loading)
        svc->load_given_up = true;
    pthread_cond_broadcast(&svc->load_cv); /* lsvc_host_wait_loaded */
    pthread_mutex_unlock(&svc->mu);
    if (fn)
        fn(ud);
    report_stopped(svc, ex);
    if (loading)
        lsvc_host_loaded(svc->host);
}

void lsvc_service_worker_ended(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    svc->worker_ended = true;
    pthread_cond_broadcast(&svc->load_cv);
    pthread_mutex_unlock(&svc->mu);
}

bool lsvc_service_wait_worker(lsvc_service *svc, uint64_t deadline_ns)
{
    pthread_mutex_lock(&svc->mu);
    while (!svc->worker_ended && !svc->abandoned)
        if (lsvc_cond_wait_until(&svc->load_cv, &svc->mu, deadline_ns) == ETIMEDOUT)
            break;
    bool ended = svc->worker_ended;
    if (!ended)
        svc->abandoned = true;
    pthread_mutex_unlock(&svc->mu);
    return ended;
}

bool lsvc_service_set_deadline_if_none(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind)
{
    pthread_mutex_lock(&svc->mu);
    bool none = svc->deadline_kind == LSVC_DEADLINE_NONE && !svc->stop_requested;
    if (none) {
        svc->deadline_ns = at_ns;
        svc->deadline_kind = kind;
        svc->deadline_code = 0;
    }
    pthread_mutex_unlock(&svc->mu);
    if (none)
        lsvc_watchdog_kick_by(svc->host, at_ns);
    return none;
}

void lsvc_service_clear_deadline(lsvc_service *svc, lsvc_deadline kind)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->deadline_kind == kind) {
        svc->deadline_ns = 0;
        svc->deadline_kind = LSVC_DEADLINE_NONE;
    }
    pthread_mutex_unlock(&svc->mu);
}

void lsvc_service_configure(lsvc_service *svc, const char *name, const char *display_name,
                            uint32_t accepts, const uint8_t user_handled[32],
                            uint32_t stop_timeout_ms)
{
    pthread_mutex_lock(&svc->mu);
    if (name)
        snprintf(svc->name, sizeof svc->name, "%s", name);
    if (display_name)
        snprintf(svc->display_name, sizeof svc->display_name, "%s", display_name);
    svc->accepts = accepts;
    memcpy(svc->user_handled, user_handled, sizeof svc->user_handled);
    svc->stop_timeout_ms = stop_timeout_ms ? stop_timeout_ms : LSVC_STOP_TIMEOUT_DEFAULT_MS;
    uint32_t mask = reported_mask(svc->status.state, accepts);
    bool changed = mask != svc->status.controls_accepted && svc->status.state != LSVC_STOPPED;
    svc->status.controls_accepted = mask;
    unlock_and_report(svc, changed); /* a reload changed the mask: the manager learns it */
}

void lsvc_service_set_text(lsvc_service *svc, const char *text, bool again)
{
    pthread_mutex_lock(&svc->mu);
    snprintf(svc->status_text, sizeof svc->status_text, "%s", text ? text : "");
    /* one line: a service manager shows it as such */
    for (char *p = svc->status_text; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    unlock_and_report(svc, again);
}

void lsvc_service_get_text(lsvc_service *svc, char *buf, size_t len)
{
    pthread_mutex_lock(&svc->mu);
    snprintf(buf, len, "%s", svc->status_text);
    pthread_mutex_unlock(&svc->mu);
}

void lsvc_service_describe(lsvc_service *svc, uint32_t watchdog_ms, const char *description)
{
    pthread_mutex_lock(&svc->mu);
    svc->watchdog_ms = watchdog_ms;
    snprintf(svc->description, sizeof svc->description, "%s", description ? description : "");
    pthread_mutex_unlock(&svc->mu);
}

/* ---- what the worker needs of its service --------------------------------- */

const lsvc_service_opts *lsvc_service_options(const lsvc_service *svc) { return &svc->opts; }

lsvc_queue *lsvc_service_queue(lsvc_service *svc) { return &svc->queue; }

int lsvc_service_spawn(lsvc_service *svc, void *(*fn)(void *), void *arg, size_t stack_size)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, stack_size);
    int rc = pthread_create(&svc->thread, &a, fn, arg);
    pthread_attr_destroy(&a);
    if (rc == 0)
        svc->thread_started = true;
    return rc;
}

void lsvc_service_loaded(lsvc_service *svc, bool ok)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->abandoned) { /* given up: its load ended there (lsvc_service_given_up) */
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    svc->loaded = ok;
    svc->load_failed = !ok;
    pthread_cond_broadcast(&svc->load_cv);
    pthread_mutex_unlock(&svc->mu);
    lsvc_host_loaded(svc->host); /* the last to load may open the gate itself */
}

bool lsvc_service_wait_release(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    while (svc->gate == LSVC_GATE_WAIT)
        pthread_cond_wait(&svc->load_cv, &svc->mu);
    bool go = svc->gate == LSVC_GATE_GO && !svc->abandoned; /* one given up never starts */
    pthread_mutex_unlock(&svc->mu);
    return go;
}

bool lsvc_service_released_status(lsvc_service *svc, lsvc_status *out)
{
    pthread_mutex_lock(&svc->mu);
    bool go = svc->gate == LSVC_GATE_GO;
    *out = svc->status;
    pthread_mutex_unlock(&svc->mu);
    return go;
}

void lsvc_service_tell_reloading(lsvc_service *svc, bool begin)
{
    if (svc->opts.reloading)
        svc->opts.reloading(svc, begin, svc->opts.report_ud);
}

void lsvc_service_get_deadline(lsvc_service *svc, lsvc_deadline_info *out)
{
    pthread_mutex_lock(&svc->mu);
    *out = (lsvc_deadline_info){.kind = svc->deadline_kind,
                                .code = svc->deadline_code,
                                .at_ns = svc->deadline_ns,
                                .stopping = svc->stop_requested,
                                .stop_code = svc->stop_code,
                                .stop_timeout_ms = svc->stop_timeout_ms};
    pthread_mutex_unlock(&svc->mu);
}

bool lsvc_service_interrupted(lsvc_service *svc) { return atomic_load(&svc->interrupt) != 0; }

void lsvc_service_ack_interrupt(lsvc_service *svc, uint64_t deadline_ns, lsvc_deadline kind)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->abandoned) { /* given up: the interrupt stays, whatever it answers */
        pthread_mutex_unlock(&svc->mu);
        return;
    }
    atomic_store(&svc->interrupt, 0);
    svc->interrupted_ns = 0;
    arm(svc, deadline_ns, kind, svc->deadline_code);
    pthread_mutex_unlock(&svc->mu);
    lsvc_watchdog_kick(svc->host);
}

/* Under mu: the watchdog raises the irq under mu, so a raise never meets
 * a half-bound or unbound one. */
void lsvc_service_bind_irq(lsvc_service *svc, void (*fn)(void *), void *ud)
{
    pthread_mutex_lock(&svc->mu);
    lsvc_irq_bind(&svc->irq, fn, ud);
    pthread_mutex_unlock(&svc->mu);
}

bool lsvc_service_worker_ending(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    bool abandoned = svc->abandoned;
    lsvc_irq_unbind(&svc->irq);
    pthread_mutex_unlock(&svc->mu);
    return abandoned;
}

void lsvc_service_slice_timeout(lsvc_service *svc, uint32_t ms)
{
    atomic_store_explicit(&svc->slice_ms, ms, memory_order_relaxed);
}

void lsvc_service_slice_begin(lsvc_service *svc)
{
    uint32_t ms = atomic_load_explicit(&svc->slice_ms, memory_order_relaxed);
    if (!ms || !svc->host)
        return;
    uint64_t due = (lsvc_now_ns() + (uint64_t)ms * 1000000u) | 1u;
    atomic_store(&svc->slice_due_ns, due);
    lsvc_watchdog_kick_by(svc->host, due); /* the watchdog reads slices as deadlines */
}

void lsvc_service_slice_begin_ns(lsvc_service *svc, uint64_t ns)
{
    if (!svc->host)
        return;
    uint64_t due = (lsvc_now_ns() + ns) | 1u;
    atomic_store(&svc->slice_due_ns, due);
    lsvc_watchdog_kick_by(svc->host, due);
}

bool lsvc_service_slice_end(lsvc_service *svc)
{
    if (atomic_fetch_and(&svc->slice_due_ns, ~(uint64_t)1) != LSVC_SLICE_OVERRUN)
        return false;
    /* interrupted: answered here, under mu, so after the watchdog raised it */
    pthread_mutex_lock(&svc->mu);
    atomic_store(&svc->slice_due_ns, 0);
    atomic_store(&svc->interrupt, 0);
    svc->interrupted_ns = 0;
    pthread_mutex_unlock(&svc->mu);
    lsvc_watchdog_kick(svc->host);
    return true;
}

void lsvc_service_stamp_heartbeat(lsvc_service *svc)
{
    atomic_store_explicit(&svc->heartbeat_ns, lsvc_now_ns(), memory_order_relaxed);
}

void lsvc_service_kick_fs(lsvc_service *svc)
{
    atomic_store(&svc->fs_kicked, true);
    lsvc_queue_wake(&svc->queue);
}

bool lsvc_service_take_fs_kick(lsvc_service *svc)
{
    return atomic_exchange(&svc->fs_kicked, false);
}

lsvc_host *lsvc_service_host(const lsvc_service *svc) { return svc->host; }
