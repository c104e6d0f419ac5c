/*
 * spawn.c - the children the runtime starts itself (DESIGN §9): io.popen,
 * os.execute and ctx:exec's spawn (lua/exec.lua's core), each child
 * registered with the service's tree (ptree.c) before the reaper may look.
 *
 *   - io.popen and os.execute: posix_spawn of /bin/sh -c, the child leading
 *     a process group of its own;
 *   - ctx:exec: posix_spawnp of its argv in a session of its own, stdout
 *     and stderr (and stdin when asked) on pipes, a pidfd the script polls
 *     for the exit (core.spawn, core.reap). posix_spawn does not copy the
 *     host's page tables as fork does (libuv's uv.spawn forks): a short
 *     child costs about what it costs a C program. Offered where pidfds
 *     are (Linux 5.3); elsewhere exec.lua takes uv.spawn;
 *   - at the stop (after the tree's end, lsvc__spawn_ended) the dead
 *     children are reaped, so an io.popen's close, even the Lua state's at
 *     exit, never waits (one still alive: a moment at most).
 *
 * Worker thread only. Windows: io.popen and os.execute are Lua's (the
 * host's Job object holds their children); ctx:exec takes uv.spawn.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "private.h"

#ifndef _WIN32
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CLOSE_REAP_MS 200u /* a child's reap after the stop: its wait */

#if defined(__linux__) && defined(SYS_pidfd_open) && defined(POSIX_SPAWN_SETSID)
#define HAVE_EXEC_SPAWN 1
#endif

typedef struct {
    pid_t pid;
    int pidfd; /* ctx:exec's; -1 for io.popen's */
    bool reaped;
    int status;
} child;

struct lsvc__spawn {
    child *v; /* io.popen's streams still open, ctx:exec's children */
    size_t n;
    bool ended; /* the stop ended the tree */
};

/* io.popen's stream: Lua's LStream, then the child. */
typedef struct {
    luaL_Stream s;
    pid_t pid;
    lsvc__worker *w;
} pstream;

static child *child_of(lsvc__worker *w, pid_t pid)
{
    for (size_t i = 0; i < w->sp->n; i++)
        if (w->sp->v[i].pid == pid)
            return &w->sp->v[i];
    return NULL;
}

/* Room for one more child, or false. */
static bool room(lsvc__worker *w)
{
    child *g = realloc(w->sp->v, (w->sp->n + 1) * sizeof *g);
    if (g)
        w->sp->v = g;
    return g != NULL;
}

static void forget(lsvc__worker *w, child *c)
{
    if (c->pidfd >= 0)
        close(c->pidfd);
    *c = w->sp->v[--w->sp->n];
}

/* env (or environ), its LUASVC_SERVICE the service's: a malloc'd array
 * (NULL: no memory), its strings env's. */
static char **tagged(lsvc__worker *w, char **env)
{
    size_t n = 0, k = 0;
    while (env[n])
        n++;
    char **e = malloc((n + 2) * sizeof *e);
    for (size_t i = 0; e && i < n; i++)
        if (!lsvc__ptree_is_tag(env[i]))
            e[k++] = env[i];
    if (e) {
        e[k++] = lsvc__ptree_tag(w);
        e[k] = NULL;
    }
    return e;
}

/* Default dispositions and an empty mask, as after a fresh exec; flags
 * added. */
