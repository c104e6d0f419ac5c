/*
 * reload.c - loading a service's script, the first time and on every hot
 * reload: lua/loader.lua (compiled in) loads and validates it with
 * lua/contract.lua and watches the script and its own modules; this file
 * calls it and applies what a version declares to the service; the
 * loader checks what it loads with fileguard.c. The reload state machine
 * is here too: a change (or a PARAMCHANGE) is taken up between controls;
 * the new version loads beside the old one (controls that arrive meanwhile
 * pause the load and go to the old one), its reload(ctx, previous) runs
 * as the handler, then the old run winds down and the new run starts
 * (LSVC_RELOAD_IDLE -> LOADING -> HOOK -> WINDING -> IDLE).
 * Worker thread only (it calls into the service's Lua state).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "worker.h"

/* What the watch last saw of a file: a cheap check in C, so an idle
 * service's poll never enters Lua. */
struct lsvc_watched {
    char *path;
    struct stat st;
    bool present;
};

extern const unsigned char lsvc_lua_contract[];
extern const size_t lsvc_lua_contract_len;
extern const unsigned char lsvc_lua_loader[];
extern const size_t lsvc_lua_loader_len;

/* sig(path) -> string | nil: what changes when a file is saved, in place
 * or by rename: modification and change times to the nanosecond, size,
 * inode. (lfs.attributes gives whole seconds: two saves of the same size
 * within one second would look the same.) */
static int l_sig(lua_State *L)
{
    struct stat st;
    if (stat(luaL_checkstring(L, 1), &st) != 0)
        return 0;
    lua_pushfstring(L, "%I.%I:%I.%I:%I:%I", (lua_Integer)st.st_mtim.tv_sec,
                    (lua_Integer)st.st_mtim.tv_nsec, (lua_Integer)st.st_ctim.tv_sec,
                    (lua_Integer)st.st_ctim.tv_nsec, (lua_Integer)st.st_size,
                    (lua_Integer)st.st_ino);
    return 1;
}

int lsvc_reload_setup(lsvc_worker *w)
{
    lua_State *L = w->L;
    lsvc_service *svc = w->svc;
    /* loader.lua and contract.lua each return a function; contract.lua's
     * chunk is given luasvc.accepts' table (a script that does not
     * require "luasvc" never opens it) */
    if (luaL_loadbuffer(L, (const char *)lsvc_lua_loader, lsvc_lua_loader_len,
                        LSVC_LOADER_SOURCE) != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK ||
        luaL_loadbuffer(L, (const char *)lsvc_lua_contract, lsvc_lua_contract_len,
                        "=[luasvc contract]") != LUA_OK ||
        (lsvc_push_accepts(L), lua_pcall(L, 1, 1, 0) != LUA_OK)) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "internal: %s", lua_tostring(L, -1));
        return -1;
    }
    lsvc_fileguard_push(L, lsvc_service_options(svc)->allow_insecure); /* fileguard.c */
    lua_pushcfunction(L, l_sig);
    lua_pushstring(L, lsvc_service_script(svc));
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "internal: %s", lua_tostring(L, -1));
        return -1;
    }
    w->loader_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->load_handles_ref = w->load_mark_ref = w->load_co_ref = LUA_NOREF;
    return 0;
}

/* Push loader.<fn> */
static void push_loader_fn(lsvc_worker *w, const char *fn)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->loader_ref);
    lua_getfield(w->L, -1, fn);
    lua_remove(w->L, -2);
}

int lsvc_reload_load(lsvc_worker *w, bool first, char *err, size_t errlen)
{
    lua_State *L = w->L;
    push_loader_fn(w, "load");
    lua_pushboolean(L, first);
    lua_pushstring(L, lsvc_service_name(w->svc));
    /* the top level runs with the interrupt (w->running) and memory_limit */
    w->loading = true;
    w->running = L;
    int rc = lua_pcall(L, 2, 2, 0);
    w->running = NULL;
    w->loading = false;
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    if (lua_isnil(L, -2)) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
        lua_pop(L, 2);
        return 0;
    }
    lua_pop(L, 1);
    return 1;
}

static void free_watched(lsvc_worker *w)
{
    for (size_t i = 0; i < w->nwatched; i++)
        free(w->watched[i].path);
    free(w->watched);
    w->watched = NULL;
    w->nwatched = 0;
}

