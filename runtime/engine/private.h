/*
 * private.h - the engine's private header, as luv's src/private.h: the
 * worker (one per service: its thread owns the service's lua_State and
 * libuv loop) and what the
 * engine's files provide each other, grouped by the file that owns it, as
 * luv's src/private.h is. Names with two underscores (lsvc__) are the
 * engine's own; lsvc_ names cross a layer (engine.h, or the layers below).
 * Worker thread only, unless a comment says otherwise.
 *
 * Bottom to top (calls go down this list, what flows up is registered):
 *   lstate.c  the Lua state's helpers every engine file needs
 *   task.c    tasks (task.h), their ready list, waits and PAUSED, ctx:spawn
 *   coro.c    the interrupt and slice hook, the coroutine library's
 *             resume/wrap, xpcall, debug.sethook
 *   waitq.c   ctx:queue, ctx:await
 *   sched.c   running a task through its kind, the answer to an interrupt
 *   fence_proc.c  the process's identity, environment, locale, title and
 *             priority; C functions' upvalues; copies of the runtime's modules
 *   fence.c   what a service may reach of the process (luv, lfs, cjson)
 *   ptree.c   the service's process tree (uv.spawn's children, the gauge)
 *   spawn.c   the runtime's own children (io.popen, os.execute, ctx:exec)
 *   uvlua.c   luv on the worker's loop
 *   eval.c    a console's eval: its kind and task (evalshow.c shows values)
 *   lane.c    the control lane: a control (or an eval) to its handler, and after
 *   loop.c    one turn of the scheduler, the loop
 *   load.c    loading a script (lua/loader.lua), its watch
 *   reload.c  the hot reload: its kinds (load, reload) and its lane step
 *   worker.c  the thread's life by phase: start, run, stop kinds
 * and the Lua bindings (luamod.c, luawarn.c, mailslot.c), fileguard.c,
 * fswatch.c and status_slot.c. engine.h is what the front ends see.
 */
#ifndef LSVC_ENGINE_PRIVATE_H
#define LSVC_ENGINE_PRIVATE_H

#include <time.h>

#include <uv.h>

#include "engine.h"
#include "task.h"

struct lua_State;
struct lua_Debug;

/* The phases of a worker's life (worker.c). */
typedef enum lsvc__phase {
    LSVC__PHASE_LOAD,
    LSVC__PHASE_START,
    LSVC__PHASE_RUN,
    LSVC__PHASE_STOP,
    LSVC__PHASE_CLOSE, /* STOPPED is near: closing handles, reaping children */
} lsvc__phase;

/* ==== the worker ========================================================
 * Its fields, by the file that owns them: the others call that file's
 * functions (an inline reader here where a function would cost). */

/* What the lane asks of the reload, which registers it (reload.c):
 * step: the lane is free: take up a reload, or go on with one; true when
 * it holds the lane (controls wait). asked: a PARAMCHANGE without a
 * handler of the script's asks for a reload. busy: a reload is under
 * way (it tells the front end its end itself). */
typedef struct lsvc__lane_hooks {
    bool (*step)(lsvc__worker *w);
    void (*asked)(lsvc__worker *w);
    bool (*busy)(lsvc__worker *w);
} lsvc__lane_hooks;

/* lane.c's: the control lane. */
typedef struct lsvc__lane {
    bool deliver;          /* controls are taken from the queue */
    lsvc__task *handler;   /* the control being handled (or reload()), one at a time */
    lsvc_event ev;         /* its control */
    char what[40];         /* its name, for messages after it ended */
    bool step_holds;       /* the registered step holds the lane (a reload winding) */
    bool reload_told;      /* the front end was told a reload began */
    lsvc__lane_hooks hooks; /* registered from above (reload.c) */
} lsvc__lane;

/* sched.c's: the scheduler's turns. */
typedef bool (*lsvc__deadline_fn)(lsvc__worker *w, lsvc__victim victim);
typedef struct lsvc__sched {
    uint64_t turn;   /* the scheduler's turns, counted */
    bool in_loop;    /* uv_run is running (its callbacks) */
    bool stop_seen;  /* the winding tasks were told of the stop */
    void (*on_stop)(lsvc__worker *w);      /* registered: a stop came (reload.c) */
    lsvc__deadline_fn answers[4];          /* registered: asked last first */
    int nanswers;
    void (*after_tasks)(void *ud);         /* registered: a turn ran its tasks (httpconn.c) */
    void *after_ud;
} lsvc__sched;