static void fresh_attr(posix_spawnattr_t *at, short flags)
{
    sigset_t none, def;
    posix_spawnattr_init(at);
    sigemptyset(&none);
    sigfillset(&def);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setsigdefault(at, &def);
    posix_spawnattr_setpgroup(at, 0);
    posix_spawnattr_setflags(at, (short)(flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
}

/* /bin/sh -c cmd, leading a process group of its own; fd (or -1) its
 * stdin or stdout. */
static int spawn_sh(lsvc__worker *w, const char *cmd, int fd, int target, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    fresh_attr(&at, POSIX_SPAWN_SETPGROUP);
    if (fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, fd, target);
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    char **env = tagged(w, environ);
    lsvc__ptree_spawning(w);
    int rc = env ? posix_spawn(pid, "/bin/sh", &fa, &at, argv, env) : ENOMEM;
    lsvc__ptree_spawned(w, rc == 0 ? *pid : -1);
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

/* waitpid(pid) without EINTR: 0 reaped, 1 not yet (WNOHANG), -1 (errno). */
static int wait_child(pid_t pid, int *st, int flags)
{
    pid_t r;
    while ((r = waitpid(pid, st, flags)) < 0 && errno == EINTR)
        ;
    return r == pid ? 0 : r == 0 ? 1 : -1;
}

/* After the stop: pid waited for CLOSE_REAP_MS at most (it was killed). */
static int wait_briefly(pid_t pid, int *st)
{
    uint64_t due = lsvc_now_ns() + CLOSE_REAP_MS * 1000000ull;
    int rc;
    while ((rc = wait_child(pid, st, WNOHANG)) == 1 && lsvc_now_ns() < due)
        usleep(1000);
    return rc;
}

/* os.execute(cmd): as the C library's system(), under the tree's rules. */
static int os_execute(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    const char *cmd = luaL_optstring(L, 1, NULL);
    if (!cmd) {
        lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
        return 1;
    }
    pid_t pid;
    int rc = spawn_sh(w, cmd, -1, 0, &pid), st = 0;
    if (rc != 0) {
        errno = rc;
        return luaL_fileresult(L, 0, NULL);
    }
    int r = wait_child(pid, &st, 0);
    lsvc__ptree_unwait(w, pid);
    if (r != 0)
        return luaL_fileresult(L, 0, NULL);
    errno = 0; /* luaL_execresult reads it, as system()'s and pclose()'s */
    return luaL_execresult(L, st);
}

/* An io.popen stream's close: fclose, then its child's status; the child
 * reaped already by the stop, or (after the stop) waited for a moment only. */
static int popen_close(lua_State *L)
{
    pstream *p = (pstream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    lsvc__worker *w = p->w;
    fclose(p->s.f);
    child *c = child_of(w, p->pid);
    int st = 0, rc = 0;
    if (c && c->reaped)
        st = c->status;
    else if (!w->sp->ended)
        rc = wait_child(p->pid, &st, 0);
    else
        rc = wait_briefly(p->pid, &st);
    if (c)
        forget(w, c);
    lsvc__ptree_unwait(w, p->pid);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, rc > 0 ? "the child did not exit (left behind)" : strerror(errno));
        return 2;
    }
    errno = 0;
    return luaL_execresult(L, st);
}

/* io.popen(cmd [, mode]) */
static int io_popen(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    const char *cmd = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == 0, 2, "invalid mode");
    if (!room(w))
        return luaL_error(L, "not enough memory");
    pstream *p = (pstream *)lua_newuserdatauv(L, sizeof *p, 0);
    p->s.closef = NULL; /* closed, until opened */
    p->s.f = NULL;
    p->w = w;
    luaL_setmetatable(L, LUA_FILEHANDLE);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return luaL_fileresult(L, 0, cmd);
    bool rd = mode[0] == 'r';
    int mine = rd ? fds[0] : fds[1], theirs = rd ? fds[1] : fds[0];
    pid_t pid;
    int rc = spawn_sh(w, cmd, theirs, rd ? 1 : 0, &pid);
    close(theirs);
    FILE *f = rc == 0 ? fdopen(mine, mode) : NULL;
    if (!f) {
        int e = rc ? rc : errno;
        close(mine);
        if (rc == 0) {
            wait_child(pid, NULL, 0);
            lsvc__ptree_unwait(w, pid);
        }
        errno = e;
        return luaL_fileresult(L, 0, cmd);
    }
    p->s.f = f;
    p->s.closef = popen_close;
    p->pid = pid;
    w->sp->v[w->sp->n++] = (child){pid, -1, false, 0};
    return 1;
}

/* core.kill_tree(pid, "sigterm" | "sigkill"): for lua/exec.lua, on a child
 * it started; how many processes were signalled. */
static int kill_tree(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    lua_Integer pid = luaL_checkinteger(L, 1);
    static const char *const names[] = {"sigterm", "sigkill", NULL};
    int sig = luaL_checkoption(L, 2, NULL, names) ? SIGKILL : SIGTERM;
    luaL_argcheck(L, pid > 0 && pid != (lua_Integer)getpid(), 1, "not a child");
    bool foreign = lsvc__ptree_foreign(w, (long)pid);
    lua_pushinteger(L, foreign ? 0 : lsvc_ptree_signal_subtree((pid_t)pid, sig));
    return 1;
}

#ifdef HAVE_EXEC_SPAWN
/* The strings of the list at idx, NULL-terminated (on L's stack, where
 * they stay); NULL when it holds a non-string. */
static char **strings(lua_State *L, int idx, int from)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    char **v = (char **)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *v, 1);
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, -2, 1); /* the list (and its strings) live as long as v */
    lua_Integer k = 0;
    for (lua_Integer i = from; i <= n; i++) {
        if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
            return NULL;
        v[k++] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    v[k] = NULL;
    return v;
}

