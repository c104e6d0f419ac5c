/*
 * supervisor.h - the layer above primitives.h: a hosted service (its
 * status, control handler and transitions: service.c), the services of
 * one process (host.c) and their deadlines (watchdog.c). struct
 * lsvc_service and struct lsvc_host are the supervisor's own
 * (service_impl.h): every other file sees them through these functions.
 * Includes primitives.h only.
 */
#ifndef LSVC_SUPERVISOR_H
#define LSVC_SUPERVISOR_H

#include "../primitives/primitives.h"

/* ---- service.c: one hosted service, its status and its control handler --- */

typedef struct lsvc_service lsvc_service;
typedef struct lsvc_host lsvc_host;

#define LSVC_START_WAIT_HINT_MS 30000u      /* the SCM's default patience for a start */
#define LSVC_STOP_TIMEOUT_DEFAULT_MS 20000u /* a script's stop_timeout by default */

/* What a deadline is for: the watchdog's messages and the worker's answer
 * to an interrupt depend on it. */
typedef enum lsvc_deadline {
    LSVC_DEADLINE_NONE,
    LSVC_DEADLINE_START,   /* the next progress of start */
    LSVC_DEADLINE_STOP,    /* the stop (stop_timeout) */
    LSVC_DEADLINE_CONTROL, /* a pending control's handler (deadline_code says which) */
    LSVC_DEADLINE_RELOAD,  /* the new version's reload, the old run's return */
    LSVC_DEADLINE_FINAL,   /* stop after an interrupt; closing handles */
    LSVC_DEADLINE_HANDLER, /* a control's handler (handler_timeout), a new version's top level */
} lsvc_deadline;
const char *lsvc_deadline_name(lsvc_deadline kind, uint32_t code); /* "stop", "pause" */

/* Called after every status change, on the thread that made it, with no
 * lock held. A front end reports to its service manager here. */
typedef void (*lsvc_report_fn)(lsvc_service *svc, const lsvc_status *st, void *ud);
/* Called on the worker thread when a reload (PARAMCHANGE, or a hot edit of
 * the script) begins and when it has ended, however it ended; the calls
 * pair up. systemd's RELOADING=1 ... READY=1. */
typedef void (*lsvc_reloading_fn)(lsvc_service *svc, bool begin, void *ud);

/* An observer of every service's reports, registered from above (a
 * service's status_slot, status_slot.c), so that this layer calls nothing
 * above it. report: each status report, on the reporting thread, in the
 * reports' order, before the front end's; front_end(true) ... (false)
 * brackets the front end's own report (its log lines are its own);
 * release: the host lets the services start (go) or aborts them. One
 * observer; set it before it matters (any thread). */
typedef struct lsvc_observer {
    void (*report)(lsvc_service *svc, const lsvc_status *st);
    void (*front_end)(bool begin);
    void (*release)(lsvc_service *svc, bool go);
} lsvc_observer;
void lsvc_service_observe(const lsvc_observer *obs);
/* host.c: the host lets svc start (go) or aborts it: tells the observer. */
void lsvc_service_released(lsvc_service *svc, bool go);

/* How a front end configures a service it creates: the service keeps
 * argv (not copied) and copies the rest. */
typedef struct lsvc_service_opts {
    const char *script;
    int argc; /* start arguments */
    char **argv;
    lsvc_report_fn report;       /* may be NULL */
    lsvc_reloading_fn reloading; /* may be NULL */
    void *report_ud;             /* for both */
    bool allow_insecure;         /* load scripts others could change */
    uint32_t watch_interval_ms;  /* 0: no file watch (hot reload off) */
    bool watch_poll;             /* poll on the interval even where changes are told */
} lsvc_service_opts;

lsvc_service *lsvc_service_new(lsvc_host *host, const lsvc_service_opts *opts);
void lsvc_service_free(lsvc_service *svc);
/* The control handler. Any thread but the worker; never touches Lua; returns
 * in bounded time with LSVC_NO_ERROR or the Win32 code the SCM would give. */
uint32_t lsvc_service_control(lsvc_service *svc, uint32_t code);
/* The same for a control that carries an event (HandlerEx: its type, the
 * session id, the power setting, taken from ev); its arrival time is set
 * here. */
uint32_t lsvc_service_control_event(lsvc_service *svc, const lsvc_event *ev);
/* A console's eval (c, its reference handed over) for the worker, queued
 * with the controls. Any thread but the worker; never touches Lua.
 * LSVC_NO_ERROR, or the Win32 code of the refusal (the service is not
 * RUNNING, PAUSED or on its way between them; the queue is full): c is
 * then still the caller's. Consoles still queued at STOPPED are answered
 * there. */