/* task.c's: every live task, the ready list, the Lua running now. */
typedef struct lsvc__tasks {
    lsvc__task *all;
    lsvc__task *ready_head, *ready_tail;
    unsigned n;       /* live tasks (lsvc_service_set_gauges) */
    unsigned spawned; /* ctx:spawn's counter, for names */
    /* the task being resumed (NULL in a luv callback or between tasks),
     * the lua_State executing now (the interrupt's signal handler hooks
     * it: read asynchronously on this thread), whether a wait may yield
     * from there up to the task, and whether one is yielding */
    lsvc__task *current;
    struct lua_State *volatile running;
    bool chain_ok;
    bool suspending;
    uint64_t resumed_ns; /* when current was resumed (a sliced kind's slice) */
    uint32_t epoch;      /* the version whose code runs now (reload.c sets it) */
    lsvc__task *main;    /* start, then run, then stop (worker.c's kinds) */
    bool paused;         /* PAUSED: kinds that hold are kept back (lane.c says) */
} lsvc__tasks;

struct lsvc__worker {
    /* worker.c's */
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
    int ctx_ref;
    lsvc__phase phase;
    bool failed;      /* start or run raised an error */
    bool forced;      /* interrupted past a deadline */
    bool exit_set;    /* ctx:exit was called */
    uint32_t exit_code;
    lsvc_alloc alloc; /* the state's allocator: memory_limit (alloc.c) */

    /* lstate.c's */
    int script_ref; /* the script's table, of the version in place */
    bool broken;    /* reading the script's table raised: it stops (code 2) */
    bool loading;   /* a version's top level runs (os.exit refuses there) */
    uint32_t handler_timeout_ms;
    bool console_off; /* the script says console = false (load.c sets it) */

    lsvc__tasks tasks;  /* task.c's */
    lsvc__sched sched;  /* sched.c's */
    lsvc__lane lane;    /* lane.c's */
    struct lsvc__uv *uv;         /* uvlua.c's (opaque) */
    struct lsvc__load *ld;       /* load.c's (opaque) */
    struct lsvc__reload *rl;     /* reload.c's (opaque) */
    struct lsvc__fence *fence;   /* fence.c's (opaque) */
    struct lsvc__ptree *pt;      /* ptree.c's (opaque) */
    struct lsvc__spawn *sp;      /* spawn.c's (opaque) */
    bool left;                   /* the pool still works on the state: never freed */
};

/* task.c's fields that other engine files read or swap, where a call
 * would cost (the hook, every callback): only through these. */
/* The service's main task (start, run or stop), or NULL. */
static inline lsvc__task *lsvc__main(lsvc__worker *w) { return w->tasks.main; }
/* The task whose code runs now, or NULL (a callback, the loader). */
static inline lsvc__task *lsvc__current(lsvc__worker *w) { return w->tasks.current; }
static inline unsigned lsvc__task_count(lsvc__worker *w) { return w->tasks.n; }
/* The version whose code runs now (reload.c sets it around a new
 * version's code). */
static inline uint32_t lsvc__epoch(lsvc__worker *w) { return w->tasks.epoch; }
static inline void lsvc__set_epoch(lsvc__worker *w, uint32_t e) { w->tasks.epoch = e; }
/* The Lua thread running now (the interrupt's target), set to L around a
 * call into Lua: the one it replaced returned, to be put back. */
static inline struct lua_State *lsvc__running(lsvc__worker *w) { return w->tasks.running; }
static inline struct lua_State *lsvc__running_swap(lsvc__worker *w, struct lua_State *L)
{
    struct lua_State *prev = w->tasks.running;
    w->tasks.running = L;
    return prev;
}
/* coro.c's resume: whether a yield from the running thread reaches the
 * task (every resume on the way yieldable), swapped the same way; when
 * the task was resumed (its slice's start); a wait taken inside it. */
static inline bool lsvc__chain_ok(lsvc__worker *w) { return w->tasks.chain_ok; }
static inline bool lsvc__chain_swap(lsvc__worker *w, bool ok)
{
    bool prev = w->tasks.chain_ok;
    w->tasks.chain_ok = ok;
    return prev;
}
static inline uint64_t lsvc__resumed_ns(lsvc__worker *w) { return w->tasks.resumed_ns; }
static inline bool lsvc__suspending(lsvc__worker *w) { return w->tasks.suspending; }
static inline void lsvc__set_suspending(lsvc__worker *w) { w->tasks.suspending = true; }

