/*
 * luasvc.h - the runtime's private declarations, grouped by the file that
 * defines them. Each group says which threads may call it.
 */
#ifndef LUASVC_H
#define LUASVC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSVC_VERSION "0.1.0"

/* ---- model.c: the Windows SCM service model (pure, any thread) ---------- */

typedef enum lsvc_state {
    LSVC_STOPPED = 1,
    LSVC_START_PENDING = 2,
    LSVC_STOP_PENDING = 3,
    LSVC_RUNNING = 4,
    LSVC_CONTINUE_PENDING = 5,
    LSVC_PAUSE_PENDING = 6,
    LSVC_PAUSED = 7,
} lsvc_state;

/* Control codes, with the SCM's numbers. */
enum {
    LSVC_CTRL_STOP = 1,
    LSVC_CTRL_PAUSE = 2,
    LSVC_CTRL_CONTINUE = 3,
    LSVC_CTRL_INTERROGATE = 4,
    LSVC_CTRL_SHUTDOWN = 5,
    LSVC_CTRL_PARAMCHANGE = 6,
    LSVC_CTRL_POWEREVENT = 13,
    LSVC_CTRL_SESSIONCHANGE = 14,
    LSVC_CTRL_PRESHUTDOWN = 15,
    LSVC_CTRL_USER_MIN = 128,
    LSVC_CTRL_USER_MAX = 255,
};

/* Accepted-controls bits, with the SCM's SERVICE_ACCEPT_* values. */
enum {
    LSVC_ACCEPT_STOP = 0x001,
    LSVC_ACCEPT_PAUSE_CONTINUE = 0x002,
    LSVC_ACCEPT_SHUTDOWN = 0x004,
    LSVC_ACCEPT_PARAMCHANGE = 0x008,
    LSVC_ACCEPT_POWEREVENT = 0x040,
    LSVC_ACCEPT_SESSIONCHANGE = 0x080,
    LSVC_ACCEPT_PRESHUTDOWN = 0x100,
};

/* Win32 error codes the model speaks. */
enum {
    LSVC_NO_ERROR = 0,
    LSVC_ERROR_INVALID_PARAMETER = 87,
    LSVC_ERROR_CALL_NOT_IMPLEMENTED = 120,
    LSVC_ERROR_INVALID_SERVICE_CONTROL = 1052,
    LSVC_ERROR_SERVICE_REQUEST_TIMEOUT = 1053,
    LSVC_ERROR_SERVICE_CANNOT_ACCEPT_CTRL = 1061,
    LSVC_ERROR_SERVICE_NOT_ACTIVE = 1062,
    LSVC_ERROR_SERVICE_SPECIFIC_ERROR = 1066,
    LSVC_ERROR_PROCESS_ABORTED = 1067,
    LSVC_ERROR_TIMEOUT = 1460,
};

/* Service-specific exit codes the runtime itself uses. */
enum {
    LSVC_EXIT_SCRIPT_ERROR = 1, /* error raised in start or run */
    LSVC_EXIT_LOAD_ERROR = 2,   /* script missing, broken or breaking the contract */
};

/* An exit code is Win32 or service-specific, never both: service_specific
 * is only meaningful when win32 == LSVC_ERROR_SERVICE_SPECIFIC_ERROR. */
typedef struct lsvc_exit {
    uint32_t win32;
    uint32_t service_specific;
} lsvc_exit;

typedef struct lsvc_status {
    lsvc_state state;
    uint32_t controls_accepted; /* as reported: 0 while START/STOP_PENDING */
    lsvc_exit exit;
    uint32_t checkpoint;
    uint32_t wait_hint; /* ms */
    uint64_t seq;       /* service.c: the order of the reports */
} lsvc_status;