uint32_t lsvc_service_console(lsvc_service *svc, lsvc_console *c);
void lsvc_service_get_status(lsvc_service *svc, lsvc_status *out);
/* Worker only: change state (checks the transition), reset checkpoint. */
void lsvc_service_set_state(lsvc_service *svc, lsvc_state st, uint32_t wait_hint);
/* Worker: STOPPED with ex, once (nothing once the worker was given up:
 * the watchdog has reported it). */
void lsvc_service_set_stopped(lsvc_service *svc, lsvc_exit ex);
/* Worker, about to end its thread where it is: mark the thread abandoned
 * (the host does not join it) and report STOPPED with ex, as the watchdog
 * does for a worker stuck in a C call (the on_abandon callback first). */
void lsvc_service_abandon(lsvc_service *svc, lsvc_exit ex);
/* Worker, before the script runs: fn(ud) is called if the worker is given
 * up (stuck in a C call past a deadline, or at a panic), on the thread
 * that gives it up (the watchdog's, or the worker's own), before STOPPED
 * is reported: it ends what the worker cannot end now (its process tree),
 * in bounded time. Called once at most; fn NULL: none. */
void lsvc_service_on_abandon(lsvc_service *svc, void (*fn)(void *ud), void *ud);
/* Whether the worker was given up (any thread). One that comes back from
 * its C call finds its interrupt raised for good (lsvc_service_ack_interrupt
 * does nothing then): it ends at once, reporting nothing. */
bool lsvc_service_abandoned(lsvc_service *svc);
/* Worker: its thread returns now. Host: wait for that until deadline_ns;
 * false: not in time (a finalizer hangs in lua_close), it is abandoned. */
void lsvc_service_worker_ended(lsvc_service *svc);
bool lsvc_service_wait_worker(lsvc_service *svc, uint64_t deadline_ns);
/* Worker only: ctx:progress. Returns false outside pending states. */
bool lsvc_service_progress(lsvc_service *svc, uint32_t wait_hint);
bool lsvc_service_stopping(lsvc_service *svc);
void lsvc_service_request_stop(lsvc_service *svc); /* worker: run returned, ctx:exit */
void lsvc_service_set_deadline(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind);
/* Worker: set a deadline only where none is set (true: set); clear one
 * only if it is of that kind. */
bool lsvc_service_set_deadline_if_none(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind);
void lsvc_service_clear_deadline(lsvc_service *svc, lsvc_deadline kind);
/* Worker: what a (re)loaded script declares. name: NULL keeps the name;
 * stop_timeout_ms 0: LSVC_STOP_TIMEOUT_DEFAULT_MS. */
void lsvc_service_configure(lsvc_service *svc, const char *name, const char *display_name,
                            uint32_t accepts, const uint8_t user_handled[32],
                            uint32_t stop_timeout_ms);
/* Worker: ctx:status(text), ctx:progress(ms, text): a line for service
 * managers (systemd's STATUS=, status --json), until the next state change.
 * report: report the status again so that they learn it. */
void lsvc_service_set_text(lsvc_service *svc, const char *text, bool report);
void lsvc_service_get_text(lsvc_service *svc, char *buf, size_t len); /* any thread */
/* Worker: the script's description and watchdog (for install, status). */
void lsvc_service_describe(lsvc_service *svc, uint32_t watchdog_ms, const char *description);
/* Worker: a reload ended (error NULL: it took over). Returns the number of
 * reloads taken up so far. */
unsigned lsvc_service_reload_result(lsvc_service *svc, const char *error);
size_t lsvc_status_json(lsvc_service *svc, char *buf, size_t len);

/* What a front end reads of a service (any thread). The name is the
 * file's until the script has loaded, then the script's, fixed. */
const char *lsvc_service_name(const lsvc_service *svc);
const char *lsvc_service_script(const lsvc_service *svc);
size_t lsvc_service_index(const lsvc_service *svc); /* its place in its host */
bool lsvc_service_load_failed(lsvc_service *svc);   /* after lsvc_host_wait_loaded */
uint32_t lsvc_service_stop_timeout(lsvc_service *svc);
lsvc_host *lsvc_service_host(const lsvc_service *svc); /* the host it belongs to */
/* The worker's last turn of its scheduler (lsvc_now_ns), for a watchdog. */
uint64_t lsvc_service_heartbeat(lsvc_service *svc);
void lsvc_service_wake(lsvc_service *svc); /* wake its worker */
typedef struct lsvc_service_info {
    char name[128];
    char display_name[256]; /* "" when the script gives none */
    char description[512];  /* "" when the script gives none */
    uint32_t stop_timeout_ms, watchdog_ms;
} lsvc_service_info;
/* What the loaded script declares (for install, check). */
void lsvc_service_get_info(lsvc_service *svc, lsvc_service_info *out);

