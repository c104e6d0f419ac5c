/*
 * ptree.c - the service's process tree (DESIGN §9): every process the
 * service starts, through uv.spawn, io.popen, os.execute or a C module,
 * and every descendant of those, ends with it, and only that service's.
 * The platform's mechanism is posix_ptree.c's (a cgroup per service, else
 * process groups under the host as child subreaper); this file is the
 * worker's side of it:
 *
 *   - the worker's thread joins the service's cgroup before any script
 *     code runs (lsvc__ptree_open), so all it forks is the tree's;
 *   - the runtime's own spawns (spawn.c: io.popen, os.execute, ctx:exec)
 *     register their child through lsvc__ptree_spawning/_spawned; uv.spawn
 *     starts its child detached (a session of its own) and registers it. A closed handle changes nothing: the
 *     tree is found by pid, never through the script's handles;
 *   - the `children` gauge is the tree's live processes, counted on a
 *     timer (and at each start); in subreaper mode a SIGCHLD reaps the
 *     orphans re-parented to the host;
 *   - the stop (uvlua.c's lsvc__uvlua_close_all) signals the tree through
 *     lsvc__ptree_signal and lsvc__ptree_kill, then lsvc__ptree_ended;
 *   - a worker given up in a C call cannot: its tree is ended by
 *     tree_given_up, registered with the service (lsvc_service_on_abandon).
 *
 * Worker thread only, but tree_given_up (on the thread that gives the
 * worker up: it reads only the tree's handle, set before it is
 * registered). Windows: the host's Job object (win32_job.c): all the host
 * starts is in it and ends with the host; at a stop, the job's processes
 * are ended when the service is the host's only one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "private.h"

#ifndef _WIN32
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TICK_MS 500u          /* the children gauge's refresh */
#define ABANDON_GRACE_MS 500u /* a given-up worker's tree: SIGTERM, then SIGKILL */

struct lsvc__ptree {
    lsvc_ptree *t;
    lsvc_ptree_mode mode;
    unsigned children; /* the gauge */
    uv_timer_t tick;
    uv_signal_t chld;
    bool tick_init, chld_init;
    pid_t *uvpids; /* uv.spawn's children, until their handle is gone */
    size_t nuvpids;
    char tag[160]; /* LUASVC_SERVICE=<name> */
};

/* ---- starting a child ----------------------------------------------------- */

static void lock(lsvc__worker *w)
{
    if (w->pt->mode != LSVC_PTREE_NONE)
        lsvc_ptree_lock();
}

static void unlock(lsvc__worker *w, pid_t pid)
{
    if (w->pt->mode == LSVC_PTREE_NONE)
        return;
    if (pid > 0)
        lsvc_ptree_add(w->pt->t, pid);
    lsvc_ptree_unlock();
}

bool lsvc__ptree_is_tag(const char *kv)
{
    return strncmp(kv, LSVC_PTREE_ENV "=", sizeof LSVC_PTREE_ENV) == 0;
}

char *lsvc__ptree_tag(lsvc__worker *w) { return w->pt->tag; }

static void on_tick(uv_timer_t *h);

static void recount(lsvc__worker *w) { w->pt->children = lsvc_ptree_count(w->pt->t); }

/* A child started: the gauge's timer runs from now while the tree is not
 * empty (an idle service's loop never wakes for it). */
static void arm(lsvc__worker *w)
{
    if (w->pt->tick_init && !uv_is_active((uv_handle_t *)&w->pt->tick))
        uv_timer_start(&w->pt->tick, on_tick, TICK_MS / 10, TICK_MS);
}

void lsvc__ptree_spawning(lsvc__worker *w) { lock(w); }

void lsvc__ptree_spawned(lsvc__worker *w, pid_t pid)
{
    unlock(w, pid);
    if (pid > 0)
        arm(w);
}

void lsvc__ptree_unwait(lsvc__worker *w, pid_t pid) { lsvc_ptree_unwait(w->pt->t, pid); }