const char *lsvc_state_name(lsvc_state s);           /* "RUNNING"; NULL if unknown */
int lsvc_state_from_name(const char *name);          /* -1 if unknown */
bool lsvc_state_is_pending(lsvc_state s);
const char *lsvc_control_name(uint32_t code);         /* "stop", "user"; NULL if unknown */
int lsvc_control_from_name(const char *name);         /* -1 if unknown */
const char *lsvc_accept_name(uint32_t bit);           /* "pause_continue"; NULL */
int lsvc_accept_from_name(const char *name);          /* bit, or -1 */
uint32_t lsvc_accept_bit_for_control(uint32_t code);  /* 0: needs no bit */
bool lsvc_transition_valid(lsvc_state from, lsvc_state to);
/* What the SCM answers a control in a state: LSVC_NO_ERROR or a Win32 code.
 * user_handled: the script has a handler for this user code (128-255). */
uint32_t lsvc_control_check(lsvc_state state, uint32_t accepted, uint32_t code,
                            bool user_handled);
/* The state a control moves the service into at once, or 0 for none. */
lsvc_state lsvc_control_pending_state(uint32_t code);
/* The process exit status (0-255) for a service exit code. */
int lsvc_exit_status(lsvc_exit e);
const char *lsvc_win32_message(uint32_t code);        /* short text for codes above */
/* The one text of a final status, wherever it is shown (log, client,
 * systemd's STATUS=, a status slot): "STOPPED", "STOPPED with
 * service-specific exit code N" or "STOPPED with error N: TEXT" (TEXT:
 * text, or NULL for lsvc_win32_message). Returns buf. */
#define LSVC_EXIT_TEXT_MAX 600
const char *lsvc_exit_text(lsvc_exit e, const char *text, char *buf, size_t len);

/* ---- queue.c: FIFO of controls, many producers, one consumer (any thread) - */

typedef struct lsvc_event {
    uint32_t code;
    uint32_t event_type; /* SESSIONCHANGE / POWEREVENT subtype */
    uint32_t session_id; /* SESSIONCHANGE: the session it is about */
    /* POWEREVENT's PBT_POWERSETTINGCHANGE: the setting's GUID as
     * "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}" ("" for none) and its value */
    char power_setting[39];
    uint8_t power_data_len;
    uint8_t power_data[16];
    uint64_t arrived_ns; /* monotonic clock when the handler accepted it */
} lsvc_event;

#define LSVC_PBT_POWERSETTINGCHANGE 0x8013u
/* Fill ev for a control as HandlerEx receives it: code, event type, and
 * what its event data says (data may be NULL), read by the documented
 * layouts of WTSSESSION_NOTIFICATION (SESSIONCHANGE) and
 * POWERBROADCAST_SETTING (POWEREVENT / PBT_POWERSETTINGCHANGE), so that
 * nothing of the SCM's memory outlives the handler call (model.c). */
void lsvc_event_from_scm(lsvc_event *ev, uint32_t code, uint32_t event_type, const void *data);

/* The consumer's wake-up: called under the queue's mutex after each push
 * and wake, so it must be bounded and take no lock (uv_async_send). */
typedef void (*lsvc_queue_waker)(void *ud);

typedef struct lsvc_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lsvc_event *buf;
    size_t cap, head, len;
    unsigned wakeups; /* wakes without an event (deadline, shutdown) */
    lsvc_queue_waker waker;
    void *waker_ud;
    atomic_size_t pending; /* len, readable without the mutex (a hint) */
} lsvc_queue;

int lsvc_queue_init(lsvc_queue *q);
void lsvc_queue_destroy(lsvc_queue *q);
int lsvc_queue_push(lsvc_queue *q, const lsvc_event *ev); /* 0, or -1 on ENOMEM */
bool lsvc_queue_pop(lsvc_queue *q, lsvc_event *ev);        /* non-blocking */
size_t lsvc_queue_len(lsvc_queue *q);
/* Anything queued? Without the mutex: a hint for the consumer's fast path. */
bool lsvc_queue_pending(lsvc_queue *q);
void lsvc_queue_wake(lsvc_queue *q);
/* The consumer: wake me with fn(ud) (NULL: no more; returns once no call
 * of the old one is under way). Without a waker, lsvc_queue_wait. */
void lsvc_queue_set_waker(lsvc_queue *q, lsvc_queue_waker fn, void *ud);
/* Block until an event or a wake is pending, or until deadline_ns
 * (monotonic; 0 = forever). Consumes pending wakes. */
