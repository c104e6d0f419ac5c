/*
 * worker.h - the engine's private declarations: the worker thread, its
 * libuv loop, its tasks (coroutines the scheduler owns) and the reload
 * state machine. Everything here is for the worker thread that owns the
 * service's lua_State, unless a comment says otherwise.
 *
 *   worker.c   the thread's life by phase (load, start, run, stop, close)
 *              and one turn of the scheduler
 *   task.c     tasks, waits (ctx:sleep, queues, ctx:await), ctx:spawn
 *              (each resume of a spawned task a slice of handler_timeout),
 *              the coroutine library's resume/wrap that let a wait cross
 *              a script's own coroutines, the interrupt hook (which
 *              also pauses a loading top level when a control waits)
 *   uvlua.c    luv bound to the worker's loop: the protected call every
 *              luv callback goes through (a slice of handler_timeout),
 *              closing every handle at STOPPED, and a refused version's
 *              handles when it is refused
 *   reload.c   loading a script, the watch, the reload state machine (a
 *              new version's top level as a coroutine, paused for controls)
 *
 * and what the engine's other files (luamod.c, mailslot.c, fileguard.c,
 * fswatch.c, luawarn.c, status_slot.c) provide each other. engine.h is the
 * part the front ends see.
 */
#ifndef LSVC_WORKER_H
#define LSVC_WORKER_H

#include <uv.h>

#include "engine.h"

/* ==== what the engine's files call of each other ==== */

struct lua_State;
struct lua_Debug;
typedef struct lsvc_worker lsvc_worker;

lsvc_worker *lsvc_worker_of(struct lua_State *L);
lsvc_service *lsvc_worker_service(struct lua_State *L);
/* task.c, for waits written elsewhere (mailslot.c): may L wait here (a
 * task, not a luv callback or a C call in between)? Must a wait on L end
 * now (a stop, a reload winding run down, the watchdog's interrupt)? */
bool lsvc_task_can_wait(struct lua_State *L);
bool lsvc_task_must_return(struct lua_State *L);
/* Suspend L's task until the next turn of the scheduler, then continue
 * with k (lua_yieldk). Only where lsvc_task_can_wait. */
int lsvc_task_yield_turn(struct lua_State *L, intptr_t kctx,
                         int (*k)(struct lua_State *, int, intptr_t));
/* Suspend L's task until fd is readable, or ms pass (ms < 0: no limit),
 * or the task must wind down; then continue with k. Only where
 * lsvc_task_can_wait. */
int lsvc_task_wait_fd(struct lua_State *L, int fd, double ms, intptr_t kctx,
                      int (*k)(struct lua_State *, int, intptr_t));

/* ---- reload.c: loading and hot-reloading a script (worker thread) ------ */

/* The chunk name of lua/loader.lua (a load never pauses in its code). */
#define LSVC_LOADER_SOURCE "=[luasvc loader]"
/* a look's outcome; WRITING: a writer is at work (fswatch.c), hold */
enum { LSVC_WATCH_NONE, LSVC_WATCH_SETTLING, LSVC_WATCH_CHANGED, LSVC_WATCH_WRITING };

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

/* ---- luamod.c: the luasvc module and ctx (worker thread only) ---------- */

int lsvc_open_luasvc(struct lua_State *L);
/* A new table of the accepts names and their bits (luasvc.accepts). */
void lsvc_push_accepts(struct lua_State *L);
/* Build ctx for svc and leave it on the stack. */
void lsvc_push_ctx(struct lua_State *L, lsvc_service *svc);

/* ---- http.c: luasvc.http, the HTTP server and client (worker thread only) */

/* package.preload["luasvc.http"] */
int lsvc_open_http(struct lua_State *L);

/* ---- luawarn.c: Lua's warn() to the log (worker thread only) ----------- */

/* A lua_WarnFunction; ud is the lsvc_service. */
void lsvc_lua_warn(void *ud, const char *msg, int tocont);

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

/* ==== the worker and its tasks ==== */

/* The kinds of tasks: main runs start, then run, then stop; handler runs
 * one control (or the new version's reload) at a time; spawned ones come
 * from ctx:spawn. */
typedef enum lsvc_task_kind {
    LSVC_TASK_MAIN,
    LSVC_TASK_HANDLER,
    LSVC_TASK_SPAWNED,
} lsvc_task_kind;

