/*
 * posix_ptree.c - a service's process tree on POSIX (DESIGN §9): find and
 * end every process a service started, however deep or detached.
 *
 * cgroup mode (Linux, a writable cgroup v1 hierarchy: freezer, else pids,
 * else the named systemd one, which a unit with Delegate=yes hands over):
 * one cgroup per service, <the host's cgroup>/luasvc-<pid>/<service>
 * (found and made by posix_cgroup.c). The
 * worker's own thread moves into it (lsvc_ptree_join: v1 places threads,
 * not processes), so every process that thread forks (uv.spawn, io.popen,
 * os.execute, a C module's fork or posix_spawn) starts inside, and so do
 * all their descendants, whatever they do (a new group, setsid, a double
 * fork): none can leave but by writing to the cgroup's files. The end:
 * SIGTERM to everything in it, then (the host's threads moved out first)
 * freeze, SIGKILL everything, thaw, until it is empty; then rmdir.
 *
 * subreaper mode (elsewhere): the host is child subreaper
 * (PR_SET_CHILD_SUBREAPER on Linux), each child the runtime starts leads a
 * process group (and for uv.spawn a session) of its own and is registered
 * (lsvc_ptree_add). The tree, found by a scan of /proc: the registered
 * children, every process whose group or session one of them leads (also
 * once the leader has exited), their descendants by parent, and the
 * processes seen in the tree before, and the orphans re-parented to the
 * host (a daemon whose parent exited) that carry the service's name in
 * LUASVC_SERVICE (set in every child the runtime starts), or any such
 * orphan when only one service lives. Zombies
 * re-parented to the host are reaped here (lsvc_ptree_reap), never a
 * registered pid: those are waited for by their starter (libuv, io.popen's
 * close, os.execute).
 *
 * Any thread; a tree's join and leave on its worker's thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* usleep, gettid */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "primitives.h"

#define PATH_CAP LSVC_CGROUP_PATH_CAP
#define MAX_KNOWN 4096u /* pids a subreaper tree remembers */