/* ==== what each file provides ============================================ */

/* ---- From lstate.c: the Lua state's helpers ---------------------------- */

lsvc__worker *lsvc__of(struct lua_State *L);
lsvc_service *lsvc__service(struct lua_State *L);
/* The text of the error object at idx, through its __tostring when it has
 * one (protected): pushed. */
const char *lsvc__error_text(struct lua_State *L, int idx);
/* Is the error object at idx os.exit's (the service stops, no failure)? */
bool lsvc__is_exit(struct lua_State *L, int idx);
/* os.exit as the service's exit (lstate.c), installed once. */
void lsvc__open_exit(struct lua_State *L);
/* ctx:exit, os.exit: the service stops with code. */
void lsvc__exit(lsvc__worker *w, uint32_t code);
/* t[field] of the table at the top of w->L's stack, protected: replaces
 * the table with the value and returns 1, or pops it and returns 0 after
 * lsvc__broken. what names the table in the message ("S"). */
int lsvc__get(lsvc__worker *w, const char *what, const char *field);
/* Push handler `field` of the script table and return 1, or return 0. */
int lsvc__push_handler(lsvc__worker *w, const char *field);
/* Reading the script's table raised (the error object on top, popped):
 * logged once, and the service stops with exit code 2. */
void lsvc__broken(lsvc__worker *w, const char *what, const char *field);
/* The deadline's time from now. */
uint64_t lsvc__ms_from_now(uint32_t ms);
/* t[name] = a C closure of f holding t[name]'s old value as upvalue 1: a
 * wrapper of it, which ends with lsvc__call_wrapped (upvalue 1 called with
 * the arguments; all its results). */
void lsvc__wrap(struct lua_State *L, int t, const char *name, int (*f)(struct lua_State *));
int lsvc__call_wrapped(struct lua_State *L);

/* ---- From task.c: tasks and their waits --------------------------------- */

/* Start a task of kind with the function at the top of from's stack and
 * the nargs values below it ([f, args...] are popped), ready to run. */
lsvc__task *lsvc__task_new(lsvc__worker *w, struct lua_State *from, const lsvc__kind *kind,
                           int nargs, const char *what);
void lsvc__task_end(lsvc__task *t); /* t is gone afterwards */
/* *slot = t, and NULL again when t ends (the owner's pointer to it). */
void lsvc__task_own(lsvc__task *t, lsvc__task **slot);
/* Make t the main task (start, run, stop). */
void lsvc__task_main(lsvc__task *t);
/* The first live task whose kind the interrupt names victim, or NULL. */
lsvc__task *lsvc__task_of_victim(lsvc__worker *w, lsvc__victim victim);
/* PAUSED began or ended: at its end the tasks it held go on. */
void lsvc__task_set_paused(lsvc__worker *w, bool paused);
void lsvc__task_end_all(lsvc__worker *w);
/* Resume t once (as its kind times it). */
lsvc__result lsvc__task_resume(lsvc__task *t);
/* Make a waiting task runnable: its wait returns as `woke` says. */
void lsvc__task_wake(lsvc__task *t, lsvc__woke woke);
/* The next task made ready before this turn, or NULL. */
lsvc__task *lsvc__task_pop_ready(lsvc__worker *w);
bool lsvc__task_any_ready(lsvc__worker *w);
/* Put t on the ready list (resumed at the next turn). */
void lsvc__task_ready(lsvc__task *t);
/* Does t's wait end early now (a stop, or its owner asked it to wind)? */
bool lsvc__task_must_wind(const lsvc__task *t);
/* Ask t to wind down (its waits end), as a stop does. */
void lsvc__task_wind(lsvc__task *t);
/* A stop came: end the waits of the tasks that wind down. */
void lsvc__task_wind_all(lsvc__worker *w);
/* Waits, for the bindings (luamod.c, waitq.c, mailslot.c): may L wait
 * here (a task of a kind that waits, not a luv callback or a C call in
 * between)? Must a wait on L end now (a stop, a reload winding run down,
 * the watchdog's interrupt)? */