/* What a suspended task waits for. */
typedef enum lsvc_wait {
    LSVC_WAIT_NONE,  /* runnable, or running */
    LSVC_WAIT_TURN,  /* a bare yield: resumed at the next turn */
    LSVC_WAIT_SLEEP, /* ctx:sleep: its timer */
    LSVC_WAIT_QUEUE, /* a queue's get (ctx:queue, ctx:await): a push or its timer */
    LSVC_WAIT_FD,    /* a descriptor readable (a mailslot's read): a poll or its timer */
} lsvc_wait;

/* How a wait ended, for the continuation that returns to the script. */
typedef enum lsvc_woke {
    LSVC_WOKE_OK,       /* the time passed (sleep) or a value came (queue) */
    LSVC_WOKE_TIMEOUT,  /* a queue's get timed out */
    LSVC_WOKE_STOPPING, /* the task must wind down: a stop, or run's reload */
} lsvc_woke;

typedef struct lsvc_waitq lsvc_waitq; /* task.c: a queue's C side */

typedef struct lsvc_task {
    struct lsvc_worker *w;
    struct lua_State *co;
    int ref; /* keeps co alive in the registry */
    lsvc_task_kind kind;
    bool winds_down; /* its waits end early at a stop (run, controls, tasks
                             * spawned before the stop); stop's own waits hold */
    lsvc_wait wait;
    lsvc_woke woke;
    bool held;                  /* run's sleep came due while PAUSED */
    bool queued;                /* on the ready list */
    lsvc_waitq *waiting_on;     /* LSVC_WAIT_QUEUE: the queue */
    struct lsvc_fdwait *fdwait; /* LSVC_WAIT_FD: the poll handle */
    uv_timer_t timer;           /* data NULL: the loop's own handles are not luv's */
    bool timer_init;
    uint64_t due_ns;                 /* the timer's wait ends then, not before */
    uint64_t ready_turn;             /* the turn it became ready in */
    char what[40];                   /* "run", "pause", "controls[200]", "task 3" */
    struct lsvc_task *prev, *next;   /* every live task */
    struct lsvc_task *rprev, *rnext; /* the ready list */
} lsvc_task;

/* The phases of a worker's life; tasks and the turn behave by phase. */
typedef enum lsvc_phase {
    LSVC_PHASE_LOAD,
    LSVC_PHASE_START,
    LSVC_PHASE_RUN,
    LSVC_PHASE_STOP,
    LSVC_PHASE_CLOSE, /* STOPPED is near: closing handles, reaping children */
} lsvc_phase;

/* The reload state machine (reload.c). */
typedef enum lsvc_reload_phase {
    LSVC_RELOAD_IDLE,
    LSVC_RELOAD_LOADING, /* the new version's top level runs, paused while
                          * the running version handles a control */
    LSVC_RELOAD_HOOK,    /* the new version's reload(ctx, previous) runs */
    LSVC_RELOAD_WINDING, /* the old run is asked to return: ctx:reloading() */
} lsvc_reload_phase;

struct lsvc_worker {
    lsvc_service *svc;
    struct lua_State *L;
    uv_loop_t loop;
    /* the loop's wake from other threads: controls, the fs watch's kick,
     * the watchdog, the notifier (worker.c: why an eventfd on Linux) */
#ifdef __linux__
    struct {
        uv_poll_t h;
        int fd;
    } wake;
#else
    uv_async_t wake;
#endif
    uv_timer_t watch_timer; /* the watch's next look (poll interval, settle) */
    int script_ref, ctx_ref;
    lsvc_phase phase;
    bool deliver; /* controls are taken from the queue */

    lsvc_task *main;    /* start, then run, then stop */
    lsvc_task *handler; /* the control being handled, one at a time */
    lsvc_event handler_ev;
    char handler_what[40]; /* its name, for messages after it ended */
    bool handler_fresh;    /* not resumed yet: its control's latency is due */
    lsvc_task *tasks;      /* every live task */
    lsvc_task *ready_head, *ready_tail;
    uint64_t turn;    /* the scheduler's turns, counted */
    bool in_loop;     /* the scheduler's uv_run is running (its callbacks) */
    unsigned spawned; /* ctx:spawn's counter, for names */
    unsigned ntasks;  /* live tasks (lsvc_service_set_gauges) */

    /* the running Lua: the task being resumed (NULL in a luv callback or
     * between tasks), the lua_State executing now (the interrupt's signal
     * handler hooks it: read asynchronously on this thread), and whether
     * a wait may yield from there up to the task (task.c) */
    lsvc_task *current;
    struct lua_State *volatile running;
    bool chain_ok;
    bool suspending; /* a wait is yielding up to the scheduler */

