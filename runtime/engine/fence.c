/*
 * fence.c - what a service may reach of the process (DESIGN §9), made to
 * hold whatever its script does with luv, LuaFileSystem or lua-cjson. The
 * process's signals, working directory, threads, thread pool and C
 * modules' buffers are the host's; a service owns its state, loop,
 * handles, tasks and children:
 *
 *   - signals the host owns (SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD,
 *     the interrupt signal; SIGINT, SIGBREAK, SIGHUP on Windows) cannot be
 *     taken by uv.new_signal (start raises with the reason); a signal a
 *     script takes is given back when its handle closes (at the latest at
 *     its stop: libuv puts the default back); uv.kill of the host's own
 *     process, its group or every process raises;
 *   - threads are not offered (uv.new_thread, uv.new_work, uv.queue_work
 *     raise, naming the alternatives): they would run outside the
 *     service's memory limit, stop and exit;
 *   - the working directory is not a script's to change (uv.chdir,
 *     lfs.chdir raise), so the paths the host was given (scripts,
 *     modules, the log) keep meaning what they meant at its start;
 *   - libuv's thread pool: a service has at most LSVC__POOL_PER_SERVICE
 *     requests in it (uv.fs_* with a callback, getaddrinfo, getnameinfo,
 *     random); more wait their turn in the service's own queue, and the
 *     pool has a place for every service's (UV_THREADPOOL_SIZE, set before
 *     the first worker starts), so none can hold it from another; a
 *     refused version's requests never reach Lua; a stop waits for the
 *     service's requests only within its deadline (lsvc__fence_drain),
 *     and a host whose pool still works on one exits without waiting on
 *     it (lsvc_fence_exit);
 *   - a refused version's requests on handles (connect, write, shutdown,
 *     a UDP send) are cancelled when its handles close, and luv calls
 *     their callbacks then: those are skipped, as the pool's are, and so
 *     are its close callbacks (a function or a callable value);
 *   - lua-cjson's encode buffer (plain malloc, not the state's allocator)
 *     does not outlive an encode that failed or made more than 64 kB (cjson,
 *     cjson.safe and every cjson.new() instance);
 *   - the rest (identity, environment, locale, title, priority, C
 *     functions' upvalues, copies of these modules): fence_proc.c.
 *
 * Worker thread only, except the process-wide parts said so.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define POOL_SLACK 4u         /* the pool's places beyond the services' */
#define CJSON_KEEP_MAX 65536u /* an encode that made more frees its buffer */

/* The requests of every service in the pool (any thread). */
static atomic_uint pool_all;

struct lsvc__fence {
    unsigned inflight; /* this service's requests in the pool */
    int queue_ref;     /* the requests waiting their turn: {orig, epoch, n, args...} */
    lua_Integer qhead, qtail;
    int dead_ref; /* epochs of refused versions: their callbacks never run */
};

/* ---- the process's part --------------------------------------------------- */

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static unsigned pool_services = 1;

static void size_pool(void)
{
    if (getenv("UV_THREADPOOL_SIZE"))
        return; /* the operator's */
    unsigned n = LSVC__POOL_PER_SERVICE * pool_services + POOL_SLACK;
    char v[16];
    snprintf(v, sizeof v, "%u", n > 1024 ? 1024 : n);
#ifdef _WIN32
    _putenv_s("UV_THREADPOOL_SIZE", v);
#else
    setenv("UV_THREADPOOL_SIZE", v, 0);
#endif
}

void lsvc_fence_prepare(size_t services)
{
    pool_services = services ? (unsigned)services : 1;
    pthread_once(&pool_once, size_pool);
}

bool lsvc_fence_pool_busy(void) { return atomic_load(&pool_all) > 0; }

/* ---- signals, kill, threads, chdir ------------------------------------------ */

