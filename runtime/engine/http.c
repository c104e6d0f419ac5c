/*
 * http.c - HTTP/1.1 message parsing for luasvc.http, on llhttp (the parser
 * Node uses, built into the binary from Debian's node-llhttp). Worker
 * thread only: a parser belongs to the Lua state that made it; nothing
 * here blocks or touches the loop. The server's connections drive their
 * parser from C (httpconn.c, which also has the module's preload) through
 * the lsvc__httpp_ functions at the end.
 *
 *   lsvc__http_core(L)                     the table below (lua/http.lua's
 *                                          `core`, with httpconn.c's part)
 *   core.parser(kind, limits) -> p         kind "request" or "response";
 *                                          limits {max_line, max_header,
 *                                          max_headers, max_body} (bytes,
 *                                          count; 0 or absent: the default)
 *   p:feed(data)                           append received bytes
 *   p:next() -> msg | nil | false, status, text
 *                                          the next complete message (a
 *                                          table), nil when more bytes are
 *                                          needed, false and the status to
 *                                          answer (400, 413, 414, 431) when
 *                                          the input is refused; a refused
 *                                          parser stays refused
 *   p:finish() -> msg | nil | false, status, text
 *                                          the peer closed: a response
 *                                          delimited by the close ends here
 *   p:state() -> "idle" | "head" | "body"  what the parser is inside of
 *   p:continue() -> boolean                the message's head asked for
 *                                          "100-continue" (once)
 *   p:buffered() -> bytes                  received, not yet parsed
 *   p:skip_body()                          the next response has no body
 *                                          (an answer to HEAD)
 *
 * A request message is {method, target, path, query, version, headers,
 * body, keep_alive, upgrade}; a response {status, reason, version,
 * headers, body, keep_alive}. Header names are lower-cased; repeated
 * headers are joined with ", ". Bodies (Content-Length or chunked) are
 * decoded whole, within max_body. Pipelined input is parsed one message
 * per next(), in order: llhttp is paused at each message's end.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>

#include "llhttp.h"
#include "private.h"

#define PARSER_MT "luasvc.HttpParser"

/* Defaults: Node's header limit (16 KiB), 8 KiB for a request target, 100
 * header lines, 1 MiB of body. */
#define DEF_MAX_LINE 8192u
#define DEF_MAX_HEADER 16384u
#define DEF_MAX_HEADERS 100u
#define DEF_MAX_BODY 1048576u

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

typedef struct hdr {
    size_t name_off, name_len, val_off, val_len;
} hdr;

struct lsvc__httpp {
    llhttp_t p;
    bool response;
    size_t max_line, max_header, max_body;
    unsigned max_headers;
    sbuf in;
    size_t in_off;
    sbuf url, reason, text, body;
    hdr *hdrs;
    unsigned nhdrs;
    bool value_open;
    size_t head_bytes;
    bool in_msg, headers_done, complete, keep_alive, upgrade, want_continue, skip_body;
    bool dead, nomem;
    int err_status;
    char err[96];
};

static llhttp_settings_t settings;

/* ---- small buffers ------------------------------------------------------ */

static bool sb_add(lsvc__httpp *h, sbuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            h->nomem = true;
            return false;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}