    bool paused;
    bool stop_seen; /* the winding tasks were told of the stop */
    bool failed;    /* start or run raised an error */
    bool forced;    /* interrupted past a deadline */
    bool exit_set;  /* ctx:exit was called */
    uint32_t exit_code;
    bool broken;  /* reading the script's table raised: it stops (code 2) */
    bool loading; /* a version's top level runs (os.exit refuses there) */

    uv_timer_t reap_timer; /* a refused version's children: SIGKILL (uvlua.c) */
    bool reap_timer_init;

    lsvc_alloc alloc;            /* the state's allocator: memory_limit (alloc.c) */
    uint32_t handler_timeout_ms; /* the script's handler_timeout */

    /* hot reload (reload.c, lua/loader.lua) */
    int loader_ref;
    int new_info_ref; /* the validated new version, until it takes over */
    lsvc_reload_phase reload_phase;
    bool reload_pending;          /* a change or a PARAMCHANGE asked for one */
    bool settling;                /* a change was seen; the loader decides when it is stable */
    struct lsvc_watched *watched; /* the files of the version in place, as last seen */
    size_t nwatched;
    int load_handles_ref;  /* the handles the new version's top level opened */
    /* LOADING: the top level as a coroutine (load_co, kept by load_co_ref),
     * resumed by reload.c; load_running while it runs (the hook pauses it
     * there when a control waits); its budget left of handler_timeout */
    struct lua_State *load_co;
    int load_co_ref, load_nargs, load_mark_ref;
    bool load_running, load_paused;
    bool closing_refused; /* a refused version's handles are being closed:
                           * no control is delivered from inside */
    uint64_t load_left_ns;
    uint32_t load_ms;
    void (*load_hook)(struct lua_State *,
                      struct lua_Debug *); /* the state's, put back on refusal */
    int load_hook_mask, load_hook_count;
    bool fs_notified;      /* fswatch.c tells of changes: no timed polls */
    uint64_t next_poll_ns; /* 0: none due */
    bool reload_told;      /* the front end was told a reload began */
};

/* ---- worker.c ---- */
void lsvc_worker_exit(lsvc_worker *w, uint32_t code);
/* Push handler `field` of the script table and return 1, or return 0.
 * The script's table is read in a protected call: an __index that raises
 * stops the service with exit code 2 (lsvc_worker_broken). */
int lsvc_worker_push_handler(lsvc_worker *w, const char *field);
/* t[field] of the table at the top of w->L's stack, protected: replaces
 * the table with the value and returns 1, or pops it and returns 0 after
 * lsvc_worker_broken. what names the table in the message ("S"). */
int lsvc_worker_get(lsvc_worker *w, const char *what, const char *field);
/* Reading the script's table raised (the error object on top, popped):
 * logged once, and the service stops with exit code 2. */
void lsvc_worker_broken(lsvc_worker *w, const char *what, const char *field);
/* The text of the error object at idx, through its __tostring when it has
 * one (protected): pushed. */
const char *lsvc_worker_error_text(struct lua_State *L, int idx);
/* Is the error object at idx os.exit's (the service stops, no failure)? */
bool lsvc_worker_is_exit(struct lua_State *L, int idx);
void lsvc_worker_start_run(lsvc_worker *w);
/* The deadline for a state the service is in again after a reload. */
void lsvc_worker_restore_deadline(lsvc_worker *w);
/* Deliver what the control lane can take now (worker.c's turn, and
 * between luv callbacks: a control waits for one callback at most). */
void lsvc_worker_deliver(lsvc_worker *w);
void lsvc_worker_between_callbacks(lsvc_worker *w);
/* What follows a control handler: the state it leads to, or back. */
void lsvc_worker_control_done(lsvc_worker *w, const lsvc_event *ev, bool ok);
/* Tell the front end a reload began or ended; begin/end pair up. */
void lsvc_worker_tell_reloading(lsvc_worker *w, bool begin);
/* What the interrupt hook stopped. */
typedef enum lsvc_victim {
    LSVC_VICTIM_NONE,    /* nothing: the worker was waiting */
    LSVC_VICTIM_MAIN,    /* start, run or stop */
    LSVC_VICTIM_HANDLER, /* a control's handler, or the new version's reload */
    LSVC_VICTIM_OTHER,   /* a spawned task, a luv callback */
} lsvc_victim;
/* The deadline passed and the interrupt was raised: settle what held the
 * service up, and answer the watchdog. */
void lsvc_worker_interrupted(lsvc_worker *w, lsvc_victim victim);
/* Answer the watchdog: the interrupt has been handled; the next deadline. */
void lsvc_worker_ack_interrupt(lsvc_worker *w, uint64_t deadline_ns, lsvc_deadline kind);