/* options.env (at idx, a copy of the script's) with the service's tag: the
 * list given, else environ, without any LUASVC_SERVICE of theirs. */
static void tag_env(lsvc__worker *w, lua_State *L, int idx)
{
    lua_newtable(L);
    lua_Integer k = 0;
    if (lua_getfield(L, idx, "env") == LUA_TTABLE) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            const char *kv = lua_tostring(L, -1);
            if (kv && !lsvc__ptree_is_tag(kv))
                lua_rawseti(L, -3, ++k);
            else
                lua_pop(L, 1);
        }
    } else {
        for (char **e = environ; *e; e++)
            if (!lsvc__ptree_is_tag(*e)) {
                lua_pushstring(L, *e);
                lua_rawseti(L, -3, ++k);
            }
    }
    lua_pop(L, 1);
    lua_pushstring(L, w->pt->tag);
    lua_rawseti(L, -2, k + 1);
    lua_setfield(L, idx, "env");
}

/* uv.spawn(path, options, on_exit): the child detached (a session and
 * group of its own), tagged, registered. Upvalue 1: luv's. */
static int fenced_spawn(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    lua_settop(L, 3);
    if (lua_istable(L, 2)) { /* a copy: the script's table is left as it was */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "detached");
        tag_env(w, L, lua_gettop(L));
        lua_replace(L, 2);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lock(w);
    int rc = lua_pcall(L, 3, LUA_MULTRET, 0);
    pid_t pid = rc == LUA_OK && lua_isinteger(L, 2) ? (pid_t)lua_tointeger(L, 2) : -1;
    unlock(w, pid);
    if (rc != LUA_OK)
        return lua_error(L);
    if (pid > 0) {
        pid_t *g = realloc(w->pt->uvpids, (w->pt->nuvpids + 1) * sizeof *g);
        if (g) {
            w->pt->uvpids = g;
            g[w->pt->nuvpids++] = pid;
        } else {
            lsvc_ptree_unwait(w->pt->t, pid); /* the reaper's then */
        }
        arm(w);
    }
    return lua_gettop(L);
}

/* ---- the gauge, the reaper ------------------------------------------------- */

typedef struct {
    pid_t pid;
    bool found;
} find_arg;

static void find_process(uv_handle_t *h, void *arg)
{
    find_arg *f = arg;
    if (h->type == UV_PROCESS && uv_is_active(h) && ((uv_process_t *)h)->pid == f->pid)
        f->found = true;
}

/* uv.spawn's children whose handle has gone (reaped by libuv, or closed by
 * the script: libuv waits for it no more) are the reaper's. */
static void forget_gone(lsvc__worker *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->pt->nuvpids; i++) {
        find_arg f = {w->pt->uvpids[i], false};
        uv_walk(&w->loop, find_process, &f);
        if (f.found)
            w->pt->uvpids[k++] = f.pid;
        else
            lsvc_ptree_unwait(w->pt->t, f.pid);
    }
    w->pt->nuvpids = k;
}

/* Counted first: once the tree is empty every process of it has exited,
 * and the reap then finds every zombie of theirs the host has. */
static void refresh(uv_loop_t *loop)
{
    lsvc__worker *w = loop->data;
    forget_gone(w);
    recount(w);
    lsvc_ptree_reap();
    if (!w->pt->children && !w->pt->nuvpids && w->pt->tick_init)
        uv_timer_stop(&w->pt->tick);
}

static void on_tick(uv_timer_t *h) { refresh(h->loop); }

/* A child exited (subreaper mode: maybe an orphan of the host's): the
 * timer reaps it at its next look. Not a scan of /proc per exit, which
 * would cost each short child a few ms. */
static void on_chld(uv_signal_t *h, int sig)
{
    (void)sig;
    arm(h->loop->data);
}

