/*
 * spawn.c - os.execute and io.popen for scripts, whose children start
 * clean: no signal blocked, and default dispositions for the signals a
 * host blocks or ignores (the console takes SIGTERM, SIGINT and SIGHUP
 * through a signalfd, so every thread blocks them, and ignores SIGPIPE).
 * The C library's system() and popen() would hand that mask and SIGPIPE's
 * SIG_IGN to the shell and everything it runs, where `kill PID` would then
 * do nothing. Same results as Lua's own (luaL_execresult, luaL_Stream).
 * luv's uv.spawn resets both itself. POSIX only: Windows keeps Lua's.
 * Worker thread only.
 */
#define _GNU_SOURCE /* pipe2 */
#include <lauxlib.h>
#include <lua.h>

#include "worker.h"

#ifndef _WIN32

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the child gets: an empty mask, the usual signals at SIG_DFL. */
static void clean_attr(posix_spawnattr_t *a)
{
    static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE,
                               SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaddset(&dfl, sigs[i]);
    posix_spawnattr_init(a);
    posix_spawnattr_setsigmask(a, &none);
    posix_spawnattr_setsigdefault(a, &dfl);
    posix_spawnattr_setflags(a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/* /bin/sh -c cmd, with fa's file actions (may be NULL): 0 or an errno. */
static int spawn_sh(pid_t *pid, const char *cmd, posix_spawn_file_actions_t *fa)
{
    posix_spawnattr_t a;
    clean_attr(&a);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    int rc = posix_spawn(pid, "/bin/sh", fa, &a, argv, environ);
    posix_spawnattr_destroy(&a);
    return rc;
}

static int wait_child(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* os.execute([cmd]): as Lua's. */
static int os_execute(lua_State *L)
{
    const char *cmd = luaL_optstring(L, 1, NULL);
    if (!cmd) {
        lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
        return 1;
    }
    pid_t pid;
    int rc = spawn_sh(&pid, cmd, NULL);
    if (rc != 0) {
        errno = rc;
        return luaL_execresult(L, -1);
    }
    return luaL_execresult(L, wait_child(pid));
}

typedef struct {
    luaL_Stream s; /* first: io's methods see a luaL_Stream */
    pid_t pid;
} popen_stream;

static int io_pclose(lua_State *L)
{
    popen_stream *p = (popen_stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    fclose(p->s.f);
    return luaL_execresult(L, wait_child(p->pid));
}

/* io.popen(cmd [, mode]): as Lua's, mode "r" or "w". */
static int io_popen(lua_State *L)
{
    const char *cmd = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == '\0', 2, "invalid mode");
    bool reading = mode[0] == 'r';
    popen_stream *p = (popen_stream *)lua_newuserdatauv(L, sizeof *p, 0);
    p->s.f = NULL;
    p->s.closef = NULL; /* a closed file until it is open */
    luaL_setmetatable(L, LUA_FILEHANDLE);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return luaL_fileresult(L, 0, cmd);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, reading ? fds[1] : fds[0], reading ? 1 : 0);
    int rc = spawn_sh(&p->pid, cmd, &fa);
    posix_spawn_file_actions_destroy(&fa);
    close(reading ? fds[1] : fds[0]);
    int mine = reading ? fds[0] : fds[1];
    if (rc != 0) {
        close(mine);
        errno = rc;
        return luaL_fileresult(L, 0, cmd);
    }
    p->s.f = fdopen(mine, mode);
    if (!p->s.f) {
        int e = errno;
        close(mine);
        wait_child(p->pid);
        errno = e;
        return luaL_fileresult(L, 0, cmd);
    }
    p->s.closef = io_pclose;
    return 1;
}

void lsvc_spawn_open(lsvc_worker *w)
{
    lua_State *L = w->L;
    lua_getglobal(L, "os");
    lua_pushcfunction(L, os_execute);
    lua_setfield(L, -2, "execute");
    lua_pop(L, 1);
    lua_getglobal(L, "io");
    lua_pushcfunction(L, io_popen);
    lua_setfield(L, -2, "popen");
    lua_pop(L, 1);
}

#else

void lsvc_spawn_open(lsvc_worker *w)
{
    (void)w;
}

#endif
