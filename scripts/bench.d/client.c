/*
 * client.c - the bench's AF_UNIX client (compiled by scripts/bench, not by
 * CMake). Every request is one connection: socket, connect, send one line,
 * read one line, close - the protocol of the luasvc control endpoint.
 *
 *   client rtt N BATCH SOCK_A REQ_A PREFIX_A SOCK_B REQ_B PREFIX_B
 *       N round trips to each of A and B, alternating batches of BATCH
 *       (after one warm-up batch each). Every reply must start with PREFIX.
 *       Prints "a_med= a_p95= a_min= b_med= b_p95= b_min=" in microseconds.
 *   client latency N SOCK NAME CODE [SOCK_B NAME_B CODE_B]
 *       N times: "CONTROL CODE NAME", then "STATUS NAME" until
 *       controls_delivered has moved on; collects control_latency_us.
 *       Prints "med= p95= min= max=". With a second target (bench.d/relay,
 *       which answers both requests), one sample of each per turn, which
 *       goes first alternating; prints "a_med= ... b_med= ...".
 *   client cvwake N
 *       (Withdrawn as section 2's floor; an info row.) A one-hop
 *       cross-thread hand-off: a thread waiting on a condition
 *       variable (CLOCK_MONOTONIC, as the runtime's queue) is signalled N
 *       times; time from the timestamp taken before the signal to the
 *       waiter's wake. Prints "med= p95= min= max=".
 *   client wait DIR TIMEOUT_MS PID NAME...
 *       Poll "STATUS NAME" on DIR/NAME.sock until every NAME reports
 *       "state":"RUNNING". Exit 0, or 1 on the deadline or when process PID
 *       (the host) has exited meanwhile.
 *
 * Exit status 2 on any protocol or system error, with a message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bench client: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(2);
}

static void set_path(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        die("socket path too long: %s%s", path, "");
    strcpy(sa->sun_path, path);
}

/* One round trip. Returns the reply length (newline stripped), -1 when the
 * socket cannot be reached, -2 on a broken exchange. */