bool lsvc__can_wait(struct lua_State *L);
bool lsvc__must_return(struct lua_State *L);
/* Raise unless lsvc__can_wait (what: "ctx:sleep"). */
void lsvc__check_can_wait(struct lua_State *L, const char *what);
/* Suspend L's task until woken (ms < 0: no timer), then continue with k. */
int lsvc__suspend(struct lua_State *L, lsvc__wait wait, double ms, lsvc__woke woke,
                  intptr_t kctx, int (*k)(struct lua_State *, int, intptr_t));
/* How the current task's last wait ended. */
lsvc__woke lsvc__woke_of(struct lua_State *L);
/* Suspend L's task until the next turn of the scheduler, then k. */
int lsvc__yield_turn(struct lua_State *L, intptr_t kctx,
                     int (*k)(struct lua_State *, int, intptr_t));
/* Suspend L's task until fd is readable, or ms pass (ms < 0: no limit),
 * or the task must wind down; then continue with k. */
int lsvc__wait_fd(struct lua_State *L, int fd, double ms, intptr_t kctx,
                  int (*k)(struct lua_State *, int, intptr_t));
int lsvc__ctx_sleep(struct lua_State *L);
int lsvc__ctx_spawn(struct lua_State *L);

/* End every task of a refused version (its epoch). */
void lsvc__task_end_epoch(lsvc__worker *w, uint32_t epoch);

/* ---- From fence_proc.c: the rest of the process ---------------------------- */

/* debug's upvalue functions, os.setlocale and package.loadlib, fenced. */
void lsvc__fence_proc_open(struct lua_State *L);
/* luv's module (at idx): setuid, setgid, os_setenv, os_unsetenv,
 * set_process_title, os_setpriority of the host, fenced. */
void lsvc__fence_proc_luv(struct lua_State *L, int idx);

/* ---- From fence.c: what a service may reach of the process --------------- */

#define LSVC__POOL_PER_SERVICE 4u /* a service's requests in libuv's pool at once */
/* The preloads of lfs and cjson, fenced; the pool's queue. */
void lsvc__fence_open(lsvc__worker *w);
/* luv's module (at idx) fenced: signals, kill, threads, chdir, the pool. */
void lsvc__fence_luv(struct lua_State *L, int idx);
/* A refused version's pool requests never reach Lua. */
void lsvc__fence_kill_epoch(lsvc__worker *w, uint32_t epoch);
/* At the stop: the service's pool requests end within ms? false: not. */
bool lsvc__fence_drain(lsvc__worker *w, uint32_t ms);
void lsvc__fence_free(lsvc__worker *w);

/* ---- From coro.c: the hook and the coroutine library --------------------- */

/* The interrupt hook bound to this thread, the coroutine library's resume
 * and wrap that keep track of `running`, xpcall, debug.sethook. */
void lsvc__coro_open(lsvc__worker *w);
/* co runs a sliced kind: the hook looks every so many instructions
 * whether its slice is over (or a control waits) and then yields co to
 * the loop where a yield gets there (not inside a C call: it looks again
 * later), and never inside the runtime's own Lua (the loader's). */
void lsvc__coro_slice(struct lua_State *co);
/* co's Lua set a hook of its own (debug.sethook): the state takes it. */
void lsvc__coro_adopt_hook(lsvc__worker *w, struct lua_State *co);
/* After a coroutine returned into L with the interrupt due: hook L. */
void lsvc__coro_rehook(lsvc__worker *w, struct lua_State *L);

/* ---- From waitq.c -------------------------------------------------------- */

int lsvc__ctx_queue(struct lua_State *L);
int lsvc__ctx_await(struct lua_State *L);

/* ---- From sched.c: running a task, answering an interrupt ---------------- */

/* Resume t once and settle what its end means (its kind's done). */
void lsvc__run_task(lsvc__worker *w, lsvc__task *t);
/* A deadline passed and the interrupt was raised: the owner of the
 * deadline's kind answers (registered), else the default answer. */
void lsvc__interrupted(lsvc__worker *w, lsvc__victim victim);
void lsvc__ack_interrupt(lsvc__worker *w, uint64_t deadline_ns, lsvc_deadline kind);
/* Registered from above: an answer to an interrupt (the deadline's owner
 * says true when it answered; the last registered is asked first). */
void lsvc__sched_on_interrupt(lsvc__worker *w, lsvc__deadline_fn fn);

/* ---- From loop.c: the turn of the scheduler (above lane.c) --------------- */