static void sb_free(sbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- llhttp callbacks: collect one message within the limits ------------ */

static lsvc__httpp *of(llhttp_t *p) { return p->data; }

/* Refuse the input with status (HPE_USER ends llhttp's execute). */
static int refuse(lsvc__httpp *h, int status, const char *why)
{
    h->err_status = status;
    snprintf(h->err, sizeof h->err, "%s", why);
    return HPE_USER;
}

static int head_bytes(lsvc__httpp *h, size_t n)
{
    h->head_bytes += n;
    if (h->head_bytes > h->max_header)
        return refuse(h, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    lsvc__httpp *h = of(p);
    h->in_msg = true;
    h->headers_done = h->complete = h->upgrade = h->want_continue = false;
    h->url.len = h->reason.len = h->text.len = h->body.len = 0;
    h->nhdrs = 0;
    h->value_open = false;
    h->head_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    lsvc__httpp *h = of(p);
    if (h->url.len + n > h->max_line)
        return refuse(h, 414, "request target too long");
    int r = head_bytes(h, n);
    if (r)
        return r;
    return sb_add(h, &h->url, at, n) ? 0 : refuse(h, 503, "out of memory");
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
    lsvc__httpp *h = of(p);
    int r = head_bytes(h, n);
    if (r)
        return r;
    return sb_add(h, &h->reason, at, n) ? 0 : refuse(h, 503, "out of memory");
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    lsvc__httpp *h = of(p);
    int r = head_bytes(h, n);
    if (r)
        return r;
    if (h->nhdrs == 0 || h->value_open || h->hdrs[h->nhdrs - 1].val_off) {
        /* a new header line */
        if (h->nhdrs >= h->max_headers)
            return refuse(h, 431, "too many header fields");
        h->hdrs[h->nhdrs++] = (hdr){.name_off = h->text.len};
        h->value_open = false;
    }
    h->hdrs[h->nhdrs - 1].name_len += n;
    return sb_add(h, &h->text, at, n) ? 0 : refuse(h, 503, "out of memory");
}

static int on_header_field_complete(llhttp_t *p)
{
    lsvc__httpp *h = of(p);
    /* mark: the next field piece starts a new line, even for an empty value */
    h->value_open = true;
    h->hdrs[h->nhdrs - 1].val_off = h->text.len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    lsvc__httpp *h = of(p);
    int r = head_bytes(h, n);
    if (r)
        return r;
    h->hdrs[h->nhdrs - 1].val_len += n;
    return sb_add(h, &h->text, at, n) ? 0 : refuse(h, 503, "out of memory");
}

static bool header_is(lsvc__httpp *h, const hdr *e, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    return e->name_len == nl && e->val_len == vl &&
           strncasecmp(h->text.p + e->name_off, name, nl) == 0 &&
           strncasecmp(h->text.p + e->val_off, value, vl) == 0;
}

static int on_headers_complete(llhttp_t *p)
{
    lsvc__httpp *h = of(p);
    h->headers_done = true;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->max_body)
        return refuse(h, 413, "content too large");
    bool has_body = ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) ||
                    (p->flags & F_CHUNKED);
    for (unsigned i = 0; has_body && i < h->nhdrs; i++)
        if (header_is(h, &h->hdrs[i], "expect", "100-continue"))
            h->want_continue = true;
    if (h->response && h->skip_body)
        return 1; /* the answer to HEAD: headers only */
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    lsvc__httpp *h = of(p);
    if (h->body.len + n > h->max_body)
        return refuse(h, 413, "content too large");
    return sb_add(h, &h->body, at, n) ? 0 : refuse(h, 503, "out of memory");
}

static int on_message_complete(llhttp_t *p)
{
    lsvc__httpp *h = of(p);
    h->complete = true;
    h->in_msg = false;
    h->keep_alive = llhttp_should_keep_alive(p) != 0;
    h->upgrade = p->upgrade != 0;
    h->skip_body = false;
    return HPE_PAUSED; /* one message per next(): pipelined input waits */
}

static void settings_once(void)
{
    static bool done;
    if (done)
        return;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_status = on_status;
    settings.on_header_field = on_header_field;
    settings.on_header_field_complete = on_header_field_complete;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    done = true; /* the same values on every thread: a benign first race */
}

/* ---- the message as a Lua table ----------------------------------------- */

/* Push the headers table: lower-cased names, repeats joined with ", ". */
static void push_headers(lua_State *L, lsvc__httpp *h)
{
    lua_createtable(L, 0, (int)h->nhdrs);
    char name[256];
    for (unsigned i = 0; i < h->nhdrs; i++) {
        const hdr *e = &h->hdrs[i];
        size_t nl = e->name_len < sizeof name ? e->name_len : sizeof name - 1;
        for (size_t k = 0; k < nl; k++)
            name[k] = (char)tolower((unsigned char)h->text.p[e->name_off + k]);
        lua_pushlstring(L, name, nl);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, h->text.p + e->val_off, e->val_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, h->text.p + e->val_off, e->val_len);
        }
        lua_rawset(L, -3);
    }
}