void lsvc_queue_wait(lsvc_queue *q, uint64_t deadline_ns);
/* Consume pending wakes; true if there were any. */
bool lsvc_queue_take_wakes(lsvc_queue *q);

/* ---- interrupt.c: make a thread run a function of its own at once ------ */

typedef struct lsvc_irq {
    pthread_t thread;
    void (*fn)(void *ud); /* on the target thread (POSIX: in a signal handler) */
    void *ud;
    bool bound;
} lsvc_irq;

void lsvc_irq_bind(lsvc_irq *irq, void (*fn)(void *), void *ud); /* the thread itself */
void lsvc_irq_unbind(lsvc_irq *irq);                              /* the thread itself */
/* Any thread; the caller's lock keeps raise and unbind apart. */
void lsvc_irq_raise(lsvc_irq *irq);

/* ---- clock.c: the clock and timed waits (any thread) ------------------- */

uint64_t lsvc_now_ns(void); /* monotonic clock, never steps */
/* A condition variable whose timed waits take lsvc_now_ns() deadlines:
 * CLOCK_MONOTONIC on POSIX; on Windows (winpthreads ignores
 * pthread_condattr_setclock) the wait is made relative, so a change of the
 * wall clock moves no deadline. */
int lsvc_cond_init(pthread_cond_t *cv);
/* Wait on cv (mu held) until signalled or deadline_ns (lsvc_now_ns; 0 =
 * no deadline). Returns 0, or ETIMEDOUT once the deadline has passed.
 * Spurious wakes happen: callers loop on their predicate. */
int lsvc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns);

/* ---- log.c: the log, its levels and its sinks (any thread) ------------- */

/* printf-style checking; on mingw the build uses mingw's C99 printf
 * (__USE_MINGW_ANSI_STDIO), which gcc checks as gnu_printf, not msvcrt's. */
#ifdef __MINGW32__
#define LSVC_PRINTF(fmt, first) __attribute__((format(gnu_printf, fmt, first)))
#else
#define LSVC_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#endif

typedef enum lsvc_level {
    LSVC_LOG_DEBUG = 7,
    LSVC_LOG_INFO = 6,
    LSVC_LOG_NOTICE = 5,
    LSVC_LOG_WARNING = 4,
    LSVC_LOG_ERROR = 3,
} lsvc_level;

int lsvc_level_from_name(const char *name); /* -1 if unknown */
const char *lsvc_level_name(lsvc_level lv);
void lsvc_log_set_level(lsvc_level lv);
void lsvc_log_set_journal(bool on); /* "<N>" priority prefixes for journald */
void lsvc_log(lsvc_level lv, const char *service, const char *fmt, ...) LSVC_PRINTF(3, 4);
void lsvc_log_text(lsvc_level lv, const char *service, const char *text);
/* Further destinations for log lines, registered from above (the Windows
 * event log, a service's status_slot): a sink is called on the logging
 * thread with each line at max_level or more severe, the text as given (a
 * sink escapes for its own medium). shown_only: only lines that pass the
 * log level (--log-level); else whatever the level shown. Adding is safe
 * while other threads log; a sink is never removed (it may ignore lines).
 * At most LSVC_LOG_MAX_SINKS; returns 0, or -1 when full. */
typedef void (*lsvc_log_sink)(lsvc_level lv, const char *service, const char *text);
#define LSVC_LOG_MAX_SINKS 4
int lsvc_log_add_sink(lsvc_log_sink fn, lsvc_level max_level, bool shown_only);
/* Instead of stderr and the sink: every line at warning or more severe goes
 * to fn, the others nowhere (luasvc check collects its findings so). Set
 * before the threads that log start. */
void lsvc_log_set_capture(lsvc_log_sink fn);

/* ---- alloc.c: a Lua state's allocator, with the script's memory_limit --- */

typedef struct lsvc_alloc {
    size_t used;     /* bytes the state holds now */
    size_t peak;
    size_t limit;    /* 0: no limit */
    size_t reserve;  /* allowed past the limit once stopping */
    bool stopping;
    unsigned refused; /* allocations refused so far */
} lsvc_alloc;