/* ---- what the engine's worker needs of its service ----------------------
 * The worker thread, unless a function says otherwise. */

/* The options the service was created with (opts->script is its copy). */
const lsvc_service_opts *lsvc_service_options(const lsvc_service *svc);
/* The controls the front ends queue for the worker (its only consumer). */
lsvc_queue *lsvc_service_queue(lsvc_service *svc);
/* Run fn(arg) on the service's worker thread, owned here (joined by
 * lsvc_host_join, or detached there when abandoned and still running).
 * Any thread, once. 0 or errno. */
int lsvc_service_spawn(lsvc_service *svc, void *(*fn)(void *), void *arg, size_t stack_size);
/* The script has loaded (ok) or failed to: the host's barrier learns it.
 * Nothing once the worker was given up (its load counted as ended then). */
void lsvc_service_loaded(lsvc_service *svc, bool ok);
/* Wait at the host's barrier until it lets the service start (true) or
 * aborts the start (false; always false once the worker was given up). */
bool lsvc_service_wait_release(lsvc_service *svc);
/* The status, and whether the host has let the service start, read
 * together (a status_slot binding starts from there). Any thread. */
bool lsvc_service_released_status(lsvc_service *svc, lsvc_status *out);
/* Tell the front end a reload began or ended (its reloading callback). */
void lsvc_service_tell_reloading(lsvc_service *svc, bool begin);
/* A control reached its handler (or was settled without one): the
 * latency from its arrival and the count, for `status --json`. */
void lsvc_service_count_delivery(lsvc_service *svc, uint64_t arrived_ns);

/* What the engine publishes of itself (the worker, at each turn of its
 * scheduler; atomics, no lock): read by status --json, ctx:stats() and
 * the host's /metrics. */
typedef struct lsvc_gauges {
    uint64_t lua_bytes; /* the Lua state's memory now */
    uint32_t tasks;     /* live tasks (run, handlers, ctx:spawn, a load) */
    uint32_t children;  /* live child processes of the service */
} lsvc_gauges;
void lsvc_service_set_gauges(lsvc_service *svc, const lsvc_gauges *g);

/* Control latency (arrival at the control handler to the Lua handler's
 * entry) as a histogram: counts per bucket, each bucket's upper bound in
 * lsvc_latency_bounds_s (seconds; the last is +Inf). */
#define LSVC_LATENCY_BUCKETS 10
extern const double lsvc_latency_bounds_s[LSVC_LATENCY_BUCKETS];
/* Everything a service's numbers say, read together (any thread). */
typedef struct lsvc_service_stats {
    char name[128];
    char display_name[256]; /* the script's, else "" */
    uint32_t accepts;        /* the script's mask (status.controls_accepted: as reported) */
    uint32_t stop_timeout_ms;
    lsvc_status status;
    char status_text[256];
    uint64_t controls_delivered;
    uint64_t last_latency_ns;
    uint64_t latency_sum_ns;
    uint64_t latency_buckets[LSVC_LATENCY_BUCKETS]; /* not cumulative */
    unsigned reloads;       /* hot reloads taken up */
    unsigned reload_errors; /* reloads refused */
    char last_reload_error[1024];
    uint64_t created_ns; /* lsvc_now_ns when the service was created */
    /* lsvc_now_ns when the status last moved (a state entered, a
     * checkpoint); 0 until the service's first state (it has not begun) */
    uint64_t moved_ns;
    lsvc_gauges gauges;
} lsvc_service_stats;
void lsvc_service_get_stats(lsvc_service *svc, lsvc_service_stats *out);

/* The deadline as the watchdog holds it, and the stop, read together. */
typedef struct lsvc_deadline_info {
    lsvc_deadline kind;
    uint32_t code;      /* LSVC_DEADLINE_CONTROL: the control */
    uint64_t at_ns;     /* 0: none */
    bool stopping;      /* a stop was requested */
    uint32_t stop_code; /* STOP, SHUTDOWN or PRESHUTDOWN */
    uint32_t stop_timeout_ms;
} lsvc_deadline_info;
void lsvc_service_get_deadline(lsvc_service *svc, lsvc_deadline_info *out);
/* The interrupt the watchdog raises when a deadline passes. Set from the
 * watchdog's thread; read anywhere (the hook reads it on every line while
 * hooked: an atomic load). */
