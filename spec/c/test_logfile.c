/*
 * test_logfile.c - logfile.c under a burst: several threads write lines
 * of varying length into a small rotating file; every line is then found
 * exactly once, whole, across PATH, PATH.1 ... PATH.keep, and no file is
 * past the size (but for a single line larger than it). A reopen after an
 * external move (logrotate) writes to a new file at PATH. Sizes parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "primitives/primitives.h"

#include "check.h"

#define THREADS 4
#define LINES 3000
#define MAX_SIZE 16384u
#define KEEP 200u

static lsvc_logfile *lf;
static char dir[256], path[300];

static void *writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char line[512];
    for (int i = 0; i < LINES; i++) {
        int pad = (i * 7 + t * 13) % 300;
        int k = snprintf(
            line, sizeof line, "t%d n%d %.*s end\n", t, i, pad,
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        if (lsvc_logfile_write(lf, line, (size_t)k) != 0)
            FAILF("thread %d line %d: write failed", t, i);
    }
    return NULL;
}

/* Count every line of one file into seen[t][n]; false on a malformed one. */
static int read_lines(const char *file, unsigned char seen[THREADS][LINES], long *size)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    char buf[1024];
    int bad = 0;
    while (fgets(buf, sizeof buf, f)) {
        int t, n, used = 0;
        size_t len = strlen(buf);
        if (sscanf(buf, "t%d n%d %n", &t, &n, &used) != 2 || t < 0 || t >= THREADS || n < 0 ||
            n >= LINES || len < 5 || strcmp(buf + len - 5, " end\n") != 0) {
            FAILF("%s: a split or altered line: %s", file, buf);
            bad++;
            continue;
        }
        seen[t][n]++;
    }
    fclose(f);
    return bad;
}

static void test_burst(void)
{
    char err[256];
    lf = lsvc_logfile_open(path, MAX_SIZE, KEEP, err, sizeof err);
    CHECK(lf != NULL);
    if (!lf)
        return;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    lsvc_logfile_close(lf);

    static unsigned char seen[THREADS][LINES];
    int files = 0;
    char file[320];
    for (unsigned i = 0; i <= KEEP; i++) {
        if (i == 0)
            snprintf(file, sizeof file, "%s", path);
        else
            snprintf(file, sizeof file, "%s.%u", path, i);
        long size = 0;
        int r = read_lines(file, seen, &size);
        if (r < 0)
            continue;
        files++;
        if (size > (long)MAX_SIZE)
            FAILF("%s: %ld bytes, past the %u allowed", file, size, MAX_SIZE);
        remove(file);
    }
    CHECK(files > 10); /* it did rotate, many times */
    CHECK(files < (int)KEEP);
    int lost = 0, twice = 0;
    for (int t = 0; t < THREADS; t++)
        for (int n = 0; n < LINES; n++) {
            lost += seen[t][n] == 0;
            twice += seen[t][n] > 1;
        }
    CHECK_EQ(lost, 0);
    CHECK_EQ(twice, 0);
}

/* keep = 2: only the newest two old files remain. */
static void test_keep(void)
{
    char err[256], file[320];
    lsvc_logfile *l = lsvc_logfile_open(path, 100, 2, err, sizeof err);
    CHECK(l != NULL);
    if (!l)
        return;
    char line[64];
    for (int i = 0; i < 50; i++) {
        int k = snprintf(line, sizeof line, "line %02d of a few bytes\n", i);
        CHECK_EQ(lsvc_logfile_write(l, line, (size_t)k), 0);
    }
    lsvc_logfile_close(l);
    struct stat st;
    snprintf(file, sizeof file, "%s.2", path);
    CHECK(stat(file, &st) == 0);
    remove(file);
    snprintf(file, sizeof file, "%s.1", path);
    CHECK(stat(file, &st) == 0);
    remove(file);
    snprintf(file, sizeof file, "%s.3", path);
    CHECK(stat(file, &st) != 0);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) {
        char buf[256] = "";
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        CHECK(strstr(buf, "line 49") != NULL); /* the newest is in PATH */
        fclose(f);
    }
    remove(path);
}

#ifndef _WIN32
/* An external logrotate moves the file; after a reopen, lines go to a new
 * file at PATH, none to the moved one. Not on Windows, which renames no
 * file another handle has open (the log's has no FILE_SHARE_DELETE), and
 * has no SIGHUP nor logrotate to reopen for. */
static void test_reopen(void)
{
    char err[256], moved[320];
    lsvc_logfile *l = lsvc_logfile_open(path, 0, 0, err, sizeof err);
    CHECK(l != NULL);
    if (!l)
        return;
    CHECK_EQ(lsvc_logfile_write(l, "before\n", 7), 0);
    snprintf(moved, sizeof moved, "%s.moved", path);
    CHECK_EQ(rename(path, moved), 0);
    lsvc_logfile_reopen(l);
    CHECK_EQ(lsvc_logfile_write(l, "after\n", 6), 0);
    lsvc_logfile_close(l);
    struct stat a, b;
    CHECK(stat(moved, &a) == 0 && a.st_size == 7);
    CHECK(stat(path, &b) == 0 && b.st_size == 6);
    remove(moved);
    remove(path);
}
#endif

static void test_sizes(void)
{
    uint64_t v = 0;
    CHECK(lsvc_parse_size("1048576", &v) == 0 && v == 1048576);
    CHECK(lsvc_parse_size("512k", &v) == 0 && v == 512 * 1024);
    CHECK(lsvc_parse_size("10M", &v) == 0 && v == 10u * 1024 * 1024);
    CHECK(lsvc_parse_size("1G", &v) == 0 && v == 1024ull * 1024 * 1024);
    CHECK(lsvc_parse_size("", &v) != 0);
    CHECK(lsvc_parse_size("-1", &v) != 0);
    CHECK(lsvc_parse_size("10X", &v) != 0);
    CHECK(lsvc_parse_size("10MB", &v) != 0);
    CHECK(lsvc_parse_size("99999999999999999999", &v) != 0);
    CHECK(lsvc_parse_size("99999999999G", &v) != 0);
}

#ifndef _WIN32
/* A symlink planted at the log's name is not followed. */
static void test_symlink(void)
{
    char target[320], err[256];
    snprintf(target, sizeof target, "%s.target", path);
    FILE *f = fopen(target, "w");
    if (f)
        fclose(f);
    CHECK_EQ(symlink(target, path), 0);
    lsvc_logfile *l = lsvc_logfile_open(path, 0, 0, err, sizeof err);
    CHECK(l == NULL);
    CHECK(strstr(err, "--log-file") != NULL);
    lsvc_logfile_close(l);
    struct stat st;
    CHECK(stat(target, &st) == 0 && st.st_size == 0);
    remove(path);
    remove(target);
}
#endif

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/test_logfile_XXXXXX", tmp && *tmp ? tmp : "/tmp");
#ifdef _WIN32
    snprintf(dir, sizeof dir, "test_logfile_dir");
    mkdir(dir);
#else
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
#endif
    snprintf(path, sizeof path, "%s/svc.log", dir);
    test_sizes();
    test_burst();
    test_keep();
#ifndef _WIN32 /* Windows renames no file another handle has open: no logrotate there */
    test_reopen();
#endif
#ifndef _WIN32
    test_symlink();
#endif
    rmdir(dir);
    return CHECK_EXIT("test_logfile");
}