void lsvc_reload_apply(lsvc_worker *w, int info, bool first)
{
    lua_State *L = w->L;
    lsvc_service *svc = w->svc;
    info = lua_absindex(L, info);
    uint8_t user[32] = {0};
    lua_getfield(L, info, "user");
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        unsigned c = (unsigned)lua_tointeger(L, -1) - LSVC_CTRL_USER_MIN;
        user[c / 8] |= (uint8_t)(1u << (c % 8));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, info, "name");
    lua_getfield(L, info, "display_name");
    lua_getfield(L, info, "accepts");
    lua_getfield(L, info, "stop_timeout");
    lsvc_service_configure(svc, first ? lua_tostring(L, -4) : NULL, lua_tostring(L, -3),
                           (uint32_t)lua_tointeger(L, -2), user, (uint32_t)lua_tointeger(L, -1));
    lua_pop(L, 4);
    lua_getfield(L, info, "watchdog");
    lua_getfield(L, info, "description");
    lsvc_service_describe(svc, (uint32_t)lua_tointeger(L, -2), lua_tostring(L, -1));
    lua_pop(L, 2);
    lua_getfield(L, info, "status_slot");
    lsvc_status_slot_set(svc, lua_tostring(L, -1)); /* status_slot.c; nil: none */
    lua_pop(L, 1);
    lua_getfield(L, info, "handler_timeout");
    w->handler_timeout_ms = (uint32_t)lua_tointeger(L, -1);
    lsvc_service_slice_timeout(svc, w->handler_timeout_ms); /* luv callbacks, tasks */
    lua_getfield(L, info, "memory_limit");
    w->alloc.limit = (size_t)lua_tointeger(L, -1); /* 0: none */
    lua_pop(L, 2);

    lua_getfield(L, info, "script");
    if (w->script_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, w->script_ref);
    w->script_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    push_loader_fn(w, "commit");
    lua_pushvalue(L, info);
    lua_call(L, 1, 0);

    /* the C side of the watch: the files the loader now watches (fswatch.c
     * keeps watching until lsvc_reload_watch replaces the list: no event
     * is lost in between, and a save under way stays known) */
    free_watched(w);
    lua_getfield(L, info, "modules");
    size_t nf = (size_t)luaL_len(L, -1);
    w->watched = calloc(nf ? nf : 1, sizeof *w->watched);
    for (size_t i = 0; w->watched && i < nf; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        struct lsvc_watched *f = &w->watched[w->nwatched];
        f->path = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (!f->path)
            break;
        f->present = stat(f->path, &f->st) == 0;
        w->nwatched++;
    }
    lua_pop(L, 1);
    w->settling = false;
    if (!first) /* the first version's, once it runs (lsvc_reload_watch) */
        lsvc_reload_watch(w);
}

void lsvc_reload_watch(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    char **paths = w->watched ? malloc((w->nwatched ? w->nwatched : 1) * sizeof *paths) : NULL;
    for (size_t i = 0; paths && i < w->nwatched; i++)
        paths[i] = w->watched[i].path;
    bool was = w->fs_notified;
    w->fs_notified = paths && lsvc_service_options(svc)->watch_interval_ms &&
                     !lsvc_service_options(svc)->watch_poll &&
                     lsvc_fswatch_set(svc, paths, w->nwatched);
    if (was && !w->fs_notified)
        lsvc_fswatch_forget(svc); /* the old list goes: this service polls */
    free(paths);
}

void lsvc_reload_free(lsvc_worker *w)
{
    if (w->fs_notified)
        lsvc_fswatch_forget(w->svc);
    w->fs_notified = false;
    free_watched(w);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_mode == b->st_mode;
}

void lsvc_reload_rollback(lsvc_worker *w)
{
    push_loader_fn(w, "rollback");
    if (lua_pcall(w->L, 0, 0, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "internal: rollback: %s",
                 lua_tostring(w->L, -1));
        lua_pop(w->L, 1);
    }
}

/* told() -> "complete" | "writing" | nil: what the kernel told of the
 * watched files since the last look (fswatch.c); the loader asks after it
 * has looked at them. */