#define LSVC_ALLOC_RESERVE (1u << 20) /* what a stop handler may still take */

/* A lua_Alloc; ud is the state's lsvc_alloc. Worker thread only. */
void *lsvc_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* ---- logfile.c: a log file rotated by size, reopened on request (any thread) */

typedef struct lsvc_logfile lsvc_logfile;
/* Open PATH for appending; NULL with a message naming the option in err. */
lsvc_logfile *lsvc_logfile_open(const char *path, uint64_t max_size, unsigned keep, char *err,
                                size_t errlen);
/* Append one whole line (one write); rotate first when it would take the
 * file past max_size (0: never). 0, or -1 when the line was lost. */
int lsvc_logfile_write(lsvc_logfile *lf, const char *line, size_t len);
void lsvc_logfile_reopen(lsvc_logfile *lf); /* at the next write; async-signal-safe */
void lsvc_logfile_close(lsvc_logfile *lf);
/* "1048576", "512k", "10M", "1G": 0, or -1 if not a size. */
int lsvc_parse_size(const char *s, uint64_t *out);

/* ---- service.c: one hosted service, its status and its control handler --- */

typedef struct lsvc_service lsvc_service;
typedef struct lsvc_host lsvc_host;

#define LSVC_START_WAIT_HINT_MS 30000u   /* the SCM's default patience for a start */
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
} lsvc_deadline;
const char *lsvc_deadline_name(lsvc_deadline kind, uint32_t code); /* "stop", "pause" */

/* The host's start barrier, as a service sees it. */
typedef enum lsvc_gate {
    LSVC_GATE_WAIT,  /* loading, or loaded and waiting for the others */
    LSVC_GATE_GO,    /* every script loaded: start */
    LSVC_GATE_ABORT, /* another script failed (or a check): do not start */
} lsvc_gate;

/* Called after every status change, on the thread that made it, with no
 * lock held. A front end reports to its service manager here. */
typedef void (*lsvc_report_fn)(lsvc_service *svc, const lsvc_status *st, void *ud);
/* Called on the worker thread when a reload (PARAMCHANGE, or a hot edit of
 * the script) begins and when it has ended, however it ended; the calls
 * pair up. systemd's RELOADING=1 ... READY=1. */
typedef void (*lsvc_reloading_fn)(lsvc_service *svc, bool begin, void *ud);

struct lsvc_service {
    /* set before the worker starts, then read-only */
    char *script_path;
    int argc;
    char **argv;
    lsvc_host *host;
    lsvc_report_fn report;
    lsvc_reloading_fn reloading; /* may be NULL */
    void *report_ud;
    size_t index;

    /* set by the worker while loading, then read-only (under mu) */
    char name[128];
    char display_name[256];

    pthread_mutex_t report_mu; /* one report at a time, in order */
    uint64_t reported_seq;     /* under report_mu: the newest reported */

    pthread_mutex_t mu; /* guards everything below */
    uint64_t report_seq;      /* the newest status snapshot's number */
    lsvc_status status;
    uint32_t accepts;         /* the script's mask */
    uint8_t user_handled[32]; /* bitmap of user codes 128-255 with a handler */
    uint32_t stop_timeout_ms;
    uint32_t watchdog_ms;     /* the script's `watchdog`, 0 = none */
    char status_text[256];    /* ctx:status / ctx:progress text; "" at every state change */
    char description[512];
    uint64_t deadline_ns;     /* 0 = none; the watchdog interrupts after it */
    uint64_t interrupted_ns;  /* when the watchdog raised the interrupt */
    uint64_t irq_sent_ns;     /* when the watchdog last had the worker hook itself */
    lsvc_deadline deadline_kind;
    uint32_t deadline_code;   /* LSVC_DEADLINE_CONTROL: the control */
    bool stop_requested;
    uint32_t stop_code;       /* STOP, SHUTDOWN or PRESHUTDOWN */
    bool abandoned;
    bool stopped_reported;
    bool loaded, load_failed;
    lsvc_gate gate;
    uint64_t last_latency_ns; /* control arrival to handler entry */
    uint64_t controls_delivered;
    unsigned reloads;             /* hot reloads taken up */
    char last_reload_error[1024]; /* "" after a good reload */

