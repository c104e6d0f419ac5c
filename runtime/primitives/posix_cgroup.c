/*
 * posix_cgroup.c - where a host makes its services' cgroups (Linux, a
 * cgroup v1 hierarchy; posix_ptree.c's cgroup mode): the hierarchy
 * mounted with a given option, the host's own cgroup in it (as a cgroup
 * namespace shows it), and luasvc-<pid> under that, made and writable;
 * the luasvc-<pid> directories of hosts that are gone swept on the way.
 *
 * Any thread (posix_ptree.c calls it once, under its lock).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* DT_DIR, strtok_r */
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "primitives.h"

#define PATH_CAP LSVC_CGROUP_PATH_CAP

/* The mount point of the v1 hierarchy with option `opt`, and its root. */
static bool find_mount(const char *opt, char *mnt, size_t mcap, char *root, size_t rcap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char r[PATH_CAP], m[PATH_CAP], fs[32], src[64], opts[256];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2 ||
            sscanf(dash + 3, "%31s %63s %255s", fs, src, opts) != 3 || strcmp(fs, "cgroup") != 0)
            continue;
        for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
            if (strcmp(o, opt) == 0)
                found = true;
        if (found) {
            snprintf(mnt, mcap, "%s", m);
            snprintf(root, rcap, "%s", r);
        }
    }
    fclose(f);
    return found;
}

/* The host's path in hierarchy `opt` (/proc/self/cgroup), into out. */
static bool own_path(const char *opt, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = 0;
        b[strcspn(b + 1, "\n") + 1] = 0;
        for (char *save = NULL, *o = strtok_r(a + 1, ",", &save); o; o = strtok_r(NULL, ",", &save))
            if (strcmp(o, opt) == 0)
                found = true;
        if (found)
            snprintf(out, cap, "%s", b + 1);
    }
    fclose(f);
    return found;
}

/* luasvc-<pid> directories of hosts that are gone, and empty, under home:
 * removed. */
static void sweep_stale(const char *home)
{
    DIR *d = opendir(home);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        char end;
        if (sscanf(e->d_name, "luasvc-%ld%c", &pid, &end) != 1 || pid <= 0 ||
            (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue;
        char p[PATH_CAP + 300];
        snprintf(p, sizeof p, "%s/%s", home, e->d_name);
        DIR *sub = opendir(p);
        for (struct dirent *s; sub && (s = readdir(sub));) {
            char q[sizeof p + 300];
            snprintf(q, sizeof q, "%s/%s", p, s->d_name);
            if (s->d_name[0] != '.' && s->d_type == DT_DIR)
                rmdir(q);
        }
        if (sub)
            closedir(sub);
        rmdir(p);
    }
    closedir(d);
}

bool lsvc_cgroup_place_find(const char *opt, lsvc_cgroup_place *c)
{
    char mnt[PATH_CAP], root[PATH_CAP], own[PATH_CAP];
    if (!find_mount(opt, mnt, sizeof mnt, root, sizeof root) ||
        !own_path(opt, own, sizeof own))
        return false;
    const char *tail = own;
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0)
        tail = own + rl; /* a cgroup namespace's view */
    if (strcmp(tail, "/") == 0)
        tail = "";
    if (snprintf(c->home, sizeof c->home, "%s%s", mnt, tail) >= (int)sizeof c->home - 40 ||
        snprintf(c->base, sizeof c->base, "%s/luasvc-%ld", c->home, (long)getpid()) >=
            (int)sizeof c->base ||
        snprintf(c->rel, sizeof c->rel, "%s/luasvc-%ld", strcmp(own, "/") == 0 ? "" : own,
                 (long)getpid()) >= (int)sizeof c->rel)
        return false; /* too deep a path */
    sweep_stale(c->home);
    if (mkdir(c->base, 0755) != 0 && errno != EEXIST)
        return false;
    char probe[PATH_CAP + 16];
    snprintf(probe, sizeof probe, "%s/tasks", c->base);
    if (access(probe, W_OK) != 0) {
        rmdir(c->base);
        return false;
    }
    snprintf(c->hier, sizeof c->hier, "%s", opt);
    return true;
}
