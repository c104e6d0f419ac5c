/*
 * httpconn.c - luasvc.http's server connections in C, and the module's
 * preload. A connection's reads go straight into its parser (http.c), its
 * answers are written from here (uv_try_write first, the rest queued), and
 * its task (lua/http.lua) waits here for the next request: Lua is entered
 * once per request, not once per read, wait and write. Worker thread only.
 *
 *   lsvc__open_http(L)          package.preload["luasvc.http"]: lua/http.lua
 *                               (compiled in) run with the core table
 *   core.conn(tcp, parser, opts) -> c   takes over an accepted luv TCP
 *                               handle's reads (opts: header_timeout,
 *                               idle_timeout, send_timeout, in ms)
 *   core.date() -> "Sun, 06 Nov 1994 08:49:37 GMT"   now, for Date:
 *   core.call(f, ...) -> true, results | false, error   a handler's call:
 *                               xpcall(f, debug.traceback, ...) with the
 *                               xpcall guard's rule (an interrupt's error
 *                               as it is); f may wait
 *   c:next() -> msg | nil | false, status, text   waits for the next
 *                               request; nil: the connection ends quietly
 *                               (closed, idle past idle_timeout, closing
 *                               while idle, a stop); false: answer status
 *                               (400, 408, 413, 414, 431) and close;
 *                               answers "100-continue" itself
 *   c:send(s [, s2 [, s3]]) -> boolean   past HIGH_WATER queued, waits
 *                               until the client took it (send_timeout);
 *                               false: the connection is gone
 *   c:answer(status, reason, headers, body, tail, head) -> boolean | nil, why
 *                               a whole answer (httpanswer.c makes its
 *                               text), sent as c:send; nil and why (false:
 *                               a bad header) when what the handler
 *                               returned is not an answer, nothing sent
 *   c:idle_close()              the server closes: next() ends between requests
 *   c:dead() -> boolean, c:kill()   gone (a write failed, or killed)
 *   c:close()                   (and __gc) reads stop, the parser is freed;
 *                               the handle is the script's to close; safe twice
 *
 * The handle stays luv's (lua/http.lua closes it, luv closes it at
 * STOPPED); this file only reads and writes on it. It finds itself from
 * the handle through luv's handle data (`extra`, unused by luv for TCP),
 * and keeps the handle's userdata (luv frees the handle's memory only when
 * that is collected) and the parser as its user values.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <luv/lhandle.h>

#include "private.h"

#define CONN_MT "luasvc.HttpConn"
#define HIGH_WATER 65536u    /* bytes queued to a client before a send waits */
#define READ_HIGH 262144u    /* unparsed bytes: reading stops (a busy handler) */
#define READ_LOW 65536u      /* ... and goes on below this */
#define RBUF_SIZE 65536u     /* the state's read buffer, shared by its connections */
#define HOLD_MAX 4096u       /* a task's small writes held to the turn's end */

typedef struct conn conn;

/* The state's connections' common part (a userdata in the registry): the
 * read buffer, and the connections whose small writes wait for the end
 * of the turn, so that the clients are woken after the tasks of the turn
 * ran, not one by one between them (each such wake-up can preempt the
 * worker on a shared CPU). The price: a task of the same turn that runs
 * long without waiting (at most handler_timeout) delays the answers held
 * before it by that long; it holds the whole service as long anyway. */
typedef struct conns {
    char rbuf[RBUF_SIZE];
    lsvc__worker *w;
    conn *held;
} conns;

/* A queued write: what the socket did not take at once, copied. */
typedef struct wreq {
    uv_write_t req;
    conn *c; /* NULL once the connection let go */
    struct wreq *prev, *next;
    size_t len;
    char data[];
} wreq;

struct conn {
    uv_stream_t *s;   /* NULL once closed */
    lsvc__httpp *p;
    lsvc__waitq wq;   /* the connection's task, waiting in next() or send() */
    wreq *writes;     /* queued, not yet written */
    size_t queued;
    lsvc__httpout out; /* the answer being built */
    uint64_t head_due_ns; /* a head's deadline (header_timeout), 0: none */
    double header_ms, idle_ms, send_ms;
    lsvc__httpp_state waited_in;
    bool reading, eof, dead, closing, draining;
    conns *st;
    char *hold;       /* small writes held to the end of the turn (HOLD_MAX) */
    size_t hold_len;
    conn *hnext;      /* in st->held */
    bool held;
};