    /* host options, set before the worker starts */
    bool allow_insecure;          /* load scripts others could change */
    uint32_t watch_interval_ms;   /* 0: no file watch */
    bool watch_poll;              /* poll on the interval even where changes are told */

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

    lsvc_queue queue;
    pthread_t thread;
    bool thread_started;
    pthread_cond_t load_cv;
};

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
    int argc;                     /* start arguments */
    char **argv;
    lsvc_report_fn report;        /* may be NULL */
    lsvc_reloading_fn reloading;  /* may be NULL */
    void *report_ud;              /* for both */
    bool allow_insecure;          /* load scripts others could change */
    uint32_t watch_interval_ms;   /* 0: no file watch (hot reload off) */
    bool watch_poll;              /* poll on the interval even where changes are told */
} lsvc_service_opts;

lsvc_service *lsvc_service_new(lsvc_host *host, const lsvc_service_opts *opts);
void lsvc_service_free(lsvc_service *svc);
/* The control handler. Any thread but the worker; never touches Lua; returns
 * in bounded time with LSVC_NO_ERROR or the Win32 code the SCM would give. */
uint32_t lsvc_service_control(lsvc_service *svc, uint32_t code, uint32_t event_type);
/* The same, with the event's data (session id, power setting) taken from
 * ev; its arrival time is set here. */
uint32_t lsvc_service_control_ev(lsvc_service *svc, const lsvc_event *ev);
void lsvc_service_get_status(lsvc_service *svc, lsvc_status *out);
/* Worker only: change state (checks the transition), reset checkpoint. */
void lsvc_service_set_state(lsvc_service *svc, lsvc_state st, uint32_t wait_hint);
void lsvc_service_set_stopped(lsvc_service *svc, lsvc_exit ex);
/* Worker only: ctx:progress. Returns false outside pending states. */
bool lsvc_service_progress(lsvc_service *svc, uint32_t wait_hint);
bool lsvc_service_stopping(lsvc_service *svc);
void lsvc_service_request_stop(lsvc_service *svc); /* worker: run returned, ctx:exit */
void lsvc_service_set_deadline(lsvc_service *svc, uint64_t at_ns, lsvc_deadline kind);
/* Worker: what a (re)loaded script declares. name: NULL keeps the name. */
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
void lsvc_service_reload_result(lsvc_service *svc, const char *error); /* NULL: success */
size_t lsvc_status_json(lsvc_service *svc, char *buf, size_t len);

/* What a front end reads of a service (any thread). The name is the
 * file's until the script has loaded, then the script's, fixed. */
const char *lsvc_service_name(const lsvc_service *svc);
const char *lsvc_service_script(const lsvc_service *svc);
size_t lsvc_service_index(const lsvc_service *svc); /* its place in its host */
bool lsvc_service_load_failed(lsvc_service *svc);  /* after lsvc_host_wait_loaded */
uint32_t lsvc_service_stop_timeout(lsvc_service *svc);
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

/* ---- worker.c: the per-service thread that owns the lua_State ---------- */

struct lua_State;
typedef struct lsvc_worker lsvc_worker; /* worker.h: the engine's own */

int lsvc_worker_start(lsvc_service *svc); /* 0 or errno */
lsvc_worker *lsvc_worker_of(struct lua_State *L);
lsvc_service *lsvc_worker_service(struct lua_State *L);
/* task.c, for waits written elsewhere (mailslot.c): may L wait here (a
 * task, not a luv callback or a C call in between)? Must a wait on L end
 * now (a stop, a reload winding run down, the watchdog's interrupt)? */
bool lsvc_task_can_wait(struct lua_State *L);
bool lsvc_task_must_return(struct lua_State *L);
/* Suspend L's task until the next turn of the scheduler, then continue
 * with k (lua_yieldk). Only where lsvc_task_can_wait. */
int lsvc_task_yield_turn(struct lua_State *L, intptr_t kctx, int (*k)(struct lua_State *, int, intptr_t));

/* ---- reload.c: loading and hot-reloading a script (worker thread) ------ */