/* Turn the loop until done(w); deliver: controls are taken meanwhile. */
void lsvc__schedule(lsvc__worker *w, bool deliver, bool (*done)(lsvc__worker *));
/* The loop's wake (a control, the watch, the watchdog): controls first. */
void lsvc__sched_woken(lsvc__worker *w);
/* Between two luv callbacks: a control waits for one callback at most
 * (registered with uvlua.c by loop.c: luv's callbacks are below). */
void lsvc__sched_between_callbacks(lsvc__worker *w);
/* fn(ud) at the end of every turn, after its tasks ran and before the
 * loop polls (one registration: httpconn.c's writes held for the turn). */
void lsvc__sched_after_tasks(lsvc__worker *w, void (*fn)(void *ud), void *ud);

/* ---- From ptree.c: the service's process tree ---------------------------- */

/* The worker's thread into the service's tree (its cgroup); io.popen and
 * os.execute the runtime's; the children gauge's timer. */
void lsvc__ptree_open(lsvc__worker *w);
/* A child the runtime starts itself (spawn.c): _spawning before its
 * spawn, _spawned after it (pid, or -1 when it failed): it is registered
 * (the reaper leaves it to its starter) until _unwait. */
void lsvc__ptree_spawning(lsvc__worker *w);
void lsvc__ptree_spawned(lsvc__worker *w, int pid);
void lsvc__ptree_unwait(lsvc__worker *w, int pid);
/* "LUASVC_SERVICE=<name>", every child's; whether kv is such a tag. */
char *lsvc__ptree_tag(lsvc__worker *w);
bool lsvc__ptree_is_tag(const char *kv);
/* luv's module (at idx): uv.spawn's children detached and registered. */
void lsvc__ptree_luv(struct lua_State *L, int idx);
unsigned lsvc__ptree_children(lsvc__worker *w); /* the gauge */
/* sig (0: none) to every live process of the tree; how many there are. */
unsigned lsvc__ptree_signal(lsvc__worker *w, int sig);
void lsvc__ptree_kill(lsvc__worker *w); /* SIGKILL to all of it (frozen first) */
/* pid (< 0: the group -pid) is a sibling service's. */
bool lsvc__ptree_foreign(lsvc__worker *w, long pid);
/* The stop ended the tree: the thread leaves it, the timer closes. */
void lsvc__ptree_ended(lsvc__worker *w);
void lsvc__ptree_free(lsvc__worker *w);

/* ---- From spawn.c: the children the runtime starts itself ---------------- */

/* io.popen and os.execute, the runtime's. */
void lsvc__spawn_open(lsvc__worker *w);
/* lua/exec.lua's core: kill_tree(pid, signal name), and spawn(argv, cwd,
 * env, stdin) and reap(pid) where posix_spawn and pidfds are. [-0, +1] */
void lsvc__spawn_push_core(struct lua_State *L);
/* After lsvc__ptree_ended: the dead children reaped. */
void lsvc__spawn_ended(lsvc__worker *w);
void lsvc__spawn_free(lsvc__worker *w); /* after the loop closed */

/* ---- From uvlua.c: luv on the worker's loop ------------------------------ */

/* package.preload.luv: luv on this worker's loop. */
void lsvc__uvlua_open(lsvc__worker *w, void (*between)(lsvc__worker *w));
/* Protected call of the function under nargs values on L's stack, with a
 * traceback, as every luv callback: an error is logged as in `what`. */
int lsvc__uvlua_pcall(lsvc__worker *w, int nargs, int nresults, const char *what);
/* STOPPED is near: close every handle, SIGTERM then (after grace_ms)
 * SIGKILL children, run the loop until every close callback fired. */
void lsvc__uvlua_close_all(lsvc__worker *w, uint32_t grace_ms);
/* A mark of the script's handles now (pushed); replace the mark at idx
 * with the list of the handles opened since; close each handle of such a
 * list (a refused version's): none of its callbacks runs again; a child
 * gets SIGTERM, SIGKILL after grace_ms. Nothing waits. */
void lsvc__uvlua_mark(lsvc__worker *w);
void lsvc__uvlua_opened_since(lsvc__worker *w, int mark);
void lsvc__uvlua_close_refused(lsvc__worker *w, int list, uint32_t grace_ms);
void lsvc__uvlua_free(lsvc__worker *w);
/* After the state closed: close what finalizers opened during the close
 * (luv's memory freed without Lua); returns how many. */