static void push_version(lua_State *L, const llhttp_t *p)
{
    char v[3] = {(char)('0' + p->http_major % 10), '.', (char)('0' + p->http_minor % 10)};
    lua_pushlstring(L, v, sizeof v);
}

/* The message's field names, made once per state and kept in the
 * registry: a server makes a message per request, and lua_setfield looks
 * its C string up each time. */
enum { K_METHOD = 1, K_TARGET, K_PATH, K_QUERY, K_UPGRADE, K_VERSION, K_HEADERS, K_BODY,
       K_KEEP_ALIVE, K_STATUS, K_REASON, K_N };
static const char *const key_names[K_N] = {NULL,      "method",  "target",  "path",
                                           "query",   "upgrade", "version", "headers",
                                           "body",    "keep_alive", "status", "reason"};
static char keys_key;

/* Push the table of field names; returns its index. [-0, +1] */
static int push_keys(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &keys_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, K_N - 1, 0);
        for (int i = 1; i < K_N; i++) {
            lua_pushstring(L, key_names[i]);
            lua_rawseti(L, -2, i);
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &keys_key);
    }
    return lua_gettop(L);
}

/* Push keys[k], the name of the field whose value follows. [-0, +1] */
static void key(lua_State *L, int keys, int k) { lua_rawgeti(L, keys, k); }

/* message[name] = value: the two on top; the message is just above keys. */
static void set(lua_State *L, int keys) { lua_rawset(L, keys + 1); }

static void push_request_line(lua_State *L, lsvc__httpp *h, int keys)
{
    key(L, keys, K_METHOD);
    lua_pushstring(L, llhttp_method_name((llhttp_method_t)h->p.method));
    set(L, keys);
    const char *u = h->url.p ? h->url.p : "";
    const char *q = memchr(u, '?', h->url.len);
    size_t plen = q ? (size_t)(q - u) : h->url.len;
    key(L, keys, K_PATH);
    lua_pushlstring(L, u, plen);
    if (q) {
        set(L, keys);
        key(L, keys, K_TARGET);
        lua_pushlstring(L, u, h->url.len);
    } else { /* the target is the path: the same string, no second copy */
        key(L, keys, K_TARGET);
        lua_pushvalue(L, -2);
        set(L, keys);
    }
    set(L, keys);
    if (q) {
        key(L, keys, K_QUERY);
        lua_pushlstring(L, q + 1, h->url.len - plen - 1);
        set(L, keys);
    }
    key(L, keys, K_UPGRADE);
    lua_pushboolean(L, h->upgrade);
    set(L, keys);
}

static void push_message(lua_State *L, lsvc__httpp *h)
{
    int keys = push_keys(L);
    lua_createtable(L, 0, 10);
    if (h->response) {
        key(L, keys, K_STATUS);
        lua_pushinteger(L, h->p.status_code);
        set(L, keys);
        key(L, keys, K_REASON);
        lua_pushlstring(L, h->reason.p ? h->reason.p : "", h->reason.len);
        set(L, keys);
    } else {
        push_request_line(L, h, keys);
    }
    key(L, keys, K_VERSION);
    push_version(L, &h->p);
    set(L, keys);
    key(L, keys, K_HEADERS);
    push_headers(L, h);
    set(L, keys);
    key(L, keys, K_BODY);
    lua_pushlstring(L, h->body.p ? h->body.p : "", h->body.len);
    set(L, keys);
    key(L, keys, K_KEEP_ALIVE);
    lua_pushboolean(L, h->keep_alive && !h->upgrade);
    set(L, keys);
    lua_remove(L, keys);
}

/* ---- the parser object -------------------------------------------------- */

static lsvc__httpp *check(lua_State *L) { return lsvc__httpp_check(L, 1); }

static size_t limit(lua_State *L, int t, const char *field, size_t def)
{
    if (lua_getfield(L, t, field) == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    lua_Integer v = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) && !(lua_isnumber(L, -1) && v == lua_tonumber(L, -1)))
        luaL_error(L, "bad limit '%s' (an integer expected)", field);
    if (v < 0)
        luaL_error(L, "bad limit '%s' (%d: must not be negative)", field, (int)v);
    lua_pop(L, 1);
    return v == 0 ? def : (size_t)v;
}

