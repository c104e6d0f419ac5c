/*
 * win32_pipe.c - the console's endpoint on Windows (luasvc eval): a named
 * pipe \\.\pipe\luasvc-NAME for each service of the host, whose ACL admits
 * SYSTEM, Administrators and the account the host runs as, and no remote
 * client. One listener thread per service takes a client at a time and
 * hands it to a thread of its own (at most MAX_CLIENTS at once: a silent
 * client holds only its own thread), which reads "EVAL <length> <name>\n"
 * and the chunk (proto.c), queues the eval with the service
 * (lsvc_service_console) and writes the frames the worker puts in its
 * channel as they come; a client that goes away is seen within POLL_MS and
 * its eval ends. The POSIX endpoint's LOG stream (luasvc attach) is not
 * offered here. Threads of their own; no Lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win32.h" /* windows.h, before sddl.h */

#include <sddl.h>

#define MAX_CLIENTS 16
#define POLL_MS 100
#define PIPE_BUF_BYTES 65536

struct lsvc_pipe {
    lsvc_host *host;
    HANDLE *threads; /* a listener per service */
    wchar_t **names;
    volatile LONG stopping;
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd;
};

static volatile LONG clients; /* client threads alive, all hosts */

typedef struct pipe_client {
    HANDLE h;
    HANDLE wake;
    lsvc_service *svc;
} pipe_client;

/* The pipes' DACL: SYSTEM, Administrators and this process's user. */
static bool make_sd(lsvc_pipe *p)
{
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return false;
    char buf[256];
    DWORD n = 0;
    wchar_t *sid = NULL;
    bool ok = GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n) &&
              ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &sid);
    CloseHandle(tok);
    if (!ok)
        return false;
    wchar_t sddl[300];
    _snwprintf(sddl, 300, L"D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;%ls)", sid);
    sddl[299] = L'\0';
    LocalFree(sid);
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &p->sd, NULL))
        return false;
    p->sa = (SECURITY_ATTRIBUTES){sizeof p->sa, p->sd, FALSE};
    return true;
}

static void wake(void *ud) { SetEvent((HANDLE)ud); }

static bool write_all(HANDLE h, const char *s, size_t n)
{
    while (n) {
        DWORD w = 0;
        if (!WriteFile(h, s, (DWORD)n, &w, NULL) || !w)
            return false;
        s += w;
        n -= w;
    }
    return true;
}

static long write_some(void *ud, const char *s, size_t n)
{
    return write_all((HANDLE)ud, s, n) ? (long)n : -1;
}

static void reply_err(HANDLE h, uint32_t code, const char *text)
{
    char line[600];
    int n = snprintf(line, sizeof line, "ERR %u %s\n", code, text);
    write_all(h, line, (size_t)n);
}

/* Read exactly n bytes into buf. */
static bool read_n(HANDLE h, char *buf, size_t n)
{
    while (n) {
        DWORD r = 0;
        if (!ReadFile(h, buf, (DWORD)n, &r, NULL) || !r)
            return false;
        buf += r;
        n -= r;
    }
    return true;
}

/* The request line (a byte at a time: the chunk follows it), parsed. */
static bool read_request(pipe_client *c, lsvc_request *req)
{
    char line[LSVC_PROTO_MAX + 1], err[128];
    size_t len = 0;
    while (len < LSVC_PROTO_MAX && (!len || line[len - 1] != '\n'))
        if (!read_n(c->h, line + len, 1))
            return false;
        else
            len++;
    if (lsvc_proto_parse(line, len, req, err, sizeof err) != 0) {
        reply_err(c->h, LSVC_ERROR_INVALID_PARAMETER, err);
        return false;
    }
    if (req->kind != LSVC_REQ_EVAL) {
        reply_err(c->h, LSVC_ERROR_INVALID_PARAMETER, "only EVAL is served on this pipe");
        return false;
    }
    if (strcmp(req->name, lsvc_service_name(c->svc)) != 0) {
        reply_err(c->h, 1060, "The specified service does not exist as an installed service.");
        return false;
    }
    return true;
}

/* The answer: frames as the worker puts them; the client's going away
 * (a broken pipe) ends the eval. */
static void stream_answer(pipe_client *c, lsvc_console *con)
{
    for (;;) {
        WaitForSingleObject(c->wake, POLL_MS);
        DWORD avail;
        if (!PeekNamedPipe(c->h, NULL, 0, NULL, &avail, NULL) ||
            lsvc_console_send(con, write_some, c->h) < 0) {
            lsvc_console_hangup(con);
            return;
        }
        if (lsvc_console_finished(con)) {
            lsvc_console_send(con, write_some, c->h);
            FlushFileBuffers(c->h);
            return;
        }
    }
}