static int roundtrip(const struct sockaddr_un *sa, const char *req, size_t reqlen, char *out,
                     size_t outlen)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -2;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        close(fd);
        return -1;
    }
    if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
        close(fd);
        return -2;
    }
    size_t len = 0;
    char *nl = NULL;
    while (len + 1 < outlen) {
        ssize_t r = recv(fd, out + len, outlen - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        if ((nl = memchr(out, '\n', len)))
            break;
    }
    close(fd);
    out[len] = '\0';
    if (!nl)
        return -2;
    *nl = '\0';
    return (int)(nl - out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
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
    printf("%smed=%.2f %sp95=%.2f %smin=%.2f %smax=%.2f ", pfx, pct(v, n, 50), pfx,
           pct(v, n, 95), pfx, n ? v[0] : 0.0, pfx, n ? v[n - 1] : 0.0);
}

typedef struct target {
    struct sockaddr_un sa;
    char req[600];
    size_t reqlen;
    const char *prefix;
    double *us;
    size_t n;
} target;

static void batch(target *t, size_t count, bool record)
{
    char out[4096];
    for (size_t i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        int r = roundtrip(&t->sa, t->req, t->reqlen, out, sizeof out);
        uint64_t t1 = now_ns();
        if (r < 0)
            die("no reply from %s (%s)", t->sa.sun_path, r == -1 ? "cannot connect" : "broken");
        if (strncmp(out, t->prefix, strlen(t->prefix)) != 0)
            die("unexpected reply from %s: %s", t->sa.sun_path, out);
        if (record)
            t->us[t->n++] = (double)(t1 - t0) / 1000.0;
    }
}

static int cmd_rtt(int argc, char **argv)
{
    if (argc != 8)
        die("usage: rtt N BATCH SOCK_A REQ_A PREFIX_A SOCK_B REQ_B PREFIX_B%s%s", "", "");
    size_t n = strtoul(argv[0], NULL, 10), b = strtoul(argv[1], NULL, 10);
    if (!n || !b)
        die("bad N or BATCH%s%s", "", "");
    target t[2];
    for (int i = 0; i < 2; i++) {
        set_path(&t[i].sa, argv[2 + 3 * i]);
        snprintf(t[i].req, sizeof t[i].req, "%s\n", argv[3 + 3 * i]);
        t[i].reqlen = strlen(t[i].req);
        t[i].prefix = argv[4 + 3 * i];
        t[i].us = malloc(n * sizeof(double));
        t[i].n = 0;
        if (!t[i].us)
            die("out of memory%s%s", "", "");
    }
    batch(&t[0], b, false); /* warm-up */
    batch(&t[1], b, false);
    for (size_t done = 0, k = 0; done < n; done += b, k++) {
        size_t c = n - done < b ? n - done : b;
        /* alternate which side goes first, so neither always follows the other */
        batch(&t[k & 1], c, true);
        batch(&t[!(k & 1)], c, true);
    }
    print_stats("a_", t[0].us, t[0].n);
    print_stats("b_", t[1].us, t[1].n);
    printf("\n");
    return 0;
}

/* A scalar field of the status JSON as a double; -1 if missing. */
static double json_num(const char *j, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(j, pat);
    if (!p)
        return -1;
    return strtod(p + strlen(pat), NULL);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

typedef struct lat_target {
    struct sockaddr_un sa;
    char ctl[600], st[600];
    double delivered;
    double *us;
    size_t n;
} lat_target;

static void lat_init(lat_target *t, size_t n, const char *sock, const char *name, const char *code)
{
    char out[4096];
    set_path(&t->sa, sock);
    snprintf(t->ctl, sizeof t->ctl, "CONTROL %s %s\n", code, name);
    snprintf(t->st, sizeof t->st, "STATUS %s\n", name);
    t->us = malloc((n ? n : 1) * sizeof *t->us);
    t->n = 0;
    if (!t->us)
        die("out of memory%s%s", "", "");
    if (roundtrip(&t->sa, t->st, strlen(t->st), out, sizeof out) < 0 ||
        strncmp(out, "OK ", 3) != 0)
        die("STATUS failed: %s%s", out, "");
    t->delivered = json_num(out, "controls_delivered");
    if (t->delivered < 0)
        die("no controls_delivered in: %s%s", out, "");
}

/* One control, then STATUS until it was delivered: one sample. */
static void lat_sample(lat_target *t)
{
    char out[4096];
    if (roundtrip(&t->sa, t->ctl, strlen(t->ctl), out, sizeof out) < 0 ||
        strncmp(out, "OK", 2) != 0)
        die("CONTROL refused: %s%s", out, "");
    /* Let the worker run before asking: a client spinning on STATUS would
     * take a CPU from it and inflate the figure. */
    uint64_t deadline = now_ns() + 2000000000u;
    for (;;) {
        sleep_us(150);
        if (roundtrip(&t->sa, t->st, strlen(t->st), out, sizeof out) < 0 ||
            strncmp(out, "OK ", 3) != 0)
            die("STATUS failed: %s%s", out, "");
        double d = json_num(out, "controls_delivered");
        if (d >= t->delivered + 1) {
            if (d > t->delivered + 1)
                die("controls_delivered jumped by more than one: %s%s", out, "");
            t->delivered = d;
            t->us[t->n] = json_num(out, "control_latency_us");
            if (t->us[t->n] < 0)
                die("no control_latency_us in: %s%s", out, "");
            t->n++;
            return;
        }
        if (now_ns() > deadline)
            die("control not delivered within 2 s: %s%s", out, "");
    }
}

static int cmd_latency(int argc, char **argv)
{
    if (argc != 4 && argc != 7)
        die("usage: latency N SOCK NAME CODE [SOCK_B NAME_B CODE_B]%s%s", "", "");
    size_t n = strtoul(argv[0], NULL, 10);
    lat_target t[2];
    int nt = argc == 7 ? 2 : 1;
    for (int i = 0; i < nt; i++)
        lat_init(&t[i], n, argv[1 + 3 * i], argv[2 + 3 * i], argv[3 + 3 * i]);
    for (size_t i = 0; i < n; i++) {
        /* two targets: one sample each, which goes first alternating */
        lat_sample(&t[nt == 2 ? (int)(i & 1) : 0]);
        if (nt == 2)
            lat_sample(&t[!(i & 1)]);
    }
    print_stats(nt == 2 ? "a_" : "", t[0].us, t[0].n);
    if (nt == 2)
        print_stats("b_", t[1].us, t[1].n);
    printf("\n");
    return 0;
}

/* ---- cvwake ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static uint64_t posted_ns;
static int pending, quit;
static double *cv_us;
static size_t cv_n;

static void *waiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!pending && !quit)
            pthread_cond_wait(&cv, &mu);
        if (quit)
            break;
        cv_us[cv_n++] = (double)(now_ns() - posted_ns) / 1000.0;
        pending = 0;
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int cmd_cvwake(int argc, char **argv)
{
    if (argc != 1)
        die("usage: cvwake N%s%s", "", "");
    size_t n = strtoul(argv[0], NULL, 10);
    cv_us = malloc((n ? n : 1) * sizeof *cv_us);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_t th;
    pthread_create(&th, NULL, waiter, NULL);
    for (size_t i = 0; i < n + 20; i++) {
        sleep_us(200); /* the waiter is asleep in the kernel, as an idle worker is */
        pthread_mutex_lock(&mu);
        if (i == 20)
            cv_n = 0; /* the first 20 are warm-up */
        posted_ns = now_ns();
        pending = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        for (;;) { /* wait for the waiter to take it, without spinning hard */
            pthread_mutex_lock(&mu);
            int p = pending;
            pthread_mutex_unlock(&mu);
            if (!p)
                break;
            sleep_us(50);
        }
    }
    pthread_mutex_lock(&mu);
    quit = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    print_stats("", cv_us, cv_n);
    printf("\n");
    return 0;
}