/* Waits (in steps of 10 ms) until t is empty or due; its count. */
static unsigned wait_empty(lsvc_ptree *t, uint64_t due)
{
    unsigned n;
    while ((n = lsvc_ptree_count(t)) && lsvc_now_ns() < due)
        usleep(10000);
    return n;
}

/* The whole end of t, blocking (no loop waits for it): SIGTERM, up to
 * grace_ms for it to empty, then SIGKILL to what is left (*killed: how
 * many), the host's zombies reaped. Returns how many got SIGTERM. */
static unsigned end_now(lsvc_ptree *t, uint32_t grace_ms, unsigned *killed)
{
    *killed = 0;
    unsigned n = lsvc_ptree_signal(t, SIGTERM);
    if (!n)
        return 0;
    if (wait_empty(t, lsvc_now_ns() + (uint64_t)grace_ms * 1000000u)) {
        *killed = lsvc_ptree_count(t);
        lsvc_ptree_kill(t);
        wait_empty(t, lsvc_now_ns() + 200000000u);
    }
    lsvc_ptree_reap();
    return n;
}

/* The worker was given up, stuck in a C call (lsvc_service_on_abandon): on
 * the watchdog's thread, or this one's at a panic, before STOPPED. Its
 * tree is ended from there as a stop would end it, with a short grace
 * (the watchdog waits meanwhile); w->pt stays, as an abandoned worker is
 * never freed (worker.c's worker_free). */
static void tree_given_up(void *ud)
{
    lsvc__worker *w = ud;
    unsigned killed;
    unsigned n = end_now(w->pt->t, ABANDON_GRACE_MS, &killed);
    lsvc_ptree_orphan(w->pt->t); /* no cgroup left behind */
    if (n)
        lsvc_log(killed ? LSVC_LOG_WARNING : LSVC_LOG_INFO, lsvc_service_name(w->svc),
                 "its thread given up: %u process%s of its tree ended (%u killed after %u ms)", n,
                 n == 1 ? "" : "es", killed, ABANDON_GRACE_MS);
}

void lsvc__ptree_open(lsvc__worker *w)
{
    lua_State *L = w->L;
    w->pt = calloc(1, sizeof *w->pt);
    if (!w->pt)
        luaL_error(L, "not enough memory");
    w->pt->mode = lsvc_ptree_mode_now();
    snprintf(w->pt->tag, sizeof w->pt->tag, "%s=%s", LSVC_PTREE_ENV, lsvc_service_name(w->svc));
    w->pt->t = lsvc_ptree_new(lsvc_service_name(w->svc));
    if (!w->pt->t)
        luaL_error(L, "not enough memory");
    if (lsvc_ptree_join(w->pt->t) != 0)
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                 "cannot enter the service's cgroup (%s): its children are found by process "
                 "group instead",
                 strerror(errno));
    lsvc_log(LSVC_LOG_DEBUG, lsvc_service_name(w->svc), "process tree: %s",
             lsvc_ptree_cgroup(w->pt->t) ? "cgroup" : lsvc_ptree_mode_name(w->pt->mode));
    lsvc_service_on_abandon(w->svc, tree_given_up, w);
    if (uv_timer_init(&w->loop, &w->pt->tick) == 0) {
        w->pt->tick.data = NULL; /* the runtime's own */
        w->pt->tick_init = true; /* started by the first child */
    }
    if (w->pt->mode == LSVC_PTREE_SUBREAPER && uv_signal_init(&w->loop, &w->pt->chld) == 0) {
        w->pt->chld.data = NULL;
        w->pt->chld_init = true;
        uv_signal_start(&w->pt->chld, on_chld, SIGCHLD);
    }
}

void lsvc__ptree_luv(lua_State *L, int uv)
{
    uv = lua_absindex(L, uv);
    lua_getfield(L, uv, "spawn");
    lua_pushcclosure(L, fenced_spawn, 1);
    lua_setfield(L, uv, "spawn");
}

