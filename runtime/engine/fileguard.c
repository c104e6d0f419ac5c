/*
 * fileguard.c - what the loader (lua/loader.lua) checks before it trusts a
 * script's code or declarations: that no less privileged user can change a
 * file the service loads (the script, its directory, every module it
 * requires, checked before the module runs: see lua/loader.lua's
 * searchers), the search paths Lua was built with (not the environment's),
 * and the name rule a service's and a slot's names follow (util.c, shared
 * with the C side).
 * Worker thread only (it runs in the service's Lua state).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include "private.h" /* first: on Windows, uv.h's winsock2.h goes before windows.h */
#ifdef _WIN32
#include <io.h>
#include <windows.h>
#include "../primitives/win32_utf8.h" /* lsvc_wide */
#endif

/* What makes a file unsafe to load: writable by group or others, or owned
 * by someone who is neither root nor the service's user. Empty when safe.
 * On Windows: an owner or a DACL entry that lets another principal than
 * Administrators, SYSTEM, TrustedInstaller or the service's account write. */
void lsvc_file_problem(const char *what, const char *path, char *buf, size_t len)
{
#ifdef _WIN32
    lsvc_win32_file_problem(what, path, buf, len); /* owner and DACL (win32_acl.c) */
    return;
#endif
    struct stat st;
    buf[0] = '\0';
    if (stat(path, &st) != 0)
        return; /* loading it reports what is wrong */
    uid_t me = geteuid();
    if (st.st_uid != 0 && st.st_uid != me) {
        snprintf(buf, len,
                 "%s %s is owned by uid %u, neither root nor the service's user (uid %u): "
                 "another user could change the service's code; chown it to uid %u",
                 what, path, (unsigned)st.st_uid, (unsigned)me, (unsigned)me);
        return;
    }
    bool dir = S_ISDIR(st.st_mode);
    bool sticky = dir && (st.st_mode & S_ISVTX);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky)
        snprintf(buf, len,
                 "%s %s is writable by %s (mode %03o): a less privileged user could change "
                 "the service's code; run chmod go-w %s",
                 what, path,
                 (st.st_mode & S_IWOTH) ? ((st.st_mode & S_IWGRP) ? "group and others" : "others")
                                        : "its group",
                 (unsigned)(st.st_mode & 0777), path);
}

/* The problem of a file or, failing that, of its directory ("" when both
 * are safe). */
static void problem_with_dir(const char *what, const char *path, char *msg, size_t len)
{
    lsvc_file_problem(what, path, msg, len);
    if (msg[0])
        return;
    char *copy = strdup(path);
    if (copy) {
        lsvc_file_problem("the directory of", dirname(copy), msg, len);
        free(copy);
    }
}

/* secure(path [, what]) -> true | nil, message. Upvalue 1: allow insecure
 * files (then the problem is logged as a warning and true returned). */
static int l_secure(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *what = luaL_optstring(L, 2, "script");
    bool allow = lua_toboolean(L, lua_upvalueindex(1));
    char msg[1024];
    problem_with_dir(what, path, msg, sizeof msg);
    struct stat st;
    if (!msg[0] && stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        lua_pushnil(L); /* a FIFO or a device: loading it could block (never allowed) */
        lua_pushfstring(L, "%s %s is not a regular file", what, path);
        return 2;
    }
    if (msg[0] && !allow) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s (--allow-insecure-script overrides this for development)", msg);
        return 2;
    }
    if (msg[0])
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(lsvc__service(L)), "%s (allowed)", msg);
    lua_pushboolean(L, 1);
    return 1;
}

/* read(path) -> the file's bytes | nil, message: the script and its Lua
 * modules are read here, not by loadfile: opened without blocking and
 * refused unless a regular file, so a FIFO (or a device) planted in the
 * script's place never blocks the worker, at start or at a reload. */
static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
#ifdef _WIN32
    wchar_t *wp = lsvc_wide(path); /* no FIFOs there: UTF-8 is the point */
    int fd = wp ? _wopen(wp, _O_RDONLY | _O_BINARY) : -1;
    free(wp);
#else
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
#endif
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
        return 2;
    }
#ifndef _WIN32
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open %s: not a regular file (a FIFO, a device or a directory)",
                        path);
        return 2;
    }
#endif
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffer(&b);
        ssize_t n = read(fd, p, LUAL_BUFFERSIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            if (n < 0) {
                lua_pushnil(L);
                lua_pushfstring(L, "cannot read %s: %s", path, strerror(e));
                return 2;
            }
            break;
        }
        luaL_addsize(&b, (size_t)n);
    }
    luaL_pushresult(&b);
    return 1;
}

/* readable(path) -> whether it opens for reading, without blocking (a
 * FIFO opens at once, to be refused by read or secure after): the module
 * searchers' test, as Lua's searchpath's fopen is, which blocks on a FIFO. */
static int l_readable(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
#ifdef _WIN32
    wchar_t *wp = lsvc_wide(path);
    int fd = wp ? _wopen(wp, _O_RDONLY | _O_BINARY) : -1;
    free(wp);
#else
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
#endif
    if (fd >= 0)
        close(fd);
    lua_pushboolean(L, fd >= 0);
    return 1;
}

/* name_valid(name) -> true | nil, the rule (util.c's, for C and Lua). */
static int l_name_valid(lua_State *L)
{
    if (lsvc_name_valid(luaL_checkstring(L, 1))) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, LSVC_NAME_RULE);
    return 2;
}

/* Push the search path Lua was built with (luaconf.h's default, which the
 * environment's LUA_PATH would have replaced), with "!" made the
 * executable's directory on Windows as Lua's own package library does. */
static void push_default_path(lua_State *L, const char *path)
{
#ifdef _WIN32
    char exe[MAX_PATH + 1];
    DWORD n = GetModuleFileNameA(NULL, exe, MAX_PATH);
    char *slash = n && n < MAX_PATH ? strrchr(exe, '\\') : NULL;
    if (slash) {
        *slash = '\0';
        luaL_gsub(L, path, LUA_EXEC_DIR, exe);
        return;
    }
#endif
    lua_pushstring(L, path);
}

void lsvc__fileguard_push(lua_State *L, bool allow_insecure)
{
    lua_createtable(L, 0, 6);
    push_default_path(L, LUA_PATH_DEFAULT);
    lua_setfield(L, -2, "default_path");
    push_default_path(L, LUA_CPATH_DEFAULT);
    lua_setfield(L, -2, "default_cpath");
    lua_pushboolean(L, allow_insecure);
    lua_pushcclosure(L, l_secure, 1);
    lua_setfield(L, -2, "secure");
    lua_pushcfunction(L, l_read);
    lua_setfield(L, -2, "read");
    lua_pushcfunction(L, l_readable);
    lua_setfield(L, -2, "readable");
    lua_pushcfunction(L, l_name_valid);
    lua_setfield(L, -2, "name_valid");
}
