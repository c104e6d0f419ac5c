/*
 * evalshow.c - a value as a console shows it (eval.c): a string as it is
 * at the top and quoted inside a table, numbers as Lua writes them, a
 * table nested and indented, its sequence first and then its other keys
 * sorted; a function, userdata or thread by its type and address. Bounded
 * everywhere: depth (deeper tables as "{...}"), entries per table, a
 * string's length inside a table, the whole text; a table met again on
 * its own path is "<cycle>". Raw access only (lua_next, lua_rawlen): no
 * metamethod runs, so showing a value runs no Lua, cannot fail in Lua and
 * is not the script's to slow down. Worker thread only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define SHOW_DEPTH 6     /* nested tables shown */
#define SHOW_ENTRIES 200 /* entries of one table */
#define SHOW_STRING 400  /* bytes of a string inside a table */

void lsvc__text_add(lsvc__text *t, const char *s, size_t n)
{
    size_t max = t->max ? t->max : LSVC__TEXT_MAX;
    if (t->len + n > max) {
        t->cut = true;
        n = t->len < max ? max - t->len : 0;
    }
    if (!n)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->cut = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void lsvc__text_printf(lsvc__text *t, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        lsvc__text_add(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void lsvc__text_free(lsvc__text *t)
{
    free(t->p);
    *t = (lsvc__text){0};
}

static void add_str(lsvc__text *t, const char *s) { lsvc__text_add(t, s, strlen(s)); }

static void indent(lsvc__text *t, int depth)
{
    for (int i = 0; i < depth; i++)
        add_str(t, "  ");
}

/* s quoted as Lua would read it back, cut at SHOW_STRING bytes. */
static void quoted(lsvc__text *t, const char *s, size_t n)
{
    size_t shown = n > SHOW_STRING ? SHOW_STRING : n;
    add_str(t, "\"");
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (c == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof esc, "\\%u", c);
        else {
            lsvc__text_add(t, (const char *)&s[i], 1);
            continue;
        }
        add_str(t, esc);
    }
    add_str(t, "\"");
    if (shown < n)
        lsvc__text_printf(t, "...(%zu bytes)", n);
}

/* A scalar (or anything not a table) at idx; top: a string as it is. */
static void scalar(lua_State *L, int idx, bool top, lsvc__text *t)
{
    size_t n;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: add_str(t, "nil"); break;
    case LUA_TBOOLEAN: add_str(t, lua_toboolean(L, idx) ? "true" : "false"); break;
    case LUA_TNUMBER: {
        lua_pushvalue(L, idx); /* tolstring converts in place: a copy */
        const char *s = lua_tolstring(L, -1, &n);
        lsvc__text_add(t, s, n);
        lua_pop(L, 1);
        break;
    }
    case LUA_TSTRING: {
        const char *s = lua_tolstring(L, idx, &n);
        if (top)
            lsvc__text_add(t, s, n);
        else
            quoted(t, s, n);
        break;
    }
    default:
        lsvc__text_printf(t, "%s: %p", luaL_typename(L, idx), lua_topointer(L, idx));
        break;
    }
}

static bool is_name(const char *s, size_t n)
{
    static const char *const reserved[] = {
        "and",   "break", "do",     "else", "elseif", "end",   "false", "for",
        "function", "goto", "if",   "in",   "local",  "nil",   "not",   "or",
        "repeat", "return", "then", "true", "until",  "while", NULL};
    if (!n || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    for (int i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
            return false;
    return true;
}

typedef struct show_state {
    const void *path[SHOW_DEPTH + 1];
    int depth;
} show_state;

static void value(lua_State *L, int idx, show_state *st, lsvc__text *t);

/* One entry "key = value" (the key at -2, the value at -1) into e. */
static void entry(lua_State *L, show_state *st, lsvc__text *e)
{
    size_t n = 0;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &n) : NULL;
    if (k && is_name(k, n)) {
        lsvc__text_add(e, k, n);
    } else {
        add_str(e, "[");
        scalar(L, -2, false, e);
        add_str(e, "]");
    }
    add_str(e, " = ");
    value(L, lua_gettop(L), st, e);
}

static int by_text(const void *a, const void *b)
{
    const lsvc__text *x = a, *y = b;
    return strcmp(x->p ? x->p : "", y->p ? y->p : "");
}

/* The table at idx: its sequence, then its other keys sorted. */
static void table(lua_State *L, int idx, show_state *st, lsvc__text *t)
{
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < st->depth; i++)
        if (st->path[i] == self) {
            add_str(t, "<cycle>");
            return;
        }
    if (st->depth >= SHOW_DEPTH || !lua_checkstack(L, 8)) {
        add_str(t, "{...}");
        return;
    }
    lua_Integer seq = (lua_Integer)lua_rawlen(L, idx);
    size_t count = 0, nkeys = 0, more = 0;
    lsvc__text *keys = calloc(SHOW_ENTRIES, sizeof *keys);
    st->path[st->depth++] = self;
    add_str(t, "{\n");
    for (lua_Integer i = 1; i <= seq; i++, count++) {
        if (count >= SHOW_ENTRIES) {
            more += (size_t)(seq - i + 1);
            break;
        }
        lua_rawgeti(L, idx, i);
        indent(t, st->depth);
        value(L, lua_gettop(L), st, t);
        add_str(t, ",\n");
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        bool in_seq = lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
                      lua_tointeger(L, -2) <= seq;
        if (!in_seq && keys && count < SHOW_ENTRIES) {
            entry(L, st, &keys[nkeys++]);
            count++;
        } else if (!in_seq) {
            more++;
        }
        lua_pop(L, 1);
    }
    if (keys)
        qsort(keys, nkeys, sizeof *keys, by_text);
    for (size_t i = 0; i < nkeys; i++) {
        indent(t, st->depth);
        lsvc__text_add(t, keys[i].p ? keys[i].p : "", keys[i].len);
        add_str(t, ",\n");
        lsvc__text_free(&keys[i]);
    }
    free(keys);
    if (more) {
        indent(t, st->depth);
        lsvc__text_printf(t, "-- %zu more\n", more);
    }
    st->depth--;
    indent(t, st->depth);
    add_str(t, "}");
}

static void value(lua_State *L, int idx, show_state *st, lsvc__text *t)
{
    if (lua_type(L, idx) == LUA_TTABLE) {
        if (lua_rawlen(L, idx) == 0) { /* {} on one line when empty */
            lua_pushnil(L);
            if (!lua_next(L, idx)) {
                add_str(t, "{}");
                return;
            }
            lua_pop(L, 2);
        }
        table(L, idx, st, t);
    } else {
        scalar(L, idx, false, t);
    }
}

void lsvc__show(lua_State *L, int idx, lsvc__text *t)
{
    idx = lua_absindex(L, idx);
    show_state st = {.depth = 0};
    if (lua_type(L, idx) == LUA_TTABLE)
        value(L, idx, &st, t);
    else
        scalar(L, idx, true, t);
    if (t->cut) {
        t->max = t->len + 16;
        add_str(t, "...(cut)");
    }
}
