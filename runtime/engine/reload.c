/*
 * reload.c - the hot reload: a change of the script (or a PARAMCHANGE
 * without a handler) is taken up while the lane is free; the new version
 * loads beside the running one, its reload(ctx, previous) runs holding the
 * lane, then the running version's run winds down and the new run starts.
 *   IDLE -> LOADING -> LOADED -> HOOK -> WINDING -> IDLE
 * It owns its state (struct lsvc__reload) and its two kinds, and registers
 * with the lane (its step), the scheduler (what a stop and an interrupt
 * mean to it); nothing below asks whether a reload is under way.
 *
 * The load: the new version's top level is a task of the sliced load kind.
 * Every LSVC__SLICE_NS of its running it yields to the loop (where a yield
 * gets there), the loader puts its changes aside (loader.pause), and the
 * running version's run, tasks, callbacks and controls go on; at its next
 * resume the loader puts them back (unpause). Its handler_timeout is a
 * budget of its own running time (task.c's TIMED_BUDGET): a PAUSE or a
 * wait of the running version's does not count, and no other deadline
 * replaces it. A refused version leaves no trace: the loader puts back
 * what its top level changed (globals, package.loaded, the libraries'
 * tables), the state's hook is put back, and the luv handles its top level
 * and its reload() opened are closed (its children ended).
 * Worker thread only.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

typedef enum {
    RELOAD_IDLE,
    RELOAD_LOADING, /* the new version's top level runs, slice by slice */
    RELOAD_LOADED,  /* loaded and checked: its reload() waits for the lane */
    RELOAD_HOOK,    /* the new version's reload(ctx, previous) runs */
    RELOAD_WINDING, /* the old run is asked to return: ctx:reloading() */
} reload_phase;

struct lsvc__reload {
    reload_phase phase;
    bool pending;      /* a change or a PARAMCHANGE asked for one */
    int new_info_ref;  /* the validated new version, until it takes over */
    int handles_ref;   /* the handles the new version's code opened */
    int mark_ref;      /* the script's handles before its current resume */
    lsvc__task *load;  /* LOADING: its task */
    bool paused;       /* LOADING: its changes are aside (loader.pause) */
    uint32_t load_ms;  /* its budget, for the message */
    char err[2048];    /* the load's outcome, from its last resume */
    bool ok;
    void (*start_run)(lsvc__worker *w); /* registered: the new run (worker.c) */
    uint32_t epoch;    /* the new version's (task.h): its tasks and requests */
    uint32_t epochs;   /* versions tried so far */
    uint32_t outer;    /* the epoch around a resume of the new version's code */
    void (*hook)(lua_State *, lua_Debug *); /* the state's, put back on refusal */
    int hook_mask, hook_count;
};

static uint64_t reload_deadline(lsvc__worker *w)
{
    return lsvc__ms_from_now(lsvc_service_stop_timeout(w->svc));
}

/* A refused version's children: SIGTERM, then SIGKILL this much later. */
static uint32_t refused_grace_ms(lsvc__worker *w)
{
    uint32_t ms = lsvc_service_stop_timeout(w->svc);
    return ms < 100u ? 100u : ms > 2000u ? 2000u : ms;
}

/* ---- the new version's handles ------------------------------------------- */

static void mark_handles(lsvc__worker *w)
{
    lsvc__uvlua_mark(w);
    w->rl->mark_ref = luaL_ref(w->L, LUA_REGISTRYINDEX);
}

/* The handles opened since the mark join the new version's list. */
static void take_handles(lsvc__worker *w)
{
    lua_State *L = w->L;
    struct lsvc__reload *rl = w->rl;
    if (rl->mark_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rl->mark_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, rl->mark_ref);
    rl->mark_ref = LUA_NOREF;
    lsvc__uvlua_opened_since(w, -1);
    if (rl->handles_ref == LUA_NOREF) {
        rl->handles_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, rl->handles_ref);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2), k = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawseti(L, -2, ++k);
    }
    lua_pop(L, 2);
}

/* The new version is refused (close) or adopted: the handles its code
 * opened are closed, or from now on the running version's. */
