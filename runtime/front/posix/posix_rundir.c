/*
 * posix_rundir.c - the runtime directory as a host keeps it: its own and
 * closed to others (checked before an endpoint is bound there), and rid of
 * the temporary sockets hosts that died while loading left behind. Any
 * thread (the main thread's check, the endpoint thread's sweep).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix.h"

/* The host's side: the directory must be ours and closed to others. */
int lsvc_rundir_check(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "runtime directory %s belongs to uid %u, not to this user (uid %u); "
                 "set LUASVC_RUNTIME_DIR to a directory of your own",
                 dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "runtime directory %s is open to other users (mode %03o); chmod 700 it", dir,
                 (unsigned)(st.st_mode & 0777));
        return -1;
    }
    return 0;
}

/* Temporary sockets (lsvc_endpoint_prepare) left by hosts that died while
 * their scripts loaded: removed when their process is gone. Off the path
 * to RUNNING, on the endpoint's thread. */
void lsvc_rundir_sweep(void)
{
    char dir[200], err[256];
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid;
        size_t idx;
        char tail[8];
        if (sscanf(de->d_name, ".luasvc-%ld-%zu.%7s", &pid, &idx, tail) != 3 ||
            strcmp(tail, "tmp") != 0 || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

