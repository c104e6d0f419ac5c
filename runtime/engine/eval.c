/*
 * eval.c - a console's eval (luasvc eval, attach): a chunk a client sent,
 * run inside the service's Lua state as a task of the eval kind, which the
 * lane delivers in the controls' order and which holds the lane while it
 * lives (no handler runs meanwhile, nor it during one). Worker thread
 * only, but for the client's hang-up (on_gone's async, any thread).
 *
 * The chunk is compiled as text only ("return " .. chunk first, as lua.c
 * does, so that an expression shows its value), with an environment of its
 * own over the script's globals (reads fall through to _G, writes go to
 * _G) that adds `ctx` (also the chunk's `...`) and a `print` whose lines
 * go to the client. It runs as the eval kind: it may wait (ctx:sleep,
 * ctx:await, a queue), it is sliced (the loop turns every millisecond of
 * its running: run, tasks and callbacks go on), its running time is
 * within handler_timeout (a budget: past it, the interrupt), and so is
 * its whole life, waits included (a timer here: past it, it ends). PAUSED
 * does not hold it, nor does it let run go on. Its end is answered to
 * the client in every case (the kind's `ended`): the values it returned,
 * its error and traceback, or why it was ended (the client went away, the
 * service stops, its time ran out). Each eval is logged at info: who, its
 * first line, how it ended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define CHUNK_NAME "=console"

typedef struct lsvc__eval {
    lsvc__worker *w;
    lsvc_console *con;
    lsvc__task *task;
    struct lsvc__eval **link; /* print's link to it (a userdata): NULL at its end */
    int link_ref;             /* keeps the link alive until then */
    uv_timer_t timer;         /* its whole life: handler_timeout */
    uv_async_t gone;          /* the client went away (any thread) */
    int open_handles;         /* freed when both have closed */
    bool answered;            /* its last frame was put */
    const char *why;          /* why it was ended, when it was */
    char why_buf[96];
    uint64_t t0;
    char first[72]; /* its first line, for the log */
} lsvc__eval;

/* ---- the answer and the log ------------------------------------------------ */

static void first_line(const char *chunk, size_t len, char *out, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len && (chunk[i] == ' ' || chunk[i] == '\t' || chunk[i] == '\n'))
        i++;
    for (; i < len && chunk[i] != '\n' && n + 4 < cap; i++)
        out[n++] = (unsigned char)chunk[i] < 0x20 || chunk[i] == 0x7f ? '?' : chunk[i];
    if (i < len) /* more lines, or a longer one */
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
}

static void log_eval(lsvc__worker *w, lsvc_console *c, const char *first, const char *outcome)
{
    lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "console: eval by %s: `%s`: %s",
             lsvc_console_who(c), first, outcome);
}

/* The error frame (text, a newline added where it has none) and the end. */
static void answer_error(lsvc_console *c, const char *text)
{
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        lsvc_console_put(c, LSVC_CON_ERROR, text, n);
    else {
        lsvc__text t = {0};
        lsvc__text_add(&t, text, n);
        lsvc__text_add(&t, "\n", 1);
        lsvc_console_put(c, LSVC_CON_ERROR, t.p ? t.p : "\n", t.p ? t.len : 1);
        lsvc__text_free(&t);
    }
    lsvc_console_put(c, LSVC_CON_DONE, "1", 1);
    lsvc_console_end(c);
}

void lsvc__eval_refuse(lsvc__worker *w, lsvc_console *c, const char *why)
{
    size_t len;
    char first[72];
    const char *chunk = lsvc_console_chunk(c, &len);
    first_line(chunk ? chunk : "", chunk ? len : 0, first, sizeof first);
    answer_error(c, why);
    char outcome[300];
    snprintf(outcome, sizeof outcome, "refused: %s", why);
    log_eval(w, c, first, outcome);
    lsvc_console_unref(c);
}

/* ---- print, for the chunk ---------------------------------------------------- */

/* print(...) as the base library's, its line to the client while the eval
 * lives (dropped once the client went); afterwards (a function the chunk
 * left behind) to the script's print. Upvalue 1: the link (a userdata holding the eval or NULL). */
static int console_print(lua_State *L)
{
    lsvc__eval *ev = *(lsvc__eval **)lua_touserdata(L, lua_upvalueindex(1));
    if (ev && lsvc_console_gone(ev->con))
        return 0; /* its client went: the eval ends at its next turn */
    if (!ev) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
        lua_getfield(L, -1, "print");
        lua_replace(L, -2);
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 0);
        return 0;
    }
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL); /* __tostring runs here, in the chunk's time */
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    lsvc_console_put(ev->con, LSVC_CON_PRINT, s, len);
    return 0;
}

/* The chunk's environment: {ctx, print} over _G (reads through, writes
 * to _G). Pushed. */
