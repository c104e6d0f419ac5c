/*
 * wine_driver.c - the measuring side of the bench's Wine section, run
 * under wine beside the two services it compares (luasvc.exe and
 * wine_csvc.exe), through the SCM as any client would:
 *   wine_driver.exe create NAME EXE          CreateServiceW: "EXE" NAME, demand start
 *   wine_driver.exe delete NAME              stop (waiting) and DeleteService
 *   wine_driver.exe start NAME               StartServiceW, wait for RUNNING
 *   wine_driver.exe stop NAME                ControlService STOP, wait for STOPPED
 *   wine_driver.exe bench STARTS RTT BATCH A B
 *     STARTS rounds of StartServiceW -> RUNNING (QueryServiceStatusEx
 *     polled), A and B alternately first; then, both RUNNING, RTT
 *     ControlService round trips each of INTERROGATE and user code 200, in
 *     alternating batches of BATCH (timings under Wine drift: interleaving
 *     keeps the comparison fair). Prints medians:
 *       start_ms_a= start_ms_b= interrogate_us_a= ... user_us_b=
 * Exit status 0, or 1 with the failing call and its Win32 code on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

static LARGE_INTEGER g_freq;

static double now_us(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return (double)t.QuadPart * 1e6 / (double)g_freq.QuadPart;
}

static void die(const char *what)
{
    fprintf(stderr, "wine_driver: %s: error %lu\n", what, (unsigned long)GetLastError());
    exit(1);
}

static SC_HANDLE g_scm;

static SC_HANDLE open_svc(const wchar_t *name)
{
    SC_HANDLE h = OpenServiceW(g_scm, name, SERVICE_ALL_ACCESS);
    if (!h)
        die("OpenService");
    return h;
}

static DWORD state_of(SC_HANDLE h)
{
    SERVICE_STATUS_PROCESS ss;
    DWORD need;
    if (!QueryServiceStatusEx(h, SC_STATUS_PROCESS_INFO, (BYTE *)&ss, sizeof ss, &need))
        die("QueryServiceStatusEx");
    return ss.dwCurrentState;
}

/* Poll until the state is want (or, for RUNNING, the service stopped). */
static void wait_for(SC_HANDLE h, DWORD want, const char *what)
{
    double t0 = now_us();
    for (;;) {
        DWORD s = state_of(h);
        if (s == want)
            return;
        if (want == SERVICE_RUNNING && s == SERVICE_STOPPED && now_us() - t0 > 2e6) {
            fprintf(stderr, "wine_driver: %s: STOPPED instead of RUNNING\n", what);
            exit(1);
        }
        if (now_us() - t0 > 30e6) {
            fprintf(stderr, "wine_driver: %s: no state %lu within 30 s\n", what, (unsigned long)want);
            exit(1);
        }
        Sleep(0);
    }
}

/* StartServiceW -> RUNNING in ms; retries while the previous process is
 * still going away (not timed). */
static double start_svc(SC_HANDLE h)
{
    for (int tries = 0;; tries++) {
        double t0 = now_us();
        if (StartServiceW(h, 0, NULL)) {
            wait_for(h, SERVICE_RUNNING, "start");
            return (now_us() - t0) / 1000.0;
        }
        DWORD err = GetLastError();
        if ((err != ERROR_SERVICE_ALREADY_RUNNING && err != ERROR_SERVICE_DATABASE_LOCKED) ||
            tries > 500)
            die("StartService");
        Sleep(10);
    }
}

/* Stop, wait for STOPPED, then for the process to be gone (up to 10 s), so
 * that the next start of either service begins from the same place. */
