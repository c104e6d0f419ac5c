/*
 * ptree.c - the floor of the process-tree section (compiled by
 * scripts/bench, not by CMake).
 *
 *   ptree N PROG
 *
 * posix_spawn + waitpid of PROG (no arguments, stdio /dev/null) N times
 * in turn, each timed with CLOCK_MONOTONIC from before posix_spawn to
 * after waitpid: a trivial child's spawn -> exit -> reaped, as a C
 * program does it. Prints "med= p95= min=" in microseconds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ptree N PROG\n");
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 1)
        return 2;
    double *us = calloc((size_t)n, sizeof *us);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
    char *args[] = {argv[2], NULL};
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        pid_t pid;
        int st;
        if (posix_spawn(&pid, argv[2], &fa, NULL, args, environ) != 0 ||
            waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "ptree: %s failed\n", argv[2]);
            return 1;
        }
        us[i] = (double)(now_ns() - t0) / 1000.0;
    }
    qsort(us, (size_t)n, sizeof *us, cmp);
    printf("med=%.1f p95=%.1f min=%.1f\n", us[n / 2], us[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1],
           us[0]);
    return 0;
}