static int fail(lua_State *L, int err)
{
    lua_pushnil(L);
    int e = uv_translate_sys_error(err);
    lua_pushfstring(L, "%s: %s", uv_err_name(e), uv_strerror(e));
    return 2;
}

/* The child's stdio: 0 a pipe (in) or /dev/null, 1 and 2 pipes; p the
 * six descriptors (-1: none), mine kept in the parent. */
static int stdio_pipes(posix_spawn_file_actions_t *fa, int p[6], bool in)
{
    if ((in && pipe2(p, O_CLOEXEC) != 0) || pipe2(p + 2, O_CLOEXEC) != 0 ||
        pipe2(p + 4, O_CLOEXEC) != 0)
        return errno;
    if (in)
        posix_spawn_file_actions_adddup2(fa, p[0], 0);
    else
        posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(fa, p[3], 1);
    posix_spawn_file_actions_adddup2(fa, p[5], 2);
    return 0;
}

static void close_all(int p[6])
{
    for (int i = 0; i < 6; i++)
        if (p[i] >= 0)
            close(p[i]);
}

/* core.spawn(argv, cwd, env, stdin): argv[1] (on PATH) in a session of its
 * own, tagged, registered; pid, pidfd, stdout's, stderr's and (stdin true)
 * stdin's descriptor; or nil and "ENAME: message". */
static int exec_spawn(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *cwd = luaL_optstring(L, 2, NULL);
    bool in = lua_toboolean(L, 4);
    char **argv = strings(L, 1, 1);
    char **given = lua_istable(L, 3) ? strings(L, 3, 1) : environ;
    luaL_argcheck(L, argv && argv[0] && given, argv ? 3 : 1, "a list of strings");
    if (!room(w))
        return luaL_error(L, "not enough memory");
    int p[6] = {-1, -1, -1, -1, -1, -1}, rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    fresh_attr(&at, POSIX_SPAWN_SETSID);
    char **env = tagged(w, given);
    pid_t pid = -1;
    rc = !env ? ENOMEM : stdio_pipes(&fa, p, in);
    if (rc == 0 && cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    if (rc == 0) {
        lsvc__ptree_spawning(w);
        rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, env);
        lsvc__ptree_spawned(w, rc == 0 ? pid : -1);
    }
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    int pidfd = rc == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (rc == 0 && pidfd < 0) { /* no descriptor left: the child goes */
        rc = errno;
        kill(pid, SIGKILL);
        wait_child(pid, NULL, 0);
        lsvc__ptree_unwait(w, pid);
    }
    if (rc == 0)
        fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    if (rc != 0) {
        close_all(p);
        return fail(L, rc);
    }
    if (in) /* the child's ends */
        close(p[0]);
    close(p[3]);
    close(p[5]);
    w->sp->v[w->sp->n++] = (child){pid, pidfd, false, 0};
    lua_pushinteger(L, pid);
    lua_pushinteger(L, pidfd);
    lua_pushinteger(L, p[2]);
    lua_pushinteger(L, p[4]);
    if (in)
        lua_pushinteger(L, p[1]);
    else
        lua_pushnil(L);
    return 5;
}