struct lsvc_ptree {
    char name[128];
    char dir[PATH_CAP]; /* cgroup mode: the service's cgroup */
    pid_t *regs;        /* subreaper mode: the children it registered */
    size_t nregs, capregs;
    pid_t *waited; /* registered children their starter waits for */
    size_t nwaited, capwaited;
    pid_t *known; /* subreaper mode: pids seen in the tree */
    size_t nknown;
    lsvc_ptree *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static lsvc_ptree_mode mode_;
static bool inited;
static lsvc_cgroup_place cg; /* cgroup mode: where (posix_cgroup.c) */
static bool freezer;
static lsvc_ptree *trees;
static size_t ntrees;

/* ---- files ------------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

/* The pids listed in a cgroup's file (one a line): fn(pid, arg) each. */
static unsigned each_listed(const char *dir, const char *file, void (*fn)(pid_t, void *),
                            void *arg)
{
    char path[PATH_CAP + 32];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned n = 0;
    long v;
    while (fscanf(f, "%ld", &v) == 1) {
        n++;
        if (fn)
            fn((pid_t)v, arg);
    }
    fclose(f);
    return n;
}

#ifdef __linux__
static pid_t my_tid(void) { return gettid(); } /* glibc 2.30 */
#endif

static void init_locked(void)
{
    if (inited)
        return;
    inited = true;
    mode_ = LSVC_PTREE_NONE;
    const char *force = getenv("LUASVC_PTREE"); /* tests: "subreaper" */
    bool use_cg = !force || strcmp(force, "subreaper") != 0;
#ifdef __linux__
    /* the orphans of every tree come to the host, to be reaped (PID 1 may
     * not reap them: a container's, or a VM's agent) */
    bool sub = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
    static const char *const opts[] = {"freezer", "pids", "name=systemd"};
    for (size_t i = 0; use_cg && i < sizeof opts / sizeof *opts; i++)
        if (lsvc_cgroup_place_find(opts[i], &cg)) {
            freezer = strcmp(opts[i], "freezer") == 0;
            mode_ = LSVC_PTREE_CGROUP;
            return;
        }
    if (sub)
        mode_ = LSVC_PTREE_SUBREAPER;
#else
    (void)use_cg;
#endif
}

lsvc_ptree_mode lsvc_ptree_mode_now(void)
{
    pthread_mutex_lock(&mu);
    init_locked();
    lsvc_ptree_mode m = mode_;
    pthread_mutex_unlock(&mu);
    return m;
}

const char *lsvc_ptree_mode_name(lsvc_ptree_mode m)
{
    return m == LSVC_PTREE_CGROUP ? "cgroup" : m == LSVC_PTREE_SUBREAPER ? "subreaper" : "none";
}

lsvc_ptree *lsvc_ptree_new(const char *name)
{
    lsvc_ptree *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    pthread_mutex_lock(&mu);
    init_locked();
    if (mode_ == LSVC_PTREE_CGROUP) {
        if (ntrees == 0 && mkdir(cg.base, 0755) != 0 && errno != EEXIST)
            mode_ = LSVC_PTREE_NONE; /* removed under us */
        if (snprintf(t->dir, sizeof t->dir, "%s/%s", cg.base, name) >= (int)sizeof t->dir ||
            (mkdir(t->dir, 0755) != 0 && errno != EEXIST))
            t->dir[0] = 0; /* this one has none: its children are found as in subreaper mode */
    }
    t->next = trees;
    trees = t;
    ntrees++;
    pthread_mutex_unlock(&mu);
    return t;
}

bool lsvc_ptree_cgroup(const lsvc_ptree *t) { return t && t->dir[0]; }

int lsvc_ptree_join(lsvc_ptree *t)
{
#ifdef __linux__
    if (!lsvc_ptree_cgroup(t))
        return 0;
    char path[PATH_CAP + 16], id[24];
    snprintf(path, sizeof path, "%s/tasks", t->dir);
    snprintf(id, sizeof id, "%ld", (long)my_tid());
    if (write_file(path, id) == 0)
        return 0;
    int e = errno;
    rmdir(t->dir);
    t->dir[0] = 0;
    errno = e;
    return -1;
#else
    (void)t;
    return 0;
#endif
}

/* A thread of the host's in a service's cgroup (the worker, or a thread it
 * created: libuv's pool, started from there) back to the host's cgroup. */
static void out_if_ours(pid_t tid, void *arg)
{
    (void)arg;
    char p[64], to[PATH_CAP + 16], id[24];
    snprintf(p, sizeof p, "/proc/self/task/%ld", (long)tid);
    if (access(p, F_OK) != 0)
        return; /* another process's */
    snprintf(to, sizeof to, "%s/tasks", cg.home);
    snprintf(id, sizeof id, "%ld", (long)tid);
    write_file(to, id);
}

void lsvc_ptree_leave(lsvc_ptree *t)
{
    if (lsvc_ptree_cgroup(t))
        each_listed(t->dir, "tasks", out_if_ours, NULL);
}

/* ---- subreaper mode: the process table ------------------------------------ */

typedef struct {
    pid_t pid, ppid, pgid, sid;
    char state;
    bool in;
} proc_row;

/* Every process: /proc/PID/stat. A malloc'd array; *n its length. */
static proc_row *snapshot(size_t *n)
{
    *n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return NULL;
    size_t cap = 256;
    proc_row *rows = malloc(cap * sizeof *rows);
    for (struct dirent *e; rows && (e = readdir(d));) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        if (snprintf(path, sizeof path, "/proc/%s/stat", e->d_name) >= (int)sizeof path ||
            read_file(path, buf, sizeof buf) <= 0)
            continue;
        char *rp = strrchr(buf, ')');
        proc_row r = {0};
        long ppid, pgid, sid;
        if (!rp || sscanf(rp + 1, " %c %ld %ld %ld", &r.state, &ppid, &pgid, &sid) != 4)
            continue;
        r.pid = (pid_t)atol(e->d_name);
        r.ppid = (pid_t)ppid, r.pgid = (pid_t)pgid, r.sid = (pid_t)sid;
        if (*n == cap) {
            proc_row *g = realloc(rows, 2 * cap * sizeof *rows);
            if (!g)
                break;
            rows = g, cap *= 2;
        }
        rows[(*n)++] = r;
    }
    closedir(d);
    return rows;
}

static bool has(const pid_t *v, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == p)
            return true;
    return false;
}

static const proc_row *row_of(const proc_row *rows, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].pid == p)
            return &rows[i];
    return NULL;
}

/* Every descendant of a marked row (but the host) marked too. */
static void mark_descendants(proc_row *rows, size_t n, pid_t self)
{
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < n; i++) {
            const proc_row *p;
            if (!rows[i].in && rows[i].pid != self && (p = row_of(rows, n, rows[i].ppid)) && p->in)
                rows[i].in = more = true;
        }
    }
}

/* Whether a pid is a child some starter waits for (mu held). */
static bool registered(pid_t p)
{
    for (lsvc_ptree *t = trees; t; t = t->next)
        if (has(t->waited, t->nwaited, p))
            return true;
    return false;
}

/* Whether pid's environment carries t's LUASVC_SERVICE (the runtime sets
 * it in every child it starts; descendants inherit it). */
