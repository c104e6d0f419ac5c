/*
 * worker.c - the per-service worker thread, by phase. It alone owns the
 * service's lua_State and its libuv loop, and its scheduler is that loop
 * (sched.c): the thread waits nowhere else (but at the host's start
 * barrier, before the loop turns). It loads and validates the script
 * (load.c), runs start, then run as a task, with controls delivered
 * meanwhile (lane.c) and hot reloads (reload.c), and runs stop once run
 * has returned; then it closes every handle the script left open, ends its
 * children, and reports STOPPED. start, run and stop are its kinds.
 *
 * What wakes the loop: its `wake` (a control was queued, the fs watch's
 * kick, the watchdog's interrupt, the systemd notifier asking for a
 * heartbeat), a task's timer (ctx:sleep, a queue's timeout), the watch's
 * timer, and the script's own luv handles. Deadlines are the watchdog's
 * (watchdog.c); the interrupt hook is coro.c's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <unistd.h>
#endif

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "private.h"

#define GRACE_MIN_MS 100u  /* children's time between SIGTERM and SIGKILL ... */
#define GRACE_MAX_MS 2000u /* ... within what is left of stop_timeout ... */
#define KILL_ROOM_MS 300u  /* ... less this (or a quarter of it), for the SIGKILL
                            * and the reaping */

/* ---- the kinds of the main task: start, run, stop ---------------------------- */

/* start or run raised: the service stops with an error (stop still runs) */
static bool main_done(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)interrupted;
    (void)ud;
    if (r == LSVC__TASK_FAILED || r == LSVC__TASK_OVERRAN)
        w->failed = true;
    return false;
}

static const lsvc__kind start_kind = {
    .name = "start",
    .can_wait = true,
    .winds_down = true,
    .victim = LSVC__VICTIM_MAIN,
    .done = main_done,
};

/* run: its waits hold while PAUSED, and end at a stop or when a reload
 * asks it to return */
static const lsvc__kind run_kind = {
    .name = "run",
    .pause_holds = true,
    .can_wait = true,
    .winds_down = true,
    .victim = LSVC__VICTIM_MAIN,
    .done = main_done,
};

/* stop: may wait, within stop_timeout */
static const lsvc__kind stop_kind = {
    .name = "stop",
    .can_wait = true,
    .winds_down = false,
    .victim = LSVC__VICTIM_MAIN,
    .done = main_done,
};

void lsvc__start_run(lsvc__worker *w)
{
    if (lsvc__push_handler(w, "run")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        lsvc__task_main(lsvc__task_new(w, w->L, &run_kind, 1, "run"));
    }
}

static bool main_ended(lsvc__worker *w) { return !lsvc__main(w); }

static bool run_ended(lsvc__worker *w) { return !lsvc__main(w) && lsvc__lane_idle(w); }

/* ---- the loop's wake ---------------------------------------------------------- */

/* The loop's wake (the queue's waker, any thread). On Linux an eventfd
 * under a uv_poll_t: with libuv 1.44 (Debian 12's) a uv_async_send has
 * the woken loop spin, then yield, until the sender's write() returns,
 * which on a VM costs about 30 us on top of the wake itself (the poll's
 * callback runs as soon as the thread does). Elsewhere a uv_async_t. */
static lsvc__worker *of_wake(void *h)
{
    return (lsvc__worker *)((char *)h - offsetof(lsvc__worker, wake));
}