static void stop_svc(SC_HANDLE h)
{
    SERVICE_STATUS s;
    SERVICE_STATUS_PROCESS ss;
    DWORD need;
    if (!QueryServiceStatusEx(h, SC_STATUS_PROCESS_INFO, (BYTE *)&ss, sizeof ss, &need))
        die("QueryServiceStatusEx");
    if (ss.dwCurrentState == SERVICE_STOPPED)
        return;
    HANDLE proc = ss.dwProcessId ? OpenProcess(SYNCHRONIZE, FALSE, ss.dwProcessId) : NULL;
    if (!ControlService(h, SERVICE_CONTROL_STOP, &s) && GetLastError() != ERROR_SERVICE_NOT_ACTIVE)
        die("ControlService STOP");
    wait_for(h, SERVICE_STOPPED, "stop");
    if (proc) {
        WaitForSingleObject(proc, 10000);
        CloseHandle(proc);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench(int starts, int rtt, int batch, const wchar_t *a, const wchar_t *b)
{
    SC_HANDLE h[2] = {open_svc(a), open_svc(b)};
    double *st[2], *ctl[2][2];
    for (int k = 0; k < 2; k++) {
        st[k] = calloc((size_t)starts, sizeof(double));
        ctl[k][0] = calloc((size_t)rtt, sizeof(double));
        ctl[k][1] = calloc((size_t)rtt, sizeof(double));
        stop_svc(h[k]);
    }
    for (int r = 0; r < starts; r++) {
        for (int j = 0; j < 2; j++) {
            int k = (r + j) % 2; /* alternate which goes first */
            st[k][r] = start_svc(h[k]);
        }
        if (r + 1 < starts)
            for (int k = 0; k < 2; k++)
                stop_svc(h[k]);
    }
    static const DWORD codes[2] = {SERVICE_CONTROL_INTERROGATE, 200};
    for (int c = 0; c < 2; c++)
        for (int done = 0; done < rtt; done += batch)
            for (int j = 0; j < 2; j++) {
                int k = ((done / batch) + j) % 2;
                for (int i = done; i < done + batch && i < rtt; i++) {
                    SERVICE_STATUS s;
                    double t0 = now_us();
                    if (!ControlService(h[k], codes[c], &s))
                        die("ControlService");
                    ctl[k][c][i] = now_us() - t0;
                }
            }
    printf("start_ms_a=%.2f start_ms_b=%.2f interrogate_us_a=%.1f interrogate_us_b=%.1f "
           "user_us_a=%.1f user_us_b=%.1f\n",
           median(st[0], starts), median(st[1], starts), median(ctl[0][0], rtt),
           median(ctl[1][0], rtt), median(ctl[0][1], rtt), median(ctl[1][1], rtt));
    for (int k = 0; k < 2; k++)
        CloseServiceHandle(h[k]);
}

int wmain(int argc, wchar_t **argv)
{
    QueryPerformanceFrequency(&g_freq);
    setvbuf(stdout, NULL, _IONBF, 0);
    g_scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
    if (!g_scm)
        die("OpenSCManager");
    if (argc == 4 && wcscmp(argv[1], L"create") == 0) {
        static wchar_t cmd[4096];
        swprintf(cmd, 4096, L"\"%ls\" \"%ls\"", argv[3], argv[2]);
        SC_HANDLE h = CreateServiceW(g_scm, argv[2], argv[2], SERVICE_ALL_ACCESS,
                                     SERVICE_WIN32_OWN_PROCESS, SERVICE_DEMAND_START,
                                     SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, NULL, NULL);
        if (!h)
            die("CreateService");
        CloseServiceHandle(h);
    } else if (argc == 3 && wcscmp(argv[1], L"delete") == 0) {
        SC_HANDLE h = open_svc(argv[2]);
        stop_svc(h);
        if (!DeleteService(h))
            die("DeleteService");
        CloseServiceHandle(h);
    } else if (argc == 3 && wcscmp(argv[1], L"start") == 0) {
        SC_HANDLE h = open_svc(argv[2]);
        printf("start_ms=%.2f\n", start_svc(h));
        CloseServiceHandle(h);
    } else if (argc == 3 && wcscmp(argv[1], L"stop") == 0) {
        SC_HANDLE h = open_svc(argv[2]);
        stop_svc(h);
        CloseServiceHandle(h);
    } else if (argc == 7 && wcscmp(argv[1], L"bench") == 0) {
        int starts = _wtoi(argv[2]), rtt = _wtoi(argv[3]), batch = _wtoi(argv[4]);
        if (starts < 1 || rtt < 1 || batch < 1)
            return 2;
        bench(starts, rtt, batch, argv[5], argv[6]);
    } else {
        fprintf(stderr, "usage: wine_driver.exe create NAME EXE | delete NAME | start NAME | "
                        "stop NAME | bench STARTS RTT BATCH A B\n");
        return 2;
    }
    CloseServiceHandle(g_scm);
    return 0;
}