/* core.parser(kind [, limits]) -> parser. [-0, +1] */
static int l_parser(lua_State *L)
{
    static const char *const kinds[] = {"request", "response", NULL};
    int kind = luaL_checkoption(L, 1, NULL, kinds);
    bool have = !lua_isnoneornil(L, 2);
    if (have)
        luaL_checktype(L, 2, LUA_TTABLE);
    size_t max_line = have ? limit(L, 2, "max_line", DEF_MAX_LINE) : DEF_MAX_LINE;
    size_t max_header = have ? limit(L, 2, "max_header", DEF_MAX_HEADER) : DEF_MAX_HEADER;
    size_t max_headers = have ? limit(L, 2, "max_headers", DEF_MAX_HEADERS) : DEF_MAX_HEADERS;
    size_t max_body = have ? limit(L, 2, "max_body", DEF_MAX_BODY) : DEF_MAX_BODY;
    if (max_headers > 65536)
        max_headers = 65536;
    lsvc__httpp *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    luaL_setmetatable(L, PARSER_MT);
    h->hdrs = malloc(max_headers * sizeof *h->hdrs);
    if (!h->hdrs)
        return luaL_error(L, "not enough memory");
    h->response = kind == 1;
    h->max_line = max_line;
    h->max_header = max_header;
    h->max_headers = (unsigned)max_headers;
    h->max_body = max_body;
    settings_once();
    llhttp_init(&h->p, h->response ? HTTP_RESPONSE : HTTP_REQUEST, &settings);
    h->p.data = h;
    return 1;
}

bool lsvc__httpp_feed(lsvc__httpp *h, const char *s, size_t n)
{
    if (h->in_off == h->in.len) {
        h->in.len = h->in_off = 0;
    } else if (h->in_off > 65536 && h->in_off * 2 > h->in.len) {
        memmove(h->in.p, h->in.p + h->in_off, h->in.len - h->in_off);
        h->in.len -= h->in_off;
        h->in_off = 0;
    }
    return sb_add(h, &h->in, s, n);
}

/* p:feed(data). [-0, +0] */
static int l_feed(lua_State *L)
{
    lsvc__httpp *h = check(L);
    size_t n;
    const char *s = luaL_checklstring(L, 2, &n);
    if (!lsvc__httpp_feed(h, s, n))
        return luaL_error(L, "not enough memory");
    return 0;
}

static int push_refused(lua_State *L, lsvc__httpp *h)
{
    lua_pushboolean(L, 0);
    lua_pushinteger(L, h->err_status);
    lua_pushstring(L, h->err);
    return 3;
}

/* After llhttp returned err: a message, a need for more, or a refusal. */
static int outcome(lua_State *L, lsvc__httpp *h, llhttp_errno_t err)
{
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE || (err == HPE_OK && h->complete)) {
        if (err != HPE_OK) {
            const char *pos = llhttp_get_error_pos(&h->p);
            if (pos && h->in.p && pos >= h->in.p && pos <= h->in.p + h->in.len)
                h->in_off = (size_t)(pos - h->in.p);
            if (err == HPE_PAUSED)
                llhttp_resume(&h->p);
            else /* an upgrade: nothing after it is HTTP */
                h->dead = true, h->err_status = 400, snprintf(h->err, sizeof h->err, "upgraded");
        }
        h->complete = false;
        push_message(L, h);
        return 1;
    }
    if (err == HPE_OK) {
        lua_pushnil(L);
        return 1;
    }
    h->dead = true;
    if (!h->err_status) {
        h->err_status = 400;
        const char *r = llhttp_get_error_reason(&h->p);
        snprintf(h->err, sizeof h->err, "bad request: %s", r ? r : llhttp_errno_name(err));
    }
    return push_refused(L, h);
}

int lsvc__httpp_next(lua_State *L, lsvc__httpp *h)
{
    if (h->dead)
        return push_refused(L, h);
    if (h->in_off >= h->in.len) {
        lua_pushnil(L);
        return 1;
    }
    const char *at = h->in.p + h->in_off;
    size_t n = h->in.len - h->in_off;
    llhttp_errno_t err = llhttp_execute(&h->p, at, n);
    if (err == HPE_OK)
        h->in_off = h->in.len;
    if (h->nomem && !h->err_status)
        refuse(h, 503, "out of memory");
    return outcome(L, h, err);
}

