/*
 * mailslot.c - luasvc.mailslot: mailslots for scripts, over the platform's
 * slots (posix_mailslot.c, win32_mailslot.c).
 *
 *   luasvc.mailslot.create(name [, {group = G}]) -> reader
 *   reader:read([timeout_ms]) -> message | nil, "timeout" | nil, "stopping"
 *   luasvc.mailslot.open(name) -> writer
 *   writer:write(msg) -> true | nil, message, code
 *   :close() on both, also __gc and __close; safe to call twice.
 *
 * Worker thread only (the state's owner). A read waits in slices of 50 ms:
 * on a task's own coroutine it yields to the scheduler between them, so
 * controls are delivered while it waits; elsewhere (a coroutine of the
 * script's own) it blocks the worker, still noticing a stop or a reload
 * within a slice. A write never blocks.
 * Caller mistakes raise; system failures return nil, message, code.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define READER_MT "luasvc.MailslotReader"
#define WRITER_MT "luasvc.MailslotWriter"
#define READ_SLICE_MS 50u

typedef struct reader {
    lsvc_slot *slot; /* NULL once closed */
    char *buf;       /* LSVC_SLOT_MAX bytes */
    char name[96];
} reader;

typedef struct writer {
    lsvc_slot_writer *w; /* NULL once closed */
} writer;

/* Lua's codes for a slot's results: "noreader", ... */
static const char *slot_rc_name(lsvc_slot_rc rc)
{
    switch (rc) {
    case LSVC_SLOT_OK: return "ok";
    case LSVC_SLOT_TIMEOUT: return "timeout";
    case LSVC_SLOT_NOREADER: return "noreader";
    case LSVC_SLOT_FULL: return "full";
    case LSVC_SLOT_TOOLARGE: return "toolarge";
    case LSVC_SLOT_EXISTS: return "exists";
    case LSVC_SLOT_DENIED: return "denied";
    case LSVC_SLOT_TRUNCATED: return "truncated";
    case LSVC_SLOT_MALFORMED: return "malformed";
    default: return "error";
    }
}

/* ---- the Lua binding ------------------------------------------------------ */

static const char *check_name(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    if (!lsvc_name_valid(name))
        luaL_argerror(L, arg, "invalid slot name (" LSVC_NAME_RULE ")");
    return name;
}

static int fail(lua_State *L, const char *msg, lsvc_slot_rc rc)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, slot_rc_name(rc));
    return 3;
}

/* luasvc.mailslot.create(name [, opts]) -> reader | nil, message, code */
static int l_create(lua_State *L)
{
    const char *name = check_name(L, 1);
    const char *group = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "group");
        if (!lua_isnil(L, -1)) {
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, 2, "'group' must be a group name");
            group = lua_tostring(L, -1);
        }
    }
    reader *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, READER_MT);
    r->buf = malloc(LSVC_SLOT_MAX);
    if (!r->buf)
        return luaL_error(L, "out of memory");
    char err[512];
    lsvc_slot_rc rc;
    r->slot = lsvc_slot_create(name, group, &rc, err, sizeof err);
    if (!r->slot)
        return fail(L, err, rc);
    snprintf(r->name, sizeof r->name, "%s", name);
    return 1;
}

static reader *check_reader(lua_State *L)
{
    reader *r = luaL_checkudata(L, 1, READER_MT);
    if (!r->slot)
        luaL_error(L, "attempt to use a closed mailslot reader");
    return r;
}

/* The worker must give the service up: a stop, a reload winding the old
 * run down, or the watchdog's interrupt. */
static bool must_return(lua_State *L) { return lsvc__must_return(L); }

/* The task's own coroutine (run, start, stop, a control handler), where a
 * yield goes to the scheduler; not a coroutine of the script's own. */
static bool on_task(lua_State *L) { return lsvc__can_wait(L); }

static int read_k(lua_State *L, int status, lua_KContext kctx);

/*
 * reader:read([timeout_ms]) -> message | nil, "timeout" | nil, "stopping".
 * No timeout: wait until a message or a stop. Waits in slices; on a task's
 * own coroutine it yields to the scheduler between them, so controls are
 * delivered meanwhile (and while PAUSED, run's read waits until CONTINUE).
 * kctx: the deadline (lsvc_now_ns), 0 for none. Stack: [reader, timeout?].
 */
