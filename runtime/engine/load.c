/*
 * load.c - loading a service's script, the first time and for every hot
 * reload: lua/loader.lua (compiled in) loads and validates it with
 * lua/contract.lua and watches the script and its own modules; this file
 * calls it and applies what a version declares to the service; the loader
 * checks what it loads with fileguard.c. The watch: a cheap look in C at
 * every interval (or when fswatch.c tells of a change), the loader asked
 * only when something changed. Worker thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define SETTLE_MS 20u /* a change being made: look again this soon */

/* What the watch last saw of a file: a cheap check in C, so an idle
 * service's poll never enters Lua. */
struct lsvc_watched {
    char *path;
    struct stat st;
    bool present;
};

struct lsvc__load {
    int loader_ref;
    struct lsvc_watched *watched; /* the files of the version in place, as last seen */
    size_t nwatched;
    bool settling;         /* a change was seen; the loader decides when it is stable */
    bool fs_notified;      /* fswatch.c tells of changes: no timed polls */
    uint64_t next_poll_ns; /* 0: none due */
    uv_timer_t timer;      /* the watch's next look (poll interval, settle) */
    bool timer_init;
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

int lsvc__load_setup(lsvc__worker *w)
{
    lua_State *L = w->L;
    lsvc_service *svc = w->svc;
    w->ld = calloc(1, sizeof *w->ld);
    if (!w->ld)
        return -1;
    w->ld->loader_ref = LUA_NOREF;
    uv_timer_init(&w->loop, &w->ld->timer);
    w->ld->timer.data = NULL; /* the runtime's own */
    w->ld->timer_init = true;
    /* loader.lua and contract.lua each return a function; contract.lua's
     * chunk is given luasvc.accepts' table (a script that does not
     * require "luasvc" never opens it) */
    if (luaL_loadbuffer(L, (const char *)lsvc_lua_loader, lsvc_lua_loader_len,
                        LSVC__LOADER_SOURCE) != LUA_OK ||
        lua_pcall(L, 0, 1, 0) != LUA_OK ||
        luaL_loadbuffer(L, (const char *)lsvc_lua_contract, lsvc_lua_contract_len,
                        "=[luasvc contract]") != LUA_OK ||
        (lsvc__push_accepts(L), lua_pcall(L, 1, 1, 0) != LUA_OK)) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "internal: %s", lua_tostring(L, -1));
        return -1;
    }
    lsvc__fileguard_push(L, lsvc_service_options(svc)->allow_insecure); /* fileguard.c */
    lua_pushcfunction(L, l_sig);
    lua_pushstring(L, lsvc_service_script(svc));
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "internal: %s", lua_tostring(L, -1));
        return -1;
    }
    w->ld->loader_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

void lsvc__loader_fn(lsvc__worker *w, const char *fn)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ld->loader_ref);
    lua_getfield(w->L, -1, fn);
    lua_remove(w->L, -2);
}

void lsvc__loader_call(lsvc__worker *w, const char *fn)
{
    lsvc__loader_fn(w, fn);
    if (lua_pcall(w->L, 0, 0, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "internal: %s: %s", fn,
                 lua_tostring(w->L, -1));
        lua_pop(w->L, 1);
    }
}

int lsvc__load_first(lsvc__worker *w, char *err, size_t errlen)
{
    lua_State *L = w->L;
    lsvc__loader_fn(w, "load");
    lua_pushboolean(L, 1);
    lua_pushstring(L, lsvc_service_name(w->svc));
    /* the top level runs with the interrupt (running) and memory_limit */
    w->loading = true;
    lua_State *prev = lsvc__running_swap(w, L);
    int rc = lua_pcall(L, 2, 2, 0);
    lsvc__running_swap(w, prev);
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

/* ---- applying a version ----------------------------------------------------- */

static void free_watched(struct lsvc__load *ld)
{
    for (size_t i = 0; i < ld->nwatched; i++)
        free(ld->watched[i].path);
    free(ld->watched);
    ld->watched = NULL;
    ld->nwatched = 0;
}

/* What the version at info declares, to the service. */
static void configure(lsvc__worker *w, int info, bool first)
{
    lua_State *L = w->L;
    lsvc_service *svc = w->svc;
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
    lua_getfield(L, info, "console");
    w->console_off = lua_toboolean(L, -1) == 0; /* eval.c refuses the console */
    lua_pop(L, 3);
}

/* The C side of the watch: the files the loader now watches (fswatch.c
 * keeps watching until lsvc_fswatch_set replaces the list: no event is
 * lost in between, and a save under way stays known). */
static void take_files(lsvc__worker *w, int info)
{
    lua_State *L = w->L;
    struct lsvc__load *ld = w->ld;
    free_watched(ld);
    lua_getfield(L, info, "modules");
    size_t nf = (size_t)luaL_len(L, -1);
    ld->watched = calloc(nf ? nf : 1, sizeof *ld->watched);
    for (size_t i = 0; ld->watched && i < nf; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        struct lsvc_watched *f = &ld->watched[ld->nwatched];
        f->path = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (!f->path)
            break;
        f->present = stat(f->path, &f->st) == 0;
        ld->nwatched++;
    }
    lua_pop(L, 1);
    ld->settling = false;
}

static void watch_files(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    struct lsvc__load *ld = w->ld;
    char **paths = ld->watched ? malloc((ld->nwatched ? ld->nwatched : 1) * sizeof *paths) : NULL;
    for (size_t i = 0; paths && i < ld->nwatched; i++)
        paths[i] = ld->watched[i].path;
    bool was = ld->fs_notified;
    ld->fs_notified = paths && lsvc_service_options(svc)->watch_interval_ms &&
                      !lsvc_service_options(svc)->watch_poll &&
                      lsvc_fswatch_set(svc, paths, ld->nwatched);
    if (was && !ld->fs_notified)
        lsvc_fswatch_forget(svc); /* the old list goes: this service polls */
    free(paths);
}

void lsvc__load_apply(lsvc__worker *w, int info, bool first)
{
    lua_State *L = w->L;
    info = lua_absindex(L, info);
    configure(w, info, first);
    lua_getfield(L, info, "script");
    if (w->script_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, w->script_ref);
    w->script_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lsvc__loader_fn(w, "commit");
    lua_pushvalue(L, info);
    lua_call(L, 1, 0);
    take_files(w, info);
    if (!first) /* the first version's, once it runs (lsvc__load_begin_watch) */
        watch_files(w);
}

void lsvc__load_free(lsvc__worker *w)
{
    struct lsvc__load *ld = w->ld;
    if (!ld)
        return;
    if (ld->fs_notified)
        lsvc_fswatch_forget(w->svc);
    free_watched(ld);
    free(ld);
    w->ld = NULL;
}

void lsvc__load_close(lsvc__worker *w)
{
    if (w->ld && w->ld->timer_init) {
        uv_close((uv_handle_t *)&w->ld->timer, NULL);
        w->ld->timer_init = false;
    }
}

/* ---- the watch ------------------------------------------------------------------- */

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_mode == b->st_mode;
}