unsigned lsvc__uvlua_close_orphans(lsvc__worker *w);

/* ---- From lane.c: the control lane --------------------------------------- */

/* Deliver what the lane can take now: its registered step, else the next
 * control, while no task holds the lane. */
void lsvc__lane_deliver(lsvc__worker *w);
bool lsvc__lane_busy(lsvc__worker *w); /* a task holds it */
lsvc__task *lsvc__lane_handler(lsvc__worker *w); /* the task holding it, or NULL */
/* Controls are taken from the queue (or not: start, stop, close). */
void lsvc__lane_set_delivery(lsvc__worker *w, bool deliver);
bool lsvc__lane_delivering(lsvc__worker *w);
/* No handler, and no control it could take now. */
bool lsvc__lane_idle(lsvc__worker *w);
/* Past a forced stop: the queued controls are dropped (logged). */
void lsvc__lane_drop_queued(lsvc__worker *w);
/* Hold the lane with t (a handler of the owner's: reload()). */
void lsvc__lane_hold(lsvc__worker *w, lsvc__task *t, const char *what);
/* Controls waiting while the lane may take them. */
bool lsvc__lane_waiting(lsvc__worker *w);
/* What follows a control's handler: the state it leads to, or back. */
void lsvc__control_done(lsvc__worker *w, const lsvc_event *ev, bool ok);
/* Tell the front end a reload began or ended; begin/end pair up. */
void lsvc__tell_reloading(lsvc__worker *w, bool begin);
/* The deadline for a state the service is in again (after a reload). */
void lsvc__restore_deadline(lsvc__worker *w);
/* The lane's handler ended by an interrupt (lsvc__interrupted). */
void lsvc__lane_interrupted(lsvc__worker *w, const char *why, uint32_t ms);
/* Registered from above: what the lane asks of the reload. */
void lsvc__lane_register(lsvc__worker *w, const lsvc__lane_hooks *hooks);
void lsvc__lane_open(lsvc__worker *w); /* the lane's own deadline answers */

/* ---- From load.c: loading a script, the watch ----------------------------- */

/* The chunk name of lua/loader.lua (a load never pauses in its code). */
#define LSVC__LOADER_SOURCE "=[luasvc loader]"
/* a look's outcome; WRITING: a writer is at work (fswatch.c), hold */
enum { LSVC__WATCH_NONE, LSVC__WATCH_SETTLING, LSVC__WATCH_CHANGED, LSVC__WATCH_WRITING };
int lsvc__load_setup(lsvc__worker *w);
/* Load and validate the script (the first version); push its info table
 * and return 1, or return 0 with the message in err. */
int lsvc__load_first(lsvc__worker *w, char *err, size_t errlen);
/* Push loader.<fn>. */
void lsvc__loader_fn(lsvc__worker *w, const char *fn);
/* Call loader.<fn>() (logged if it raised). */
void lsvc__loader_call(lsvc__worker *w, const char *fn);
void lsvc__load_apply(lsvc__worker *w, int info_index, bool first);
/* Is a look at the watched files due, and what did it see? Arms the
 * watch's timer for the next look. */
int lsvc__load_watch_step(lsvc__worker *w);
/* The first version runs: watch its files from now on. */
void lsvc__load_begin_watch(lsvc__worker *w);
void lsvc__load_close(lsvc__worker *w); /* its timer: at STOPPED */
void lsvc__load_free(lsvc__worker *w);

/* ---- From reload.c: the hot reload --------------------------------------- */

void lsvc__reload_open(lsvc__worker *w, void (*start_run)(lsvc__worker *w));
void lsvc__reload_free(lsvc__worker *w);

/* ---- From worker.c ---------------------------------------------------------- */

void lsvc__start_run(lsvc__worker *w);

/* ---- From fileguard.c: what the loader checks ----------------------------- */

/* What makes a file unsafe to load (others could change it): "" if safe. */
void lsvc_file_problem(const char *what, const char *path, char *buf, size_t len);
/* Push lua/loader.lua's checks: a table {secure = f(path [, what]) -> true |
 * nil, message; name_valid = f(name) -> true | nil, rule; default_path,
 * default_cpath: the search paths Lua was built with}. */
void lsvc__fileguard_push(struct lua_State *L, bool allow_insecure);

/* ---- From fswatch.c: change notification for the watch (any thread) ------- */

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

/* ---- From evalshow.c: a value as a console shows it ---------------------- */