/* ---- task.c ---- */
typedef enum { LSVC_TASK_YIELDED, LSVC_TASK_DONE, LSVC_TASK_FAILED } lsvc_task_result;
/* Start a task with the function at the top of L's stack and the nargs
 * values below it ([f, args...] are popped), ready to run. */
lsvc_task *lsvc_task_new(lsvc_worker *w, struct lua_State *from, lsvc_task_kind kind, int nargs,
                         const char *what);
void lsvc_task_end(lsvc_task *t); /* t is gone afterwards (freed once its timer closed) */
lsvc_task_result lsvc_task_resume(lsvc_task *t);
/* Make a waiting task runnable: its wait returns as `woke` says. */
void lsvc_task_wake(lsvc_task *t, lsvc_woke woke);
/* The next task made ready before this turn, or NULL. */
lsvc_task *lsvc_task_pop_ready(lsvc_worker *w);
/* Does t's wait end early now (a stop, or run's reload)? */
bool lsvc_task_must_wind(const lsvc_task *t);
/* A stop came, or run is asked to return: end such waits. */
void lsvc_task_wind_all(lsvc_worker *w);
void lsvc_task_end_all(lsvc_worker *w);
/* PAUSED ended: run's sleep that came due meanwhile returns. */
void lsvc_task_unhold(lsvc_worker *w);
/* The interrupt hook (the thread's own, see interrupt.c), and the
 * coroutine library's resume and wrap that keep track of `running`. */
void lsvc_task_open(lsvc_worker *w);
/* A new version's top level (co) is about to load: the hook looks every
 * so many instructions whether a control waits, and then yields co up to
 * reload.c where a yield can get there (not inside a C call: require, a
 * sort's comparator; it looks again later). */
void lsvc_task_slice_load(struct lua_State *co);
/* The loaded version's top level set a hook of its own (debug.sethook)
 * on co: the state takes it, as if the top level had run there. */
void lsvc_task_adopt_hook(lsvc_worker *w, struct lua_State *co);
/* ctx:spawn, ctx:queue, ctx:await for luamod.c */
int lsvc_ctx_spawn(struct lua_State *L);
int lsvc_ctx_queue(struct lua_State *L);
int lsvc_ctx_await(struct lua_State *L);
int lsvc_ctx_sleep(struct lua_State *L);

/* ---- uvlua.c ---- */
/* package.preload.luv: luv on this worker's loop. */
void lsvc_uvlua_open(lsvc_worker *w);
/* Protected call of the function under nargs values on L's stack, with a
 * traceback, as every luv callback: an error is logged as in `what`. */
int lsvc_uvlua_pcall(lsvc_worker *w, int nargs, int nresults, const char *what);
/* STOPPED is near: close every handle, SIGTERM then (after grace_ms)
 * SIGKILL children, run the loop until every close callback fired. */
void lsvc_uvlua_close_all(lsvc_worker *w, uint32_t grace_ms);
/* Push a mark: the script's handles now. Replace the mark at idx with the
 * list of the handles opened since. Close each handle of such a list (a
 * refused version's): none of its callbacks runs again; a running child
 * gets SIGTERM, SIGKILL after grace_ms, and its handle closes once it is
 * reaped. Nothing waits: the loop goes on meanwhile. */
void lsvc_uvlua_mark(lsvc_worker *w);
void lsvc_uvlua_opened_since(lsvc_worker *w, int mark);
void lsvc_uvlua_close_refused(lsvc_worker *w, int list, uint32_t grace_ms);

/* ---- reload.c: the reload state machine ---- */
/* One step, at each turn while running: take up a change or a
 * PARAMCHANGE's reload when the service can, or go on loading a version
 * that the controls waiting paused (once they are handled). true:
 * something started or went on. */
bool lsvc_reload_step(lsvc_worker *w);
/* Around each resume of the reload's handler task (the new version's
 * reload): the luv handles it opened join the new version's, closed if
 * the version is refused. */
void lsvc_reload_hook_resuming(lsvc_worker *w);
void lsvc_reload_hook_resumed(lsvc_worker *w);
/* The reload's handler task (the new version's reload) ended. */
void lsvc_reload_hook_done(lsvc_worker *w, bool ok);
/* The old run returned while winding down. */
void lsvc_reload_run_returned(lsvc_worker *w, bool interrupted);
/* A stop came first: drop the new version. */
void lsvc_reload_cancel(lsvc_worker *w, const char *err);
/* The deadline passed during a reload: true when handled here. */
bool lsvc_reload_interrupted(lsvc_worker *w, lsvc_victim victim);
/* The first version runs: watch its files from now on. */
void lsvc_reload_begin_watch(lsvc_worker *w);

#endif