static int host_signal(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        int s = (int)lua_tointeger(L, idx);
        int irq = lsvc_irq_signo();
#ifdef _WIN32
        (void)irq;
        return s == SIGINT || s == SIGBREAK || s == 1 /* SIGHUP */ ? s : 0;
#else
        return s == SIGTERM || s == SIGINT || s == SIGHUP || s == SIGPIPE || s == SIGCHLD ||
                       (irq && s == irq)
                   ? s
                   : 0;
#endif
    }
    const char *n = lua_tostring(L, idx);
    if (!n)
        return 0;
    static const char *const names[] = {"sigterm", "sigint", "sighup", "sigpipe", "sigchld",
                                        "sigbreak", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(n, names[i]) == 0)
            return i + 1;
    return 0;
}

/* signal_start(h, signum, cb), h:start(signum, cb) and their oneshots:
 * the host's signals raise. Upvalue 1: luv's. */
static int fenced_signal_start(lua_State *L)
{
    if (host_signal(L, 2))
        return luaL_error(L, "uv.signal_start: signal %s is the host's (it stops, reloads or "
                             "interrupts every service of the process): a service cannot take it; "
                             "stop and paramchange handlers receive SIGTERM and SIGHUP",
                          luaL_tolstring(L, 2, NULL));
    return lsvc__call_wrapped(L);
}

/* uv.kill(pid, sig): not the host, its group, or every process. */
static int fenced_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
#ifndef _WIN32
    if (pid <= 0 || pid == (lua_Integer)getpid() || -pid == (lua_Integer)getpgrp())
        return luaL_error(L, "uv.kill: pid %I is the host's own process, its group or every "
                             "process: a service signals its own children only",
                          pid);
#else
    if (pid <= 0 || pid == (lua_Integer)GetCurrentProcessId())
        return luaL_error(L, "uv.kill: pid %I is the host's own process", pid);
#endif
    if (lsvc__ptree_foreign(lsvc__of(L), (long)pid))
        return luaL_error(L, "uv.kill: pid %I is another service's: a service signals its own "
                             "children only",
                          pid);
    return lsvc__call_wrapped(L);
}

static int no_thread(lua_State *L)
{
    return luaL_error(L, "%s: threads are not offered to services (one would run outside the "
                         "service's memory_limit, its stop and the process's exit): use "
                         "ctx:spawn for concurrent Lua, uv.spawn for a process of its own, or "
                         "the asynchronous uv.fs_* calls",
                      lua_tostring(L, lua_upvalueindex(1)));
}

static int no_chdir(lua_State *L)
{
    return luaL_error(L, "%s: the working directory is the host's, shared by every service of "
                         "the process: use absolute paths",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* t[name] = f, with the name as its upvalue (for its message). */
static void refuse(lua_State *L, int t, const char *name, lua_CFunction f)
{
    t = lua_absindex(L, t);
    lua_pushstring(L, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, name);
}

/* ---- the pool ---------------------------------------------------------------- */

static bool epoch_dead(lua_State *L, lsvc__worker *w, lua_Integer epoch)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->fence->dead_ref);
    bool dead = lua_rawgeti(L, -1, epoch) != LUA_TNIL;
    lua_pop(L, 2);
    return dead;
}

static int l_issue_next(lua_State *L);

/* A request's callback: its place in the pool is free; the next waiting
 * request goes in; then the script's callback, unless its version was
 * refused. Upvalues: the script's callback, the epoch. */