static char conns_key; /* registry: the state's conns */

static conn *of_stream(uv_handle_t *h)
{
    luv_handle_t *d = h->data;
    return d ? d->extra : NULL;
}

static void wake(conn *c)
{
    if (c->wq.waiter)
        lsvc__task_wake(c->wq.waiter, LSVC__WOKE_OK);
}

/* ---- reading ---------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    (void)size;
    conn *c = of_stream(h);
    *b = c ? uv_buf_init(c->st->rbuf, RBUF_SIZE) : uv_buf_init(NULL, 0);
}

static void stop_reading(conn *c)
{
    if (c->reading && !uv_is_closing((uv_handle_t *)c->s))
        uv_read_stop(c->s);
    c->reading = false;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = of_stream((uv_handle_t *)s);
    if (!c || n == 0)
        return;
    if (n < 0 || !lsvc__httpp_feed(c->p, b->base, (size_t)n)) {
        c->eof = true; /* the end, an error, or no memory: the connection ends */
        stop_reading(c);
    } else if (lsvc__httpp_buffered(c->p) >= READ_HIGH) {
        stop_reading(c); /* its handler is busy: the client waits */
    }
    wake(c);
}

static void read_again(conn *c)
{
    if (c->reading || c->eof || !c->s || uv_is_closing((uv_handle_t *)c->s) ||
        lsvc__httpp_buffered(c->p) >= READ_LOW)
        return;
    if (uv_read_start(c->s, on_alloc, on_read) == 0)
        c->reading = true;
    else
        c->eof = true;
}

/* ---- writing ---------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    if (c) {
        if (w->prev)
            w->prev->next = w->next;
        else
            c->writes = w->next;
        if (w->next)
            w->next->prev = w->prev;
        c->queued -= w->len;
        if (status < 0)
            c->dead = true;
        if (c->draining && (!c->writes || c->dead))
            wake(c);
    }
    free(w);
}

/* Write the pieces: what the socket takes at once, the rest queued (a
 * copy). false: the connection is gone. */
static bool put_now(conn *c, uv_buf_t *b, unsigned nb)
{
    if (c->dead || !c->s || uv_is_closing((uv_handle_t *)c->s)) {
        c->dead = true;
        return false;
    }
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nb; i++)
        total += b[i].len;
    if (!c->writes) {
        int r = uv_try_write(c->s, b, nb);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN) {
            c->dead = true;
            return false;
        }
    }
    if (done == total)
        return true;
    wreq *w = malloc(sizeof *w + (total - done));
    if (!w) {
        c->dead = true;
        return false;
    }
    size_t at = 0;
    for (unsigned i = 0; i < nb; i++) {
        size_t skip = done > b[i].len ? b[i].len : done;
        done -= skip;
        memcpy(w->data + at, b[i].base + skip, b[i].len - skip);
        at += b[i].len - skip;
    }
    w->len = at;
    uv_buf_t rest = uv_buf_init(w->data, (unsigned)at);
    if (uv_write(&w->req, c->s, &rest, 1, on_written) != 0) {
        free(w);
        c->dead = true;
        return false;
    }
    w->c = c;
    w->prev = NULL;
    w->next = c->writes;
    if (c->writes)
        c->writes->prev = w;
    c->writes = w;
    c->queued += at;
    return true;
}

/* The open connection at index 1. The methods have the metatable as
 * their upvalue: a compare, where luaL_checkudata looks its name up. */
/* Write what c holds. */
static void flush(conn *c)
{
    if (!c->hold_len)
        return;
    uv_buf_t b = uv_buf_init(c->hold, (unsigned)c->hold_len);
    c->hold_len = 0;
    if (!put_now(c, &b, 1))
        wake(c); /* gone: its task ends at once if it waits */
}

/* The end of a turn: what the connections hold is written. */
static void flush_held(void *ud)
{
    conns *st = ud;
    while (st->held) {
        conn *c = st->held;
        st->held = c->hnext;
        c->held = false;
        flush(c);
    }
}