/* a look's outcome; WRITING: a writer is at work (fswatch.c), hold */
enum { LSVC_WATCH_NONE, LSVC_WATCH_SETTLING, LSVC_WATCH_CHANGED, LSVC_WATCH_WRITING };
#define LSVC_WATCH_DEFAULT_MS 100u

int lsvc_reload_setup(lsvc_worker *w);
/* Load and validate the script; push its info table and return 1, or
 * return 0 with the message in err (nothing changed). */
int lsvc_reload_load(lsvc_worker *w, bool first, char *err, size_t errlen);
void lsvc_reload_apply(lsvc_worker *w, int info_index, bool first);
void lsvc_reload_rollback(lsvc_worker *w);
int lsvc_reload_poll(lsvc_worker *w);
/* Ask fswatch.c to tell of changes to the watched files (else poll). The
 * first version's files once it runs: nothing on the way to RUNNING. */
void lsvc_reload_watch(lsvc_worker *w);
void lsvc_reload_free(lsvc_worker *w);

/* ---- fileguard.c: what the loader checks (worker thread) ---------------- */

/* What makes a file unsafe to load (others could change it): "" if safe. */
void lsvc_file_problem(const char *what, const char *path, char *buf, size_t len);
/* Push lua/loader.lua's checks: a table {secure = f(path [, what]) -> true |
 * nil, message; name_valid = f(name) -> true | nil, rule; default_path,
 * default_cpath: the search paths Lua was built with}. */
void lsvc_fileguard_push(struct lua_State *L, bool allow_insecure);

/* ---- fswatch.c: change notification for the watch (any thread) ------- */

/* Watch these files for svc (replacing what it watched) and raise
 * svc->fs_kicked on a change. false: not available, poll on a timer. */
bool lsvc_fswatch_set(lsvc_service *svc, char *const *paths, size_t n);
void lsvc_fswatch_forget(lsvc_service *svc);
void lsvc_fswatch_shutdown(void); /* at exit, after the workers ended */
/* What the events since the last take prove of svc's files, as they were
 * when the caller looked just before: COMPLETE, every change ended in a
 * whole save (a close after writing, a rename into place); WRITING, a
 * writer is at work (a write, no close yet, within the hold below);
 * UNSURE, nothing proven (the settle rule decides). Worker thread. */
typedef enum {
    LSVC_FSWATCH_UNSURE,
    LSVC_FSWATCH_COMPLETE,
    LSVC_FSWATCH_WRITING,
} lsvc_fswatch_told;
lsvc_fswatch_told lsvc_fswatch_take(lsvc_service *svc);
/* A writer that wrote and did not close holds a reload this long at most
 * after its last write (one that never closes, truncate(2), mmap). */
#define LSVC_FSWATCH_HOLD_MS 1000u

/* ---- watchdog.c: deadlines for every service of a host ----------------- */

int lsvc_watchdog_start(lsvc_host *host);
void lsvc_watchdog_kick(lsvc_host *host); /* deadlines changed */

/* ---- host.c: the services of one process (any thread) ------------------ */

struct lsvc_host {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a service reaches STOPPED or loads */
    pthread_cond_t wd_cv;
    lsvc_service **svcs;
    size_t n;
    bool quitting;
    pthread_t wd_thread;
    bool wd_started;
    /* lsvc_host_on_ready: the front end's part of a start, and what is
     * still to come before it runs (every load, the front end's token) */
    void (*ready)(lsvc_host *h, size_t failed, void *ud);
    void *ready_ud;
    size_t ready_pending;
    bool ready_done;
};

lsvc_host *lsvc_host_new(void);
int lsvc_host_add(lsvc_host *h, lsvc_service *svc);
/* Wait until every worker has loaded (or failed to load) its script.
 * Returns the number that failed. */