#ifdef __linux__
static void on_wake_fd(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    lsvc__worker *w = of_wake(h);
    uint64_t n;
    while (read(w->wake.fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    lsvc__sched_woken(w);
}

static int wake_init(lsvc__worker *w)
{
    w->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake.fd < 0)
        return -1;
    if (uv_poll_init(&w->loop, &w->wake.h, w->wake.fd) != 0) {
        close(w->wake.fd);
        return -1;
    }
    w->wake.h.data = NULL; /* the runtime's own handles: data NULL (uvlua.c) */
    uv_poll_start(&w->wake.h, UV_READABLE, on_wake_fd);
    return 0;
}

static void wake_loop(void *ud)
{
    lsvc__worker *w = ud;
    uint64_t one = 1; /* never EAGAIN: the loop reads the count back to 0 */
    while (write(w->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void close_wake_fd(uv_handle_t *h) { close(of_wake(h)->wake.fd); }

static void wake_close(lsvc__worker *w) { uv_close((uv_handle_t *)&w->wake.h, close_wake_fd); }
#else
static void on_wake_async(uv_async_t *a) { lsvc__sched_woken(of_wake(a)); }

static int wake_init(lsvc__worker *w)
{
    if (uv_async_init(&w->loop, &w->wake, on_wake_async) != 0)
        return -1;
    w->wake.data = NULL; /* the runtime's own handles: data NULL (uvlua.c) */
    return 0;
}

static void wake_loop(void *ud)
{
    lsvc__worker *w = ud;
    uv_async_send(&w->wake);
}

static void wake_close(lsvc__worker *w) { uv_close((uv_handle_t *)&w->wake, NULL); }
#endif

/* The state's allocator: memory_limit holds while the script's Lua runs
 * (under a protected call: a refusal is a Lua error there); the runtime's
 * own calls between them are never refused for it. */
static void *worker_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lsvc__worker *w = ud;
    size_t limit = w->alloc.limit;
    if (lsvc__running(w) || !limit)
        return lsvc_lua_alloc(&w->alloc, ptr, osize, nsize);
    w->alloc.limit = 0;
    void *p = lsvc_lua_alloc(&w->alloc, ptr, osize, nsize);
    w->alloc.limit = limit;
    return p;
}

/* An error outside any protected call (a defect of the runtime's): the
 * service is reported STOPPED and its thread ends here, so the process
 * and the other services go on. */
static int on_panic(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "internal: unprotected error in the Lua state (%s); the service is abandoned", msg);
    lsvc_service_abandon(w->svc, (lsvc_exit){LSVC_ERROR_PROCESS_ABORTED, 0});
    pthread_exit(NULL);
    return 0;
}

/* The Lua state and the loop; START_PENDING. false: out of memory (or fds). */
static bool worker_init(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    w->alloc.reserve = LSVC_ALLOC_RESERVE;
    lua_State *L = lua_newstate(worker_alloc, w);
    if (L)
        lua_atpanic(L, on_panic);
    bool loop = uv_loop_init(&w->loop) == 0;
    if (!L || !loop || wake_init(w) != 0) {
        if (L)
            lua_close(L);
        if (loop)
            uv_loop_close(&w->loop);
        lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "cannot create a Lua state or loop: out of memory (or descriptors)");
        return false;
    }
    w->L = L;
    w->loop.data = w;
    /* The runtime's own setup (the libraries, the loader, the contract)
     * leaves little garbage: no collection until the script's code runs
     * (phase_load), which saves a start a few incremental steps. */
    lua_gc(L, LUA_GCSTOP);
    *(lsvc__worker **)lua_getextraspace(L) = w; /* copied into every coroutine */
    lsvc_queue_set_waker(lsvc_service_queue(svc), wake_loop, w);
    luaL_openlibs(L);
    lsvc__open_exit(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, lsvc__open_luasvc);
    lua_setfield(L, -2, "luasvc");
    lua_pushcfunction(L, lsvc__open_http); /* http.c: luasvc.http */
    lua_setfield(L, -2, "luasvc.http");
    lua_setwarnf(L, lsvc__lua_warn, svc); /* luawarn.c: warn() to the log */
    lua_pop(L, 1);
    lsvc__fence_open(w); /* lfs and cjson, fenced (fence.c) */
    lsvc__ptree_open(w); /* this thread into the tree (ptree.c) */
    lsvc__spawn_open(w); /* io.popen, os.execute (spawn.c) */
    lsvc__uvlua_open(w, lsvc__sched_between_callbacks); /* loop.c's, registered */
    lsvc__coro_open(w); /* binds the interrupt to this thread */
    lsvc__lane_open(w);
    lsvc__reload_open(w, lsvc__start_run);
    lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
    return w->rl != NULL;
}

/* ---- the thread, by phase -------------------------------------------------------- */

/* Load the script under START_PENDING, then wait at the host's barrier
 * until every script has loaded. true: start. */
static bool phase_load(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    char err[2048];
    lsvc_service_set_deadline(svc, lsvc__ms_from_now(LSVC_START_WAIT_HINT_MS), LSVC_DEADLINE_START);
    bool ok = lsvc__load_setup(w) == 0;
    lua_gc(w->L, LUA_GCRESTART); /* the script's code runs from here */
    if (ok && !lsvc__load_first(w, err, sizeof err)) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s", err);
        ok = false;
    }
    if (ok) {
        lsvc__load_apply(w, -1, true);
        lua_pop(w->L, 1);
        /* Loaded: at the barrier it waits for the others' loads, each under
         * its own deadline, and has none of its own (start sets one): a
         * sibling's slow top level must not have it given up as stuck.
         * An interrupt the deadline raised as the top level ended is
         * answered here. */
        lsvc_service_clear_deadline(svc, LSVC_DEADLINE_START);
        if (lsvc_service_interrupted(svc))
            lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    }
    lsvc_service_loaded(svc, ok);
    bool go = ok && lsvc_service_wait_release(svc);
    if (!ok) {
        w->failed = true;
        w->exit_set = true;
        w->exit_code = LSVC_EXIT_LOAD_ERROR;
        return false;
    }
    if (!go)
        lsvc_log(LSVC_LOG_INFO, lsvc_service_name(svc), "%s",
                 lsvc_host_any_load_failed(lsvc_service_host(svc))
                     ? "not started: another script failed to load"
                     : "not started: the host gave up before starting its services (see above)");
    return go;
}