static int pool_done(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    w->fence->inflight--;
    atomic_fetch_sub(&pool_all, 1);
    lua_pushcfunction(L, l_issue_next); /* one that cannot start is logged, the rest go on */
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "a waiting request: %s",
                 lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    if (epoch_dead(L, w, lua_tointeger(L, lua_upvalueindex(2))))
        return 0;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* Stack: [orig, args...] from base, the callback last: the request goes
 * into the pool with its callback wrapped. Returns what orig returns. */
static int issue(lua_State *L, lsvc__worker *w, int base, lua_Integer epoch)
{
    int top = lua_gettop(L); /* the callback */
    lua_pushvalue(L, top);
    lua_pushinteger(L, epoch);
    lua_pushcclosure(L, pool_done, 2);
    lua_replace(L, top);
    lua_call(L, top - base, LUA_MULTRET);
    w->fence->inflight++; /* no callback runs inside the call: counted after it */
    atomic_fetch_add(&pool_all, 1);
    return lua_gettop(L) - base + 1;
}

/* The service's waiting requests, while it has places in the pool. */
static void issue_next(lsvc__worker *w)
{
    lua_State *L = w->L;
    struct lsvc__fence *f = w->fence;
    while (f->qhead < f->qtail && f->inflight < LSVC__POOL_PER_SERVICE) {
        int top = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, f->queue_ref);
        lua_rawgeti(L, -1, f->qhead);
        lua_pushnil(L);
        lua_rawseti(L, -3, f->qhead++);
        int item = lua_gettop(L);
        lua_rawgeti(L, item, 2);
        lua_Integer epoch = lua_tointeger(L, -1);
        lua_rawgeti(L, item, 3);
        int n = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
        if (!epoch_dead(L, w, epoch)) {
            luaL_checkstack(L, n + 4, "a waiting request");
            int base = lua_gettop(L) + 1;
            lua_rawgeti(L, item, 1);
            for (int i = 1; i <= n; i++)
                lua_rawgeti(L, item, i + 3);
            issue(L, w, base, epoch);
        }
        lua_settop(L, top);
    }
}

static int l_issue_next(lua_State *L)
{
    issue_next(lsvc__of(L));
    return 0;
}

/* uv.fs_*(..., cb) and the pool's other calls; without a callback the call
 * runs on this worker's thread, outside the pool. Upvalue 1: luv's. */
static int pool_call(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    if (n == 0 || !lua_isfunction(L, n + 1)) {
        lua_call(L, n, LUA_MULTRET);
        return lua_gettop(L);
    }
    lsvc__worker *w = lsvc__of(L);
    struct lsvc__fence *f = w->fence;
    lua_Integer epoch = lsvc__epoch(w);
    if (f->inflight < LSVC__POOL_PER_SERVICE && f->qhead == f->qtail)
        return issue(L, w, 1, epoch);
    /* its turn comes when one of the service's requests ends */
    lua_createtable(L, n + 3, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, epoch);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, n);
    lua_rawseti(L, -2, 3);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i + 1);
        lua_rawseti(L, -2, i + 3);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, f->queue_ref);
    lua_insert(L, -2);
    lua_rawseti(L, -2, f->qtail++);
    return 0;
}

static bool pool_name(const char *k)
{
    if (strncmp(k, "fs_", 3) == 0)
        return strncmp(k, "fs_event", 8) != 0 && strncmp(k, "fs_poll", 7) != 0;
    return strcmp(k, "getaddrinfo") == 0 || strcmp(k, "getnameinfo") == 0 ||
           strcmp(k, "random") == 0;
}

/* ---- requests on handles ---------------------------------------------------- */

/* A request's callback (a connect, a write, a shutdown, a send, a close),
 * unless its version was refused: closing a refused version's handles
 * cancels their requests, and luv calls the callbacks then (ECANCELED);
 * a close it asked for ends after it. Upvalues: the script's callback,
 * the epoch of the code that made the request. */
static int req_done(lua_State *L)
{
    if (epoch_dead(L, lsvc__of(L), lua_tointeger(L, lua_upvalueindex(2))))
        return 0;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* Whether the value at idx can be called: a function, or a value with a
 * __call (a ctx:queue). */
static bool callable(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TFUNCTION)
        return true;
    if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL)
        return false;
    lua_pop(L, 1);
    return true;
}