static int l_told(lua_State *L)
{
    lsvc_worker *w = lua_touserdata(L, lua_upvalueindex(1));
    switch (lsvc_fswatch_take(w->svc)) {
    case LSVC_FSWATCH_COMPLETE: lua_pushliteral(L, "complete"); return 1;
    case LSVC_FSWATCH_WRITING: lua_pushliteral(L, "writing"); return 1;
    default: return 0;
    }
}

int lsvc_reload_poll(lsvc_worker *w)
{
    lua_State *L = w->L;
    bool changed = false;
    for (size_t i = 0; i < w->nwatched; i++) {
        struct lsvc_watched *f = &w->watched[i];
        struct stat st;
        bool present = stat(f->path, &st) == 0;
        if (present != f->present || (present && !same_stat(&st, &f->st))) {
            changed = true;
            f->present = present;
            f->st = st;
        }
    }
    if (!changed && !w->settling)
        return LSVC_WATCH_NONE; /* nothing new since the last look */
    push_loader_fn(w, "poll");
    if (w->fs_notified) {
        lua_pushlightuserdata(L, w);
        lua_pushcclosure(L, l_told, 1);
    } else {
        lua_pushnil(L); /* polling: the settle rule alone */
    }
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc), "watch: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return LSVC_WATCH_NONE;
    }
    const char *r = lua_tostring(L, -1);
    int res = !r                          ? LSVC_WATCH_NONE
              : strcmp(r, "changed") == 0 ? LSVC_WATCH_CHANGED
              : strcmp(r, "writing") == 0 ? LSVC_WATCH_WRITING
                                          : LSVC_WATCH_SETTLING;
    lua_pop(L, 1);
    /* settling or held: the next look asks the loader even if the files
     * look the same to stat (a writer's close changes nothing stat sees) */
    w->settling = res == LSVC_WATCH_SETTLING || res == LSVC_WATCH_WRITING;
    return res;
}

/* ---- the reload state machine ------------------------------------------- */

#define SETTLE_MS 20u /* a change being made: look again this soon */

static uint64_t reload_deadline(lsvc_worker *w)
{
    return lsvc_now_ns() + (uint64_t)lsvc_service_stop_timeout(w->svc) * 1000000u;
}

/* A refused version's children: SIGTERM, then SIGKILL this much later. */
static uint32_t refused_grace_ms(lsvc_worker *w)
{
    uint32_t ms = lsvc_service_stop_timeout(w->svc);
    return ms < 100u ? 100u : ms > 2000u ? 2000u : ms;
}

/* The new version is refused (or adopted: close false): the handles its
 * top level opened are closed, or from now on the running version's. */
static void drop_load_handles(lsvc_worker *w, bool close)
{
    if (w->load_handles_ref == LUA_NOREF)
        return;
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->load_handles_ref);
    if (close)
        lsvc_uvlua_close_refused(w, -1, refused_grace_ms(w));
    lua_pop(w->L, 1);
    luaL_unref(w->L, LUA_REGISTRYINDEX, w->load_handles_ref);
    w->load_handles_ref = LUA_NOREF;
}

static void reload_failed(lsvc_worker *w, const char *err)
{
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "reload refused, the running version goes on: %s", err);
    lsvc_service_reload_result(w->svc, err);
    lsvc_worker_tell_reloading(w, false);
}

/* The old run is asked to return (ctx:sleep gives false, ctx:reloading()
 * is true), within stop_timeout. */
static void begin_winding(lsvc_worker *w)
{
    w->reload_phase = LSVC_RELOAD_WINDING;
    lsvc_service_set_deadline(w->svc, reload_deadline(w), LSVC_DEADLINE_RELOAD);
    lsvc_task_wind_all(w);
}

/* ---- loading the new version ---------------------------------------------
 * Beside the old one, under handler_timeout: a top level that does not end
 * in time is interrupted and refused. It runs as a coroutine (load_co):
 * when a control arrives the hook (task.c) yields it where it can, the
 * loader puts its changes aside (pause), the running version handles the
 * controls waiting, then the load goes on (unpause) with what was left of
 * its time. A refused version leaves no trace: the loader puts back what
 * its top level changed (globals, package.loaded, the libraries' tables),
 * the state's hook is put back, and the luv handles its top level and its
 * reload() opened are closed (its children ended). */

