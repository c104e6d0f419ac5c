/*
 * sdunits.c - times systemd user units for scripts/bench's systemd section;
 * runs inside scripts/systemd-harness.
 *
 *   sdunits N WARM UNIT...
 *
 * N+WARM rounds (the first WARM not recorded); in each round, for every
 * unit in turn (interleaved, so drift hits all alike): `systemctl --user
 * start UNIT` (returns once a Type=notify service sent READY=1: start to
 * active), the main process's VmRSS, `systemctl --user stop UNIT` (SIGTERM
 * to inactive). Prints per unit one line:
 *   UNIT start_med=MS start_min=MS stop_med=MS rss_kb=KB
 * (rss: median over the rounds). Exit 1 when a start or stop fails.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int run(char *const argv[], char *out, size_t outlen)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    size_t n = 0;
    ssize_t k;
    while ((k = read(p[0], out ? out + n : (char[256]){0}, out ? outlen - 1 - n : 255)) > 0)
        if (out)
            n += (size_t)k;
    if (out)
        out[n] = '\0';
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static long rss_kb(const char *unit)
{
    char out[64], pidfile[64], line[256];
    char *argv[] = {"systemctl", "--user", "show", "-p", "MainPID", "--value", (char *)unit, NULL};
    if (run(argv, out, sizeof out) != 0)
        return -1;
    snprintf(pidfile, sizeof pidfile, "/proc/%ld/status", strtol(out, NULL, 10));
    FILE *f = fopen(pidfile, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double med(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sdunits N WARM UNIT...\n");
        return 2;
    }
    int n = atoi(argv[1]), warm = atoi(argv[2]), nu = argc - 3;
    double *start = calloc((size_t)(n * nu), sizeof *start);
    double *stop = calloc((size_t)(n * nu), sizeof *stop);
    double *rss = calloc((size_t)(n * nu), sizeof *rss);
    for (int r = 0; r < n + warm; r++) {
        for (int u = 0; u < nu; u++) {
            char *unit = argv[3 + u];
            char *st[] = {"systemctl", "--user", "start", unit, NULL};
            char *sp[] = {"systemctl", "--user", "stop", unit, NULL};
            double t0 = now_ms();
            if (run(st, NULL, 0) != 0) {
                fprintf(stderr, "sdunits: systemctl --user start %s failed\n", unit);
                return 1;
            }
            double t1 = now_ms();
            long kb = rss_kb(unit);
            double t2 = now_ms();
            if (run(sp, NULL, 0) != 0) {
                fprintf(stderr, "sdunits: systemctl --user stop %s failed\n", unit);
                return 1;
            }
            double t3 = now_ms();
            if (r >= warm) {
                int i = u * n + (r - warm);
                start[i] = t1 - t0;
                stop[i] = t3 - t2;
                rss[i] = (double)kb;
            }
        }
    }
    for (int u = 0; u < nu; u++) {
        double mn = start[u * n];
        for (int i = 1; i < n; i++)
            if (start[u * n + i] < mn)
                mn = start[u * n + i];
        double sm = med(start + u * n, n), pm = med(stop + u * n, n), rm = med(rss + u * n, n);
        printf("%s start_med=%.2f start_min=%.2f stop_med=%.2f rss_kb=%.0f\n", argv[3 + u], sm, mn,
               pm, rm);
    }
    return 0;
}