/* START_PENDING: start(ctx, args). true: it returned. */
static bool phase_start(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    lua_State *L = w->L;
    w->phase = LSVC__PHASE_START;
    lsvc__push_ctx(L, svc);
    w->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lsvc_service_set_deadline(svc, lsvc__ms_from_now(LSVC_START_WAIT_HINT_MS), LSVC_DEADLINE_START);
    if (lsvc__push_handler(w, "start")) {
        const lsvc_service_opts *o = lsvc_service_options(svc);
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
        lua_createtable(L, o->argc, 0);
        for (int i = 0; i < o->argc; i++) {
            lua_pushstring(L, o->argv[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lsvc__task_main(lsvc__task_new(w, L, &start_kind, 2, "start"));
        lsvc__schedule(w, false, main_ended);
    }
    return !w->failed && !w->forced;
}

/* RUNNING: run(ctx), with controls delivered meanwhile; then the controls
 * already queued, as the service winds down. */
static void phase_run(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    w->phase = LSVC__PHASE_RUN;
    if (lsvc_service_stopping(svc))
        return;
    lsvc_service_set_state(svc, LSVC_RUNNING, 0);
    lsvc_service_set_deadline(svc, 0, LSVC_DEADLINE_NONE);
    lsvc__start_run(w);
    lsvc__load_begin_watch(w); /* a change made while starting is seen now */
    lsvc__schedule(w, true, run_ended);
    lsvc_service_request_stop(svc);
    lsvc__schedule(w, true, run_ended);
}

/* STOP_PENDING: stop(ctx), or shutdown(ctx) for a system shutdown. */
static void phase_stop(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    w->phase = LSVC__PHASE_STOP;
    lsvc_service_request_stop(svc);
    w->alloc.stopping = true;
    lsvc_deadline_info d;
    lsvc_service_get_deadline(svc, &d);
    bool shutdown = d.stop_code == LSVC_CTRL_SHUTDOWN;
    if ((shutdown && lsvc__push_handler(w, "shutdown")) || lsvc__push_handler(w, "stop")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        lsvc__task_main(lsvc__task_new(w, w->L, &stop_kind, 1, "stop"));
        bool was_failed = w->failed;
        w->failed = false;
        lsvc__schedule(w, false, main_ended);
        if (w->failed && !was_failed)
            lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                     "stop failed; the service stops with an error");
        w->failed = w->failed || was_failed;
    }
}

/* The children's grace: what is left of stop_timeout, within bounds. */
static uint32_t grace_ms(lsvc__worker *w)
{
    lsvc_deadline_info d;
    lsvc_service_get_deadline(w->svc, &d);
    uint64_t due = d.kind == LSVC_DEADLINE_STOP ? d.at_ns : 0;
    uint64_t now = lsvc_now_ns();
    uint64_t left = due > now ? (due - now) / 1000000u : 0;
    uint64_t room = left / 4 > KILL_ROOM_MS ? left / 4 : KILL_ROOM_MS;
    left = left > room ? left - room : 0;
    return left < GRACE_MIN_MS ? GRACE_MIN_MS : left > GRACE_MAX_MS ? GRACE_MAX_MS : (uint32_t)left;
}

/* STOPPED is near: every task ends, every handle the script opened is
 * closed (a connected client sees EOF now), its children are ended and
 * reaped, and the loop runs until every close callback has fired. */
static void phase_close(lsvc__worker *w)
{
    w->phase = LSVC__PHASE_CLOSE;
    lsvc__lane_set_delivery(w, false);
    lsvc__task_end_all(w);
    uint32_t grace = grace_ms(w);
    lsvc_service_set_deadline(w->svc, lsvc__ms_from_now(grace + 2000u), LSVC_DEADLINE_FINAL);
    lsvc__uvlua_close_all(w, grace);
    w->left = !lsvc__fence_drain(w, grace); /* the pool may still work on a request */
    lsvc_queue_set_waker(lsvc_service_queue(w->svc), NULL, NULL);
    wake_close(w);
    lsvc__load_close(w);
    uv_run(&w->loop, w->left ? UV_RUN_NOWAIT : UV_RUN_DEFAULT);
    if (lsvc_service_interrupted(w->svc))
        lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
}

static lsvc_exit final_exit(const lsvc__worker *w)
{
    if (w->forced)
        return (lsvc_exit){LSVC_ERROR_TIMEOUT, 0};
    if (w->failed)
        return (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR,
                           w->exit_set && w->exit_code ? w->exit_code : LSVC_EXIT_SCRIPT_ERROR};
    if (w->exit_set && w->exit_code)
        return (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, w->exit_code};
    return (lsvc_exit){LSVC_NO_ERROR, 0};
}

/* Free the state and the loop, unless the watchdog gave this thread up
 * (another thread may then still read the service). */
static bool worker_free(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    if (lsvc_service_worker_ending(svc) || w->left)
        return false; /* the state, the loop and w stay theirs */
    lua_close(w->L);
    lsvc__load_free(w);
    lsvc__reload_free(w);
    lsvc__fence_free(w);
    lsvc__ptree_free(w);
    unsigned orphans = lsvc__uvlua_close_orphans(w);
    if (orphans)
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc),
                 "%u handle(s) opened while the Lua state closed (by a __gc finalizer): closed",
                 orphans);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0)
        lsvc_log(LSVC_LOG_DEBUG, lsvc_service_name(svc), "the loop had handles left at exit");
    lsvc__spawn_free(w); /* no handle polls a pidfd of its now */
    lsvc__uvlua_free(w);
    return true;
}

static void *worker_main(void *arg)
{
    lsvc_service *svc = arg;
    /* on the heap: a loop the pool still works on outlives this thread */
    lsvc__worker *w = calloc(1, sizeof *w);
    if (w) {
        w->svc = svc;
        w->script_ref = w->ctx_ref = LUA_NOREF;
    }
    if (!w || !worker_init(w)) {
        free(w);
        lsvc_service_loaded(svc, false);
        lsvc_service_set_stopped(
            svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, LSVC_EXIT_LOAD_ERROR});
        lsvc_service_worker_ended(svc);
        return NULL;
    }
    if (phase_load(w) && phase_start(w) && !lsvc_service_abandoned(svc)) {
        phase_run(w);
        if (!lsvc_service_abandoned(svc)) /* given up: no stop handler either */
            phase_stop(w);
    }
    phase_close(w);
    lsvc_service_set_stopped(svc, final_exit(w));
    if (worker_free(w))
        free(w);
    lsvc_service_worker_ended(svc);
    return NULL;
}

int lsvc_worker_start(lsvc_service *svc)
{
    lsvc_fence_prepare(lsvc_host_count(lsvc_service_host(svc))); /* before the first */
    return lsvc_service_spawn(svc, worker_main, svc, 1u << 20);
}