unsigned lsvc__ptree_children(lsvc__worker *w) { return w->pt ? w->pt->children : 0; }

unsigned lsvc__ptree_signal(lsvc__worker *w, int sig)
{
    if (!w->pt)
        return 0;
    unsigned n = lsvc_ptree_signal(w->pt->t, sig);
    w->pt->children = n;
    return n;
}

void lsvc__ptree_kill(lsvc__worker *w)
{
    if (w->pt)
        lsvc_ptree_kill(w->pt->t);
}

bool lsvc__ptree_foreign(lsvc__worker *w, long pid)
{
    return w->pt && lsvc_ptree_foreign(w->pt->t, (pid_t)(pid < 0 ? -pid : pid), pid < 0);
}

void lsvc__ptree_ended(lsvc__worker *w)
{
    if (!w->pt)
        return;
    lsvc_ptree_leave(w->pt->t); /* nothing forked from here on is the tree's */
    forget_gone(w);
    lsvc_ptree_reap();
    if (w->pt->tick_init)
        uv_close((uv_handle_t *)&w->pt->tick, NULL);
    if (w->pt->chld_init)
        uv_close((uv_handle_t *)&w->pt->chld, NULL);
    w->pt->tick_init = w->pt->chld_init = false;
    w->pt->children = 0;
    lsvc_service_set_gauges(w->svc, &(lsvc_gauges){.lua_bytes = w->alloc.used,
                                                    .tasks = lsvc__task_count(w),
                                                    .children = 0});
}

void lsvc__ptree_free(lsvc__worker *w)
{
    if (!w->pt)
        return;
    lsvc_service_on_abandon(w->svc, NULL, NULL);
    lsvc_ptree_free(w->pt->t);
    free(w->pt->uvpids);
    free(w->pt);
    w->pt = NULL;
}

#else /* Windows: the host's Job object (win32_job.c) */

/* The job is the host's: its processes are this service's when the host
 * runs no other (a service under the SCM has a process of its own; `luasvc
 * run` with several services ends their children at the host's exit). */
static bool sole(lsvc__worker *w)
{
    lsvc_host *h = lsvc_service_host(w->svc);
    return h && lsvc_host_count(h) == 1;
}

/* The worker was given up (lsvc_service_on_abandon): the job's processes
 * ended as a stop would end them (the host's only service). */
static void tree_given_up(void *ud)
{
    lsvc__worker *w = ud;
    if (sole(w))
        lsvc_job_others(true);
}

void lsvc__ptree_open(lsvc__worker *w)
{
    lsvc_service_on_abandon(w->svc, tree_given_up, w);
    if (!lsvc_job_open())
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                 "no Job object for the host (error %lu): the processes the service starts "
                 "are ended with their handles only",
                 (unsigned long)GetLastError());
}
void lsvc__ptree_luv(lua_State *L, int uv) { (void)L, (void)uv; }
unsigned lsvc__ptree_children(lsvc__worker *w) { return sole(w) ? lsvc_job_others(false) : 0; }
/* Windows has no SIGTERM for another process: SIGTERM and SIGKILL alike
 * terminate (what libuv's uv_kill does there too). */
unsigned lsvc__ptree_signal(lsvc__worker *w, int sig)
{
    unsigned n = sole(w) ? lsvc_job_others(sig != 0) : 0;
    if (sig == SIGTERM && n)
        lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc),
                 "ending the %u process%s left in the service's Job object", n, n == 1 ? "" : "es");
    return n;
}
void lsvc__ptree_kill(lsvc__worker *w)
{
    if (sole(w))
        lsvc_job_others(true);
}
bool lsvc__ptree_foreign(lsvc__worker *w, long pid) { (void)w, (void)pid; return false; }
void lsvc__ptree_ended(lsvc__worker *w) { (void)w; }
void lsvc__ptree_free(lsvc__worker *w) { (void)w; }

#endif