static DWORD WINAPI client_main(void *arg)
{
    pipe_client *c = arg;
    lsvc_request req;
    if (read_request(c, &req)) {
        char *chunk = malloc((size_t)req.payload_len + 1);
        char who[64];
        ULONG pid = 0;
        GetNamedPipeClientProcessId(c->h, &pid);
        snprintf(who, sizeof who, "pid %lu", (unsigned long)pid);
        lsvc_console *con = chunk ? lsvc_console_new(LSVC_CON_EVAL_MAX, who) : NULL;
        if (!con || !read_n(c->h, chunk, req.payload_len)) {
            free(chunk);
            if (!con)
                reply_err(c->h, 8, "Not enough memory resources are available to process this command.");
        } else {
            chunk[req.payload_len] = '\0';
            lsvc_console_set_chunk(con, chunk, req.payload_len);
            lsvc_console_set_reader(con, wake, c->wake);
            lsvc_console_ref(con); /* the service's, with the event */
            uint32_t rc = lsvc_service_console(c->svc, con);
            if (rc == LSVC_NO_ERROR) {
                stream_answer(c, con);
            } else {
                lsvc_console_unref(con);
                reply_err(c->h, rc, lsvc_win32_message(rc));
            }
        }
        if (con) {
            lsvc_console_set_reader(con, NULL, NULL);
            lsvc_console_unref(con);
        }
    }
    DisconnectNamedPipe(c->h);
    CloseHandle(c->h);
    CloseHandle(c->wake);
    free(c);
    InterlockedDecrement(&clients);
    return 0;
}

typedef struct listener {
    lsvc_pipe *p;
    size_t i;
} listener;

static DWORD WINAPI listen_main(void *arg)
{
    listener *l = arg;
    lsvc_pipe *p = l->p;
    lsvc_service *svc = lsvc_host_service(p->host, l->i);
    const wchar_t *name = p->names[l->i];
    free(l);
    while (!p->stopping) {
        HANDLE h = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX,
                                    PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                        PIPE_REJECT_REMOTE_CLIENTS,
                                    PIPE_UNLIMITED_INSTANCES, PIPE_BUF_BYTES, PIPE_BUF_BYTES, 0,
                                    &p->sa);
        if (h == INVALID_HANDLE_VALUE) {
            lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "console pipe: error %lu",
                     (unsigned long)GetLastError());
            return 1;
        }
        bool ok = ConnectNamedPipe(h, NULL) || GetLastError() == ERROR_PIPE_CONNECTED;
        pipe_client *c = ok && !p->stopping ? calloc(1, sizeof *c) : NULL;
        if (c && InterlockedIncrement(&clients) <= MAX_CLIENTS) {
            *c = (pipe_client){.h = h, .svc = svc, .wake = CreateEventW(NULL, FALSE, FALSE, NULL)};
            HANDLE t = c->wake ? CreateThread(NULL, 0, client_main, c, 0, NULL) : NULL;
            if (t) {
                CloseHandle(t);
                continue;
            }
            if (c->wake)
                CloseHandle(c->wake);
        }
        if (c) {
            InterlockedDecrement(&clients);
            if (!p->stopping)
                reply_err(h, LSVC_ERROR_NOT_ENOUGH_QUOTA, lsvc_win32_message(LSVC_ERROR_NOT_ENOUGH_QUOTA));
        }
        free(c);
        DisconnectNamedPipe(h);
        CloseHandle(h);
    }
    return 0;
}

lsvc_pipe *lsvc_win32_pipe_start(lsvc_host *h)
{
    size_t n = lsvc_host_count(h);
    lsvc_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->host = h;
    p->threads = calloc(n, sizeof *p->threads);
    p->names = calloc(n, sizeof *p->names);
    if (!p->threads || !p->names || !make_sd(p)) {
        lsvc_log(LSVC_LOG_WARNING, NULL, "the console's pipes cannot be made: no luasvc eval");
        lsvc_win32_pipe_stop(p);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char name[200];
        snprintf(name, sizeof name, "\\\\.\\pipe\\luasvc-%s", lsvc_service_name(lsvc_host_service(h, i)));
        p->names[i] = lsvc_wide(name);
        listener *l = p->names[i] ? malloc(sizeof *l) : NULL;
        if (l) {
            *l = (listener){p, i};
            p->threads[i] = CreateThread(NULL, 0, listen_main, l, 0, NULL);
            if (!p->threads[i])
                free(l);
        }
    }
    return p;
}

void lsvc_win32_pipe_stop(lsvc_pipe *p)
{
    if (!p)
        return;
    InterlockedExchange(&p->stopping, 1);
    for (size_t i = 0; p->threads && i < lsvc_host_count(p->host); i++) {
        if (!p->threads[i])
            continue;
        /* its ConnectNamedPipe returns once a client comes: be that client */
        HANDLE c = CreateFileW(p->names[i], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (c != INVALID_HANDLE_VALUE)
            CloseHandle(c);
        WaitForSingleObject(p->threads[i], 2000);
        CloseHandle(p->threads[i]);
    }
    for (size_t i = 0; p->names && i < lsvc_host_count(p->host); i++)
        free(p->names[i]);
    free(p->names);
    free(p->threads);
    if (p->sd)
        LocalFree(p->sd);
    free(p);
}