static bool tagged(const lsvc_ptree *t, pid_t pid)
{
    char path[64], buf[16384], want[160];
    snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
    snprintf(want, sizeof want, "%s=%s", LSVC_PTREE_ENV, t->name);
    ssize_t n = read_file(path, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
        if (strcmp(buf + i, want) == 0)
            return true;
    return false;
}

/* Mark t's tree in rows (mu held); the known set updated, dead
 * registrations dropped. A group or session is t's while its leader is
 * t's or gone (a pid reused by a stranger leads a group of the stranger's). */
static void mark_tree(lsvc_ptree *t, proc_row *rows, size_t n, bool claim_orphans)
{
    pid_t self = getpid();
    for (size_t i = 0; i < n; i++) {
        proc_row *r = &rows[i];
        r->in = false;
        if (r->pid == self)
            continue;
        bool lead_ok = true;
        pid_t lead = has(t->regs, t->nregs, r->pgid) ? r->pgid
                     : has(t->regs, t->nregs, r->sid) ? r->sid : 0;
        if (lead) {
            const proc_row *l = row_of(rows, n, lead);
            lead_ok = !l || l->ppid == self || has(t->known, t->nknown, lead);
        }
        r->in = has(t->regs, t->nregs, r->pid) || has(t->known, t->nknown, r->pid) ||
                (lead && lead_ok) ||
                (r->ppid == self && !registered(r->pid) && (claim_orphans || tagged(t, r->pid)));
    }
    mark_descendants(rows, n, self);
    t->nknown = 0;
    for (size_t i = 0; i < n && t->nknown < MAX_KNOWN; i++)
        if (rows[i].in && rows[i].state != 'Z') {
            pid_t *g = realloc(t->known, (t->nknown + 1) * sizeof *g);
            if (!g)
                break;
            t->known = g;
            t->known[t->nknown++] = rows[i].pid;
        }
    size_t k = 0;
    for (size_t i = 0; i < t->nregs; i++) {
        pid_t p = t->regs[i];
        bool live = false;
        for (size_t j = 0; j < n && !live; j++)
            live = rows[j].pid == p || rows[j].pgid == p || rows[j].sid == p;
        if (live)
            t->regs[k++] = p;
    }
    t->nregs = k;
}

/* sig to root, the members of the group and the session it leads, and
 * every descendant of theirs (ctx:exec's timeout); how many. */
unsigned lsvc_ptree_signal_subtree(pid_t root, int sig)
{
    size_t n;
    unsigned count = 0;
    pid_t self = getpid();
    pthread_mutex_lock(&mu);
    proc_row *rows = snapshot(&n);
    for (size_t i = 0; rows && i < n; i++)
        rows[i].in = rows[i].pid != self &&
                     (rows[i].pid == root || rows[i].pgid == root || rows[i].sid == root);
    if (rows)
        mark_descendants(rows, n, self);
    for (size_t i = 0; rows && i < n; i++)
        if (rows[i].in && rows[i].state != 'Z') {
            count++;
            kill(rows[i].pid, sig);
        }
    free(rows);
    pthread_mutex_unlock(&mu);
    return count;
}

/* ---- a tree: signal, count, kill ---------------------------------------- */

typedef struct {
    int sig;
    unsigned live;
} sig_arg;

static void signal_one(pid_t p, void *arg)
{
    sig_arg *a = arg;
    if (p == getpid())
        return;
    a->live++;
    if (a->sig)
        kill(p, a->sig);
}

unsigned lsvc_ptree_signal(lsvc_ptree *t, int sig)
{
    if (!t)
        return 0;
    sig_arg a = {sig, 0};
    if (lsvc_ptree_cgroup(t)) {
        each_listed(t->dir, "cgroup.procs", signal_one, &a);
        return a.live;
    }
    if (mode_ == LSVC_PTREE_NONE)
        return 0;
    pthread_mutex_lock(&mu);
    size_t n;
    proc_row *rows = snapshot(&n);
    if (rows) {
        mark_tree(t, rows, n, ntrees == 1);
        for (size_t i = 0; i < n; i++)
            if (rows[i].in && rows[i].state != 'Z')
                signal_one(rows[i].pid, &a);
    }
    free(rows);
    pthread_mutex_unlock(&mu);
    return a.live;
}

unsigned lsvc_ptree_count(lsvc_ptree *t) { return lsvc_ptree_signal(t, 0); }

static bool frozen(const lsvc_ptree *t)
{
    char path[PATH_CAP + 16], st[32];
    snprintf(path, sizeof path, "%s/freezer.state", t->dir);
    return read_file(path, st, sizeof st) > 0 && strncmp(st, "FROZEN", 6) == 0;
}

/* SIGKILL to everything left: with a freezer, frozen first, so that no
 * fork races the kill (the host's threads left the cgroup before). */
void lsvc_ptree_kill(lsvc_ptree *t)
{
    if (!lsvc_ptree_cgroup(t) || !freezer) {
        lsvc_ptree_signal(t, SIGKILL);
        return;
    }
    lsvc_ptree_leave(t);
    char path[PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/freezer.state", t->dir);
    if (write_file(path, "FROZEN") == 0) {
        uint64_t due = lsvc_now_ns() + 100000000u;
        while (!frozen(t) && lsvc_now_ns() < due)
            usleep(1000);
    }
    lsvc_ptree_signal(t, SIGKILL);
    write_file(path, "THAWED");
}

static void push(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        pid_t *g = realloc(*v, c * sizeof *g);
        if (!g)
            return;
        *v = g, *cap = c;
    }
    (*v)[(*n)++] = pid;
}

void lsvc_ptree_add(lsvc_ptree *t, pid_t pid)
{
    if (!t || pid <= 0)
        return;
    push(&t->waited, &t->nwaited, &t->capwaited, pid);
    if (mode_ == LSVC_PTREE_SUBREAPER || !lsvc_ptree_cgroup(t))
        push(&t->regs, &t->nregs, &t->capregs, pid);
}

void lsvc_ptree_unwait(lsvc_ptree *t, pid_t pid)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < t->nwaited; i++)
        if (t->waited[i] == pid) {
            t->waited[i] = t->waited[--t->nwaited];
            break;
        }
    pthread_mutex_unlock(&mu);
}

