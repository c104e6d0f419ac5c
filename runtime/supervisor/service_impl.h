/*
 * service_impl.h - the supervisor's own: the fields of a service and of a
 * host, under their locking rules. Included by service.c, host.c and
 * watchdog.c only; every other file goes through supervisor.h's functions.
 */
#ifndef LSVC_SERVICE_IMPL_H
#define LSVC_SERVICE_IMPL_H

#include "supervisor.h"

/* The host's start barrier, as a service sees it. */
typedef enum lsvc_gate {
    LSVC_GATE_WAIT,  /* loading, or loaded and waiting for the others */
    LSVC_GATE_GO,    /* every script loaded: start */
    LSVC_GATE_ABORT, /* another script failed (or a check): do not start */
} lsvc_gate;

/* slice_due_ns of a slice the watchdog interrupted (odd: still running) */
#define LSVC_SLICE_OVERRUN UINT64_MAX

struct lsvc_service {
    /* set before the worker starts, then read-only */
    lsvc_service_opts opts; /* opts.script: the service's own copy */
    lsvc_host *host;
    size_t index;

    /* set by the worker while loading, then read-only (under mu) */
    char name[128];
    char display_name[256];

    pthread_mutex_t report_mu; /* one report at a time, in order */
    uint64_t reported_seq;     /* under report_mu: the newest reported */

    pthread_mutex_t mu;    /* guards everything below */
    uint64_t snapshot_seq; /* the newest status snapshot's number */
    lsvc_status status;
    uint32_t accepts;         /* the script's mask */
    uint8_t user_handled[32]; /* bitmap of user codes 128-255 with a handler */
    uint32_t stop_timeout_ms;
    uint32_t watchdog_ms;  /* the script's `watchdog`, 0 = none */
    char status_text[256]; /* ctx:status / ctx:progress text; "" at every state change */
    char description[512];
    uint64_t deadline_ns;    /* 0 = none; the watchdog interrupts after it */
    uint64_t interrupted_ns; /* when the watchdog raised the interrupt */
    uint64_t irq_sent_ns;    /* when the watchdog last had the worker hook itself */
    lsvc_deadline deadline_kind;
    uint32_t deadline_code; /* LSVC_DEADLINE_CONTROL: the control */
    bool stop_requested;
    uint32_t stop_code; /* STOP, SHUTDOWN or PRESHUTDOWN */
    bool abandoned;
    bool worker_ended; /* its thread is about to return (nothing left to free) */
    bool stopped_reported;
    bool loaded, load_failed;
    bool load_given_up; /* the worker was given up while loading: its load ended so */
    void (*on_abandon)(void *ud); /* the engine's, for a worker given up */
    void *on_abandon_ud;
    lsvc_gate gate;
    uint64_t last_latency_ns; /* control arrival to handler entry */
    uint64_t controls_delivered;
    uint64_t latency_sum_ns;
    uint64_t latency_buckets[LSVC_LATENCY_BUCKETS];
    uint64_t created_ns;
    uint64_t moved_ns; /* the last state change or checkpoint; 0: none yet */
    unsigned reload_errors;       /* reloads refused */
    unsigned reloads;             /* hot reloads taken up */
    char last_reload_error[1024]; /* "" after a good reload */

    /* set by the watchdog, read by the worker's hook; irq makes the worker
     * hook itself (interrupt.c), bound while its Lua state lives (under mu) */
    atomic_int interrupt;
    lsvc_irq irq;
    /* stamped by the worker at every turn of its scheduler (never in the
     * count hook: a Lua loop that never yields must look dead); read by
     * the systemd notifier, which pings WATCHDOG=1 only while it moves */
    _Atomic uint64_t heartbeat_ns;
    /* set by fswatch.c: a watched file may have changed */
    atomic_bool fs_kicked;
    /* the engine's gauges (lsvc_service_set_gauges): the worker writes */
    _Atomic uint64_t g_lua_bytes;
    _Atomic uint32_t g_tasks, g_children;
    /* the slice: one entry of the worker into Lua (a luv callback, a
     * spawned task's resume), due within slice_ms (handler_timeout).
     * slice_due_ns: due | 1 while it runs, due & ~1 once it returned, 0
     * before the first, LSVC_SLICE_OVERRUN once the watchdog interrupted
     * it (it alone swaps a running slice for that, under mu); slice_seen:
     * the watchdog's, the value it saw at its last look */
    _Atomic uint64_t slice_due_ns;
    _Atomic uint32_t slice_ms;
    uint64_t slice_seen;

    lsvc_queue queue;
    pthread_t thread;
    bool thread_started;
    pthread_cond_t load_cv;
};

struct lsvc_host {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a service reaches STOPPED or loads */
    pthread_cond_t wd_cv;
    /* the watchdog looks again by then (0: not before a kick), for a slice
     * begun or a deadline set to know whether it must kick it
     * (lsvc_service_slice_begin, lsvc_watchdog_kick_by) */
    _Atomic uint64_t wd_next_ns;
    uint64_t wd_kicks; /* under mu: every kick counted (lsvc_watchdog_kick) */
    lsvc_service **svcs;
    size_t n;
    bool quitting;
    pthread_t wd_thread;
    bool wd_started;
    /* lsvc_host_on_ready: the front end's part of a start, and what is
     * still to come before it runs (every load, the front end's token) */
    void (*prepare)(lsvc_host *h, void *ud);
    void (*ready)(lsvc_host *h, size_t failed, void *ud);
    void *ready_ud;
    size_t ready_pending;
    size_t loads_pending;
    bool ready_done;
    pthread_mutex_t prepare_mu; /* held while prepare runs: a second caller waits */
    bool prepared;
};

/* The worker was given up (svc->abandoned set), on the thread that gave
 * it up: the on_abandon callback, STOPPED with ex, and a load it had not
 * ended counted as ended at the host's barrier. service.c; called by
 * watchdog.c too. */
void lsvc_service_given_up(lsvc_service *svc, lsvc_exit ex);

#endif