static void call_loader(lsvc_worker *w, const char *fn)
{
    push_loader_fn(w, fn);
    if (lua_pcall(w->L, 0, 0, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "internal: %s: %s", fn,
                 lua_tostring(w->L, -1));
        lua_pop(w->L, 1);
    }
}

/* The handles opened since the mark join the new version's list. */
static void take_load_handles(lsvc_worker *w)
{
    lua_State *L = w->L;
    if (w->load_mark_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->load_mark_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, w->load_mark_ref);
    w->load_mark_ref = LUA_NOREF;
    lsvc_uvlua_opened_since(w, -1);
    if (w->load_handles_ref == LUA_NOREF) {
        w->load_handles_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->load_handles_ref);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2), k = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_rawseti(L, -2, ++k);
    }
    lua_pop(L, 2);
}

static void mark_handles(lsvc_worker *w)
{
    lsvc_uvlua_mark(w);
    w->load_mark_ref = luaL_ref(w->L, LUA_REGISTRYINDEX);
}

static void end_load_co(lsvc_worker *w)
{
    luaL_unref(w->L, LUA_REGISTRYINDEX, w->load_co_ref);
    w->load_co_ref = LUA_NOREF;
    w->load_co = NULL;
    w->load_paused = false;
}

static void refuse(lsvc_worker *w, const char *err)
{
    lua_State *L = w->L;
    lsvc_reload_rollback(w);
    lua_sethook(L, w->load_hook, w->load_hook_mask, w->load_hook_count);
    drop_load_handles(w, true);
    w->reload_phase = LSVC_RELOAD_IDLE;
    reload_failed(w, err);
}

/* The new version is loaded and checked (its info on top): its
 * reload(ctx, previous) runs as the handler, or the old run winds down. */
static void loaded(lsvc_worker *w)
{
    lua_State *L = w->L;
    w->new_info_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->new_info_ref);
    lua_getfield(L, -1, "script");
    lua_remove(L, -2);
    if (!lsvc_worker_get(w, "S", "reload"))
        lua_pushnil(L); /* the new version's table raised: it stops (code 2) */
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        begin_winding(w);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref); /* previous */
    snprintf(w->handler_what, sizeof w->handler_what, "reload");
    w->handler = lsvc_task_new(w, L, LSVC_TASK_HANDLER, 2, w->handler_what);
    w->handler_ev = (lsvc_event){0};
    w->reload_phase = LSVC_RELOAD_HOOK;
    lsvc_service_set_deadline(w->svc, reload_deadline(w), LSVC_DEADLINE_RELOAD);
}

/* loader.load returned (rc LUA_OK, nres results on co) or raised. */
static void load_ended(lsvc_worker *w, int rc, int nres)
{
    lua_State *L = w->L, *co = w->load_co;
    char err[2048];
    bool ok = false;
    if (rc == LUA_OK) {
        lua_xmove(co, L, nres);
        lua_settop(L, lua_gettop(L) - nres + 2); /* info | nil, message */
        ok = !lua_isnil(L, -2);
        if (!ok)
            snprintf(err, sizeof err, "%s",
                     lua_tostring(L, -1) ? lua_tostring(L, -1) : "load failed");
        lua_pop(L, ok ? 1 : 2);
    } else {
        lua_xmove(co, L, 1);
        snprintf(err, sizeof err, "%s", lsvc_worker_error_text(L, -1));
        lua_pop(L, 2);
    }
    if (ok)
        lsvc_task_adopt_hook(w, co);
    end_load_co(w);
    if (lsvc_service_interrupted(w->svc)) {
        if (ok)
            lua_pop(L, 1);
        ok = false;
        snprintf(err, sizeof err,
                 "%s: its top level did not finish within handler_timeout (%u ms): interrupted",
                 lsvc_service_script(w->svc), w->load_ms);
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    }
    lsvc_worker_restore_deadline(w);
    if (!ok) {
        refuse(w, err);
        return;
    }
    loaded(w);
}