bool lsvc_service_interrupted(lsvc_service *svc);
/* The worker answered the interrupt: clear it, and the next deadline. */
void lsvc_service_ack_interrupt(lsvc_service *svc, uint64_t deadline_ns, lsvc_deadline kind);
/* The worker's thread binds what makes it hook itself (interrupt.c); the
 * watchdog raises it. */
void lsvc_service_bind_irq(lsvc_service *svc, void (*fn)(void *), void *ud);
/* The worker is ending: unbind the interrupt. true when the watchdog has
 * abandoned the worker (it must then free nothing others may read). */
bool lsvc_service_worker_ending(lsvc_service *svc);
/* A slice: one entry into Lua that must return within ms (handler_timeout;
 * 0: none): a luv callback, a spawned task's resume. Begin and end cost a
 * clock read and a few atomics; the watchdog is kicked only when it would
 * not look in time. end: true when the watchdog interrupted the slice (the
 * interrupt is answered then). Worker only; slices do not nest. */
void lsvc_service_slice_timeout(lsvc_service *svc, uint32_t ms);
void lsvc_service_slice_begin(lsvc_service *svc);
/* A slice due in ns, whatever handler_timeout says (a load's budget). */
void lsvc_service_slice_begin_ns(lsvc_service *svc, uint64_t ns);
bool lsvc_service_slice_end(lsvc_service *svc);
/* Each turn of the scheduler (never in the hook: a Lua loop that never
 * yields must look dead to lsvc_service_heartbeat). */
void lsvc_service_stamp_heartbeat(lsvc_service *svc);
/* fswatch.c (any thread): a watched file may have changed; wake the
 * worker. The worker takes the kick (true: there was one). */
void lsvc_service_kick_fs(lsvc_service *svc);
bool lsvc_service_take_fs_kick(lsvc_service *svc);

/* ---- watchdog.c: deadlines for every service of a host ----------------- */

int lsvc_watchdog_start(lsvc_host *host);
void lsvc_watchdog_kick(lsvc_host *host); /* deadlines changed */
void lsvc_watchdog_kick_by(lsvc_host *host, uint64_t at_ns); /* a deadline was set */

/* ---- host.c: the services of one process (any thread) ------------------ */

lsvc_host *lsvc_host_new(void);
int lsvc_host_add(lsvc_host *h, lsvc_service *svc);
/* Wait until every worker has loaded (or failed to load) its script, or
 * was given up while loading (stuck in a C call). Returns the number that
 * did not load. */
size_t lsvc_host_wait_loaded(lsvc_host *h);
void lsvc_host_release(lsvc_host *h, bool go); /* go=false: abort the starts */
/* The start barrier without a hand-over: ready(h, failed, ud) (what must
 * be open before RUNNING, then lsvc_host_release) runs once, on whichever
 * thread ends the last of the loads and the front end's preparation,
 * most often the last worker to load, which then passes its own gate at
 * once. The preparation, prepare(h, ud), runs once: on the front end's
 * thread (lsvc_host_prepare), or on the last worker to load when that
 * gets there first (on a busy machine the front end's thread may not run
 * for a while after it started the workers; the start does not wait for
 * it). Set before the workers start; the front end learns the outcome
 * with lsvc_host_wait_ready. A worker given up while it loads (stuck in
 * a C call: STOPPED 1067) ends its load there, neither loaded nor failed:
 * the others start. Without it, the front end waits
 * (lsvc_host_wait_loaded) and releases. */
void lsvc_host_on_ready(lsvc_host *h, void (*prepare)(lsvc_host *, void *),
                        void (*ready)(lsvc_host *, size_t, void *), void *ud);
void lsvc_host_prepare(lsvc_host *h);
void lsvc_host_loaded(lsvc_host *h); /* a worker's load ended, well or not */
void lsvc_host_wait_ready(lsvc_host *h);
void lsvc_host_wait_stopped(lsvc_host *h);
bool lsvc_host_all_stopped(lsvc_host *h);
/* Process exit status once all are stopped: 2 for a load failure, else the
 * first failing service's status, else 0. */
int lsvc_host_exit_status(lsvc_host *h);
/* Joins the workers (one given up: if it has ended since, else it is
 * detached). */
void lsvc_host_join(lsvc_host *h);
/* Did any of its scripts fail to load? (any thread, no service lock held) */
bool lsvc_host_any_load_failed(lsvc_host *h);
void lsvc_host_notify(lsvc_host *h);
size_t lsvc_host_count(lsvc_host *h);                    /* services, fixed once started */
lsvc_service *lsvc_host_service(lsvc_host *h, size_t i); /* i < lsvc_host_count */

#endif
