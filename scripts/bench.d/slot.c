/*
 * slot.c - the mailslot benchmark's floor: a raw message channel between
 * two threads of one process, no luasvc, the same two phases as the luasvc
 * scripts of scripts/bench (mailslot section):
 *   latency: N_LAT messages, one every ~1 ms, each carrying its send time;
 *            the reader takes receive - send for each (p50, p95)
 *   rate:    N_RATE messages back to back (blocking writes); messages/s
 *            from the first send to the last receive
 * Usage: slot MODE N_LAT N_RATE SIZE DIR
 *   MODE dgram | seqpacket (AF_UNIX socket at DIR/floor.sock, POSIX)
 *        mailslot (\\.\mailslot\luasvc-bench-floor, Windows/Wine; DIR unused)
 * Prints: lat_p50=US lat_p95=US rate=MSGS_PER_S
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#endif

static int n_lat, n_rate, size;
static double *lats;
static double rate;

static double now_us(void)
{
#ifdef _WIN32
    static LARGE_INTEGER f;
    LARGE_INTEGER c;
    if (!f.QuadPart)
        QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * 1e6 / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
#endif
}

static void sleep_1ms(void)
{
#ifdef _WIN32
    Sleep(1);
#else
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
#endif
}

/* ---- the channel ---- */
#ifdef _WIN32
static HANDLE rd, wr;
static const wchar_t *SLOT = L"\\\\.\\mailslot\\luasvc-bench-floor";
static int ch_open(const char *mode, const char *dir)
{
    (void)dir;
    if (strcmp(mode, "mailslot") != 0)
        return -1;
    rd = CreateMailslotW(SLOT, 65536, MAILSLOT_WAIT_FOREVER, NULL);
    if (rd == INVALID_HANDLE_VALUE)
        return -1;
    wr = CreateFileW(SLOT, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                     FILE_ATTRIBUTE_NORMAL, NULL);
    return wr == INVALID_HANDLE_VALUE ? -1 : 0;
}
static int ch_send(const char *m, int len)
{
    DWORD n;
    return WriteFile(wr, m, (DWORD)len, &n, NULL) ? 0 : -1;
}
static int ch_recv(char *m, int cap)
{
    DWORD n;
    return ReadFile(rd, m, (DWORD)cap, &n, NULL) ? (int)n : -1;
}
#else
static int rd = -1, wr = -1;
static char path[108];
static int ch_open(const char *mode, const char *dir)
{
    int type = strcmp(mode, "dgram") == 0 ? SOCK_DGRAM
               : strcmp(mode, "seqpacket") == 0 ? SOCK_SEQPACKET : -1;
    if (type < 0)
        return -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(path, sizeof path, "%s/floor.sock", dir);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    rd = socket(AF_UNIX, type, 0);
    if (rd < 0 || bind(rd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    if (type == SOCK_SEQPACKET && listen(rd, 8) != 0)
        return -1;
    wr = socket(AF_UNIX, type, 0);
    if (wr < 0 || connect(wr, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    if (type == SOCK_SEQPACKET) {
        int c = accept(rd, NULL, NULL);
        if (c < 0)
            return -1;
        close(rd);
        rd = c;
    }
    return 0;
}
static int ch_send(const char *m, int len) { return send(wr, m, (size_t)len, 0) == len ? 0 : -1; }
static int ch_recv(char *m, int cap) { return (int)recv(rd, m, (size_t)cap, 0); }
#endif

/* ---- the two threads ---- */
static void msg(char *m, char kind)
{
    memset(m, '.', (size_t)size);
    int k = snprintf(m, (size_t)size, "%c %.3f ", kind, now_us());
    m[k] = '.';
}

static int writer(void)
{
    char *m = malloc((size_t)size + 1);
    for (int i = 0; i < n_lat; i++) {
        msg(m, 'L');
        if (ch_send(m, size) != 0)
            return -1;
        sleep_1ms();
    }
    for (int i = 0; i < n_rate; i++) {
        msg(m, 'R');
        if (ch_send(m, size) != 0)
            return -1;
    }
    free(m);
    return 0;
}

static int reader(void)
{
    char *m = malloc(65537);
    int nl = 0, nr = 0;
    double first = 0;
    while (nl < n_lat || nr < n_rate) {
        int n = ch_recv(m, 65536);
        if (n <= 0)
            return -1;
        double t = now_us();
        m[n] = 0;
        double sent = atof(m + 2);
        if (m[0] == 'L')
            lats[nl++] = t - sent;
        else if (m[0] == 'R') {
            if (nr++ == 0)
                first = sent;
            if (nr == n_rate)
                rate = n_rate / ((t - first) / 1e6);
        }
    }
    free(m);
    return 0;
}

#ifdef _WIN32
static DWORD WINAPI reader_thread(LPVOID a)
{
    (void)a;
    return (DWORD)reader();
}
#else
static void *reader_thread(void *a)
{
    (void)a;
    return (void *)(intptr_t)reader();
}
#endif

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: slot dgram|seqpacket|mailslot N_LAT N_RATE SIZE DIR\n");
        return 2;
    }
    n_lat = atoi(argv[2]);
    n_rate = atoi(argv[3]);
    size = atoi(argv[4]);
    if (n_lat < 1 || n_rate < 1 || size < 32 || size > 65536)
        return 2;
    lats = calloc((size_t)n_lat, sizeof *lats);
    if (ch_open(argv[1], argv[5]) != 0) {
        fprintf(stderr, "slot: cannot open a %s channel\n", argv[1]);
        return 1;
    }
    int rrc;
#ifdef _WIN32
    HANDLE th = CreateThread(NULL, 0, reader_thread, NULL, 0, NULL);
    int wrc = writer();
    WaitForSingleObject(th, INFINITE);
    DWORD code;
    GetExitCodeThread(th, &code);
    rrc = (int)code;
#else
    pthread_t th;
    pthread_create(&th, NULL, reader_thread, NULL);
    int wrc = writer();
    void *res;
    pthread_join(th, &res);
    rrc = (int)(intptr_t)res;
    unlink(path);
#endif
    if (wrc || rrc) {
        fprintf(stderr, "slot: the channel failed\n");
        return 1;
    }
    qsort(lats, (size_t)n_lat, sizeof *lats, cmp);
    printf("lat_p50=%.1f lat_p95=%.1f rate=%.0f\n", lats[n_lat / 2],
           lats[(int)(n_lat * 0.95)], rate);
    return 0;
}