/* The process is gone or a zombie. */
static bool exited(const char *pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

static int cmd_wait(int argc, char **argv)
{
    if (argc < 4)
        die("usage: wait DIR TIMEOUT_MS PID NAME...%s%s", "", "");
    const char *dir = argv[0], *pid = argv[2];
    uint64_t deadline = now_ns() + strtoull(argv[1], NULL, 10) * 1000000u;
    char path[300], req[300], out[4096];
    for (int i = 3; i < argc; i++) {
        snprintf(path, sizeof path, "%s/%s.sock", dir, argv[i]);
        snprintf(req, sizeof req, "STATUS %s\n", argv[i]);
        struct sockaddr_un sa;
        set_path(&sa, path);
        for (;;) {
            int r = roundtrip(&sa, req, strlen(req), out, sizeof out);
            if (r >= 0 && strncmp(out, "OK ", 3) == 0 && strstr(out, "\"state\":\"RUNNING\""))
                break;
            if (r >= 0 && strncmp(out, "OK ", 3) == 0 && strstr(out, "\"state\":\"STOPPED\"")) {
                fprintf(stderr, "bench client: %s stopped: %s\n", argv[i], out);
                return 2;
            }
            if (exited(pid)) {
                fprintf(stderr, "bench client: host %s exited before %s was RUNNING\n", pid,
                        argv[i]);
                return 1;
            }
            if (now_ns() > deadline) {
                fprintf(stderr, "bench client: %s not RUNNING before the deadline (%s)\n",
                        argv[i], r >= 0 ? out : "no endpoint");
                return 1;
            }
            sleep_us(2000);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: client rtt|latency|cvwake|wait ...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "rtt") == 0)
        return cmd_rtt(argc - 2, argv + 2);
    if (strcmp(argv[1], "latency") == 0)
        return cmd_latency(argc - 2, argv + 2);
    if (strcmp(argv[1], "cvwake") == 0)
        return cmd_cvwake(argc - 2, argv + 2);
    if (strcmp(argv[1], "wait") == 0)
        return cmd_wait(argc - 2, argv + 2);
    fprintf(stderr, "bench client: unknown mode '%s'\n", argv[1]);
    return 2;
}
