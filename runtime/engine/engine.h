/*
 * engine.h - the layer above supervisor.h: what the front ends (and the
 * engine's own files) need of the engine: the worker thread, the luasvc
 * module, the script's file checks and watch, the mailslot binding and a
 * service's status_slot. private.h is the engine's private header.
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

/* ---- fence.c (the front end's thread, before the first worker starts) --- */

/* The host will run this many services: libuv's thread pool gets a place
 * for each one's requests (UV_THREADPOOL_SIZE, unless set already). */
void lsvc_fence_prepare(size_t services);
/* Is libuv's pool still working on a request of a stopped service? (The
 * host then exits without waiting for it: any thread.) */
bool lsvc_fence_pool_busy(void);

/* ---- reload.c: the file watch's default interval (a front end's option) - */

#define LSVC_WATCH_DEFAULT_MS 100u

/* ---- fswatch.c (any thread) --------------------------------------------- */

void lsvc_fswatch_shutdown(void); /* at exit, after the workers ended */

#endif
