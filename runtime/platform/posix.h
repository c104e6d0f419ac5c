/*
 * posix.h - declarations shared by the POSIX front ends (the console host,
 * the control endpoint and its client).
 */
#ifndef LUASVC_POSIX_H
#define LUASVC_POSIX_H

#include <signal.h>
#include <stddef.h>

#include "../luasvc.h"

/* ---- posix_endpoint.c ---- */
typedef struct lsvc_endpoint lsvc_endpoint;

enum { LSVC_CLIENT_OK = 0, LSVC_CLIENT_NOT_RUNNING = -1, LSVC_CLIENT_ERROR = -2 };

/* Resolve (and create, mode 0700) the runtime directory. */
int lsvc_runtime_dir(char *buf, size_t len, char *err, size_t errlen);
/* Bind NAME.sock for every service of the host (names must be known). */
lsvc_endpoint *lsvc_endpoint_open(lsvc_host *h, char *err, size_t errlen);
/* A signal taken by the endpoint thread (signalfd), for the host. */
typedef void (*lsvc_signal_fn)(lsvc_host *h, int sig);
/* Serve the endpoint, and the blocked signals in set, on one thread. */
int lsvc_endpoint_start(lsvc_endpoint *e, const sigset_t *set, lsvc_signal_fn on_signal);
void lsvc_endpoint_close(lsvc_endpoint *e); /* stops the thread, unlinks */
/* Client: send one request line, read one reply line (newline stripped). */
int lsvc_endpoint_request(const char *dir, const char *name, const char *req, char *out,
                          size_t outlen, char *err, size_t errlen);
int lsvc_endpoint_list(const char *dir, char ***names, size_t *n);

/* ---- posix_console.c ---- */
int lsvc_console_run(int argc, char **argv, bool check_only);

/* ---- posix_client.c ---- */
int lsvc_client_control(const char *name, int code);
int lsvc_client_status(const char *name, bool json);

#endif