static void drop_handles(lsvc__worker *w, bool close)
{
    struct lsvc__reload *rl = w->rl;
    if (rl->handles_ref == LUA_NOREF)
        return;
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, rl->handles_ref);
    if (close)
        lsvc__uvlua_close_refused(w, -1, refused_grace_ms(w));
    lua_pop(w->L, 1);
    luaL_unref(w->L, LUA_REGISTRYINDEX, rl->handles_ref);
    rl->handles_ref = LUA_NOREF;
}

/* ---- ends ------------------------------------------------------------------ */

static void reload_failed(lsvc__worker *w, const char *err)
{
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "reload refused, the running version goes on: %s", err);
    lsvc_service_reload_result(w->svc, err);
    lsvc__tell_reloading(w, false);
}

/* Nothing of a refused version's runs again: its tasks end, its pool
 * requests' callbacks never reach Lua (fence.c). */
static void forget(lsvc__worker *w)
{
    lsvc__fence_kill_epoch(w, w->rl->epoch);
    lsvc__task_end_epoch(w, w->rl->epoch);
}

/* Around each resume of the new version's code: its epoch. */
static void enter_new(lsvc__worker *w)
{
    w->rl->outer = lsvc__epoch(w);
    lsvc__set_epoch(w, w->rl->epoch);
}

static void leave_new(lsvc__worker *w) { lsvc__set_epoch(w, w->rl->outer); }

static void put_hook_back(lsvc__worker *w)
{
    lua_sethook(w->L, w->rl->hook, w->rl->hook_mask, w->rl->hook_count);
}

/* The load failed: nothing of it stays. */
static void refuse(lsvc__worker *w, const char *err)
{
    lsvc__loader_call(w, "rollback");
    put_hook_back(w);
    drop_handles(w, true);
    forget(w);
    w->rl->phase = RELOAD_IDLE;
    reload_failed(w, err);
}

/* A stop came first, or the reload() failed: drop the new version. */
static void cancel(lsvc__worker *w, const char *err)
{
    struct lsvc__reload *rl = w->rl;
    if (rl->phase == RELOAD_IDLE)
        return;
    if (rl->phase == RELOAD_LOADING) { /* yielded: its changes are aside */
        if (rl->load)
            lsvc__task_end(rl->load); /* its slot, rl->load, is cleared */
        rl->paused = false;
        take_handles(w);
        lsvc__loader_call(w, "rollback");
    }
    put_hook_back(w); /* also when the new top level's was adopted */
    lsvc__task *main = lsvc__main(w);
    if (rl->phase == RELOAD_HOOK && lsvc__lane_handler(w))
        lsvc__task_end(lsvc__lane_handler(w));
    if (rl->phase == RELOAD_WINDING && main)
        main->done = main->kind->done; /* the old run ends as runs do */
    if (rl->new_info_ref != LUA_NOREF) {
        luaL_unref(w->L, LUA_REGISTRYINDEX, rl->new_info_ref);
        rl->new_info_ref = LUA_NOREF;
        lsvc__loader_call(w, "rollback");
    }
    drop_handles(w, true);
    forget(w);
    rl->phase = RELOAD_IDLE;
    if (err)
        reload_failed(w, err);
    lsvc__tell_reloading(w, false);
}

/* The old run has returned: the new version takes over. */
static void finish(lsvc__worker *w)
{
    struct lsvc__reload *rl = w->rl;
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, rl->new_info_ref);
    lsvc__load_apply(w, -1, false);
    lua_pop(w->L, 1);
    luaL_unref(w->L, LUA_REGISTRYINDEX, rl->new_info_ref);
    rl->new_info_ref = LUA_NOREF;
    drop_handles(w, false);
    lsvc__set_epoch(w, rl->epoch); /* the version in place from now on */
    rl->phase = RELOAD_IDLE;
    unsigned reloads = lsvc_service_reload_result(w->svc, NULL);
    lsvc__restore_deadline(w);
    lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "reloaded %s (reload %u)",
             lsvc_service_script(w->svc), reloads);
    rl->start_run(w);
    lsvc__tell_reloading(w, false);
}

/* ---- winding the old run down ------------------------------------------------ */

/* The old run returned (its kind's done, replaced while winding). */
static bool run_returned(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)r; /* an old run's error fails nothing */
    (void)ud;
    if (interrupted) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "the old run did not return within stop_timeout: interrupted");
        lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    }
    finish(w);
    return true;
}