/* Run the top level on until it ends, or a control pauses it. */
static void load_step(lsvc_worker *w)
{
    lua_State *L = w->L, *co = w->load_co;
    if (w->load_paused) {
        w->load_paused = false;
        call_loader(w, "unpause");
        mark_handles(w);
    }
    uint64_t t0 = lsvc_now_ns();
    lsvc_service_set_deadline(w->svc, t0 + w->load_left_ns, LSVC_DEADLINE_RELOAD);
    int rc, nres = 0;
    w->loading = true;
    w->load_running = true;
    do {
        w->running = co;
        w->chain_ok = true;
        w->suspending = false;
        rc = lua_resume(co, L, w->load_nargs, &nres);
        w->load_nargs = 0;
        if (rc == LUA_YIELD && !w->suspending)
            lua_pop(co, nres); /* the top level's own coroutine.yield(): it goes on */
    } while (rc == LUA_YIELD && !w->suspending);
    w->running = NULL;
    w->loading = false;
    w->load_running = false;
    w->suspending = false;
    take_load_handles(w);
    if (rc == LUA_YIELD && lsvc_service_interrupted(w->svc)) {
        lua_pop(co, nres); /* its deadline passed just as it paused */
        lua_pushliteral(co, "interrupted");
        rc = LUA_ERRRUN;
    }
    if (rc != LUA_YIELD) {
        load_ended(w, rc, nres);
        return;
    }
    /* paused: the controls waiting go to the running version meanwhile */
    lua_pop(co, nres);
    uint64_t used = lsvc_now_ns() - t0;
    w->load_left_ns = used < w->load_left_ns ? w->load_left_ns - used : 1000000u;
    w->load_paused = true;
    call_loader(w, "pause");
    lsvc_worker_restore_deadline(w);
}

static void begin_reload(lsvc_worker *w)
{
    lua_State *L = w->L;
    w->reload_pending = false;
    lsvc_worker_tell_reloading(w, true);
    w->load_hook = lua_gethook(L);
    w->load_hook_mask = lua_gethookmask(L);
    w->load_hook_count = lua_gethookcount(L);
    w->load_ms = w->handler_timeout_ms ? w->handler_timeout_ms : lsvc_service_stop_timeout(w->svc);
    w->load_left_ns = (uint64_t)w->load_ms * 1000000u;
    mark_handles(w);
    lua_State *co = lua_newthread(L);
    w->load_co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->load_co = co;
    push_loader_fn(w, "load");
    lua_pushboolean(L, 0);
    lua_pushstring(L, lsvc_service_name(w->svc));
    lua_xmove(L, co, 3);
    w->load_nargs = 2;
    lsvc_task_slice_load(co);
    w->reload_phase = LSVC_RELOAD_LOADING;
    load_step(w);
}

void lsvc_reload_cancel(lsvc_worker *w, const char *err)
{
    bool begun = w->reload_phase != LSVC_RELOAD_IDLE;
    if (w->reload_phase == LSVC_RELOAD_LOADING) { /* paused: its changes are aside */
        end_load_co(w);
        take_load_handles(w);
        lsvc_reload_rollback(w);
    }
    if (begun) /* the state's hook, also when the new top level's was adopted */
        lua_sethook(w->L, w->load_hook, w->load_hook_mask, w->load_hook_count);
    if (w->reload_phase == LSVC_RELOAD_HOOK && w->handler)
        lsvc_task_end(w->handler);
    if (w->new_info_ref != LUA_NOREF) {
        luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
        w->new_info_ref = LUA_NOREF;
        lsvc_reload_rollback(w);
    }
    drop_load_handles(w, true);
    w->reload_phase = LSVC_RELOAD_IDLE;
    if (err)
        reload_failed(w, err);
    lsvc_worker_tell_reloading(w, false);
}

/* The old run has returned: the new version takes over. */
static void finish_reload(lsvc_worker *w)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
    lsvc_reload_apply(w, -1, false);
    lua_pop(w->L, 1);
    luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
    w->new_info_ref = LUA_NOREF;
    drop_load_handles(w, false);
    w->reload_phase = LSVC_RELOAD_IDLE;
    unsigned reloads = lsvc_service_reload_result(w->svc, NULL);
    lsvc_worker_restore_deadline(w);
    lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "reloaded %s (reload %u)",
             lsvc_service_script(w->svc), reloads);
    lsvc_worker_start_run(w);
    lsvc_worker_tell_reloading(w, false);
}

