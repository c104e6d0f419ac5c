/*
 * http_c.c - bench section 11's ceiling: a keep-alive HTTP server in C on
 * libuv that answers every request (a head ending in an empty line; no
 * body expected) with the same bytes examples/hello_http.lua sends for
 * GET /hello, written with uv_try_write. No parser, no Lua, no task: what
 * this loop and this kernel allow a server on one thread. Prints
 * "listening on http://127.0.0.1:PORT/" (PORT 0: any) and serves until
 * killed.
 *   http_c PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    int seen; /* bytes of "\r\n\r\n" matched so far */
} conn;

static char answer[256];
static size_t answer_len;
static char rbuf[65536];

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    (void)h;
    (void)size;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_close(uv_handle_t *h) { free(h); }

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = (conn *)s;
    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    static const char end[] = "\r\n\r\n";
    for (ssize_t i = 0; i < n; i++) {
        c->seen = b->base[i] == end[c->seen] ? c->seen + 1 : (b->base[i] == '\r' ? 1 : 0);
        if (c->seen == 4) {
            c->seen = 0;
            uv_buf_t o = uv_buf_init(answer, (unsigned)answer_len);
            if (uv_try_write(s, &o, 1) != (int)answer_len) { /* the bench's answers fit */
                uv_close((uv_handle_t *)s, on_close);
                return;
            }
        }
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    conn *c = calloc(1, sizeof *c);
    uv_tcp_init(srv->loop, &c->tcp);
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
    char date[64];
    time_t t = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
    answer_len = (size_t)snprintf(answer, sizeof answer,
                                  "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 6\r\n\r\nhello\n",
                                  date);
    uv_tcp_t srv;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", argc > 1 ? atoi(argv[1]) : 0, &a);
    uv_tcp_init(uv_default_loop(), &srv);
    if (uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv, 511, on_connection) != 0) {
        fprintf(stderr, "http_c: cannot listen\n");
        return 1;
    }
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len);
    printf("listening on http://127.0.0.1:%d/\n", ntohs(got.sin_port));
    fflush(stdout);
    return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