static void push_env(lsvc__worker *w, int link)
{
    lua_State *L = w->L;
    link = lua_absindex(L, link);
    lua_createtable(L, 0, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    lua_setfield(L, -2, "ctx");
    lua_pushvalue(L, link);
    lua_pushcclosure(L, console_print, 1);
    lua_setfield(L, -2, "print");
    lua_createtable(L, 0, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
}

/* ---- the task ----------------------------------------------------------------- */

/* The message handler: the error's text (a non-string through its
 * __tostring, else its type) and the traceback. */
static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    size_t n; /* its last line is eval.c's own frame: "[C]: in ?" */
    const char *tb = lua_tolstring(L, -1, &n);
    static const char own[] = "\n\t[C]: in ?";
    if (n >= sizeof own - 1 && strcmp(tb + n - (sizeof own - 1), own) == 0)
        lua_pushlstring(L, tb, n - (sizeof own - 1));
    return 1;
}

/* The chunk ended (status): its values or its error to the client. Stack:
 * [link, msgh, results...] or [link, msgh, error]. */
static int eval_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)kctx;
    lsvc__eval *ev = *(lsvc__eval **)lua_touserdata(L, 1);
    if (!ev)
        return 0;
    lsvc__worker *w = ev->w;
    char outcome[300];
    bool ok = status == LUA_OK || status == LUA_YIELD;
    if (ok) {
        for (int i = 3; i <= lua_gettop(L); i++) {
            lsvc__text t = {0};
            lsvc__show(L, i, &t);
            lsvc__text_add(&t, "\n", 1);
            lsvc_console_put(ev->con, LSVC_CON_RESULT, t.p ? t.p : "\n", t.p ? t.len : 1);
            lsvc__text_free(&t);
        }
        lsvc_console_put(ev->con, LSVC_CON_DONE, "0", 1);
        snprintf(outcome, sizeof outcome, "ok (%.1f ms)", (lsvc_now_ns() - ev->t0) / 1e6);
    } else {
        const char *err = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(no message)";
        lsvc__text t = {0};
        if (lsvc_service_interrupted(w->svc) && !lsvc_service_stopping(w->svc))
            lsvc__text_printf(&t, "the eval ran past handler_timeout (%u ms): interrupted\n",
                              w->handler_timeout_ms);
        lsvc__text_add(&t, err, strlen(err));
        lsvc__text_add(&t, "\n", 1);
        lsvc_console_put(ev->con, LSVC_CON_ERROR, t.p ? t.p : "\n", t.p ? t.len : 1);
        lsvc_console_put(ev->con, LSVC_CON_DONE, "1", 1);
        size_t n = strcspn(t.p ? t.p : "", "\n");
        snprintf(outcome, sizeof outcome, "error: %.*s", (int)(n < 200 ? n : 200),
                 t.p ? t.p : "");
        lsvc__text_free(&t);
    }
    lsvc_console_end(ev->con);
    ev->answered = true;
    log_eval(w, ev->con, ev->first, outcome);
    return 0;
}