static void unhold(conn *c)
{
    if (!c->held)
        return;
    for (conn **pp = &c->st->held; *pp; pp = &(*pp)->hnext)
        if (*pp == c) {
            *pp = c->hnext;
            break;
        }
    c->held = false;
}

/* Hold small writes of a task in a turn (flush_held writes them when the
 * turn's tasks have run); write anything else at once, after what is held. */
static bool put(conn *c, uv_buf_t *b, unsigned nb)
{
    lsvc__worker *w = c->st->w;
    size_t total = 0;
    for (unsigned i = 0; i < nb; i++)
        total += b[i].len;
    if (!c->dead && c->s && !c->writes && lsvc__current(w) && !w->sched.in_loop &&
        c->hold_len + total <= HOLD_MAX && (c->hold || (c->hold = malloc(HOLD_MAX)))) {
        for (unsigned i = 0; i < nb; i++) {
            memcpy(c->hold + c->hold_len, b[i].base, b[i].len);
            c->hold_len += b[i].len;
        }
        if (!c->held) {
            c->held = true;
            c->hnext = c->st->held;
            c->st->held = c;
        }
        return true;
    }
    flush(c);
    return put_now(c, b, nb);
}

static conn *check_conn(lua_State *L)
{
    conn *c = lua_touserdata(L, 1);
    if (!c || !lua_getmetatable(L, 1) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
        luaL_checkudata(L, 1, CONN_MT); /* raises */
    lua_pop(L, 1);
    if (!c->s)
        luaL_error(L, "the connection is closed");
    return c;
}

/* Suspend the running task on c (its queue), up to ms, then k. */
static int wait_on(lua_State *L, conn *c, double ms, int (*k)(lua_State *, int, lua_KContext))
{
    lsvc__task *t = lsvc__current(lsvc__of(L));
    c->wq.waiter = t;
    t->waiting_on = &c->wq;
    return lsvc__suspend(L, LSVC__WAIT_QUEUE, ms, LSVC__WOKE_OK, 0, k);
}

static int sent_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    (void)kctx;
    conn *c = lua_touserdata(L, 1); /* checked before the wait */
    c->draining = false;
    if (lsvc__woke_of(L) != LSVC__WOKE_OK)
        c->dead = true; /* send_timeout, or the task must wind down */
    lua_pushboolean(L, !c->dead);
    return 1;
}

/* After a put: past the high-water mark, wait until the client took it
 * all (send_timeout). Pushes the outcome. */
static int sent(lua_State *L, conn *c, bool ok)
{
    if (ok && c->queued > HIGH_WATER) {
        lsvc__check_can_wait(L, "http: send");
        if (lsvc__task_must_wind(lsvc__current(lsvc__of(L)))) {
            c->dead = true;
            ok = false;
        } else {
            c->draining = true;
            return wait_on(L, c, c->send_ms, sent_k);
        }
    }
    lua_pushboolean(L, ok);
    return 1;
}

/* c:send(s [, s2 [, s3]]) -> boolean. [-0, +1] */
static int l_send(lua_State *L)
{
    conn *c = check_conn(L);
    uv_buf_t b[3];
    int n = lua_gettop(L) - 1;
    luaL_argcheck(L, n >= 1 && n <= 3, 2, "1 to 3 strings expected");
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = luaL_checklstring(L, i + 2, &len);
        b[i] = uv_buf_init((char *)s, (unsigned)len);
    }
    return sent(L, c, put(c, b, (unsigned)n));
}

/* ---- answers ------------------------------------------------------------------ */

/* core.date() -> now as an HTTP date. [-0, +1] */
static int l_date(lua_State *L)
{
    char d[64];
    lsvc__http_date(time(NULL), d);
    lua_pushstring(L, d);
    return 1;
}

/* c:answer(status, reason, headers, body, tail, head) -> boolean | nil, why. */
static int l_answer(lua_State *L)
{
    conn *c = check_conn(L);
    uv_buf_t b[2];
    int nb = lsvc__http_answer(L, &c->out, b);
    if (nb < 0)
        return 2; /* nil, why */
    return sent(L, c, put(c, b, (unsigned)nb));
}