/* The old run is asked to return (ctx:sleep gives false, ctx:reloading()
 * is true), within stop_timeout; controls wait meanwhile. */
static void begin_winding(lsvc__worker *w)
{
    w->rl->phase = RELOAD_WINDING;
    lsvc__task *main = lsvc__main(w);
    if (!main) { /* it returned already */
        finish(w);
        return;
    }
    lsvc_service_set_deadline(w->svc, reload_deadline(w), LSVC_DEADLINE_RELOAD);
    main->done = run_returned;
    lsvc__task_wind(main);
}

/* ---- the new version's reload(ctx, previous) ------------------------------------ */

static void hook_resuming(lsvc__task *t)
{
    mark_handles(t->w);
    enter_new(t->w);
}

static void hook_resumed(lsvc__task *t, lsvc__result r)
{
    (void)r;
    leave_new(t->w);
    take_handles(t->w);
}

static bool hook_done(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)interrupted;
    (void)ud;
    if (r == LSVC__TASK_DONE)
        begin_winding(w);
    else
        cancel(w, "the new version's reload() failed (see the log above)");
    return false;
}

static const lsvc__kind reload_kind = {
    .name = "reload",
    .can_wait = true,
    .winds_down = true,
    .holds_lane = true,
    .victim = LSVC__VICTIM_HANDLER,
    .resuming = hook_resuming,
    .resumed = hook_resumed,
    .done = hook_done,
};

/* LOADED, and the lane is free: its reload() runs, or the old run winds. */
static void start_hook(lsvc__worker *w)
{
    lua_State *L = w->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->rl->new_info_ref);
    lua_getfield(L, -1, "script");
    lua_remove(L, -2);
    if (!lsvc__get(w, "S", "reload"))
        lua_pushnil(L); /* the new version's table raised: it stops (code 2) */
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        begin_winding(w);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref); /* previous */
    enter_new(w);
    lsvc__task *t = lsvc__task_new(w, L, &reload_kind, 2, "reload");
    leave_new(w);
    lsvc__lane_hold(w, t, "reload");
    w->rl->phase = RELOAD_HOOK;
    lsvc_service_set_deadline(w->svc, reload_deadline(w), LSVC_DEADLINE_RELOAD);
}

/* ---- the load ---------------------------------------------------------------- */

static void load_resuming(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    if (w->rl->paused) {
        w->rl->paused = false;
        lsvc__loader_call(w, "unpause");
    }
    mark_handles(w);
    enter_new(w);
    w->loading = true;
}

/* After each slice: aside (yielded), or its outcome taken from its
 * coroutine (info | nil, message; or its error) before the task ends. */
static void load_resumed(lsvc__task *t, lsvc__result r)
{
    lsvc__worker *w = t->w;
    struct lsvc__reload *rl = w->rl;
    lua_State *L = w->L, *co = t->co;
    w->loading = false;
    leave_new(w);
    take_handles(w);
    if (r == LSVC__TASK_YIELDED) {
        rl->paused = true;
        lsvc__loader_call(w, "pause");
        return;
    }
    rl->ok = false;
    if (r == LSVC__TASK_OVERRAN) {
        snprintf(rl->err, sizeof rl->err,
                 "%s: its top level did not finish within handler_timeout (%u ms): interrupted",
                 lsvc_service_script(w->svc), rl->load_ms);
    } else if (r == LSVC__TASK_FAILED) {
        lua_xmove(co, L, 1);
        snprintf(rl->err, sizeof rl->err, "%s", lsvc__error_text(L, -1));
        lua_pop(L, 2);
    } else {
        int nres = lua_gettop(co);
        lua_xmove(co, L, nres);
        lua_settop(L, lua_gettop(L) - nres + 2); /* info | nil, message */
        rl->ok = !lua_isnil(L, -2);
        if (!rl->ok) {
            snprintf(rl->err, sizeof rl->err, "%s",
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
            lua_pop(L, 2);
        } else {
            lua_pop(L, 1);
            rl->new_info_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lsvc__coro_adopt_hook(w, co);
        }
    }
}

static bool load_done(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)r;
    (void)interrupted;
    (void)ud;
    if (w->rl->ok)
        w->rl->phase = RELOAD_LOADED; /* its reload() when the lane is free */
    else
        refuse(w, w->rl->err);
    return false;
}