static int read_slices(lua_State *L, uint64_t due, bool first)
{
    reader *r = check_reader(L);
    char err[512];
    for (;; first = false) {
        if (!first && must_return(L)) {
            lua_pushnil(L);
            lua_pushliteral(L, "stopping");
            return 2;
        }
        uint64_t now = lsvc_now_ns();
        uint64_t left_ms = !due ? READ_SLICE_MS : (due > now ? (due - now) / 1000000u : 0);
        uint32_t slice = left_ms < READ_SLICE_MS ? (uint32_t)left_ms : READ_SLICE_MS;
        if (on_task(L) && lsvc_slot_wait_fd(r->slot) >= 0)
            slice = 0; /* only look: the loop waits (below) */
        size_t len = 0;
        lsvc_slot_rc rc =
            lsvc_slot_read(r->slot, r->buf, LSVC_SLOT_MAX, &len, slice, err, sizeof err);
        if (rc == LSVC_SLOT_OK) {
            lua_pushlstring(L, r->buf, len);
            return 1;
        }
        if (rc != LSVC_SLOT_TIMEOUT)
            return fail(L, err, rc);
        if (due && lsvc_now_ns() >= due) {
            lua_pushnil(L);
            lua_pushliteral(L, "timeout");
            return 2;
        }
        if (on_task(L)) {
            /* POSIX: wait on the loop until the slot is readable (or the
             * deadline); Windows: let the scheduler turn between slices */
            int fd = lsvc_slot_wait_fd(r->slot);
            if (fd < 0)
                return lsvc__yield_turn(L, (lua_KContext)due, read_k);
            uint64_t t = lsvc_now_ns();
            double ms = !due ? -1 : due > t ? (double)(due - t) / 1e6 : 0;
            return lsvc__wait_fd(L, fd, ms, (lua_KContext)due, read_k);
        }
    }
}

/* Resumed by the scheduler (with ctx:sleep's boolean, dropped). */
static int read_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    lua_settop(L, 2);
    return read_slices(L, (uint64_t)kctx, false);
}

static int r_read(lua_State *L)
{
    check_reader(L);
    bool forever = lua_isnoneornil(L, 2);
    lua_Number ms = forever ? 0 : luaL_checknumber(L, 2);
    luaL_argcheck(L, ms >= 0 && ms <= 86400000.0 * 365, 2, "out of range");
    lua_settop(L, 2);
    /* a deadline of 0 means none; a timeout of 0 is "now", never 0 */
    uint64_t due = forever ? 0 : lsvc_now_ns() + (uint64_t)ms * 1000000u + 1;
    return read_slices(L, due, true);
}

/* reader:close() -> nothing; removes the slot. Also __gc and __close. */
static int r_close(lua_State *L)
{
    reader *r = luaL_checkudata(L, 1, READER_MT);
    lsvc_slot_close(r->slot);
    r->slot = NULL;
    free(r->buf);
    r->buf = NULL;
    return 0;
}

static int r_tostring(lua_State *L)
{
    reader *r = luaL_checkudata(L, 1, READER_MT);
    lua_pushfstring(L, "luasvc.MailslotReader (%s%s)", r->name, r->slot ? "" : ", closed");
    return 1;
}

/* luasvc.mailslot.open(name) -> writer | nil, message, code. Succeeds
 * without a reader: each write finds the reader there is at that time. */
static int l_open(lua_State *L)
{
    const char *name = check_name(L, 1);
    writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    w->w = NULL;
    luaL_setmetatable(L, WRITER_MT);
    char err[512];
    w->w = lsvc_slot_open(name, err, sizeof err);
    if (!w->w)
        return fail(L, err, LSVC_SLOT_ERROR);
    return 1;
}

/* writer:write(msg) -> true | nil, message, code. Never blocks: no reader
 * gives "noreader", a reader that does not keep up "full", a message over
 * 65536 bytes "toolarge". */
static int w_write(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, WRITER_MT);
    if (!w->w)
        return luaL_error(L, "attempt to use a closed mailslot writer");
    size_t len;
    const char *msg = luaL_checklstring(L, 2, &len);
    char err[512];
    lsvc_slot_rc rc = lsvc_slot_write(w->w, msg, len, err, sizeof err);
    if (rc != LSVC_SLOT_OK)
        return fail(L, err, rc);
    lua_pushboolean(L, 1);
    return 1;
}

static int w_close(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, WRITER_MT);
    lsvc_slot_writer_close(w->w);
    w->w = NULL;
    return 0;
}

static int w_tostring(lua_State *L)
{
    writer *w = luaL_checkudata(L, 1, WRITER_MT);
    lua_pushfstring(L, "luasvc.MailslotWriter%s", w->w ? "" : " (closed)");
    return 1;
}

static const luaL_Reg reader_methods[] = {{"read", r_read}, {"close", r_close}, {NULL, NULL}};
static const luaL_Reg writer_methods[] = {{"write", w_write}, {"close", w_close}, {NULL, NULL}};
static const luaL_Reg fns[] = {{"create", l_create}, {"open", l_open}, {NULL, NULL}};

static void metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close,
                      lua_CFunction tostring)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

void lsvc__open_mailslot(lua_State *L)
{
    metatable(L, READER_MT, reader_methods, r_close, r_tostring);
    metatable(L, WRITER_MT, writer_methods, w_close, w_tostring);
    luaL_newlib(L, fns);
    lua_pushinteger(L, LSVC_SLOT_MAX);
    lua_setfield(L, -2, "max_message");
}