/* ---- the next request ------------------------------------------------------------ */

static int refused(lua_State *L, int status, const char *text)
{
    lua_pushboolean(L, 0);
    lua_pushinteger(L, status);
    lua_pushstring(L, text);
    return 3;
}

static int ends(lua_State *L)
{
    lua_pushnil(L);
    return 1;
}

static int next_k(lua_State *L, int status, lua_KContext kctx);

/* c:next(), from the start or after a wait. */
static int next_from(lua_State *L, conn *c)
{
    int n = lsvc__httpp_next(L, c->p);
    if (!lua_isnil(L, -1)) {
        if (lua_toboolean(L, -n))
            c->head_due_ns = 0;
        read_again(c);
        return n;
    }
    lua_pop(L, 1);
    lsvc__httpp_state st = lsvc__httpp_where(c->p);
    if (st == LSVC__HTTPP_BODY && lsvc__httpp_continue(c->p)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        put(c, &b, 1);
    }
    if (c->eof || c->dead) {
        if (st != LSVC__HTTPP_IDLE)
            return refused(L, 400, "the connection closed inside a request");
        return ends(L);
    }
    read_again(c);
    double wait = c->idle_ms;
    if (st == LSVC__HTTPP_IDLE && c->closing)
        return ends(L);
    if (st == LSVC__HTTPP_HEAD) {
        uint64_t now = lsvc_now_ns();
        if (!c->head_due_ns)
            c->head_due_ns = now + (uint64_t)(c->header_ms * 1e6);
        wait = c->head_due_ns > now ? (double)(c->head_due_ns - now) / 1e6 : 0;
        if (wait <= 0)
            return refused(L, 408, "header timeout");
    } else {
        c->head_due_ns = 0;
    }
    lsvc__check_can_wait(L, "http: next");
    if (lsvc__task_must_wind(lsvc__current(lsvc__of(L))))
        return ends(L); /* the service stops */
    c->waited_in = st;
    return wait_on(L, c, wait, next_k);
}

static int next_k(lua_State *L, int status, lua_KContext kctx)
{
    static const char *const timeouts[] = {"idle timeout", "head timeout", "body timeout"};
    (void)status;
    (void)kctx;
    conn *c = lua_touserdata(L, 1); /* checked before the wait */
    if (!c->s)
        return ends(L); /* closed meanwhile (a __close of the task's) */
    lsvc__woke woke = lsvc__woke_of(L);
    if (woke == LSVC__WOKE_TIMEOUT && c->waited_in != LSVC__HTTPP_IDLE)
        return refused(L, 408, timeouts[c->waited_in]);
    if (woke != LSVC__WOKE_OK)
        return ends(L); /* idle past idle_timeout, or the service stops */
    return next_from(L, c);
}

/* c:next() -> msg | nothing | false, status, text. */
static int l_next(lua_State *L)
{
    conn *c = check_conn(L);
    lua_settop(L, 1);
    return next_from(L, c);
}

/* ---- calling a handler ---------------------------------------------------------- */

/* debug.traceback(err) as a message handler, except while an interrupt
 * is due (coro.c's xpcall guard: a handler that loops must not hold it). */
static int call_msgh(lua_State *L)
{
    if (lsvc_service_interrupted(lsvc__service(L)))
        return 1;
    const char *msg = lua_tostring(L, 1);
    if (!msg && !lua_isnoneornil(L, 1))
        return 1; /* not a text: as it is, as debug.traceback does */
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int call_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)kctx;
    if (status != LUA_OK && status != LUA_YIELD) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2; /* false, the error */
    }
    lua_pushboolean(L, 1);
    lua_replace(L, 1); /* the message handler's place */
    return lua_gettop(L);
}

/* core.call(f, ...): xpcall without a closure per call; f may wait. */
static int l_call(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_pushcfunction(L, call_msgh);
    lua_insert(L, 1);
    return call_k(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 1, 0, call_k), 0);
}

/* ---- the connection object --------------------------------------------------- */

/* c:idle_close(): the server closes; a connection between requests ends. */
static int l_idle_close(lua_State *L)
{
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    c->closing = true;
    wake(c);
    return 0;
}

static int l_dead(lua_State *L)
{
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    lua_pushboolean(L, c->dead || !c->s);
    return 1;
}

