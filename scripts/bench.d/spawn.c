/*
 * spawn.c - exec-to-exit timer (compiled by scripts/bench, not by CMake).
 *
 *   spawn [-u MARKER] N PROG_A ARGS... ::: PROG_B ARGS...
 *
 * Runs A and B N times each, interleaved (A B, B A, A B, ... after two
 * warm-up runs each), every run a fork + execv + waitpid timed with
 * CLOCK_MONOTONIC from before fork to after waitpid. stdin, stdout and
 * stderr of the children are /dev/null. Every run must exit 0.
 * With -u MARKER, a run is timed from before fork until MARKER appears on
 * the child's stderr (a pipe; the rest is read and the child reaped
 * untimed): exec to ready rather than exec to exit.
 * Prints "a_med= a_p95= a_min= a_max= b_med= ..." in microseconds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *marker; /* -u: time until this appears on stderr */

static double run(char **argv)
{
    int p[2] = {-1, -1};
    if (marker && pipe(p) != 0) {
        perror("spawn: pipe");
        exit(2);
    }
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        exit(2);
    }
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(marker ? p[1] : fd, 2);
        if (fd > 2)
            close(fd);
        if (marker) {
            close(p[0]);
            close(p[1]);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    uint64_t t1 = 0;
    if (marker) {
        close(p[1]);
        char buf[4096];
        size_t have = 0;
        ssize_t r;
        while ((r = read(p[0], buf + have, sizeof buf - 1 - have)) > 0) {
            have += (size_t)r;
            buf[have] = '\0';
            if (!t1 && strstr(buf, marker))
                t1 = now_ns();
            if (have > sizeof buf / 2) { /* keep the tail, where a marker may start */
                memmove(buf, buf + have - 256, 256);
                have = 256;
            }
        }
        close(p[0]);
        if (!t1) {
            fprintf(stderr, "spawn: %s never wrote '%s' to stderr\n", argv[0], marker);
            exit(2);
        }
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (!t1)
        t1 = now_ns();
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "spawn: %s exited with %s %d\n", argv[0],
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        exit(2);
    }
    return (double)(t1 - t0) / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void print_stats(const char *pfx, double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("%smed=%.1f %sp95=%.1f %smin=%.1f %smax=%.1f ", pfx, pct(v, n, 50), pfx,
           pct(v, n, 95), pfx, v[0], pfx, v[n - 1]);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "-u") == 0) {
        marker = argv[2];
        argc -= 2;
        argv += 2;
    }
    int sep = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], ":::") == 0)
            sep = i;
    if (argc < 5 || sep < 3 || sep == argc - 1) {
        fprintf(stderr, "usage: spawn [-u MARKER] N PROG_A ARGS... ::: PROG_B ARGS...\n");
        return 2;
    }
    size_t n = strtoul(argv[1], NULL, 10);
    if (!n)
        return 2;
    argv[sep] = NULL;
    char **a = argv + 2, **b = argv + sep + 1;
    double *ua = malloc(n * sizeof *ua), *ub = malloc(n * sizeof *ub);
    if (!ua || !ub)
        return 2;
    for (int i = 0; i < 2; i++) { /* warm-up: page cache, dynamic loader */
        run(a);
        run(b);
    }
    for (size_t i = 0; i < n; i++) {
        if (i & 1) {
            ub[i] = run(b);
            ua[i] = run(a);
        } else {
            ua[i] = run(a);
            ub[i] = run(b);
        }
    }
    print_stats("a_", ua, n);
    print_stats("b_", ub, n);
    printf("\n");
    return 0;
}