/* p:next() -> msg | nil | false, status, text. [-0, +1|3] */
static int l_next(lua_State *L) { return lsvc__httpp_next(L, check(L)); }

/* p:finish(): the peer closed its side. [-0, +1|3] */
static int l_finish(lua_State *L)
{
    lsvc__httpp *h = check(L);
    if (h->dead)
        return push_refused(L, h);
    llhttp_errno_t err = llhttp_finish(&h->p);
    if (err == HPE_OK && !h->complete) {
        if (h->in_msg) {
            h->dead = true;
            h->err_status = 400;
            snprintf(h->err, sizeof h->err, "the connection closed inside a message");
            return push_refused(L, h);
        }
        lua_pushnil(L);
        return 1;
    }
    if (err == HPE_PAUSED) /* the message complete at the close: no position */
        err = HPE_OK;
    return outcome(L, h, err);
}

lsvc__httpp_state lsvc__httpp_where(const lsvc__httpp *h)
{
    if (h->in_msg)
        return h->headers_done ? LSVC__HTTPP_BODY : LSVC__HTTPP_HEAD;
    return h->in_off < h->in.len ? LSVC__HTTPP_HEAD : LSVC__HTTPP_IDLE;
}

/* p:state() -> "idle" | "head" | "body". [-0, +1] */
static int l_state(lua_State *L)
{
    static const char *const names[] = {"idle", "head", "body"};
    lua_pushstring(L, names[lsvc__httpp_where(check(L))]);
    return 1;
}

bool lsvc__httpp_continue(lsvc__httpp *h)
{
    bool want = h->want_continue && h->in_msg;
    h->want_continue = false;
    return want;
}

/* p:continue() -> boolean: true once when the head asked for 100-continue. */
static int l_continue(lua_State *L)
{
    lua_pushboolean(L, lsvc__httpp_continue(check(L)));
    return 1;
}

size_t lsvc__httpp_buffered(const lsvc__httpp *h) { return h->in.len - h->in_off; }

static int l_buffered(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)lsvc__httpp_buffered(check(L)));
    return 1;
}

static int l_skip_body(lua_State *L)
{
    check(L)->skip_body = true;
    return 0;
}

lsvc__httpp *lsvc__httpp_check(lua_State *L, int i)
{
    lsvc__httpp *h = luaL_checkudata(L, i, PARSER_MT);
    if (!h->hdrs)
        luaL_error(L, "the parser is closed");
    return h;
}

void lsvc__httpp_free(lsvc__httpp *h)
{
    free(h->hdrs);
    h->hdrs = NULL;
    sb_free(&h->in);
    sb_free(&h->url);
    sb_free(&h->reason);
    sb_free(&h->text);
    sb_free(&h->body);
}

/* close, __gc, __close: frees the buffers; safe twice. */
static int l_close(lua_State *L)
{
    lsvc__httpp_free(luaL_checkudata(L, 1, PARSER_MT));
    return 0;
}

static const luaL_Reg parser_methods[] = {
    {"feed", l_feed},         {"next", l_next},         {"finish", l_finish},
    {"state", l_state},       {"continue", l_continue}, {"buffered", l_buffered},
    {"skip_body", l_skip_body}, {"close", l_close},     {NULL, NULL},
};

/* Push the core table lua/http.lua is given. [-0, +1] */
static void push_core(lua_State *L)
{
    if (luaL_newmetatable(L, PARSER_MT)) {
        luaL_newlib(L, parser_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__close");
        lua_pushliteral(L, PARSER_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, l_parser);
    lua_setfield(L, -2, "parser");
    lua_pushfstring(L, "%d.%d.%d", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    lua_setfield(L, -2, "llhttp_version");
}

/* The core table without httpconn.c's part (the fuzz target's). [-0, +1] */
int lsvc__http_core(lua_State *L)
{
    push_core(L);
    return 1;
}
