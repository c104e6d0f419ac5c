/*
 * reload.c - the bench's hot-reload timer (compiled by scripts/bench, not
 * by CMake). One service script template, written here so the bench and
 * the edits agree on it: its run logs "VERSION v<N>" as its first act.
 *
 *   reload script PATH NAME VERSION
 *       Write version VERSION of the service NAME to PATH (by rename,
 *       mode 0644 whatever the umask).
 *   reload edits N WARMUP INTERVAL_MS PATH NAME LOG FIRST_VERSION SEED
 *       A host is running PATH (at FIRST_VERSION) with its stderr appended
 *       to LOG. WARMUP + N times: wait a pseudo-random 0..INTERVAL_MS (so
 *       the saves fall at every phase of the host's poll), save the next
 *       version - alternately by rename (write PATH.tmp, rename) and in
 *       place (truncate, write, close) - and time from just before the
 *       save's last system call (the rename, the close) to the moment
 *       the new version's "VERSION v<N>" line appears in LOG
 *       (inotify on LOG). The first WARMUP edits are not recorded.
 *       The floor, on the same edits: a thread of this program that stat()s
 *       PATH every INTERVAL_MS, as a watcher with the same interval and
 *       nothing else to do would (no settling, no loading; it reads the
 *       version from the file once it sees a change).
 *       Prints, in ms: "med= p95= min= max= ren_med= ren_p95= inp_med=
 *       inp_p95= floor_med= floor_p95= floor_max=".
 *   reload poller PATH INTERVAL_MS
 *       Until killed: stat() PATH every INTERVAL_MS - the least a watcher
 *       polling at that interval costs an idle machine (the bench's
 *       reference for the CPU of an idle watched service).
 *   reload restart N WARMUP BIN PATH RUNDIR NAME LOG [OPTION...]
 *       What a host without hot reload offers instead: start `BIN run
 *       [OPTION...] PATH` (stderr appended to LOG), wait for RUNNING, then
 *       WARMUP + N times: SIGTERM the host, reap it, start a new one and
 *       poll "STATUS NAME" on RUNDIR/NAME.sock every 250 us until it says
 *       RUNNING. Times from the kill() to that reply; stops the last host.
 *       Prints, in ms: "med= p95= min= max= stop_med= start_med=".
 *       Every host is this program's child, gets SIGTERM if this program
 *       dies (PR_SET_PDEATHSIG), and is stopped and reaped when it is sent
 *       SIGTERM, SIGINT or SIGHUP.
 *
 * Exit status 2 on any error or deadline (5 s an edit, 10 s a restart),
 * with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void cleanup_child(void);

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench reload: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup_child();
    exit(2);
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

static void sort(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

/* ---- the service script ------------------------------------------------- */

static int script_text(char *buf, size_t len, const char *name, long v)
{
    return snprintf(buf, len,
                    "-- version %ld: the bench's hot-reload service (scripts/bench.d/reload.c)\n"
                    "local S = { name = \"%s\", accepts = { \"stop\" }, stop_timeout = 5000 }\n"
                    "S._version = %ld -- the script's own field: no contract warning\n"
                    "function S.start(ctx) ctx.data.versions = 1 end\n"
                    "function S.run(ctx)\n"
                    "  ctx:log(\"info\", \"VERSION v%ld\")\n"
                    "  while ctx:sleep(3600000) do end\n"
                    "end\n"
                    "function S.reload(ctx, previous) ctx.data.versions = ctx.data.versions + 1 end\n"
                    "return S\n",
                    v, name, v, v);
}

static void write_all(int fd, const char *buf, size_t len, const char *path)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write %s: %s", path, strerror(errno));
        buf += w;
        len -= (size_t)w;
    }
}

/* Save version v of the script, by rename or in place, as an editor does.
 * Returns the time just before the save's last system call (the close, the
 * rename): the save is complete when it returns, and a bench preempted
 * after it (the host wakes on the same CPU) cannot make the edit look
 * faster than it was. */
