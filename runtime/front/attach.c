/*
 * attach.c - luasvc attach's reading of chunks, shared by both platforms
 * (their halves: posix/posix_attach.c, win32/win32_eval.c): a line, and
 * more lines while the chunk is incomplete, as lua.c reads them (compiled
 * here in a Lua state of the client's own, never run: "return " first, so
 * that an expression is whole; else a syntax error at <eof> asks for
 * more); `.exit` or the end of input detaches. Each whole chunk goes to
 * the platform's eval. On a terminal, prompts ("> ", then ">> "); from a
 * pipe, none, and the status says whether every chunk ran. A client's
 * main thread.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "frontend.h"

/* Is chunk incomplete: would more lines make it a chunk? */
static bool incomplete(lua_State *L, const char *chunk, size_t len)
{
    if (len && chunk[0] == '=')
        return false;
    lua_pushliteral(L, "return ");
    lua_pushlstring(L, chunk, len);
    lua_concat(L, 2);
    size_t rl;
    const char *ret = lua_tolstring(L, -1, &rl);
    bool expr = luaL_loadbuffer(L, ret, rl, "=console") == LUA_OK;
    lua_settop(L, 0);
    if (expr)
        return false;
    int rc = luaL_loadbuffer(L, chunk, len, "=console");
    size_t ml = 0;
    const char *msg = rc == LUA_ERRSYNTAX ? lua_tolstring(L, -1, &ml) : NULL;
    bool more = msg && ml >= 5 && strcmp(msg + ml - 5, "<eof>") == 0;
    lua_settop(L, 0);
    return more;
}

bool lsvc_read_line(FILE *f, char **line, size_t *cap)
{
    size_t len = 0;
    for (;;) {
        if (*cap - len < 2) {
            size_t c = *cap ? *cap * 2 : 256;
            char *p = realloc(*line, c);
            if (!p)
                return false;
            *line = p;
            *cap = c;
        }
        if (!fgets(*line + len, (int)(*cap - len), f))
            return len > 0;
        len += strlen(*line + len);
        if (len && (*line)[len - 1] == '\n') {
            (*line)[--len] = '\0';
            if (len && (*line)[len - 1] == '\r')
                (*line)[--len] = '\0';
            return true;
        }
    }
}

int lsvc_attach_run(const char *name, const lsvc_attach_io *io)
{
    if (io->tty)
        printf("luasvc attach %s: Lua inside the service; Ctrl+D or .exit detaches\n", name);
    lua_State *L = luaL_newstate();
    char *line = NULL, *chunk = NULL;
    size_t cap = 0, len = 0;
    int status = 0;
    while (L) {
        const char *prompt = len ? ">> " : "> ";
        if (io->tty) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
        if (!io->read_line(io->ud, &line, &cap, prompt))
            break;
        size_t ll = strlen(line);
        if (!len && strcmp(line, ".exit") == 0)
            break;
        char *c = realloc(chunk, len + ll + 2);
        if (!c)
            break;
        chunk = c;
        if (len)
            chunk[len++] = '\n';
        memcpy(chunk + len, line, ll + 1);
        len += ll;
        if (incomplete(L, chunk, len))
            continue;
        int rc = io->eval(io->ud, chunk, len);
        status = status ? status : rc;
        len = 0;
    }
    if (len) /* an incomplete chunk at the end: its error tells */
        status = io->eval(io->ud, chunk, len) ? 1 : status;
    if (io->tty)
        fputs("\n", stdout);
    if (L)
        lua_close(L);
    free(line);
    free(chunk);
    return io->tty ? 0 : status;
}
