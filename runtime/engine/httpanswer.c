/*
 * httpanswer.c - the text of luasvc.http's answers, for c:answer
 * (httpconn.c): the status line, Date, the handler's headers checked by
 * lua/http.lua's rule (the framing ones are the server's), Content-Length
 * and the connection's tail; and what a handler returned checked, in the
 * words lua/http.lua used. Worker thread only (it reads the Lua stack).
 *
 *   lsvc__http_answer(L, o, b)   c:answer's arguments to its text
 *   lsvc__http_date(t, out)      an HTTP date (IMF-fixdate, UTC)
 *   lsvc__httpout_free(o)        the text's buffer freed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

/* RFC 9110's IMF-fixdate of t (UTC), as os.date("!%a, %d %b %Y %H:%M:%S GMT"). */
void lsvc__http_date(time_t t, char out[64])
{
    static const char days[] = "ThuFriSatSunMonTueWed", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    long long secs = (long long)t, d = secs / 86400, s = secs % 86400;
    if (s < 0)
        s += 86400, d--;
    int wd = (int)(((d % 7) + 7) % 7);
    /* days since 1970-01-01 to a civil date (H. Hinnant's algorithm) */
    long long z = d + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1, mon = mp < 10 ? mp + 3 : mp - 9;
    long long year = (long long)yoe + era * 400 + (mon <= 2);
    snprintf(out, 64, "%.3s, %02u %.3s %04lld %02d:%02d:%02d GMT", days + 3 * wd, day,
             months + 3 * (mon - 1), year, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60));
}

static bool out_add(lsvc__httpout *o, const char *s, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p)
            return false;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    return true;
}

void lsvc__httpout_free(lsvc__httpout *o)
{
    free(o->p);
    o->p = NULL;
    o->len = o->cap = 0;
}

/* lua/http.lua's header_line rule: a string name, a string or number
 * value; no CR, LF or NUL; a name not empty, without ':' or spaces. */
static bool header_ok(const char *k, size_t kl, const char *v, size_t vl)
{
    if (kl == 0)
        return false;
    for (size_t i = 0; i < kl; i++)
        switch (k[i]) {
        case '\0': case '\r': case '\n': case ':': case ' ': case '\t': case '\v': case '\f':
            return false;
        }
    for (size_t i = 0; i < vl; i++)
        if (v[i] == '\0' || v[i] == '\r' || v[i] == '\n')
            return false;
    return true;
}

static bool framing(const char *k, size_t kl)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection", "date"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == kl && strncasecmp(k, names[i], kl) == 0)
            return true;
    return false;
}

/* The handler's headers (table at index t) into the answer; false: a bad
 * one (or no memory). */
static bool add_headers(lua_State *L, lsvc__httpout *o, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int vt = lua_type(L, -1);
        if (lua_type(L, -2) != LUA_TSTRING || (vt != LUA_TSTRING && vt != LUA_TNUMBER)) {
            lua_pop(L, 2);
            return false;
        }
        size_t kl, vl;
        const char *k = lua_tolstring(L, -2, &kl);
        lua_pushvalue(L, -1); /* a number turned to its text on a copy */
        const char *v = lua_tolstring(L, -1, &vl);
        bool ok = header_ok(k, kl, v, vl);
        if (ok && !framing(k, kl))
            ok = out_add(o, k, kl) && out_add(o, ": ", 2) && out_add(o, v, vl) && out_add(o, "\r\n", 2);
        lua_pop(L, 2);
        if (!ok) {
            lua_pop(L, 1);
            return false;
        }
    }
    return true;
}

/* n in decimal into out (24 bytes); returns its length. */
static size_t digits(char *out, size_t n)
{
    char t[24];
    size_t k = sizeof t;
    do
        t[--k] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    memcpy(out, t + k, sizeof t - k);
    return sizeof t - k;
}

/* What a handler returned, checked as lua/http.lua did: nil and why
 * pushed when it is not an answer. */
static bool not_answer(lua_State *L)
{
    lua_Integer st = lua_tointeger(L, 2);
    if (!lua_isinteger(L, 2) || st < 100 || st > 599) {
        lua_pushnil(L);
        lua_pushliteral(L, "the handler returned ");
        luaL_tolstring(L, 2, NULL);
        lua_pushliteral(L, ", not a status 100-599");
        lua_concat(L, 3);
    } else if (!lua_isnoneornil(L, 5) && lua_type(L, 5) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "the handler returned a %s body, not a string", luaL_typename(L, 5));
    } else if (!lua_isnoneornil(L, 4) && lua_type(L, 4) != LUA_TTABLE) {
        lua_pushnil(L);
        lua_pushfstring(L, "the handler returned %s headers, not a table", luaL_typename(L, 4));
    } else {
        return false;
    }
    return true;
}

/* c:answer's text from its arguments (at 2..7: status, reason, headers,
 * body, tail, head) into o: the head, with the body when it is small; b
 * gets what to write. Returns how many of b to write (1: the text alone),
 * or -1 with nil, why pushed (not an answer; why false: a bad header). */
int lsvc__http_answer(lua_State *L, lsvc__httpout *o, uv_buf_t b[2])
{
    static const char *const tails[] = {"\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n",
                                        "\r\nConnection: close\r\n\r\n"};
    lua_Integer tail = luaL_checkinteger(L, 6);
    luaL_argcheck(L, tail >= 0 && tail <= 2, 6, "0, 1 or 2 expected");
    if (not_answer(L))
        return -1;
    int status = (int)lua_tointeger(L, 2);
    size_t rl, bl = 0;
    const char *reason = luaL_checklstring(L, 3, &rl);
    const char *body = lua_isnoneornil(L, 5) ? "" : lua_tolstring(L, 5, &bl);
    bool nobody = lua_toboolean(L, 7) || status < 200 || status == 204 || status == 304;
    time_t now = time(NULL);
    if (now != o->date_t) {
        o->date_t = now;
        lsvc__http_date(now, o->date);
    }
    char num[24];
    o->len = 0;
    bool ok = out_add(o, "HTTP/1.1 ", 9) && out_add(o, num, digits(num, (size_t)status)) &&
              out_add(o, " ", 1) && out_add(o, reason, rl) && out_add(o, "\r\nDate: ", 8) &&
              out_add(o, o->date, strlen(o->date)) && out_add(o, "\r\n", 2);
    if (ok && !lua_isnoneornil(L, 4))
        ok = add_headers(L, o, 4);
    ok = ok && out_add(o, "Content-Length: ", 16) && out_add(o, num, digits(num, bl)) &&
         out_add(o, tails[tail], strlen(tails[tail]));
    bool inline_body = !nobody && bl < 16384;
    if (ok && inline_body)
        ok = out_add(o, body, bl);
    if (!ok) {
        lua_pushnil(L);
        lua_pushboolean(L, 0);
        return -1;
    }
    b[0] = uv_buf_init(o->p, (unsigned)o->len);
    b[1] = uv_buf_init((char *)body, (unsigned)bl);
    return nobody || inline_body ? 1 : 2;
}
