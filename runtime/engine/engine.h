/*
 * engine.h - the layer above supervisor.h: what the front ends (and the
 * engine's own files) need of the engine: the worker thread, the luasvc
 * module, the script's file checks and watch, the mailslot binding and a
 * service's status_slot. worker.h is the engine's private header.
 * Includes supervisor.h only.
 */
#ifndef LSVC_ENGINE_H
#define LSVC_ENGINE_H

#include "../supervisor/supervisor.h"

/* ---- worker.c: the per-service thread that owns the lua_State ---------- */

/* ---- worker.c: the per-service thread that owns the lua_State ---------- */

/* Start svc's worker: it loads the script, waits at the host's start
 * barrier (lsvc_host_release), then runs the service to STOPPED. The
 * supervisor owns the thread (lsvc_host_join). 0 or errno. Any thread. */
int lsvc_worker_start(lsvc_service *svc);

/* ---- reload.c: the file watch's default interval (a front end's option) - */

#define LSVC_WATCH_DEFAULT_MS 100u

/* ---- fswatch.c (any thread) --------------------------------------------- */

void lsvc_fswatch_shutdown(void); /* at exit, after the workers ended */

#endif