static uint64_t save(const char *path, const char *name, long v, bool in_place)
{
    char text[1024], tmp[4200];
    int len = script_text(text, sizeof text, name, v);
    if (in_place) {
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
            die("open %s: %s", path, strerror(errno));
        write_all(fd, text, (size_t)len, path);
        uint64_t t = now_ns();
        close(fd);
        return t;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open %s: %s", tmp, strerror(errno));
    if (fchmod(fd, 0644) != 0) /* the runtime refuses group- or world-writable code */
        die("fchmod %s: %s", tmp, strerror(errno));
    write_all(fd, text, (size_t)len, tmp);
    close(fd);
    uint64_t t = now_ns();
    if (rename(tmp, path) != 0)
        die("rename %s: %s", tmp, strerror(errno));
    return t;
}

static int cmd_script(int argc, char **argv)
{
    if (argc != 3)
        die("usage: script PATH NAME VERSION");
    (void)save(argv[0], argv[1], strtol(argv[2], NULL, 10), false);
    return 0;
}

/* ---- edits ------------------------------------------------------------------ */

/* The floor: a thread that stat()s the script every interval. */
static const char *fl_path;
static uint64_t fl_interval_ns;
static long fl_first;
static size_t fl_count;
static _Atomic uint64_t *fl_seen; /* per version after fl_first: when the floor saw it */
static atomic_bool fl_quit;

static bool same_sig(const struct stat *a, const struct stat *b)
{
    return a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
           a->st_size == b->st_size && a->st_ino == b->st_ino;
}

/* The version in the file's first line, or -1 (missing, or caught half-written). */
static long file_version(const char *path)
{
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long v;
    return sscanf(buf, "-- version %ld:", &v) == 1 ? v : -1;
}

static void *floor_thread(void *arg)
{
    (void)arg;
    struct stat last;
    bool have = stat(fl_path, &last) == 0;
    uint64_t next = now_ns() + fl_interval_ns;
    while (!atomic_load(&fl_quit)) {
        uint64_t t = now_ns();
        if (t < next) {
            sleep_ns(next - t);
            continue;
        }
        next = t + fl_interval_ns; /* as the runtime: the next look an interval after this one */
        struct stat st;
        if (stat(fl_path, &st) != 0 || (have && same_sig(&st, &last)))
            continue;
        long v = file_version(fl_path);
        if (v < 0) {
            next = now_ns() + 1000000u; /* caught mid-save: look again in 1 ms */
            continue;
        }
        uint64_t seen = now_ns();
        last = st;
        have = true;
        if (v > fl_first && (size_t)(v - fl_first) <= fl_count) {
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&fl_seen[v - fl_first - 1], &zero, seen);
        }
    }
    return NULL;
}

static int cmd_poller(int argc, char **argv)
{
    if (argc != 2)
        die("usage: poller PATH INTERVAL_MS");
    uint64_t interval_ns = strtoull(argv[1], NULL, 10) * 1000000u;
    if (!interval_ns)
        die("bad INTERVAL_MS");
    for (;;) {
        struct stat st;
        sleep_ns(interval_ns);
        (void)stat(argv[0], &st);
    }
    return 0;
}

/* Read what LOG gained; true when it holds the line for version v. Refused
 * reloads are fatal: the bench measures the path that works. */
static bool log_has(int fd, char *buf, size_t cap, size_t *len, long v)
{
    char want[64];
    snprintf(want, sizeof want, ": VERSION v%ld", v);
    for (;;) {
        if (*len + 1 >= cap) { /* keep the unfinished last line only */
            char *nl = memrchr(buf, '\n', *len);
            size_t keep = nl ? *len - (size_t)(nl + 1 - buf) : 0;
            memmove(buf, buf + *len - keep, keep);
            *len = keep;
            if (*len + 1 >= cap)
                *len = 0;
        }
        ssize_t r = read(fd, buf + *len, cap - 1 - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        *len += (size_t)r;
    }
    buf[*len] = '\0';
    bool found = false;
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        char *hit = strstr(line, want);
        if (hit && hit[strlen(want)] == '\0')
            found = true;
        if (strstr(line, "reload refused") || strstr(line, "STOPPED"))
            die("the host logged: %s", line);
        line = nl + 1;
    }
    size_t rest = *len - (size_t)(line - buf);
    memmove(buf, line, rest);
    *len = rest;
    return found;
}