size_t lsvc_host_wait_loaded(lsvc_host *h);
void lsvc_host_release(lsvc_host *h, bool go); /* go=false: abort the starts */
/* The start barrier without a hand-over: ready(h, failed, ud) (what must
 * be open before RUNNING, then lsvc_host_release) runs once, on whichever
 * thread ends the last of the loads and the front end's preparation
 * (lsvc_host_prepared), most often the last worker to load, which then
 * passes its own gate at once. Set before the workers start; the front
 * end learns the outcome with lsvc_host_wait_ready. Without it, the front
 * end waits (lsvc_host_wait_loaded) and releases. */
void lsvc_host_on_ready(lsvc_host *h, void (*ready)(lsvc_host *, size_t, void *), void *ud);
void lsvc_host_prepared(lsvc_host *h);
void lsvc_host_loaded(lsvc_host *h); /* a worker's load ended, well or not */
void lsvc_host_wait_ready(lsvc_host *h);
void lsvc_host_wait_stopped(lsvc_host *h);
bool lsvc_host_all_stopped(lsvc_host *h);
/* Process exit status once all are stopped: 2 for a load failure, else the
 * first failing service's status, else 0. */
int lsvc_host_exit_status(lsvc_host *h);
void lsvc_host_join(lsvc_host *h); /* joins workers not abandoned */
void lsvc_host_notify(lsvc_host *h);
size_t lsvc_host_count(lsvc_host *h);                  /* services, fixed once started */
lsvc_service *lsvc_host_service(lsvc_host *h, size_t i); /* i < lsvc_host_count */

/* ---- luamod.c: the luasvc module and ctx (worker thread only) ---------- */

int lsvc_open_luasvc(struct lua_State *L);
/* Build ctx for svc and leave it on the stack. */
void lsvc_push_ctx(struct lua_State *L, lsvc_service *svc);

/* ---- check.c: `luasvc check` (main thread) ------------------------------ */

int lsvc_check_main(int argc, char **argv);

/* ---- luawarn.c: Lua's warn() to the log (worker thread only) ----------- */

/* A lua_WarnFunction; ud is the lsvc_service. */
void lsvc_lua_warn(void *ud, const char *msg, int tocont);

/* ---- proto.c: the control endpoint's wire format (pure, any thread) ---- */

#define LSVC_PROTO_MAX 512 /* bytes in one request, newline included */

typedef enum lsvc_req_kind { LSVC_REQ_CONTROL = 1, LSVC_REQ_STATUS = 2 } lsvc_req_kind;

typedef struct lsvc_request {
    lsvc_req_kind kind;
    uint32_t code;
    char name[128];
} lsvc_request;

/* Parse one request "CONTROL <code> <name>\n" or "STATUS <name>\n". Returns
 * 0, or -1 with a message in err. Never reads past len. */
int lsvc_proto_parse(const char *buf, size_t len, lsvc_request *out, char *err, size_t errlen);

/* ---- platform/posix_mailslot.c, platform/win32_mailslot.c: mailslots -----
 * A slot is a named, one-reader message channel: Windows mailslots
 * (\\.\mailslot\NAME), on POSIX AF_UNIX datagram sockets under
 * RUNTIME_DIR/slots/NAME. A reader is used by one thread at a time; a
 * writer too (callers serialise). Writes never block. */

#define LSVC_SLOT_MAX 65536 /* bytes in one message, on every platform */

typedef enum lsvc_slot_rc {
    LSVC_SLOT_OK = 0,
    LSVC_SLOT_TIMEOUT,   /* read: nothing within the timeout */
    LSVC_SLOT_NOREADER,  /* write: no slot of that name (fails fast) */
    LSVC_SLOT_FULL,      /* write: the reader's queue is full (fails fast) */
    LSVC_SLOT_TOOLARGE,  /* write: over LSVC_SLOT_MAX */
    LSVC_SLOT_EXISTS,    /* create: the slot already has a reader */
    LSVC_SLOT_DENIED,    /* create/write: permission denied */
    LSVC_SLOT_TRUNCATED, /* read: a message too large to give whole came, dropped */
    LSVC_SLOT_MALFORMED, /* read (POSIX): a message not from a slot writer, dropped */
    LSVC_SLOT_ERROR,     /* anything else; the message says what */
} lsvc_slot_rc;

typedef struct lsvc_slot lsvc_slot;               /* a reader */
typedef struct lsvc_slot_writer lsvc_slot_writer; /* a writer */