void lsvc_ptree_lock(void) { pthread_mutex_lock(&mu); }
void lsvc_ptree_unlock(void) { pthread_mutex_unlock(&mu); }

/* Zombies of the host's (re-parented orphans, a closed handle's child)
 * no starter waits for. */
void lsvc_ptree_reap(void)
{
    if (mode_ == LSVC_PTREE_NONE)
        return;
    pthread_mutex_lock(&mu);
    size_t n;
    proc_row *rows = snapshot(&n);
    pid_t self = getpid();
    for (size_t i = 0; rows && i < n; i++)
        if (rows[i].ppid == self && rows[i].state == 'Z' && !registered(rows[i].pid))
            waitpid(rows[i].pid, NULL, WNOHANG);
    free(rows);
    pthread_mutex_unlock(&mu);
}

/* Whether pid (a process, or with group a process group) belongs to a
 * sibling's tree: not to be signalled by t's script. */
bool lsvc_ptree_foreign(lsvc_ptree *t, pid_t pid, bool group)
{
    (void)group; /* a group's leader is registered: the same look-up */
    bool foreign = false;
    if (lsvc_ptree_cgroup(t)) {
        char path[64], buf[2048];
        snprintf(path, sizeof path, "/proc/%ld/cgroup", (long)pid);
        if (read_file(path, buf, sizeof buf) <= 0)
            return false;
        size_t rl = strlen(cg.rel);
        for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            char *a = strchr(l, ':'), *b = a ? strchr(a + 1, ':') : NULL;
            if (!b)
                continue;
            *b = 0;
            if (strcmp(a + 1, cg.hier) != 0)
                continue;
            const char *p = b + 1;
            if (strncmp(p, cg.rel, rl) == 0 && p[rl] == '/' &&
                strcmp(p + rl + 1, t->name) != 0)
                foreign = true;
        }
        return foreign;
    }
    pthread_mutex_lock(&mu);
    for (lsvc_ptree *o = trees; o && !foreign; o = o->next)
        if (o != t)
            foreign = has(o->known, o->nknown, pid) || has(o->regs, o->nregs, pid) ||
                      has(o->waited, o->nwaited, pid);
    pthread_mutex_unlock(&mu);
    return foreign;
}

/* Under mu: t out of the registry; the host's cgroup removed with the
 * last tree. */
static void unlist_locked(lsvc_ptree *t)
{
    for (lsvc_ptree **p = &trees; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            ntrees--;
            break;
        }
    if (ntrees == 0 && mode_ == LSVC_PTREE_CGROUP)
        rmdir(cg.base);
}

void lsvc_ptree_orphan(lsvc_ptree *t)
{
    if (!lsvc_ptree_cgroup(t))
        return;
    lsvc_ptree_leave(t);
    pthread_mutex_lock(&mu);
    if (rmdir(t->dir) == 0) /* t->dir kept: its worker may read it, unlocked */
        unlist_locked(t);
    pthread_mutex_unlock(&mu);
}

void lsvc_ptree_free(lsvc_ptree *t)
{
    if (!t)
        return;
    lsvc_ptree_leave(t);
    pthread_mutex_lock(&mu);
    if (lsvc_ptree_cgroup(t))
        rmdir(t->dir);
    unlist_locked(t);
    pthread_mutex_unlock(&mu);
    free(t->regs);
    free(t->waited);
    free(t->known);
    free(t);
}