static const lsvc__kind load_kind = {
    .name = "load",
    .can_wait = false,
    .sliced = true,
    .timing = LSVC__TIMED_BUDGET,
    .victim = LSVC__VICTIM_OTHER,
    .resuming = load_resuming,
    .resumed = load_resumed,
    .done = load_done,
};

static void begin(lsvc__worker *w)
{
    lua_State *L = w->L;
    struct lsvc__reload *rl = w->rl;
    rl->pending = false;
    rl->epoch = ++rl->epochs;
    lsvc__tell_reloading(w, true);
    rl->hook = lua_gethook(L);
    rl->hook_mask = lua_gethookmask(L);
    rl->hook_count = lua_gethookcount(L);
    rl->load_ms = w->handler_timeout_ms ? w->handler_timeout_ms : lsvc_service_stop_timeout(w->svc);
    lsvc__loader_fn(w, "load");
    lua_pushboolean(L, 0);
    lua_pushstring(L, lsvc_service_name(w->svc));
    lsvc__task_own(lsvc__task_new(w, L, &load_kind, 2, "load"), &rl->load);
    lsvc__coro_slice(rl->load->co); /* its slices (coro.c) */
    rl->load->budget_ns = (uint64_t)rl->load_ms * 1000000u;
    rl->paused = false;
    rl->phase = RELOAD_LOADING;
}

/* ---- what the reload registers -------------------------------------------------- */

/* The lane is free: take up a change or a PARAMCHANGE's reload when the
 * service can, or the loaded version's reload(). true: the lane is held. */
static bool lane_step(lsvc__worker *w)
{
    struct lsvc__reload *rl = w->rl;
    switch (rl->phase) {
    case RELOAD_IDLE:
        if (!lsvc__lane_delivering(w) || w->phase != LSVC__PHASE_RUN ||
            lsvc_service_stopping(w->svc))
            return false;
        if (lsvc__load_watch_step(w) == LSVC__WATCH_CHANGED)
            rl->pending = true;
        if (rl->pending && lsvc__main(w))
            begin(w);
        return false;
    case RELOAD_LOADING: return false; /* controls go to the running version */
    case RELOAD_LOADED:
        if (lsvc_service_stopping(w->svc))
            return false;
        start_hook(w);
        return rl->phase == RELOAD_WINDING;
    case RELOAD_HOOK:
    case RELOAD_WINDING: return true;
    }
    return false;
}

static void asked(lsvc__worker *w) { w->rl->pending = true; }

static bool busy(lsvc__worker *w) { return w->rl->pending || w->rl->phase != RELOAD_IDLE; }

static void on_stop(lsvc__worker *w) { cancel(w, NULL); } /* the stop comes first */

/* A deadline passed during a reload: true when answered here. */
static bool on_interrupt(lsvc__worker *w, lsvc__victim victim)
{
    struct lsvc__reload *rl = w->rl;
    if (rl->phase == RELOAD_HOOK && victim != LSVC__VICTIM_MAIN) {
        cancel(w, "the new version's reload() did not finish within stop_timeout");
        lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        lsvc__restore_deadline(w);
        return true;
    }
    if (rl->phase == RELOAD_WINDING && victim != LSVC__VICTIM_MAIN) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "the old run did not return within stop_timeout: interrupted");
        if (lsvc__main(w))
            lsvc__task_end(lsvc__main(w));
        lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        finish(w);
        return true;
    }
    return false;
}

void lsvc__reload_open(lsvc__worker *w, void (*start_run)(lsvc__worker *w))
{
    w->rl = calloc(1, sizeof *w->rl);
    if (!w->rl)
        return;
    w->rl->start_run = start_run;
    w->rl->new_info_ref = w->rl->handles_ref = w->rl->mark_ref = LUA_NOREF;
    lsvc__lane_register(w, &(lsvc__lane_hooks){.step = lane_step, .asked = asked, .busy = busy});
    w->sched.on_stop = on_stop;
    lsvc__sched_on_interrupt(w, on_interrupt);
}

bool lsvc__reload_winding(lsvc__worker *w) { return w->rl && w->rl->phase == RELOAD_WINDING; }

void lsvc__reload_free(lsvc__worker *w)
{
    free(w->rl);
    w->rl = NULL;
}