/* mailslot.c, for both platforms: */
const char *lsvc_slot_rc_name(lsvc_slot_rc rc); /* "noreader", ...: Lua's codes */
/* A valid slot name: 1-80 characters, no '/', '\' or control characters. */
bool lsvc_slot_name_valid(const char *name);
/* platform/posix_mailslot.c or platform/win32_mailslot.c: */
/* group: NULL for an owner-only slot, else a group allowed to write (POSIX). */
lsvc_slot *lsvc_slot_create(const char *name, const char *group, lsvc_slot_rc *rc, char *err,
                            size_t errlen);
/* Wait up to timeout_ms (0: poll) for one message into buf (cap bytes,
 * LSVC_SLOT_MAX is enough); *len gets its size. A message is never given
 * altered: one that cannot be given whole is dropped and reported
 * (TRUNCATED, MALFORMED, err saying what), and the next read goes on. */
lsvc_slot_rc lsvc_slot_read(lsvc_slot *s, char *buf, size_t cap, size_t *len,
                            uint32_t timeout_ms, char *err, size_t errlen);
void lsvc_slot_close(lsvc_slot *s); /* removes the slot */
/* A writer to NAME; never fails for want of a reader (writes do). */
lsvc_slot_writer *lsvc_slot_open(const char *name, char *err, size_t errlen);
lsvc_slot_rc lsvc_slot_write(lsvc_slot_writer *w, const void *msg, size_t len, char *err,
                             size_t errlen);
void lsvc_slot_writer_close(lsvc_slot_writer *w);

/* ---- mailslot.c: luasvc.mailslot for scripts (worker thread only) -------- */

void lsvc_open_mailslot(struct lua_State *L); /* pushes the luasvc.mailslot table */

/* ---- status_slot.c: a service's status_slot (any thread) ---------------- */

/* Post every state change and every log line at info or above of the
 * service to slot (NULL: stop posting). Worker, when a script (re)loads. */
void lsvc_status_slot_set(lsvc_service *svc, const char *slot);
/* It observes the services (lsvc_service_observe) and is a log sink
 * (lsvc_log_add_sink), registered by its first binding. Posts begin with
 * the state the service is in when the host lets it start, or the binding
 * goes (a check, an install, a sibling that failed to load posts nothing).
 * Posting never blocks and never logs. */
/* The JSON message: {"service","state","time","level","text","event"}. */
size_t lsvc_status_slot_json(char *buf, size_t len, const char *service, const char *state,
                             const char *level, const char *text, const char *event);
/* `luasvc listen NAME [--json]`: print a slot's messages until Ctrl+C. */
int lsvc_listen(int argc, char **argv);

/* ---- util.c ------------------------------------------------------------ */

/* A path separator: '/', and on Windows '\\' too. */
#ifdef _WIN32
#define LSVC_IS_SEP(c) ((c) == '/' || (c) == '\\')
#else
#define LSVC_IS_SEP(c) ((c) == '/')
#endif

/* Append a JSON string literal for s to buf (bounded), return the new
 * length (as snprintf: what it needs, even past len). Valid JSON whatever
 * s holds: control characters escaped, bytes that are not UTF-8 written
 * as U+FFFD. */
size_t lsvc_json_str(char *buf, size_t len, size_t pos, const char *s);
/* The name rule of services and slots, for C and Lua (fileguard.c): 1-80
 * characters, no '/', '\' or control characters, not "." or "..", no
 * leading '-' (it reads as an option), no leading or trailing space. */
bool lsvc_name_valid(const char *name);
#define LSVC_NAME_RULE                                                                    \
    "1-80 characters, no '/', '\\' or control characters, not starting with '-', not " \
    "starting or ending with a space"
/* Parse a control given as a number (1-255) or a name. -1 if invalid. */
int lsvc_parse_control(const char *s);
/* The arguments "[NAME] [--json]" of `luasvc CMD` (status, listen): 0, or 2
 * after saying which argument is unexpected. */
int lsvc_parse_name_json(const char *cmd, int argc, char **argv, const char **name, bool *json);

#endif