/* The task's function. Stack: [link, chunk]; the chunk gets ctx. */
static int eval_main(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    lua_pushcfunction(L, msgh);
    lua_insert(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    int status = lua_pcallk(L, 1, LUA_MULTRET, 2, 0, eval_k);
    return eval_k(L, status, 0);
}

/* ---- its end, however it comes ------------------------------------------------ */

static void handle_closed(uv_handle_t *h)
{
    lsvc__eval *ev = h->data;
    if (--ev->open_handles == 0)
        free(ev);
}

/* The eval kind's `ended`: whatever it holds outside Lua is let go, and a
 * client not answered yet is told why. */
static void eval_ended(lsvc__task *t)
{
    lsvc__eval *ev = t->ud;
    lsvc__worker *w = ev->w;
    if (!ev->answered) {
        const char *why = ev->why;
        if (!why && lsvc_service_stopping(w->svc))
            why = "the service is stopping";
        if (!why && !t->budget_ns) { /* its budget of running time is spent */
            snprintf(ev->why_buf, sizeof ev->why_buf,
                     "it ran past handler_timeout (%u ms): interrupted", w->handler_timeout_ms);
            why = ev->why_buf;
        }
        if (!why) /* the lane's answer to a deadline (a control pending behind it) */
            why = "a deadline passed while it held the controls back: interrupted";
        char text[300];
        snprintf(text, sizeof text, "the eval was ended before it finished: %s", why);
        answer_error(ev->con, text);
        log_eval(w, ev->con, ev->first, text + 9); /* "ended before ..." */
    }
    lsvc_console_set_writer(ev->con, NULL, NULL); /* no more calls of on_gone */
    lsvc_console_unref(ev->con);
    *ev->link = NULL; /* a print left behind goes to the script's print */
    luaL_unref(w->L, LUA_REGISTRYINDEX, ev->link_ref);
    ev->task = NULL;
    uv_close((uv_handle_t *)&ev->timer, handle_closed);
    uv_close((uv_handle_t *)&ev->gone, handle_closed);
}

static const lsvc__kind eval_kind = {
    .name = "eval",
    .can_wait = true,
    .winds_down = true,
    .holds_lane = true,
    .sliced = true,
    .timing = LSVC__TIMED_BUDGET,
    .victim = LSVC__VICTIM_HANDLER,
    .ended = eval_ended,
};

/* End the eval now, unless it is the code running (it then ends by what
 * follows: its output refused, its budget). */
static void end_eval(lsvc__eval *ev, const char *why)
{
    if (!ev->task || lsvc__current(ev->w) == ev->task)
        return;
    ev->why = why;
    lsvc__task_end(ev->task);
}

static void on_timer(uv_timer_t *tm)
{
    lsvc__eval *ev = tm->data;
    snprintf(ev->why_buf, sizeof ev->why_buf, "it did not finish within handler_timeout (%u ms)",
             ev->w->handler_timeout_ms);
    end_eval(ev, ev->why_buf);
}

static void on_gone_async(uv_async_t *a) { end_eval(a->data, "the client went away"); }

/* The console's writer wake: the client is gone (the endpoint's thread,
 * under the console's mutex): bounded. */
static void on_gone(void *ud) { uv_async_send(&((lsvc__eval *)ud)->gone); }

/* ---- its beginning -------------------------------------------------------------- */

/* Compile the chunk as an expression first, then as statements; push the
 * function, or return false with the message pushed. */
static bool compile(lua_State *L, const char *chunk, size_t len)
{
    if (len && chunk[0] == '=') { /* =expr, as lua 5.3's REPL */
        chunk++;
        len--;
    }
    char *ret = malloc(len + 8);
    if (ret) {
        memcpy(ret, "return ", 7);
        memcpy(ret + 7, chunk, len);
        int rc = luaL_loadbufferx(L, ret, len + 7, CHUNK_NAME, "t");
        free(ret);
        if (rc == LUA_OK)
            return true;
        lua_pop(L, 1);
    }
    return luaL_loadbufferx(L, chunk, len, CHUNK_NAME, "t") == LUA_OK;
}

static lsvc__eval *eval_new(lsvc__worker *w, lsvc_console *c)
{
    lsvc__eval *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    if (uv_async_init(&w->loop, &ev->gone, on_gone_async) != 0) {
        free(ev);
        return NULL;
    }
    uv_timer_init(&w->loop, &ev->timer);
    ev->timer.data = ev->gone.data = ev; /* the runtime's own: never luv's (uvlua.c) */
    ev->open_handles = 2;
    ev->w = w;
    ev->con = c;
    ev->t0 = lsvc_now_ns();
    return ev;
}

lsvc__task *lsvc__eval_begin(lsvc__worker *w, lsvc_console *c)
{
    lua_State *L = w->L;
    if (w->console_off) {
        lsvc__eval_refuse(w, c, "the service's script refuses the console (console = false)");
        return NULL;
    }
    if (lsvc_service_stopping(w->svc)) {
        lsvc__eval_refuse(w, c, "the service is stopping");
        return NULL;
    }
    size_t len;
    const char *chunk = lsvc_console_chunk(c, &len);
    if (!chunk)
        chunk = "", len = 0;
    if (!lua_checkstack(L, 8) || !compile(L, chunk, len)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "not enough memory");
        lua_pop(L, 1);
        lsvc__eval_refuse(w, c, msg);
        return NULL;
    }
    lsvc__eval *ev = eval_new(w, c);
    if (!ev) {
        lua_pop(L, 1);
        lsvc__eval_refuse(w, c, "not enough memory");
        return NULL;
    }
    first_line(chunk, len, ev->first, sizeof ev->first);
    /* [chunk] -> [eval_main, link, chunk] with the chunk's _ENV set */
    ev->link = lua_newuserdatauv(L, sizeof *ev->link, 0);
    *ev->link = ev;
    lua_pushvalue(L, -1);
    ev->link_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    push_env(w, -1);
    if (!lua_setupvalue(L, -3, 1)) /* the main chunk's one upvalue: _ENV */
        lua_pop(L, 1);
    lua_pushcfunction(L, eval_main); /* [chunk, link, main] */
    lua_insert(L, -3);               /* [main, chunk, link] */
    lua_rotate(L, -2, 1);            /* [main, link, chunk] */
    lsvc__task *t = lsvc__task_new(w, L, &eval_kind, 2, "eval");
    t->ud = ev;
    t->budget_ns = (uint64_t)w->handler_timeout_ms * 1000000u;
    ev->task = t;
    lsvc__coro_slice(t->co);
    uv_timer_start(&ev->timer, on_timer, w->handler_timeout_ms, 0);
    lsvc_console_set_writer(c, on_gone, ev);
    return t;
}