/* told() -> "complete" | "writing" | nil: what the kernel told of the
 * watched files since the last look (fswatch.c); the loader asks after it
 * has looked at them. */
static int l_told(lua_State *L)
{
    lsvc__worker *w = lua_touserdata(L, lua_upvalueindex(1));
    switch (lsvc_fswatch_take(w->svc)) {
    case LSVC_FSWATCH_COMPLETE: lua_pushliteral(L, "complete"); return 1;
    case LSVC_FSWATCH_WRITING: lua_pushliteral(L, "writing"); return 1;
    default: return 0;
    }
}

static bool stat_changed(struct lsvc__load *ld)
{
    bool changed = false;
    for (size_t i = 0; i < ld->nwatched; i++) {
        struct lsvc_watched *f = &ld->watched[i];
        struct stat st;
        bool present = stat(f->path, &st) == 0;
        if (present != f->present || (present && !same_stat(&st, &f->st))) {
            changed = true;
            f->present = present;
            f->st = st;
        }
    }
    return changed;
}

static int poll_files(lsvc__worker *w)
{
    lua_State *L = w->L;
    struct lsvc__load *ld = w->ld;
    if (!stat_changed(ld) && !ld->settling)
        return LSVC__WATCH_NONE; /* nothing new since the last look */
    lsvc__loader_fn(w, "poll");
    if (ld->fs_notified) {
        lua_pushlightuserdata(L, w);
        lua_pushcclosure(L, l_told, 1);
    } else {
        lua_pushnil(L); /* polling: the settle rule alone */
    }
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc), "watch: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return LSVC__WATCH_NONE;
    }
    const char *r = lua_tostring(L, -1);
    int res = !r                          ? LSVC__WATCH_NONE
              : strcmp(r, "changed") == 0 ? LSVC__WATCH_CHANGED
              : strcmp(r, "writing") == 0 ? LSVC__WATCH_WRITING
                                          : LSVC__WATCH_SETTLING;
    lua_pop(L, 1);
    /* settling or held: the next look asks the loader even if the files
     * look the same to stat (a writer's close changes nothing stat sees) */
    ld->settling = res == LSVC__WATCH_SETTLING || res == LSVC__WATCH_WRITING;
    return res;
}

static void on_watch_timer(uv_timer_t *t) { (void)t; /* wakes the loop: the next turn looks */ }

int lsvc__load_watch_step(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    struct lsvc__load *ld = w->ld;
    uint32_t interval = lsvc_service_options(svc)->watch_interval_ms;
    if (!interval)
        return LSVC__WATCH_NONE;
    uint64_t now = lsvc_now_ns();
    int r = LSVC__WATCH_NONE;
    if (ld->fs_notified && lsvc_service_take_fs_kick(svc))
        ld->next_poll_ns = now; /* told of a change: look now */
    if (ld->next_poll_ns && now >= ld->next_poll_ns) {
        r = poll_files(w);
        /* a change settles quickly: look again soon, not a whole interval
         * later; a writer at work: at its close (told), or once the hold
         * is over; told of changes, look only when told */
        if (r == LSVC__WATCH_SETTLING)
            ld->next_poll_ns = now + SETTLE_MS * 1000000u;
        else if (r == LSVC__WATCH_WRITING)
            ld->next_poll_ns = now + (LSVC_FSWATCH_HOLD_MS + 1u) * 1000000u;
        else
            ld->next_poll_ns = ld->fs_notified ? 0 : now + interval * 1000000ull;
        uv_timer_stop(&ld->timer);
    }
    if (ld->next_poll_ns && !uv_is_active((uv_handle_t *)&ld->timer)) {
        uv_update_time(&w->loop);
        uint64_t ms = ld->next_poll_ns > now ? (ld->next_poll_ns - now + 999999) / 1000000u : 0;
        uv_timer_start(&ld->timer, on_watch_timer, ms, 0);
    }
    return r;
}

void lsvc__load_begin_watch(lsvc__worker *w)
{
    struct lsvc__load *ld = w->ld;
    watch_files(w);
    ld->next_poll_ns =
        ld->fs_notified
            ? 0
            : lsvc_now_ns() + (uint64_t)lsvc_service_options(w->svc)->watch_interval_ms * 1000000u;
}