static uint64_t rng_state;
static uint64_t rng(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int cmd_edits(int argc, char **argv)
{
    if (argc != 8)
        die("usage: edits N WARMUP INTERVAL_MS PATH NAME LOG FIRST_VERSION SEED");
    size_t n = strtoul(argv[0], NULL, 10), warm = strtoul(argv[1], NULL, 10);
    uint64_t interval_ns = strtoull(argv[2], NULL, 10) * 1000000u;
    const char *path = argv[3], *name = argv[4], *logpath = argv[5];
    long first = strtol(argv[6], NULL, 10);
    rng_state = strtoull(argv[7], NULL, 10) | 1;
    if (!n || !interval_ns)
        die("bad N or INTERVAL_MS");
    size_t total = warm + n;

    int lfd = open(logpath, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (lfd < 0)
        die("open %s: %s", logpath, strerror(errno));
    int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino < 0 || inotify_add_watch(ino, logpath, IN_MODIFY) < 0)
        die("inotify on %s: %s", logpath, strerror(errno));
    static char buf[1 << 16];
    size_t blen = 0;
    if (!log_has(lfd, buf, sizeof buf, &blen, first)) /* everything so far; v1 must be there */
        die("%s has no VERSION v%ld line", logpath, first);

    fl_path = path;
    fl_interval_ns = interval_ns;
    fl_first = first;
    fl_count = total;
    fl_seen = calloc(total, sizeof *fl_seen);
    double *all = malloc(n * sizeof *all), *ren = malloc(n * sizeof *ren),
           *inp = malloc(n * sizeof *inp), *flo = malloc(n * sizeof *flo);
    if (!fl_seen || !all || !ren || !inp || !flo)
        die("out of memory");
    size_t nall = 0, nren = 0, ninp = 0, nflo = 0;
    pthread_t th;
    if (pthread_create(&th, NULL, floor_thread, NULL) != 0)
        die("pthread_create failed");

    for (size_t i = 0; i < total; i++) {
        long v = first + 1 + (long)i;
        bool in_place = i % 2 == 1;
        sleep_ns(rng() % interval_ns);
        uint64_t t0 = save(path, name, v, in_place), t1 = 0, deadline = t0 + 5000000000u;
        for (;;) {
            uint64_t t = now_ns();
            if (log_has(lfd, buf, sizeof buf, &blen, v)) {
                t1 = t;
                break;
            }
            if (t > deadline)
                die("version %ld not running 5 s after it was saved (see the host's log)", v);
            struct pollfd p = {.fd = ino, .events = POLLIN};
            int r = poll(&p, 1, 50);
            t = now_ns(); /* the log grew now: this is when the line was seen */
            if (r > 0) {
                char ev[4096];
                while (read(ino, ev, sizeof ev) > 0)
                    ;
                if (log_has(lfd, buf, sizeof buf, &blen, v)) {
                    t1 = t;
                    break;
                }
            }
        }
        /* the floor's view of the same save, before the next one */
        uint64_t fseen = 0, fdl = now_ns() + 2 * interval_ns + 1000000000u;
        while (!(fseen = atomic_load(&fl_seen[i])) && now_ns() < fdl)
            sleep_ns(1000000);
        if (!fseen)
            die("the floor watcher never saw version %ld", v);
        if (i < warm)
            continue;
        double ms = (double)(t1 - t0) / 1e6;
        all[nall++] = ms;
        if (in_place)
            inp[ninp++] = ms;
        else
            ren[nren++] = ms;
        flo[nflo++] = fseen > t0 ? (double)(fseen - t0) / 1e6 : 0;
    }
    atomic_store(&fl_quit, true);
    pthread_join(th, NULL);
    sort(all, nall);
    sort(ren, nren);
    sort(inp, ninp);
    sort(flo, nflo);
    printf("med=%.2f p95=%.2f min=%.2f max=%.2f ren_med=%.2f ren_p95=%.2f inp_med=%.2f "
           "inp_p95=%.2f floor_med=%.1f floor_p95=%.1f floor_max=%.1f\n",
           pct(all, nall, 50), pct(all, nall, 95), all[0], all[nall - 1], pct(ren, nren, 50),
           pct(ren, nren, 95), pct(inp, ninp, 50), pct(inp, ninp, 95), pct(flo, nflo, 50),
           pct(flo, nflo, 95), flo[nflo - 1]);
    return 0;
}

/* ---- restart ------------------------------------------------------------------ */

static volatile sig_atomic_t child = 0, quit = 0, overdue = 0;

static void on_signal(int sig)
{
    if (sig == SIGALRM) { /* a host did not stop in time */
        overdue = 1;
        if (child > 0)
            kill(child, SIGKILL);
        return;
    }
    quit = 1;
}

/* Stop and reap the current host, if any: SIGTERM, then SIGKILL after 5 s. */
static void cleanup_child(void)
{
    pid_t p = child;
    if (p <= 0)
        return;
    kill(p, SIGTERM);
    for (int i = 0; i < 5000; i++) {
        if (waitpid(p, NULL, WNOHANG) == p) {
            child = 0;
            return;
        }
        sleep_ns(1000000);
    }
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    child = 0;
}

static void check_quit(void)
{
    if (quit) {
        cleanup_child();
        fprintf(stderr, "bench reload: interrupted\n");
        exit(2);
    }
}

static pid_t spawn_host(char **args, const char *logpath)
{
    pid_t parent = getpid();
    pid_t p = fork();
    if (p < 0)
        die("fork: %s", strerror(errno));
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int lg = open(logpath, O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (in < 0 || lg < 0)
            _exit(127);
        dup2(in, 0);
        dup2(lg, 1);
        dup2(lg, 2);
        if (in > 2)
            close(in);
        if (lg > 2)
            close(lg);
        execv(args[0], args);
        _exit(127);
    }
    child = p;
    return p;
}

/* One STATUS round trip; 1 when it says RUNNING, 0 otherwise (no endpoint yet). */
static int status_running(const struct sockaddr_un *sa, const char *req)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        close(fd);
        return 0;
    }
    char out[4096];
    size_t len = 0;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        while (len + 1 < sizeof out) {
            ssize_t r = recv(fd, out + len, sizeof out - 1 - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            if (memchr(out, '\n', len))
                break;
        }
    }
    close(fd);
    out[len] = '\0';
    return strncmp(out, "OK ", 3) == 0 && strstr(out, "\"state\":\"RUNNING\"") != NULL;
}