/* uv.write(h, ..., cb), h:write(..., cb) and the like: a callback is given
 * the epoch it was made in. Upvalue 1: luv's. */
static int req_call(lua_State *L)
{
    int n = lua_gettop(L);
    if (n > 1 && callable(L, n)) {
        lua_pushvalue(L, n);
        lua_pushinteger(L, lsvc__epoch(lsvc__of(L)));
        lua_pushcclosure(L, req_done, 2);
        lua_replace(L, n);
    }
    return lsvc__call_wrapped(L);
}

static const char *const REQ_FUNCS[] = {"tcp_connect", "pipe_connect", "pipe_connect2", "write",
                                        "write2", "shutdown", "udp_send", "close", NULL};
static const char *const REQ_METHODS[] = {"connect", "connect2", "write", "write2",
                                          "shutdown", "send", "close", NULL};
static const char *const REQ_TYPES[] = {"uv_tcp",    "uv_pipe",  "uv_tty",     "uv_udp",
                                        "uv_timer",  "uv_prepare", "uv_check", "uv_idle",
                                        "uv_async",  "uv_poll",  "uv_signal",  "uv_process",
                                        "uv_fs_event", "uv_fs_poll", NULL};

/* The handle requests' functions and methods, wrapped (those luv has). */
static void fence_requests(lua_State *L, int uv)
{
    for (int i = 0; REQ_FUNCS[i]; i++) {
        int ty = lua_getfield(L, uv, REQ_FUNCS[i]);
        lua_pop(L, 1);
        if (ty != LUA_TNIL)
            lsvc__wrap(L, uv, REQ_FUNCS[i], req_call);
    }
    for (int t = 0; REQ_TYPES[t]; t++) {
        if (luaL_getmetatable(L, REQ_TYPES[t]) == LUA_TTABLE &&
            lua_getfield(L, -1, "__index") == LUA_TTABLE) {
            for (int i = 0; REQ_METHODS[i]; i++) {
                int ty = lua_getfield(L, -1, REQ_METHODS[i]);
                lua_pop(L, 1);
                if (ty != LUA_TNIL)
                    lsvc__wrap(L, -1, REQ_METHODS[i], req_call);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

/* ---- what the bindings open ------------------------------------------------- */

void lsvc__fence_luv(lua_State *L, int uv)
{
    uv = lua_absindex(L, uv);
    lsvc__wrap(L, uv, "signal_start", fenced_signal_start);
    lsvc__wrap(L, uv, "signal_start_oneshot", fenced_signal_start);
    lsvc__wrap(L, uv, "kill", fenced_kill);
    refuse(L, uv, "new_thread", no_thread);
    refuse(L, uv, "new_work", no_thread);
    refuse(L, uv, "queue_work", no_thread);
    refuse(L, uv, "chdir", no_chdir);
    fence_requests(L, uv);
    lsvc__fence_proc_luv(L, uv); /* fence_proc.c: identity, environment, ... */
    if (luaL_getmetatable(L, "uv_signal") == LUA_TTABLE) {
        if (lua_getfield(L, -1, "__index") == LUA_TTABLE) {
            lsvc__wrap(L, -1, "start", fenced_signal_start);
            lsvc__wrap(L, -1, "start_oneshot", fenced_signal_start);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    /* the pool's calls: collected first, replaced after (no change while
     * traversing) */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, uv)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && pool_name(lua_tostring(L, -1))) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, -3, (lua_Integer)lua_rawlen(L, -3) + 1);
        }
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lsvc__wrap(L, uv, lua_tostring(L, -1), pool_call);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

int luaopen_lfs(lua_State *L);
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

static int open_lfs(lua_State *L)
{
    luaopen_lfs(L);
    refuse(L, -1, "chdir", no_chdir);
    return 1;
}

/* An instance's encode: its buffer freed after a failed or big encode
 * (toggling encode_keep_buffer frees it and starts a new one); failed: it
 * raised (cjson) or gave nil and a message (cjson.safe). Upvalues: the
 * encode, the instance's encode_keep_buffer. */
static int cj_encode(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int rc = lua_pcall(L, n, LUA_MULTRET, 0);
    if (rc != LUA_OK || lua_isnil(L, 1) ||
        (lua_type(L, 1) == LUA_TSTRING && lua_rawlen(L, 1) > CJSON_KEEP_MAX)) {
        for (int keep = 0; keep < 2; keep++) {
            lua_pushvalue(L, lua_upvalueindex(2));
            lua_pushboolean(L, keep);
            if (lua_pcall(L, 1, 0, 0) != LUA_OK)
                lua_pop(L, 1);
        }
    }
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

static void fence_cjson(lua_State *L, int t);

/* cjson.new(): a new instance, fenced as well. Upvalue 1: the original. */
static int cj_new(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
    if (lua_istable(L, -1))
        fence_cjson(L, -1);
    return 1;
}

static void fence_cjson(lua_State *L, int t)
{
    t = lua_absindex(L, t);
    lua_getfield(L, t, "encode");
    lua_getfield(L, t, "encode_keep_buffer");
    if (lua_isfunction(L, -2) && lua_isfunction(L, -1)) {
        lua_pushcclosure(L, cj_encode, 2);
        lua_setfield(L, t, "encode");
    } else {
        lua_pop(L, 2);
    }
    if (lua_getfield(L, t, "new") == LUA_TFUNCTION) {
        lua_pushcclosure(L, cj_new, 1);
        lua_setfield(L, t, "new");
    } else {
        lua_pop(L, 1);
    }
}

static int open_cjson(lua_State *L)
{
    luaopen_cjson(L);
    fence_cjson(L, -1);
    return 1;
}

static int open_cjson_safe(lua_State *L)
{
    luaopen_cjson_safe(L);
    fence_cjson(L, -1);
    return 1;
}

void lsvc__fence_open(lsvc__worker *w)
{
    lua_State *L = w->L;
    w->fence = calloc(1, sizeof *w->fence);
    if (!w->fence)
        luaL_error(L, "not enough memory");
    lua_newtable(L);
    w->fence->queue_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    w->fence->dead_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->fence->qhead = w->fence->qtail = 1;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_lfs);
    lua_setfield(L, -2, "lfs");
    lua_pushcfunction(L, open_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, open_cjson_safe);
    lua_setfield(L, -2, "cjson.safe");
    lua_pop(L, 1);
    lsvc__fence_proc_open(L); /* fence_proc.c: debug's upvalues, setlocale, loadlib */
}

void lsvc__fence_kill_epoch(lsvc__worker *w, uint32_t epoch)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->fence->dead_ref);
    lua_pushboolean(w->L, 1);
    lua_rawseti(w->L, -2, epoch);
    lua_pop(w->L, 1);
}

static void on_drain_timer(uv_timer_t *t) { (void)t; /* wakes the loop */ }

bool lsvc__fence_drain(lsvc__worker *w, uint32_t ms)
{
    struct lsvc__fence *f = w->fence;
    if (!f)
        return true;
    f->qhead = f->qtail; /* those that waited never start */
    if (!f->inflight)
        return true;
    uv_timer_t t;
    uv_timer_init(&w->loop, &t);
    uv_update_time(&w->loop);
    uv_timer_start(&t, on_drain_timer, ms, 0);
    uint64_t due = lsvc__ms_from_now(ms);
    while (f->inflight && lsvc_now_ns() < due)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (f->inflight)
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                 "%u request(s) in libuv's thread pool (a file operation, a name lookup) did not "
                 "end within %u ms of the stop: the service's Lua state and loop are left to them",
                 f->inflight, ms);
    return f->inflight == 0;
}

void lsvc__fence_free(lsvc__worker *w)
{
    free(w->fence);
    w->fence = NULL;
}