#define LSVC__TEXT_MAX (64u << 10) /* a value's text, at most */
/* A growing text (malloc'd), bounded by max (0: LSVC__TEXT_MAX); cut: it
 * was. */
typedef struct lsvc__text {
    char *p;
    size_t len, cap, max;
    bool cut;
} lsvc__text;
void lsvc__text_add(lsvc__text *t, const char *s, size_t n);
void lsvc__text_printf(lsvc__text *t, const char *fmt, ...) LSVC_PRINTF(2, 3);
void lsvc__text_free(lsvc__text *t);
/* The value at idx, shown (appended to t): no metamethod runs. */
void lsvc__show(struct lua_State *L, int idx, lsvc__text *t);

/* ---- From eval.c: a console's eval ---------------------------------------- */

/* A console's eval, delivered by the lane (c: the event's reference, taken
 * over): its task of the eval kind, which the lane holds, or NULL when it
 * was answered at once (a compile error, console = false, a stop). */
lsvc__task *lsvc__eval_begin(lsvc__worker *w, lsvc_console *c);
/* An eval the lane drops (a forced stop): answered with why. */
void lsvc__eval_refuse(lsvc__worker *w, lsvc_console *c, const char *why);

/* ---- From luamod.c: the luasvc module and ctx ----------------------------- */

int lsvc__open_luasvc(struct lua_State *L);
/* A new table of the accepts names and their bits (luasvc.accepts). */
void lsvc__push_accepts(struct lua_State *L);
/* Build ctx for svc and leave it on the stack. */
void lsvc__push_ctx(struct lua_State *L, lsvc_service *svc);

/* ---- From http.c: luasvc.http's message parser -------------------------- */

typedef struct lsvc__httpp lsvc__httpp;
typedef enum lsvc__httpp_state {
    LSVC__HTTPP_IDLE, /* between messages, nothing buffered */
    LSVC__HTTPP_HEAD, /* inside a head (or its first bytes buffered) */
    LSVC__HTTPP_BODY, /* inside a body */
} lsvc__httpp_state;

/* The core table lua/http.lua is given, without httpconn.c's part. */
int lsvc__http_core(struct lua_State *L);
/* The open parser at index i (raises when it is not one, or closed). */
lsvc__httpp *lsvc__httpp_check(struct lua_State *L, int i);
/* p:feed, p:next, p:state, p:continue, p:buffered, p:close from C. */
bool lsvc__httpp_feed(lsvc__httpp *h, const char *s, size_t n); /* false: no memory */
int lsvc__httpp_next(struct lua_State *L, lsvc__httpp *h);
lsvc__httpp_state lsvc__httpp_where(const lsvc__httpp *h);
bool lsvc__httpp_continue(lsvc__httpp *h);
size_t lsvc__httpp_buffered(const lsvc__httpp *h);
void lsvc__httpp_free(lsvc__httpp *h);

/* ---- From httpanswer.c: the text of luasvc.http's answers ---------------- */

/* An answer's text being built, and the HTTP date it last wrote. */
typedef struct lsvc__httpout {
    char *p;
    size_t len, cap;
    time_t date_t; /* (time_t)-1 at first */
    char date[64];
} lsvc__httpout;

/* c:answer's arguments (at 2..7) to its text in o; b gets what to write.
 * Returns how many of b to write, or -1 with nil, why pushed. */
int lsvc__http_answer(struct lua_State *L, lsvc__httpout *o, uv_buf_t b[2]);
void lsvc__http_date(time_t t, char out[64]);
void lsvc__httpout_free(lsvc__httpout *o);

/* ---- From httpconn.c: luasvc.http's server connections ------------------- */

/* package.preload["luasvc.http"] */
int lsvc__open_http(struct lua_State *L);

/* ---- From ctxstats.c: ctx:stats() for luamod.c ----------------------------- */

int lsvc__ctx_stats(struct lua_State *L);

/* ---- From luawarn.c: Lua's warn() to the log ------------------------------ */

/* A lua_WarnFunction; ud is the lsvc_service. */
void lsvc__lua_warn(void *ud, const char *msg, int tocont);

/* ---- From mailslot.c: luasvc.mailslot ------------------------------------- */

void lsvc__open_mailslot(struct lua_State *L); /* pushes the luasvc.mailslot table */

/* ---- From status_slot.c: a service's status_slot (any thread) ------------- */

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

#endif