static void wait_running(const struct sockaddr_un *sa, const char *req, pid_t p)
{
    uint64_t deadline = now_ns() + 10000000000u;
    for (;;) {
        check_quit();
        if (status_running(sa, req))
            return;
        int st;
        if (waitpid(p, &st, WNOHANG) == p) {
            child = 0;
            die("the host exited (status %d) before it was RUNNING (see the host's log)",
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        if (now_ns() > deadline)
            die("the host was not RUNNING within 10 s");
        sleep_ns(250000);
    }
}

static int cmd_restart(int argc, char **argv)
{
    if (argc < 7)
        die("usage: restart N WARMUP BIN PATH RUNDIR NAME LOG [OPTION...]");
    size_t n = strtoul(argv[0], NULL, 10), warm = strtoul(argv[1], NULL, 10);
    const char *bin = argv[2], *path = argv[3], *dir = argv[4], *name = argv[5], *logpath = argv[6];
    int nopt = argc - 7;
    if (!n)
        die("bad N");
    char **args = calloc((size_t)nopt + 4, sizeof *args);
    double *tot = malloc(n * sizeof *tot), *stp = malloc(n * sizeof *stp),
           *sta = malloc(n * sizeof *sta);
    if (!args || !tot || !stp || !sta)
        die("out of memory");
    args[0] = (char *)bin;
    args[1] = "run";
    for (int i = 0; i < nopt; i++)
        args[2 + i] = argv[7 + i];
    args[2 + nopt] = (char *)path;

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s.sock", dir, name) >=
        sizeof sa.sun_path)
        die("socket path too long");
    char req[300];
    snprintf(req, sizeof req, "STATUS %s\n", name);

    struct sigaction act = {.sa_handler = on_signal}; /* no SA_RESTART: waitpid returns */
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGHUP, &act, NULL);
    sigaction(SIGALRM, &act, NULL);

    pid_t p = spawn_host(args, logpath);
    wait_running(&sa, req, p);
    for (size_t i = 0; i < warm + n; i++) {
        uint64_t t0 = now_ns();
        kill(p, SIGTERM);
        alarm(10);
        int st;
        pid_t r;
        while ((r = waitpid(p, &st, 0)) < 0 && errno == EINTR)
            check_quit();
        alarm(0);
        child = 0;
        uint64_t t1 = now_ns();
        if (r != p)
            die("waitpid: %s", strerror(errno));
        if (overdue)
            die("a host did not exit within 10 s of SIGTERM: killed");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            die("a host exited with %s %d after SIGTERM", WIFEXITED(st) ? "status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        check_quit();
        p = spawn_host(args, logpath);
        wait_running(&sa, req, p);
        uint64_t t2 = now_ns();
        if (i < warm)
            continue;
        size_t k = i - warm;
        tot[k] = (double)(t2 - t0) / 1e6;
        stp[k] = (double)(t1 - t0) / 1e6;
        sta[k] = (double)(t2 - t1) / 1e6;
    }
    cleanup_child();
    sort(tot, n);
    sort(stp, n);
    sort(sta, n);
    printf("med=%.2f p95=%.2f min=%.2f max=%.2f stop_med=%.2f start_med=%.2f\n", pct(tot, n, 50),
           pct(tot, n, 95), tot[0], tot[n - 1], pct(stp, n, 50), pct(sta, n, 50));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: reload script|edits|poller|restart ...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "script") == 0)
        return cmd_script(argc - 2, argv + 2);
    if (strcmp(argv[1], "edits") == 0)
        return cmd_edits(argc - 2, argv + 2);
    if (strcmp(argv[1], "poller") == 0)
        return cmd_poller(argc - 2, argv + 2);
    if (strcmp(argv[1], "restart") == 0)
        return cmd_restart(argc - 2, argv + 2);
    fprintf(stderr, "bench reload: unknown mode '%s'\n", argv[1]);
    return 2;
}