/* c:kill(): its writes fail from now on, its wait ends. */
static int l_kill(lua_State *L)
{
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    c->dead = true;
    wake(c);
    return 0;
}

/* close, __gc, __close: let go of the handle (its reads, its queued
 * writes, which go on without us) and free the parser; safe twice. */
static int l_close(lua_State *L)
{
    conn *c = luaL_checkudata(L, 1, CONN_MT);
    if (!c->s)
        return 0;
    flush(c); /* before the script's shutdown or close */
    unhold(c);
    free(c->hold);
    c->hold = NULL;
    stop_reading(c);
    luv_handle_t *d = c->s->data;
    if (d && d->extra == c)
        d->extra = NULL;
    for (wreq *w = c->writes; w; w = w->next)
        w->c = NULL;
    c->writes = NULL;
    c->queued = 0;
    if (c->wq.waiter) {
        c->wq.waiter->waiting_on = NULL;
        c->wq.waiter = NULL;
    }
    c->s = NULL;
    lsvc__httpp_free(c->p);
    lsvc__httpout_free(&c->out);
    return 0;
}

static double ms_opt(lua_State *L, int t, const char *name)
{
    lua_getfield(L, t, name);
    double ms = lua_tonumber(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, ms > 0, t, name);
    return ms;
}

/* The state's conns (made at the first connection; kept until the state
 * closes, after its last turn). */
static conns *state_conns(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &conns_key) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        conns *st = lua_newuserdatauv(L, sizeof *st, 0);
        st->w = lsvc__of(L);
        st->held = NULL;
        lsvc__sched_after_tasks(st->w, flush_held, st);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &conns_key);
        lua_rawgetp(L, LUA_REGISTRYINDEX, &conns_key);
    }
    conns *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st;
}

/* core.conn(tcp, parser, opts) -> c: reads begin. [-0, +1] */
static int l_conn(lua_State *L)
{
    uv_stream_t **ud = luaL_checkudata(L, 1, "uv_tcp"); /* luv's: a pointer to the handle */
    lsvc__httpp *p = lsvc__httpp_check(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    uv_stream_t *s = *ud;
    luv_handle_t *d = s ? s->data : NULL;
    if (!d || d->extra || uv_is_closing((uv_handle_t *)s))
        return luaL_argerror(L, 1, "an open TCP handle of no other connection expected");
    conn *c = lua_newuserdatauv(L, sizeof *c, 2);
    memset(c, 0, sizeof *c);
    c->header_ms = ms_opt(L, 3, "header_timeout");
    c->idle_ms = ms_opt(L, 3, "idle_timeout");
    c->send_ms = ms_opt(L, 3, "send_timeout");
    c->st = state_conns(L);
    luaL_setmetatable(L, CONN_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 2);
    c->s = s;
    c->p = p;
    c->out.date_t = (time_t)-1;
    d->extra = c;
    read_again(c);
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"next", l_next},     {"send", l_send}, {"answer", l_answer}, {"idle_close", l_idle_close},
    {"dead", l_dead},     {"kill", l_kill}, {"close", l_close},   {NULL, NULL},
};

extern const unsigned char lsvc_lua_http[];
extern const size_t lsvc_lua_http_len;

/* package.preload["luasvc.http"]: lua/http.lua's chunk, given the core
 * table, returns the module. [-0, +1] */
int lsvc__open_http(lua_State *L)
{
    if (luaL_loadbuffer(L, (const char *)lsvc_lua_http, lsvc_lua_http_len, "=[luasvc.http]") !=
        LUA_OK)
        return lua_error(L);
    lsvc__http_core(L);
    if (luaL_newmetatable(L, CONN_MT)) {
        luaL_newlibtable(L, conn_methods);
        lua_pushvalue(L, -2);
        luaL_setfuncs(L, conn_methods, 1); /* check_conn's upvalue */
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_conn);
    lua_setfield(L, -2, "conn");
    lua_pushcfunction(L, l_date);
    lua_setfield(L, -2, "date");
    lua_pushcfunction(L, l_call);
    lua_setfield(L, -2, "call");
    lua_call(L, 1, 1);
    return 1;
}