/* core.reap(pid), once its pidfd is readable (it has exited) and no
 * longer polled: the exit code (nil: another reaped it) and the signal (0:
 * none); its pidfd closed. */
static int exec_reap(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    child *c = child_of(w, (pid_t)luaL_checkinteger(L, 1));
    luaL_argcheck(L, c && c->pidfd >= 0, 1, "not ctx:exec's child");
    int st = c->status, rc = c->reaped ? 0 : wait_child(c->pid, &st, 0);
    lsvc__ptree_unwait(w, c->pid);
    forget(w, c);
    if (rc != 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, WIFEXITED(st) ? WEXITSTATUS(st) : 0);
    lua_pushinteger(L, rc == 0 && WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return 2;
}

static bool have_pidfds;

static void probe_pidfds(void)
{
    int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (fd >= 0)
        close(fd);
    have_pidfds = fd >= 0 || errno != ENOSYS;
}

/* Once per process: every worker asks the same kernel. */
static bool pidfds(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe_pidfds);
    return have_pidfds;
}
#endif

void lsvc__spawn_open(lsvc__worker *w)
{
    lua_State *L = w->L;
    w->sp = calloc(1, sizeof *w->sp);
    if (!w->sp)
        luaL_error(L, "not enough memory");
    lua_getglobal(L, "io");
    lua_pushcfunction(L, io_popen);
    lua_setfield(L, -2, "popen");
    lua_getglobal(L, "os");
    lua_pushcfunction(L, os_execute);
    lua_setfield(L, -2, "execute");
    lua_pop(L, 2);
}

/* The tree ended: the dead children reaped (an io.popen's close then
 * answers at once); a ctx:exec child that is not dead yet is the host
 * reaper's (lsvc_ptree_reap). */
void lsvc__spawn_ended(lsvc__worker *w)
{
    if (!w->sp)
        return;
    w->sp->ended = true;
    for (size_t i = 0; i < w->sp->n; i++) {
        child *c = &w->sp->v[i];
        if (!c->reaped && wait_child(c->pid, &c->status, WNOHANG) == 0)
            c->reaped = true;
        else if (!c->reaped && c->pidfd >= 0)
            lsvc__ptree_unwait(w, c->pid);
    }
}

/* After the loop closed (no handle polls a pidfd then). */
void lsvc__spawn_free(lsvc__worker *w)
{
    if (!w->sp)
        return;
    for (size_t i = 0; i < w->sp->n; i++)
        if (w->sp->v[i].pidfd >= 0)
            close(w->sp->v[i].pidfd);
    free(w->sp->v);
    free(w->sp);
    w->sp = NULL;
}

#else /* Windows */

static int kill_tree(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    const char *sig = luaL_checkstring(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luv");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "kill");
    lua_pushinteger(L, pid);
    lua_pushstring(L, sig);
    lua_call(L, 2, 0); /* the child alone: the rest of its tree ends with the service's job */
    lua_pushinteger(L, 1);
    return 1;
}

void lsvc__spawn_open(lsvc__worker *w) { (void)w; }
void lsvc__spawn_ended(lsvc__worker *w) { (void)w; }
void lsvc__spawn_free(lsvc__worker *w) { (void)w; }

#endif

/* ctx:exec's core (lua/exec.lua): kill_tree, and spawn and reap where
 * posix_spawn and pidfds are. */
void lsvc__spawn_push_core(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, kill_tree);
    lua_setfield(L, -2, "kill_tree");
#ifdef HAVE_EXEC_SPAWN
    if (pidfds()) {
        lua_pushcfunction(L, exec_spawn);
        lua_setfield(L, -2, "spawn");
        lua_pushcfunction(L, exec_reap);
        lua_setfield(L, -2, "reap");
    }
#endif
}