void lsvc_reload_hook_resuming(lsvc_worker *w) { mark_handles(w); }

void lsvc_reload_hook_resumed(lsvc_worker *w) { take_load_handles(w); }

void lsvc_reload_hook_done(lsvc_worker *w, bool ok)
{
    if (ok)
        begin_winding(w);
    else
        lsvc_reload_cancel(w, "the new version's reload() failed (see the log above)");
}

void lsvc_reload_run_returned(lsvc_worker *w, bool interrupted)
{
    if (interrupted) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "the old run did not return within stop_timeout: interrupted");
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    }
    finish_reload(w);
}

bool lsvc_reload_interrupted(lsvc_worker *w, lsvc_victim victim)
{
    if (w->reload_phase == LSVC_RELOAD_HOOK &&
        (victim == LSVC_VICTIM_NONE || victim == LSVC_VICTIM_HANDLER ||
         victim == LSVC_VICTIM_OTHER)) {
        lsvc_reload_cancel(w, "the new version's reload() did not finish within stop_timeout");
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        lsvc_worker_restore_deadline(w);
        return true;
    }
    if (w->reload_phase == LSVC_RELOAD_WINDING && victim != LSVC_VICTIM_MAIN) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "the old run did not return within stop_timeout: interrupted");
        if (w->main)
            lsvc_task_end(w->main);
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        finish_reload(w);
        return true;
    }
    return false;
}

static void on_watch_timer(uv_timer_t *t) { (void)t; /* wakes the loop: the next turn looks */ }

/* Look at the watched files when due, and arm the timer for the next look. */
static void watch(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    if (!lsvc_service_options(svc)->watch_interval_ms)
        return;
    uint64_t now = lsvc_now_ns();
    if (w->fs_notified && lsvc_service_take_fs_kick(svc))
        w->next_poll_ns = now; /* told of a change: look now */
    if (w->next_poll_ns && now >= w->next_poll_ns) {
        int r = lsvc_reload_poll(w);
        if (r == LSVC_WATCH_CHANGED)
            w->reload_pending = true;
        /* a change settles quickly: look again soon, not a whole interval
         * later; a writer at work: at its close (told), or once the hold
         * is over; told of changes, look only when told */
        if (r == LSVC_WATCH_SETTLING)
            w->next_poll_ns = now + SETTLE_MS * 1000000u;
        else if (r == LSVC_WATCH_WRITING)
            w->next_poll_ns = now + (LSVC_FSWATCH_HOLD_MS + 1u) * 1000000u;
        else
            w->next_poll_ns = w->fs_notified
                                  ? 0
                                  : now + lsvc_service_options(svc)->watch_interval_ms * 1000000ull;
        uv_timer_stop(&w->watch_timer);
    }
    if (w->next_poll_ns && !uv_is_active((uv_handle_t *)&w->watch_timer)) {
        uv_update_time(&w->loop);
        uint64_t ms = w->next_poll_ns > now ? (w->next_poll_ns - now + 999999) / 1000000u : 0;
        uv_timer_start(&w->watch_timer, on_watch_timer, ms, 0);
    }
}

void lsvc_reload_begin_watch(lsvc_worker *w)
{
    lsvc_reload_watch(w);
    w->next_poll_ns =
        w->fs_notified
            ? 0
            : lsvc_now_ns() + (uint64_t)lsvc_service_options(w->svc)->watch_interval_ms * 1000000u;
}

bool lsvc_reload_step(lsvc_worker *w)
{
    if (w->reload_phase == LSVC_RELOAD_LOADING) {
        /* paused: the controls waiting go first, one handler at a time */
        if (!w->load_co || !w->deliver || w->handler ||
            lsvc_queue_len(lsvc_service_queue(w->svc)) > 0 ||
            lsvc_service_stopping(w->svc))
            return false;
        load_step(w);
        return true;
    }
    if (!w->deliver || w->reload_phase != LSVC_RELOAD_IDLE || w->phase != LSVC_PHASE_RUN ||
        lsvc_service_stopping(w->svc))
        return false;
    watch(w);
    if (!w->reload_pending || w->handler || !w->main)
        return false;
    begin_reload(w);
    return true;
}
